// Offline injection of whole manifests (what `sidecar-injector inject` and the preview take):
// Pods and the pod templates of workloads, in List documents too. `podOf` locates the Pod a
// workload's controller would create (what the webhook sees, what the preview shows);
// `injectDocument` injects as `istioctl kube-inject` does (Istio's IntoObject): a CronJob's
// metadata is read from and written to `spec.jobTemplate.metadata` (its pod template's spec
// is injected, its pod template's metadata left as it is), and ignored namespaces are judged
// on the namespace the Pod or template itself states, not on the document's or the default.
import type { Config } from "../config/types.js";
import type { Pod, PodSpec } from "../kube/types.js";
import { inject } from "./inject.js";
import { workloadOf } from "./owner.js";
import { InjectionError, type InjectResult, type WorkloadRef } from "./types.js";
import { isMap } from "./own.js";

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
  const m = isMap(doc.metadata) ? doc.metadata : {};
  return {
    name: typeof m.name === "string" ? m.name : typeof m.generateName === "string" ? m.generateName : "",
    ...(typeof m.namespace === "string" && m.namespace ? { namespace: m.namespace } : {}),
  };
}

/** metadata.name, "" when the document has none (a generateName is not one). */
function ownName(doc: Doc): string {
  const m = isMap(doc.metadata) ? doc.metadata : {};
  return typeof m.name === "string" ? m.name : "";
}

const WORKLOAD_KIND_SET: ReadonlySet<string> = new Set(WORKLOAD_KINDS);

/**
 * Where a workload keeps its pod template: `parent` is `spec`, or a CronJob's
 * `spec.jobTemplate.spec` (then `jobTemplate` is `spec.jobTemplate`).
 */
interface TemplateAt {
  readonly spec: Doc;
  readonly jobTemplate?: Doc;
  readonly parent: Doc;
  readonly template: Doc;
}

function templateAt(doc: Doc): TemplateAt | undefined {
  const spec = doc.spec;
  if (!isMap(spec)) return undefined;
  if (doc.kind === "CronJob") {
    const jobTemplate = spec.jobTemplate;
    if (!isMap(jobTemplate) || !isMap(jobTemplate.spec) || !isMap(jobTemplate.spec.template)) return undefined;
    return { spec, jobTemplate, parent: jobTemplate.spec, template: jobTemplate.spec.template };
  }
  return isMap(spec.template) && WORKLOAD_KIND_SET.has(String(doc.kind))
    ? { spec, parent: spec, template: spec.template }
    : undefined;
}

/** A document as a Pod, unchecked. */
function unchecked(pod: Doc): Pod {
  // parse boundary: the engine checks the Pod's shape field by field at its entry (shape.ts).
  return pod as Pod;
}

/** A pod template (or a CronJob's job template's metadata and its pod template's spec) as a Pod. */
function templatePod(metadata: unknown, spec: unknown): Pod {
  return unchecked({ metadata: isMap(metadata) ? metadata : {}, spec });
}

/** The workload with `pod` as its pod template (CronJob: its job template's). */
function withTemplate(doc: Doc, at: TemplateAt, pod: Pod): Doc {
  const parent: Doc = { ...at.parent, template: { ...at.template, metadata: pod.metadata, spec: pod.spec } };
  const spec = at.jobTemplate ? { ...at.spec, jobTemplate: { ...at.jobTemplate, spec: parent } } : parent;
  return { ...doc, spec };
}

/** Locates the Pod of a Pod or workload document (not a List), without injecting anything. */
export function podOf(doc: unknown, defaultNamespace: string): DocumentPod | undefined {
  if (!isMap(doc)) return undefined;
  const { name, namespace = defaultNamespace } = metaOf(doc);
  const kind = String(doc.kind ?? "");
  if (kind === "Pod") return { kind, name, namespace, pod: unchecked(doc), replace: (pod) => pod };
  const at = templateAt(doc);
  if (!at) return undefined;
  return {
    kind,
    name,
    namespace,
    pod: templatePod(at.template.metadata, at.template.spec),
    // The workload's own name: one named by generateName alone has none yet (kube-inject's
    // deploymentMetadata is its metadata.name, so no workload name, owner or canonical name).
    workload: { name: ownName(doc), namespace, kind, apiVersion: String(doc.apiVersion ?? "") },
    replace: (pod) => withTemplate(doc, at, pod),
  };
}

/** The metadata kube-inject reads and writes for a CronJob: its job template's, not its pod template's. */
function cronJobAsKubeInject(doc: Doc, located: DocumentPod): DocumentPod {
  const at = templateAt(doc);
  if (!at?.jobTemplate) return located;
  const { spec, jobTemplate, parent: jobSpec, template } = at;
  return {
    ...located,
    pod: templatePod(jobTemplate.metadata, template.spec),
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

/**
 * kube-inject's result for a CronJob, with a warning when the webhook would refuse the Pods it
 * creates: those carry the pod template's annotations, which kube-inject does not read.
 */
function withWebhookRefusal(result: InjectResult, pod: Pod, workload: WorkloadRef, config: Config): InjectResult {
  try {
    inject(pod, { namespace: ownNamespace(pod), workload }, config);
    return result;
  } catch (e) {
    if (!(e instanceof InjectionError)) throw e;
    const warning = `the webhook would refuse each Pod this CronJob creates (where its namespace is injected): ${e.message}`;
    // The result's Pod is a getter (inject.ts): read it, not spread.
    return { decision: result.decision, patch: result.patch, pod: result.pod, warnings: [...result.warnings, warning] };
  }
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

/** kube-inject decodes a Pod or pod template without a spec as Go's zero PodSpec, and injects it. */
function withZeroSpec(located: DocumentPod): DocumentPod {
  if (isMap(located.pod.spec)) return located;
  const spec: PodSpec = { containers: [] };
  return { ...located, pod: { ...located.pod, spec } };
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
  if (isMap(doc) && doc.kind === "List" && Array.isArray(doc.items)) {
    const items = doc.items.map((item) => injectDocument(item, defaultNamespace, config, found).doc);
    return { doc: { ...doc, items }, injected: found };
  }
  const webhookView = podOf(doc, defaultNamespace);
  if (!webhookView || !isMap(doc)) return { doc, injected: found };
  const given = doc.kind === "CronJob" ? cronJobAsKubeInject(doc, webhookView) : webhookView;
  const located = withZeroSpec(given);
  const { kind, name, namespace } = located;
  // A Pod names its own workload (its controller's, when it has one), as in the webhook.
  const workload = located.workload ?? workloadOf(located.pod, namespace);
  // The context's namespace is what the ignored namespaces are judged on.
  const injected = inject(located.pod, { namespace: ownNamespace(located.pod), workload }, config);
  const result =
    given === webhookView ? injected : withWebhookRefusal(injected, withZeroSpec(webhookView).pod, workload, config);
  found.push({ kind, name, namespace, result });
  // A Pod left alone is printed as given (nulls included, which the engine reads as absent).
  return { doc: result.decision.inject ? located.replace(result.pod) : doc, injected: found };
}
