// API-server-side Pod creation latency, three ways, against a real kube-apiserver (v1.34, the
// MutatingAdmissionPolicy feature gate on): no mutation, the MutatingAdmissionPolicy (policy
// render's, for the default config), and our webhook (the built `serve` on 127.0.0.1, the
// chart's MutatingWebhookConfiguration). Each creation is a dry run (`?dryRun=All`: admission,
// defaulting and validation, no etcd write), sequential, of the same covered Pod; the figure
// is the client's round trip, so the three differ by what admission costs. Skipped when the
// cluster binaries cannot be had (see test/e2e/cluster.ts). First, offline, the share of the
// golden and differential corpora in the policy's domain (test/e2e/policy-corpus.ts, as the
// end-to-end proof counts it; the proof shows every covered Pod stored identically).
// Run: npm run bench   (BENCH_POLICY_CREATES, default 300 per mode)
import { parseAllDocuments } from "yaml";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import type { Pod } from "../../src/kube/types.js";
import { renderPolicy } from "../../src/policy/render.js";
import { ClusterUnavailableError, startCluster, type Cluster } from "../e2e/cluster.js";
import { freePort, Injector, testCertificates } from "../e2e/injector.js";
import { createAll, createPod, deleteAll, waitUntil } from "../e2e/policy-api.js";
import { differentialGroup, goldenGroups, type ConfigGroup } from "../e2e/policy-corpus.js";

const creates = Number(process.env.BENCH_POLICY_CREATES ?? "300");
const NS = "bench";
const OWN = "sidecar-injector-system";
const MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

const pod: Pod = {
  metadata: { name: "bench", labels: { app: "bench", version: "v1" } },
  spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080, name: "http" }] }] },
};
const injected = (p: Pod): boolean => p.metadata?.annotations?.["sidecar.istio.io/status"] !== undefined;

async function measure(cluster: Cluster): Promise<{ p50: number; p95: number; p99: number }> {
  for (let i = 0; i < 20; i++) await createPod(cluster, NS, pod, false); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < creates; i++) {
    const t = process.hrtime.bigint();
    const r = await createPod(cluster, NS, pod, false);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text.slice(0, 300)}`);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number): number => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

{
  // The proof's options: no nodes, so `nativeSidecars: auto` decides "no" for both injectors.
  const options = {
    apiVersion: "v1beta1",
    name: "sidecar-injector",
    namespace: OWN,
    nativeSidecarsSupported: false,
    enableNamespacesByDefault: false,
  } as const;
  const share = (groups: readonly ConfigGroup[]): string => {
    const pods = groups.flatMap((g) => g.pods);
    const covered = pods.filter((p) => p.outside === undefined).length;
    return `${pods.length} | ${covered} | ${((100 * covered) / Math.max(1, pods.length)).toFixed(1)} %`;
  };
  process.stdout.write(`\nPolicy coverage: Pods in the MutatingAdmissionPolicy's domain\n`);
  process.stdout.write(`| corpus | Pods | covered | share |\n|---|---:|---:|---:|\n`);
  process.stdout.write(`| golden cases (their configs) | ${share(goldenGroups(options))} |\n`);
  process.stdout.write(`| differential corpus (the oracle's config) | ${share([differentialGroup(options)])} |\n`);
}

let cluster: Cluster;
try {
  cluster = await startCluster({ mutatingAdmissionPolicy: true, serviceAccountAdmission: true, log: () => {} });
} catch (e) {
  if (e instanceof ClusterUnavailableError) {
    process.stdout.write(`policy bench skipped: ${e.message.split("\n")[0] ?? ""}\n`);
    process.exit(0);
  }
  throw e;
}
const certs = await testCertificates();
const injector = new Injector(await freePort(), certs);
try {
  await injector.start();
  await cluster.createNamespace(OWN);
  await cluster.createNamespace(NS, { "istio-injection": "enabled" });
  const rows: [string, { p50: number; p95: number; p99: number }][] = [];

  rows.push(["no mutation", await measure(cluster)]);

  const rendered = renderPolicy(DEFAULT_CONFIG, {
    apiVersion: "v1beta1",
    name: "sidecar-injector",
    namespace: OWN,
    nativeSidecarsSupported: false,
    enableNamespacesByDefault: false,
  });
  const objects = [rendered.policy, ...rendered.bindings];
  await createAll(cluster, objects);
  await waitUntil(cluster, NS, pod, (s, p) => s === 201 && injected(p), "the policy injects");
  rows.push(["MutatingAdmissionPolicy", await measure(cluster)]);
  await deleteAll(cluster, objects);
  await waitUntil(cluster, NS, pod, (s, p) => s === 201 && !injected(p), "the policy is gone");

  const helm = await cluster.helm([
    "template",
    "sidecar-injector",
    "charts/sidecar-injector",
    "--namespace",
    OWN,
    "--set",
    "tls.mode=secret",
    "--set",
    `webhook.url=${injector.url}/inject`,
    "--set",
    `webhook.caBundle=${Buffer.from(certs.caPem).toString("base64")}`,
    "--set",
    "fullnameOverride=sidecar-injector",
  ]);
  if (helm.code !== 0) throw new Error(helm.stderr);
  const mwc = parseAllDocuments(helm.stdout)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .find((d) => d?.kind === "MutatingWebhookConfiguration");
  const created = await cluster.request("POST", MWC_PATH, mwc);
  if (created.status !== 201) throw new Error(created.text);
  await waitUntil(cluster, NS, pod, (s, p) => s === 201 && injected(p), "the webhook injects");
  rows.push(["webhook (serve, 1 process)", await measure(cluster)]);

  process.stdout.write(`\nPod creation (dry run), ${creates} sequential per mode, client round trip in ms\n`);
  process.stdout.write(`| mutation | p50 | p95 | p99 |\n|---|---:|---:|---:|\n`);
  for (const [name, r] of rows)
    process.stdout.write(`| ${name} | ${r.p50.toFixed(2)} | ${r.p95.toFixed(2)} | ${r.p99.toFixed(2)} |\n`);
} finally {
  await injector.dispose();
  await cluster.stop();
}
