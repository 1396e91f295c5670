// The explanations the preview gives: whether the API server calls the injector at all (the
// webhook table of Istio, reference section 1, as the chart installs it), what the init
// container captures (read back from its istio-iptables arguments) and what pilot-agent
// starts Envoy with (read back from the istio-proxy container).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import { apiServerSelection, interceptionSummary, proxySummary } from "../../../src/injection/explain.js";
import { inject } from "../../../src/injection/inject.js";
import type { Pod } from "../../../src/kube/types.js";

type Labels = Readonly<Record<string, string>>;

// ---- An independent model of the MutatingWebhookConfiguration (Istio's table + the chart's
// exclusion of kube-system and its own namespace from every namespaceSelector).
type Req = { key: string; op: "In" | "NotIn" | "DoesNotExist"; values?: string[] };
function matches(reqs: readonly Req[], labels: Labels): boolean {
  return reqs.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    if (r.op === "DoesNotExist") return !has;
    if (r.op === "In") return has && (r.values ?? []).includes(labels[r.key] as string);
    return !has || !(r.values ?? []).includes(labels[r.key] as string);
  });
}
function webhooks(rev: string): { name: string; ns: Req[]; obj: Req[] }[] {
  const hooks = [
    {
      name: "rev.namespace",
      ns: [
        { key: "istio.io/rev", op: "In", values: [rev] },
        { key: "istio-injection", op: "DoesNotExist" },
      ],
      obj: [{ key: "sidecar.istio.io/inject", op: "NotIn", values: ["false"] }],
    },
    {
      name: "rev.object",
      ns: [
        { key: "istio.io/rev", op: "DoesNotExist" },
        { key: "istio-injection", op: "DoesNotExist" },
      ],
      obj: [
        { key: "sidecar.istio.io/inject", op: "NotIn", values: ["false"] },
        { key: "istio.io/rev", op: "In", values: [rev] },
      ],
    },
  ] as { name: string; ns: Req[]; obj: Req[] }[];
  if (rev === "default") {
    hooks.push(
      {
        name: "namespace",
        ns: [{ key: "istio-injection", op: "In", values: ["enabled"] }],
        obj: [{ key: "sidecar.istio.io/inject", op: "NotIn", values: ["false"] }],
      },
      {
        name: "object",
        ns: [
          { key: "istio-injection", op: "DoesNotExist" },
          { key: "istio.io/rev", op: "DoesNotExist" },
        ],
        obj: [
          { key: "sidecar.istio.io/inject", op: "In", values: ["true"] },
          { key: "istio.io/rev", op: "DoesNotExist" },
        ],
      },
    );
  }
  return hooks;
}
function modelCalls(namespace: string, nsLabels: Labels, podLabels: Labels, revision: string, own: string): boolean {
  if (namespace === "kube-system" || namespace === own) return false;
  return webhooks(revision || "default").some((w) => matches(w.ns, nsLabels) && matches(w.obj, podLabels));
}

const NAMESPACE_LABELS: Labels[] = [
  {},
  { "istio-injection": "enabled" },
  { "istio-injection": "disabled" },
  { "istio.io/rev": "default" },
  { "istio.io/rev": "canary" },
  { "istio.io/rev": "" },
  { "istio-injection": "enabled", "istio.io/rev": "canary" },
  { "istio-injection": "disabled", "istio.io/rev": "default" },
  { team: "a" },
];
const POD_LABELS: Labels[] = [
  {},
  { "sidecar.istio.io/inject": "true" },
  { "sidecar.istio.io/inject": "false" },
  { "sidecar.istio.io/inject": "yes" },
  { "istio.io/rev": "default" },
  { "istio.io/rev": "canary" },
  { "sidecar.istio.io/inject": "true", "istio.io/rev": "canary" },
  { "sidecar.istio.io/inject": "true", "istio.io/rev": "default" },
  { "sidecar.istio.io/inject": "false", "istio.io/rev": "default" },
  { "sidecar.istio.io/inject": "false", "istio.io/rev": "canary" },
];

describe("apiServerSelection", () => {
  test("agrees with the webhook configuration on every namespace x pod x revision combination", () => {
    let called = 0;
    let notCalled = 0;
    for (const revision of ["default", "canary", ""]) {
      for (const namespace of ["demo", "kube-system", "sidecar-injector-system"]) {
        for (const ns of NAMESPACE_LABELS) {
          for (const pod of POD_LABELS) {
            const got = apiServerSelection(namespace, ns, pod, revision, "sidecar-injector-system");
            const want = modelCalls(namespace, ns, pod, revision, "sidecar-injector-system");
            assert.equal(
              got.called,
              want,
              `revision ${JSON.stringify(revision)}, namespace ${namespace} ${JSON.stringify(ns)}, pod ${JSON.stringify(pod)}: ${got.reason}`,
            );
            assert.match(got.reason, want ? /the API server calls the injector/ : /does not call/);
            if (want) called++;
            else notCalled++;
          }
        }
      }
    }
    // The matrix covers both answers, plenty of each.
    assert.ok(called > 30 && notCalled > 100, `${called} called, ${notCalled} not`);
  });

  test("revision tags pointing at the injector: istio.io/rev=<tag> selects it, said as tag → revision", () => {
    const ns = apiServerSelection("demo", { "istio.io/rev": "prod" }, {}, "canary", undefined, ["prod"]);
    assert.deepEqual(ns, {
      called: true,
      reason: "namespace demo has istio.io/rev=prod (revision tag prod → canary): the API server calls the injector",
    });
    const pod = apiServerSelection("demo", {}, { "istio.io/rev": "prod" }, "canary", undefined, ["prod"]);
    assert.equal(pod.called, true);
    assert.match(pod.reason, /pod has label istio.io\/rev=prod \(revision tag prod → canary\)/);
    // Opted out, or another tag: not called; the tags it has are named.
    assert.equal(
      apiServerSelection(
        "demo",
        { "istio.io/rev": "prod" },
        { "sidecar.istio.io/inject": "false" },
        "canary",
        undefined,
        ["prod"],
      ).called,
      false,
    );
    const other = apiServerSelection("demo", { "istio.io/rev": "stable" }, {}, "canary", undefined, ["prod"]);
    assert.equal(other.called, false);
    assert.match(
      other.reason,
      /this injector serves revision canary or its revision tag prod: the API server does not call it/,
    );
    // Without the tag in the config: another revision, as before.
    assert.equal(apiServerSelection("demo", { "istio.io/rev": "prod" }, {}, "canary").called, false);
  });

  test("the tag default: what the default revision selects selects a canary injector too", () => {
    const tags = ["default"];
    const enabled = apiServerSelection("demo", { "istio-injection": "enabled" }, {}, "canary", undefined, tags);
    assert.deepEqual(enabled, {
      called: true,
      reason:
        "namespace demo has istio-injection=enabled (revision tag default → canary): the API server calls the injector",
    });
    assert.equal(
      apiServerSelection("demo", {}, { "sidecar.istio.io/inject": "true" }, "canary", undefined, tags).called,
      true,
    );
    assert.equal(apiServerSelection("demo", { "istio.io/rev": "default" }, {}, "canary", undefined, tags).called, true);
    assert.equal(
      apiServerSelection("demo", { "istio-injection": "enabled" }, {}, "canary", undefined, ["prod"]).called,
      false,
    );
  });

  test("istio-injection=enabled: called, with the label named", () => {
    const s = apiServerSelection("demo", { "istio-injection": "enabled" }, {}, "default");
    assert.deepEqual(s, {
      called: true,
      reason: "namespace demo has istio-injection=enabled: the API server calls the injector",
    });
  });

  test("istio-injection=disabled matches no webhook, even with istio.io/rev on the namespace", () => {
    const s = apiServerSelection("demo", { "istio-injection": "disabled", "istio.io/rev": "default" }, {}, "default");
    assert.equal(s.called, false);
    assert.match(s.reason, /istio-injection=disabled/);
  });

  test("istio-injection beats istio.io/rev: enabled selects the default revision, not a canary", () => {
    assert.equal(
      apiServerSelection("demo", { "istio-injection": "enabled", "istio.io/rev": "canary" }, {}, "default").called,
      true,
    );
    const canary = apiServerSelection("demo", { "istio-injection": "enabled", "istio.io/rev": "canary" }, {}, "canary");
    assert.equal(canary.called, false);
    assert.match(canary.reason, /selects the default revision, not canary/);
  });

  test("istio.io/rev on the namespace: called by the matching revision only", () => {
    assert.equal(apiServerSelection("demo", { "istio.io/rev": "canary" }, {}, "canary").called, true);
    assert.equal(apiServerSelection("demo", { "istio.io/rev": "default" }, {}, "default").called, true);
    assert.equal(
      apiServerSelection("demo", { "istio.io/rev": "default" }, {}, "").called,
      true,
      "an empty revision is the default one",
    );
    const other = apiServerSelection("demo", { "istio.io/rev": "canary" }, {}, "default");
    assert.equal(other.called, false);
    assert.match(other.reason, /istio.io\/rev=canary, this injector serves revision default/);
  });

  test("the pod's sidecar.istio.io/inject=false label is excluded by every objectSelector", () => {
    for (const ns of [{ "istio-injection": "enabled" }, { "istio.io/rev": "default" }] as Labels[]) {
      const s = apiServerSelection("demo", ns, { "sidecar.istio.io/inject": "false" }, "default");
      assert.equal(s.called, false);
      assert.equal(
        s.reason,
        "label sidecar.istio.io/inject=false on the pod: the webhook's objectSelector excludes it, the API server does not call the injector",
      );
    }
  });

  test("unlabelled namespace: the pod opts in with inject=true (default revision) or istio.io/rev", () => {
    const optIn = apiServerSelection("demo", {}, { "sidecar.istio.io/inject": "true" }, "default");
    assert.equal(optIn.called, true);
    assert.match(optIn.reason, /the pod has label sidecar.istio.io\/inject=true/);
    assert.equal(
      apiServerSelection("demo", {}, { "sidecar.istio.io/inject": "true" }, "canary").called,
      false,
      "object. exists for the default revision only",
    );
    const rev = apiServerSelection("demo", {}, { "istio.io/rev": "canary" }, "canary");
    assert.equal(rev.called, true);
    assert.match(rev.reason, /the pod has label istio.io\/rev=canary/);
    const otherRev = apiServerSelection(
      "demo",
      {},
      { "istio.io/rev": "canary", "sidecar.istio.io/inject": "true" },
      "default",
    );
    assert.equal(otherRev.called, false, "a revision label has priority over inject=true");
    assert.match(otherRev.reason, /selects another revision than default/);
  });

  test("unlabelled namespace, pod says nothing: not called, and the reason says why", () => {
    const s = apiServerSelection("demo", {}, {}, "default");
    assert.equal(s.called, false);
    assert.match(
      s.reason,
      /^namespace demo has no istio-injection or istio.io\/rev label.*: the API server does not call the injector$/,
    );
  });

  test("kube-system and the injector's own namespace are never selected, whatever their labels", () => {
    for (const ns of ["kube-system", "mesh-injector"]) {
      const s = apiServerSelection(
        ns,
        { "istio-injection": "enabled" },
        { "sidecar.istio.io/inject": "true" },
        "default",
        "mesh-injector",
      );
      assert.equal(s.called, false, ns);
      assert.match(s.reason, new RegExp(`namespace ${ns} is excluded by the webhook's namespaceSelector`));
    }
    assert.equal(
      apiServerSelection("mesh-injector", { "istio-injection": "enabled" }, {}, "default").called,
      true,
      "without ownNamespace it is an ordinary namespace",
    );
  });
});

// ---- interceptionSummary and proxySummary, read back from Pods the injector rendered.
const config = buildConfig({});
function injected(
  annotations: Record<string, string> = {},
  cfg: Config = config,
  native?: boolean,
  labels: Record<string, string> = { app: "web" },
): Pod {
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1", labels, annotations },
    spec: { containers: [{ name: "web", image: "nginx" }] },
  };
  const r = inject(
    pod,
    { namespace: "demo", ...(native === undefined ? {} : { nativeSidecarsSupported: native }) },
    cfg,
  );
  assert.equal(r.decision.inject, true);
  return r.pod;
}

describe("interceptionSummary", () => {
  test("REDIRECT by default: everything in and out, Istio's ports excluded", () => {
    const s = interceptionSummary(injected());
    assert.equal(s.mode, "REDIRECT");
    assert.equal(s.container, "istio-init");
    assert.equal(s.proxyUid, "1337");
    assert.deepEqual(s.inbound, { redirectTo: "15006", ports: "*", excludedPorts: ["15090", "15021", "15020"] });
    assert.deepEqual(s.outbound, { redirectTo: "15001", ipRanges: "*", excludedIpRanges: [], excludedPorts: [] });
    assert.equal(s.rerouteInterfaces, undefined);
    assert.equal(s.excludedInterfaces, undefined);
    assert.deepEqual(s.summary, [
      "istio-init sets up REDIRECT interception with iptables before the app starts",
      "inbound: all ports redirected to the proxy on 15006, except 15090, 15021, 15020",
      "outbound: all destinations redirected to the proxy on 15001",
      "traffic of uid 1337 (the proxy itself) is never redirected",
    ]);
  });

  test("TPROXY from the annotation, and from the config", () => {
    assert.equal(interceptionSummary(injected({ "sidecar.istio.io/interceptionMode": "TPROXY" })).mode, "TPROXY");
    const s = interceptionSummary(injected({}, buildConfig({ interception: { mode: "TPROXY" } })));
    assert.equal(s.mode, "TPROXY");
    assert.match(s.summary[0] ?? "", /TPROXY interception with iptables/);
  });

  test("NONE: no init container, nothing redirected, the proxy still there", () => {
    const pod = injected({ "sidecar.istio.io/interceptionMode": "NONE" });
    assert.ok(!(pod.spec?.initContainers ?? []).some((c) => c.name === "istio-init"));
    const s = interceptionSummary(pod);
    assert.deepEqual(s, {
      mode: "NONE",
      summary: ["no traffic is redirected to the proxy (interception mode NONE): applications must use it explicitly"],
    });
  });

  test("CNI: istio-validation only checks what the CNI plugin set up", () => {
    const s = interceptionSummary(injected({}, buildConfig({ cni: true })));
    assert.equal(s.container, "istio-validation");
    assert.equal(s.mode, "REDIRECT");
    assert.equal(s.summary[0], "the CNI plugin sets up REDIRECT interception; istio-validation only checks it");
    assert.deepEqual(s.inbound?.excludedPorts, ["15090", "15021", "15020"]);
  });

  test("every traffic annotation shows up where istio-iptables takes it", () => {
    const s = interceptionSummary(
      injected({
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.1.0.0/16,10.2.0.0/16",
        "traffic.sidecar.istio.io/includeInboundPorts": "80,8080",
        "traffic.sidecar.istio.io/excludeInboundPorts": "9090",
        "traffic.sidecar.istio.io/includeOutboundPorts": "5432",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "3306,6379",
        "traffic.sidecar.istio.io/excludeInterfaces": "eth1",
        "traffic.sidecar.istio.io/kubevirtInterfaces": "net1,net2",
        "status.sidecar.istio.io/port": "15030",
      }),
    );
    assert.deepEqual(s.inbound, {
      redirectTo: "15006",
      ports: "80,8080",
      excludedPorts: ["15090", "15021", "9090", "15030"],
    });
    assert.deepEqual(s.outbound, {
      redirectTo: "15001",
      ipRanges: "10.0.0.0/8,172.16.0.0/12",
      excludedIpRanges: ["10.1.0.0/16", "10.2.0.0/16"],
      ports: ["5432"],
      excludedPorts: ["3306", "6379"],
    });
    assert.deepEqual(s.rerouteInterfaces, ["net1", "net2"]);
    assert.deepEqual(s.excludedInterfaces, ["eth1"]);
    assert.deepEqual(s.summary.slice(1), [
      "inbound: ports 80,8080 redirected to the proxy on 15006, except 15090, 15021, 9090, 15030",
      "outbound: destinations in 10.0.0.0/8,172.16.0.0/12 (and ports 5432 to any destination) redirected to the proxy on 15001, except 10.1.0.0/16, 10.2.0.0/16; ports 3306, 6379 are never redirected",
      "traffic of uid 1337 (the proxy itself) is never redirected",
      "traffic from interfaces net1, net2 is also redirected",
      "interfaces eth1 are left alone",
    ]);
  });

  test("istio.io/reroute-virtual-interfaces is -k too", () => {
    assert.deepEqual(
      interceptionSummary(injected({ "istio.io/reroute-virtual-interfaces": "vnet0" })).rerouteInterfaces,
      ["vnet0"],
    );
  });

  test("empty include lists: nothing redirected in either direction", () => {
    const s = interceptionSummary(
      injected({
        "traffic.sidecar.istio.io/includeInboundPorts": "",
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
      }),
    );
    assert.equal(s.inbound?.ports, "");
    assert.equal(s.outbound?.ipRanges, "");
    assert.ok(s.summary.includes("inbound: nothing is redirected"));
    assert.ok(s.summary.includes("outbound: nothing is redirected"));
  });

  test("only outbound ports listed: they are redirected even with no IP range", () => {
    const s = interceptionSummary(
      injected({
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
        "traffic.sidecar.istio.io/includeOutboundPorts": "443",
      }),
    );
    assert.equal(
      s.summary[2],
      "outbound: no IP range (and ports 443 to any destination) redirected to the proxy on 15001",
    );
  });

  test("a Pod without a sidecar intercepts nothing", () => {
    assert.deepEqual(interceptionSummary({ spec: { containers: [{ name: "web" }] } }), {
      mode: "NONE",
      summary: ["no sidecar: nothing is intercepted"],
    });
  });
});

describe("proxySummary", () => {
  test("classic sidecar: node id template, cluster from the app label, Istio's ports and defaults", () => {
    const s = proxySummary(injected(), "demo", config);
    assert.ok(s);
    assert.equal(s.native, false);
    assert.equal(s.nodeId, "sidecar~<pod IP>~web-1.demo~demo.svc.cluster.local");
    assert.equal(s.cluster, "web.demo");
    assert.equal(s.image, "docker.io/istio/proxyv2:1.28.0");
    assert.equal(s.discoveryAddress, "istiod.istio-system.svc:15012");
    assert.equal(s.caAddress, "istiod.istio-system.svc:15012");
    assert.equal(s.clusterId, "Kubernetes");
    assert.equal(s.meshId, "cluster.local");
    assert.equal(s.trustDomain, "cluster.local");
    assert.deepEqual(s.ports, {
      admin: 15000,
      outbound: 15001,
      inbound: 15006,
      agent: 15020,
      readiness: 15021,
      envoyPrometheus: 15090,
    });
    assert.deepEqual(s.resources, { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } });
    assert.equal(s.holdApplicationUntilProxyStarts, false);
    assert.deepEqual(s.proxyConfig, {});
  });

  test("native sidecar: istio-proxy among the init containers with restartPolicy Always", () => {
    const pod = injected({}, config, true);
    const s = proxySummary(pod, "demo", config);
    assert.equal(s?.native, true);
    assert.equal(proxySummary(injected({}, buildConfig({ nativeSidecars: "true" })), "demo", config)?.native, true);
    assert.equal(
      proxySummary(injected({ "sidecar.istio.io/nativeSidecar": "false" }, config, true), "demo", config)?.native,
      false,
    );
  });

  test("identity and addresses come from what was rendered: config, ProxyConfig annotation, cluster domain", () => {
    const cfg = buildConfig({
      clusterDomain: "corp.example",
      meshId: "mesh-1",
      trustDomain: "td.example",
      clusterId: "east",
      caAddress: "ca.example:15012",
    });
    const pod = injected({ "proxy.istio.io/config": "discoveryAddress: istiod-canary.istio-system.svc:15012" }, cfg);
    const s = proxySummary(pod, "demo", config); // the default config: everything must be read from the Pod
    assert.equal(s?.nodeId, "sidecar~<pod IP>~web-1.demo~demo.svc.corp.example");
    assert.equal(s?.discoveryAddress, "istiod-canary.istio-system.svc:15012");
    assert.equal(s?.caAddress, "ca.example:15012");
    assert.equal(s?.clusterId, "east");
    assert.equal(s?.meshId, "mesh-1");
    assert.equal(s?.trustDomain, "td.example");
    assert.deepEqual(s?.proxyConfig, { discoveryAddress: "istiod-canary.istio-system.svc:15012" });
  });

  test("cluster falls back to the workload name, then istio-proxy", () => {
    const unlabelled = injected({}, config, undefined, {});
    assert.equal(proxySummary(unlabelled, "demo", config)?.cluster, "web-1.demo");
    const bare: Pod = {
      metadata: { generateName: "job-" },
      spec: { containers: [{ name: "istio-proxy", image: "p" }] },
    };
    const s = proxySummary(bare, "batch", config);
    assert.equal(s?.cluster, "istio-proxy.batch");
    assert.equal(s?.nodeId, "sidecar~<pod IP>~job-<generated>.batch~batch.svc.cluster.local");
  });

  test("the agent port follows status.sidecar.istio.io/port, native or classic", () => {
    assert.equal(
      proxySummary(injected({ "status.sidecar.istio.io/port": "15030" }, config, true), "demo", config)?.ports.agent,
      15030,
    );
    assert.equal(
      proxySummary(injected({ "status.sidecar.istio.io/port": "15030" }, config, false), "demo", config)?.ports.agent,
      15030,
    );
    const other = buildConfig({ proxy: { statusPort: 15099 } });
    assert.equal(
      proxySummary(injected({}, other), "demo", other)?.ports.agent,
      15099,
      "classic, no annotation: the configured port",
    );
  });

  test("resources from the proxy annotations", () => {
    const s = proxySummary(
      injected({ "sidecar.istio.io/proxyCPU": "50m", "sidecar.istio.io/proxyMemoryLimit": "256Mi" }),
      "demo",
      config,
    );
    assert.deepEqual(s?.resources, { requests: { cpu: "50m" }, limits: { memory: "256Mi" } });
  });

  test("hold: the proxy first with a postStart wait (classic), from the annotation or the config", () => {
    const fromAnnotation = injected(
      { "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true" },
      config,
      false,
    );
    assert.equal(fromAnnotation.spec?.containers[0]?.name, "istio-proxy");
    assert.equal(proxySummary(fromAnnotation, "demo", config)?.holdApplicationUntilProxyStarts, true);
    const fromConfig = buildConfig({ proxy: { holdApplicationUntilProxyStarts: true } });
    assert.equal(
      proxySummary(injected({}, fromConfig, false), "demo", fromConfig)?.holdApplicationUntilProxyStarts,
      true,
    );
  });

  test("hold is ignored for a native sidecar, as the injector ignores it", () => {
    const pod = injected({ "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true" }, config, true);
    assert.ok(!pod.spec?.containers.some((c) => c.name === "istio-proxy"), "native: the proxy is an init container");
    const s = proxySummary(pod, "demo", config);
    assert.equal(s?.native, true);
    assert.equal(s?.holdApplicationUntilProxyStarts, false);
  });

  test("no istio-proxy container: no summary", () => {
    assert.equal(proxySummary({ spec: { containers: [{ name: "web" }] } }, "demo", config), undefined);
  });
});
