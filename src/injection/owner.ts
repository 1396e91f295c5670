// The workload a Pod belongs to, derived from its controller reference the way Istio does
// (GetDeployMetaFromPod): a ReplicaSet named <deployment>-<pod-template-hash> is a Deployment,
// a ReplicationController with a deploymentconfig label is a DeploymentConfig, and a Job
// named <cronjob>-<8 to 11 digits> is a CronJob.
import type { Pod } from "../kube/types.js";
import { L } from "./annotations.js";
import type { WorkloadRef } from "./types.js";

const CRONJOB_JOB = /^(.+)-\d{8,11}$/;

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
      const job = CRONJOB_JOB.exec(ref.name);
      if (kind === "ReplicaSet" && hash && ref.name.endsWith(hash)) {
        name = ref.name.slice(0, ref.name.length - hash.length).replace(/-$/, "");
        kind = "Deployment";
      } else if (kind === "ReplicationController" && labels[L.deploymentConfig]) {
        name = labels[L.deploymentConfig] ?? name;
        kind = "DeploymentConfig";
      } else if (kind === "Job" && job?.[1]) {
        name = job[1];
        kind = "CronJob";
        apiVersion = "batch/v1";
      }
    }
  }
  if (!name) name = meta.name ?? "";
  return { name, namespace: meta.namespace || namespace, kind, apiVersion };
}
