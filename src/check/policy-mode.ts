// The chart's policy mode, as `check` sees it: this chart's MutatingAdmissionPolicy in the
// cluster (labelled app.kubernetes.io/part-of=sidecar-injector, or carrying the
// sidecar-injector.dev/webhook-match-condition annotation that `policy render` writes on every
// policy it prints), its bindings (spec.policyName), and for a Pod which injector takes its next
// CREATE and why:
// - "none": no binding selects it (the bindings have the webhooks' selectors, so no webhook of
//   the chart does either);
// - "policy": a binding selects it and it is inside the policy's domain; the policy then injects
//   it when the injection decision (its "inject" matchCondition, the engine's decide()) says so,
//   and the webhook is not called (its matchCondition not-injected-by-policy is false);
// - "webhook": outside the domain, with the domain's reason (src/policy/domain.ts); the
//   webhook's matchCondition is true.
// The domain is that of the injector's current config (the one `check` compares sidecars
// with; the defaults when it is not known, said as an info finding). The policy's own
// matchConditions are compared with the ones `policy render` gives for that config: when they
// differ, the policy was rendered for another config, and a warning says to render it again.
// An injected stored Pod is judged as it is created again (its injection undone).
//
// Pure: no I/O; the objects come from the caller.
import type { Config } from "../config/types.js";
import type {
  AdmissionPolicies,
  AdmissionPolicyBindingObject,
  AdmissionPolicyObject,
  NamespaceObject,
} from "../kube/api.js";
import type { Pod } from "../kube/types.js";
import type { WorkloadRef } from "../injection/types.js";
import { decide } from "../injection/policy.js";
import { own } from "../injection/own.js";
import { quoteName } from "../injection/quote.js";
import { policyDomainOf, WEBHOOK_CONDITION_ANNOTATION } from "../policy/render.js";
import { PolicyRenderError } from "../policy/errors.js";
import { domainVerdict, policyDomain, type PolicyDomain } from "../policy/verdict.js";
import type { Finding } from "./check.js";
import { namespaceLabels, selectorMismatch } from "./selection.js";

/** The webhook's matchCondition that leaves to it the Pods outside the policy's domain. */
export const WEBHOOK_CONDITION_NAME = "not-injected-by-policy";

export interface CheckedPolicy {
  readonly name: string;
  readonly apiVersion: string;
  readonly bindings: readonly string[];
  /** Where the config whose domain is stated comes from ("configmap ns/name", "--config", "defaults"). */
  readonly config: string;
  readonly findings: readonly Finding[];
}

/** Which injector takes a Pod's next CREATE with the policy mode on, and why. */
export interface PolicyTake {
  readonly policy: string;
  readonly injector: "policy" | "webhook" | "none";
  /** With injector "policy": whether it injects (else it admits the Pod unchanged). */
  readonly injects: boolean;
  readonly reason: string;
}

/** What `check` needs of one policy for every Pod: built once. */
export interface PolicyMode {
  readonly policy: AdmissionPolicyObject;
  readonly bindings: readonly AdmissionPolicyBindingObject[];
  readonly domain: PolicyDomain;
  readonly config: Config;
}

/** This chart's policies among the cluster's (see the header). */
export function ourPolicies(found: AdmissionPolicies): AdmissionPolicyObject[] {
  return found.policies.filter(
    (p) =>
      own(p.labels, "app.kubernetes.io/part-of") === "sidecar-injector" ||
      own(p.annotations, WEBHOOK_CONDITION_ANNOTATION) !== undefined,
  );
}

const DOMAIN_PREFIX = "policy-domain-";

/** Whether the policy's domain conditions are those `policy render` gives for `config`. */
function renderedFor(policy: AdmissionPolicyObject, config: Config): boolean | string {
  const stated = new Map(
    policy.matchConditions.filter((c) => c.name.startsWith(DOMAIN_PREFIX)).map((c) => [c.name, c.expression]),
  );
  // Native sidecars or not, the domain names the same containers, in another order: either may be the one rendered.
  for (const native of [false, true]) {
    let rules;
    try {
      rules = policyDomainOf(config, native).rules;
    } catch (e) {
      if (e instanceof PolicyRenderError) return e.message;
      throw e;
    }
    if (rules.length === stated.size && rules.every((r) => stated.get(r.name) === r.expression)) return true;
  }
  return false;
}

/**
 * The policy mode of one policy: its bindings, the domain of `config` (from `source`), and
 * the findings about them (see the header).
 */
export function policyMode(
  found: AdmissionPolicies,
  policy: AdmissionPolicyObject,
  config: Config,
  source: { readonly name: string; readonly known: boolean; readonly why?: string },
): { mode: PolicyMode; checked: CheckedPolicy } {
  const bindings = found.bindings.filter((b) => b.policyName === policy.name);
  const domain = policyDomain(config, config.nativeSidecars === "true");
  const findings: Finding[] = [];
  const name = quoteName(policy.name);
  if (bindings.length === 0)
    findings.push({
      severity: "warning",
      message: `MutatingAdmissionPolicy ${name} has no MutatingAdmissionPolicyBinding: it takes no Pod, and the webhook's matchCondition leaves it the ones inside its domain: install the bindings policy render prints with it (the chart's policy.enabled does)`,
    });
  if (!source.known)
    findings.push({
      severity: "info",
      message: `the injector's config is not known${source.why ? ` (${source.why})` : ""}: the policy's domain is said for the defaults; give the config with --config`,
    });
  if ("unavailable" in domain) {
    findings.push({
      severity: "warning",
      message: `${domain.unavailable}: MutatingAdmissionPolicy ${name} cannot be the one policy render gives for ${source.name}; every Pod is said to fall to the webhook`,
    });
  } else {
    const same = renderedFor(policy, config);
    if (same !== true)
      findings.push({
        severity: "warning",
        message: `MutatingAdmissionPolicy ${name} was rendered for another config than ${source.name} (its matchConditions differ from those policy render gives for it): render it again with policy render and upgrade the chart with it (policy.manifest); until then, which Pods it takes is said for ${source.name}`,
      });
  }
  return {
    mode: { policy, bindings, domain, config },
    checked: {
      name: policy.name,
      apiVersion: found.apiVersion,
      bindings: bindings.map((b) => b.name),
      config: source.name,
      findings,
    },
  };
}

/**
 * Which injector takes the next CREATE of `pod` (the Pod as created: an injected one with its
 * injection undone) in `ns`; `workload` for a workload's template (see src/policy/verdict.ts).
 */
export function policyTake(mode: PolicyMode, pod: Pod, ns: NamespaceObject, workload?: WorkloadRef): PolicyTake {
  const policy = mode.policy.name;
  const nsLabels = namespaceLabels(ns);
  const binding = mode.bindings.find(
    (b) =>
      selectorMismatch(b.namespaceSelector, nsLabels, "namespace") === undefined &&
      selectorMismatch(b.objectSelector, pod.metadata?.labels ?? {}, "pod") === undefined,
  );
  if (binding === undefined)
    return {
      policy,
      injector: "none",
      injects: false,
      reason: `no binding of MutatingAdmissionPolicy ${quoteName(policy)} selects it`,
    };
  const v = domainVerdict(mode.domain, pod, workload);
  if (v.injector === "webhook") return { policy, injector: "webhook", injects: false, reason: v.reason };
  const decision = decide(pod, ns.name, mode.config).decision;
  const by = `MutatingAdmissionPolicy ${quoteName(policy)} (binding ${quoteName(binding.name)})`;
  return decision.inject
    ? { policy, injector: "policy", injects: true, reason: `${by}: injects it` }
    : {
        policy,
        injector: "policy",
        injects: false,
        reason: `${by}: does not inject it: ${decision.reasons.at(-1) ?? "the policy says no"}`,
      };
}

/** A policy take in words, for the table. */
export function takeText(t: PolicyTake): string {
  switch (t.injector) {
    case "policy":
      return `handled by the ${t.reason}`;
    case "webhook":
      return `falls to the webhook: ${t.reason}`;
    case "none":
      return t.reason;
  }
}
