// End-to-end: `serve --istio-config istio-system` against a real kube-apiserver. Istio's own
// ConfigMaps (istio-sidecar-injector and istio, rendered from Istio's chart
// istio-control/istio-discovery at the pinned checkout with helm) are created in the cluster;
// the built injector takes its config from them and is registered with the webhook
// configuration our chart renders. A Pod is injected per Istio's values; then the ConfigMap is
// changed with `kubectl patch` (the proxy image, then a neverInjectSelector, then a change that
// cannot be imported), and after the injector's log line (or metric) says so, the next Pod
// stored reflects it, with the same injector process throughout.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import type { Container, Pod } from "../../src/kube/types.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { OWN_NAMESPACE, renderChartForUrl, webhookConfigOf } from "./chart.js";
import { freePort, Injector, metricValue, testCertificates, type TestCerts } from "./injector.js";
import { findKubectl, runKubectl } from "./kubectl.js";

const CACHE = process.env.SIDECAR_INJECTOR_CACHE ?? join(homedir(), ".cache", "sidecar-injector");
const ISTIO_CHART = join(
  process.env.ISTIO_SRC ?? join(CACHE, "istio-86c9f01"),
  "manifests",
  "charts",
  "istio-control",
  "istio-discovery",
);
const ISTIO_NS = "istio-system";
const NS = "e2e-mesh";
/** How long a change may take to reach the injector and be logged (polled, not slept). */
const CHANGE_TIMEOUT_MS = 60_000;

const noChart = existsSync(ISTIO_CHART) ? false : `no Istio chart at ${ISTIO_CHART}`;
const { cluster, skip } = noChart
  ? { cluster: undefined, skip: noChart }
  : await clusterForSuite("istio-config end-to-end tests", { serviceAccountAdmission: true });

type Obj = Record<string, unknown>;
interface ConfigMap {
  metadata: { name: string };
  data: Record<string, string>;
}

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const sidecarOf = (p: Pod): Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

let podCount = 0;
async function createPod(labels: Record<string, string> = {}): Promise<Pod> {
  const name = `web-${++podCount}`;
  const body = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app: "web", ...labels } },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  };
  const r = await kube().request<Pod>("POST", `/api/v1/namespaces/${NS}/pods`, body);
  assert.equal(r.status, 201, r.text);
  // What the API server stored, read back.
  const stored = await kube().request<Pod>("GET", `/api/v1/namespaces/${NS}/pods/${name}`);
  assert.equal(stored.status, 200, stored.text);
  return stored.json;
}

/** Polls `check` until it is true; fails with `what` at the deadline. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + CHANGE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${CHANGE_TIMEOUT_MS / 1000} s`);
}

let certs: TestCerts;
let injector: Injector;
let injectorMap: ConfigMap;

/** `kubectl patch` of the injector ConfigMap's data (a merge patch), or the same request without kubectl. */
async function patchInjectorConfigMap(data: Record<string, string>): Promise<void> {
  const patch = { data };
  const kubectl = findKubectl();
  if ("path" in kubectl) {
    const r = await runKubectl(
      kubectl.path,
      ["-n", ISTIO_NS, "patch", "configmap", "istio-sidecar-injector", "--type", "merge", "-p", JSON.stringify(patch)],
      kube().env,
    );
    assert.equal(r.code, 0, r.stderr);
    return;
  }
  const r = await kube().request("PATCH", `/api/v1/namespaces/${ISTIO_NS}/configmaps/istio-sidecar-injector`, patch, {
    contentType: "application/merge-patch+json",
  });
  assert.equal(r.status, 200, r.text);
}

/** The injector's log lines (JSON) with this message prefix. */
function logLines(prefix: string): Obj[] {
  return injector.output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Obj)
    .filter((l) => typeof l.msg === "string" && l.msg.startsWith(prefix));
}

describe("serve --istio-config against a real kube-apiserver and Istio's rendered ConfigMaps", { skip }, () => {
  before(async () => {
    const c = kube();
    await c.createNamespace(ISTIO_NS);
    await c.createNamespace(OWN_NAMESPACE);
    await c.createNamespace(NS, { "istio-injection": "enabled" });
    // Istio's chart, rendered as an install would render it; its two injection ConfigMaps created.
    const rendered = await c.helm(["template", "istiod", ISTIO_CHART, "-n", ISTIO_NS]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const maps = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as (ConfigMap & { kind?: string }) | null)
      .filter(
        (d): d is ConfigMap & { kind?: string } =>
          d?.kind === "ConfigMap" && ["istio-sidecar-injector", "istio"].includes(d.metadata.name),
      );
    assert.equal(maps.length, 2, "the rendered chart has both ConfigMaps");
    for (const m of maps) {
      const r = await c.request("POST", `/api/v1/namespaces/${ISTIO_NS}/configmaps`, m);
      assert.equal(r.status, 201, r.text);
      if (m.metadata.name === "istio-sidecar-injector") injectorMap = m;
    }

    certs = await testCertificates();
    injector = new Injector(await freePort(), {
      certs,
      env: c.env,
      istioConfig: ISTIO_NS,
      logLevel: "info",
      readyTimeoutMs: 60_000,
    });
    await injector.start();

    const mwc = webhookConfigOf(
      await renderChartForUrl(c, {
        url: `${injector.url}/inject`,
        caPem: certs.caPem,
        extra: ["--set", `istioConfig=${ISTIO_NS}`],
      }),
    );
    const r = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);
    assert.equal(r.status, 201, r.text);
    // The API server takes up a new webhook configuration asynchronously.
    await until("the webhook is called", async () => {
      const probe = await c.request<Pod>("POST", `/api/v1/namespaces/${NS}/pods?dryRun=All`, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "probe", namespace: NS },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      });
      return probe.status === 201 && sidecarOf(probe.json) !== undefined;
    });
  });

  after(async () => {
    await injector?.dispose();
    await cluster?.stop();
  });

  test("injects per Istio's values, and follows a patched ConfigMap without a restart", async () => {
    const pid = injector.pid;
    const values = JSON.parse(injectorMap.data.values ?? "{}") as { global: { hub: string; tag: string } };
    const istioImage = `${values.global.hub}/proxyv2:${values.global.tag}`;
    assert.equal(sidecarOf(await createPod())?.image, istioImage);
    assert.equal(logLines("config loaded from Istio's ConfigMaps").length, 1);

    // global.hub changed: the next Pod has the new image.
    const changedValues = JSON.stringify({ ...values, global: { ...values.global, hub: "e2e.example/mesh" } });
    await patchInjectorConfigMap({ values: changedValues });
    await until("the change is logged", () => logLines("config changed").length === 1);
    assert.deepEqual(logLines("config changed")[0]?.changes, [
      `proxy.image: ${JSON.stringify(istioImage)} → "e2e.example/mesh/proxyv2:${values.global.tag}"`,
    ]);
    assert.equal(sidecarOf(await createPod())?.image, `e2e.example/mesh/proxyv2:${values.global.tag}`);

    // A neverInjectSelector in Istio's `config`: a Pod it selects is created without a sidecar.
    const config = injectorMap.data.config ?? "";
    assert.match(config, /^neverInjectSelector:\n {2}\[\]$/m, "the chart renders an empty neverInjectSelector");
    await patchInjectorConfigMap({
      config: config.replace(
        /^neverInjectSelector:\n {2}\[\]$/m,
        'neverInjectSelector:\n  - matchLabels:\n      mesh: "no"',
      ),
    });
    await until("the second change is logged", () => logLines("config changed").length === 2);
    assert.equal(sidecarOf(await createPod({ mesh: "no" })), undefined);
    assert.equal(sidecarOf(await createPod())?.image, `e2e.example/mesh/proxyv2:${values.global.tag}`);

    // A change that cannot be imported: counted, logged, and the last good config stays.
    await patchInjectorConfigMap({ values: "{not json" });
    await until(
      "the refused change is counted",
      async () =>
        metricValue(await injector.metrics(), "sidecar_injector_config_reload_total", { result: "failed" }) === 1,
    );
    // The log line reaches the test through the process's stdout, on its own schedule.
    const refused = "change of ConfigMap istio-system/istio-sidecar-injector not applied";
    await until("the refused change is logged", () => logLines(refused).length > 0);
    assert.equal(logLines(refused).length, 1);
    assert.equal(sidecarOf(await createPod())?.image, `e2e.example/mesh/proxyv2:${values.global.tag}`);
    assert.equal(sidecarOf(await createPod({ mesh: "no" })), undefined);
    assert.equal(
      metricValue(await injector.metrics(), "sidecar_injector_config_reload_total", { result: "applied" }),
      2,
    );
    assert.equal(injector.pid, pid, "the same process throughout");
    assert.ok(injector.running);
  });
});
