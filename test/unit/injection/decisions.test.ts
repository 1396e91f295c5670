import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import type { Pod } from "../../../src/kube/types.js";
import { DECISION_RULES, SKIP_REASONS, skipReasonOf } from "../../../src/injection/decisions.js";
import { decide } from "../../../src/injection/policy.js";
import { DECISION_CODES, type DecisionCode } from "../../../src/injection/types.js";

const pod = (
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
  hostNetwork = false,
): Pod => ({
  metadata: { labels, annotations },
  spec: { containers: [{ name: "app" }], ...(hostNetwork ? { hostNetwork } : {}) },
});
const enabled = buildConfig({
  neverInjectSelector: [{ matchLabels: { never: "yes" } }],
  alwaysInjectSelector: [{ matchLabels: { always: "yes" } }],
});
const disabled = buildConfig({ policy: "disabled", alwaysInjectSelector: [{ matchLabels: { always: "yes" } }] });

// One Pod (and config) for each way policy.ts decides, with the code it must give.
const CASES: readonly [string, Pod, string, ReturnType<typeof buildConfig>, DecisionCode, boolean][] = [
  ["hostNetwork", pod({}, {}, true), "demo", enabled, "host_network", false],
  ["ignored namespace", pod(), "kube-system", enabled, "ignored_namespace", false],
  ["label true", pod({ "sidecar.istio.io/inject": "true" }), "demo", disabled, "pod_label", true],
  ["label false", pod({ "sidecar.istio.io/inject": "false" }), "demo", enabled, "pod_label", false],
  ["annotation true", pod({}, { "sidecar.istio.io/inject": "true" }), "demo", disabled, "pod_annotation", true],
  ["annotation false", pod({}, { "sidecar.istio.io/inject": "false" }), "demo", enabled, "pod_annotation", false],
  ["never selector", pod({ never: "yes" }), "demo", enabled, "never_inject_selector", false],
  ["always selector", pod({ always: "yes" }), "demo", disabled, "always_inject_selector", true],
  ["policy enabled", pod(), "demo", enabled, "policy_enabled", true],
  ["policy disabled", pod(), "demo", disabled, "policy_disabled", false],
  [
    "annotations over 256 KiB",
    pod({}, { big: "x".repeat(256 * 1024) }),
    "demo",
    enabled,
    "annotations_too_large",
    false,
  ],
];

test("every decision code is reached, its reason is its rule's sentence, and every skip has a label", () => {
  const seen = new Set<DecisionCode>();
  for (const [name, p, ns, config, code, inject] of CASES) {
    const d = decide(p, ns, config).decision;
    assert.equal(d.code, code, name);
    assert.equal(d.inject, inject, name);
    seen.add(d.code);
    assert.match(d.reasons.at(-1) ?? "", inject ? /: injected$/ : /(not|never) injected$/, name);
    if (!inject) assert.notEqual(skipReasonOf(d.code), undefined, `${name}: a skip without a metric label`);
  }
  assert.deepEqual([...seen].sort(), [...DECISION_CODES].sort());
});

test("the reasons are the table's sentences", () => {
  assert.equal(
    decide(pod({}, {}, true), "demo", enabled).decision.reasons[0],
    DECISION_RULES.host_network.sentence(""),
  );
  assert.equal(
    decide(pod(), "kube-system", enabled).decision.reasons[0],
    "namespace kube-system is in ignoredNamespaces: never injected",
  );
  assert.equal(
    decide(pod({ "sidecar.istio.io/inject": "false" }), "demo", enabled).decision.reasons[0],
    "label sidecar.istio.io/inject=false on the pod: not injected",
  );
  assert.equal(
    decide(pod({ never: "yes" }), "demo", enabled).decision.reasons[0],
    "pod labels match neverInjectSelector {never=yes}: not injected",
  );
});

test("the skip labels are the skipping rules' and the admission gate's two, each once", () => {
  const fromRules = DECISION_CODES.flatMap((c) => {
    const s = DECISION_RULES[c].skip;
    return s === null ? [] : [s];
  });
  assert.deepEqual(
    [...fromRules, SKIP_REASONS.NOT_A_POD, SKIP_REASONS.NOT_CREATE].sort(),
    Object.values(SKIP_REASONS).sort(),
  );
  assert.equal(new Set(fromRules).size, fromRules.length);
  // A rule that only ever says yes has no skip label: no skip is counted under a wrong one.
  assert.equal(skipReasonOf("policy_enabled"), undefined);
  assert.equal(skipReasonOf("always_inject_selector"), undefined);
});
