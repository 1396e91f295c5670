// The proxy's resources from the Pod's annotations, without a cluster: which containers the
// engine gives them (read from its output), which values the domain admits, and that a config
// whose containers have no resources leaves the annotations to the webhook. That the API server
// stores what the webhook stores is the e2e suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { resourceContainers } from "../../../src/policy/resources.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { annotatedPod, OPTIONS } from "./support.js";

describe("the proxy's resources from the Pod's annotations", () => {
  test("the engine sets them in istio-init and istio-proxy, with or without native sidecars", () => {
    assert.deepEqual(resourceContainers(DEFAULT_CONFIG, false), ["istio-init", "istio-proxy"]);
    assert.deepEqual(resourceContainers(DEFAULT_CONFIG, true), ["istio-init", "istio-proxy"]);
  });

  test("plain quantities are inside; others, and annotations the policy does not honour, are outside", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const v of ["100m", "0.5", "2", "128Mi", "1G", "1.125"])
      assert.equal(outsideDomain(rules, annotatedPod({ "sidecar.istio.io/proxyMemoryLimit": v })), undefined, v);
    for (const v of ["", " 1", "1e3", "1.2345", "-1", "1Ti", "1234567", "0.5m"]) {
      const why = outsideDomain(rules, annotatedPod({ "sidecar.istio.io/proxyCPU": v })) ?? "";
      assert.match(why, /annotation "sidecar\.istio\.io\/proxyCPU" has the value .* plain quantities/, v);
    }
    assert.match(
      outsideDomain(rules, annotatedPod({ "sidecar.istio.io/proxyCPU": "1", "sidecar.istio.io/proxyImage": "x" })) ??
        "",
      /annotation "sidecar\.istio\.io\/proxyImage", which only the webhook reads/,
    );
  });

  test("the injected containers' resources are computed, the config's written when the Pod names none", () => {
    const { policy } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    const spec = policy.spec as { variables: { name: string; expression: string }[] };
    for (const name of ["injectedContainers", "injectedInitContainers"]) {
      const e = spec.variables.find((v) => v.name === name)?.expression ?? "";
      assert.match(e, /"resources": dyn\(\(\("sidecar\.istio\.io\/proxyCPU" in variables\.annotations/, name);
      assert.match(e, /: dyn\(\{"requests": dyn\(\{"cpu": dyn\("100m"\), "memory": dyn\("128Mi"\)\}\)/, name);
    }
  });

  test("a config whose proxy has no resources leaves the annotations to the webhook", () => {
    const config = parseConfig("proxy:\n  resources: {}\n");
    assert.equal(resourceContainers(config, false), undefined);
    const { rules, policy } = renderPolicy(config, OPTIONS);
    assert.match(
      outsideDomain(rules, annotatedPod({ "sidecar.istio.io/proxyCPU": "1" })) ?? "",
      /only the webhook reads/,
    );
    assert.doesNotMatch(JSON.stringify(policy), /proxyCPULimit/);
  });
});
