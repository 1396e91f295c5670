// The config `inject --from-cluster` injects with, over an in-memory cluster: the named
// webhook configuration's ConfigMap (the lookup `check` uses), `nativeSidecars: auto` decided
// by the nodes both ways, and each thing that can be missing or refused named, with nothing
// read that is not needed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CheckNotFoundError, clusterInjectorConfig } from "../../../src/check/check.js";
import { ConfigError } from "../../../src/config/load.js";
import { KubeError } from "../../../src/kube/api.js";
import { FakeInspect, istiod, ours } from "./fake-inspect.js";

const CONFIGMAP = "sidecar-injector-system/sidecar-injector";
const IMAGE = "registry.example.com/proxyv2:9.9.9";

/** null: no ConfigMap. */
function cluster(
  configYaml: string | Error | null = `proxy:\n  image: ${IMAGE}\n`,
  nodes: string[] | Error = ["v1.33.1", "v1.34.0"],
): FakeInspect {
  const k = new FakeInspect();
  k.configs = [istiod(), ours()];
  if (configYaml instanceof Error) k.configMaps.set(CONFIGMAP, configYaml);
  else if (configYaml !== null) k.configMaps.set(CONFIGMAP, { "config.yaml": configYaml });
  k.nodeVersions = nodes;
  return k;
}

const FROM = "config: configmap sidecar-injector-system/sidecar-injector (webhook configuration sidecar-injector)";

describe("clusterInjectorConfig (inject --from-cluster)", () => {
  test("found: the ConfigMap's config; nativeSidecars: auto with every kubelet v1.33 or later: native", async () => {
    const k = cluster();
    const found = await clusterInjectorConfig(k, "sidecar-injector");
    assert.equal(found.config.proxy.image, IMAGE);
    assert.equal(found.config.nativeSidecars, "true");
    assert.equal(found.source, "configmap sidecar-injector-system/sidecar-injector");
    assert.deepEqual(found.nodes, { count: 2, native: true });
    assert.equal(found.summary, `${FROM}; native sidecars: yes (2 nodes)`);
    assert.deepEqual(k.calls, ["listMutatingWebhookConfigurations", `readConfigMap ${CONFIGMAP}`, "listNodeVersions"]);
  });

  test("nativeSidecars: auto with one kubelet older than v1.33, or no nodes: not native", async () => {
    const old = await clusterInjectorConfig(cluster("{}", ["v1.34.0", "v1.32.9"]), "sidecar-injector");
    assert.equal(old.config.nativeSidecars, "false");
    assert.deepEqual(old.nodes, { count: 2, native: false });
    assert.equal(old.summary, `${FROM}; native sidecars: no (2 nodes, not every kubelet v1.33 or later)`);
    const none = await clusterInjectorConfig(cluster("{}", []), "sidecar-injector");
    assert.equal(none.config.nativeSidecars, "false");
    assert.equal(none.summary, `${FROM}; native sidecars: no (no nodes)`);
  });

  test("nativeSidecars set in the config: the nodes are not read", async () => {
    const k = cluster('nativeSidecars: "true"\n', new KubeError("list Nodes: forbidden", 403));
    const found = await clusterInjectorConfig(k, "sidecar-injector");
    assert.equal(found.config.nativeSidecars, "true");
    assert.equal(found.nodes, undefined);
    assert.equal(found.summary, `${FROM}; native sidecars: yes (nativeSidecars: true)`);
    assert.ok(!k.calls.includes("listNodeVersions"), k.calls.join(", "));
  });

  test("not found: no such webhook configuration, no ConfigMap, no config.yaml, a URL, not the chart's", async () => {
    await assert.rejects(clusterInjectorConfig(cluster(), "nope"), (e: unknown) => {
      assert.ok(e instanceof CheckNotFoundError);
      assert.equal(
        e.message,
        "MutatingWebhookConfiguration nope not found (name the injector's with --webhook-config)",
      );
      return true;
    });
    await assert.rejects(clusterInjectorConfig(cluster(null), "sidecar-injector"), (e: unknown) => {
      assert.ok(e instanceof CheckNotFoundError);
      assert.equal(
        e.message,
        "the config of MutatingWebhookConfiguration sidecar-injector cannot be found: configmap sidecar-injector-system/sidecar-injector does not exist",
      );
      return true;
    });
    const noKey = cluster();
    noKey.configMaps.set(CONFIGMAP, { other: "x" });
    await assert.rejects(
      clusterInjectorConfig(noKey, "sidecar-injector"),
      /configmap sidecar-injector-system\/sidecar-injector has no config\.yaml$/,
    );
    const url = cluster();
    url.configs = [
      {
        ...ours(),
        webhooks: ours().webhooks.map((w) => ({ ...w, clientConfig: { url: "https://injector.example.com/inject" } })),
      },
    ];
    await assert.rejects(
      clusterInjectorConfig(url, "sidecar-injector"),
      /its webhooks call a URL, not a Service, so its ConfigMap is unknown$/,
    );
    // istiod's webhooks call no Service in this fake: said, with why its config is not where the chart puts it.
    await assert.rejects(clusterInjectorConfig(cluster(), "istio-sidecar-injector"), (e: unknown) => {
      assert.ok(e instanceof CheckNotFoundError);
      assert.match(
        e.message,
        /^the config of MutatingWebhookConfiguration istio-sidecar-injector cannot be found: .*\(it is not this chart's: no app\.kubernetes\.io\/name=sidecar-injector label\)$/,
      );
      return true;
    });
    assert.ok(!noKey.calls.includes("listNodeVersions"), "nothing read after the config is missing");
  });

  test("forbidden: the ConfigMap, the nodes, the webhook configurations; an invalid config", async () => {
    const refused = new KubeError(`read ConfigMap ${CONFIGMAP}: configmaps "sidecar-injector" is forbidden`, 403);
    await assert.rejects(clusterInjectorConfig(cluster(refused), "sidecar-injector"), refused);
    const nodes = new KubeError("list Nodes: nodes is forbidden", 403);
    await assert.rejects(clusterInjectorConfig(cluster("{}", nodes), "sidecar-injector"), nodes);
    const list = cluster();
    const listRefused = new KubeError("list MutatingWebhookConfigurations: forbidden", 403);
    list.listMutatingWebhookConfigurations = () => Promise.reject(listRefused);
    await assert.rejects(clusterInjectorConfig(list, "sidecar-injector"), listRefused);
    await assert.rejects(clusterInjectorConfig(cluster("proxy:\n  image: 7\n"), "sidecar-injector"), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /configmap sidecar-injector-system\/sidecar-injector config\.yaml/);
      return true;
    });
  });
});
