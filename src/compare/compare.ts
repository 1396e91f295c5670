// `preview --compare-with`: for each Pod of a manifest, the same AdmissionReview is answered by
// istiod (sent to its injection endpoint) and by this injector (its webhook's own `admit`, run
// here with --config), both patches are applied to the Pod that was sent, and the two Pods are
// compared (differences.ts). Before switching a namespace from istiod's webhook to ours, this
// says, Pod by Pod, whether the switch changes anything, and what.
//
// What is compared is what the API server would store: the Pod after each answer (the patch
// applied; an answer without a patch leaves the Pod as sent). A refusal is compared as a
// refusal: both refuse (the same Pods fail either way; both messages are shown), or only one
// does (which one, and its message). A patch that does not apply to the Pod sent (the API
// server would fail the request) is said, with the operation. The documents are those
// `preview` takes, walked as it walks them (documents.ts): Pods, workloads (their Pod as the
// controller would create it), Lists, and AdmissionReviews of a Pod CREATE (their Pod, in
// their namespace).
//
// The reviews are sent a few at a time (MAX_IN_FLIGHT), each bounded by the target's timeout
// and answer size (client.ts); the first that cannot be sent or read ends the comparison with
// that error (exit 2), as nothing more can be said about istiod.
import jsonpatch from "fast-json-patch";
import { admit } from "../admission/review.js";
import { validateAdmissionReview } from "../admission/gate.js";
import type { Config } from "../config/types.js";
import { findDocuments, tooDeep, type FoundDocument } from "../documents.js";
import { podOf } from "../injection/workloads.js";
import type { Pod } from "../kube/types.js";
import type { CompareTarget } from "./client.js";
import { differences, storedForm, type Difference } from "./differences.js";
import { quote } from "../injection/quote.js";
import { CompareError, podAsCreated, podCreateReview, readAnswer, type Verdict } from "./review.js";

/** Reviews sent to istiod at once. */
export const MAX_IN_FLIGHT = 4;

export const COMPARE_RESULTS = [
  "identical",
  "equivalent",
  "different",
  "both-refused",
  "refused-by-istiod-only",
  "refused-by-ours-only",
] as const;
export type CompareResult = (typeof COMPARE_RESULTS)[number];

/** Results that make the exit status 1: the switch would change what is stored or refused. */
export function isMismatch(result: CompareResult): boolean {
  return result !== "identical" && result !== "equivalent" && result !== "both-refused";
}

/** One injector's answer, as reported. */
export interface Side {
  /**
   * injected: a patch; unchanged: allowed without one; refused: allowed false; invalid-patch:
   * a patch that does not apply to the Pod sent.
   */
  readonly answer: "injected" | "unchanged" | "refused" | "invalid-patch";
  /** The refusal's message, or why the patch does not apply. */
  readonly message?: string;
  readonly patchOperations: number;
  readonly warnings: readonly string[];
}

export interface CompareEntry {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly result: CompareResult;
  readonly ours: Side;
  readonly istiod: Side;
  /** Where the stored Pods would differ (at most MAX_DIFFERENCES kept; see differencesTotal). */
  readonly differences: readonly Difference[];
  readonly differencesTotal: number;
  /** Of those, the ones that change what the cluster does (not `equivalent`). */
  readonly differencesEssential: number;
}

export interface CompareOptions {
  readonly config: Config;
  /** Namespace of documents that name none (default "default"). */
  readonly namespace?: string;
  readonly target: CompareTarget;
  /** Whether the cluster's kubelets run native sidecars (decides `nativeSidecars: auto`). */
  readonly nativeSidecarsSupported?: boolean;
}

interface Candidate {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  /** The Pod as the API server sends it. */
  readonly pod: Pod;
}

/** The Pod a document found stands for, as the API server would send it; undefined when no Pod would be sent. */
function candidate(found: FoundDocument): Candidate | undefined {
  if ("located" in found) {
    const { kind, name, namespace, pod } = found.located;
    return { kind, name, namespace, pod: podAsCreated(kind, name, namespace, pod) };
  }
  // An AdmissionReview: only a Pod CREATE carrying its Pod.
  if (!found.verdict.pass) return undefined;
  const { namespace } = found;
  const located = podOf(found.request.object, namespace);
  if (!located) return undefined;
  return { kind: "Pod", name: located.name, namespace, pod: podAsCreated("Pod", located.name, namespace, located.pod) };
}

/** The Pod after an answer: the patch applied to a copy of the Pod sent, each operation checked. */
function stored(pod: Pod, verdict: Verdict): { pod: unknown; side: Side } {
  const warnings = verdict.warnings;
  if (verdict.answer === "refused")
    return { pod, side: { answer: "refused", message: verdict.message, patchOperations: 0, warnings } };
  if (verdict.answer === "unchanged") return { pod, side: { answer: "unchanged", patchOperations: 0, warnings } };
  const patchOperations = verdict.patch.length;
  // One operation at a time, so that the one that does not apply is named.
  let doc: unknown = structuredClone(pod);
  for (const [i, op] of verdict.patch.entries()) {
    try {
      doc = jsonpatch.applyOperation(doc, op as jsonpatch.Operation, true, true, true, i).newDocument;
    } catch (e) {
      const why = e instanceof jsonpatch.JsonPatchError ? e.name : e instanceof Error ? e.message : String(e);
      return {
        pod,
        side: {
          answer: "invalid-patch",
          message: `operation ${i} (${op.op} ${quote(op.path)}) does not apply to the Pod sent: ${why}`,
          patchOperations,
          warnings,
        },
      };
    }
  }
  return { pod: doc, side: { answer: "injected", patchOperations, warnings } };
}

function resultOf(ours: Side, istiod: Side, diff: { total: number; essential: number }): CompareResult {
  const oursRefused = ours.answer === "refused";
  const istiodRefused = istiod.answer === "refused";
  if (oursRefused && istiodRefused) return "both-refused";
  if (oursRefused) return "refused-by-ours-only";
  if (istiodRefused) return "refused-by-istiod-only";
  if (ours.answer === "invalid-patch" || istiod.answer === "invalid-patch") return "different";
  return diff.total === 0 ? "identical" : diff.essential === 0 ? "equivalent" : "different";
}

/** The two stored Pods of each entry, for `-o diff` (kept out of the JSON answer). */
const storedPods = new WeakMap<CompareEntry, { readonly ours: unknown; readonly istiod: unknown }>();

export function storedPodsOf(entry: CompareEntry): { readonly ours: unknown; readonly istiod: unknown } | undefined {
  return storedPods.get(entry);
}

async function compareOne(c: Candidate, opts: CompareOptions): Promise<CompareEntry> {
  const review = podCreateReview(c.pod, c.namespace);
  const uid = review.request.uid;
  const body = JSON.stringify(review);
  const answer = await opts.target.send(body);
  const theirs = readAnswer(answer, uid, opts.target.name);
  const validated = validateAdmissionReview(JSON.parse(body));
  const own = admit(validated, {
    config: opts.config,
    ...(opts.nativeSidecarsSupported !== undefined ? { nativeSidecarsSupported: opts.nativeSidecarsSupported } : {}),
  });
  const ours = readAnswer(JSON.stringify(own.review), uid, "this injector");
  const a = stored(c.pod, ours);
  const b = stored(c.pod, theirs);
  const oursStored = storedForm(a.pod);
  const istiodStored = storedForm(b.pod);
  const diff =
    a.side.answer === "refused" || b.side.answer === "refused"
      ? { items: [], total: 0, essential: 0 }
      : differences(oursStored, istiodStored);
  const entry: CompareEntry = {
    kind: c.kind,
    name: c.name,
    namespace: c.namespace,
    result: resultOf(a.side, b.side, diff),
    ours: a.side,
    istiod: b.side,
    differences: diff.items,
    differencesTotal: diff.total,
    differencesEssential: diff.essential,
  };
  storedPods.set(entry, { ours: oursStored, istiod: istiodStored });
  return entry;
}

/** Compares every Pod of `docs`, in order. Rejects with the first CompareError (peer or answer). */
export async function compare(docs: readonly unknown[], opts: CompareOptions): Promise<CompareEntry[]> {
  const deep = tooDeep(docs);
  if (deep !== undefined) throw new CompareError(deep);
  const found = findDocuments(docs, opts.namespace ?? "default").flatMap((f) => candidate(f) ?? []);
  if (found.length === 0)
    throw new CompareError("no Pod, workload or AdmissionReview of a Pod CREATE found in the input");
  const entries: CompareEntry[] = new Array<CompareEntry>(found.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < found.length) {
      const i = next++;
      const c = found[i];
      if (c === undefined) return;
      try {
        entries[i] = await compareOne(c, opts);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, found.length) }, worker));
  return entries;
}
