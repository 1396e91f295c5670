import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { importIstioConfig } from "../../../src/istio/import.js";
import {
  configMapsFromValues,
  isIstioOperator,
  isIstioValues,
  mergeValues,
  operatorValues,
} from "../../../src/istio/values-file.js";

describe("Helm values and IstioOperator as the chart's ConfigMaps", () => {
  test("no values: the chart's defaults, nothing unsupported; the released chart's hub and tag, not the pinned commit's", () => {
    const r = importIstioConfig(configMapsFromValues({}, "helm-values"));
    assert.deepEqual(
      r.findings.filter((f) => f.severity === "unsupported"),
      [],
    );
    assert.deepEqual(r.config, {}, "a values file that changes nothing imports to our defaults");
    const tagOnly = importIstioConfig(configMapsFromValues({ global: { tag: "1.28.2" } }, "helm-values"));
    assert.deepEqual(tagOnly.config, { proxy: { image: "docker.io/istio/proxyv2:1.28.2" } });
  });

  test("values reach the config; findings are named by the values' path", () => {
    const maps = configMapsFromValues(
      {
        global: { hub: "r.example/i", tag: "1.0", proxy: { autoInject: "disabled", lifecycle: { preStop: {} } } },
        sidecarInjectorWebhook: {
          neverInjectSelector: [{ matchLabels: { a: "b" } }],
          templates: { custom: "spec: {}\n" },
        },
        meshConfig: { trustDomain: "t.example", defaultConfig: { concurrency: 2 } },
        pilot: { resources: { requests: { cpu: "1" } } },
      },
      "helm-values",
    );
    const r = importIstioConfig(maps);
    assert.equal(r.config.policy, "disabled");
    assert.equal(r.config.trustDomain, "t.example");
    assert.deepEqual(r.config.neverInjectSelector, [{ matchLabels: { a: "b" } }]);
    assert.deepEqual(r.config.proxyConfig, { concurrency: 2 });
    assert.deepEqual(
      r.findings
        .filter((f) => f.severity === "unsupported")
        .map((f) => f.path)
        .sort(),
      ["helm-values.config.templates.custom", "helm-values.values.global.proxy.lifecycle"],
    );
  });

  test("the chart's defaultConfig: meshId from global.meshID, image.imageType from the variants", () => {
    const r = importIstioConfig(
      configMapsFromValues({ global: { meshID: "mesh-a", variant: "distroless" } }, "helm-values"),
    );
    assert.deepEqual(r.config.proxyConfig, { meshId: "mesh-a", image: { imageType: "distroless" } });
    // global.proxy.variant is the proxy's (the chart's mesh ConfigMap reads it, the templates do not).
    const proxyVariant = importIstioConfig(
      configMapsFromValues({ global: { variant: "distroless", proxy: { variant: "debug" } } }, "helm-values"),
    );
    assert.deepEqual(proxyVariant.config.proxyConfig, { image: { imageType: "debug" } });
    assert.deepEqual(
      proxyVariant.findings.filter((f) => f.severity === "unsupported"),
      [],
    );
    // meshConfig's own defaultConfig goes over them.
    const over = importIstioConfig(
      configMapsFromValues(
        { global: { variant: "distroless" }, meshConfig: { defaultConfig: { image: { imageType: "default" } } } },
        "helm-values",
      ),
    );
    assert.deepEqual(over.config.proxyConfig, { image: { imageType: "default" } });
  });

  test("a revision names its istiod in the default mesh", () => {
    const r = importIstioConfig(configMapsFromValues({ revision: "canary" }, "helm-values", "mesh-system"));
    assert.equal(r.config.discoveryAddress, "istiod-canary.mesh-system.svc:15012");
  });

  test("values files merge in order, maps key by key, lists whole; null removes", () => {
    const merged = mergeValues(mergeValues({}, { global: { hub: "a", proxy: { logLevel: "debug" } }, x: [1, 2] }), {
      global: { hub: "b", tag: null },
      x: [3],
    });
    assert.deepEqual(merged, { global: { hub: "b", proxy: { logLevel: "debug" }, tag: undefined }, x: [3] });
  });

  test("an IstioOperator's hub, tag, revision and meshConfig are values", () => {
    const iop = {
      apiVersion: "install.istio.io/v1alpha1",
      kind: "IstioOperator",
      spec: { hub: "h", tag: 2, revision: "r", meshConfig: { trustDomain: "d" }, values: { global: { network: "n" } } },
    };
    assert.ok(isIstioOperator(iop));
    assert.ok(!isIstioValues(iop));
    assert.deepEqual(operatorValues(iop), {
      global: { network: "n", hub: "h", tag: 2 },
      revision: "r",
      meshConfig: { trustDomain: "d" },
    });
    assert.ok(isIstioValues({ global: {} }));
    assert.ok(!isIstioValues({ kind: "ConfigMap", global: {} }));
  });
});
