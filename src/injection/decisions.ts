// Every rule that decides whether a Pod gets a sidecar, named once: its bounded code (the
// Decision's `code`), the label a skip by it is counted under (sidecar_injection_skip_total's
// `reason`), and the sentence its reason says. policy.ts takes the rules in Istio's order and
// words its reasons from this table; the admission layer counts skips from it. A decision
// code without its row, or a skip label outside SKIP_REASONS, does not compile.
import { A } from "./annotations.js";
import type { DecisionCode } from "./types.js";

/** Why a review was answered without a patch: the rule that said no, or the admission gate's reason. */
export const SKIP_REASONS = {
  /** The injection decision said no, by the rule that said it (bounded: DecisionCode). */
  HOST_NETWORK: "host_network",
  IGNORED_NAMESPACE: "ignored_namespace",
  POD_LABEL: "pod_label",
  POD_ANNOTATION: "pod_annotation",
  NEVER_INJECT_SELECTOR: "never_inject_selector",
  POLICY_DISABLED: "policy_disabled",
  /** Decided to inject, but the annotations are over the API server's limit: it refuses the Pod. */
  ANNOTATIONS_TOO_LARGE: "annotations_too_large",
  /** The object under review is not a Pod (or is a Pod subresource). */
  NOT_A_POD: "not_a_pod",
  /** The operation is not CREATE. */
  NOT_CREATE: "not_create",
} as const;
export type SkipReason = (typeof SKIP_REASONS)[keyof typeof SKIP_REASONS];

interface DecisionRule {
  /** The skip label when this rule says no; null for a rule that only ever says yes. */
  readonly skip: SkipReason | null;
  /** The reason, from what the rule read (a namespace, a value, a selector; ignored by some). */
  readonly sentence: (detail: string) => string;
}

const injectOrNot = (value: string): string => (value === "true" ? "injected" : "not injected");

export const DECISION_RULES: { readonly [C in DecisionCode]: DecisionRule } = {
  host_network: { skip: SKIP_REASONS.HOST_NETWORK, sentence: () => "hostNetwork pods are never injected" },
  ignored_namespace: {
    skip: SKIP_REASONS.IGNORED_NAMESPACE,
    sentence: (ns) => `namespace ${ns} is in ignoredNamespaces: never injected`,
  },
  pod_label: {
    skip: SKIP_REASONS.POD_LABEL,
    sentence: (value) => `label ${A.inject}=${value} on the pod: ${injectOrNot(value)}`,
  },
  pod_annotation: {
    skip: SKIP_REASONS.POD_ANNOTATION,
    sentence: (value) => `annotation ${A.inject}=${value} on the pod: ${injectOrNot(value)}`,
  },
  never_inject_selector: {
    skip: SKIP_REASONS.NEVER_INJECT_SELECTOR,
    sentence: (sel) => `pod labels match neverInjectSelector {${sel}}: not injected`,
  },
  always_inject_selector: { skip: null, sentence: (sel) => `pod labels match alwaysInjectSelector {${sel}}: injected` },
  policy_enabled: { skip: null, sentence: () => "policy enabled: injected" },
  policy_disabled: {
    skip: SKIP_REASONS.POLICY_DISABLED,
    sentence: () => "policy disabled and the pod does not opt in: not injected",
  },
  annotations_too_large: {
    skip: SKIP_REASONS.ANNOTATIONS_TOO_LARGE,
    sentence: (limit) =>
      `the pod's annotations are over ${limit} bytes in all, more than the API server admits: not injected`,
  },
};

/** The skip label of a decision that said no; undefined for a rule that never says no. */
export function skipReasonOf(code: DecisionCode): SkipReason | undefined {
  return DECISION_RULES[code].skip ?? undefined;
}
