// Offline injection of whole manifests (what `sidecar-injector inject` and the preview take):
// Pods and the pod templates of workloads, in List documents too. `podOf` locates the Pod a
// workload's controller would create (what the webhook sees, what the preview shows);
// `injectDocument` injects as `istioctl kube-inject` does (Istio's IntoObject): a CronJob's
// metadata is read from and written to `spec.jobTemplate.metadata` (its pod template's spec
// is injected, its pod template's metadata left as it is), and ignored namespaces are judged
// on the namespace the Pod or template itself states, not on the document's or the default.
import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import { inject } from "./inject.js";
import { workloadOf } from "./owner.js";
import type { InjectResult, WorkloadRef } from "./types.js";

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

/** The Pod a (non-List) document stands for: itself, or its workload's pod template. */
export interface DocumentPod {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  /** The Pod as given (a template as a Pod: its metadata and spec). */
  readonly pod: Pod;
  /** The workload that owns such Pods (undefined for a Pod: it names its own). */
  readonly workload?: WorkloadRef;
  /** The document with `pod` put in place of the one it stands for. */
  readonly replace: (pod: Pod) => unknown;
}

function metaOf(doc: Doc): { name: string; namespace?: string } {
  const m = isDoc(doc.metadata) ? doc.metadata : {};
  return {
    name: typeof m.name === "string" ? m.name : typeof m.generateName === "string" ? m.generateName : "",
    ...(typeof m.namespace === "string" && m.namespace ? { namespace: m.namespace } : {}),
  };
}

/** The object holding a workload's pod template (`spec`, or a CronJob's `spec.jobTemplate.spec`). */
function templateParent(doc: Doc): Doc | undefined {
  const spec = doc.spec;
  if (!isDoc(spec)) return undefined;
  if (doc.kind === "CronJob") {
    const jobTemplate = spec.jobTemplate;
    return isDoc(jobTemplate) && isDoc(jobTemplate.spec) && isDoc(jobTemplate.spec.template)
      ? jobTemplate.spec
      : undefined;
  }
  return isDoc(spec.template) && (WORKLOAD_KINDS as readonly string[]).includes(String(doc.kind)) ? spec : undefined;
}

/** The workload with `pod` as its pod template (CronJob: its job template's). */
function withTemplate(doc: Doc, pod: Pod): Doc {
  const spec = doc.spec as Doc;
  const put = (parent: Doc): Doc => ({
    ...parent,
    template: { ...(parent.template as Doc), metadata: pod.metadata, spec: pod.spec },
  });
  if (doc.kind === "CronJob") {
    const jobTemplate = spec.jobTemplate as Doc;
    return { ...doc, spec: { ...spec, jobTemplate: { ...jobTemplate, spec: put(jobTemplate.spec as Doc) } } };
  }
  return { ...doc, spec: put(spec) };
}

/** Locates the Pod of a Pod or workload document (not a List), without injecting anything. */
export function podOf(doc: unknown, defaultNamespace: string): DocumentPod | undefined {
  if (!isDoc(doc)) return undefined;
  const { name, namespace = defaultNamespace } = metaOf(doc);
  const kind = String(doc.kind ?? "");
  if (kind === "Pod") return { kind, name, namespace, pod: doc as Pod, replace: (pod) => pod };
  const parent = templateParent(doc);
  if (!parent) return undefined;
  const template = parent.template as Doc;
  return {
    kind,
    name,
    namespace,
    pod: { metadata: isDoc(template.metadata) ? template.metadata : {}, spec: template.spec as Pod["spec"] },
    workload: { name, namespace, kind, apiVersion: String(doc.apiVersion ?? "") },
    replace: (pod) => withTemplate(doc, pod),
  };
}

/** The metadata kube-inject reads and writes for a CronJob: its job template's, not its pod template's. */
function cronJobAsKubeInject(doc: Doc, located: DocumentPod): DocumentPod {
  const spec = doc.spec as Doc;
  const jobTemplate = spec.jobTemplate as Doc;
  const jobSpec = jobTemplate.spec as Doc;
  const template = jobSpec.template as Doc;
  return {
    ...located,
    pod: { metadata: isDoc(jobTemplate.metadata) ? jobTemplate.metadata : {}, spec: template.spec as Pod["spec"] },
    replace: (pod) => ({
      ...doc,
      // The job template's metadata first, where the API server prints it.
      spec: {
        ...spec,
        jobTemplate: {
          metadata: pod.metadata,
          ...withoutMetadata(jobTemplate),
          spec: { ...jobSpec, template: { ...template, spec: pod.spec } },
        },
      },
    }),
  };
}

function withoutMetadata(d: Doc): Doc {
  const { metadata: _metadata, ...rest } = d;
  return rest;
}

/** The namespace the metadata states itself, "" when it states none. */
function ownNamespace(pod: Pod): string {
  const ns = pod.metadata?.namespace;
  return typeof ns === "string" ? ns : "";
}

/**
 * Injects every Pod and pod template in `doc` (recursing into Lists), as kube-inject does.
 * Returns the document with the injected Pods (the input is not modified) and what was done
 * for each.
 */
export function injectDocument(
  doc: unknown,
  defaultNamespace: string,
  config: Config,
  found: InjectedTemplate[] = [],
): { doc: unknown; injected: InjectedTemplate[] } {
  if (isDoc(doc) && doc.kind === "List" && Array.isArray(doc.items)) {
    const items = doc.items.map((item) => injectDocument(item, defaultNamespace, config, found).doc);
    return { doc: { ...doc, items }, injected: found };
  }
  const webhookView = podOf(doc, defaultNamespace);
  if (!webhookView || !isDoc(doc)) return { doc, injected: found };
  const located = doc.kind === "CronJob" ? cronJobAsKubeInject(doc, webhookView) : webhookView;
  const { kind, name, namespace } = located;
  // A Pod names its own workload (its controller's, when it has one), as in the webhook.
  const workload = located.workload ?? workloadOf(located.pod, namespace);
  // The context's namespace is what the ignored namespaces are judged on.
  const result = inject(located.pod, { namespace: ownNamespace(located.pod), workload }, config);
  found.push({ kind, name, namespace, result });
  // A Pod left alone is printed as given (nulls included, which the engine reads as absent).
  return { doc: result.decision.inject ? located.replace(result.pod) : doc, injected: found };
}
