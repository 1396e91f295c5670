import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { adjustInitUser, recordedContainer } from "../../../src/injection/overrides.js";
import type { Container, JsonObject, Pod } from "../../../src/kube/types.js";

const init = (name = "istio-init"): Container => ({
  name,
  args: ["istio-iptables", "-p", "15001", "-u", "1337", "-m", "REDIRECT"],
});
const proxy: Container = { name: "istio-proxy", securityContext: { runAsUser: 1337, runAsGroup: 1337 } };
const user = (securityContext: JsonObject | undefined): Container => ({
  name: "istio-proxy",
  ...(securityContext ? { securityContext } : {}),
});
const arg = (c: Container | undefined): string | undefined => c?.args?.[(c.args.indexOf("-u") ?? 0) + 1];

describe("adjustInitUser (a declared istio-proxy's ids)", () => {
  test("the declared runAsUser replaces istio-init's -u", () => {
    const r = adjustInitUser([init()], [{ name: "app" }, proxy], user({ runAsUser: 1234, runAsGroup: 4321 }), false);
    assert.equal(arg(r.initContainers[0]), "1234");
    assert.deepEqual(r.containers[1], proxy, "the proxy keeps its ids outside TPROXY");
  });

  test("runAsUser 0 is never the -u (iptables --uid-owner must not be root)", () => {
    const r = adjustInitUser([init()], [proxy], user({ runAsUser: 0 }), false);
    assert.equal(arg(r.initContainers[0]), "1337");
  });

  test("without declared ids, or without a declared istio-proxy, nothing changes", () => {
    for (const u of [undefined, user(undefined), user({ privileged: false })]) {
      const r = adjustInitUser([init()], [proxy], u, false);
      assert.equal(arg(r.initContainers[0]), "1337");
    }
  });

  test("istio-validation (CNI) runs as the declared user and group and checks that uid", () => {
    const r = adjustInitUser([init("istio-validation")], [proxy], user({ runAsUser: 1234, runAsGroup: 4321 }), false);
    assert.deepEqual(r.initContainers[0]?.securityContext, { runAsUser: 1234, runAsGroup: 4321 });
    assert.equal(arg(r.initContainers[0]), "1234");
    const groupOnly = adjustInitUser([init("istio-validation")], [proxy], user({ runAsGroup: 4321 }), false);
    assert.deepEqual(groupOnly.initContainers[0]?.securityContext, { runAsGroup: 4321 });
    assert.equal(arg(groupOnly.initContainers[0]), "1337");
  });

  test("TPROXY: the proxy runs as root whatever it declares; -u still follows the declaration", () => {
    const r = adjustInitUser([init(), proxy], [{ name: "app" }], user({ runAsUser: 1234 }), true);
    assert.equal(r.initContainers[1]?.securityContext?.runAsUser, 0);
    assert.equal(r.initContainers[1]?.securityContext?.runAsGroup, 1337);
    assert.equal(arg(r.initContainers[0]), "1234");
    const validation = adjustInitUser([init("istio-validation")], [proxy], user({ runAsUser: 1234 }), true);
    assert.equal(
      validation.initContainers[0]?.securityContext,
      undefined,
      "validation is not moved to the proxy's ids in TPROXY",
    );
  });
});

describe("overrides record and the status annotation", () => {
  const config = buildConfig({});
  const withProxy = (annotations: Record<string, string>): Pod => ({
    metadata: { name: "p", annotations },
    spec: {
      containers: [
        { name: "app", image: "example.com/app:1" },
        { name: "istio-proxy", image: "auto", resources: { limits: { memory: "2Gi" } } },
      ],
    },
  });
  const proxyMemory = (p: Pod): unknown => p.spec?.containers.find((c) => c.name === "istio-proxy")?.resources?.limits;

  test("first injection: the declared istio-proxy is merged and recorded", () => {
    const r = inject(withProxy({}), { namespace: "demo" }, config);
    assert.deepEqual(proxyMemory(r.pod), { cpu: "2", memory: "2Gi" });
    assert.ok(r.pod.metadata?.annotations?.["proxy.istio.io/overrides"]);
  });

  for (const [what, status] of [
    ["not JSON", "injected by hand"],
    ["stale", '{"initContainers":null,"containers":null,"volumes":null,"imagePullSecrets":null,"revision":"old"}'],
  ] as const) {
    test(`a ${what} sidecar.istio.io/status: merged, but no overrides record written (as Istio)`, () => {
      const r = inject(withProxy({ "sidecar.istio.io/status": status }), { namespace: "demo" }, config);
      assert.deepEqual(proxyMemory(r.pod), { cpu: "2", memory: "2Gi" });
      assert.equal(r.pod.metadata?.annotations?.["proxy.istio.io/overrides"], undefined);
      assert.match(r.pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "", /"revision":"default"/);
    });
  }

  test("a record already there is kept as it is on re-injection", () => {
    const first = inject(withProxy({}), { namespace: "demo" }, config);
    const again = inject(first.pod, { namespace: "demo" }, config);
    assert.equal(
      again.pod.metadata?.annotations?.["proxy.istio.io/overrides"],
      first.pod.metadata?.annotations?.["proxy.istio.io/overrides"],
    );
    assert.deepEqual(proxyMemory(again.pod), { cpu: "2", memory: "2Gi" });
  });
});

describe("a Pod's own istio-proxy declared in the other list than the template's", () => {
  const ownNative: Container = {
    name: "istio-proxy",
    image: "auto",
    restartPolicy: "Always",
    resources: { requests: { cpu: "50m" } },
  };
  const podWith = (spec: Pod["spec"], annotations: Record<string, string> = {}): Pod => ({
    metadata: { name: "web", annotations },
    spec: spec ?? { containers: [] },
  });
  const proxies = (p: Pod): { list: string; c: Container }[] => [
    ...(p.spec?.initContainers ?? []).filter((c) => c.name === "istio-proxy").map((c) => ({ list: "init", c })),
    ...(p.spec?.containers ?? []).filter((c) => c.name === "istio-proxy").map((c) => ({ list: "main", c })),
  ];
  const app: Container = { name: "app", image: "nginx" };
  const cpuRequest = (c: Container | undefined): unknown => {
    const requests = c?.resources?.requests;
    return typeof requests === "object" && requests !== null && !Array.isArray(requests) ? requests.cpu : undefined;
  };
  const classic = buildConfig({ nativeSidecars: "false" });

  test("a native sidecar declared, native sidecars off: one proxy among the containers, its fields but restartPolicy", () => {
    for (const [how, pod, config] of [
      ["config", podWith({ initContainers: [ownNative], containers: [app] }), classic],
      [
        "annotation",
        podWith({ initContainers: [ownNative], containers: [app] }, { "sidecar.istio.io/nativeSidecar": "false" }),
        buildConfig({ nativeSidecars: "true" }),
      ],
      [
        "gateway",
        podWith({ initContainers: [ownNative], containers: [app] }, { "inject.istio.io/templates": "gateway" }),
        buildConfig({ nativeSidecars: "true" }),
      ],
      [
        "grpc-agent",
        podWith({ initContainers: [ownNative], containers: [app] }, { "inject.istio.io/templates": "grpc-agent" }),
        classic,
      ],
    ] as const) {
      const r = inject(pod, { namespace: "demo" }, config);
      const found = proxies(r.pod);
      assert.equal(found.length, 1, how);
      assert.equal(found[0]?.list, "main", how);
      assert.equal(found[0]?.c.restartPolicy, undefined, how);
      assert.equal(cpuRequest(found[0]?.c), "50m", how);
      assert.ok(found[0]?.c.image?.includes("proxyv2"), how);
      const record = r.pod.metadata?.annotations?.["proxy.istio.io/overrides"] ?? "";
      assert.doesNotMatch(record, /restartPolicy/, how);
      // Injecting the result again gives it back.
      assert.deepEqual(inject(r.pod, { namespace: "demo" }, config).pod, r.pod, how);
    }
  });

  test("recorded as a native sidecar, re-injected with native sidecars off: no restartPolicy among the containers", () => {
    const native = inject(
      podWith({ initContainers: [ownNative], containers: [app] }),
      { namespace: "demo" },
      buildConfig({ nativeSidecars: "true" }),
    );
    assert.match(
      native.pod.metadata?.annotations?.["proxy.istio.io/overrides"] ?? "",
      /"initContainers".*restartPolicy/,
    );
    const again = inject(native.pod, { namespace: "demo" }, classic);
    const found = proxies(again.pod);
    assert.deepEqual(
      found.map((f) => [f.list, f.c.restartPolicy, cpuRequest(f.c)]),
      [["main", undefined, "50m"]],
    );
  });

  test("declared among the containers with a restartPolicy, native sidecars on: the native sidecar's Always", () => {
    const own: Container = { name: "istio-proxy", image: "auto", restartPolicy: "Never" };
    const r = inject(
      podWith({ containers: [app, own] }),
      { namespace: "demo" },
      buildConfig({ nativeSidecars: "true" }),
    );
    assert.deepEqual(
      proxies(r.pod).map((f) => [f.list, f.c.restartPolicy]),
      [["init", "Always"]],
    );
  });
});

describe("recordedContainer (the proxy.istio.io/overrides entry, as Istio's json.Marshal writes it)", () => {
  test("resources: limits, requests, claims in corev1's order; each list's names sorted", () => {
    const c: Container = {
      resources: {
        claims: [{ name: "gpu" }],
        requests: { memory: "512Mi", cpu: "300m" },
        limits: { memory: "2Gi", cpu: "3" },
      },
      image: "my-proxy:dev",
      name: "istio-proxy",
    };
    assert.equal(
      JSON.stringify(recordedContainer(c)),
      '{"name":"istio-proxy","image":"my-proxy:dev","resources":{"limits":{"cpu":"3","memory":"2Gi"},"requests":{"cpu":"300m","memory":"512Mi"},"claims":[{"name":"gpu"}]}}',
    );
  });
});

describe("re-injection: what stripping the previous injection leaves", () => {
  const classic = buildConfig({ nativeSidecars: "false" });
  const native = buildConfig({ nativeSidecars: "true" });
  const env = (c: Container | undefined, name: string): string | undefined =>
    c?.env?.findLast((e) => e.name === name)?.value;
  const proxyOf = (p: Pod): Container | undefined =>
    [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

  test('proxy.istio.io/overrides: "null" records nothing (Go reads null into the struct as nothing)', () => {
    const pod: Pod = {
      metadata: { name: "p", annotations: { "proxy.istio.io/overrides": "null" } },
      spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
    };
    assert.doesNotThrow(() => inject(pod, { namespace: "demo" }, classic));
  });

  test("each list loses only the names the status lists for it: a Pod's own istio-proxy among the containers stays", () => {
    const pod: Pod = {
      metadata: {
        name: "p",
        annotations: {
          "sidecar.istio.io/status": '{"initContainers":["istio-init","istio-proxy"],"containers":null}',
        },
      },
      spec: {
        containers: [
          { name: "app", image: "example.com/app:1" },
          { name: "istio-proxy", image: "auto", env: [{ name: "OWN", value: "1" }] },
        ],
      },
    };
    for (const config of [classic, native]) {
      const out = inject(structuredClone(pod), { namespace: "demo" }, config).pod;
      assert.equal(env(proxyOf(out), "OWN"), "1");
    }
  });

  test("an app container the status names, with no recorded original, is kept (the overrides annotation removed)", () => {
    const first = inject(
      {
        metadata: { name: "p", annotations: { "inject.istio.io/templates": "grpc-agent" } },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      },
      { namespace: "demo" },
      classic,
    ).pod;
    const status = JSON.parse(first.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}") as {
      containers: string[];
    };
    assert.ok(status.containers.includes("app"), "grpc-agent amends the app container, and the status names it");
    for (const overrides of [undefined, "null"]) {
      const again = structuredClone(first);
      const annotations = again.metadata!.annotations!;
      if (overrides === undefined) delete annotations["proxy.istio.io/overrides"];
      else annotations["proxy.istio.io/overrides"] = overrides;
      const out = inject(again, { namespace: "demo" }, classic).pod;
      assert.deepEqual(
        out.spec?.containers.map((c) => c.name),
        ["app", "istio-proxy"],
        `overrides ${overrides}`,
      );
      assert.equal(out.spec?.containers[0]?.image, "example.com/app:1");
    }
  });

  test("the recorded istio-proxy's ports are among ISTIO_META_POD_PORTS again, as at the first injection", () => {
    const pod: Pod = {
      metadata: { name: "p" },
      spec: {
        containers: [
          { name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080 }] },
          { name: "istio-proxy", image: "auto", ports: [{ containerPort: 15021, name: "health" }] },
        ],
      },
    };
    const first = inject(pod, { namespace: "demo" }, classic).pod;
    const again = inject(structuredClone(first), { namespace: "demo" }, classic).pod;
    assert.match(env(proxyOf(first), "ISTIO_META_POD_PORTS") ?? "", /"health"/);
    assert.equal(env(proxyOf(again), "ISTIO_META_POD_PORTS"), env(proxyOf(first), "ISTIO_META_POD_PORTS"));
  });

  test("a Pod's own ISTIO_KUBE_APP_PROBERS before the injection's: the probes are put back from the last", () => {
    const pod: Pod = {
      metadata: { name: "p" },
      spec: {
        containers: [
          { name: "app", image: "example.com/app:1", readinessProbe: { httpGet: { path: "/r", port: 8080 } } },
          { name: "istio-proxy", image: "auto", env: [{ name: "ISTIO_KUBE_APP_PROBERS", value: "{}" }] },
        ],
      },
    };
    const first = inject(pod, { namespace: "demo" }, classic).pod;
    const again = inject(structuredClone(first), { namespace: "demo" }, classic).pod;
    assert.equal(env(proxyOf(again), "ISTIO_KUBE_APP_PROBERS"), env(proxyOf(first), "ISTIO_KUBE_APP_PROBERS"));
    assert.match(env(proxyOf(again), "ISTIO_KUBE_APP_PROBERS") ?? "", /app-health\/app\/readyz/);
  });
});

describe("proxy.istio.io/overrides keys, as Go's encoding/json reads them", () => {
  test("a key in another case names the field (Go matches field names case-insensitively)", () => {
    for (const [key, applied] of [
      ["Containers", true],
      ["CONTAINERS", true],
      ["container\u017f", true], // ſ folds to s
      ["contianers", false],
    ] as const) {
      const pod: Pod = {
        metadata: {
          name: "p",
          annotations: {
            "sidecar.istio.io/status": '{"containers":["istio-proxy"]}',
            "proxy.istio.io/overrides": JSON.stringify({
              [key]: [{ name: "istio-proxy", env: [{ name: "A", value: "1" }] }],
            }),
          },
        },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      };
      const out = inject(pod, { namespace: "demo" }, buildConfig({ nativeSidecars: "false" })).pod;
      const a = out.spec?.containers.find((c) => c.name === "istio-proxy")?.env?.find((e) => e.name === "A");
      assert.equal(a?.value, applied ? "1" : undefined, key);
    }
  });
});

test("a recorded container without an image that the Pod lacks gets no image key, not one holding undefined", () => {
  for (const templates of ["grpc-agent", "grpc-simple"]) {
    const pod: Pod = {
      metadata: {
        name: "p",
        annotations: {
          "inject.istio.io/templates": templates,
          "proxy.istio.io/overrides": JSON.stringify({ containers: [{ name: "recorded" }] }),
        },
      },
      spec: { containers: [{ name: "app", image: "nginx" }] },
    };
    const { pod: out, patch } = inject(pod, { namespace: "demo" }, buildConfig({}));
    const recorded = out.spec?.containers.find((c) => c.name === "recorded");
    assert.ok(recorded, templates);
    assert.equal(Object.hasOwn(recorded, "image"), false, templates);
    // Every value in the patch survives a JSON round trip (no undefined anywhere).
    assert.deepEqual(JSON.parse(JSON.stringify(patch)), patch, templates);
  }
});
