// Where two Pods differ, as paths a reader can find in `kubectl get pod -o yaml`:
// `.spec.containers[name=istio-proxy].env[name=PROXY_CONFIG].value`,
// `.metadata.annotations["sidecar.istio.io/status"]`, `.spec.volumes[3]`.
//
// Maps compare key by key. A list whose items are all maps with distinct `name`s (containers,
// env, volumes, volume mounts, ports) compares item by name, so one extra env var is one
// difference, not every var after it; the order of such a list is a difference of its own
// (`.spec.containers (order)`) when both hold the same names in another order. Any other list
// compares index by index, its length apart. A side that lacks a value has none (`undefined`),
// which JSON output leaves out. Equal scalars are equal by JSON identity (`1` is not `"1"`):
// both Pods come from the same input through JSON Patch, so a type change is a difference.
//
// Both Pods are first put in the form the API server stores (storedForm): what Go's types do
// not keep is dropped on both sides, so it is no difference: a null, an env var's empty
// `value`, a probe's zero delays (omitempty), a container's empty `resources` (always written
// as `{}`); quantities are compared as stored (`1000m` is `1`).
//
// A string holding JSON on both sides (`sidecar.istio.io/status`, ISTIO_META_POD_PORTS,
// PROXY_CONFIG) is compared inside: `.metadata.annotations["sidecar.istio.io/status"]
// (JSON).initContainers[1]`, in its stored form too (Go reads it back into the same types).
//
// A difference that changes nothing the cluster does is marked `equivalent`, with why: a
// string holding JSON (an annotation, ISTIO_META_POD_PORTS) that parses to the same value,
// spelled with other spaces or commas; the same volumes in another order (looked up by name);
// the same names in another order in a list of `sidecar.istio.io/status` (read as a set).
// The rest are the differences that matter.
//
// Bounded: at most `max` differences are kept (the counts go on), and paths stop descending
// past MAX_DEPTH levels (the Pods were held to the injector's depth limit on the way in).

import { canonicalResources } from "../injection/quantity.js";
import { isMap } from "../injection/own.js";

export interface Difference {
  readonly path: string;
  /** This injector's value; absent when its Pod has none there. */
  readonly ours?: unknown;
  /** istiod's value; absent when its Pod has none there. */
  readonly istiod?: unknown;
  /** Why this difference changes nothing (absent: it does). */
  readonly equivalent?: string;
}

export interface Differences {
  readonly items: readonly Difference[];
  /** All differences found, kept or not. */
  readonly total: number;
  /** Of those, the ones not `equivalent`. */
  readonly essential: number;
}

export const MAX_DIFFERENCES = 100;
const MAX_DEPTH = 128;

type Obj = Record<string, unknown>;

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function keyPath(path: string, key: string): string {
  return PLAIN_KEY.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function namePath(path: string, name: string): string {
  return /^[A-Za-z0-9._-]+$/.test(name) ? `${path}[name=${name}]` : `${path}[name=${JSON.stringify(name)}]`;
}

/** The names of a list of maps each with a distinct string `name`; undefined otherwise. */
function names(list: readonly unknown[]): string[] | undefined {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of list) {
    if (!isMap(item) || typeof item.name !== "string" || seen.has(item.name)) return undefined;
    seen.add(item.name);
    out.push(item.name);
  }
  return out;
}

function equalJson(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (depth > MAX_DEPTH) return JSON.stringify(a) === JSON.stringify(b);
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => equalJson(x, b[i], depth + 1));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && equalJson(a[k], b[k], depth + 1));
  }
  return false;
}

const CONTAINER_LISTS = new Set(["containers", "initContainers", "ephemeralContainers"]);
const PROBES = new Set(["readinessProbe", "livenessProbe", "startupProbe"]);
/** A probe's int32 fields Go leaves out when 0 (omitempty, not pointers). */
const PROBE_OMITTED_ZEROES = [
  "initialDelaySeconds",
  "timeoutSeconds",
  "periodSeconds",
  "successThreshold",
  "failureThreshold",
];

function without(x: Obj, key: string): Obj {
  const { [key]: _dropped, ...rest } = x;
  return rest;
}

/** An item of the list under `key`, as stored. */
function storedItem(key: string, x: Obj): Obj {
  if (CONTAINER_LISTS.has(key) && isMap(x.resources)) {
    const resources = canonicalResources(x.resources);
    return Object.keys(resources).length === 0 ? without(x, "resources") : { ...x, resources };
  }
  if (key === "env" && x.value === "") return without(x, "value");
  if (key === "volumeMounts" && x.readOnly === false) return without(x, "readOnly");
  return x;
}

/**
 * A copy of a Pod (or any object, e.g. a JSON annotation's value) as the API server stores it,
 * where that differs from its JSON: nulls dropped; a container's resources with their
 * quantities as stored (`1000m` is `1`), dropped when empty; an env var's empty `value`, a
 * volume mount's `readOnly: false`, a probe's zero counts and delays dropped (Go's omitempty).
 */
export function storedForm(v: unknown, key = "", depth = 0): unknown {
  if (depth > MAX_DEPTH) return v;
  if (Array.isArray(v)) {
    return v.map((item: unknown) => {
      const x = storedForm(item, "", depth + 1);
      return isMap(x) ? storedItem(key, x) : x;
    });
  }
  if (isMap(v)) {
    let out: Obj = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = storedForm(x, k, depth + 1);
    if (PROBES.has(key)) for (const z of PROBE_OMITTED_ZEROES) if (out[z] === 0) out = without(out, z);
    return out;
  }
  return v;
}

const STATUS_PATH = '.metadata.annotations["sidecar.istio.io/status"]';

/** Two lists of the same strings, each as often, in any order. */
function sameStrings(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length || !a.every((x) => typeof x === "string") || !b.every((x) => typeof x === "string"))
    return false;
  const sa = a.map(String).sort();
  const sb = b.map(String).sort();
  return sa.every((x, i) => x === sb[i]);
}

function parsedJson(v: unknown): { value: unknown } | undefined {
  if (typeof v !== "string" || !/^\s*[[{]/.test(v)) return undefined;
  try {
    return { value: storedForm(JSON.parse(v)) };
  } catch {
    return undefined;
  }
}

/** Why `a` and `b`, not equal, still mean the same, if they do. */
function sameJsonText(a: unknown, b: unknown): string | undefined {
  const pa = parsedJson(a);
  const pb = parsedJson(b);
  return pa && pb && equalJson(pa.value, pb.value) ? "the same JSON value once read, written differently" : undefined;
}

/** The differences between this injector's Pod and istiod's (both in storedForm), at most `max` kept. */
export function differences(ours: unknown, istiod: unknown, max = MAX_DIFFERENCES): Differences {
  const items: Difference[] = [];
  let total = 0;
  let essential = 0;
  const add = (d: Difference): void => {
    total++;
    if (d.equivalent === undefined) essential++;
    if (items.length < max) items.push(d);
  };
  const walk = (a: unknown, b: unknown, path: string, depth: number): void => {
    if (equalJson(a, b)) return;
    if (depth < MAX_DEPTH && isMap(a) && isMap(b)) {
      for (const k of Object.keys(a)) walk(a[k], Object.hasOwn(b, k) ? b[k] : undefined, keyPath(path, k), depth + 1);
      for (const k of Object.keys(b)) if (!Object.hasOwn(a, k)) walk(undefined, b[k], keyPath(path, k), depth + 1);
      return;
    }
    if (depth < MAX_DEPTH && Array.isArray(a) && Array.isArray(b)) {
      const na = names(a);
      const nb = names(b);
      if (na && nb) {
        const byName = new Map(b.map((x, i) => [nb[i] as string, x]));
        const inA = new Set(na);
        a.forEach((x, i) => walk(x, byName.get(na[i] as string), namePath(path, na[i] as string), depth + 1));
        b.forEach((x, i) => {
          if (!inA.has(nb[i] as string)) walk(undefined, x, namePath(path, nb[i] as string), depth + 1);
        });
        const common = new Set(nb.filter((n) => inA.has(n)));
        const orderA = na.filter((n) => common.has(n));
        const orderB = nb.filter((n) => common.has(n));
        if (orderA.some((n, i) => n !== orderB[i]))
          add({
            path: `${path} (order)`,
            ours: orderA,
            istiod: orderB,
            ...(path.endsWith(".spec.volumes")
              ? { equivalent: "volumes are found by name: their order changes nothing" }
              : {}),
          });
        return;
      }
      if (path.startsWith(`${STATUS_PATH} (JSON).`) && sameStrings(a, b)) {
        add({
          path: `${path} (order)`,
          ours: a,
          istiod: b,
          equivalent: "Istio reads the lists of sidecar.istio.io/status as sets: their order changes nothing",
        });
        return;
      }
      const n = Math.max(a.length, b.length);
      for (let i = 0; i < n; i++) walk(a[i], b[i], `${path}[${i}]`, depth + 1);
      return;
    }
    // Two JSON texts (an annotation, an env value) that differ: where, inside them.
    const ja = depth < MAX_DEPTH ? parsedJson(a) : undefined;
    const jb = ja ? parsedJson(b) : undefined;
    if (ja && jb && !equalJson(ja.value, jb.value)) {
      walk(ja.value, jb.value, `${path} (JSON)`, depth + 1);
      return;
    }
    const equivalent = sameJsonText(a, b);
    add({
      path: path || ".",
      ...(a !== undefined ? { ours: a } : {}),
      ...(b !== undefined ? { istiod: b } : {}),
      ...(equivalent !== undefined ? { equivalent } : {}),
    });
  };
  walk(ours, istiod, "", 0);
  return { items, total, essential };
}
