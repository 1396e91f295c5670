import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const pod = (labels: Record<string, string>, annotations: Record<string, string> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "demo", labels, annotations },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});
const names = (c: Container | undefined): string[] => (c?.env ?? []).map((e) => e.name);
const env = (c: Container | undefined, name: string): string | undefined => c?.env?.find((e) => e.name === name)?.value;
const proxyIn = (list: readonly Container[] | undefined): Container | undefined =>
  list?.find((c) => c.name === "istio-proxy");

describe("cluster and network of the proxy", () => {
  test("the network label is written last on the proxy, and stays the Pod's label", () => {
    const out = inject(
      pod({ "topology.istio.io/network": "net1" }),
      { namespace: "demo" },
      buildConfig({ network: "configured" }),
    ).pod;
    const proxy = proxyIn(out.spec?.initContainers) ?? proxyIn(out.spec?.containers);
    assert.equal(env(proxy, "ISTIO_META_NETWORK"), "net1");
    assert.equal(names(proxy).filter((n) => n === "ISTIO_META_NETWORK").length, 1);
    assert.equal(names(proxy).at(-1), "ISTIO_META_NETWORK");
    assert.equal(out.metadata?.labels?.["topology.istio.io/network"], "net1");
  });

  test("a configured network becomes the Pod's label; the default cluster stays in place", () => {
    const out = inject(pod({}), { namespace: "demo" }, buildConfig({ network: "east" })).pod;
    const proxy = proxyIn(out.spec?.initContainers) ?? proxyIn(out.spec?.containers);
    assert.equal(out.metadata?.labels?.["topology.istio.io/network"], "east");
    assert.equal(names(proxy).at(-1), "ISTIO_META_NETWORK");
    assert.notEqual(names(proxy).at(-2), "ISTIO_META_CLUSTER_ID");
    assert.equal(env(proxy, "ISTIO_META_CLUSTER_ID"), "Kubernetes");
  });

  test("sidecar + grpc-agent, native: the one istio-proxy (README, deliberate) gets them", () => {
    const out = inject(
      pod({ "topology.istio.io/network": "net1" }, { "inject.istio.io/templates": "sidecar,grpc-agent" }),
      { namespace: "demo" },
      buildConfig({ nativeSidecars: "true" }),
    ).pod;
    assert.equal(proxyIn(out.spec?.containers), undefined);
    assert.equal(env(proxyIn(out.spec?.initContainers), "ISTIO_META_NETWORK"), "net1");
  });

  test("webhook path variables and a set cluster are appended in name order", () => {
    const out = inject(
      pod({}),
      { namespace: "demo", pathEnv: { ZZ_EXTRA: "1", ISTIO_META_NETWORK: "n2" } },
      buildConfig({ clusterId: "east" }),
    ).pod;
    const proxy = proxyIn(out.spec?.initContainers) ?? proxyIn(out.spec?.containers);
    assert.deepEqual(names(proxy).slice(-3), ["ISTIO_META_CLUSTER_ID", "ISTIO_META_NETWORK", "ZZ_EXTRA"]);
    assert.equal(env(proxy, "ISTIO_META_CLUSTER_ID"), "east");
    assert.equal(env(proxy, "ISTIO_META_NETWORK"), "n2");
  });
});
