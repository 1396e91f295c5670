// The one locator of "the Pod a manifest stands for" in tests, written independently of the code
// under test (src/injection/workloads.ts): Lists flattened, each Pod as given, each workload's
// pod template as the Pod its controller would create (podAsCreated), Services left out.
import type { Pod } from "../../src/kube/types.js";
import { podAsCreated } from "../golden/cases.js";

type Doc = Record<string, unknown>;
const isDoc = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);

export interface LocatedPod {
  /** Index among the flattened documents. */
  readonly index: number;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  /** The Pod the API server would send the webhook. */
  readonly pod: Pod;
}

/** Documents and List items, flattened. */
export function flatten(docs: readonly unknown[]): unknown[] {
  return docs.flatMap((d) => (isDoc(d) && d.kind === "List" && Array.isArray(d.items) ? flatten(d.items) : [d]));
}

/** Pods and pod templates among the documents (Lists flattened), in order; a namespace left out is `default`. */
export function locatePods(docs: readonly unknown[]): LocatedPod[] {
  const out: LocatedPod[] = [];
  for (const [index, d] of flatten(docs).entries()) {
    if (!isDoc(d)) continue;
    const meta = (isDoc(d.metadata) ? d.metadata : {}) as { name?: string; generateName?: string; namespace?: string };
    const kind = String(d.kind);
    const name = meta.name ?? meta.generateName ?? "";
    const namespace = meta.namespace ?? "default";
    if (kind === "Pod") {
      out.push({ index, kind, name, namespace, pod: d as Pod });
      continue;
    }
    if (!isDoc(d.spec) || kind === "Service") continue;
    const holder = kind === "CronJob" ? ((d.spec.jobTemplate as Doc | undefined)?.spec as Doc | undefined) : d.spec;
    const template = holder?.template as Pod | undefined;
    if (template === undefined) continue;
    out.push({
      index,
      kind,
      name,
      namespace,
      pod: podAsCreated(kind, name, { metadata: template.metadata ?? {}, spec: template.spec }),
    });
  }
  return out;
}
