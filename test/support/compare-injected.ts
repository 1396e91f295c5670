// Compares our injected manifest with Istio's, after the normalisation the API server applies
// when it stores the object (the same as ../shared/conformance/compare.mjs, plus quantities):
//
// - every document (Lists flattened) is compared in order: its pod template (a Pod's metadata
//   and spec; a CronJob's job template's) and, apart, the rest of the document;
// - null, empty maps and empty lists are absent (`emptyDir: {}` is kept: it means something);
//   scalars compare as strings (Istio's YAML quotes numbers that we may not); outside the
//   injected containers, `false` or `0` against absent is no difference (Go drops such values
//   of plain fields when it prints);
// - resource quantities in their canonical spelling (`2000m` is stored as `2`);
// - env is a map by name, a JSON value parsed; annotations with a JSON value parsed, and the
//   lists of `sidecar.istio.io/status` sorted; volume mounts and ports are sets; a volume with
//   no source is an emptyDir (the API server defaults it);
// - containers and init containers are maps by name, their order compared apart; the args of
//   istio-init (istio-validation) are a map of istio-iptables flags;
// - the order of these lists is compared apart, as their keys (`envOrder`, `volumeMountOrder`,
//   `portOrder`, `volumeOrder`), over the keys both sides have (an item on one side only is a
//   difference of its own): the API server keeps the order, and it matters (an env var's
//   `$(VAR)` refers only to the ones before it).
//
// compareInjected returns the differences as `path: what` lines with the values cut short;
// empty means the API server would store the same object.
import { parseQuantity } from "../../src/injection/quantity.js";
import { parseManifest } from "../../src/manifest.js";

export interface Difference {
  /** Where, e.g. `Deployment/hello.template.containers.istio-proxy.env.PROXY_CONFIG`. */
  readonly path: string;
  readonly kind: "missing" | "unexpected" | "changed";
  /** Istio's value (absent for "unexpected"). */
  readonly istio?: unknown;
  /** Ours (absent for "missing"). */
  readonly ours?: unknown;
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJsonText(v: unknown): { ok: true; value: unknown } | { ok: false } {
  if (typeof v !== "string") return { ok: false };
  const t = v.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(t) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Nulls, empty maps and lists dropped; scalars as strings; `emptyDir: {}` kept. */
function prune(v: unknown, key?: string): unknown {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) {
    const out = v.map((x) => prune(x)).filter((x) => x !== undefined);
    return out.length ? out : undefined;
  }
  if (isPlain(v)) {
    const out: Plain = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x, k);
      if (p !== undefined) out[k] = p;
    }
    if (key === "emptyDir") return out;
    return Object.keys(out).length ? out : undefined;
  }
  return String(v);
}

function canonicalQuantities(list: unknown): unknown {
  if (!isPlain(list)) return list;
  const out: Plain = {};
  for (const [k, q] of Object.entries(list)) {
    out[k] = typeof q === "string" || typeof q === "number" ? (parseQuantity(String(q), "milli") ?? String(q)) : q;
  }
  return out;
}

function normResources(r: unknown): unknown {
  if (!isPlain(r)) return r;
  return { ...r, requests: canonicalQuantities(r.requests), limits: canonicalQuantities(r.limits) };
}

function sortedBy(list: unknown, keyOf: (x: Plain) => string): unknown[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return [...list].sort((a, b) => {
    const ka = isPlain(a) ? keyOf(a) : JSON.stringify(a);
    const kb = isPlain(b) ? keyOf(b) : JSON.stringify(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function normEnv(env: unknown): Plain {
  const out: Plain = {};
  if (!Array.isArray(env)) return out;
  for (const e of env) {
    if (!isPlain(e)) continue;
    const name = String(e.name);
    if (e.valueFrom !== undefined && e.valueFrom !== null) out[name] = { valueFrom: prune(e.valueFrom) };
    else {
      const json = parseJsonText(e.value);
      out[name] = json.ok
        ? { json: prune(json.value) ?? {} }
        : { value: e.value === undefined || e.value === null ? "" : String(e.value) };
    }
  }
  return out;
}

/**
 * istio-iptables flags as a map (`-u` -> `1337`, `--log_output_level` -> `default:info`), the
 * words before the first flag under `_`: the program reads them in any order, and a difference
 * is then named by its flag.
 */
function iptablesArgs(args: unknown): unknown {
  if (!Array.isArray(args)) return args;
  const out: Plain = { _: [] };
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    if (!a.startsWith("-")) {
      (out._ as string[]).push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else if (i + 1 < args.length && !/^-[a-z-]/i.test(String(args[i + 1]))) out[a] = String(args[++i]);
    else out[a] = true;
  }
  return out;
}

const IPTABLES_CONTAINERS = new Set(["istio-init", "istio-validation"]);

function normContainer(c: Plain): unknown {
  const { env, volumeMounts, ports, resources, args, ...rest } = c;
  return prune({
    ...rest,
    args: IPTABLES_CONTAINERS.has(String(c.name)) ? iptablesArgs(args) : args,
    resources: normResources(resources),
    env: normEnv(env),
    envOrder: keysOf(env, "name"),
    volumeMounts: sortedBy(volumeMounts, (m) => `${String(m.mountPath)}|${String(m.name)}`),
    volumeMountOrder: keysOf(volumeMounts, "mountPath"),
    ports: sortedBy(ports, (p) => `${String(p.containerPort)}|${String(p.name ?? "")}|${String(p.protocol ?? "")}`),
    portOrder: keysOf(ports, "containerPort"),
  });
}

/** The keys of a list's items, in order, as strings (a list whose order the API server keeps). */
function keysOf(list: unknown, key: string): string[] | undefined {
  return Array.isArray(list) ? list.map((x) => (isPlain(x) ? String(x[key]) : JSON.stringify(x))) : undefined;
}

function normVolume(v: Plain): unknown {
  const keys = Object.keys(v).filter((k) => k !== "name" && v[k] !== null && v[k] !== undefined);
  if (!keys.length) return { name: String(v.name), emptyDir: {} };
  const out = prune(v, "volume");
  if (isPlain(out) && isPlain(out.emptyDir) && out.emptyDir.sizeLimit !== undefined) {
    out.emptyDir = {
      ...out.emptyDir,
      sizeLimit: parseQuantity(String(out.emptyDir.sizeLimit), "milli") ?? out.emptyDir.sizeLimit,
    };
  }
  return out;
}

function normAnnotations(a: unknown): unknown {
  if (!isPlain(a)) return undefined;
  const out: Plain = {};
  for (const [k, v] of Object.entries(a)) {
    const json = parseJsonText(v);
    if (k === "sidecar.istio.io/status" && json.ok && isPlain(json.value)) {
      const s: Plain = { ...json.value };
      for (const [f, x] of Object.entries(s)) if (Array.isArray(x)) s[f] = [...(x as unknown[])].map(String).sort();
      out[k] = prune(s);
    } else out[k] = json.ok ? prune(json.value) : String(v);
  }
  return prune(out);
}

function named(list: unknown, fn: (x: Plain) => unknown): Plain {
  const out: Plain = {};
  if (!Array.isArray(list)) return out;
  list.forEach((x, i) => {
    if (isPlain(x)) out[typeof x.name === "string" ? x.name : `#${i}`] = fn(x);
  });
  return out;
}

function names(list: unknown): string[] {
  return Array.isArray(list) ? list.map((x, i) => (isPlain(x) && typeof x.name === "string" ? x.name : `#${i}`)) : [];
}

function normTemplate(t: Plain): Plain {
  const meta = isPlain(t.metadata) ? t.metadata : {};
  const spec = isPlain(t.spec) ? t.spec : {};
  const { containers, initContainers, volumes, ...specRest } = spec;
  const { labels, annotations, creationTimestamp: _ts, ...metaRest } = meta;
  return {
    metadata: prune(metaRest),
    labels: prune(labels),
    annotations: normAnnotations(annotations),
    initContainerOrder: names(initContainers),
    containerOrder: names(containers),
    initContainers: named(initContainers, normContainer),
    containers: named(containers, normContainer),
    volumes: named(volumes, normVolume),
    volumeOrder: names(volumes),
    spec: prune(specRest),
  };
}

interface Located {
  readonly id: string;
  /** The pod template (a Pod: the Pod), or undefined for a document without one. */
  readonly template: Plain | undefined;
  /** The document without its template (and without status, which nobody sets). */
  readonly rest: unknown;
}

function locate(doc: unknown): Located[] {
  if (!isPlain(doc)) return [{ id: "(not an object)", template: undefined, rest: prune(doc) }];
  if (doc.kind === "List" && Array.isArray(doc.items)) return doc.items.flatMap(locate);
  const meta = isPlain(doc.metadata) ? doc.metadata : {};
  const id = `${String(doc.kind ?? "?")}/${String(meta.name ?? meta.generateName ?? "")}`;
  const { status: _status, ...withoutStatus } = doc;
  if (doc.kind === "Pod") return [{ id, template: withoutStatus, rest: undefined }];
  const spec = isPlain(doc.spec) ? doc.spec : undefined;
  let holder: Plain | undefined = spec;
  if (doc.kind === "CronJob") {
    const jt = spec && isPlain(spec.jobTemplate) ? spec.jobTemplate : undefined;
    holder = jt && isPlain(jt.spec) ? jt.spec : undefined;
  }
  if (!holder || !isPlain(holder.template)) return [{ id, template: undefined, rest: stripMeta(withoutStatus) }];
  const template = holder.template;
  // The rest: the document with its template taken out.
  const rest = structuredClone(withoutStatus);
  const restSpec = rest.spec as Plain;
  if (doc.kind === "CronJob") delete ((restSpec.jobTemplate as Plain).spec as Plain).template;
  else delete restSpec.template;
  return [{ id, template, rest: stripMeta(rest) }];
}

function stripMeta(doc: Plain): unknown {
  const meta = isPlain(doc.metadata) ? doc.metadata : {};
  const { creationTimestamp: _ts, ...m } = meta;
  return prune({ ...doc, metadata: m });
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? "undefined";
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}

const MAX_DIFFERENCES = 100;

/** The containers the injector writes: there, `false` and `0` are never the same as absent. */
const INJECTED_CONTAINER = /\.(initContainers|containers)\.(istio-proxy|istio-init|istio-validation)(\.|$)/;

/**
 * Outside the injected containers, a `false` or `0` on one side only is no difference: Istio's
 * Go types drop such values of plain (not pointer) fields when they print, and the API server
 * reads them back as the same zero.
 */
function zeroOnOneSide(istio: unknown, ours: unknown, path: string): boolean {
  const zero = (v: unknown): boolean => v === "false" || v === "0";
  return !INJECTED_CONTAINER.test(path) && ((istio === undefined && zero(ours)) || (ours === undefined && zero(istio)));
}

/** The lists of keys whose order is compared over the keys both sides have. */
const KEY_ORDER = /\.(envOrder|volumeMountOrder|portOrder|volumeOrder)$/;

function diff(istio: unknown, ours: unknown, path: string, out: Difference[]): void {
  if (out.length >= MAX_DIFFERENCES) return;
  if (istio === undefined && ours === undefined) return;
  if (KEY_ORDER.test(path) && Array.isArray(istio) && Array.isArray(ours)) {
    const inIstio = new Set(istio);
    const inOurs = new Set(ours);
    const a = istio.filter((k) => inOurs.has(k));
    const b = ours.filter((k) => inIstio.has(k));
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, kind: "changed", istio: a, ours: b });
    return;
  }
  if (zeroOnOneSide(istio, ours, path)) return;
  if (istio === undefined) {
    out.push({ path, kind: "unexpected", ours });
    return;
  }
  if (ours === undefined) {
    out.push({ path, kind: "missing", istio });
    return;
  }
  if (Array.isArray(istio) && Array.isArray(ours)) {
    if (istio.length !== ours.length) {
      out.push({ path, kind: "changed", istio, ours });
      return;
    }
    istio.forEach((x, i) => diff(x, ours[i], `${path}[${i}]`, out));
    return;
  }
  if (isPlain(istio) && isPlain(ours)) {
    for (const k of new Set([...Object.keys(istio), ...Object.keys(ours)]))
      diff(istio[k], ours[k], `${path}.${k}`, out);
    return;
  }
  if (JSON.stringify(istio) !== JSON.stringify(ours)) out.push({ path, kind: "changed", istio, ours });
}

function docsOf(m: string | readonly unknown[]): unknown[] {
  return typeof m === "string" ? parseManifest(m, "manifest") : [...m];
}

/**
 * The differences between our injected manifest and Istio's (text, or parsed documents), after
 * normalisation. Empty when the API server would store the same objects.
 */
export function compareInjected(ours: string | readonly unknown[], istio: string | readonly unknown[]): Difference[] {
  const got = docsOf(ours)
    .filter((d) => d !== null && d !== undefined)
    .flatMap(locate);
  const want = docsOf(istio)
    .filter((d) => d !== null && d !== undefined)
    .flatMap(locate);
  const out: Difference[] = [];
  if (got.length !== want.length) {
    out.push({ path: "(documents)", kind: "changed", istio: want.map((w) => w.id), ours: got.map((g) => g.id) });
    return out;
  }
  want.forEach((w, i) => {
    const g = got[i] as Located;
    const at = w.id === g.id ? w.id : `${w.id}|${g.id}`;
    diff(
      w.template === undefined ? undefined : normTemplate(w.template),
      g.template === undefined ? undefined : normTemplate(g.template),
      `${at}.template`,
      out,
    );
    diff(w.rest, g.rest, `${at}.rest`, out);
  });
  return out;
}

/**
 * Whether a pod template of the manifest (text, or parsed documents) holds a container named
 * istio-proxy both among its init containers and among its containers.
 */
export function proxyInBothLists(manifest: string | readonly unknown[]): boolean {
  const holds = (list: unknown): boolean => names(list).includes("istio-proxy");
  return docsOf(manifest)
    .flatMap(locate)
    .some(({ template }) => {
      const spec = template !== undefined && isPlain(template.spec) ? template.spec : undefined;
      return spec !== undefined && holds(spec.initContainers) && holds(spec.containers);
    });
}

/**
 * Why the API server would refuse the istio-proxy of a pod template of the manifest (text, or
 * parsed documents), or undefined when it would not: istio-proxy twice (in both lists, or twice
 * in one), or among the init containers without `restartPolicy: Always` — not a native sidecar,
 * so its probes and lifecycle hooks are refused, and without them it would never complete and
 * the Pod never start. Istio's injector gives such Pods for some `inject.istio.io/templates`
 * lists with native sidecars (README, "Deliberate differences from Istio").
 */
export function proxyRefused(manifest: string | readonly unknown[]): string | undefined {
  for (const { id, template } of docsOf(manifest).flatMap(locate)) {
    const spec = template !== undefined && isPlain(template.spec) ? template.spec : undefined;
    if (spec === undefined) continue;
    const init = Array.isArray(spec.initContainers) ? spec.initContainers.filter(isPlain) : [];
    const main = Array.isArray(spec.containers) ? spec.containers.filter(isPlain) : [];
    const proxies = (list: Plain[]): Plain[] => list.filter((c) => c.name === "istio-proxy");
    const n = proxies(init).length + proxies(main).length;
    if (n > 1) return `${id}: istio-proxy ${n} times`;
    const initProxy = proxies(init)[0];
    if (initProxy !== undefined && initProxy.restartPolicy !== "Always")
      return `${id}: istio-proxy among the init containers without restartPolicy: Always`;
  }
  return undefined;
}

/** One line per difference, values cut short. */
export function describeDifferences(diffs: readonly Difference[], max = diffs.length): string[] {
  const lines = diffs.slice(0, max).map((d) => {
    switch (d.kind) {
      case "missing":
        return `${d.path}: missing (Istio has ${short(d.istio)})`;
      case "unexpected":
        return `${d.path}: unexpected ${short(d.ours)}`;
      default:
        return `${d.path}: Istio ${short(d.istio)}, ours ${short(d.ours)}`;
    }
  });
  if (diffs.length > max) lines.push(`… and ${diffs.length - max} more`);
  return lines;
}
