import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import type { Pod } from "../../../src/kube/types.js";
import { decide, matchesSelector } from "../../../src/injection/policy.js";

const pod = (meta: Pod["metadata"] = {}, spec: Partial<NonNullable<Pod["spec"]>> = {}): Pod => ({
  metadata: meta,
  spec: { containers: [{ name: "app" }], ...spec },
});
const config = buildConfig({});

describe("decide", () => {
  test("hostNetwork is checked first, before an explicit opt-in", () => {
    const d = decide(
      pod({ annotations: { "sidecar.istio.io/inject": "true" } }, { hostNetwork: true }),
      "default",
      config,
    );
    assert.equal(d.decision.inject, false);
    assert.match(d.decision.reasons[0] ?? "", /hostNetwork/);
  });
  test("ignored namespaces are never injected, even on opt-in", () => {
    const d = decide(pod({ labels: { "sidecar.istio.io/inject": "true" } }), "kube-system", config);
    assert.equal(d.decision.inject, false);
    assert.match(d.decision.reasons.join(), /kube-system/);
  });
  test("the label wins over the annotation", () => {
    const d = decide(
      pod({ labels: { "sidecar.istio.io/inject": "false" }, annotations: { "sidecar.istio.io/inject": "true" } }),
      "demo",
      config,
    );
    assert.equal(d.decision.inject, false);
    assert.match(d.decision.reasons.join(), /label/);
  });
  test("an invalid value is warned about and falls through to the policy", () => {
    const d = decide(
      pod({ annotations: { "sidecar.istio.io/inject": "yes please" } }),
      "demo",
      buildConfig({ policy: "disabled" }),
    );
    assert.equal(d.decision.inject, false);
    assert.deepEqual(d.warnings.length, 2);
    assert.match(d.warnings[0] ?? "", /annotation is deprecated: use the label/);
    assert.match(d.warnings[1] ?? "", /yes please/);
    assert.match(d.decision.reasons.at(-1) ?? "", /policy disabled/);
  });
  test("neverInjectSelector is checked before alwaysInjectSelector", () => {
    const cfg = buildConfig({
      neverInjectSelector: [{ matchLabels: { a: "1" } }],
      alwaysInjectSelector: [{ matchLabels: { a: "1" } }],
      policy: "disabled",
    });
    assert.equal(decide(pod({ labels: { a: "1" } }), "demo", cfg).decision.inject, false);
    assert.equal(
      decide(
        pod({ labels: { b: "1" } }),
        "demo",
        buildConfig({ alwaysInjectSelector: [{ matchLabels: { b: "1" } }], policy: "disabled" }),
      ).decision.inject,
      true,
    );
  });
  test("policy enabled injects a pod that says nothing", () => {
    const d = decide(pod(), "demo", config);
    assert.deepEqual(d.decision, { inject: true, code: "policy_enabled", reasons: ["policy enabled: injected"] });
  });
});

describe("matchesSelector", () => {
  const labels = { app: "web", tier: "front" };
  test("operators", () => {
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "app", operator: "In", values: ["web", "api"] }] }, labels),
      true,
    );
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] }, labels),
      false,
    );
    assert.equal(
      matchesSelector({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, labels),
      true,
    );
    assert.equal(matchesSelector({ matchExpressions: [{ key: "tier", operator: "Exists" }] }, labels), true);
    assert.equal(matchesSelector({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, labels), false);
    assert.equal(matchesSelector({ matchLabels: { app: "web", tier: "back" } }, labels), false);
  });
});

test("every rule names itself with a bounded code (the skip metric's label)", () => {
  const cfg = buildConfig({
    neverInjectSelector: [{ matchLabels: { n: "1" } }],
    alwaysInjectSelector: [{ matchLabels: { a: "1" } }],
    policy: "disabled",
  });
  const cases: [Pod, string, string][] = [
    [pod({}, { hostNetwork: true }), "demo", "host_network"],
    [pod(), "kube-system", "ignored_namespace"],
    [pod({ labels: { "sidecar.istio.io/inject": "false" } }), "demo", "pod_label"],
    [pod({ annotations: { "sidecar.istio.io/inject": "false" } }), "demo", "pod_annotation"],
    [pod({ labels: { n: "1" } }), "demo", "never_inject_selector"],
    [pod({ labels: { a: "1" } }), "demo", "always_inject_selector"],
    [pod(), "demo", "policy_disabled"],
  ];
  for (const [p, ns, code] of cases) assert.equal(decide(p, ns, cfg).decision.code, code);
  assert.equal(decide(pod(), "demo", config).decision.code, "policy_enabled");
});
