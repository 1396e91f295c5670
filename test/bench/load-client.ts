// Open-loop load generator for overload.bench.ts, run as its own process: sends POST /inject at
// a fixed rate for a fixed time, each request on a NEW TLS connection (the worst case for the
// server: a full handshake per review), whatever the answers. Prints one JSON line of results.
// Loopback only; bounded in count and time.
import { readFileSync } from "node:fs";
import { request } from "node:https";

const [url = "", caFile = "", bodyFile = "", rateArg = "100", secondsArg = "5"] = process.argv.slice(2);
if (!url.startsWith("https://127.0.0.1:")) throw new Error("load-client: loopback https URLs only");
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const ca = readFileSync(caFile);
const body = readFileSync(bodyFile);
/** The API server's default webhook timeout. */
const TIMEOUT_MS = 10_000;

interface Result {
  status: number | string;
  ms: number;
}

function one(): Promise<Result> {
  const t = performance.now();
  return new Promise((resolve) => {
    const req = request(
      `${url}/inject`,
      {
        method: "POST",
        ca,
        agent: false,
        timeout: TIMEOUT_MS,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t }));
        res.on("error", () => resolve({ status: "error", ms: performance.now() - t }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) =>
      resolve({ status: e.message === "timeout" ? "timeout" : (e.code ?? "error"), ms: performance.now() - t }),
    );
    req.end(body);
  });
}

const total = Math.round(rate * seconds);
const pending: Promise<Result>[] = [];
const start = performance.now();
let behindMs = 0;
for (let sent = 0; sent < total;) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
  for (; sent < due; sent++) pending.push(one());
  behindMs = Math.max(behindMs, performance.now() - start - (sent / rate) * 1000);
  await new Promise((r) => setTimeout(r, 2));
}
const sendSeconds = (performance.now() - start) / 1000;
const results = await Promise.all(pending);
const answered = results
  .filter((r) => r.status === 200)
  .map((r) => r.ms)
  .sort((a, b) => a - b);
const pct = (q: number): number => answered[Math.min(answered.length - 1, Math.floor(q * answered.length))] ?? NaN;
const outcomes: Record<string, number> = {};
for (const r of results) outcomes[String(r.status)] = (outcomes[String(r.status)] ?? 0) + 1;
const slowest = Math.max(...results.map((r) => r.ms));
process.stdout.write(
  `${JSON.stringify({ rate, seconds, sent: total, sendSeconds, answered: answered.length, outcomes, p50: pct(0.5), p99: pct(0.99), slowestMs: slowest, clientBehindMs: behindMs })}\n`,
);
