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
