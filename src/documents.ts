// The documents `preview` and `preview --compare-with` take, walked one way for both:
// - each document nests at most MAX_DOCUMENT_DEPTH levels (tooDeep says which does not);
// - a List stands for its items, in order (a List in a List too);
// - an AdmissionReview goes through the webhook's own gate (admission/gate.ts): refused
//   (ERR_NOT_ADMISSION_REVIEW) where /inject refuses the body, else found with the gate's
//   verdict on its request;
// - any other document is found as the Pod it stands for (injection/workloads.ts: a Pod is
//   itself, a workload the Pod of its template), located without running the injector;
//   a document that stands for no Pod is passed over.
// Each caller makes its own entries of what is found.
import { gate, podNamespace, validateAdmissionReview, type GateVerdict } from "./admission/gate.js";
import { isMap } from "./injection/own.js";
import { MAX_POD_DEPTH, nestedDeeperThan } from "./injection/shape.js";
import { podOf, type DocumentPod } from "./injection/workloads.js";
import type { AdmissionRequest } from "./kube/types.js";

/**
 * How deep a document may nest: a Pod's limit (MAX_POD_DEPTH) plus the levels of the deepest
 * workload (a CronJob's pod template) and of a List. Every entry shows its document, and one
 * nested thousands of levels deep cannot be written out.
 */
export const MAX_DOCUMENT_DEPTH = MAX_POD_DEPTH + 10;

/** The first document that nests deeper than MAX_DOCUMENT_DEPTH, said where; undefined when none does. */
export function tooDeep(docs: readonly unknown[]): string | undefined {
  for (const [i, d] of docs.entries()) {
    const deep = nestedDeeperThan(d, MAX_DOCUMENT_DEPTH);
    if (deep !== undefined)
      return `document ${i + 1}: ${deep || "(the document)"}: nests deeper than ${MAX_DOCUMENT_DEPTH} levels`;
  }
  return undefined;
}

/** What a document stands for. */
export type FoundDocument =
  /** An AdmissionReview: its request, the gate's verdict on it, and the namespace of its Pod. */
  | { readonly request: AdmissionRequest; readonly verdict: GateVerdict; readonly namespace: string }
  /** A Pod or a workload: the document and its Pod. */
  | { readonly doc: unknown; readonly located: DocumentPod };

/**
 * What each document stands for, in order (a List's items in its place). `defaultNamespace`:
 * that of a document that names none. Throws the gate's AdmissionError for an AdmissionReview
 * that /inject would refuse.
 */
export function findDocuments(docs: readonly unknown[], defaultNamespace: string): FoundDocument[] {
  const found: FoundDocument[] = [];
  const walk = (doc: unknown): void => {
    if (!isMap(doc)) return;
    if (doc.kind === "List" && Array.isArray(doc.items)) {
      for (const item of doc.items) walk(item);
      return;
    }
    if (doc.kind === "AdmissionReview") {
      const request = validateAdmissionReview(doc).request;
      found.push({
        request,
        verdict: gate(request, defaultNamespace),
        namespace: podNamespace(request, defaultNamespace),
      });
      return;
    }
    const located = podOf(doc, defaultNamespace);
    if (located) found.push({ doc, located });
  };
  for (const doc of docs) walk(doc);
  return found;
}
