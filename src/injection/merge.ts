// Kubernetes strategic merge, for the shapes the injector merges: a container over a
// container, a list of named things over another, as Istio merges its templates over the Pod
// (k8s.io/apimachinery strategicpatch, with corev1.Pod's schema). Lists the API merges by key
// (env by name, ports by containerPort, volumeMounts by mountPath, ...) are merged item by
// item and ordered as that code orders them; other lists (a Pod's securityContext.sysctls
// among them: atomic in the API) are replaced; maps merge recursively; scalars from the patch
// win. Nothing is mutated. Keys are data (see own.ts): a user's `__proto__` or `constructor`
// field merges as any other.
//
// The order of a merged list (mergeSlice, normalizeElementOrder, mergeSortedSlice):
// 1. each item of the patch is merged over the first item of its key (of the base, or one the
//    patch added before it), or else added at the end;
// 2. the items whose key the patch names are sorted by where their key first is in the patch,
//    the others by where their key first is in the base (a stable sort: so the items of one
//    key end up together, in the order they had);
// 3. the two are interleaved, each keeping that order: at each step the patch's item goes
//    first, unless it is in the base too and the base's item came before it there.
// So an item only the patch has goes before the base's remaining items, and the base's items
// stay around the patch's items they came before or after in the base. The patches here carry
// no `$patch` or `$setElementOrder` directives (a template's YAML, a container as Go writes
// it), and no list of scalars with a merge strategy (a Pod has one, metadata.finalizers, which
// no template writes).
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
 * `patch`'s items merged into `base` by `key`, in the order the API server's strategic merge
 * gives (see the header). An empty patch is no patch: the base as it is (the templates and the
 * containers Go writes leave out an empty list). Linear but for the sorts of step 2, which only
 * reorder a list whose keys repeat or that the patch reorders; each item's key is read once.
 * The items of `base` the patch does not touch are the base's objects.
 *
 * `ranked`: where the patch repeats a key, its n-th item of that key is merged over the list's
 * n-th item of that key (the second `53` over the second `53`, one past the list's last is
 * added), not over the first; the order is found the same way (mergeOverride says why).
 */
export function mergeListStrategic<T>(base: readonly T[], patch: readonly T[], key: string, ranked = false): T[] {
  if (patch.length === 0) return [...base];
  // An item without its key has the key's zero value, as Go writes it (the API server refuses
  // such an item anyway).
  const zero = key === "containerPort" ? 0 : "";
  // The keys are the API's field names (name, containerPort, ...), none an Object.prototype member.
  const keyOf = (x: unknown): unknown => (isMap(x) ? (x[key] ?? zero) : zero);
  const patchIds = patch.map(keyOf);
  /** Where each key is first in the patch. */
  const patchAt = firstIndex(patchIds);
  const ids = base.map(keyOf);
  /** Where each key is first in the base. */
  const baseAt = firstIndex(ids);
  const shared = ids.some((id) => patchAt.has(id));

  // The common case, the template's new items over a Pod's own (no key in common, none repeated):
  // the patch's items, then the base's. A list over itself, none repeated: the list.
  const unique = baseAt.size === base.length && patchAt.size === patch.length;
  if (unique && !shared) return [...patch, ...base];
  if (unique && base === patch) return [...base];
  if (unique) return mergeUnique(base, ids, patch, patchIds, baseAt, patchAt);

  // 1. Merged over the first item of its key (ranked: of its rank), else added.
  const merged: Entry<T>[] = base.map((item, at) => ({ item, id: ids[at], at, inBase: baseAt.get(ids[at]) }));
  /** Where the patch added an item of a key the base does not have. */
  let added: Map<unknown, number> | undefined;
  const places = ranked && patchAt.size < patch.length ? placesOf(ids) : undefined;
  const rank = places && new Map<unknown, number>();
  patch.forEach((item, j) => {
    const id = patchIds[j];
    let at = baseAt.get(id) ?? added?.get(id);
    if (places && rank) {
      const r = rank.get(id) ?? 0;
      rank.set(id, r + 1);
      at = places.get(id)?.[r];
    }
    const entry = at === undefined ? undefined : merged[at];
    if (entry) {
      if (entry.item !== item) entry.item = mergeValue(entry.item, item);
      return;
    }
    if (!baseAt.has(id) && !added?.has(id)) (added ??= new Map()).set(id, merged.length);
    const list = places?.get(id);
    if (list) list.push(merged.length);
    else places?.set(id, [merged.length]);
    merged.push({ item, id, at: merged.length, inBase: undefined });
  });
  // 2. The patch's keys in the patch's order, the others in the base's; items of one key together.
  const fromPatch: Entry<T>[] = [];
  const fromBase: Entry<T>[] = [];
  for (const e of merged) (patchAt.has(e.id) ? fromPatch : fromBase).push(e);
  sortByFirst(fromPatch, patchAt);
  sortByFirst(fromBase, baseAt);
  // 3. Interleaved.
  return interleave(fromBase, fromPatch, (e) => e.inBase).map((e) => e.item);
}

/**
 * Steps 1 to 3 where no key repeats, in one pass: each patch item in the patch's order (merged
 * over the base's item of its key), preceded by the base's items the patch does not name that
 * come before that item's key in the base.
 */
function mergeUnique<T>(
  base: readonly T[],
  ids: readonly unknown[],
  patch: readonly T[],
  patchIds: readonly unknown[],
  baseAt: FirstIndex,
  patchAt: FirstIndex,
): T[] {
  const out: T[] = [];
  let i = 0;
  const emitBaseBefore = (limit: number): void => {
    for (; i < limit; i++) {
      const item = base[i];
      if (item !== undefined && !patchAt.has(ids[i])) out.push(item);
    }
  };
  patch.forEach((item, j) => {
    const at = baseAt.get(patchIds[j]);
    const before = at === undefined ? undefined : base[at];
    if (at !== undefined && at > i) emitBaseBefore(at);
    // An item over itself (the Pod's own, merged over the list that holds it) is itself.
    out.push(before === undefined || before === item ? item : mergeValue(before, item));
  });
  emitBaseBefore(base.length);
  return out;
}

/** Where each key is first in a list, and how many keys it holds. */
interface FirstIndex {
  get(id: unknown): number | undefined;
  has(id: unknown): boolean;
  readonly size: number;
}

/** Up to this many items, a list's keys are looked up in it rather than indexed in a Map. */
const SCAN_MAX = 32;

/**
 * Where each key is first in `ids`. A short list (most: a container's env, a Pod's volumes) is
 * searched where it stands, as apimachinery's index() does; a long one indexed once.
 */
function firstIndex(ids: readonly unknown[]): FirstIndex {
  if (ids.length > SCAN_MAX) {
    const at = new Map<unknown, number>();
    ids.forEach((id, i) => {
      if (!at.has(id)) at.set(id, i);
    });
    return at;
  }
  let size = 0;
  ids.forEach((id, i) => {
    if (ids.indexOf(id) === i) size++;
  });
  return {
    get: (id) => {
      const i = ids.indexOf(id);
      return i < 0 ? undefined : i;
    },
    has: (id) => ids.includes(id),
    size,
  };
}

/** Where each key is in a list, every time. */
function placesOf(ids: readonly unknown[]): Map<unknown, number[]> {
  const places = new Map<unknown, number[]>();
  ids.forEach((id, i) => {
    const list = places.get(id);
    if (list) list.push(i);
    else places.set(id, [i]);
  });
  return places;
}

/**
 * An item of a merged list: its key, its place in the list before the sort, and where its key is
 * first in the base (undefined for a key only the patch has).
 */
interface Entry<T> {
  item: T;
  readonly id: unknown;
  readonly at: number;
  readonly inBase: number | undefined;
}

/**
 * Sorted, stably, by where each entry's key is first in a list (`first`); left as it is when
 * already in that order (the common case: no key repeats, the patch keeps the base's order).
 */
function sortByFirst<T>(list: Entry<T>[], first: FirstIndex): void {
  const place = (e: Entry<T>): number => first.get(e.id) ?? 0;
  for (let n = 1; n < list.length; n++) {
    const a = list[n - 1];
    const b = list[n];
    if (a && b && place(b) < place(a)) {
      list.sort((x, y) => place(x) - place(y) || x.at - y.at);
      return;
    }
  }
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
  const leftFirst = (l: T, r: T): boolean => {
    const ri = baseIndex(r);
    const li = ri === undefined ? undefined : baseIndex(l);
    return li !== undefined && ri !== undefined && li < ri;
  };
  while (i < left.length || j < right.length) {
    const l = left[i];
    const r = right[j];
    if (r !== undefined && (l === undefined || !leftFirst(l, r))) {
      out.push(r);
      j++;
    } else if (l !== undefined) {
      out.push(l);
      i++;
    } else break;
  }
  return out;
}

/** `patch` merged over `base`: its fields win, maps merge, keyed lists merge as above. */
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
    setOwn(
      out,
      k,
      key !== undefined && Array.isArray(b) && Array.isArray(v) ? mergeListStrategic(b, v, key) : mergeValue(b, v),
    );
  }
  return out;
}

/** `patch` merged over `base`: of a type, as a strategic merge of two items of one list is. */
function mergeValue<T>(base: T, patch: T): T {
  if (isMap(base) && isMap(patch)) return mergeObject(base, patch);
  return patch;
}

/**
 * A container both the templates and the Pod declare, as Istio leaves it: each template merged
 * over the Pod's container in turn (a template is a strategic merge patch over the Pod), then the
 * Pod's container merged over that again (reapplyOverwrittenContainers: the Pod's container is
 * an override). So the Pod's fields win, and its keyed lists are in the order those merges give:
 * `[X, CA_ADDR]` under the template's `[PILOT_CERT_PROVIDER, CA_ADDR, …]` gives
 * `[PILOT_CERT_PROVIDER, X, CA_ADDR, …]`, X still before CA_ADDR, which it refers to. A list the
 * templates do not write is the Pod's merged over itself (the same list, unless a key repeats:
 * the items of that key then end up together).
 *
 * One difference, deliberate: where the Pod's list repeats a key, each of its items is merged
 * over the item of the same rank, where Istio merges them all over the first. Ports 53/TCP
 * `dns-tcp` and 53/UDP `dns` (keyed by containerPort) would otherwise become two 53/UDP `dns`,
 * a Pod the API server refuses (a port name twice), and the TCP port would be lost.
 *
 * `template` is the templates' container merged (one after another), `versions` that container
 * as each template writes it, in their order (one template: `template` itself). The fields are
 * in `template`'s order, the Pod's others after them, as `mergeObject(template, pod)` writes them.
 */
export function mergeOverride<T extends Obj>(
  template: T,
  pod: Readonly<Obj>,
  versions: readonly Readonly<Obj>[] = [template],
): T {
  const out = copyOwn(template);
  for (const k of Object.keys(pod)) {
    const v = pod[k];
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = MERGE_KEYS.get(k);
    if (key === undefined || !Array.isArray(v)) {
      setOwn(out, k, mergeValue(own(out, k), v));
      continue;
    }
    let list: unknown[] = v;
    for (const version of versions) {
      const t = own(version, k);
      if (Array.isArray(t)) list = mergeListStrategic(list, t, key);
    }
    setOwn(out, k, mergeListStrategic(list, v, key, true));
  }
  return out;
}
