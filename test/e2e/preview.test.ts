// /preview against a real API server: the injector (self-managed certificates, so it has
// cluster access) reads the namespace's labels itself and explains what the API server would
// do, and its patch is the one the API server applies when the Pod is really created.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import type { Pod } from "../../src/kube/types.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, httpsRequest, Injector } from "./injector.js";

const NS = "sidecar-injector-system";

const { cluster, skip } = await clusterForSuite("end-to-end preview tests", { serviceAccountAdmission: true });

interface Entry {
  decision: { inject: boolean; reasons: string[] };
  patch: unknown[];
  object: Pod;
  error?: { message: string };
}

describe("preview against a real kube-apiserver", { skip }, () => {
  let injector: Injector;
  let ca = "";
  const c = (): Cluster => cluster as Cluster;

  before(async () => {
    await c().createNamespace(NS);
    await c().createNamespace("shop", { "istio-injection": "enabled" });
    await c().createNamespace("plain");
    const port = await freePort();
    const r = await c().helm(["template", "sidecar-injector", "charts/sidecar-injector", "--namespace", NS, "--set", `webhook.url=https://127.0.0.1:${port}/inject`, "--set", "fullnameOverride=sidecar-injector"]);
    assert.equal(r.code, 0, r.stderr);
    const mwc = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind?: string } | null).find((d) => d?.kind === "MutatingWebhookConfiguration");
    assert.equal((await c().request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc)).status, 201);
    injector = new Injector(port, {
      args: ["--cert-mode", "kubernetes", "--namespace", NS, "--tls-san", "127.0.0.1", "--ca-bundle-propagation", "1s"],
      env: { ...process.env, ...c().env },
    });
    await injector.start();
    const secret = await c().request<{ data: Record<string, string> }>("GET", `/api/v1/namespaces/${NS}/secrets/sidecar-injector-ca`);
    ca = Buffer.from(secret.json.data["ca.crt"] ?? "", "base64").toString("utf8");
  });

  after(async () => {
    await injector?.dispose();
    await cluster?.stop();
  });

  const pod = (name: string, labels: Record<string, string> = {}): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: name, ...labels } },
    spec: { containers: [{ name: "app", image: "example.com/app:1", readinessProbe: { httpGet: { path: "/ready", port: 8080 } } }] },
  });

  async function previewOf(ns: string, body: Pod): Promise<Entry> {
    const r = await httpsRequest(`${injector.url}/preview?namespace=${ns}`, ca, { method: "POST", body: JSON.stringify(body), timeoutMs: 10_000 });
    assert.equal(r.status, 200, r.body);
    const items = (JSON.parse(r.body) as { items: Entry[] }).items;
    assert.equal(items.length, 1);
    return items[0] as Entry;
  }

  test("reads the namespace's labels from the API server and says what it would do", async () => {
    const on = await previewOf("shop", pod("web"));
    assert.equal(on.decision.inject, true);
    assert.match(on.decision.reasons[0] ?? "", /namespace shop has istio-injection=enabled: the API server calls the injector/);

    const off = await previewOf("plain", pod("web"));
    assert.equal(off.decision.inject, false);
    assert.match(off.decision.reasons[0] ?? "", /namespace plain has no istio-injection or istio\.io\/rev label.*does not call the injector/);
    assert.deepEqual(off.patch, []);

    const own = await previewOf(NS, pod("web"));
    assert.match(own.decision.reasons[0] ?? "", /excluded by the webhook's namespaceSelector/);

    const missing = await previewOf("does-not-exist", pod("web"));
    assert.match(missing.decision.reasons[0] ?? "", /not known/, "an unknown namespace is said to be unknown");
  });

  test("the preview's object is what the API server stores for the same Pod", async () => {
    const entry = await previewOf("shop", pod("stored"));
    const created = await c().request<Pod>("POST", "/api/v1/namespaces/shop/pods", pod("stored"));
    assert.equal(created.status, 201, created.text);
    const stored = created.json;
    const predicted = entry.object;
    // The preview was made of the Pod as given; the API server added its defaults and the
    // ServiceAccount volume before calling the webhook, so compare what the injection decides.
    const names = (p: Pod): string[] => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((x) => x.name);
    assert.deepEqual(names(stored), names(predicted));
    assert.deepEqual(stored.metadata?.annotations, predicted.metadata?.annotations);
    const probe = (p: Pod): unknown => p.spec?.containers.find((x) => x.name === "app")?.readinessProbe?.httpGet;
    assert.deepEqual(probe(stored), { ...(probe(predicted) as object), scheme: "HTTP" });
  });
});
