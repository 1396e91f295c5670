// Offline injection of whole manifests (what `sidecar-injector inject` and the preview take):
// Pods and the pod templates of workloads, in List documents too, each injected as the Pod its
// controller would create.
import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import { inject } from "./inject.js";
import type { InjectResult } from "./types.js";

export const WORKLOAD_KINDS = [
  "Pod",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "ReplicationController",
  "Job",
  "CronJob",
  "DeploymentConfig",
] as const;

type Doc = Record<string, unknown>;

function isDoc(v: unknown): v is Doc {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface InjectedTemplate {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly result: InjectResult;
}

/** Where a document keeps the Pod it stands for: [parent, key] of the pod template. */
function templateSlot(doc: Doc): [Doc, string] | undefined {
  const spec = doc.spec;
  if (!isDoc(spec)) return undefined;
  if (doc.kind === "CronJob") {
    const jobTemplate = spec.jobTemplate;
    if (isDoc(jobTemplate) && isDoc(jobTemplate.spec) && isDoc(jobTemplate.spec.template)) return [jobTemplate.spec, "template"];
    return undefined;
  }
  if (isDoc(spec.template) && (WORKLOAD_KINDS as readonly string[]).includes(String(doc.kind))) return [spec, "template"];
  return undefined;
}

function metaOf(doc: Doc): { name: string; namespace?: string } {
  const m = isDoc(doc.metadata) ? doc.metadata : {};
  return {
    name: typeof m.name === "string" ? m.name : typeof m.generateName === "string" ? m.generateName : "",
    ...(typeof m.namespace === "string" && m.namespace ? { namespace: m.namespace } : {}),
  };
}

/**
 * Injects every Pod and pod template in `doc` (recursing into Lists). Returns the document
 * with the injected Pods (the input is not modified) and what was done for each.
 */
export function injectDocument(
  doc: unknown,
  defaultNamespace: string,
  config: Config,
  found: InjectedTemplate[] = [],
): { doc: unknown; injected: InjectedTemplate[] } {
  if (!isDoc(doc)) return { doc, injected: found };
  if (doc.kind === "List" && Array.isArray(doc.items)) {
    const items = doc.items.map((item) => injectDocument(item, defaultNamespace, config, found).doc);
    return { doc: { ...doc, items }, injected: found };
  }
  const { name, namespace = defaultNamespace } = metaOf(doc);
  const kind = String(doc.kind ?? "");
  const apiVersion = String(doc.apiVersion ?? "");
  if (kind === "Pod") {
    // A Pod names its own workload (its controller's, when it has one), as in the webhook.
    const result = inject(doc as Pod, { namespace }, config);
    found.push({ kind, name, namespace, result });
    return { doc: result.pod, injected: found };
  }
  const slot = templateSlot(doc);
  if (!slot) return { doc, injected: found };
  const [parent, key] = slot;
  const template = parent[key] as Doc;
  const pod: Pod = { metadata: isDoc(template.metadata) ? template.metadata : {}, spec: template.spec as Pod["spec"] };
  const result = inject(pod, { namespace, workload: { name, namespace, kind, apiVersion } }, config);
  found.push({ kind, name, namespace, result });
  const injectedTemplate = { ...template, metadata: result.pod.metadata, spec: result.pod.spec };
  return { doc: replaceTemplate(doc, kind, injectedTemplate), injected: found };
}

function replaceTemplate(doc: Doc, kind: string, template: Doc): Doc {
  const spec = doc.spec as Doc;
  if (kind === "CronJob") {
    const jobTemplate = spec.jobTemplate as Doc;
    const jobSpec = jobTemplate.spec as Doc;
    return { ...doc, spec: { ...spec, jobTemplate: { ...jobTemplate, spec: { ...jobSpec, template } } } };
  }
  return { ...doc, spec: { ...spec, template } };
}
