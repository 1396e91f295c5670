// End-to-end HTTP benchmark: the real `serve` (the built CLI in its own processes: HTTPS, TLS
// 1.2+, express, logging, metrics) answering AdmissionReviews the API server sent
// (test/fixtures), over keep-alive connections as the API server uses them. Run against
// `serve --workers N` for each N of BENCH_WORKERS (default 1 and 2); RSS is that of all the
// server's processes, idle and at its peak under the load. Bounded in time, loopback only.
// Run: npm run bench   (BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_WORKERS)
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { servedBench } from "./served.js";

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? "2");
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? "8");
const workerCounts = (process.env.BENCH_WORKERS ?? "1,2").split(",").map(Number);
const served = servedBench("http", 20000, "silent");
const { url, dir } = served;

/** RSS in MiB of a process and its children (the workers), from Linux /proc. */
function rssMiB(pid: number): number {
  let kib = 0;
  const visit = (p: number): void => {
    try {
      kib += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/).filter(Boolean))
        visit(Number(c));
    } catch {
      // ended meanwhile
    }
  };
  visit(pid);
  return kib / 1024;
}

function post(agent: Agent, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = request(
      `${url}/inject`,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } },
      (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(Number(process.hrtime.bigint() - t) / 1e6)
            : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function run(agent: Agent, name: string, body: Buffer, serverPid: number): Promise<void> {
  for (let i = 0; i < 200; i++) await post(agent, body); // warm-up
  const latencies: number[] = [];
  let peak = rssMiB(serverPid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(serverPid))), 100);
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) latencies.push(await post(agent, body));
    }),
  );
  clearInterval(sampler);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p = (q: number): string =>
    (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(2);
  console.log(
    `${name.padEnd(28)} ${String(latencies.length).padStart(7)} reviews  ${(latencies.length / elapsed).toFixed(0).padStart(6)}/s   p50 ${p(0.5)} ms   p99 ${p(0.99)} ms   peak RSS ${peak.toFixed(0)} MiB`,
  );
}

try {
  console.log(
    `node ${process.version}, ${availableParallelism()} cores, ${seconds}s per case, ${concurrency} concurrent keep-alive connections, the server in its own processes`,
  );
  for (const workers of workerCounts) {
    const server = await served.start(workers);
    try {
      // The client trusts the CA the server generated in its certificate folder.
      const trusting = new Agent({
        keepAlive: true,
        maxSockets: concurrency,
        ca: readFileSync(join(dir, "certs", "ca.crt")),
      });
      console.log(`--workers ${workers}: idle RSS ${rssMiB(server.pid ?? 0).toFixed(0)} MiB`);
      try {
        for (const name of ["pod", "replicaset-pod", "annotation-opt-out"]) {
          await run(
            trusting,
            `  POST /inject: ${name}`,
            readFileSync(join(here, "..", "fixtures", `admission-review-${name}.json`)),
            server.pid ?? 0,
          );
        }
      } finally {
        trusting.destroy();
      }
    } finally {
      server.kill("SIGTERM");
      await new Promise((r) => server.once("exit", r));
    }
  }
} finally {
  served.dispose();
}
