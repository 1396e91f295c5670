// End-to-end HTTP benchmark: the real `serve` (HTTPS, TLS 1.2+, express, logging, metrics)
// answering AdmissionReviews the API server sent (test/fixtures), with keep-alive connections
// as the API server uses. Bounded in time, loopback only.
// Run: npm run bench   (BENCH_SECONDS, BENCH_CONCURRENCY)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runServe } from "../../src/main.js";

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? "2");
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? "8");

const dir = mkdtempSync(join(tmpdir(), "bench-http-"));
const server = await runServe({ port: 0, certDir: join(dir, "certs"), logLevel: "silent" });
const ca = readFileSync(join(dir, "certs", "ca.crt"));
const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca });

function post(body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = request(`${server.url}/inject`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t) / 1e6) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function run(name: string, body: Buffer): Promise<void> {
  for (let i = 0; i < 200; i++) await post(body); // warm-up
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) latencies.push(await post(body));
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p = (q: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(2);
  console.log(
    `${name.padEnd(28)} ${String(latencies.length).padStart(7)} reviews  ${(latencies.length / elapsed).toFixed(0).padStart(6)}/s   p50 ${p(0.5)} ms   p99 ${p(0.99)} ms`,
  );
}

try {
  console.log(`node ${process.version}, ${seconds}s per case, ${concurrency} concurrent keep-alive connections`);
  for (const name of ["pod", "replicaset-pod", "annotation-opt-out"]) {
    await run(`POST /inject: ${name}`, readFileSync(join(here, "..", "fixtures", `admission-review-${name}.json`)));
  }
} finally {
  agent.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
