// What one review costs the server, against the floor: the built `serve` (one process, default
// log level, metrics on) and the bare Node HTTPS server of bare-server.ts, started side by
// side, each pinned to one core (SERVER_CPU) while this process, the load, runs on another
// (CLIENT_CPU). Both get the same keep-alive HTTP/1.1 load of one fixture, in alternating
// rounds, and the medians over the rounds are printed:
//   - at a fixed rate (RATE, default 1000/s, open loop: latency counted from when a request was
//     due, so a stalled server is not hidden by a client that waits for it): server CPU per
//     request, from /proc/<pid>/stat utime+stime over the run, and p50/p99/max latency;
//   - flat out (CONNECTIONS back-to-back): requests per second, and CPU per request again.
// The machine's load average is printed before and after: others may be using it.
// With PROFILE=DIR, `serve` runs with --cpu-prof into DIR, and the profile's self time is
// printed by what it is spent in (framework, logging, metrics, JSON, TLS, engine, GC ...).
// With SERVE_NODE_FLAGS, those node flags are given to `serve` (e.g. --max-semi-space-size=16);
// with SERVE_ARGS, those arguments too (e.g. `--log-level warn`: what the log line costs, with
// BASE_CLI set to the same build). With PROFILE_BARE=DIR, the bare server runs with --cpu-prof.
// With SERVE_STDOUT=FILE, what `serve` writes on stdout goes to FILE (its log lines, and the
// lines of SERVE_NODE_FLAGS=--trace-gc: how often the young and old generations are collected);
// `base` (below) writes to FILE.base.
// With THREADS=1, each server's CPU and context switches per request are printed by thread
// (main, libuv's pool, V8's workers): what the event loop's own profile does not see; with
// THREADS_BY_ID=1 too, each thread on its own.
// With BARE=engine, `bare` is bare-engine-server.ts: the bare server with our engine inside,
// so that serve / bare is what the server around the engine costs.
// With BASE_CLI=<another build's dist/cli.js>, that build runs too, as `base`, in the same
// rounds: before and after a change, measured on the same busy machine at the same time.
//
// Run: npm run build && node --import tsx test/bench/profile-serve.ts
//      (ROUNDS=3, SECONDS=5, RATE=1000, CONNECTIONS=16, FIXTURE=pod, SERVER_CPU=0, CLIENT_CPU=1)
// Loopback only; every loop bounded in time; both servers stopped at the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { median } from "./table.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const env = process.env;
const rounds = Number(env.ROUNDS ?? "3");
const seconds = Number(env.SECONDS ?? "5");
const rate = Number(env.RATE ?? "1000");
const connections = Number(env.CONNECTIONS ?? "16");
const fixture = env.FIXTURE ?? "pod";
const serverCpu = env.SERVER_CPU ?? "0";
const clientCpu = env.CLIENT_CPU ?? "1";
const profileDir = env.PROFILE;
const serveNodeFlags = (env.SERVE_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
const baseCli = env.BASE_CLI;
const serveStdout = env.SERVE_STDOUT;
const threadsShown = env.THREADS === "1";
const TICKS_PER_SECOND = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || "100");
const pinning = spawnSync("taskset", ["--version"]).status === 0;

const body = readFileSync(join(root, "test", "fixtures", `admission-review-${fixture}.json`));
const head = Buffer.from(
  `POST /inject HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
);
const requestBytes = Buffer.concat([head, body]);

/** utime + stime of a process (all its threads), in seconds. */
function cpuSeconds(pid: number, file = `/proc/${pid}/stat`): number {
  const stat = readFileSync(file, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Each thread's name, CPU seconds and context switches: where a process's CPU goes by thread. */
function threadTimes(pid: number): Map<string, { cpu: number; switches: number }> {
  const out = new Map<string, { cpu: number; switches: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const cpu = cpuSeconds(Number(tid), `/proc/${pid}/task/${tid}/stat`);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      const switches = [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      const key = tid === String(pid) ? "main" : env.THREADS_BY_ID === "1" ? `${name}:${tid}` : name;
      const seen = out.get(key) ?? { cpu: 0, switches: 0 };
      out.set(key, { cpu: seen.cpu + cpu, switches: seen.switches + switches });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** The threads' CPU µs and context switches per request between two threadTimes. */
function perThread(
  before: Map<string, { cpu: number; switches: number }>,
  after: Map<string, { cpu: number; switches: number }>,
  requests: number,
): string {
  return [...after]
    .map(([name, a]) => {
      const b = before.get(name) ?? { cpu: 0, switches: 0 };
      return { name, cpu: ((a.cpu - b.cpu) * 1e6) / requests, switches: (a.switches - b.switches) / requests };
    })
    .filter((t) => t.cpu > 0 || t.switches > 0.01)
    .sort((x, y) => y.cpu - x.cpu)
    .map((t) => `${t.name} ${t.cpu.toFixed(0)} µs ${t.switches.toFixed(2)} sw`)
    .join(", ");
}

const loadavg = (): string => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

// --- the load: raw keep-alive HTTP/1.1 over TLS, one request at a time per connection -------

interface Conn {
  readonly socket: TLSSocket;
  busy: boolean;
  /** When the request being answered was due (ms, performance.now()). */
  due: number;
  buffered: Buffer;
  onAnswer: (status: number) => void;
}

function openConn(port: number, ca: Buffer, onAnswer: (c: Conn, status: number) => void): Promise<Conn> {
  return new Promise((ok, fail) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => ok(conn));
    const conn: Conn = { socket, busy: false, due: 0, buffered: Buffer.alloc(0), onAnswer: (s) => onAnswer(conn, s) };
    socket.on("error", fail);
    socket.on("data", (d: Buffer) => {
      conn.buffered = conn.buffered.length === 0 ? d : Buffer.concat([conn.buffered, d]);
      for (;;) {
        const end = conn.buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        const headers = conn.buffered.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headers)?.[1] ?? "0");
        if (conn.buffered.length < end + 4 + length) return;
        conn.buffered = conn.buffered.subarray(end + 4 + length);
        conn.busy = false;
        conn.onAnswer(Number(headers.slice(9, 12)));
      }
    });
  });
}

function send(c: Conn, due: number): void {
  c.busy = true;
  c.due = due;
  c.socket.write(requestBytes);
}

interface LoadResult {
  readonly answered: number;
  readonly failed: number;
  /** Latencies in ms, sorted. */
  readonly latencies: Float64Array;
  readonly cpuUsPerRequest: number;
  readonly perSecond: number;
}

const pct = (sorted: Float64Array, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Fixed rate (open loop) when `perSecond` is given, else flat out on every connection. */
async function load(port: number, pid: number, ca: Buffer, perSecond: number | undefined): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  const queue: number[] = [];
  let running = true;
  const conns: Conn[] = [];
  const answered = (c: Conn, status: number): void => {
    if (status === 200) latencies.push(performance.now() - c.due);
    else failed++;
    if (!running) return;
    if (perSecond === undefined) send(c, performance.now());
    else if (queue.length > 0) send(c, queue.shift() ?? 0);
  };
  for (let i = 0; i < connections; i++) conns.push(await openConn(port, ca, answered));
  // Warm-up on every connection: the JIT, the engine's caches, TLS sessions.
  const warm = Date.now() + 1000;
  while (Date.now() < warm) {
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((ok) => {
            c.onAnswer = () => ok();
            send(c, performance.now());
          }),
      ),
    );
  }
  for (const c of conns) c.onAnswer = (s) => answered(c, s);

  const cpu0 = cpuSeconds(pid);
  const threads0 = threadsShown ? threadTimes(pid) : undefined;
  const start = performance.now();
  const end = start + seconds * 1000;
  if (perSecond === undefined) {
    for (const c of conns) send(c, performance.now());
    await new Promise((r) => setTimeout(r, seconds * 1000));
  } else {
    let sent = 0;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) / 1000) * perSecond);
      for (; sent < due; sent++) {
        const at = start + (sent * 1000) / perSecond;
        const idle = conns.find((c) => !c.busy);
        if (idle === undefined) queue.push(at);
        else send(idle, at);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  if (threads0 !== undefined)
    console.log(
      `    threads of ${pid} (${perSecond === undefined ? "flat out" : `${perSecond}/s`}): ${perThread(threads0, threadTimes(pid), Math.max(1, latencies.length))}`,
    );
  // Let what is in flight finish (bounded), then close.
  const drainUntil = Date.now() + 5000;
  while (conns.some((c) => c.busy) && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
  for (const c of conns) c.socket.destroy();
  const n = latencies.length;
  return {
    answered: n,
    failed: failed + queue.length,
    latencies: Float64Array.from(latencies).sort(),
    cpuUsPerRequest: (cpu * 1e6) / Math.max(1, n),
    perSecond: n / elapsed,
  };
}

// --- the two servers ------------------------------------------------------------------------

interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
}

const pinned = (cmd: string, args: string[]): [string, string[]] =>
  pinning ? ["taskset", ["-c", serverCpu, cmd, ...args]] : [cmd, args];

async function untilReady(port: number, ca: Buffer, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready`);
    const ok = await new Promise<boolean>((done) => {
      const s = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
        s.end("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      });
      let text = "";
      s.on("data", (d: Buffer) => (text += d.toString("latin1")));
      s.on("close", () => done(text.startsWith("HTTP/1.1 200")));
      s.on("error", () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready on port ${port}`);
}

async function startServe(name: string, cli: string, dir: string, port: number): Promise<Started> {
  const flags = [
    ...serveNodeFlags,
    ...(profileDir === undefined || name !== "serve" ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir]),
  ];
  const [cmd, args] = pinned(process.execPath, [
    ...flags,
    cli,
    "serve",
    "--port",
    String(port),
    "--cert-dir",
    join(dir, "certs"),
    ...(name === "serve" ? (env.SERVE_ARGS ?? "").split(/\s+/).filter(Boolean) : []),
  ]);
  // Its log lines go to a pipe that is read, as a container runtime reads them (or to a file).
  const outFile = serveStdout === undefined ? undefined : name === "serve" ? serveStdout : `${serveStdout}.${name}`;
  const out = outFile === undefined ? "pipe" : openSync(outFile, "w");
  const child = spawn(cmd, args, { stdio: ["ignore", out, "inherit"] });
  child.stdout?.resume();
  // The certificates appear once it started; wait for the CA file, then for /readyz.
  const deadline = Date.now() + 30_000;
  while (!existsSync(join(dir, "certs", "tls.crt")) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  await untilReady(port, readFileSync(join(dir, "certs", "ca.crt")), child, name);
  return { name, child, port };
}

async function startBare(dir: string): Promise<Started> {
  const [cmd, args] = pinned(process.execPath, [
    ...(env.PROFILE_BARE === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", env.PROFILE_BARE]),
    "--import",
    "tsx",
    join(here, env.BARE === "engine" ? "bare-engine-server.ts" : "bare-server.ts"),
    "0",
    join(dir, "certs", "tls.crt"),
    join(dir, "certs", "tls.key"),
  ]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], cwd: root });
  const port = await new Promise<number>((ok, fail) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    child.once("exit", (code) => fail(new Error(`bare server exited with ${code}`)));
  });
  return { name: "bare", child, port };
}

function stop(s: Started): Promise<void> {
  if (s.child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => s.child.kill("SIGKILL"), 20_000);
    s.child.once("exit", () => {
      clearTimeout(kill);
      done();
    });
    s.child.kill("SIGTERM");
  });
}

// --- the profile, by what the time is spent in ----------------------------------------------

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const CATEGORIES: readonly (readonly [string, RegExp])[] = [
  [
    "express/router",
    /node_modules\/(express|router|body-parser|finalhandler|send|serve-static|qs|type-is|content-type|accepts|negotiator|mime-types|mime-db|media-typer|on-finished|parseurl|path-to-regexp|proxy-addr|forwarded|ipaddr\.js|vary|etag|fresh|range-parser|cookie|cookie-signature|encodeurl|escape-html|statuses|depd|http-errors|raw-body|debug|ms|merge-descriptors|utils-merge|methods|content-disposition|safe-buffer|setprototypeof|inherits|toidentifier|iconv-lite|unpipe|destroy|ee-first|bytes|is-promise|once|wrappy|call-bound|get-intrinsic|side-channel|es-)/,
  ],
  [
    "pino (logging)",
    /node_modules\/(pino|sonic-boom|fast-redact|@pinojs|quick-format-unescaped|atomic-sleep|safe-stable-stringify|on-exit-leak-free|thread-stream|real-require|process-warning)/,
  ],
  ["prom-client (metrics)", /node_modules\/(prom-client|tdigest|bintrees)/],
  ["engine (injection/)", /\/dist\/injection\//],
  ["admission/", /\/dist\/admission\//],
  ["tls", /node:(_tls_wrap|tls|internal\/tls)/],
  [
    "node http",
    /node:(_http|http|internal\/http|internal\/streams|stream|events|net|internal\/stream_base_commons|internal\/timers|timers)/,
  ],
];

function summarise(file: string): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)?.callFrame ?? { functionName: "?", url: "", lineNumber: 0 };
    if (functionName === "(idle)") continue;
    busy += us;
    const category =
      functionName === "(garbage collector)"
        ? "GC"
        : functionName === "(program)"
          ? "(program: native, unattributed)"
          : url === ""
            ? "native builtins (JSON, Buffer, crypto ...)"
            : (CATEGORIES.find(([, re]) => re.test(url))?.[0] ?? "other JS");
    categories.set(category, (categories.get(category) ?? 0) + us);
    const key = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  console.log(`\nprofile ${file}: ${(busy / 1e6).toFixed(2)} s busy (self time)`);
  for (const [name, us] of [...categories].sort((a, b) => b[1] - a[1]))
    console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
  console.log("  top functions:");
  for (const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, 30))
    console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
}

// --- the run --------------------------------------------------------------------------------

if (!existsSync(join(root, "dist", "cli.js"))) throw new Error("dist/cli.js is missing: npm run build first");
if (pinning) spawnSync("taskset", ["-a", "-cp", clientCpu, String(process.pid)], { stdio: "ignore" });
const dir = mkdtempSync(join(tmpdir(), "profile-serve-"));
const servers: Started[] = [];
try {
  console.log(
    `node ${process.version}; ${pinning ? `servers on cpu ${serverCpu}, load on cpu ${clientCpu}` : "no taskset: nothing pinned"}; fixture ${fixture}; ${rounds} rounds of ${seconds} s; ${connections} keep-alive connections; load average ${loadavg()}${serveNodeFlags.length > 0 ? `; serve with ${serveNodeFlags.join(" ")}` : ""}`,
  );
  const port = 21000 + Math.floor(Math.random() * 1000);
  servers.push(await startServe("serve", join(root, "dist", "cli.js"), dir, port));
  // The same certificate folder: the first one started made it, the others load it.
  if (baseCli !== undefined) servers.push(await startServe("base", resolve(baseCli), dir, port + 1));
  servers.push(await startBare(dir));
  const ca = readFileSync(join(dir, "certs", "ca.crt"));
  const results = new Map<string, { fixed: LoadResult[]; max: LoadResult[] }>(
    servers.map((s) => [s.name, { fixed: [], max: [] }]),
  );
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so that neither always runs on a machine the other warmed.
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      const pid = s.child.pid ?? 0;
      const fixed = await load(s.port, pid, ca, rate);
      const max = await load(s.port, pid, ca, undefined);
      results.get(s.name)?.fixed.push(fixed);
      results.get(s.name)?.max.push(max);
      console.log(
        `  round ${r + 1} ${s.name.padEnd(5)}  ${rate}/s: ${fixed.cpuUsPerRequest.toFixed(0).padStart(4)} µs CPU/req  p50 ${pct(fixed.latencies, 0.5).toFixed(2)}  p99 ${pct(fixed.latencies, 0.99).toFixed(2)}  max ${pct(fixed.latencies, 1).toFixed(1)} ms${fixed.failed ? `  ${fixed.failed} failed` : ""}   flat out: ${max.perSecond.toFixed(0).padStart(6)}/s  ${max.cpuUsPerRequest.toFixed(0)} µs CPU/req${max.failed ? `  ${max.failed} failed` : ""}   load ${loadavg()}`,
      );
    }
  }
  console.log(`\nmedians over ${rounds} rounds (load average now ${loadavg()}):`);
  console.log(`  server  CPU µs/req @${rate}/s  p50 ms  p99 ms  max req/s (1 core)  CPU µs/req flat out`);
  for (const [name, { fixed, max }] of results) {
    console.log(
      `  ${name.padEnd(6)}  ${median(fixed.map((f) => f.cpuUsPerRequest))
        .toFixed(0)
        .padStart(18)}  ${median(fixed.map((f) => pct(f.latencies, 0.5)))
        .toFixed(2)
        .padStart(6)}  ${median(fixed.map((f) => pct(f.latencies, 0.99)))
        .toFixed(2)
        .padStart(6)}  ${median(max.map((m) => m.perSecond))
        .toFixed(0)
        .padStart(18)}  ${median(max.map((m) => m.cpuUsPerRequest))
        .toFixed(0)
        .padStart(19)}`,
    );
  }
  const cpu = (name: string, which: "fixed" | "max"): number =>
    median(results.get(name)?.[which].map((f) => f.cpuUsPerRequest) ?? []);
  const perSecond = (name: string): number => median(results.get(name)?.max.map((m) => m.perSecond) ?? []);
  // Each round's own ratio too: the load others put on the machine drifts from round to round,
  // and a round's servers ran back to back under much the same load.
  const perRound = (name: string, other: string, f: (r: LoadResult) => number): number => {
    const mine = results.get(name)?.max ?? [];
    const theirs = results.get(other)?.max ?? [];
    return median(mine.map((r, i) => f(r) / f(theirs[i] ?? r)));
  };
  for (const name of ["serve", "base"].filter((n) => results.has(n))) {
    console.log(
      `  ${name} / bare: CPU per request ${(cpu(name, "fixed") / cpu("bare", "fixed")).toFixed(2)}× at ${rate}/s, ${(cpu(name, "max") / cpu("bare", "max")).toFixed(2)}× flat out (median of the rounds' own ratios ${perRound(name, "bare", (r) => r.cpuUsPerRequest).toFixed(2)}×); throughput per core ${((100 * perSecond(name)) / perSecond("bare")).toFixed(0)} % of bare`,
    );
  }
  if (results.has("base")) {
    console.log(
      `  serve / base: CPU per request flat out, median of the rounds' own ratios ${perRound("serve", "base", (r) => r.cpuUsPerRequest).toFixed(2)}×`,
    );
  }
} finally {
  await Promise.all(servers.map(stop));
  rmSync(dir, { recursive: true, force: true });
}
const servePid = servers[0]?.child.pid;
if (profileDir !== undefined && servePid !== undefined) {
  // Node names the file CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
  for (const f of readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile") && f.includes(`.${servePid}.`)))
    summarise(join(profileDir, f));
}
