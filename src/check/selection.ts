// Which webhooks of the cluster's MutatingWebhookConfigurations the API server calls for a Pod
// being created, decided as the API server decides it (k8s.io/apiserver, admission/plugin/
// webhook/predicates): a webhook is called when one of its rules covers CREATE of v1 pods,
// its namespaceSelector matches the namespace's labels (which include
// kubernetes.io/metadata.name, set by the API server on every namespace), its objectSelector
// matches the Pod's labels, and every matchCondition holds. Label selectors have Kubernetes'
// semantics: every matchLabels entry and every matchExpressions requirement must hold; In and
// Exists need the key, NotIn and DoesNotExist hold without it; an absent selector matches
// everything. matchConditions are CEL, evaluated for the subset injectors write (cel.ts) with
// `object` the stored Pod and `request` a CREATE in its namespace: all true, the webhook is
// called; one false, it is not; one that errors is said with what failurePolicy then does (Fail:
// the Pod is refused; Ignore: the webhook is skipped), and the webhook is not counted as
// injecting; one outside the subset is said not evaluated, with its expression quoted, and the
// webhook is taken as called.
//
// Only sidecar injectors are reported: webhooks whose configuration is labelled
// app=sidecar-injector (Istio's and this chart's, with app.kubernetes.io/name) or whose name
// says "inject". The revision of each is its configuration's istio.io/rev label, else the
// revision its selectors name (istio.io/rev In [...]; istio-injection=enabled or a Pod's
// sidecar.istio.io/inject=true: default). A revision tag's configuration (Istio's
// istio-revision-tag-<tag>, this chart's <fullname>-tag-<tag>) is labelled istio.io/tag=<tag>
// and istio.io/rev=<revision>: its webhooks select istio.io/rev=<tag> and serve <revision>,
// and their verdicts carry the tag.
//
// Pure: no I/O; the objects come from the caller.

import type {
  AdmissionWebhook,
  LabelSelectorObject,
  MutatingWebhookConfigurationObject,
  NamespaceObject,
  WebhookRule,
} from "../kube/api.js";
import type { Pod } from "../kube/types.js";
import { own } from "../injection/own.js";
import { quote, quoteName } from "../injection/quote.js";
import { DEFAULT_REVISION } from "../injection/istio.js";
import { evaluateCondition } from "./cel.js";

export interface WebhookVerdict {
  /** `<configuration>/<webhook>`. */
  readonly webhook: string;
  readonly configuration: string;
  readonly revision: string;
  /** The revision tag whose configuration this webhook is (its istio.io/tag label). */
  readonly tag?: string;
  /** Whether the API server sends this Pod's CREATE to it. */
  readonly called: boolean;
  readonly reason: string;
}

const ANY = "*";

function covers(list: readonly string[], value: string): boolean {
  return list.includes(ANY) || list.includes(value);
}

/** Whether a rule covers CREATE of v1 pods (resources pods, "*" or all with subresources; "pods/..." is subresources
 * only). */
export function coversPodCreate(rules: readonly WebhookRule[]): boolean {
  return rules.some(
    (r) =>
      covers(r.operations, "CREATE") &&
      covers(r.apiGroups, "") &&
      covers(r.apiVersions, "v1") &&
      (r.resources.includes("pods") || r.resources.includes(ANY) || r.resources.includes("*/*")) &&
      (r.scope === undefined || r.scope === ANY || r.scope === "Namespaced"),
  );
}

function label(key: string, value: string | undefined): string {
  return value === undefined ? key : `${key}=${quoteName(value)}`;
}

function valueList(values: readonly string[] | undefined): string {
  return `[${(values ?? []).map(quoteName).join(", ")}]`;
}

/**
 * Why `labels` do not match `selector` (the first requirement that fails, said for people),
 * or undefined when they match. `what` is whose labels they are ("namespace demo", "pod").
 */
export function selectorMismatch(
  selector: LabelSelectorObject | undefined,
  labels: Readonly<Record<string, string>>,
  what: string,
): string | undefined {
  if (selector === undefined) return undefined;
  const has = (key: string): string => {
    const v = own(labels, key);
    return v === undefined ? `${what} has no label ${key}` : `${what} has ${label(key, v)}`;
  };
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (own(labels, k) !== v) return `needs ${label(k, v)}; ${has(k)}`;
  }
  for (const req of selector.matchExpressions ?? []) {
    const value = own(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (value === undefined || !values.includes(value))
          return `needs ${req.key} in ${valueList(values)}; ${has(req.key)}`;
        break;
      case "NotIn":
        if (value !== undefined && values.includes(value))
          return `excludes ${req.key} in ${valueList(values)}; ${has(req.key)}`;
        break;
      case "Exists":
        if (value === undefined) return `needs label ${req.key}; ${has(req.key)}`;
        break;
      case "DoesNotExist":
        if (value !== undefined) return `needs no label ${req.key}; ${has(req.key)}`;
        break;
      default:
        return `has operator ${quote(req.operator)}, which the API server does not know`;
    }
  }
  return undefined;
}

/** The requirements that selected `labels` (the ones that name a value or a key that is there). */
export function selectorMatch(
  selector: LabelSelectorObject | undefined,
  labels: Readonly<Record<string, string>>,
): string[] {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) parts.push(label(k, v));
  for (const req of selector?.matchExpressions ?? []) {
    if (req.operator === "In" || req.operator === "Exists") parts.push(label(req.key, own(labels, req.key)));
  }
  return parts;
}

/** Whether a webhook is a sidecar injector (see the header). */
export function isInjector(config: MutatingWebhookConfigurationObject, webhook: AdmissionWebhook): boolean {
  return (
    own(config.labels, "app") === "sidecar-injector" ||
    own(config.labels, "app.kubernetes.io/name") === "sidecar-injector" ||
    /inject/i.test(webhook.name) ||
    /inject/i.test(config.name)
  );
}

/** The revision tag a configuration stands for (its istio.io/tag label), if it is a tag's. */
export function tagOf(config: MutatingWebhookConfigurationObject): string | undefined {
  return own(config.labels, "istio.io/tag") || undefined;
}

/** How a revision is shown: `REV`, or `REV (tag T)` for a tag's webhook. */
export function revisionLabel(v: { readonly revision: string; readonly tag?: string }): string {
  return v.tag === undefined ? v.revision : `${v.revision} (tag ${quoteName(v.tag)})`;
}

/** The revision a webhook serves (see the header); "-" when nothing says. */
export function revisionOf(config: MutatingWebhookConfigurationObject, webhook: AdmissionWebhook): string {
  const fromLabel = own(config.labels, "istio.io/rev");
  if (fromLabel) return fromLabel;
  for (const selector of [webhook.namespaceSelector, webhook.objectSelector]) {
    const byLabel = own(selector?.matchLabels ?? {}, "istio.io/rev");
    if (byLabel) return byLabel;
    for (const req of selector?.matchExpressions ?? []) {
      if (req.key === "istio.io/rev" && req.operator === "In" && req.values?.[0]) return req.values.join(",");
    }
  }
  // Only the default revision selects istio-injection=enabled namespaces, and Pods labelled
  // sidecar.istio.io/inject=true in unlabelled ones.
  const names = (selector: LabelSelectorObject | undefined, key: string, value: string): boolean =>
    own(selector?.matchLabels ?? {}, key) === value ||
    (selector?.matchExpressions ?? []).some(
      (r) => r.key === key && r.operator === "In" && r.values?.includes(value) === true,
    );
  return names(webhook.namespaceSelector, "istio-injection", "enabled") ||
    names(webhook.objectSelector, "sidecar.istio.io/inject", "true")
    ? DEFAULT_REVISION
    : "-";
}

/** The namespace's labels as the API server matches them: with kubernetes.io/metadata.name. */
export function namespaceLabels(ns: NamespaceObject): Readonly<Record<string, string>> {
  return { ...ns.labels, "kubernetes.io/metadata.name": ns.name };
}

/** How the matchConditions of a webhook come out for a Pod: false (not called, which one), unknown parts, or errors. */
function conditionVerdict(
  w: AdmissionWebhook,
  ns: NamespaceObject,
  object: unknown,
  podName: string,
  decided: DecidedCondition,
): { called: boolean; note: string } {
  const request = {
    namespace: ns.name,
    name: podName,
    operation: "CREATE",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    requestKind: { group: "", version: "v1", kind: "Pod" },
    requestResource: { group: "", version: "v1", resource: "pods" },
  };
  const notes: string[] = [];
  let errored = false;
  for (const c of w.matchConditions) {
    const known = decided(c);
    if (known !== undefined) {
      if (!known.value) return { called: false, note: `matchCondition ${quoteName(c.name)} is false (${known.why})` };
      continue;
    }
    const r = evaluateCondition(c.expression, { object, request });
    if (r.kind === "value" && !r.value) return { called: false, note: `matchCondition ${quoteName(c.name)} is false` };
    if (r.kind === "error") {
      errored = true;
      const policy = w.failurePolicy ?? "Fail";
      notes.push(
        `matchCondition ${quoteName(c.name)} errors (${r.message}): with failurePolicy ${quoteName(policy)} ${policy === "Ignore" ? "the webhook is skipped" : "the Pod is refused"}`,
      );
    }
    if (r.kind === "unsupported")
      notes.push(`matchCondition ${quoteName(c.name)} not evaluated (${r.message}): ${quote(c.expression)}`);
  }
  if (w.matchConditions.length > 0 && notes.length === 0)
    notes.push(
      `${w.matchConditions.length === 1 ? "its matchCondition holds" : `its ${w.matchConditions.length} matchConditions hold`}`,
    );
  return { called: !errored, note: notes.join("; ") };
}

/**
 * A matchCondition whose value is known without evaluating its CEL (the chart's policy mode:
 * the webhook's not-injected-by-policy, decided by the policy's domain), with why; undefined:
 * evaluate it.
 */
export type DecidedCondition = (condition: {
  readonly name: string;
  readonly expression: string;
}) => { readonly value: boolean; readonly why: string } | undefined;

/**
 * For each sidecar-injector webhook called for pods CREATE: whether the API server calls it for
 * `pod` in `ns`, and why. `object` is what matchConditions read as `object` (the stored Pod as
 * JSON; default `pod`); `decided` gives the conditions known without evaluating them.
 */
export function webhookVerdicts(
  configs: readonly MutatingWebhookConfigurationObject[],
  ns: NamespaceObject,
  pod: Pod,
  object: unknown = pod,
  decided: DecidedCondition = () => undefined,
): WebhookVerdict[] {
  const nsLabels = namespaceLabels(ns);
  const podLabels = pod.metadata?.labels ?? {};
  const nsName = `namespace ${quoteName(ns.name)}`;
  const verdicts: WebhookVerdict[] = [];
  for (const config of configs) {
    for (const w of config.webhooks) {
      if (!coversPodCreate(w.rules) || !isInjector(config, w)) continue;
      const tag = tagOf(config);
      const base = {
        webhook: `${config.name}/${w.name}`,
        configuration: config.name,
        revision: revisionOf(config, w),
        ...(tag !== undefined ? { tag } : {}),
      };
      const nsMiss = selectorMismatch(w.namespaceSelector, nsLabels, nsName);
      if (nsMiss !== undefined) {
        verdicts.push({ ...base, called: false, reason: `namespaceSelector ${nsMiss}` });
        continue;
      }
      const podMiss = selectorMismatch(w.objectSelector, podLabels, "the pod");
      if (podMiss !== undefined) {
        verdicts.push({ ...base, called: false, reason: `objectSelector ${podMiss}` });
        continue;
      }
      const matched = [
        ...selectorMatch(w.namespaceSelector, nsLabels)
          .filter((p) => !p.startsWith("kubernetes.io/metadata.name"))
          .map((p) => `namespace label ${p}`),
        ...selectorMatch(w.objectSelector, podLabels).map((p) => `pod label ${p}`),
      ];
      const selected = matched.length > 0 ? matched.join(", ") : "selectors match every pod";
      const conditions = conditionVerdict(w, ns, object, pod.metadata?.name ?? "", decided);
      verdicts.push({
        ...base,
        called: conditions.called,
        reason: conditions.note ? `${selected}; ${conditions.note}` : selected,
      });
    }
  }
  return verdicts;
}
