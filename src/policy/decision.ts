// The injection decision (policy.ts) as one CEL expression over the admitted `object` and
// `request`, rule for rule in the engine's order: hostNetwork, the ignored namespaces, the
// Pod's sidecar.istio.io/inject label (or, without it, annotation) when it says "true" or
// "false", neverInjectSelector, alwaysInjectSelector, then the config's policy. The namespace
// and object selectors of the chart's webhooks are the bindings' matchResources.
import type { Config, LabelSelector, LabelSelectorRequirement } from "../config/types.js";
import { A, L } from "../injection/annotations.js";
import { str, strList } from "./cel.js";

const LABELS = "object.metadata.labels";
const ANNOTATIONS = "object.metadata.annotations";

/** `key in map`, false when the Pod has no such map. */
const hasKey = (map: string, key: string): string => `(has(${map}) && ${key} in ${map})`;

function requirement(r: LabelSelectorRequirement): string {
  const k = str(r.key);
  const values = strList(r.values ?? []);
  switch (r.operator) {
    case "In":
      return `(${hasKey(LABELS, k)} && ${LABELS}[${k}] in ${values})`;
    case "NotIn":
      return `(!${hasKey(LABELS, k)} || !(${LABELS}[${k}] in ${values}))`;
    case "Exists":
      return hasKey(LABELS, k);
    case "DoesNotExist":
      return `!${hasKey(LABELS, k)}`;
  }
}

/** A LabelSelector as CEL over the Pod's labels (an empty selector matches everything). */
export function selectorExpression(s: LabelSelector): string {
  const terms = [
    ...Object.entries(s.matchLabels ?? {}).map(
      ([k, v]) => `(${hasKey(LABELS, str(k))} && ${LABELS}[${str(k)}] == ${str(v)})`,
    ),
    ...(s.matchExpressions ?? []).map(requirement),
  ];
  return terms.length ? `(${terms.join(" && ")})` : "true";
}

/** True when the webhook would inject the Pod (the engine's decide()). */
export function decisionExpression(config: Config): string {
  const li = str(L.inject);
  const ai = str(A.inject);
  const bool = strList(["true", "false"]);
  const never = config.neverInjectSelector.map(selectorExpression);
  const always = config.alwaysInjectSelector.map(selectorExpression);
  const selectors =
    (never.length ? `!(${never.join(" || ")}) && ` : "") +
    `(${[config.policy === "enabled" ? "true" : "false", ...always].join(" || ")})`;
  return (
    `!object.spec.?hostNetwork.orValue(false) && !(request.namespace in ${strList(config.ignoredNamespaces)}) && ` +
    `(${hasKey(LABELS, li)} && ${LABELS}[${li}] in ${bool} ? ${LABELS}[${li}] == "true" : ` +
    `!${hasKey(LABELS, li)} && ${hasKey(ANNOTATIONS, ai)} && ${ANNOTATIONS}[${ai}] in ${bool} ? ${ANNOTATIONS}[${ai}] == "true" : ` +
    `${selectors})`
  );
}
