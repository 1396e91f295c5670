// The dry-run preview: what the injector would do to each Pod of a manifest (a Pod, any
// workload the CLI takes, a List, several YAML documents, or a whole AdmissionReview), and
// why. The same engine as the webhook; no side effects. Used by POST /preview and by
// `sidecar-injector preview`.
import jsonpatch from "fast-json-patch";
import { stringify } from "yaml";
import { isPodRequest, withoutManagedFields } from "./admission/review.js";
import type { Config } from "./config/types.js";
import { unifiedDiff } from "./diff.js";
import { apiServerSelection, interceptionSummary, proxySummary, type InterceptionSummary, type ProxySummary } from "./injection/explain.js";
import { inject } from "./injection/inject.js";
import { InjectionError, type InjectContext, type PatchOperation } from "./injection/types.js";
import { podOf } from "./injection/workloads.js";
import type { AdmissionRequest, Pod } from "./kube/types.js";
import { jsonPreScan, measureValue, PREVIEW_JSON_LIMITS, PREVIEW_YAML_LIMITS, type YamlLimits } from "./injection/yaml-limits.js";
import { parseManifest } from "./manifest.js";

export class PreviewError extends Error {
  readonly code = "ERR_PREVIEW_INPUT";
}

export interface PreviewOptions {
  readonly config: Config;
  /** Namespace of documents that name none (default "default"). */
  readonly namespace?: string;
  /** Labels of a namespace, when known (given, or read from the API server). */
  readonly namespaceLabels?: (namespace: string) => Promise<Readonly<Record<string, string>> | undefined>;
  /** The injector's own namespace (never selected by the webhook configuration). */
  readonly ownNamespace?: string;
  readonly nativeSidecarsSupported?: boolean;
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
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function candidates(doc: unknown, defaultNamespace: string, out: Candidate[]): void {
  if (!isObj(doc)) return;
  if (doc.kind === "List" && Array.isArray(doc.items)) {
    for (const item of doc.items) candidates(item, defaultNamespace, out);
    return;
  }
  if (doc.kind === "AdmissionReview" && isObj(doc.request)) {
    // As admit() answers it: only a Pod CREATE is injected, and it must carry the Pod.
    const req = doc.request as AdmissionRequest & Record<string, unknown>;
    const object = isObj(req.object) ? req.object : undefined;
    const meta = object && isObj(object.metadata) ? object.metadata : {};
    const namespace = typeof req.namespace === "string" && req.namespace ? req.namespace : typeof meta.namespace === "string" && meta.namespace ? meta.namespace : defaultNamespace;
    const name = (typeof meta.name === "string" && meta.name) || (typeof meta.generateName === "string" && meta.generateName) || req.name || "";
    let skip: string | undefined;
    if (!isPodRequest(req)) {
      const what = req.kind?.kind ?? req.resource?.resource ?? (typeof object?.kind === "string" ? object.kind : "object");
      skip = `${req.subResource ? `${what}/${req.subResource}` : what} admitted unchanged: only Pods are injected`;
    } else if (req.operation !== "CREATE") {
      skip = `Pod ${req.operation ?? "(no operation)"} admitted unchanged: sidecars are injected on CREATE only`;
    } else if (!object) {
      throw new PreviewError("AdmissionReview request.object: must be the Pod being created");
    }
    const kind = skip && req.kind?.kind ? req.kind.kind : "Pod";
    const pod = withoutManagedFields((object ?? {}) as Pod);
    out.push({ kind, name, namespace, doc: req.object, pod, ctx: { namespace }, rebuild: (_p, patch) => applied(req.object, patch), ...(skip ? { skip } : {}) });
    return;
  }
  // A Pod is itself; a workload (the kinds the CLI takes) stands for the Pod of its template.
  // Located without running the injector, so what is previewed is the Pod as given.
  const located = podOf(doc, defaultNamespace);
  if (!located) return;
  const { kind, name, namespace, workload } = located;
  out.push({
    kind,
    name,
    namespace,
    doc,
    pod: kind === "Pod" ? withoutManagedFields(located.pod) : located.pod,
    ctx: workload ? { namespace, workload } : { namespace },
    // A Pod: the patch applied; a workload: its template replaced, as the CLI prints it.
    rebuild: (p, patch) => (kind === "Pod" ? applied(doc, patch) : located.replace(p)),
  });
}

/** The patch applied to (a copy of) the document, each operation validated. */
function applied(doc: unknown, patch: readonly PatchOperation[]): unknown {
  return jsonpatch.applyPatch(structuredClone(doc), patch as jsonpatch.Operation[], true, false).newDocument;
}

/** "k=v,k2=v2" (as kubectl writes label lists). */
export function parseLabelList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    const t = part.trim();
    if (!t) continue;
    const eq = t.indexOf("=");
    if (eq <= 0) throw new PreviewError(`namespace label ${JSON.stringify(t)} is not key=value`);
    out[t.slice(0, eq)] = t.slice(eq + 1);
  }
  return out;
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
export function parsePreviewInput(body: string, format: "json" | "yaml", yamlLimits: YamlLimits = PREVIEW_YAML_LIMITS): unknown[] {
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

export async function preview(docs: readonly unknown[], opts: PreviewOptions): Promise<PreviewEntry[]> {
  const found: Candidate[] = [];
  for (const d of docs) candidates(d, opts.namespace ?? "default", found);
  if (found.length === 0) throw new PreviewError("no Pod, workload or AdmissionReview found in the input");
  const labelsCache = new Map<string, Promise<Readonly<Record<string, string>> | undefined>>();
  const labelsOf = (ns: string): Promise<Readonly<Record<string, string>> | undefined> => {
    let p = labelsCache.get(ns);
    if (!p) {
      p = opts.namespaceLabels ? opts.namespaceLabels(ns) : Promise.resolve(undefined);
      labelsCache.set(ns, p);
    }
    return p;
  };
  const entries: PreviewEntry[] = [];
  for (const c of found) {
    if (c.skip !== undefined) {
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: { inject: false, reasons: [c.skip] },
        patch: [],
        object: c.doc,
        warnings: [],
        interception: interceptionSummary(c.pod),
      });
      continue;
    }
    const nsLabels = await labelsOf(c.namespace);
    const podLabels = c.pod.metadata?.labels ?? {};
    const selection = nsLabels
      ? apiServerSelection(c.namespace, nsLabels, podLabels, opts.config.revision, opts.ownNamespace)
      : { called: true, reason: `labels of namespace ${c.namespace} not known (give them, or run the injector with cluster access): assuming the API server calls the injector` };
    const ctx: InjectContext = opts.nativeSidecarsSupported === undefined ? c.ctx : { ...c.ctx, nativeSidecarsSupported: opts.nativeSidecarsSupported };
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
        decision: { inject: injected, reasons: selection.called ? [selection.reason, ...result.decision.reasons] : [selection.reason] },
        patch: selection.called ? result.patch : [],
        object,
        warnings: selection.called ? result.warnings : [],
        interception: interceptionSummary(finalPod),
        ...(px ? { proxy: px } : {}),
      });
    } catch (e) {
      if (!(e instanceof InjectionError)) throw e;
      pushEntry(entries, c.doc, {
        kind: c.kind,
        name: c.name,
        namespace: c.namespace,
        decision: {
          inject: false,
          reasons: selection.called ? [selection.reason, `refused: ${e.message}; the API server would refuse to create the pod`] : [selection.reason],
        },
        patch: [],
        object: c.doc,
        warnings: [],
        interception: interceptionSummary(c.pod),
        ...(selection.called ? { error: { code: e.code, field: e.field, message: e.message } } : {}),
      });
    }
  }
  return entries;
}

function pushEntry(entries: PreviewEntry[], original: unknown, entry: PreviewEntry): void {
  originals.set(entry, original);
  entries.push(entry);
}

export const PREVIEW_FORMATS = ["json", "yaml", "diff"] as const;
export type PreviewFormat = (typeof PREVIEW_FORMATS)[number];

export function formatPreview(entries: readonly PreviewEntry[], format: PreviewFormat): string {
  if (format === "json") return `${JSON.stringify({ items: entries }, null, 2)}\n`;
  if (format === "yaml") return stringify({ items: entries }, { lineWidth: 0, aliasDuplicateObjects: false });
  const parts: string[] = [];
  const seen = new Set<unknown>();
  for (const e of entries) {
    if (seen.has(e.object)) continue;
    seen.add(e.object);
    const label = `${e.kind}/${e.name} (${e.namespace})`;
    const before = stringify(originalOf(e), { lineWidth: 0, aliasDuplicateObjects: false });
    const after = stringify(e.object, { lineWidth: 0, aliasDuplicateObjects: false });
    const d = unifiedDiff(before, after, `${label} as given`, `${label} as stored`);
    parts.push(d || `# ${label}: unchanged (${e.decision.reasons.at(-1) ?? ""})\n`);
  }
  return parts.join("");
}

/** The document each entry was made from, for the diff (kept out of the JSON answer). */
const originals = new WeakMap<PreviewEntry, unknown>();
function originalOf(e: PreviewEntry): unknown {
  return originals.has(e) ? originals.get(e) : e.object;
}

