// The dry-run preview: what the injector would do to each Pod of a manifest (a Pod, any
// workload the CLI takes, a List, several YAML documents, or a whole AdmissionReview), and
// why. The same engine as the webhook; no side effects. Used by POST /preview and by
// `sidecar-injector preview`.
import { stringify } from "yaml";
import { withoutManagedFields } from "./admission/review.js";
import type { Config } from "./config/types.js";
import { unifiedDiff } from "./diff.js";
import { apiServerSelection, interceptionSummary, proxySummary, type InterceptionSummary, type ProxySummary } from "./injection/explain.js";
import { inject } from "./injection/inject.js";
import { InjectionError, type InjectContext, type PatchOperation } from "./injection/types.js";
import { injectDocument } from "./injection/workloads.js";
import type { Pod } from "./kube/types.js";
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
  /** Puts an injected Pod back into the document. */
  readonly rebuild: (pod: Pod) => unknown;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function candidates(doc: unknown, defaultNamespace: string, config: Config, out: Candidate[]): void {
  if (!isObj(doc)) return;
  if (doc.kind === "List" && Array.isArray(doc.items)) {
    for (const item of doc.items) candidates(item, defaultNamespace, config, out);
    return;
  }
  if (doc.kind === "AdmissionReview" && isObj(doc.request)) {
    const req = doc.request;
    const pod = withoutManagedFields(req.object as Pod);
    const namespace = typeof req.namespace === "string" && req.namespace ? req.namespace : (pod.metadata?.namespace ?? defaultNamespace);
    const name = pod.metadata?.name || pod.metadata?.generateName || "";
    out.push({ kind: "Pod", name, namespace, doc: req.object, pod, ctx: { namespace }, rebuild: (p) => p });
    return;
  }
  // Workloads and Pods: find their pod template the way the CLI does, by injecting with a
  // config that never injects (which only locates the Pod) ...
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const namespace = typeof meta.namespace === "string" && meta.namespace ? meta.namespace : defaultNamespace;
  const located = injectDocument(doc, defaultNamespace, NEVER(config)).injected;
  for (const item of located) {
    const pod = withoutManagedFields(item.result.pod);
    const ctx: InjectContext =
      item.kind === "Pod"
        ? { namespace }
        : { namespace, workload: { name: item.name, namespace, kind: item.kind, apiVersion: String(doc.apiVersion ?? "") } };
    out.push({
      kind: item.kind,
      name: item.name,
      namespace,
      doc,
      pod,
      ctx,
      // ... and the injected document the way the CLI builds it.
      rebuild: () => injectDocument(doc, defaultNamespace, config).doc,
    });
  }
}

const neverCache = new WeakMap<Config, Config>();
function NEVER(config: Config): Config {
  let c = neverCache.get(config);
  if (!c) {
    c = { ...config, policy: "disabled", neverInjectSelector: [{}], alwaysInjectSelector: [] };
    neverCache.set(config, c);
  }
  return c;
}

export function parsePreviewInput(body: string, format: "json" | "yaml"): unknown[] {
  if (format === "json") {
    try {
      return [JSON.parse(body)];
    } catch (e) {
      // Clients such as `kubectl create --raw -f pod.yaml` send YAML as JSON; JSON is YAML, so
      // a body that is not JSON is read as YAML before giving up.
      try {
        return parseManifest(body, "request body");
      } catch {
        throw new PreviewError(`the body is neither JSON nor YAML: ${(e as Error).message}`);
      }
    }
  }
  try {
    return parseManifest(body, "request body");
  } catch (e) {
    throw new PreviewError((e as Error).message);
  }
}

export async function preview(docs: readonly unknown[], opts: PreviewOptions): Promise<PreviewEntry[]> {
  const found: Candidate[] = [];
  for (const d of docs) candidates(d, opts.namespace ?? "default", opts.config, found);
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
    const nsLabels = await labelsOf(c.namespace);
    const podLabels = c.pod.metadata?.labels ?? {};
    const selection = nsLabels
      ? apiServerSelection(c.namespace, nsLabels, podLabels, opts.config.revision, opts.ownNamespace)
      : { called: true, reason: `labels of namespace ${c.namespace} not known (give them, or run the injector with cluster access): assuming the API server calls the injector` };
    const ctx: InjectContext = opts.nativeSidecarsSupported === undefined ? c.ctx : { ...c.ctx, nativeSidecarsSupported: opts.nativeSidecarsSupported };
    try {
      const result = inject(c.pod, ctx, opts.config);
      const injected = selection.called && result.decision.inject;
      const object = injected ? c.rebuild(result.pod) : c.doc;
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

