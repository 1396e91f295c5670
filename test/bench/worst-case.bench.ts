// Worst-case benchmark: hostile AdmissionReviews of every shape we can think of, up to the
// 6 MiB body limit, through what the webhook runs per review (decodeAdmissionReview, admit,
// the answer serialised), plus the CLI's and /preview's parse paths. Prints, per case, the
// input size, the time one review holds the event loop (median and max), and the answer size;
// then the slowest case. Target: no review holds the event loop over 50 ms.
// Run: node --import tsx test/bench/worst-case.bench.ts [filter]   (BENCH_RUNS=5 per case)
import { admit, decodeAdmissionReview } from "../../src/admission/review.js";
import { buildConfig } from "../../src/config/load.js";
import type { Container, Pod } from "../../src/kube/types.js";
import { parseManifest } from "../../src/manifest.js";
import { parsePreviewInput } from "../../src/preview.js";
import { podReview } from "../support/review.js";

const MIB = 1024 * 1024;
const BODY_LIMIT = 6 * MIB;
const TARGET_MS = 50;
const runs = Number(process.env.BENCH_RUNS ?? "5");
const filter = process.argv[2];
const config = buildConfig({ nativeSidecars: "true" });

function pod(spec: Partial<Pod["spec"]> & object = {}, annotations: Record<string, string> = {}, extra: Record<string, unknown> = {}): Pod {
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
const container = (i: number, extra: Record<string, unknown> = {}): Container => ({ ...extra, name: `c${i}`, image: "example.com/app:1" });
const httpProbe = (port: number): Record<string, unknown> => ({ httpGet: { path: "/healthz", port }, periodSeconds: 10 });

type Case = { name: string; kind: "review" | "cli" | "preview-json" | "preview-yaml"; input: () => string };

const annotated = (a: Record<string, string>): (() => string) => () => review(pod({}, a));

const CASES: Case[] = [
  // --- quantities ---
  { name: "proxyCPU 1e30000000", kind: "review", input: annotated({ "sidecar.istio.io/proxyCPU": "1e30000000" }) },
  { name: "proxyCPU 1e10000000", kind: "review", input: annotated({ "sidecar.istio.io/proxyCPU": "1e10000000" }) },
  { name: "proxyMemory 64 digits + Ei", kind: "review", input: annotated({ "sidecar.istio.io/proxyMemory": `${"9".repeat(62)}Ei` }) },
  { name: "proxyCPU 0.000…1 (5 MiB of zeros)", kind: "review", input: () => fill((n) => review(pod({}, { "sidecar.istio.io/proxyCPU": `0.${"0".repeat(n)}1` }))) },
  { name: "proxyMemoryLimit 1 + 5 MiB of zeros", kind: "review", input: () => fill((n) => review(pod({}, { "sidecar.istio.io/proxyMemoryLimit": `1${"0".repeat(n)}` }))) },
  {
    name: "istio-proxy resources: hostile quantities",
    kind: "review",
    input: () =>
      fill((n) =>
        review(pod({ containers: [{ name: "app", image: "x" }, { name: "istio-proxy", image: "auto", resources: { requests: Object.fromEntries(range(n).map((i) => [`r${i}/x`, `${i}e999`])) } }] })),
      ),
  },
  // --- proxy.istio.io/config ---
  { name: "proxy config: 20k keys (190 KB)", kind: "review", input: annotated({ "proxy.istio.io/config": range(20_000).map((i) => `k${i}: ${i}`).join("\n") }) },
  { name: "proxy config: 255 keys (at the limit)", kind: "review", input: annotated({ "proxy.istio.io/config": range(255).map((i) => `k${i}: ${i}`).join("\n") }) },
  { name: "proxy config: 250-item flow list (at the limit)", kind: "review", input: annotated({ "proxy.istio.io/config": `a: [${range(250).map((i) => `${i}`).join(",")}]` }) },
  { name: "proxy config: deep flow map (5 MiB)", kind: "review", input: () => fill((n) => review(pod({}, { "proxy.istio.io/config": "{a: ".repeat(n) + "1" + "}".repeat(n) }))) },
  { name: "proxy config: deep block map (16 KiB)", kind: "review", input: annotated({ "proxy.istio.io/config": range(170).map((i) => `${" ".repeat(i)}a:`).join("\n") + " 1" }) },
  { name: "proxy config: aliases", kind: "review", input: annotated({ "proxy.istio.io/config": `a: &x [1,2,3]\n${range(15).map((i) => `b${i}: *x`).join("\n")}` }) },
  { name: "proxy config: 5 MiB JSON", kind: "review", input: () => fill((n) => review(pod({}, { "proxy.istio.io/config": JSON.stringify({ proxyMetadata: Object.fromEntries(range(n).map((i) => [`K${i}`, "v"])) }) }))) },
  // --- the Pod's shape ---
  { name: "many containers", kind: "review", input: () => fill((n) => review(pod({ containers: range(n).map((i) => container(i)) }))) },
  { name: "many init containers", kind: "review", input: () => fill((n) => review(pod({ initContainers: range(n).map((i) => container(i)) }))) },
  { name: "many ports", kind: "review", input: () => fill((n) => review(pod({ containers: [container(0, { ports: range(n).map((i) => ({ containerPort: (i % 65535) + 1, name: `p${i}` })) })] }))) },
  {
    name: "many probes (3 per container)",
    kind: "review",
    input: () => fill((n) => review(pod({ containers: range(n).map((i) => container(i, { livenessProbe: httpProbe(8080), readinessProbe: httpProbe(8081), startupProbe: httpProbe(8082) })) }))),
  },
  { name: "huge env list", kind: "review", input: () => fill((n) => review(pod({ containers: [container(0, { env: range(n).map((i) => ({ name: `V${i}`, value: "x" })) })] }))) },
  { name: "many volumes", kind: "review", input: () => fill((n) => review(pod({ volumes: range(n).map((i) => ({ name: `v${i}`, emptyDir: {} })) }))) },
  { name: "long annotation value (5 MiB)", kind: "review", input: () => fill((n) => review(pod({}, { "example.com/blob": "x".repeat(n) }))) },
  { name: "many annotations", kind: "review", input: () => fill((n) => review(pod({}, Object.fromEntries(range(n).map((i) => [`example.com/a${i}`, "v"]))))) },
  { name: "many labels", kind: "review", input: () => fill((n) => review({ ...pod(), metadata: { name: "x", labels: Object.fromEntries(range(n).map((i) => [`l${i}`, "v"])) } } as Pod)) },
  { name: "excludeOutboundIPRanges: many CIDRs", kind: "review", input: () => fill((n) => review(pod({}, { "traffic.sidecar.istio.io/excludeOutboundIPRanges": range(n).map((i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`).join(",") }))) },
  { name: "excludeInboundPorts: many ports", kind: "review", input: () => fill((n) => review(pod({}, { "traffic.sidecar.istio.io/excludeInboundPorts": range(n).map((i) => String((i % 65535) + 1)).join(",") }))) },
  { name: "userVolume: huge JSON map", kind: "review", input: () => fill((n) => review(pod({}, { "sidecar.istio.io/userVolume": JSON.stringify(Object.fromEntries(range(n).map((i) => [`v${i}`, { emptyDir: {} }]))) }))) },
  // Quadratic (merge.ts mergeList): at 6 MiB one review takes minutes, so 256 KiB, the API
  // server's limit on all annotations, shows the trend.
  { name: "overrides annotation: 256 KiB env", kind: "review", input: () => fill((n) => review(pod({}, { "proxy.istio.io/overrides": JSON.stringify({ containers: [{ name: "istio-proxy", env: range(n).map((i) => ({ name: `V${i}`, value: "x" })) }] }) })), 256 * 1024) },
  { name: "deep JSON in an unknown field (10k levels)", kind: "review", input: () => review(pod()).replace('"spec":', `"deep":${"[".repeat(10_000)}${"]".repeat(10_000)},"spec":`) },
  { name: "deep JSON in an unknown field (6 MiB)", kind: "review", input: () => fill((n) => review(pod()).replace('"spec":', `"deep":${"[".repeat(n)}${"]".repeat(n)},"spec":`)) },
  // --- the CLI (inject -f) and /preview parse paths ---
  { name: "cli: 6 MiB of small documents", kind: "cli", input: () => fill((n) => range(n).map((i) => `a: ${i}`).join("\n---\n")) },
  { name: "cli: deep flow (6 MiB)", kind: "cli", input: () => fill((n) => "[".repeat(n) + "]".repeat(n)) },
  { name: "cli: compact deep seq", kind: "cli", input: () => fill((n) => "- ".repeat(n) + "1") },
  { name: "cli: billion laughs", kind: "cli", input: () => ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]", ...range(8).map((i) => `a${i + 1}: &a${i + 1} [${range(10).map(() => `*a${i}`).join(",")}]`)].join("\n") },
  { name: "preview yaml: 999 keys (at the limit)", kind: "preview-yaml", input: () => range(999).map((i) => `k${i}: ${i}`).join("\n") },
  { name: "preview yaml: 6 MiB of keys", kind: "preview-yaml", input: () => fill((n) => range(n).map((i) => `k${i}: ${i}`).join("\n")) },
  { name: "preview json: deep brackets (6 MiB)", kind: "preview-json", input: () => fill((n) => "[".repeat(n) + "]".repeat(n)) },
  { name: "preview json: 6 MiB pod, many containers", kind: "preview-json", input: () => fill((n) => JSON.stringify(pod({ containers: range(n).map((i) => container(i)) }))) },
];

function once(c: Case, input: string): { ms: number; answer: number; outcome: string } {
  const start = process.hrtime.bigint();
  let answer = 0;
  let outcome: string;
  try {
    if (c.kind === "review") {
      const out = admit(decodeAdmissionReview(input), { config });
      const text = JSON.stringify(out.review);
      answer = text.length;
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
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, answer, outcome };
}

console.log(`node ${process.version}, ${runs} runs per case, target ${TARGET_MS} ms per review`);
console.log(`${"case".padEnd(46)} ${"input B".padStart(9)} ${"median ms".padStart(10)} ${"max ms".padStart(8)} ${"answer B".padStart(9)}  outcome`);
let slowest = { name: "", ms: 0 };
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
  if (max > TARGET_MS) over.push(`${c.name} (${max.toFixed(1)} ms)`);
  console.log(
    `${c.name.padEnd(46)} ${String(input.length).padStart(9)} ${median.toFixed(1).padStart(10)} ${max.toFixed(1).padStart(8)} ${String(last.answer).padStart(9)}  ${last.outcome}`,
  );
}
console.log(`\nslowest: ${slowest.name} (${slowest.ms.toFixed(1)} ms max)`);
console.log(over.length === 0 ? `every case within ${TARGET_MS} ms` : `over ${TARGET_MS} ms: ${over.join("; ")}`);
