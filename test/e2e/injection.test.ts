// End-to-end: a real kube-apiserver (and etcd) calls the built injector, registered with the
// MutatingWebhookConfiguration our Helm chart renders (in its development mode, with
// clientConfig.url pointing at the local process). No scheduler or kubelet: Pods stay
// Pending, which is enough to read back what the API server stored.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { Container, Pod } from "../../src/kube/types.js";
import { injectManifest } from "../../src/manifest.js";
import { goldenCases, goldenConfig, goldenInput, inputPods, podAsCreated } from "../golden/cases.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHART = join(ROOT, "charts", "sidecar-injector");
const FIXTURES = join(ROOT, "test", "fixtures");
const OWN_NAMESPACE = "sidecar-injector-system";
const MWC = "sidecar-injector";

// ServiceAccount admission on, as in a real cluster: Pods get serviceAccountName (the
// projected istio-token volume requires one) and the kube-api-access volume.
const { cluster, skip } = await clusterForSuite("end-to-end tests", { serviceAccountAdmission: true });

type Obj = Record<string, unknown>;
interface Status {
  kind?: string;
  message?: string;
  code?: number;
}

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const sidecarOf = (p: Pod): Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");
const envOf = (c: Container | undefined, name: string): string | undefined =>
  c?.env?.find((e) => e.name === name)?.value;

async function createPod(ns: string, pod: Pod, query = ""): Promise<{ status: number; pod: Pod; error: Status }> {
  const body = { apiVersion: "v1", kind: "Pod", ...pod, metadata: { ...pod.metadata, namespace: ns } };
  const r = await kube().request<Obj>("POST", `/api/v1/namespaces/${ns}/pods${query}`, body);
  return { status: r.status, pod: r.json as Pod, error: r.json as Status };
}

const simplePod = (
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Pod => ({
  metadata: { name, labels: { app: name, ...labels }, annotations },
  spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080, name: "http" }] }] },
});

let certs: TestCerts;
let injector: Injector;
let rendered: Obj[] = [];

async function helmTemplate(set: string[]): Promise<Obj[]> {
  const r = await kube().helm([
    "template",
    "sidecar-injector",
    CHART,
    "--namespace",
    OWN_NAMESPACE,
    ...set.flatMap((s) => ["--set", s]),
  ]);
  assert.equal(r.code, 0, `helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

/** The API server picks up webhook configuration changes asynchronously: wait until it calls us. */
async function waitForInjection(expectSidecar = true): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    const r = await createPod("e2e-on", simplePod(`probe-${Date.now()}`), "?dryRun=All");
    const has = r.status === 201 && sidecarOf(r.pod) !== undefined;
    if (has === expectSidecar) return;
    last = `${r.status} ${JSON.stringify(r.error).slice(0, 300)}`;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new Error(`webhook did not take effect within 30 s (last: ${last})`);
}

describe("end to end against a real kube-apiserver", { skip }, () => {
  before(async () => {
    certs = await testCertificates();
    injector = new Injector(await freePort(), certs);
    await injector.start();
    const c = kube();
    await c.createNamespace(OWN_NAMESPACE, { "istio-injection": "enabled" });
    await c.createNamespace("e2e-on", { "istio-injection": "enabled" });
    await c.createNamespace("e2e-off");
    await c.createNamespace("e2e-disabled", { "istio-injection": "disabled" });
    await c.createNamespace("e2e-rev", { "istio.io/rev": "default" });
    await c.createNamespace("e2e-canary", { "istio.io/rev": "canary" });
    await c.createNamespace("bookinfo", { "istio-injection": "enabled" });
    await c.createNamespace("infra", { "istio-injection": "enabled" });
    await c.createNamespace("default");
    await c.createNamespace("kube-system");
    const lab = await c.request(
      "PATCH",
      "/api/v1/namespaces/default",
      { metadata: { labels: { "istio-injection": "enabled" } } },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(lab.status, 200, lab.text);
    const kubeSystem = await c.request(
      "PATCH",
      "/api/v1/namespaces/kube-system",
      { metadata: { labels: { "istio-injection": "enabled" } } },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(kubeSystem.status, 200, kubeSystem.text);

    // The injector here serves certificate files (its own certificate management has a suite
    // of its own, certs.test.ts), so the chart publishes their CA as the caBundle.
    rendered = await helmTemplate([
      "tls.mode=secret",
      `webhook.url=${injector.url}/inject`,
      `webhook.caBundle=${Buffer.from(certs.caPem).toString("base64")}`,
      "fullnameOverride=sidecar-injector",
    ]);
    const mwc = rendered.find((d) => d.kind === "MutatingWebhookConfiguration");
    assert.ok(mwc, "the chart renders a MutatingWebhookConfiguration");
    const r = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);
    assert.equal(r.status, 201, r.text);
    await waitForInjection();
  });

  after(async () => {
    await injector?.dispose();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    await cluster?.stop();
  });

  test("every manifest the chart renders is accepted by the API server (server-side dry run)", async () => {
    for (const doc of rendered) {
      const kind = String(doc.kind);
      const apiVersion = String(doc.apiVersion);
      const meta = doc.metadata as { name: string; namespace?: string };
      const group = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const lower = kind.toLowerCase();
      const plural = lower.endsWith("y")
        ? `${lower.slice(0, -1)}ies`
        : lower.endsWith("s")
          ? `${lower}es`
          : `${lower}s`;
      const clusterScoped = ["ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "Namespace"].includes(
        kind,
      );
      const ns = clusterScoped ? "" : `/namespaces/${meta.namespace ?? OWN_NAMESPACE}`;
      const name = kind === "MutatingWebhookConfiguration" ? `${meta.name}-dry-run` : meta.name;
      const r = await kube().request("POST", `${group}${ns}/${plural}?dryRun=All`, {
        ...doc,
        metadata: { ...meta, name },
      });
      assert.equal(r.status, 201, `${kind}/${meta.name}: ${r.text.slice(0, 500)}`);
    }
  });

  test("a Pod in a namespace labelled istio-injection=enabled is stored with the sidecar", async () => {
    const r = await createPod("e2e-on", simplePod("web"));
    assert.equal(r.status, 201, JSON.stringify(r.error));
    const stored = (await kube().request<Pod>("GET", "/api/v1/namespaces/e2e-on/pods/web")).json;
    const proxy = sidecarOf(stored);
    assert.ok(proxy, "istio-proxy stored");
    assert.ok(stored.spec?.initContainers?.some((c) => c.name === "istio-init"));
    assert.equal(stored.metadata?.labels?.["security.istio.io/tlsMode"], "istio");
    assert.ok(stored.metadata?.annotations?.["sidecar.istio.io/status"]);
  });

  test("namespaces the webhook must never be called for: unlabelled, disabled, kube-system, its own, another revision", async () => {
    const before = await injector.counter("sidecar_injection_requests_total");
    for (const ns of ["e2e-off", "e2e-disabled", "kube-system", OWN_NAMESPACE, "e2e-canary"]) {
      const r = await createPod(ns, simplePod(`untouched-${ns}`));
      assert.equal(r.status, 201, `${ns}: ${JSON.stringify(r.error)}`);
      assert.equal(sidecarOf(r.pod), undefined, `${ns}: no sidecar`);
      assert.equal(r.pod.metadata?.annotations?.["sidecar.istio.io/status"], undefined);
    }
    assert.equal(await injector.counter("sidecar_injection_requests_total"), before, "the injector received no review");
  });

  test("an istio.io/rev=default namespace is injected", async () => {
    const r = await createPod("e2e-rev", simplePod("rev"));
    assert.equal(r.status, 201, JSON.stringify(r.error));
    assert.ok(sidecarOf(r.pod));
    assert.equal(r.pod.metadata?.annotations?.["istio.io/rev"], "default");
  });

  test("opt-out by label is never sent; opt-out by annotation is sent and skipped; opt-in by label in a plain namespace follows the object webhook", async () => {
    let before = await injector.counter("sidecar_injection_requests_total");
    const byLabel = await createPod("e2e-on", simplePod("out-label", { "sidecar.istio.io/inject": "false" }));
    assert.equal(byLabel.status, 201);
    assert.equal(sidecarOf(byLabel.pod), undefined);
    assert.equal(
      await injector.counter("sidecar_injection_requests_total"),
      before,
      "objectSelector kept it from the webhook",
    );

    before = await injector.counter("sidecar_injection_requests_total");
    const byAnnotation = await createPod(
      "e2e-on",
      simplePod("out-annotation", {}, { "sidecar.istio.io/inject": "false" }),
    );
    assert.equal(byAnnotation.status, 201);
    assert.equal(sidecarOf(byAnnotation.pod), undefined);
    assert.equal(
      await injector.counter("sidecar_injection_requests_total"),
      before + 1,
      "the webhook was called and skipped it",
    );

    const optIn = await createPod("e2e-off", simplePod("in-label", { "sidecar.istio.io/inject": "true" }));
    assert.equal(optIn.status, 201);
    assert.ok(sidecarOf(optIn.pod), "object webhook injects an opted-in pod in an unlabelled namespace");
  });

  test("a Pod created as a ReplicaSet creates it names its Deployment as owner", async () => {
    const pod: Pod = {
      metadata: {
        generateName: "shop-6c9d8b7f5d-",
        labels: { app: "shop", "pod-template-hash": "6c9d8b7f5d" },
        ownerReferences: [
          {
            apiVersion: "apps/v1",
            kind: "ReplicaSet",
            name: "shop-6c9d8b7f5d",
            uid: "11111111-2222-3333-4444-555555555555",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { containers: [{ name: "shop", image: "example.com/shop:1" }] },
    };
    const r = await createPod("e2e-on", pod);
    assert.equal(r.status, 201, JSON.stringify(r.error));
    assert.match(r.pod.metadata?.name ?? "", /^shop-6c9d8b7f5d-/);
    const proxy = sidecarOf(r.pod);
    assert.equal(envOf(proxy, "ISTIO_META_OWNER"), "kubernetes://apis/apps/v1/namespaces/e2e-on/deployments/shop");
    assert.equal(envOf(proxy, "ISTIO_META_WORKLOAD_NAME"), "shop");
  });

  test("server-side dry run is injected and stores nothing", async () => {
    const r = await createPod("e2e-on", simplePod("dry"), "?dryRun=All");
    assert.equal(r.status, 201);
    assert.ok(sidecarOf(r.pod));
    const get = await kube().request("GET", "/api/v1/namespaces/e2e-on/pods/dry");
    assert.equal(get.status, 404);
  });

  test("an invalid traffic annotation is refused, and the API server's message names it", async () => {
    const r = await createPod(
      "e2e-on",
      simplePod("bad", {}, { "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/40" }),
    );
    assert.equal(r.status, 400, JSON.stringify(r.error));
    assert.match(r.error.message ?? "", /traffic\.sidecar\.istio\.io\/excludeOutboundIPRanges/);
    assert.match(r.error.message ?? "", /denied the request/);
  });

  test("every golden fixture is stored exactly as `inject` prints it", async () => {
    const byConfig = new Map<string, string[]>();
    for (const name of goldenCases()) {
      const file = join(ROOT, "test", "golden", name.replace(/\.yaml$/, ".config.yaml"));
      const text = existsSync(file) ? readFileSync(file, "utf8") : "{}\n";
      byConfig.set(text, [...(byConfig.get(text) ?? []), name]);
    }
    let compared = 0;
    try {
      for (const [configText, names] of byConfig) {
        await injector.stop();
        await injector.start(configText);
        await waitForInjection(!/policy: disabled/.test(configText));
        for (const name of names) {
          const config = goldenConfig(name);
          const input = goldenInput(name);
          const originals = inputPods(name);
          const cli = injectManifest(input, name, "default", config);
          for (const [i, item] of cli.injected.entries()) {
            const original = (originals[i] as (typeof originals)[number]).pod;
            const pod = item.kind === "Pod" ? original : podAsCreated(item.kind, item.name, original);
            const ns = item.namespace;
            // Named Pods keep their name (it is their workload name); controller-made ones are
            // created by generateName as their controller would.
            const named = Boolean(pod.metadata?.name);
            const stored = await createPod(
              ns,
              named ? pod : { ...pod, metadata: { ...pod.metadata, generateName: `g-${compared}-` } },
            );
            assert.equal(stored.status, 201, `${name} ${item.kind}/${item.name}: ${JSON.stringify(stored.error)}`);
            // What `inject` prints for the Pod as the API server hands it to webhooks (defaulted,
            // ServiceAccount volume added), stored through the same API without the webhook.
            const defaulted = await createPod(
              OWN_NAMESPACE,
              named ? pod : { ...pod, metadata: { ...pod.metadata, generateName: `d-${compared}-` } },
              "?dryRun=All",
            );
            assert.equal(defaulted.status, 201, `${name}: defaulting ${JSON.stringify(defaulted.error)}`);
            // Webhooks see a generated name as still empty.
            const asSent: Pod = {
              ...defaulted.pod,
              metadata: { ...defaulted.pod.metadata, namespace: ns, ...(named ? {} : { name: undefined }) },
            };
            const printed = injectManifest(JSON.stringify(asSent), name, ns, config).injected[0]?.result.pod as Pod;
            const reference = await createPod(
              ns,
              {
                ...printed,
                metadata: {
                  generateName: `r-${compared}-`,
                  ownerReferences: pod.metadata?.ownerReferences,
                  labels: { ...(printed.metadata?.labels ?? {}), "sidecar.istio.io/inject": "false" },
                  annotations: printed.metadata?.annotations ?? {},
                },
              },
              "?dryRun=All",
            );
            assert.equal(reference.status, 201, `${name}: reference ${JSON.stringify(reference.error)}`);
            const injected = stored.pod.metadata?.annotations?.["sidecar.istio.io/status"] !== undefined;
            assert.equal(injected, item.result.decision.inject, `${name}: injected as the offline CLI decided`);
            assert.deepEqual(
              sameTokenVolume(stored.pod.spec),
              sameTokenVolume(reference.pod.spec),
              `${name} ${item.kind}/${item.name}: stored spec differs from the CLI's`,
            );
            assert.deepEqual(
              sameTokenVolume(stored.pod.metadata?.annotations ?? {}),
              sameTokenVolume(printed.metadata?.annotations ?? {}),
              `${name}: annotations`,
            );
            if (named) await kube().request("DELETE", `/api/v1/namespaces/${ns}/pods/${pod.metadata?.name}`);
            compared++;
          }
        }
      }
    } finally {
      await injector.stop();
      await injector.start();
      await waitForInjection();
    }
    assert.ok(compared >= 30, `compared ${compared} pods`);
  });

  test("golden inputs the injector refuses are refused by the API server, naming the annotation", async () => {
    const dir = join(ROOT, "test", "golden", "bad");
    for (const file of ["bad-cidr.yaml", "bad-ports.yaml", "bad-interception.yaml"]) {
      const [doc] = parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => d.toJS() as Pod);
      const expected = readFileSync(join(dir, `${file}.err`), "utf8").trim();
      const r = await createPod("e2e-on", {
        ...(doc as Pod),
        metadata: { ...(doc as Pod).metadata, name: `bad-${file.replace(/\.yaml$/, "")}` },
      });
      assert.equal(r.status, 400, file);
      assert.ok(r.error.message?.includes(expected), `${file}: ${r.error.message}`);
    }
  });

  test("injector down: failurePolicy Fail refuses with a clear error, Ignore admits without a sidecar; back up: injection resumes", async () => {
    await injector.stop();
    try {
      const failed = await createPod("e2e-on", simplePod("while-down"));
      assert.equal(failed.status, 500, JSON.stringify(failed.error));
      assert.match(failed.error.message ?? "", /failed calling webhook/);

      await setWebhook((w) => (w.failurePolicy = "Ignore"));
      const deadline = Date.now() + 30_000;
      let admitted: Awaited<ReturnType<typeof createPod>> | undefined;
      while (Date.now() < deadline) {
        admitted = await createPod("e2e-on", simplePod(`ignored-${Date.now()}`));
        if (admitted.status === 201) break;
        await new Promise((ok) => setTimeout(ok, 200));
      }
      assert.equal(admitted?.status, 201, JSON.stringify(admitted?.error));
      assert.equal(sidecarOf(admitted?.pod as Pod), undefined, "admitted without a sidecar");
    } finally {
      await injector.start();
      await setWebhook((w) => (w.failurePolicy = "Fail"));
    }
    await waitForInjection();
    const r = await createPod("e2e-on", simplePod("after-restart"));
    assert.equal(r.status, 201);
    assert.ok(sidecarOf(r.pod), "injection resumed");
  });

  test("records the AdmissionReviews the API server sends (test/fixtures)", async () => {
    const recorded: Obj[] = [];
    const port = await freePort();
    const server: Server = createServer(
      { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
      (req, res) => {
        let body = "";
        req.setEncoding("utf8").on("data", (c: string) => (body += c));
        req.on("end", () => {
          const review = JSON.parse(body) as Obj & { apiVersion: string; request: { uid: string } };
          recorded.push(review);
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              apiVersion: review.apiVersion,
              kind: "AdmissionReview",
              response: { uid: review.request.uid, allowed: true },
            }),
          );
        });
      },
    );
    await new Promise<void>((ok) => server.listen(port, "127.0.0.1", ok));
    try {
      await setWebhook((w) => ((w.clientConfig as Obj).url = `https://127.0.0.1:${port}/inject`));
      const deadline = Date.now() + 30_000;
      while (recorded.length === 0 && Date.now() < deadline) {
        await createPod("e2e-on", simplePod(`warmup-${Date.now()}`), "?dryRun=All");
        await new Promise((ok) => setTimeout(ok, 200));
      }
      recorded.length = 0;
      const cases: [string, string, Pod, string][] = [
        ["pod", "e2e-on", simplePod("fixture-pod"), ""],
        [
          "replicaset-pod",
          "e2e-on",
          {
            metadata: {
              generateName: "shop-6c9d8b7f5d-",
              labels: { app: "shop", "pod-template-hash": "6c9d8b7f5d" },
              ownerReferences: [
                {
                  apiVersion: "apps/v1",
                  kind: "ReplicaSet",
                  name: "shop-6c9d8b7f5d",
                  uid: "11111111-2222-3333-4444-555555555555",
                  controller: true,
                },
              ],
            },
            spec: {
              containers: [
                {
                  name: "shop",
                  image: "example.com/shop:1",
                  readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
                },
              ],
            },
          },
          "",
        ],
        ["annotation-opt-out", "e2e-on", simplePod("fixture-opt-out", {}, { "sidecar.istio.io/inject": "false" }), ""],
        [
          "invalid-annotation",
          "e2e-on",
          simplePod("fixture-invalid", {}, { "traffic.sidecar.istio.io/includeInboundPorts": "http" }),
          "",
        ],
        ["revision-namespace", "e2e-rev", simplePod("fixture-rev"), ""],
        ["object-opt-in", "e2e-off", simplePod("fixture-opt-in", { "sidecar.istio.io/inject": "true" }), ""],
        ["dry-run", "e2e-on", simplePod("fixture-dry-run"), "?dryRun=All"],
      ];
      const wrote: string[] = [];
      for (const [fixture, ns, pod, query] of cases) {
        const before = recorded.length;
        const r = await createPod(ns, pod, query);
        assert.equal(r.status, 201, `${fixture}: ${JSON.stringify(r.error)}`);
        assert.equal(recorded.length, before + 1, `${fixture}: the API server sent one review`);
        const review = recorded[recorded.length - 1] as Obj & { request: Obj };
        assert.equal(review.apiVersion, "admission.k8s.io/v1");
        assert.equal((review.request.kind as Obj).kind, "Pod");
        assert.equal(review.request.operation, "CREATE");
        const file = join(FIXTURES, `admission-review-${fixture}.json`);
        if (process.env.RECORD_FIXTURES === "1" || !existsSync(file)) {
          mkdirSync(FIXTURES, { recursive: true });
          writeFileSync(file, `${JSON.stringify(review, null, 2)}\n`);
          wrote.push(file);
        }
      }
      if (wrote.length) process.stderr.write(`recorded ${wrote.length} AdmissionReview fixtures\n`);
    } finally {
      server.close();
      await setWebhook((w) => ((w.clientConfig as Obj).url = `${injector.url}/inject`));
      await waitForInjection();
    }
  });
});

/** The ServiceAccount plugin names each Pod's API token volume with a random suffix. */
function sameTokenVolume(spec: unknown): unknown {
  return JSON.parse(JSON.stringify(spec).replace(/kube-api-access-[a-z0-9]{5}/g, "kube-api-access"));
}

/** Changes every webhook of our configuration (the API server applies it asynchronously). */
async function setWebhook(patch: (webhook: Obj) => void): Promise<void> {
  const r = await kube().request<Obj>(
    "GET",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`,
  );
  assert.equal(r.status, 200, r.text);
  const mwc = r.json;
  for (const w of mwc.webhooks as Obj[]) patch(w);
  const u = await kube().request(
    "PUT",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`,
    mwc,
  );
  assert.equal(u.status, 200, u.text);
}
