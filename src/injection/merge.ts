// Kubernetes strategic merge, for the shapes the injector merges: a container over a
// container, a list of named things over another. Lists the API merges by key (env by name,
// ports by containerPort, volumeMounts by mountPath, ...) are merged item by item; other lists
// (a Pod's securityContext.sysctls among them: atomic in the API) are replaced; maps merge
// recursively; scalars from the patch win. Nothing is mutated. Keys are data (see own.ts): a
// user's `__proto__` or `constructor` field merges as any other.
import { copyOwn, isMap, own, setOwn } from "./own.js";

const MERGE_KEYS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    env: "name",
    ports: "containerPort",
    volumeMounts: "mountPath",
    volumeDevices: "devicePath",
    containers: "name",
    initContainers: "name",
    volumes: "name",
    imagePullSecrets: "name",
  }),
);

type Obj = Record<string, unknown>;

/**
 * `patch`'s items merged into `base` by `key`: an item with the key of an earlier one is merged
 * over the first such, others are appended. Linear, and light on `base` (a Pod's list, which
 * may hold a hundred thousand items, where the patch is usually the template's few): only the
 * keys the patch carries are looked for in it, each item's key read once.
 */
export function mergeList<T>(base: readonly T[], patch: readonly T[], key: string): T[] {
  const out: T[] = [...base];
  const keyOf = (x: unknown): unknown => (isMap(x) ? x[key] : undefined);
  const ids = patch.map(keyOf);
  const wanted = new Set(ids);
  wanted.delete(undefined);
  const first = new Map<unknown, number>();
  for (let i = 0; i < out.length && first.size < wanted.size; i++) {
    const id = keyOf(out[i]);
    if (id !== undefined && wanted.has(id) && !first.has(id)) first.set(id, i);
  }
  patch.forEach((item, j) => {
    const id = ids[j];
    const i = id === undefined ? undefined : first.get(id);
    const at = i === undefined ? undefined : out[i];
    if (i !== undefined && at !== undefined) out[i] = mergeValue(at, item);
    else {
      if (id !== undefined) first.set(id, out.length);
      out.push(item);
    }
  });
  return out;
}

/**
 * `patch`'s items merged into `base` by `key` and ordered as the API server's strategic merge
 * orders a list it merges (apimachinery's normalizeElementOrder), which is how Istio's template
 * overlay leaves a Pod's volumes and pull secrets: the patch's items in the patch's order, with
 * the base's other items placed among them by their order in the base: before a patch item
 * only when both are in the base and it came first there. So the template's new volumes come
 * before the Pod's own. Linear, as mergeList.
 */
export function mergeListStrategic<T>(base: readonly T[], patch: readonly T[], key: string): T[] {
  const keyOf = (x: unknown): unknown => (isMap(x) ? x[key] : undefined);
  if (disjoint(base, patch, keyOf)) return [...patch, ...base];
  const merged = mergeList(base, patch, key);
  const patchAt = new Map<unknown, number>();
  patch.forEach((item, j) => {
    const id = keyOf(item);
    if (id !== undefined && !patchAt.has(id)) patchAt.set(id, j);
  });
  const baseAt = new Map<unknown, number>();
  base.forEach((item, i) => {
    const id = keyOf(item);
    if (id !== undefined && !baseAt.has(id)) baseAt.set(id, i);
  });
  const fromPatch: { item: T; at: number }[] = [];
  const baseOnly: T[] = [];
  for (const item of merged) {
    const at = patchAt.get(keyOf(item));
    if (at === undefined) baseOnly.push(item);
    else fromPatch.push({ item, at });
  }
  // Stable: items of one key keep their order.
  fromPatch.sort((x, y) => x.at - y.at);
  return interleave(
    baseOnly,
    fromPatch.map((x) => x.item),
    (item) => baseAt.get(keyOf(item)),
  );
}

/**
 * Whether every item of `patch` has a key, no two the same, and none is a key of `base`'s: the
 * common case (the template's volumes over a Pod's own), where mergeListStrategic is the patch's
 * items, then the base's (each a new item of the patch, placed before the base's items). Reads
 * `base` once, without a map of its keys.
 */
function disjoint<T>(base: readonly T[], patch: readonly T[], keyOf: (x: unknown) => unknown): boolean {
  const keys = new Set<unknown>();
  for (const item of patch) {
    const id = keyOf(item);
    if (id === undefined || keys.has(id)) return false;
    keys.add(id);
  }
  for (const item of base) if (keys.has(keyOf(item))) return false;
  return true;
}

/**
 * apimachinery's mergeSortedSlice: `left` (the base's items the patch does not name) and
 * `right` (the patch's items, in the patch's order) interleaved, each keeping its order. At each
 * step the patch's item goes first, unless both items are in the base (`baseIndex` says where)
 * and the left one came first there.
 */
export function interleave<T>(
  left: readonly T[],
  right: readonly T[],
  baseIndex: (item: T) => number | undefined,
): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const l = left[i];
    const r = right[j];
    const li = l === undefined ? undefined : baseIndex(l);
    const ri = r === undefined ? undefined : baseIndex(r);
    if (l !== undefined && (r === undefined || (li !== undefined && ri !== undefined && li < ri))) {
      out.push(l);
      i++;
    } else if (r !== undefined) {
      out.push(r);
      j++;
    } else break;
  }
  return out;
}

export function mergeObject<T extends Obj>(base: T, patch: Readonly<Obj>): T {
  const out = copyOwn(base);
  const from = patch;
  // Keys, then values: Object.entries is several times slower on a map of many keys.
  for (const k of Object.keys(from)) {
    const v = from[k];
    if (v === null) {
      delete out[k];
      continue;
    }
    const b = own(out, k);
    const key = MERGE_KEYS.get(k);
    setOwn(out, k, key !== undefined && Array.isArray(b) && Array.isArray(v) ? mergeList(b, v, key) : mergeValue(b, v));
  }
  return out;
}

/** `patch` merged over `base`: of a type, as a strategic merge of two items of one list is. */
function mergeValue<T>(base: T, patch: T): T {
  if (isMap(base) && isMap(patch)) return mergeObject(base, patch);
  return patch;
}
