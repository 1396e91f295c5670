// Whether a Pod gets a sidecar, decided in Istio's order (injectRequired):
// hostNetwork, ignored namespaces, the pod's own inject label/annotation, neverInjectSelector,
// alwaysInjectSelector, then the policy. Each rule's code, skip label and sentence are in
// decisions.ts. A Pod those rules inject is left alone when its annotations are over the API
// server's limit: the API server refuses it whoever injects it (Istio injects it, and the API
// server's refusal says why), and its annotations are not worth reading.
import type { Config, LabelSelector } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import { A, L } from "./annotations.js";
import { DECISION_RULES } from "./decisions.js";
import { own } from "./own.js";
import { annotationsOverLimit, MAX_ANNOTATIONS_BYTES } from "./shape.js";
import type { Decision, DecisionCode } from "./types.js";
import { quote } from "./quote.js";

export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (own(labels, k) !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = own(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(value ?? "")) return false;
        break;
      case "NotIn":
        if (has && values.includes(value ?? "")) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

function describeSelector(s: LabelSelector): string {
  const parts = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of s.matchExpressions ?? []) parts.push(`${r.key} ${r.operator} [${(r.values ?? []).join(",")}]`);
  return parts.join(", ") || "(everything)";
}

export interface PolicyOutcome {
  readonly decision: Decision;
  /** Values that were present but ignored. */
  readonly warnings: readonly string[];
}

export function decide(pod: Pod, namespace: string, config: Config): PolicyOutcome {
  const outcome = decideByRules(pod, namespace, config);
  if (!outcome.decision.inject || !annotationsOverLimit(pod.metadata?.annotations)) return outcome;
  const code = "annotations_too_large";
  const reasons = [...outcome.decision.reasons, DECISION_RULES[code].sentence(String(MAX_ANNOTATIONS_BYTES))];
  return { decision: { inject: false, code, reasons }, warnings: outcome.warnings };
}

function decideByRules(pod: Pod, namespace: string, config: Config): PolicyOutcome {
  const reasons: string[] = [];
  const warnings: string[] = [];
  const done = (inject: boolean, code: DecisionCode, detail = ""): PolicyOutcome => {
    reasons.push(DECISION_RULES[code].sentence(detail));
    return { decision: { inject, code, reasons }, warnings };
  };

  if (pod.spec?.hostNetwork === true) return done(false, "host_network");
  if (config.ignoredNamespaces.includes(namespace)) return done(false, "ignored_namespace", namespace);

  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  let source: "label" | "annotation" = "label";
  let value: string | undefined;
  if (labels[L.inject] !== undefined) {
    source = "label";
    value = labels[L.inject];
  } else if (annotations[A.inject] !== undefined) {
    source = "annotation";
    value = annotations[A.inject];
  }
  if (source === "annotation" && value !== undefined) {
    warnings.push(
      `the ${A.inject} annotation is deprecated: use the label, which the webhook's objectSelector also reads`,
    );
  }
  if (value !== undefined) {
    if (value === "true" || value === "false")
      return done(value === "true", source === "label" ? "pod_label" : "pod_annotation", value);
    const w = `${source} ${A.inject}=${quote(value)} is neither "true" nor "false": ignored`;
    warnings.push(w);
    reasons.push(w);
  }

  for (const sel of config.neverInjectSelector) {
    if (matchesSelector(sel, labels)) return done(false, "never_inject_selector", describeSelector(sel));
  }
  for (const sel of config.alwaysInjectSelector) {
    if (matchesSelector(sel, labels)) return done(true, "always_inject_selector", describeSelector(sel));
  }
  if (config.policy === "enabled") return done(true, "policy_enabled");
  return done(false, "policy_disabled");
}
