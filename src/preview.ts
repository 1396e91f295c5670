// The dry-run preview: what the injector would do to each Pod of a manifest (a Pod, any
// workload the CLI takes, a List, several YAML documents, or a whole AdmissionReview), and
// why. The same engine as the webhook; no side effects. Used by POST /preview and by
// `sidecar-injector preview`.
import jsonpatch from "fast-json-patch";
import { stringify } from "yaml";
import { yamlText } from "./yaml-emit.js";
import { podDisplayName, withoutManagedFields } from "./admission/gate.js";
import { findDocuments, tooDeep, type FoundDocument } from "./documents.js";
import type { Config } from "./config/types.js";
import { unifiedDiff } from "./diff.js";
import {
  apiServerSelection,
  interceptionSummary,
  proxySummary,
  type InterceptionSummary,
  type ProxySummary,
} from "./injection/explain.js";
import { inject } from "./injection/inject.js";
import { inlineCostOver } from "./injection/inline-cost.js";
import { InjectionError, type InjectContext, type PatchOperation } from "./injection/types.js";
import { quote } from "./injection/quote.js";
import { isMap } from "./injection/own.js";
import { readPod } from "./injection/shape.js";
import type { Pod } from "./kube/types.js";
import {
  jsonPreScan,
  measureValue,
  PREVIEW_JSON_LIMITS,
  PREVIEW_YAML_LIMITS,
  type YamlLimits,
} from "./injection/yaml-limits.js";
import { parseManifest } from "./manifest.js";
import { domainVerdict, policyDomain, type PolicyDomain, type Verdict } from "./policy/verdict.js";

export class PreviewError extends Error {
  readonly code = "ERR_PREVIEW_INPUT";
}

/**
 * What one preview may cost. A one-line Pod makes a 24 KB entry (its patch, the object as
 * stored, the interception and proxy summaries), so 100 of them answer 2.4 MB of JSON: a
 * manifest of tens of workloads (a chart's rendering) fits, a 5,000-Pod List does not.
 */
export const MAX_PREVIEW_PODS = 100;
/** Distinct namespaces whose labels one preview looks up (at most 2 API calls each). */
export const MAX_PREVIEW_NAMESPACES = 20;
/**
 * Bytes of one answer (JSON, YAML or diff): more than twice the largest object etcd stores
 * (1.5 MiB), so the preview of any Pod the API server could create fits.
 */
export const MAX_PREVIEW_ANSWER_BYTES = 4 * 1024 * 1024;

export type PreviewLimitCode =
  "ERR_PREVIEW_TOO_MANY_PODS" | "ERR_PREVIEW_TOO_MANY_NAMESPACES" | "ERR_PREVIEW_ANSWER_TOO_LARGE";

/** A preview over one of its limits; the message names the limit and the count. */
export class PreviewLimitError extends Error {
  constructor(
    readonly code: PreviewLimitCode,
    message: string,
    readonly limit: number,
    readonly count: number,
  ) {
    super(message);
    this.name = "PreviewLimitError";
  }
}

export type NamespaceLabels = Readonly<Record<string, string>>;

/** A namespace's labels, or why they are not known (said in the preview's reasons). */
export type NamespaceLabelsResult = { readonly labels: NamespaceLabels } | { readonly unknown: string };

/** Labels of the namespaces of one preview, all asked at once. A namespace left out is not known. */
export type NamespaceLookup = (namespaces: readonly string[]) => Promise<ReadonlyMap<string, NamespaceLabelsResult>>;

/** Why labels neither given nor looked up are not known, when nothing more precise is said. */
export const NO_CLUSTER_ACCESS = "give them, or run the injector with cluster access";

export interface PreviewOptions {
  readonly config: Config;
  /** Namespace of documents that name none (default "default"). */
  readonly namespace?: string;
  /** Labels the caller gives: those of `namespace` when it is given, else of every namespace. */
  readonly givenLabels?: NamespaceLabels;
  /** Reads the labels of the other namespaces (at most `maxNamespaces` of them). */
  readonly lookup?: NamespaceLookup;
  /** Without `lookup`: why the other namespaces' labels are not known (default NO_CLUSTER_ACCESS). */
  readonly notLookedUp?: string;
  /** The injector's own namespace (never selected by the webhook configuration). */
  readonly ownNamespace?: string;
  readonly nativeSidecarsSupported?: boolean;
  /** Pods, workloads and AdmissionReviews previewed at most (default MAX_PREVIEW_PODS). */
  readonly maxPods?: number;
  /**
   * Refuse a Pod that costs the engine more than is answered inline (injection/inline-cost.ts):
   * the server's /preview reads Pods on its event loop, where the webhook answers such a Pod on
   * its worker thread.
   */
  readonly inlineOnly?: boolean;
  /**
   * Give the event loop back between Pods (the server's /preview): each Pod is within the
   * inline bound, but a request holds up to `maxPods` of them, and their sum (seconds, measured)
   * would hold every review and probe waiting behind it.
   */
  readonly slices?: PreviewSlices;
  /** Namespaces looked up at most (default MAX_PREVIEW_NAMESPACES). */
  readonly maxNamespaces?: number;
  /**
   * The policy domain of `config` (policyDomain()), built once per config by the caller; left
   * out, preview() builds it once per call.
   */
  readonly policyDomain?: PolicyDomain;
}

/**
 * How preview() shares the event loop: once the Pods read since it last gave the loop back have
 * taken `ms`, it awaits `pause()` (which resolves when what waited has run) before the next.
 */
export interface PreviewSlices {
  readonly ms: number;
  readonly pause: () => Promise<void>;
  /** Awaited once the namespaces' labels are known, before the first Pod is read (the server's turn). */
  readonly begin?: () => Promise<void>;
  /** The clock, in milliseconds (default performance.now). */
  readonly now?: () => number;
}

/** A slice of the event loop /preview holds at most before it gives the loop back (and a Pod's work). */
export const PREVIEW_SLICE_MS = 10;

/**
 * Called between pieces of work: once the slice's time has passed since the last pause (or
 * since this was made), the pause to await; else undefined (the loop is not given back).
 */
function pauses(slices: PreviewSlices | undefined): () => Promise<void> | undefined {
  if (slices === undefined) return () => undefined;
  const now = slices.now ?? (() => performance.now());
  let from = now();
  return () => {
    if (now() - from < slices.ms) return undefined;
    return slices.pause().then(() => {
      from = now();
    });
  };
}

export interface PreviewEntry {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly decision: { readonly inject: boolean; readonly reasons: readonly string[] };
  readonly patch: readonly PatchOperation[];
  /** The document as it will be stored (the workload with its injected pod template). */
  readonly object: unknown;
  readonly warnings: readonly string[];
  readonly interception: InterceptionSummary;
  readonly proxy?: ProxySummary;
  /** When the injector would refuse the Pod (and so the API server would). */
  readonly error?: { readonly code: string; readonly field: string; readonly message: string };
  /**
   * With the chart's policy mode on (policy.enabled): whether the MutatingAdmissionPolicy takes
   * the Pod ("policy") or leaves it to the webhook ("webhook", with the reason). Left out for an
   * AdmissionReview that is not a Pod's CREATE, which no injector takes, and for a Pod the
   * engine cannot read, which the API server refuses either way.
   */
  readonly policyMode?: Verdict;
}

interface Candidate {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly doc: unknown;
  /** What the webhook would be sent (the Pod, managedFields dropped as the webhook does). */
  readonly pod: Pod;
  readonly ctx: InjectContext;
  /** The document as stored once injected (the Pod's patch applied, or the workload's template replaced). */
  readonly rebuild: (pod: Pod, patch: readonly PatchOperation[]) => unknown;
  /** Why the webhook would admit it untouched whatever the Pod says (an AdmissionReview that is no Pod CREATE). */
  readonly skip?: string;
  /** Why the webhook would refuse it whatever the Pod says (an AdmissionReview of a Pod CREATE without the Pod). */
  readonly refused?: { readonly code: string; readonly field: string; readonly message: string };
}

/** What the preview makes of a document found: the Pod the webhook would be sent, or why it would not be. */
function candidate(found: FoundDocument): Candidate {
  if ("located" in found) {
    // A Pod is itself; a workload (the kinds the CLI takes) stands for the Pod of its template.
    // Located without running the injector, so what is previewed is the Pod as given.
    const { doc, located } = found;
    const { kind, name, namespace, workload } = located;
    return {
      kind,
      name,
      namespace,
      doc,
      pod: kind === "Pod" ? withoutManagedFields(located.pod) : located.pod,
      ctx: workload ? { namespace, workload } : { namespace },
      // A Pod: the patch applied; a workload: its template replaced, as the CLI prints it.
      rebuild: (p, patch) => (kind === "Pod" ? applied(doc, patch) : located.replace(p)),
    };
  }
  // An AdmissionReview, through the webhook's own gate: admitted unchanged or refused inside
  // the review where /inject would be.
  const { request: req, verdict, namespace } = found;
  const name = podDisplayName(req.object) ?? req.name ?? "";
  const rebuild = (_p: Pod, patch: readonly PatchOperation[]): unknown => applied(req.object, patch);
  if (verdict.pass) {
    return { kind: "Pod", name, namespace, doc: req.object, pod: verdict.pod, ctx: { namespace }, rebuild };
  }
  const kind = "unchanged" in verdict && req.kind?.kind ? req.kind.kind : "Pod";
  const stop = "unchanged" in verdict ? { skip: verdict.reason } : { refused: verdict.refused };
  return {
    kind,
    name,
    namespace,
    doc: req.object,
    pod: isMap(req.object) ? withoutManagedFields(req.object as Pod) : {},
    ctx: { namespace },
    rebuild,
    ...stop,
  };
}

/**
 * The patch applied to a copy of the document, each operation validated. The copy is patched in
 * place: one copy of a document that may be megabytes, not two.
 */
function applied(doc: unknown, patch: readonly PatchOperation[]): unknown {
  return jsonpatch.applyPatch(structuredClone(doc), patch as jsonpatch.Operation[], true, true).newDocument;
}

/** "k=v,k2=v2" (as kubectl writes label lists). */
export function parseLabelList(text: string): Record<string, string> {
  // Keys are data: collected in a Map, then made own properties (a `__proto__` key included).
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    const t = part.trim();
    if (!t) continue;
    const eq = t.indexOf("=");
    if (eq <= 0) throw new PreviewError(`namespace label ${quote(t)} is not key=value`);
    out.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return Object.fromEntries(out);
}

/**
 * Labels given with the request apply to the namespace it names (or, when it names none, to
 * every namespace); other namespaces are looked up.
 */
export function labelsGivenFor(
  ns: string,
  named: string | undefined,
  given: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  return given && (named === undefined || ns === named) ? given : undefined;
}

/**
 * The documents of a /preview body or a `preview` file. JSON is read by JSON.parse (linear,
 * native) and then held to the same depth and size limits; YAML within `yamlLimits`
 * (PREVIEW_YAML_LIMITS for the server, whose event loop reads it).
 */
export function parsePreviewInput(
  body: string,
  format: "json" | "yaml",
  yamlLimits: YamlLimits = PREVIEW_YAML_LIMITS,
): unknown[] {
  const asYaml = (): unknown[] => parseManifest(body, "request body", yamlLimits);
  if (format === "json" || /^\s*[{[]/.test(body.slice(0, 64))) {
    let doc: unknown;
    try {
      jsonPreScan(body, PREVIEW_JSON_LIMITS);
    } catch (e) {
      throw new PreviewError(`request body: ${(e as Error).message}`);
    }
    try {
      doc = JSON.parse(body);
    } catch (e) {
      // Clients such as `kubectl create --raw -f pod.yaml` send YAML as JSON; JSON is YAML, so
      // a body that is not JSON is read as YAML before giving up.
      try {
        return asYaml();
      } catch (y) {
        if (format === "yaml") throw new PreviewError((y as Error).message);
        throw new PreviewError(`the body is neither JSON nor YAML: ${(e as Error).message}`);
      }
    }
    try {
      measureValue(doc, PREVIEW_JSON_LIMITS);
    } catch (e) {
      throw new PreviewError(`request body: ${(e as Error).message}`);
    }
    return [doc];
  }
  try {
    return asYaml();
  } catch (e) {
    throw new PreviewError((e as Error).message);
  }
}

/**
 * The labels of every namespace the Pods are in: given, else looked up (all at once, and
 * refused before any lookup when there are more than `maxNamespaces`), else not known.
 */
async function namespaceLabelsOf(
  found: readonly Candidate[],
  opts: PreviewOptions,
): Promise<Map<string, NamespaceLabelsResult>> {
  const out = new Map<string, NamespaceLabelsResult>();
  const wanted = new Set<string>();
  for (const c of found) {
    if (c.skip !== undefined || c.refused !== undefined || out.has(c.namespace)) continue;
    const given = labelsGivenFor(c.namespace, opts.namespace, opts.givenLabels);
    if (given) out.set(c.namespace, { labels: given });
    else wanted.add(c.namespace);
  }
  if (wanted.size === 0) return out;
  if (!opts.lookup) {
    for (const ns of wanted) out.set(ns, { unknown: opts.notLookedUp ?? NO_CLUSTER_ACCESS });
    return out;
  }
  const max = opts.maxNamespaces ?? MAX_PREVIEW_NAMESPACES;
  if (wanted.size > max) {
    throw new PreviewLimitError(
      "ERR_PREVIEW_TOO_MANY_NAMESPACES",
      `the Pods are in ${wanted.size} namespaces whose labels would be looked up, more than the limit of ${max} per request: give their labels (namespaceLabels), or preview fewer namespaces at once`,
      max,
      wanted.size,
    );
  }
  const answers = await opts.lookup([...wanted]);
  for (const ns of wanted) out.set(ns, answers.get(ns) ?? { unknown: "not read" });
  return out;
}

export async function preview(docs: readonly unknown[], opts: PreviewOptions): Promise<PreviewEntry[]> {
  const deep = tooDeep(docs);
  if (deep !== undefined) throw new PreviewError(deep);
  const found = findDocuments(docs, opts.namespace ?? "default").map(candidate);
  if (found.length === 0) throw new PreviewError("no Pod, workload or AdmissionReview found in the input");
  const maxPods = opts.maxPods ?? MAX_PREVIEW_PODS;
  if (found.length > maxPods) {
    throw new PreviewLimitError(
      "ERR_PREVIEW_TOO_MANY_PODS",
      `the input holds ${found.length} Pods, workloads and AdmissionReviews, more than the limit of ${maxPods} per request: preview them in smaller parts`,
      maxPods,
      found.length,
    );
  }
  if (opts.inlineOnly === true) {
    for (const c of found) {
      const over = inlineCostOver(c.pod);
      if (over !== undefined)
        throw new PreviewError(
          `${c.kind}/${c.name}: ${over} the server previews (the webhook answers it on its worker thread): preview it offline, sidecar-injector preview -f FILE`,
        );
    }
  }
  const labels = await namespaceLabelsOf(found, opts);
  const domain =
    opts.policyDomain ??
    policyDomain(opts.config, opts.nativeSidecarsSupported ?? opts.config.nativeSidecars === "true");
  await opts.slices?.begin?.();
  const entries: PreviewEntry[] = [];
  const pauseIfDue = pauses(opts.slices);
  for (const c of found) {
    const paused = pauseIfDue();
    if (paused !== undefined) await paused;
    if (c.skip !== undefined) {
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: { inject: false, reasons: [c.skip] },
        patch: [],
        object: c.doc,
        warnings: [],
        interception: givenInterception(c.pod),
      });
      continue;
    }
    if (c.refused !== undefined) {
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: { inject: false, reasons: [refusedReason(c.refused.message)] },
        patch: [],
        object: c.doc,
        warnings: [],
        interception: givenInterception(c.pod),
        error: c.refused,
      });
      continue;
    }
    const nsLabels = labels.get(c.namespace) ?? { unknown: "not read" };
    const podLabels = c.pod.metadata?.labels ?? {};
    const selection =
      "labels" in nsLabels
        ? apiServerSelection(
            c.namespace,
            nsLabels.labels,
            podLabels,
            opts.config.revision,
            opts.ownNamespace,
            opts.config.revisionTags,
            opts.config.enableNamespacesByDefault,
          )
        : {
            called: true,
            reason: `labels of namespace ${quote(c.namespace)} not known (${nsLabels.unknown}): assuming the API server calls the injector`,
          };
    // The policy's bindings select what the webhooks select: the same namespace selection.
    const policyMode = policyModeOf(domain, c);
    const ctx: InjectContext =
      opts.nativeSidecarsSupported === undefined
        ? c.ctx
        : { ...c.ctx, nativeSidecarsSupported: opts.nativeSidecarsSupported };
    try {
      const result = inject(c.pod, ctx, opts.config);
      const injected = selection.called && result.decision.inject;
      const object = injected ? c.rebuild(result.pod, result.patch) : c.doc;
      const finalPod = injected ? result.pod : c.pod;
      const px = proxySummary(finalPod, c.namespace, opts.config);
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: {
          inject: injected,
          reasons: selection.called ? [selection.reason, ...result.decision.reasons] : [selection.reason],
        },
        patch: selection.called ? result.patch : [],
        object,
        warnings: selection.called ? result.warnings : [],
        interception: interceptionSummary(finalPod),
        ...(px ? { proxy: px } : {}),
        ...(policyMode ? { policyMode } : {}),
      });
    } catch (e) {
      if (!(e instanceof InjectionError)) throw e;
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: {
          inject: false,
          reasons: selection.called ? [selection.reason, refusedReason(e.message)] : [selection.reason],
        },
        patch: [],
        object: c.doc,
        warnings: [],
        interception: givenInterception(c.pod),
        ...(selection.called ? { error: { code: e.code, field: e.field, message: e.message } } : {}),
        ...(policyMode ? { policyMode } : {}),
      });
    }
  }
  return entries;
}

/**
 * Which injector takes the Pod with the policy mode on; none for a Pod the engine cannot read
 * (the API server refuses it whichever injector it goes to).
 */
function policyModeOf(domain: PolicyDomain, c: Candidate): Verdict | undefined {
  try {
    return domainVerdict(domain, readPod(c.pod), c.ctx.workload);
  } catch (e) {
    if (e instanceof InjectionError) return undefined;
    throw e;
  }
}

function refusedReason(message: string): string {
  return `refused: ${message}; the API server would refuse to create the pod`;
}

/** What a Pod as given intercepts; nothing when its shape is not one the engine can read. */
function givenInterception(pod: unknown): InterceptionSummary {
  try {
    return interceptionSummary(readPod(pod));
  } catch (e) {
    if (e instanceof InjectionError) return interceptionSummary({});
    throw e;
  }
}

function pushEntry(entries: PreviewEntry[], original: unknown, entry: PreviewEntry): void {
  originals.set(entry, original);
  entries.push(entry);
}

export const PREVIEW_FORMATS = ["json", "yaml", "diff"] as const;
export type PreviewFormat = (typeof PREVIEW_FORMATS)[number];

/**
 * The answer, built entry by entry and given up (ERR_PREVIEW_ANSWER_TOO_LARGE) as soon as it
 * passes `maxBytes`, so that an answer over the limit is never built whole. The same text as
 * formatting all entries at once.
 */
export function formatPreview(entries: readonly PreviewEntry[], format: PreviewFormat, maxBytes = Infinity): string {
  return [...answerPieces(entries, format, maxBytes)].join("");
}

/**
 * formatPreview's text, giving the event loop back between entries as preview() does between
 * Pods (the diff of a hundred large Pods is a few hundred milliseconds of YAML and diffing).
 */
export async function formatPreviewInSlices(
  entries: readonly PreviewEntry[],
  format: PreviewFormat,
  maxBytes: number,
  slices: PreviewSlices,
): Promise<string> {
  const parts: string[] = [];
  const pauseIfDue = pauses(slices);
  for (const piece of answerPieces(entries, format, maxBytes)) {
    parts.push(piece);
    const paused = pauseIfDue();
    if (paused !== undefined) await paused;
  }
  return parts.join("");
}

/** The answer's text, a piece (an entry's) at a time, given up once past `maxBytes`. */
function* answerPieces(entries: readonly PreviewEntry[], format: PreviewFormat, maxBytes: number): Generator<string> {
  let bytes = 0;
  const checked = (text: string, done: number): string => {
    bytes += Buffer.byteLength(text);
    if (bytes > maxBytes) {
      throw new PreviewLimitError(
        "ERR_PREVIEW_ANSWER_TOO_LARGE",
        `the preview answer is larger than the limit of ${maxBytes} bytes (${bytes} bytes after ${done} of ${entries.length} entries): preview fewer Pods per request${format === "diff" ? "" : ", or ask for the diff format"}`,
        maxBytes,
        bytes,
      );
    }
    return text;
  };
  if (format === "json") {
    // JSON.stringify({ items }, null, 2), one item at a time: each item is indented by 4.
    if (entries.length === 0) return yield `${JSON.stringify({ items: [] }, null, 2)}\n`;
    yield checked('{\n  "items": [\n', 0);
    for (const [i, e] of entries.entries())
      yield checked(
        `    ${JSON.stringify(e, null, 2).replaceAll("\n", "\n    ")}${i < entries.length - 1 ? "," : ""}\n`,
        i + 1,
      );
    yield checked("  ]\n}\n", entries.length);
    return;
  }
  if (format === "yaml") {
    // stringify({ items }), one item at a time: each item is written as the only item of
    // `items`, and what follows that key's line is its sequence entry, indented by 2.
    if (entries.length === 0) return yield stringify({ items: [] });
    yield checked(ITEMS_KEY, 0);
    for (const [i, e] of entries.entries()) yield checked(yamlText({ items: [e] }).slice(ITEMS_KEY.length), i + 1);
    return;
  }
  const seen = new Set<unknown>();
  for (const [i, e] of entries.entries()) {
    if (seen.has(e.object)) continue;
    seen.add(e.object);
    const label = `${e.kind}/${e.name} (${e.namespace})`;
    const before = yamlText(originalOf(e));
    const after = yamlText(e.object);
    const d = unifiedDiff(before, after, `${label} as given`, `${label} as stored`);
    yield checked(d || `# ${label}: unchanged (${e.decision.reasons.at(-1) ?? ""})\n`, i + 1);
  }
}

const ITEMS_KEY = "items:\n";

/** The document each entry was made from, for the diff (kept out of the JSON answer). */
const originals = new WeakMap<PreviewEntry, unknown>();
function originalOf(e: PreviewEntry): unknown {
  return originals.has(e) ? originals.get(e) : e.object;
}
