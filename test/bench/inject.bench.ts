// Benchmark of the injection engine and of the work the webhook does per review (parse the
// AdmissionReview JSON, inject, serialise the patch), without the network.
// Measures the code as shipped: src/ bundled as dist/ is (bundled.ts).
// Run: npm run bench   (BENCH_SECONDS=2 per case by default; BENCH_ONLY=curve for the curve alone;
// BENCH_BASE=<another checkout> for its handler as a further column, see baseHandler)
//
// The curve: the recorded review (test/fixtures/admission-review-pod.json) grown one way at a
// time (containers 1→200, env vars 0→2,000, annotations 0→256 KiB), each measured in process
// (decode → decide → patch → encode, as the webhook's handler runs it) against the floor
// (the same bytes as text, JSON.parse, JSON.stringify), in the same run and interleaved so all
// see the same machine, in CPU time, with the decoding and the engine's time alone, and the
// patch's size.
import { podReview } from "../support/review.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../../src/config/types.js";
import type { Pod, PodSpec } from "../../src/kube/types.js";
import { parseManifest } from "../../src/manifest.js";
import { bundledEngine, bundledExports } from "./bundled.js";
import { interleaved } from "./interleaved.js";

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? "2");
// The code as shipped (bundled as dist/ is): see bundled.ts.
const { answerReview, decodeAdmissionReview, buildConfig, inject } = await bundledEngine();
const config = buildConfig({ nativeSidecars: "true" });

function podFrom(file: string): Pod {
  const [doc] = parseManifest(readFileSync(join(here, "..", "golden", file), "utf8"), file) as Pod[];
  if (!doc) throw new Error(`${file}: empty`);
  return doc;
}

const manyEnv: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "many-env", namespace: "bench", labels: { app: "many" } },
  spec: {
    containers: [
      {
        name: "app",
        image: "example.com/app:1",
        env: Array.from({ length: 2000 }, (_, i) => ({ name: `VAR_${i}`, value: `value-${i}` })),
        ports: [{ name: "http", containerPort: 8080 }],
      },
    ],
  },
};

const cases: [string, Pod][] = [
  ["simple pod", podFrom("native-ordering.yaml")],
  ["probes (5 rewritten)", podFrom("probes.yaml")],
  ["many annotations", podFrom("proxy-settings.yaml")],
  ["re-injection", podFrom("reinject.yaml")],
  ["2000 env vars", manyEnv],
];

function review(pod: Pod): string {
  return JSON.stringify(podReview({ uid: "0e3f4b8a-1", namespace: "bench", object: pod }));
}

function run(name: string, fn: () => void): void {
  for (let i = 0; i < 200; i++) fn(); // warm-up
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 50; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t) / 50 / 1000);
    n += 50;
  }
  samples.sort((a, b) => a - b);
  const p = (q: number): string =>
    (samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0).toFixed(1);
  console.log(
    `${name.padEnd(42)} ${String(n).padStart(8)} ops   median ${p(0.5).padStart(7)} µs   p99 ${p(0.99).padStart(7)} µs`,
  );
}

function runCases(): void {
  for (const [name, pod] of cases) {
    run(`engine: ${name}`, () => void inject(pod, { namespace: "bench" }, config));
  }
  for (const [name, pod] of cases) {
    const body = review(pod);
    run(`review JSON→patch: ${name}`, () => {
      const r = JSON.parse(body) as { request: { object: Pod } };
      const out = inject(r.request.object, { namespace: "bench" }, config);
      void Buffer.from(JSON.stringify(out.patch)).toString("base64");
    });
  }

  // The AdmissionReviews a real kube-apiserver sent (test/fixtures), through the same handler
  // the webhook runs: decode and validate the body, decide, inject, encode the answer.
  for (const name of ["pod", "replicaset-pod", "annotation-opt-out"]) {
    const body = readFileSync(join(here, "..", "fixtures", `admission-review-${name}.json`));
    run(`recorded review: ${name}`, () => void answerReview(decodeAdmissionReview(body), { config }));
  }
}

// --- The curve. ---

interface Shape {
  readonly name: string;
  readonly body: Buffer;
  readonly pod: Pod;
}

type Review = { request: { object: Pod & { spec: PodSpec } } & Record<string, unknown> } & Record<string, unknown>;

const fixture = JSON.parse(readFileSync(join(here, "..", "fixtures", "admission-review-pod.json"), "utf8")) as Review;

/** The fixture's Pod with `containers` application containers (each with a readiness and a liveness probe), `env` env
 * vars on the first, `annotationBytes` of annotations. */
function shape(name: string, containers: number, env: number, annotationBytes: number): Shape {
  const review = structuredClone(fixture);
  const pod = review.request.object;
  const app = pod.spec.containers[0]!;
  pod.spec.containers = Array.from({ length: containers }, (_, i) => {
    const c = structuredClone(app);
    if (containers > 1) {
      c.name = `app-${i}`;
      c.ports = [{ name: "http", containerPort: 8080 + i, protocol: "TCP" }];
      c.readinessProbe = {
        httpGet: { path: "/ready", port: "http", scheme: "HTTP" },
        timeoutSeconds: 1,
        periodSeconds: 10,
        successThreshold: 1,
        failureThreshold: 3,
      };
      c.livenessProbe = {
        tcpSocket: { port: 8080 + i },
        initialDelaySeconds: 5,
        timeoutSeconds: 1,
        periodSeconds: 10,
        successThreshold: 1,
        failureThreshold: 3,
      };
    }
    if (i === 0 && env > 0) c.env = Array.from({ length: env }, (_, j) => ({ name: `VAR_${j}`, value: `value-${j}` }));
    return c;
  });
  if (annotationBytes > 0) {
    const annotations: Record<string, string> = {};
    const value = "x".repeat(200);
    // Up to the API server's 256 KiB, less room for the annotations the injector adds.
    const room = Math.min(annotationBytes, 256 * 1024 - 4096);
    for (let i = 0, bytes = 0; ; i++) {
      const key = `example.com/note-${i}`;
      if ((bytes += key.length + value.length) > room) break;
      annotations[key] = value;
    }
    pod.metadata = { ...pod.metadata, annotations };
  }
  return { name, body: Buffer.from(JSON.stringify(review)), pod };
}

/** The recorded review, as the API server sent it. */
function recorded(): Shape {
  const body = readFileSync(join(here, "..", "fixtures", "admission-review-pod.json"));
  return {
    name: "recorded review (fixture bytes)",
    body,
    pod: (JSON.parse(body.toString("utf8")) as Review).request.object,
  };
}

/**
 * BENCH_BASE=<another checkout of this repository, its node_modules in place>: that build's
 * handler path, bundled as this one's is, as a further column ("base"), interleaved with this
 * one's, for a before and after from the same minutes. A checkout from before answerReview
 * answers as its handler did: the review's text (reviewJson), then its bytes.
 * The column is biased where the work is small: against a second bundle of the same code it
 * measured 17 % slower for the recorded review and 11 % for 10 containers (the two copies
 * share the core's caches), within 1 % from 50 containers up. For a small change to a small
 * review, compare alternating processes instead.
 */
async function baseHandler(): Promise<((body: Buffer) => void) | undefined> {
  const base = process.env.BENCH_BASE;
  if (base === undefined || base === "") return undefined;
  const m = await bundledExports(base);
  const {
    answerReview: answer,
    reviewJson: text,
    admit: admitOld,
    decodeAdmissionReview: decode,
    buildConfig: build,
  } = m;
  if (typeof build !== "function" || typeof decode !== "function") throw new Error(`${base}: not a checkout`);
  const baseConfig: unknown = build({ nativeSidecars: "true" });
  if (typeof answer === "function") return (body) => void answer(decode(body), { config: baseConfig });
  if (typeof text !== "function" || typeof admitOld !== "function") throw new Error(`${base}: no handler path found`);
  return (body) => {
    const out: unknown = admitOld(decode(body), { config: baseConfig });
    void Buffer.from(String(text((out as { review: unknown }).review)));
  };
}

function curve(cfg: Config, base: ((body: Buffer) => void) | undefined): void {
  const shapes: Shape[] = [
    recorded(),
    ...[10, 50, 100, 200].map((n) => shape(`containers ${n}`, n, 0, 0)),
    ...[500, 1000, 2000].map((n) => shape(`env ${n}`, 1, n, 0)),
    ...[16, 64, 256].map((k) => shape(`annotations ${k} KiB`, 1, 0, k * 1024)),
    shape("containers 200, env 2000, annotations 256 KiB", 200, 2000, 256 * 1024),
  ];
  console.log(
    "\nin process (decode → decide → patch → encode) against the floor (the bytes as text, JSON.parse, JSON.stringify), CPU µs per review;",
  );
  console.log(
    "decode and engine are parts of in-process: the rest is encoding the answer (patch → JSON → base64 → AdmissionReview bytes)",
  );
  console.log(
    `${"shape".padEnd(48)} ${"body B".padStart(9)} ${"floor".padStart(8)} ${"in-proc".padStart(8)} ${"ratio".padStart(6)} ${"decode".padStart(8)} ${"engine".padStart(8)} ${"rest".padStart(8)} ${"patch B".padStart(9)} ${"ops".padStart(5)}${base === undefined ? "" : ` ${"base".padStart(8)} ${"ratio".padStart(6)}`}`,
  );
  for (const s of shapes) {
    const result = inject(s.pod, { namespace: "bench" }, cfg);
    const patchBytes = Buffer.byteLength(JSON.stringify(result.patch));
    const [floor = 0, inProcess = 0, decode = 0, engine = 0, before = 0] = interleaved(
      [
        () => void JSON.stringify(JSON.parse(s.body.toString("utf8"))),
        // As the handler answers: the review's bytes (admission/answer.ts).
        () => void answerReview(decodeAdmissionReview(s.body), { config: cfg }),
        () => void decodeAdmissionReview(s.body),
        () => void inject(s.pod, { namespace: "bench" }, cfg),
        ...(base === undefined ? [] : [() => base(s.body)]),
      ],
      seconds * 1000,
    );
    const f = (n: number): string => n.toFixed(1).padStart(8);
    console.log(
      `${s.name.padEnd(48)} ${String(s.body.length).padStart(9)} ${f(floor)} ${f(inProcess)} ${(inProcess / floor).toFixed(2).padStart(6)} ${f(decode)} ${f(engine)} ${f(inProcess - decode - engine)} ${String(patchBytes).padStart(9)} ${String(result.patch.length).padStart(5)}${base === undefined ? "" : ` ${f(before)} ${(before / floor).toFixed(2).padStart(6)}`}`,
    );
  }
}

console.log(`node ${process.version}, ${seconds}s per case`);
const only = process.env.BENCH_ONLY;
if (only !== "curve") runCases();
curve(config, await baseHandler());
