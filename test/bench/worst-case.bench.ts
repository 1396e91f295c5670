// Worst-case benchmark: hostile AdmissionReviews of every shape we can think of, up to the
// 6 MiB body limit, plus the CLI's and /preview's parse paths.
//
// Each case is measured twice:
// - engine: the CPU time of what the webhook runs per review (decodeAdmissionReview, admit,
//   the answer serialised), in this thread, median of BENCH_RUNS; CPU rather than wall time, so
//   that the figure holds on a machine whose cores are busy with other work;
// - through the real server (runServe: HTTPS, express, body limits, the worker thread that
//   answers reviews of 64 KiB or more), sent by a client on its own thread: the answer time, and
//   the longest the server's event loop (this thread) was held while it came in, was answered
//   and went out (a 1 ms monitorEventLoopDelay histogram, its max).
// Prints one table, the slowest review, and the longest event-loop block. Targets: no review
// holds the event loop over 50 ms; engine time per KiB flat across sizes.
// Run: node --import tsx test/bench/worst-case.bench.ts [filter]   (BENCH_RUNS=5 per case)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Worker } from "node:worker_threads";
import { answerReview, decodeAdmissionReview } from "../../src/admission/review.js";
import { buildConfig } from "../../src/config/load.js";
import type { Container, Pod } from "../../src/kube/types.js";
import { parseManifest } from "../../src/manifest.js";
import { parsePreviewInput } from "../../src/preview.js";
import { runServe } from "../../src/main.js";
import { podReview } from "../support/review.js";

const MIB = 1024 * 1024;
const BODY_LIMIT = 6 * MIB;
/** The longest the server's event loop may be held by one review. */
const TARGET_MS = 50;
const runs = Number(process.env.BENCH_RUNS ?? "5");
const filter = process.argv[2];
const config = buildConfig({ nativeSidecars: "true" });

function pod(
  spec: Partial<Pod["spec"]> & object = {},
  annotations: Record<string, string> = {},
  extra: Record<string, unknown> = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "hostile", namespace: "bench", labels: { app: "hostile" }, annotations },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }], ...spec },
    ...extra,
  } as Pod;
}

function review(p: Pod): string {
  return JSON.stringify(podReview({ uid: "0e3f4b8a-1", namespace: "bench", object: p }));
}

/** The largest n for which make(n) stays within the body limit (doubling, then bisection). */
function fill(make: (n: number) => string, limit = BODY_LIMIT - 4096): string {
  let lo = 1;
  let hi = 2;
  while (make(hi).length <= limit) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (make(mid).length <= limit) lo = mid;
    else hi = mid;
  }
  return make(lo);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const container = (i: number, extra: Record<string, unknown> = {}): Container => ({
  ...extra,
  name: `c${i}`,
  image: "example.com/app:1",
});
const httpProbe = (port: number): Record<string, unknown> => ({
  httpGet: { path: "/healthz", port },
  periodSeconds: 10,
});

type Case = { name: string; kind: "review" | "cli" | "preview-json" | "preview-yaml"; input: () => string };

const annotated =
  (a: Record<string, string>): (() => string) =>
  () =>
    review(pod({}, a));

const CASES: Case[] = [
  // --- quantities ---
  { name: "proxyCPU 1e30000000", kind: "review", input: annotated({ "sidecar.istio.io/proxyCPU": "1e30000000" }) },
  { name: "proxyCPU 1e10000000", kind: "review", input: annotated({ "sidecar.istio.io/proxyCPU": "1e10000000" }) },
  {
    name: "proxyMemory 64 digits + Ei",
    kind: "review",
    input: annotated({ "sidecar.istio.io/proxyMemory": `${"9".repeat(62)}Ei` }),
  },
  {
    name: "proxyCPU 0.000…1 (5 MiB of zeros)",
    kind: "review",
    input: () => fill((n) => review(pod({}, { "sidecar.istio.io/proxyCPU": `0.${"0".repeat(n)}1` }))),
  },
  {
    name: "proxyMemoryLimit 1 + 5 MiB of zeros",
    kind: "review",
    input: () => fill((n) => review(pod({}, { "sidecar.istio.io/proxyMemoryLimit": `1${"0".repeat(n)}` }))),
  },
  {
    name: "istio-proxy resources: hostile quantities",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod({
            containers: [
              { name: "app", image: "x" },
              {
                name: "istio-proxy",
                image: "auto",
                resources: { requests: Object.fromEntries(range(n).map((i) => [`r${i}/x`, `${i}e999`])) },
              },
            ],
          }),
        ),
      ),
  },
  // --- proxy.istio.io/config ---
  {
    name: "proxy config: 20k keys (190 KB)",
    kind: "review",
    input: annotated({
      "proxy.istio.io/config": range(20_000)
        .map((i) => `k${i}: ${i}`)
        .join("\n"),
    }),
  },
  {
    name: "proxy config: 255 keys",
    kind: "review",
    input: annotated({
      "proxy.istio.io/config": range(255)
        .map((i) => `k${i}: ${i}`)
        .join("\n"),
    }),
  },
  {
    name: "proxy config: 250-item flow list",
    kind: "review",
    input: annotated({
      "proxy.istio.io/config": `a: [${range(250)
        .map((i) => `${i}`)
        .join(",")}]`,
    }),
  },
  {
    name: "proxy config: 255 KiB flow list (on the worker)",
    kind: "review",
    input: annotated({ "proxy.istio.io/config": `extraStatTags: [${"a,".repeat(255 * 512)}a]` }),
  },
  {
    name: "proxy config: 1 KiB flow list (the most answered on the event loop)",
    kind: "review",
    input: annotated({ "proxy.istio.io/config": `extraStatTags: [${"a,".repeat(503)}a]` }),
  },
  {
    name: "proxy config: deep flow map (5 MiB)",
    kind: "review",
    input: () => fill((n) => review(pod({}, { "proxy.istio.io/config": "{a: ".repeat(n) + "1" + "}".repeat(n) }))),
  },
  {
    name: "proxy config: deep block map (16 KiB)",
    kind: "review",
    input: annotated({
      "proxy.istio.io/config":
        range(170)
          .map((i) => `${" ".repeat(i)}a:`)
          .join("\n") + " 1",
    }),
  },
  {
    name: "proxy config: aliases",
    kind: "review",
    input: annotated({
      "proxy.istio.io/config": `a: &x [1,2,3]\n${range(15)
        .map((i) => `b${i}: *x`)
        .join("\n")}`,
    }),
  },
  {
    name: "proxy config: 5 MiB JSON",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod(
            {},
            {
              "proxy.istio.io/config": JSON.stringify({
                proxyMetadata: Object.fromEntries(range(n).map((i) => [`K${i}`, "v"])),
              }),
            },
          ),
        ),
      ),
  },
  // --- the Pod's shape ---
  {
    name: "many containers",
    kind: "review",
    input: () => fill((n) => review(pod({ containers: range(n).map((i) => container(i)) }))),
  },
  {
    name: "many init containers",
    kind: "review",
    input: () => fill((n) => review(pod({ initContainers: range(n).map((i) => container(i)) }))),
  },
  {
    name: "many ports",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod({
            containers: [
              container(0, { ports: range(n).map((i) => ({ containerPort: (i % 65535) + 1, name: `p${i}` })) }),
            ],
          }),
        ),
      ),
  },
  {
    name: "many probes (3 per container)",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod({
            containers: range(n).map((i) =>
              container(i, {
                livenessProbe: httpProbe(8080),
                readinessProbe: httpProbe(8081),
                startupProbe: httpProbe(8082),
              }),
            ),
          }),
        ),
      ),
  },
  {
    name: "huge env list",
    kind: "review",
    input: () =>
      fill((n) =>
        review(pod({ containers: [container(0, { env: range(n).map((i) => ({ name: `V${i}`, value: "x" })) })] })),
      ),
  },
  {
    name: "many volumes",
    kind: "review",
    input: () => fill((n) => review(pod({ volumes: range(n).map((i) => ({ name: `v${i}`, emptyDir: {} })) }))),
  },
  {
    name: "long annotation value (5 MiB)",
    kind: "review",
    input: () => fill((n) => review(pod({}, { "example.com/blob": "x".repeat(n) }))),
  },
  {
    name: "many annotations",
    kind: "review",
    input: () => fill((n) => review(pod({}, Object.fromEntries(range(n).map((i) => [`example.com/a${i}`, "v"]))))),
  },
  {
    name: "many annotations (256 KiB, accepted)",
    kind: "review",
    input: () =>
      fill((n) => review(pod({}, Object.fromEntries(range(n).map((i) => [`example.com/a${i}`, "v"])))), 200 * 1024),
  },
  {
    name: "many labels",
    kind: "review",
    input: () =>
      fill((n) =>
        review({
          ...pod(),
          metadata: { name: "x", labels: Object.fromEntries(range(n).map((i) => [`l${i}`, "v"])) },
        } as Pod),
      ),
  },
  {
    name: "excludeOutboundIPRanges: many CIDRs",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod(
            {},
            {
              "traffic.sidecar.istio.io/excludeOutboundIPRanges": range(n)
                .map((i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`)
                .join(","),
            },
          ),
        ),
      ),
  },
  {
    name: "excludeInboundPorts: many ports",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod(
            {},
            {
              "traffic.sidecar.istio.io/excludeInboundPorts": range(n)
                .map((i) => String((i % 65535) + 1))
                .join(","),
            },
          ),
        ),
      ),
  },
  {
    name: "userVolume: huge JSON map",
    kind: "review",
    input: () =>
      fill((n) =>
        review(
          pod(
            {},
            {
              "sidecar.istio.io/userVolume": JSON.stringify(
                Object.fromEntries(range(n).map((i) => [`v${i}`, { emptyDir: {} }])),
              ),
            },
          ),
        ),
      ),
  },
  // Quadratic once (merge.ts, its list merge): at 6 MiB one review takes minutes, so 256 KiB, the API
  // server's limit on all annotations, shows the trend.
  {
    name: "overrides annotation: 256 KiB env",
    kind: "review",
    input: () =>
      fill(
        (n) =>
          review(
            pod(
              {},
              {
                "proxy.istio.io/overrides": JSON.stringify({
                  containers: [{ name: "istio-proxy", env: range(n).map((i) => ({ name: `V${i}`, value: "x" })) }],
                }),
              },
            ),
          ),
        256 * 1024,
      ),
  },
  {
    name: "deep JSON in an unknown field (10k levels)",
    kind: "review",
    input: () => review(pod()).replace('"spec":', `"deep":${"[".repeat(10_000)}${"]".repeat(10_000)},"spec":`),
  },
  {
    name: "deep JSON in an unknown field (6 MiB)",
    kind: "review",
    input: () => fill((n) => review(pod()).replace('"spec":', `"deep":${"[".repeat(n)}${"]".repeat(n)},"spec":`)),
  },
  // --- the CLI (inject -f) and /preview parse paths ---
  {
    name: "cli: 6 MiB of small documents",
    kind: "cli",
    input: () =>
      fill((n) =>
        range(n)
          .map((i) => `a: ${i}`)
          .join("\n---\n"),
      ),
  },
  { name: "cli: deep flow (6 MiB)", kind: "cli", input: () => fill((n) => "[".repeat(n) + "]".repeat(n)) },
  { name: "cli: compact deep seq", kind: "cli", input: () => fill((n) => "- ".repeat(n) + "1") },
  {
    name: "cli: billion laughs",
    kind: "cli",
    input: () =>
      [
        "a0: &a0 [x,x,x,x,x,x,x,x,x,x]",
        ...range(8).map(
          (i) =>
            `a${i + 1}: &a${i + 1} [${range(10)
              .map(() => `*a${i}`)
              .join(",")}]`,
        ),
      ].join("\n"),
  },
  {
    name: "preview yaml: 999 keys (at the limit)",
    kind: "preview-yaml",
    input: () =>
      range(999)
        .map((i) => `k${i}: ${i}`)
        .join("\n"),
  },
  {
    name: "preview yaml: 6 MiB of keys",
    kind: "preview-yaml",
    input: () =>
      fill((n) =>
        range(n)
          .map((i) => `k${i}: ${i}`)
          .join("\n"),
      ),
  },
  {
    name: "preview json: deep brackets (6 MiB)",
    kind: "preview-json",
    input: () => fill((n) => "[".repeat(n) + "]".repeat(n)),
  },
  {
    name: "preview json: 6 MiB pod, many containers",
    kind: "preview-json",
    input: () => fill((n) => JSON.stringify(pod({ containers: range(n).map((i) => container(i)) }))),
  },
];

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function once(c: Case, input: string): { ms: number; answer: number; outcome: string } {
  const start = cpuMs();
  let answer = 0;
  let outcome: string;
  try {
    if (c.kind === "review") {
      const out = answerReview(decodeAdmissionReview(input), { config });
      answer = out.body.length;
      outcome = out.outcome.decision;
    } else if (c.kind === "cli") {
      const docs = parseManifest(input, "bench.yaml");
      outcome = `${docs.length} docs`;
    } else {
      const docs = parsePreviewInput(input, c.kind === "preview-json" ? "json" : "yaml");
      outcome = `${docs.length} docs`;
    }
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    outcome = `refused: ${m.slice(0, 60)}`;
    answer = m.length;
  }
  return { ms: cpuMs() - start, answer, outcome };
}

// The client: its own thread with its own event loop, so that sending 6 MiB and reading the
// answer does not count against the server's loop. Plain JavaScript (no TypeScript loader).
const CLIENT = `
const { parentPort, workerData } = require("node:worker_threads");
const https = require("node:https");
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: workerData.ca });
parentPort.on("message", ({ path, contentType, body }) => {
  const started = performance.now();
  const req = https.request(workerData.url + path, { method: "POST", agent, headers: { "content-type": contentType, "content-length": body.byteLength } }, (res) => {
    let bytes = 0;
    res.on("data", (d) => (bytes += d.length));
    res.on("end", () => parentPort.postMessage({ status: res.statusCode, bytes, ms: performance.now() - started }));
  });
  req.on("error", (e) => parentPort.postMessage({ status: 0, bytes: 0, ms: performance.now() - started, error: e.message }));
  req.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
});
`;

interface Answer {
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
  readonly error?: string;
}

const dir = mkdtempSync(join(tmpdir(), "bench-worst-"));
writeFileSync(join(dir, "config.yaml"), 'nativeSidecars: "true"\n');
const server = await runServe({
  port: 0,
  certDir: join(dir, "certs"),
  logLevel: "silent",
  configFile: join(dir, "config.yaml"),
});
const client = new Worker(CLIENT, {
  eval: true,
  workerData: { url: server.url, ca: readFileSync(join(dir, "certs", "ca.crt")) },
});

/**
 * This thread's time on a CPU, in ms (Linux: the scheduler's schedstat of the main thread,
 * whose id is the process id), or undefined elsewhere.
 */
function threadCpuMs(): number | undefined {
  try {
    const run = Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
    return Number.isFinite(run) ? run / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A 1 ms interval on the server's event loop. Between two ticks the loop was held: `wallMs` is
 * the longest such gap, and `cpuMs` the most CPU this thread spent within one gap. On a machine
 * whose cores are busy with other work, a gap is mostly waiting for a core, however little the
 * server does; its CPU time is what the server's own work held the loop.
 */
class LoopProbe {
  wallMs = 0;
  cpuMs = 0;
  #lastWall = performance.now();
  #lastCpu = threadCpuMs();
  readonly #timer = setInterval(() => this.#tick(), 1);

  #tick(): void {
    const wall = performance.now();
    const cpu = threadCpuMs();
    this.wallMs = Math.max(this.wallMs, wall - this.#lastWall);
    if (cpu !== undefined && this.#lastCpu !== undefined) this.cpuMs = Math.max(this.cpuMs, cpu - this.#lastCpu);
    this.#lastWall = wall;
    this.#lastCpu = cpu;
  }

  reset(): void {
    this.#tick();
    this.wallMs = 0;
    this.cpuMs = 0;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
const probe = new LoopProbe();
const measuresCpu = threadCpuMs() !== undefined;

interface Served extends Answer {
  /** The event loop's longest block: wall time, and this thread's CPU time within it. */
  readonly blockMs: number;
  readonly blockCpuMs: number;
}

// The engine runs of each case leave this thread's heap full of garbage; collected before a
// request is served, so that the server is not charged with collecting the benchmark's.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** One request through the server: the answer, and the event loop's longest block meanwhile. */
async function serve(path: string, contentType: string, input: string): Promise<Served> {
  const body = new Uint8Array(Buffer.from(input, "utf8"));
  collectGarbage();
  const answered = new Promise<Answer>((resolve) => client.once("message", resolve));
  client.postMessage({ path, contentType, body });
  probe.reset();
  const answer = await answered;
  await sleep(5); // a block just after the answer (logging, metrics) shows at the next tick
  return { ...answer, blockMs: probe.wallMs, blockCpuMs: measuresCpu ? probe.cpuMs : probe.wallMs };
}

const ROUTES: Readonly<Record<Case["kind"], { path: string; contentType: string } | undefined>> = {
  review: { path: "/inject", contentType: "application/json" },
  "preview-json": { path: "/preview", contentType: "application/json" },
  "preview-yaml": { path: "/preview", contentType: "application/yaml" },
  cli: undefined, // offline only
};

try {
  console.log(
    `node ${process.version}, ${runs} runs per case; engine: CPU ms in-process (median, max); server: HTTPS to ${server.url}, answer ms and the event loop's longest block`,
  );
  console.log(
    "loop ms: the event loop's longest block during the review, wall time; cpu: this thread's CPU time within that block (what the server's own work held it)",
  );
  console.log(
    `${"case".padEnd(46)} ${"body B".padStart(9)} ${"engine ms".padStart(10)} ${"max".padStart(7)} ${"µs/KiB".padStart(7)} ${"answer ms".padStart(10)} ${"loop ms".padStart(8)} ${"cpu".padStart(6)} ${"status".padStart(6)} ${"answer B".padStart(9)}  outcome`,
  );
  let slowest = { name: "", ms: 0 };
  let blocked = { name: "", ms: 0 };
  const over: string[] = [];
  for (const c of CASES) {
    if (filter && !c.name.includes(filter)) continue;
    const input = c.input();
    const times: number[] = [];
    let last = once(c, input); // warm-up, not counted
    for (let i = 0; i < runs; i++) {
      last = once(c, input);
      times.push(last.ms);
      if (last.ms > 2000 && i >= 1) break; // a case this slow has made its point
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? 0;
    const max = times[times.length - 1] ?? 0;
    if (max > slowest.ms) slowest = { name: c.name, ms: max };
    const perKiB = (median * 1000) / (Buffer.byteLength(input) / 1024);

    const route = ROUTES[c.kind];
    let served = "";
    if (route) {
      await serve(route.path, route.contentType, input); // warm-up: the worker thread starts on first use
      const a = await serve(route.path, route.contentType, input);
      if (a.blockCpuMs > blocked.ms) blocked = { name: c.name, ms: a.blockCpuMs };
      if (a.blockCpuMs > TARGET_MS) over.push(`${c.name} (${a.blockCpuMs.toFixed(1)} ms)`);
      served = `${a.ms.toFixed(1).padStart(10)} ${a.blockMs.toFixed(1).padStart(8)} ${a.blockCpuMs.toFixed(1).padStart(6)} ${String(a.status).padStart(6)} ${String(a.bytes).padStart(9)}`;
    } else
      served = `${"-".padStart(10)} ${"-".padStart(8)} ${"-".padStart(6)} ${"-".padStart(6)} ${String(last.answer).padStart(9)}`;
    console.log(
      `${c.name.padEnd(46)} ${String(input.length).padStart(9)} ${median.toFixed(1).padStart(10)} ${max.toFixed(1).padStart(7)} ${perKiB.toFixed(0).padStart(7)} ${served}  ${last.outcome}`,
    );
  }
  console.log(`\nslowest review (engine): ${slowest.name} (${slowest.ms.toFixed(1)} ms CPU max)`);
  console.log(`longest event-loop block by the server's own work: ${blocked.name} (${blocked.ms.toFixed(1)} ms)`);
  console.log(
    over.length === 0
      ? `no review held the server's event loop over ${TARGET_MS} ms`
      : `event loop held over ${TARGET_MS} ms: ${over.join("; ")}`,
  );
} finally {
  probe.stop();
  await client.terminate();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
