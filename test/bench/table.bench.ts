// The side-by-side benchmark of `npm run bench`: one AdmissionReview the API server sent
// (test/fixtures/admission-review-pod.json) answered by
//   (1) the floor, in-process: JSON.parse + JSON.stringify of the same bytes;
//   (2) ours, in-process: decode, admit, encode, as the webhook's handler does (the code as
//       shipped: src/ bundled as dist/ is, bundled.ts), in alternating batches with (1)
//       (interleaved.ts) so that both see the same minutes of the machine;
//   (3) a bare Node HTTPS server (test/bench/bare-server.ts: read, parse, stringify, answer);
//   (4) ours over HTTPS: the built `serve` with --workers 1 and --workers 2; (3) and ours with
//       --workers 1 run side by side and are attacked in alternating rounds at each rate, so
//       that the ratios the issue's targets are stated in come from the same minutes;
//       ours --workers 1 is then started once more as the chart runs it (`--warm-up`, the
//       chart's warmUpSeconds) for its ready time and its first seconds;
//   (5) Istio's own webhook over HTTPS (the oracle's --serve, test/oracle), when it can be built;
// driven by vegeta (scripts/bench-bins.sh) with keep-alive HTTP/1.1 at fixed rates and at its
// maximum, server and load generator pinned to different cores when taskset is there. Both
// injectors run with the same settings (ours with test/oracle/injector-config.yaml) and the
// same certificate. Per server: answered %, p50/p99, server CPU per request (utime + stime of
// all its processes over the attack, from /proc), RSS idle and peak, ready time; and the
// ratios ours/bare and ours/Istio. The layout and the parsing are in table.ts.
//
// Env: BENCH_DURATION (s per rate, 5), BENCH_TIMEOUT (s, 10: the API server's default for a
// webhook), BENCH_RATES (500,1000,2000,max), BENCH_MAX_WORKERS (vegeta's workers for "max",
// 8), BENCH_ROUNDS (rounds of (3) and of (4) --workers 1 at each rate, 3), BENCH_WARMUP (s at
// 200/s for a server restarted after a collapse or while still busy, 1),
// BENCH_INPROC_SECONDS (2, per column), BENCH_PIN (0: no taskset), BENCH_ISTIO (0: no Istio
// column), BENCH_ISTIO_BUILD_SECONDS (how long the oracle's build may take before the column
// is skipped, 300), BENCH_FIXTURE (pod).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "../support/https.js";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parse as parseYaml } from "yaml";
import { bundledEngine } from "./bundled.js";
import { interleaved } from "./interleaved.js";
import {
  COLUMNS,
  combineRounds,
  FRESH_RATE,
  cpuTicks,
  parseVegetaReport,
  rateName,
  renderTable,
  roundRatios,
  tableRows,
  type BenchResults,
  type RateResult,
  type ServerResult,
  type VegetaSummary,
} from "./table.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    console.error(`${name}=${JSON.stringify(raw.slice(0, 40))}: expected a number ≥ ${min}`);
    process.exit(2);
  }
  return n;
}

const duration = envNumber("BENCH_DURATION", 5, 1);
const warmup = envNumber("BENCH_WARMUP", 1, 0);
const inProcessSeconds = envNumber("BENCH_INPROC_SECONDS", 2, 0.1);
const maxWorkers = envNumber("BENCH_MAX_WORKERS", 8, 1);
const istioBuildSeconds = envNumber("BENCH_ISTIO_BUILD_SECONDS", 300, 1);
const timeout = envNumber("BENCH_TIMEOUT", 10, 1);
const rounds = Math.round(envNumber("BENCH_ROUNDS", 3, 1));
const rates = (process.env.BENCH_RATES ?? "500,1000,2000,max").split(",").map((r) => r.trim());
for (const r of rates) {
  if (r !== "max" && !(Number.isInteger(Number(r)) && Number(r) > 0)) {
    console.error(
      `BENCH_RATES: ${JSON.stringify(r.slice(0, 40))} is neither a positive whole rate per second nor "max"`,
    );
    process.exit(2);
  }
}
const fixture = process.env.BENCH_FIXTURE ?? "pod";
if (!/^[a-z0-9-]+$/.test(fixture)) {
  console.error(
    `BENCH_FIXTURE=${JSON.stringify(fixture.slice(0, 40))}: expected the name of a test/fixtures/admission-review-<name>.json`,
  );
  process.exit(2);
}
const fixtureFile = join(root, "test", "fixtures", `admission-review-${fixture}.json`);
const body = readFileSync(fixtureFile);
const configFile = join(root, "test", "oracle", "injector-config.yaml");
/** The chart's warm-up (values.yaml's warmUpSeconds), for the "with --warm-up" rows. */
const warmUp = `${String((parseYaml(readFileSync(join(root, "charts", "sidecar-injector", "values.yaml"), "utf8")) as { warmUpSeconds: number }).warmUpSeconds)}s`;
const work = mkdtempSync(join(tmpdir(), "bench-table-"));
const certDir = join(work, "certs");
const children = new Set<ChildProcess>();
const notes: string[] = [];

process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

// --- helpers -------------------------------------------------------------------------------

/** Runs a command to its end (or kills its process group after timeoutMs): status, stdout, stderr. */
function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            if (child.pid === undefined) return;
            try {
              process.kill(-child.pid, "SIGKILL");
            } catch {
              // already gone
            }
          }, opts.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      done({ status: null, stdout, stderr: stderr + e.message, timedOut });
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr, timedOut });
    });
    if (child.stdin !== null) {
      child.stdin.on("error", () => undefined); // a command that does not read its input
      child.stdin.end(opts.input);
    }
  });
}

const lastLine = (s: string): string => s.trim().split("\n").pop() ?? "";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pids of a process and all its descendants (the workers of `serve --workers N`). */
function tree(pid: number): number[] {
  const out = [pid];
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean))
      out.push(...tree(Number(c)));
  } catch {
    // ended meanwhile
  }
  return out;
}

function rssMiB(pid: number): number {
  let kib = 0;
  for (const p of tree(pid)) {
    try {
      kib += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // ended meanwhile
    }
  }
  return kib / 1024;
}

function treeTicks(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      ticks += cpuTicks(readFileSync(`/proc/${p}/stat`, "utf8"));
    } catch {
      // ended meanwhile
    }
  }
  return ticks;
}

function readyz(url: string): Promise<boolean> {
  return request(`${url}/readyz`, { insecure: true, timeoutMs: 1000 }).then(
    (r) => r.status === 200,
    () => false,
  );
}

// --- environment ---------------------------------------------------------------------------

const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
const cores = availableParallelism();
const clockTicks = Number(lastLine((await run("getconf", ["CLK_TCK"])).stdout)) || 100;
const pinWanted = process.env.BENCH_PIN !== "0";
const tasksetOk = pinWanted && cores >= 2 && (await run("taskset", ["-c", "0", "true"])).status === 0;
const serverPin = tasksetOk ? ["taskset", "-c", "0"] : [];
const clientPin = tasksetOk ? ["taskset", "-c", "1"] : [];
const pinning = tasksetOk
  ? "servers (all their processes) on CPU 0, vegeta on CPU 1 (taskset -c)"
  : `none (${!pinWanted ? "BENCH_PIN=0" : cores < 2 ? "one core" : "taskset unavailable"})`;
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const loadAtStart = load();

const vegetaRun = await run(join(root, "scripts", "bench-bins.sh"), [], { timeoutMs: 600_000 });
const vegeta = vegetaRun.status === 0 ? lastLine(vegetaRun.stdout) : undefined;
if (vegeta === undefined)
  notes.push(
    `HTTP columns skipped: no vegeta (scripts/bench-bins.sh: ${lastLine(vegetaRun.stderr) || `exit ${vegetaRun.status}`})`,
  );

let istio: string | undefined;
if (process.env.BENCH_ISTIO === "0") notes.push("Istio column skipped: BENCH_ISTIO=0");
else if (vegeta !== undefined) {
  const b = await run(join(root, "test", "oracle", "build.sh"), [], { timeoutMs: istioBuildSeconds * 1000 });
  if (b.status === 0) istio = lastLine(b.stdout);
  else if (b.timedOut)
    notes.push(
      `Istio column skipped: building the oracle took over ${istioBuildSeconds} s (BENCH_ISTIO_BUILD_SECONDS); run test/oracle/build.sh once`,
    );
  else notes.push(`Istio column skipped: test/oracle/build.sh failed (${lastLine(b.stderr) || `exit ${b.status}`})`);
}

// Per server: start, idle sample and its first attack (FRESH_RATE, just started); per attack,
// the attack, its last answers and the wait for the server to be idle again (≤ 5 s). The bare
// server and ours (--workers 1) are attacked `rounds` times at each rate, the others once. A
// server falling behind adds up to the request timeout per rate. Measured on the busy 2-core
// machine: up to 8 s to start, sample and stop a server, 2 s per attack beyond its duration,
// 10 s for the tool checks and the first start of ours.
const httpServers = vegeta === undefined ? 0 : 3 + (istio === undefined ? 0 : 1);
const attacksPerRate = vegeta === undefined ? 0 : 2 * rounds + 1 + (istio === undefined ? 0 : 1);
const httpSeconds = (extra: number): number =>
  httpServers * (8 + duration + 2 + extra) + attacksPerRate * rates.length * (duration + 2 + extra);
// Worst case: every attack waits for the timeout, then 5 s for the server to be idle, then for a
// restarted one.
const boundSeconds = Math.ceil(2 * inProcessSeconds + 10 + httpSeconds(0));
const worstSeconds = Math.ceil(2 * inProcessSeconds + 10 + httpSeconds(timeout + 5 + 8 + warmup));
console.log(
  `sidecar-injector bench: ${cpuModel}, ${cores} cores, node ${process.version}, load average ${loadAtStart}`,
);
console.log(
  `fixture test/fixtures/admission-review-${fixture}.json (${body.length} bytes); ${duration} s per rate (the bare server and ours --workers 1 in ${rounds} alternating rounds each, after each server's first ${duration} s at ${FRESH_RATE}/s as soon as it is ready), ${timeout} s request timeout; pinning: ${pinning}; about ${boundSeconds} s in all, at most ${worstSeconds} s when servers fall behind`,
);

// --- in-process ----------------------------------------------------------------------------

// The code as shipped (bundled as dist/ is, bundled.ts), as the servers below run it.
const { answerReview, decodeAdmissionReview, loadConfig } = await bundledEngine();
const config = await loadConfig(configFile);
const results: { -readonly [K in keyof BenchResults]: BenchResults[K] } = { warmUp };
const floor = (): void => void JSON.stringify(JSON.parse(body.toString("utf8")));
// As the handler answers: the review's bytes (admission/answer.ts).
const answer = (): void => void answerReview(decodeAdmissionReview(body), { config });
for (let i = 0; i < 2000; i++) {
  floor();
  answer();
}
// Side by side, in alternating batches: a VM whose speed drifts moves both alike.
[results.floorUs, results.oursInProcessUs] = interleaved([floor, answer], 2 * inProcessSeconds * 1000);

// --- over HTTPS ----------------------------------------------------------------------------

interface Served {
  readonly name: string;
  readonly url: string;
  /** The server's stderr, in the scratch folder. */
  readonly log: string;
  start(): ChildProcess;
}

const basePort = 21000 + Math.floor(Math.random() * 1000);
const certFile = join(certDir, "tls.crt");
const keyFile = join(certDir, "tls.key");
const caFile = join(certDir, "ca.crt");

/** Spawns a server (pinned when pinning is on), its stderr into LOG in the scratch folder. */
function spawnServer(argv: readonly string[], log: string): ChildProcess {
  const [cmd, ...args] = [...serverPin, ...argv];
  const child = spawn(cmd ?? process.execPath, args, { stdio: ["ignore", "ignore", openSync(join(work, log), "a")] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The last line a server wrote to its log, for a message. */
function logTail(log: string): string {
  try {
    return lastLine(readFileSync(join(work, log), "utf8")).slice(0, 200);
  } catch {
    return "";
  }
}

/** Spawn → first 200 from /readyz, ms; throws after 30 s. */
async function readyAfter(child: ChildProcess, url: string, t0: number, log: string): Promise<number> {
  while (performance.now() - t0 < 30_000) {
    if (child.exitCode !== null)
      throw new Error(`exited with status ${child.exitCode} before it was ready: ${logTail(log)}`);
    if (await readyz(url)) return performance.now() - t0;
    await sleep(10);
  }
  throw new Error(`not ready within 30 s: ${logTail(log)}`);
}

/**
 * Waits up to 5 s until the server's processes are idle — at most one clock tick of CPU in
 * 250 ms — so that requests still queued from one attack (whose clients gave up) are not
 * counted in the next; false when still busy.
 */
async function settle(pid: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    const before = treeTicks(pid);
    await sleep(250);
    if (treeTicks(pid) - before <= 1) return true;
  }
  return false;
}

function oursServed(workers: number, port: number, extra: readonly string[] = []): Served {
  const url = `https://127.0.0.1:${port}`;
  return {
    name: `ours --workers ${workers}${extra.length > 0 ? ` ${extra.join(" ")}` : ""}`,
    url,
    log: `ours-${workers}.log`,
    start: () =>
      spawnServer(
        [
          process.execPath,
          join(root, "dist", "cli.js"),
          "serve",
          "--port",
          String(port),
          "--cert-dir",
          certDir,
          "--log-level",
          "warn",
          "--workers",
          String(workers),
          "--config",
          configFile,
          ...extra,
        ],
        `ours-${workers}.log`,
      ),
  };
}

async function attack(url: string, rate: string, seconds: number, out: string): Promise<void> {
  const rateArgs =
    rate === "max" ? ["-rate=0", `-max-workers=${maxWorkers}`, `-workers=${maxWorkers}`] : [`-rate=${rate}/1s`];
  const [cmd, ...args] = [
    ...clientPin,
    vegeta ?? "vegeta",
    "attack",
    ...rateArgs,
    `-duration=${seconds}s`,
    "-keepalive=true",
    "-http2=false",
    `-root-certs=${caFile}`,
    `-timeout=${timeout}s`,
    `-body=${fixtureFile}`,
    "-header=Content-Type: application/json",
    `-output=${out}`,
  ];
  const r = await run(cmd ?? "vegeta", args, { input: `POST ${url}/inject\n`, timeoutMs: (seconds + 30) * 1000 });
  if (r.status !== 0) throw new Error(`vegeta attack failed: ${lastLine(r.stderr) || `exit ${r.status}`}`);
}

/** POSTs the fixture once: status and body. */
function postOnce(url: string): Promise<{ status: number; body: string }> {
  return request(`${url}/inject`, {
    ca: readFileSync(caFile),
    headers: { "content-type": "application/json" },
    body,
  });
}

/** The answer's size; for an injector, it must allow the Pod with a patch. */
async function checkedAnswer(served: Served, injector: boolean): Promise<number> {
  const answer = await postOnce(served.url);
  if (answer.status !== 200) throw new Error(`answered the fixture with status ${answer.status}`);
  if (injector) {
    const review: unknown = JSON.parse(answer.body);
    const response =
      typeof review === "object" && review !== null && "response" in review ? review.response : undefined;
    const ok =
      typeof response === "object" &&
      response !== null &&
      "allowed" in response &&
      response.allowed === true &&
      "patch" in response &&
      typeof response.patch === "string";
    if (!ok) throw new Error("did not answer the fixture with an allowed review and a patch");
  }
  return answer.body.length;
}

/** A server under measurement: its process, and what each round at each rate gave. */
interface Measured {
  readonly served: Served;
  child: ChildProcess;
  readonly readyMs: number;
  readonly answerBytes: number;
  readonly idleRssMiB: number;
  peakRssMiB: number;
  /** Its first attack, at FRESH_RATE, just after it was ready. */
  fresh?: RateResult;
  /** The fixed rate at which it answered under half, if any. */
  collapsedAt?: string;
  readonly rounds: Map<string, RateResult[]>;
}

const pidOf = (m: Measured): number => m.child.pid ?? 0;

/**
 * Starts a server (ready time, its answer checked, idle RSS) and puts it in `measured` (whose
 * RSS the caller samples), then gives it its first attack, just started.
 */
async function begin(served: Served, injector: boolean, measured: (Measured | undefined)[]): Promise<void> {
  const t0 = performance.now();
  const child = served.start();
  let m: Measured;
  try {
    const readyMs = await readyAfter(child, served.url, t0, served.log);
    const answerBytes = await checkedAnswer(served, injector);
    await sleep(500);
    const idleRssMiB = rssMiB(child.pid ?? 0);
    m = { served, child, readyMs, answerBytes, idleRssMiB, peakRssMiB: idleRssMiB, rounds: new Map() };
  } catch (e) {
    await stop(child);
    throw e;
  }
  measured.push(m);
  // The others share its core: each idle first.
  for (const o of measured) if (o !== undefined && o !== m) await restartIfBusy(o, "another's first attack");
  // Its first seconds, as a new replica sees them: code not yet optimised by the JIT. They
  // also warm it up for the rates measured after.
  m.fresh = await measuredAttack(served, pidOf(m), FRESH_RATE, "fresh");
  reportAttack(served, `${FRESH_RATE}/s, just started`, m.fresh.summary);
}

/** Kills a server (all its processes) and starts it again, warmed up briefly; noted with why. */
async function restart(m: Measured, why: string): Promise<void> {
  notes.push(`${m.served.name}: restarted ${why}`);
  const old = m.child;
  const exited = old.exitCode !== null || old.signalCode !== null ? undefined : new Promise((r) => old.once("exit", r));
  for (const p of tree(pidOf(m)).reverse()) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // ended meanwhile
    }
  }
  await exited;
  const t1 = performance.now();
  m.child = m.served.start();
  await readyAfter(m.child, m.served.url, t1, m.served.log);
  if (warmup > 0) await attack(m.served.url, "200", warmup, join(work, "warmup.bin"));
}

/** Waits for a server to be idle; one still busy after settle's 5 s is restarted. */
async function restartIfBusy(m: Measured, before: string): Promise<void> {
  if (!(await settle(pidOf(m)))) await restart(m, `before ${before}, still busy with requests left from an attack`);
}

/**
 * One attack at one rate, once every server on the core is idle. A server that answers under
 * half at a fixed rate is restarted at once (its backlog would run during the next attack, on
 * the same core) and skips its remaining rounds at that rate and the higher fixed rates.
 */
async function attackRound(
  m: Measured,
  rate: string,
  measured: readonly (Measured | undefined)[],
  times: number,
): Promise<void> {
  const { served } = m;
  const label = rateName(rate);
  if (m.collapsedAt !== undefined && rate !== "max") {
    const note = `${served.name}: its remaining attacks at ${label} skipped, under half answered at ${m.collapsedAt}/s`;
    if (!notes.includes(note)) notes.push(note);
    return;
  }
  for (const o of measured) if (o !== undefined) await restartIfBusy(o, `${served.name} at ${label}`);
  const result = await measuredAttack(served, pidOf(m), rate, rate);
  const list = m.rounds.get(rate) ?? [];
  list.push(result);
  m.rounds.set(rate, list);
  const { summary } = result;
  reportAttack(served, `${label}${times > 1 ? ` (round ${list.length})` : ""}`, summary);
  if (rate !== "max" && summary.answered * 2 < summary.requests) {
    m.collapsedAt = rate;
    await restart(m, `after the collapse at ${label}`);
  }
}

/** One attack of `duration` s at `rate` on the server whose processes are under `pid`: what vegeta saw, and the CPU. */
async function measuredAttack(served: Served, pid: number, rate: string, name: string): Promise<RateResult> {
  const out = join(work, `${served.log}-${name}.bin`);
  const before = treeTicks(pid);
  await attack(served.url, rate, duration, out);
  const ticks = treeTicks(pid) - before;
  const report = await run(vegeta ?? "vegeta", ["report", "-type=json", out]);
  if (report.status !== 0) throw new Error(`vegeta report failed: ${lastLine(report.stderr)}`);
  const summary = parseVegetaReport(report.stdout);
  return { summary, cpuUsPerRequest: summary.requests > 0 ? (ticks * 1e6) / clockTicks / summary.requests : NaN };
}

/**
 * Starts a server alone on its core and gives it its first attack as soon as it is ready, then
 * stops it: the ready time and the attack, or nothing when it would not start.
 */
async function measureWarmed(served: Served): Promise<Pick<ServerResult, "warmedReadyMs" | "warmedFresh">> {
  const t0 = performance.now();
  const child = served.start();
  try {
    const warmedReadyMs = await readyAfter(child, served.url, t0, served.log);
    const warmedFresh = await measuredAttack(served, child.pid ?? 0, FRESH_RATE, "fresh");
    reportAttack(served, `${FRESH_RATE}/s, just started`, warmedFresh.summary);
    return { warmedReadyMs, warmedFresh };
  } catch (e) {
    notes.push(`${served.name}: not measured: ${e instanceof Error ? e.message : String(e)}`);
    return {};
  } finally {
    await stop(child);
  }
}

/** One attack's line on stderr, as the table's run goes. */
function reportAttack(served: Served, what: string, summary: VegetaSummary): void {
  process.stderr.write(
    `  ${served.name} at ${what}: ${summary.answered}/${summary.requests} answered, p50 ${summary.p50Ms.toFixed(2)} ms, p99 ${summary.p99Ms.toFixed(2)} ms, mean answer ${summary.meanAnswerBytes.toFixed(0)} bytes\n`,
  );
}

/**
 * Measures servers together: each started and given its first attack, then at each rate
 * `times` rounds, each attacking every server in turn, the order turned round by round. Only
 * the server under attack works; the others wait idle on the same core. A server that cannot
 * start or be attacked is left out (undefined), with a note.
 */
async function measureTogether(
  list: readonly (readonly [Served, boolean])[],
  times: number,
): Promise<(Measured | undefined)[]> {
  const measured: (Measured | undefined)[] = [];
  const sampler = setInterval(() => {
    for (const m of measured) if (m !== undefined) m.peakRssMiB = Math.max(m.peakRssMiB, rssMiB(pidOf(m)));
  }, 100);
  try {
    for (const [served, injector] of list) {
      const at = measured.length;
      try {
        await begin(served, injector, measured);
      } catch (e) {
        notes.push(`${served.name} skipped: ${(e as Error).message}`);
        const m = measured[at];
        if (m !== undefined) await stop(m.child);
        measured[at] = undefined;
      }
    }
    for (const rate of rates) {
      for (let round = 0; round < times; round++) {
        for (let j = 0; j < measured.length; j++) {
          const k = (round + j) % measured.length;
          const m = measured[k];
          if (m === undefined) continue;
          try {
            await attackRound(m, rate, measured, times);
          } catch (e) {
            notes.push(`${m.served.name} skipped: ${(e as Error).message}`);
            await stop(m.child);
            measured[k] = undefined;
          }
        }
      }
    }
    return measured;
  } finally {
    clearInterval(sampler);
    for (const m of measured) if (m !== undefined) await stop(m.child);
  }
}

/** What the table shows of a measured server: each rate's rounds combined. */
function resultOf(m: Measured): ServerResult {
  const byRate = new Map<string, RateResult>();
  for (const [rate, list] of m.rounds) byRate.set(rate, combineRounds(list));
  return {
    readyMs: m.readyMs,
    idleRssMiB: m.idleRssMiB,
    peakRssMiB: m.peakRssMiB,
    answerBytes: m.answerBytes,
    ...(m.fresh === undefined ? {} : { fresh: m.fresh }),
    rates: byRate,
  };
}

if (vegeta !== undefined) {
  // Ours first, in an empty certificate folder: it generates the CA and the serving
  // certificate every server then uses.
  const cold = oursServed(1, basePort);
  const t0 = performance.now();
  const first = cold.start();
  let readyWithCertsMs: number | undefined;
  try {
    readyWithCertsMs = await readyAfter(first, cold.url, t0, cold.log);
  } finally {
    await stop(first);
  }

  // The bare server as plain JavaScript, so no TypeScript loader sits in its process.
  const bareJs = join(work, "bare-server.mjs");
  writeFileSync(
    bareJs,
    ts.transpileModule(readFileSync(join(here, "bare-server.ts"), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText,
  );
  const bareUrl = `https://127.0.0.1:${basePort + 1}`;
  const bare: Served = {
    name: "bare Node HTTPS",
    url: bareUrl,
    log: "bare.log",
    start: () => spawnServer([process.execPath, bareJs, String(basePort + 1), certFile, keyFile], "bare.log"),
  };
  // The two the targets compare, in alternating rounds: their ratios come from the same minutes.
  const [b, o1] = await measureTogether(
    [
      [bare, false],
      [oursServed(1, basePort + 2), true],
    ],
    rounds,
  );
  if (b !== undefined) results.bare = resultOf(b);
  // Ours again as the chart runs it, warmed up before it is ready: its ready time and first seconds.
  const warmed = await measureWarmed(oursServed(1, basePort + 5, ["--warm-up", warmUp]));
  if (o1 !== undefined) results.ours1 = { ...resultOf(o1), readyWithCertsMs, ...warmed };
  if (b !== undefined && o1 !== undefined) results.oursOverBare = roundRatios(o1.rounds, b.rounds);
  const [o2] = await measureTogether([[oursServed(2, basePort + 3), true]], 1);
  if (o2 !== undefined) results.ours2 = resultOf(o2);
  if (istio !== undefined) {
    const url = `https://127.0.0.1:${basePort + 4}`;
    const start = (): ChildProcess =>
      spawnServer(
        [istio ?? "", "--serve", `127.0.0.1:${basePort + 4}`, "--tls-cert", certFile, "--tls-key", keyFile],
        "istio.log",
      );
    const [i] = await measureTogether([[{ name: "Istio webhook", url, log: "istio.log", start }, true]], 1);
    if (i !== undefined) results.istio = resultOf(i);
  }
}

// --- the table -----------------------------------------------------------------------------

console.log("");
console.log(renderTable(COLUMNS, tableRows(results, rates)));
console.log("");
console.log(
  `ours/bare and ours/Istio are --workers 1 over the other (in-process: ours over the floor); at each rate, ours/bare is the median of the ratios of the rounds both had (up to ${rounds}), and the two servers' figures the medians of their rounds (answered %: of all rounds' requests, and its ratio of those). CPU µs/req: user + system time of all the server's processes during the attack, per request sent. "max": vegeta -rate=0 with ${maxWorkers} workers. Load average at the end: ${load()}.`,
);
for (const n of notes) console.log(`note: ${n}`);
