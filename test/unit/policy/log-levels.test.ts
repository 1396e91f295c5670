// The proxy's log levels from the Pod's annotations, without a cluster: which arguments the
// engine lets them set (read from its output), which values the domain admits, and where the
// rendered policy computes them. That the API server stores what the webhook stores is the e2e
// suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { argExpression, logLevelSlots } from "../../../src/policy/log-levels.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { annotatedPod, OPTIONS } from "./support.js";

describe("the proxy's log levels from the Pod's annotations", () => {
  test("each sets one flag of the containers the engine writes it in, else the config's value", () => {
    assert.deepEqual(
      logLevelSlots(DEFAULT_CONFIG, false).map((s) => [s.annotation, s.container, s.prefix, s.configured]),
      [
        ["sidecar.istio.io/logLevel", "istio-proxy", "--proxyLogLevel=", DEFAULT_CONFIG.proxy.logLevel],
        ["sidecar.istio.io/componentLogLevel", "istio-proxy", "--proxyComponentLogLevel=", "misc:error"],
        ["sidecar.istio.io/agentLogLevel", "istio-init", "--log_output_level=", "default:info"],
        ["sidecar.istio.io/agentLogLevel", "istio-proxy", "--log_output_level=", "default:info"],
      ],
    );
    const [first] = logLevelSlots(DEFAULT_CONFIG, true);
    assert.ok(first);
    assert.equal(
      argExpression(first),
      `"--proxyLogLevel=" + variables.annotations[?"sidecar.istio.io/logLevel"].orValue("${DEFAULT_CONFIG.proxy.logLevel}")`,
    );
  });

  test("plain values are inside, even a level Envoy does not know; others are outside, naming them", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const v of ["debug", "loud", "misc:error,upstream:debug", "default:debug"])
      assert.equal(outsideDomain(rules, annotatedPod({ "sidecar.istio.io/componentLogLevel": v })), undefined, v);
    for (const v of ["", "debug info", 'a"b', "x".repeat(257)]) {
      const why = outsideDomain(rules, annotatedPod({ "sidecar.istio.io/logLevel": v })) ?? "";
      assert.match(why, /annotation "sidecar\.istio\.io\/logLevel" has the value .*letters, digits/, v);
    }
  });

  test("the rendered policy computes the arguments in the injected containers", () => {
    const spec = renderPolicy(DEFAULT_CONFIG, OPTIONS).policy.spec as {
      variables: { name: string; expression: string }[];
    };
    const containers = spec.variables.find((v) => v.name === "injectedContainers")?.expression ?? "";
    const init = spec.variables.find((v) => v.name === "injectedInitContainers")?.expression ?? "";
    assert.match(containers, /dyn\(\("--proxyLogLevel=" \+ variables\.annotations\[\?"sidecar\.istio\.io\/logLevel"\]/);
    assert.match(
      init,
      /dyn\(\("--log_output_level=" \+ variables\.annotations\[\?"sidecar\.istio\.io\/agentLogLevel"\]/,
    );
    assert.doesNotMatch(containers, /"--proxyLogLevel=warning"/);
  });
});
