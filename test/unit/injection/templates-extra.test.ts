import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { GRPC_SIMPLE_INIT_IMAGE, istioNamespace } from "../../../src/injection/templates-extra.js";
import type { Pod } from "../../../src/kube/types.js";

describe("grpc-simple", () => {
  test("the control plane's namespace comes from the discovery address", () => {
    assert.equal(istioNamespace("istiod.istio-system.svc:15012"), "istio-system");
    assert.equal(istioNamespace("istiod-canary.mesh-cp.svc.cluster.local:15012"), "mesh-cp");
    assert.equal(istioNamespace("10.0.0.1:15012"), "istio-system");
    assert.equal(istioNamespace("pilot.example.com:15012"), "istio-system");
  });

  test("busybox writes the bootstrap, ISTIO_NAMESPACE set; merged metrics annotations without a proxy or its env", () => {
    const config = buildConfig({ discoveryAddress: "istiod.mesh-cp.svc:15012" });
    const pod: Pod = {
      metadata: { name: "g", annotations: { "inject.istio.io/templates": "grpc-simple", "prometheus.io/port": "9100" } },
      spec: { containers: [{ name: "server", image: "example.com/grpc:1" }] },
    };
    const r = inject(pod, { namespace: "demo" }, config);
    const init = r.pod.spec?.initContainers?.find((c) => c.name === "grpc-bootstrap-init");
    assert.equal(init?.image, GRPC_SIMPLE_INIT_IMAGE);
    assert.deepEqual(init?.env?.find((e) => e.name === "ISTIO_NAMESPACE"), { name: "ISTIO_NAMESPACE", value: "mesh-cp\n" });
    const annotations = r.pod.metadata?.annotations ?? {};
    assert.equal(annotations["prometheus.io/port"], "15020");
    assert.equal(annotations["istio.io/rev"], undefined, "grpc-simple writes no revision annotation");
    const all = [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])];
    assert.ok(!all.some((c) => c.name === "istio-proxy"));
    assert.ok(!all.some((c) => c.env?.some((e) => e.name === "ISTIO_PROMETHEUS_ANNOTATIONS")));
  });
});
