// Which injector a Pod or a workload's Pods get once the policy is installed: "policy" (the
// API server injects it, or leaves it alone, as the webhook would) or "webhook" (outside the
// domain, with the reason). A workload's Pods are judged as its controller creates them:
// generateName and a controller reference to the workload (which the domain reads only for
// their shape: an apiVersion, a plain kind, a name starting with a letter or digit).
//
// The domain's rules are a config's (and whether sidecars are native): policyDomain() builds
// them once per config, for its callers to keep beside the config (the preview route per app,
// `check` per injector), never per Pod. A config the policy cannot express (policy render
// refuses it) has no domain: every Pod falls to the webhook, with the renderer's reason.
import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import type { WorkloadRef } from "../injection/types.js";
import { outsideDomain, type DomainRule } from "./domain.js";
import { PolicyRenderError } from "./errors.js";
import { SLOT_ANNOTATIONS, SLOT_LABELS } from "./parts.js";
import { policyDomainOf } from "./render.js";
import { readPod } from "../injection/shape.js";
import { stripInjected } from "../injection/strip.js";

export type Verdict = { readonly injector: "policy" } | { readonly injector: "webhook"; readonly reason: string };

/**
 * A config's domain: its rules (and the label and annotation keys its injection writes, to judge
 * an injected Pod as it is created again), or why the config cannot be rendered as a policy.
 */
export type PolicyDomain =
  | {
      readonly rules: readonly DomainRule[];
      readonly written?: { readonly labels: readonly string[]; readonly annotations: readonly string[] };
    }
  | { readonly unavailable: string };

/** The Pod the API server admits for `pod`: itself, or the one its workload's controller creates. */
export function podAsAdmitted(pod: Pod, workload: WorkloadRef | undefined): Pod {
  if (!workload || workload.kind === "Pod") return pod;
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      name: "",
      generateName: `${workload.name}-`,
      ownerReferences: [
        { apiVersion: workload.apiVersion, kind: workload.kind, name: workload.name, controller: true },
      ],
    },
  };
}

export function verdict(rules: readonly DomainRule[], pod: Pod, workload?: WorkloadRef): Verdict {
  const reason = outsideDomain(rules, podAsAdmitted(pod, workload));
  return reason === undefined ? { injector: "policy" } : { injector: "webhook", reason };
}

/**
 * The domain of the policy `policy render` would print for `config`, with `nativeSidecars:
 * auto` decided as `nativeSidecarsSupported` says. Costs two injections of probe Pods: call it
 * once per config.
 */
export function policyDomain(config: Config, nativeSidecarsSupported: boolean): PolicyDomain {
  try {
    const { parts, rules } = policyDomainOf(config, nativeSidecarsSupported);
    return {
      rules,
      written: {
        labels: [...Object.keys(parts.labels), ...SLOT_LABELS],
        annotations: [...Object.keys(parts.annotations), ...SLOT_ANNOTATIONS],
      },
    };
  } catch (e) {
    if (!(e instanceof PolicyRenderError)) throw e;
    return { unavailable: `the config cannot be rendered as a MutatingAdmissionPolicy (${e.message})` };
  }
}

/** The verdict within a domain (see verdict()); with none, the webhook takes every Pod. */
export function domainVerdict(domain: PolicyDomain, pod: Pod, workload?: WorkloadRef): Verdict {
  return "rules" in domain ? verdict(domain.rules, pod, workload) : { injector: "webhook", reason: domain.unavailable };
}

/**
 * An injected Pod as it is created again (from its workload's template, or the manifest it was
 * made from): its injection undone (the engine's re-injection strip) and the labels and
 * annotations the injection writes dropped. Throws InjectionError when the engine cannot read it.
 */
export function asCreatedAgain(domain: PolicyDomain, pod: unknown, config: Config): Pod {
  const stripped = stripInjected(readPod(pod), config, true);
  if (!("rules" in domain) || domain.written === undefined) return stripped;
  const drop = (map: Readonly<Record<string, string>> | undefined, keys: readonly string[]): Record<string, string> =>
    Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !keys.includes(k)));
  const meta = stripped.metadata ?? {};
  return {
    ...stripped,
    metadata: {
      ...meta,
      labels: drop(meta.labels, domain.written.labels),
      annotations: drop(meta.annotations, domain.written.annotations),
    },
  };
}

/** A verdict in words, as `policy check`, `preview` and `check` say it. */
export function verdictText(v: Verdict): string {
  return v.injector === "policy" ? "handled by the MutatingAdmissionPolicy" : `falls to the webhook: ${v.reason}`;
}
