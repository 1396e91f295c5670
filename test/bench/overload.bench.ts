// Overload: the built injector (`node dist/cli.js serve`, its own process, as deployed) under an
// open-loop load of reviews, each on a new TLS connection, at fixed rates from a second process.
// For each rate: answered (200), shed (503, or a connection closed before its handshake: past
// --max-connections in one process and past the bound of the primary of --workers N a connection
// is answered 503, and closed so only when 32 are being answered so),
// failed otherwise, p50/p99 of the answered, the slowest answer of any kind, the server's CPU per
// answered review and its peak RSS. The sustainable rate is the highest rate answered in full
// with p99 under 1 s; the table then shows 1x and 2x that rate.
// Each rate is run against `serve --workers N` for each N of OVERLOAD_WORKERS (default 1 and 2),
// a fresh server per N; CPU and RSS are those of all its processes (primary and workers), and a
// last table puts the workers side by side, rate by rate. The load average is printed before
// each run: figures from a busy machine (the client shares its cores) are not comparable.
// Run: npm run bench   (OVERLOAD_RATES=250,500,1000 OVERLOAD_SECONDS=5 OVERLOAD_WORKERS=1,2)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { servedBench } from "./served.js";

const here = dirname(fileURLToPath(import.meta.url));
const rates = (process.env.OVERLOAD_RATES ?? "250,500,750,1000,1500,2000,3000").split(",").map(Number);
const seconds = Number(process.env.OVERLOAD_SECONDS ?? "5");
const workerCounts = (process.env.OVERLOAD_WORKERS ?? "1,2").split(",").map(Number);
const fixture = join(here, "..", "fixtures", "admission-review-pod.json");
const served = servedBench("overload", 19000, "warn");
const { url, dir } = served;

const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

/** A process and its children (the workers of `--workers N`), from Linux /proc. */
function tree(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return [pid, ...children.flatMap(tree)];
  } catch {
    return [];
  }
}

/** utime + stime of a process and its children (counting children that ended), in seconds, and their RSS in MiB. */
function usage(pid: number): { cpu: number; rssMiB: number } {
  let cpu = 0;
  let rssKiB = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      cpu += (Number(stat[11]) + Number(stat[12]) + (p === pid ? Number(stat[13]) + Number(stat[14]) : 0)) / ticks;
      rssKiB += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // ended meanwhile
    }
  }
  return { cpu, rssMiB: rssKiB / 1024 };
}

interface Run {
  rate: number;
  sent: number;
  answered: number;
  outcomes: Record<string, number>;
  p50: number | null;
  p99: number | null;
  slowestMs: number;
  clientBehindMs: number;
}

async function runAt(
  server: ChildProcess,
  rate: number,
): Promise<{ run: Run; cpuPerAnsweredUs: number; peakRssMiB: number }> {
  const pid = server.pid ?? 0;
  const before = usage(pid);
  let peak = before.rssMiB;
  const sampler = setInterval(() => (peak = Math.max(peak, usage(pid).rssMiB)), 100);
  const client = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(here, "load-client.ts"),
      url,
      join(dir, "certs", "ca.crt"),
      fixture,
      String(rate),
      String(seconds),
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  client.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  await new Promise((r) => client.once("exit", r));
  clearInterval(sampler);
  const after = usage(pid);
  const run = JSON.parse(out) as Run;
  return { run, cpuPerAnsweredUs: ((after.cpu - before.cpu) / Math.max(1, run.answered)) * 1e6, peakRssMiB: peak };
}

type Row = Awaited<ReturnType<typeof runAt>>;
/** A figure, or "-" when there is none (no review answered: the client's JSON has null). */
const fixed = (v: number | null, digits: number): string =>
  v === null || !Number.isFinite(v) ? "-" : v.toFixed(digits);
const SHED_OUTCOMES = new Set(["200", "503", "ECONNRESET"]);
const shedOf = (r: Row): number => (r.run.outcomes["503"] ?? 0) + (r.run.outcomes.ECONNRESET ?? 0);
/** What the failed ones were (a status, an error code, or the client's 10 s timeout). */
const failedOutcomes = (r: Row): string =>
  Object.entries(r.run.outcomes)
    .filter(([k]) => !SHED_OUTCOMES.has(k))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");

async function runWorkers(workers: number): Promise<{ workers: number; idleRssMiB: number; rows: Row[] }> {
  const server = await served.start(workers);
  try {
    const idle = usage(server.pid ?? 0).rssMiB;
    console.log(
      `\n--workers ${workers}: server idle RSS ${idle.toFixed(0)} MiB (all its processes), load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    console.log("rate/s    sent  answered  shed  failed   p50 ms   p99 ms  slowest ms  CPU/answered  peak RSS");
    const rows: Row[] = [];
    for (const rate of rates) {
      const r = await runAt(server, rate);
      rows.push(r);
      const shed = shedOf(r);
      const failed = r.run.sent - r.run.answered - shed;
      console.log(
        `${String(rate).padStart(6)} ${String(r.run.sent).padStart(7)} ${String(r.run.answered).padStart(9)} ${String(shed).padStart(5)} ${String(failed).padStart(7)} ${fixed(r.run.p50, 1).padStart(8)} ${fixed(r.run.p99, 1).padStart(8)} ${fixed(r.run.slowestMs, 0).padStart(11)} ${r.cpuPerAnsweredUs.toFixed(0).padStart(10)} µs ${r.peakRssMiB.toFixed(0).padStart(5)} MiB` +
          (r.run.clientBehindMs > 500 ? `  (client fell ${r.run.clientBehindMs.toFixed(0)} ms behind)` : "") +
          (failed > 0 ? `  failed: ${failedOutcomes(r)}` : ""),
      );
      await new Promise((res) => setTimeout(res, 1000));
    }
    const sustainable = rows
      .filter((r) => r.run.answered === r.run.sent && (r.run.p99 ?? Infinity) < 1000)
      .map((r) => r.run.rate);
    console.log(
      `sustainable (all answered, p99 < 1 s): ${sustainable.length ? Math.max(...sustainable) : "none"} reviews/s`,
    );
    return { workers, idleRssMiB: idle, rows };
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
}

try {
  console.log(
    `overload: node ${process.version}, new TLS connection per review, ${seconds}s per rate, ${availableParallelism()} cores, --workers ${workerCounts.join(" vs ")}`,
  );
  const results = [];
  for (const workers of workerCounts) results.push(await runWorkers(workers));
  console.log(`\nside by side: answered/sent, shed, p50/p99 ms, peak RSS MiB`);
  console.log(`rate/s ${results.map((r) => `| --workers ${r.workers}`.padEnd(40)).join("")}`);
  for (const [i, rate] of rates.entries()) {
    const cells = results.map((r) => {
      const row = r.rows[i];
      if (row === undefined) return "".padEnd(40);
      return `| ${row.run.answered}/${row.run.sent} ${shedOf(row)} ${fixed(row.run.p50, 1)}/${fixed(row.run.p99, 1)} ${row.peakRssMiB.toFixed(0)}`.padEnd(
        40,
      );
    });
    console.log(`${String(rate).padStart(6)} ${cells.join("")}`);
  }
} finally {
  served.dispose();
}
