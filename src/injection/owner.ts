// The workload a Pod belongs to, derived from its controller reference the way Istio does
// (GetDeployMetaFromPod), only for a Pod whose name is generated:
// - a ReplicaSet named <deployment>-<pod-template-hash> is that Deployment;
// - a ReplicaSet named <rollout>-<rollouts-pod-template-hash> is that Argo Rollout (kind
//   Rollout, apiVersion "v1alpha1", as Istio writes it);
// - a ReplicationController with a deploymentconfig label is that DeploymentConfig;
// - a Job named <cronjob>-<8 to 10 digits> (the CronJob controller's scheduled time) is that
//   CronJob (batch/v1).
// A hash label that the owner's name ends with, but not after a "-", names the kind and keeps
// the whole name, as Istio's TrimSuffix does.
import type { Pod } from "../kube/types.js";
import { L } from "./annotations.js";
import type { WorkloadRef } from "./types.js";

// Go's `.` is any character but a newline (JavaScript's also excludes \r, U+2028 and U+2029).
const CRONJOB_JOB = /^([^\n]+)-\d{8,10}$/;
export const ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash";

function trimSuffix(s: string, suffix: string): string {
  return s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s;
}

export function workloadOf(pod: Pod, namespace: string): WorkloadRef {
  const meta = pod.metadata ?? {};
  const labels = meta.labels ?? {};
  let name = meta.name ?? "";
  let kind = "Pod";
  let apiVersion = "v1";
  if (meta.generateName) {
    const ref = (meta.ownerReferences ?? []).find((r) => r.controller === true);
    if (ref) {
      apiVersion = ref.apiVersion;
      kind = ref.kind;
      name = ref.name;
      const hash = labels[L.podTemplateHash];
      const rolloutHash = labels[ROLLOUT_HASH_LABEL];
      if (kind === "ReplicaSet" && hash && ref.name.endsWith(hash)) {
        name = trimSuffix(ref.name, `-${hash}`);
        kind = "Deployment";
      } else if (kind === "ReplicaSet" && rolloutHash && ref.name.endsWith(rolloutHash)) {
        name = trimSuffix(ref.name, `-${rolloutHash}`);
        kind = "Rollout";
        apiVersion = "v1alpha1";
      } else if (kind === "ReplicationController" && labels[L.deploymentConfig]) {
        name = labels[L.deploymentConfig] ?? name;
        kind = "DeploymentConfig";
      } else if (kind === "Job") {
        const job = CRONJOB_JOB.exec(ref.name);
        if (job?.[1]) {
          name = job[1];
          kind = "CronJob";
          apiVersion = "batch/v1";
        }
      }
    }
  }
  if (!name) name = meta.name ?? "";
  return { name, namespace: meta.namespace || namespace, kind, apiVersion };
}
