// Which injector a Pod or a workload's Pods get once the policy is installed: "policy" (the
// API server injects it, or leaves it alone, as the webhook would) or "webhook" (outside the
// domain, with the reason). A workload's Pods are judged as its controller creates them:
// generateName and a controller reference to the workload (which the domain reads only for
// their shape: an apiVersion, a plain kind, a name starting with a letter or digit).
import type { Pod } from "../kube/types.js";
import type { WorkloadRef } from "../injection/types.js";
import { outsideDomain, type DomainRule } from "./domain.js";

export type Verdict = { readonly injector: "policy" } | { readonly injector: "webhook"; readonly reason: string };

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
