// The chart's policy mode against a real kube-apiserver: the policy, its bindings and the
// webhooks with their matchCondition, as `helm template` renders them with policy.enabled.
// - Both up: a covered Pod is injected by the policy and never reaches the injector; a Pod
//   outside the domain is injected by the webhook; each once.
// - Injector stopped (the chart's failurePolicy: Fail): covered Pods are still injected;
//   the others are refused, naming the webhook. With failurePolicy Ignore they are created
//   without a sidecar.
// - The largest Pod the policy covers (MAX_CONTAINERS containers and native-sidecar init
//   containers of MAX_PORTS ports, each with every probe and hook at MAX_HEADERS headers and
//   MAX_PROBE_TEXT characters, on the port named last, every traffic annotation at
//   MAX_TRAFFIC_ITEMS items, the readiness ones, and Prometheus scrape settings and scrape
//   targets, as many as fit, of MAX_VALUE characters) is injected by the policy, within the API
//   server's CEL cost limits.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import type { Container, Pod } from "../../src/kube/types.js";
import { MAX_CONTAINERS, MAX_HEADERS, MAX_PORTS, MAX_PROBE_TEXT, outsideDomain } from "../../src/policy/domain.js";
import { MAX_VALUE } from "../../src/policy/prometheus.js";
import { policyList, renderPolicy, type RenderedPolicy } from "../../src/policy/render.js";
import { MAX_TRAFFIC_ITEMS } from "../../src/policy/traffic.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { OWN_NAMESPACE, renderChartForUrl, webhookConfigOf } from "./chart.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";
import { createAll, createPod, waitUntil } from "./policy-api.js";

const NS = "policy-modes";
const MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

const { cluster, skip } = await clusterForSuite("MutatingAdmissionPolicy modes", {
  mutatingAdmissionPolicy: true,
  serviceAccountAdmission: true,
});

type Obj = Record<string, unknown>;
type Webhook = { failurePolicy?: string };

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const STATUS = "sidecar.istio.io/status";
const proxies = (p: Pod): number =>
  [...(p.spec?.initContainers ?? []), ...p.spec!.containers].filter((c) => c.name === "istio-proxy").length;

const covered = (name: string): Pod => ({
  metadata: { name, labels: { app: name } },
  spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080, name: "http" }] }] },
});
// Outside the domain: a resource annotation with a value the policy does not write (the webhook
// does: 0.2500 is 250m).
const uncovered = (name: string): Pod => ({
  ...covered(name),
  metadata: { name, labels: { app: name }, annotations: { "sidecar.istio.io/proxyCPU": "0.2500" } },
});

let certs: TestCerts;
let injector: Injector;
let mwc: Obj;
let rendered: RenderedPolicy;

async function replaceWebhooks(failurePolicy: string): Promise<void> {
  const webhooks = (mwc.webhooks as Webhook[]).map((w) => ({ ...w, failurePolicy }));
  await kube().request("DELETE", `${MWC_PATH}/sidecar-injector`);
  const { metadata } = mwc as { metadata: { name: string; labels?: unknown } };
  const r = await kube().request("POST", MWC_PATH, { ...mwc, metadata: { name: metadata.name }, webhooks });
  assert.equal(r.status, 201, r.text);
}

describe("the chart's policy mode", { skip }, () => {
  before(async () => {
    certs = await testCertificates();
    injector = new Injector(await freePort(), certs);
    await injector.start();
    await kube().createNamespace(OWN_NAMESPACE);
    await kube().createNamespace(NS, { "istio-injection": "enabled" });
    rendered = renderPolicy(DEFAULT_CONFIG, {
      apiVersion: "v1beta1",
      name: "sidecar-injector",
      namespace: OWN_NAMESPACE,
      nativeSidecarsSupported: false,
      enableNamespacesByDefault: false,
    });
    const file = join(certs.dir, "policy.yaml");
    writeFileSync(file, stringify(policyList(rendered)));
    const docs = await renderChartForUrl(kube(), {
      url: `${injector.url}/inject`,
      caPem: certs.caPem,
      extra: ["--set", "policy.enabled=true", "--set-file", `policy.manifest=${file}`],
    });
    await createAll(
      kube(),
      docs.filter((d) => String(d.kind).startsWith("MutatingAdmissionPolicy")),
    );
    mwc = webhookConfigOf(docs);
    const created = await kube().request("POST", MWC_PATH, mwc);
    assert.equal(created.status, 201, created.text);
    await waitUntil(
      kube(),
      NS,
      uncovered("probe"),
      (s, p) => s === 201 && p.metadata?.annotations?.[STATUS] !== undefined,
      "the webhook injects",
    );
    await waitUntil(
      kube(),
      NS,
      covered("probe"),
      (s, p) => s === 201 && p.metadata?.annotations?.[STATUS] !== undefined,
      "the policy injects",
    );
  });
  after(async () => {
    await injector?.dispose();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    await cluster?.stop();
  });

  test("both up: the policy injects covered Pods without calling the injector, the webhook the others; each once", async () => {
    const before = await injector.counter("sidecar_injection_requests_total");
    const a = await createPod(kube(), NS, covered("covered-up"));
    assert.equal(a.status, 201, a.text);
    assert.equal(proxies(a.pod), 1);
    assert.equal(await injector.counter("sidecar_injection_requests_total"), before, "the injector was not called");
    const b = await createPod(kube(), NS, uncovered("uncovered-up"));
    assert.equal(b.status, 201, b.text);
    assert.equal(proxies(b.pod), 1);
    const resources = b.pod.spec?.containers.find((c) => c.name === "istio-proxy")?.resources;
    assert.match(JSON.stringify(resources), /"requests":\{"cpu":"250m"/, "the webhook honoured the annotation");
    assert.equal(await injector.counter("sidecar_injection_requests_total"), before + 1, "one review for the other");
  });

  test("the largest covered Pod is injected within the API server's CEL cost limits", async () => {
    // Every bound at once: each container and (native sidecar) init container has the most
    // ports, and every probe and hook the most headers and characters, on a port named last.
    const text = (n: number, c: string): string => c.repeat(n);
    const headers = Array.from({ length: MAX_HEADERS }, (_, k) => ({ name: `X-H${k}`, value: text(40, "v") }));
    const headerText = headers.reduce((n, h) => n + h.name.length + h.value.length, 0);
    const httpGet = (port: string): Container["readinessProbe"] => ({
      httpGet: { path: `/${text(MAX_PROBE_TEXT - headerText - "HTTP".length - 1, "p")}`, port, httpHeaders: headers },
    });
    const container = (name: string, i: number): Container => {
      const ports = Array.from({ length: MAX_PORTS }, (_, j) => ({
        name: `p-${i}-${j}`,
        containerPort: 10000 + i * MAX_PORTS + j,
      }));
      const last = `p-${i}-${MAX_PORTS - 1}`;
      return {
        name,
        image: "example.com/app:1",
        ports,
        readinessProbe: httpGet(last),
        livenessProbe: { tcpSocket: { port: last, host: text(MAX_PROBE_TEXT, "h") } },
        startupProbe: { grpc: { port: 9000, service: text(MAX_PROBE_TEXT, "s") } },
        lifecycle: { preStop: httpGet(last), postStart: { tcpSocket: { port: last } } },
      };
    };
    const containers = Array.from({ length: MAX_CONTAINERS }, (_, i) => container(`app-${i}`, i));
    const initContainers = Array.from({ length: MAX_CONTAINERS }, (_, i) => ({
      ...container(`side-${i}`, MAX_CONTAINERS + i),
      restartPolicy: "Always",
    }));
    // Every traffic annotation at its most items, the status port last (found by the longest search).
    const items = (f: (k: number) => string): string =>
      Array.from({ length: MAX_TRAFFIC_ITEMS }, (_, k) => f(k)).join(",");
    const ranges = items((k) => `10.${k}.255.255/32`);
    const portList = items((k) => String(k === MAX_TRAFFIC_ITEMS - 1 ? 15020 : 60000 + k));
    const ifaces = items((k) => `i${String(k).padStart(14, "0")}`);
    const T = "traffic.sidecar.istio.io/";
    const scrape = {
      "prometheus.io/scrape": text(MAX_VALUE, "s"),
      "prometheus.io/path": `/${text(MAX_VALUE - 1, "m")}`,
    };
    // The most targets that fit: ports 1, 2, 3... while the list has at most MAX_VALUE characters.
    const targets: string[] = [];
    while ([...targets, String(targets.length + 1)].join(",").length <= MAX_VALUE)
      targets.push(String(targets.length + 1));
    const annotations = {
      [`${T}includeOutboundIPRanges`]: ranges,
      [`${T}excludeOutboundIPRanges`]: ranges,
      [`${T}includeInboundPorts`]: portList,
      [`${T}excludeInboundPorts`]: portList,
      [`${T}includeOutboundPorts`]: portList,
      [`${T}excludeOutboundPorts`]: portList,
      "istio.io/reroute-virtual-interfaces": ifaces,
      [`${T}kubevirtInterfaces`]: ifaces,
      [`${T}excludeInterfaces`]: ifaces,
      "sidecar.istio.io/interceptionMode": "REDIRECT",
      "sidecar.istio.io/rewriteAppHTTPProbers": "true",
      "readiness.status.sidecar.istio.io/initialDelaySeconds": "999999999",
      "readiness.status.sidecar.istio.io/periodSeconds": "999999999",
      "readiness.status.sidecar.istio.io/failureThreshold": "999999999",
      ...scrape,
      "prometheus.io/port": "10000",
      "prometheus.istio.io/scrape-targets": targets.join(","),
    };
    const largest: Pod = {
      metadata: { name: "largest", labels: { app: "largest" }, annotations },
      spec: { initContainers, containers },
    };
    assert.equal(outsideDomain(rendered.rules, largest), undefined, "the Pod is in the domain");
    const before = await injector.counter("sidecar_injection_requests_total");
    const big = await createPod(kube(), NS, largest, false);
    assert.equal(big.status, 201, big.text.slice(0, 1000));
    assert.equal(await injector.counter("sidecar_injection_requests_total"), before, "the policy injected it");
    assert.equal(proxies(big.pod), 1);
    const env = big.pod.spec?.containers.find((c) => c.name === "istio-proxy")?.env ?? [];
    const ports = env.find((e) => e.name === "ISTIO_META_POD_PORTS")?.value ?? "";
    assert.equal(ports.split("\n").length, MAX_CONTAINERS * MAX_PORTS + 2);
    const scraped = JSON.parse(env.find((e) => e.name === "ISTIO_PROMETHEUS_ANNOTATIONS")?.value ?? "{}") as object;
    assert.deepEqual(scraped, {
      scrape: scrape["prometheus.io/scrape"],
      path: "/metrics",
      port: "1",
      targets: targets.map((port) => ({ port, path: "/metrics" })),
    });
    assert.equal(targets.length, 88);
    const probers = JSON.parse(env.find((e) => e.name === "ISTIO_KUBE_APP_PROBERS")?.value ?? "{}") as object;
    assert.equal(Object.keys(probers).length, 2 * MAX_CONTAINERS * 5);
    const initArgs = big.pod.spec?.initContainers?.find((c) => c.name === "istio-init")?.args ?? [];
    assert.equal(initArgs[initArgs.indexOf("-d") + 1], `15090,15021,${portList}`);
    assert.equal(initArgs[initArgs.indexOf("-o") + 1], portList);
    assert.equal(initArgs[initArgs.indexOf("-x") + 1], ranges);
    assert.equal(initArgs[initArgs.indexOf("-c") + 1], ifaces);
    const readiness = big.pod.spec?.containers.find((c) => c.name === "istio-proxy")?.readinessProbe;
    assert.equal(readiness?.periodSeconds, 999999999);
    assert.ok(
      [...big.pod.spec!.initContainers!, ...big.pod.spec!.containers].every(
        (c) => c.name === "istio-proxy" || c.name === "istio-init" || c.readinessProbe?.httpGet?.port === 15020,
      ),
    );
  });

  test("injector stopped: covered Pods still injected; others refused (Fail) or created bare (Ignore)", async () => {
    await injector.stop();
    try {
      const a = await createPod(kube(), NS, covered("covered-down"));
      assert.equal(a.status, 201, a.text);
      assert.equal(proxies(a.pod), 1);
      const b = await createPod(kube(), NS, uncovered("uncovered-down"));
      assert.equal(b.status, 500, b.text);
      assert.match(b.text, /failed calling webhook/);
      await replaceWebhooks("Ignore");
      await waitUntil(kube(), NS, uncovered("probe-ignore"), (s) => s === 201, "failurePolicy Ignore in effect");
      const c = await createPod(kube(), NS, uncovered("uncovered-ignored"));
      assert.equal(c.status, 201, c.text);
      assert.equal(proxies(c.pod), 0);
      const d = await createPod(kube(), NS, covered("covered-ignored"));
      assert.equal(proxies(d.pod), 1);
    } finally {
      await injector.start();
    }
  });
});
