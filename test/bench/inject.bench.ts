// Benchmark of the injection engine and of the work the webhook does per review (parse the
// AdmissionReview JSON, inject, serialise the patch), without the network.
// Run: npm run bench   (BENCH_SECONDS=2 per case by default)
import { podReview } from "../support/review.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { admit, decodeAdmissionReview } from "../../src/admission/review.js";
import { buildConfig } from "../../src/config/load.js";
import { inject } from "../../src/injection/inject.js";
import type { Pod } from "../../src/kube/types.js";
import { parseManifest } from "../../src/manifest.js";

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? "2");
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
  const p = (q: number): string => (samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0).toFixed(1);
  console.log(`${name.padEnd(42)} ${String(n).padStart(8)} ops   median ${p(0.5).padStart(7)} µs   p99 ${p(0.99).padStart(7)} µs`);
}

console.log(`node ${process.version}, ${seconds}s per case`);
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
  run(`recorded review: ${name}`, () => {
    const out = admit(decodeAdmissionReview(body), { config });
    void JSON.stringify(out.review);
  });
}
