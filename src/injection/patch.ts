// RFC 6902 operations from the fields the injector changed, built by hand rather than by
// diffing whole Pods: maps key by key (escaped per RFC 6901), lists item by item, changed
// items field by field. A map or list absent from the input is added whole. Nothing else is
// touched (managedFields in particular).
//
// The patch is the smallest of its kind that gives the Pod the engine computed, as the API
// server applies it (to the object as sent, operation after operation; an `add` at an index
// shifts what follows; no `test` operations):
// - A list's items are paired with the input's: an item the engine left alone is the very
//   object of the input (it never copies one), else an item of the same `name` is the one it
//   changed. Input items left unpaired are removed (from the highest index down), new items
//   added at their positions (in ascending order), and a changed item is patched where it
//   stands: `/spec/containers/3/livenessProbe/tcpSocket` removed and `…/httpGet` added, not
//   the whole list. Of pairs out of order (a moved item), only the longest run in order is
//   kept; the others are removed and added again.
// - An object's fields are removed, replaced or added by key; a changed object or list inside
//   it the same way, down to the values that differ.
// - The result is the engine's byte for byte, key order included: `add` appends a key, so
//   where the engine's object orders its kept keys otherwise (a rewritten probe puts its
//   httpGet last), that object is replaced whole.
// - Wherever the operations for an object or list would be larger (as JSON) than replacing it
//   whole, it is replaced whole. Sizes are counted without serialising: what both ways carry
//   (an added item, a replaced field) is not counted, and the unchanged parts only as far as
//   needed to settle which way is smaller.
//
// Work is linear in what changed, not in the size of the maps: a Pod may carry hundreds of
// thousands of labels (a 6 MiB review), each pass over such a map costs a few hundred
// milliseconds, and the injector sets a handful of them. So the template's labels are laid
// over the Pod's (`Overlaid`) rather than copied into a new map, and `overlayPatch` writes
// the operations from the handful alone. Lists are compared by identity first, and the same
// items at both ends are not paired at all, so a long list of untouched items costs one pass.
import type { Pod, PodSpec } from "../kube/types.js";
import type { PatchOperation } from "./types.js";
import { isMap } from "./own.js";
import { ARRAY_INDEX, type MapEdit } from "./map-edit.js";
import { plainJsonString } from "./json-text.js";

export function escapeKey(key: string): string {
  if (!key.includes("~") && !key.includes("/")) return key;
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/**
 * A map's operations: key by key, removed, replaced, added. A key the engine moved (deleted and
 * set again, so now after keys it did not have) is removed and added again, so that the
 * patched map lists its keys in the engine's order.
 */
export function mapPatch(
  path: string,
  before: Readonly<Record<string, string>> | undefined,
  after: Readonly<Record<string, string>>,
  ops: PatchOperation[],
): void {
  if (before === after) return;
  if (before === undefined) {
    if (Object.keys(after).length > 0) ops.push({ op: "add", path, value: after });
    return;
  }
  const keysBefore = Object.keys(before);
  const keysAfter = Object.keys(after);
  // The kept keys in `before`'s order, then the added ones, is what the operations give: a
  // kept key out of that order is moved.
  let moved: Set<string> | undefined;
  let next = 0;
  let added = false;
  for (const key of keysAfter) {
    if (!Object.hasOwn(before, key)) {
      added = true;
      continue;
    }
    if (moved?.has(key)) continue;
    if (added) {
      (moved ??= new Set()).add(key);
      continue;
    }
    for (let skipped = keysBefore[next]; skipped !== undefined && skipped !== key; skipped = keysBefore[++next])
      if (Object.hasOwn(after, skipped)) (moved ??= new Set()).add(skipped);
    next++;
  }
  for (const key of keysBefore) {
    if (!Object.hasOwn(after, key) || moved?.has(key)) ops.push({ op: "remove", path: `${path}/${escapeKey(key)}` });
  }
  for (const key of keysAfter) {
    const value = after[key];
    if (!Object.hasOwn(before, key) || moved?.has(key))
      ops.push({ op: "add", path: `${path}/${escapeKey(key)}`, value });
    else if (before[key] !== value) ops.push({ op: "replace", path: `${path}/${escapeKey(key)}`, value });
  }
}

/** A map with a few entries set over it: `{ ...base, ...overlay }`, not yet copied. */
export interface Overlaid {
  readonly base: Readonly<Record<string, string>>;
  readonly overlay: Readonly<Record<string, string>>;
}

/** The map an Overlaid stands for, as one new object. */
export function overlaid(o: Overlaid): Record<string, string> {
  return { ...o.base, ...o.overlay };
}

/**
 * The operations of `mapPatch(path, before, overlaid(after), ops)`, in the same order, reading
 * only the overlay's keys when `before` is the base (then no key is removed, the overlay's keys
 * present in `before` are replaced in `before`'s order, and the others added in the overlay's).
 * `before`'s keys are listed only to order two or more replacements.
 */
export function overlayPatch(
  path: string,
  before: Readonly<Record<string, string>> | undefined,
  after: Overlaid,
  ops: PatchOperation[],
): void {
  const entries = Object.entries(after.overlay);
  if (before === undefined || before !== after.base || entries.some(([k]) => ARRAY_INDEX.test(k))) {
    mapPatch(path, before, overlaid(after), ops);
    return;
  }
  const set: [string, string][] = [];
  const added: [string, string][] = [];
  for (const entry of entries) (Object.hasOwn(before, entry[0]) ? set : added).push(entry);
  setAndAddPatch(path, before, set, added, ops);
}

/**
 * mapPatch's operations for keys of `before` set to values (`set`), replaced where the value
 * changed, in `before`'s order (its keys listed only to order two or more), and keys it does
 * not have added, in their order: what overlayPatch and editPatch write.
 */
function setAndAddPatch(
  path: string,
  before: Readonly<Record<string, string>>,
  set: Iterable<[string, string]>,
  added: Iterable<[string, string]>,
  ops: PatchOperation[],
): void {
  const replaced = new Map<string, string>();
  for (const [key, value] of set) if (before[key] !== value) replaced.set(key, value);
  const inOrder = replaced.size > 1 ? Object.keys(before).filter((k) => replaced.has(k)) : [...replaced.keys()];
  for (const key of inOrder) ops.push({ op: "replace", path: `${path}/${escapeKey(key)}`, value: replaced.get(key) });
  for (const [key, value] of added) ops.push({ op: "add", path: `${path}/${escapeKey(key)}`, value });
}

/**
 * The operations of `mapPatch(path, before, edit.toObject(), ops)`, in the same order, reading
 * only the keys the edit set when `before` is its base and it removed none (then the keys set
 * in place are replaced in `before`'s order, when their value changed, and the others added in
 * the order set; `before`'s keys are listed only to order two or more replacements). Otherwise
 * the whole maps are compared.
 */
export function editPatch(
  path: string,
  before: Readonly<Record<string, string>> | undefined,
  edit: MapEdit,
  ops: PatchOperation[],
): void {
  if (before === undefined || before !== edit.base || edit.removedCount > 0 || edit.indexKeys()) {
    mapPatch(path, before, edit.toObject(), ops);
    return;
  }
  setAndAddPatch(path, before, edit.inPlace(), edit.appended(), ops);
}

type Obj = Record<string, unknown>;

/** Whether `v` is a JSON list, its items not yet known. */
function isList(v: unknown): v is readonly unknown[] {
  return Array.isArray(v);
}

/** Characters of `s` written as a JSON string. */
function stringSize(s: string): number {
  // Short strings (keys, names, paths) by a loop: faster than a regular expression.
  return plainJsonString(s) ? s.length + 2 : JSON.stringify(s).length;
}

/**
 * Characters of the path `${path}/${segment}` as a JSON string, from the path's (`pathSize`):
 * JSON escapes each character on its own (a surrogate by whether it is paired, and the `/`
 * between keeps each side's pairs), so only the segment is read.
 */
function childPathSize(pathSize: number, segment: string): number {
  return pathSize + stringSize(segment) - 1;
}

/** Characters of the path `${path}/${index}` as a JSON string. */
function indexPathSize(pathSize: number, index: number): number {
  return pathSize + numberSize(index) + 1;
}

/** Characters of a number as JSON: an integer's digits counted, not written (ports, seconds, thresholds). */
function numberSize(v: number): number {
  if (!Number.isSafeInteger(v)) return Number.isFinite(v) ? String(v).length : 4;
  let n = v < 0 ? 2 : 1;
  for (let rest = Math.abs(v); rest >= 10; rest = Math.floor(rest / 10)) n++;
  return n;
}

/** Characters of `v` as JSON when fewer than `budget`; else a count of at least `budget`, read no further. */
function jsonSize(v: unknown, budget: number): number {
  switch (typeof v) {
    case "string":
      return stringSize(v);
    case "number":
      return numberSize(v);
    case "boolean":
      return v ? 4 : 5;
  }
  let n = 1;
  if (isList(v)) {
    for (const item of v) {
      n += jsonSize(item, budget - n) + 1;
      if (n >= budget) return n;
    }
    return v.length === 0 ? 2 : n;
  }
  if (!isMap(v)) return 4; // null; undefined in a list is written null
  let any = false;
  for (const k of Object.keys(v)) {
    const item = v[k];
    if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
    n += stringSize(k) + 1 + jsonSize(item, budget - n) + 1;
    any = true;
    if (n >= budget) return n;
  }
  return any ? n : 2;
}

/** Characters an operation takes in the patch besides its path and value (its separator included). */
function overhead(op: PatchOperation["op"]): number {
  return op === "remove"
    ? JSON.stringify({ op, path: "" }).length - 2 + 1
    : JSON.stringify({ op, path: "", value: 0 }).length - 3 + 1;
}
const REMOVE = overhead("remove");
const ADD = overhead("add");
const REPLACE = overhead("replace");

/** Items `from` to `to` (excluded) of a list, unchanged; counted from the last. */
class Run {
  constructor(
    readonly items: readonly unknown[],
    readonly from: number,
    public to: number,
  ) {}
}

interface Diff {
  readonly ops: PatchOperation[];
  /**
   * What the whole replacement carries and the operations do not: the unchanged values (or
   * runs of list items) inside what is being patched, its keys, its path. Sized only when an
   * object or list must settle which way is smaller, the last first, and only as far as needed
   * (most keys and paths are never sized: a long unchanged value settles it first).
   */
  readonly pending: (unknown | Run)[];
}

/** `extra` less the sizes of the pending values from index `from` on, counted until it is ≤ 0. */
function settle(d: Diff, from: number, extra: number): number {
  while (extra > 0 && d.pending.length > from) {
    const top = d.pending[d.pending.length - 1];
    if (top instanceof Run) {
      if (top.to <= top.from) d.pending.pop();
      else extra -= jsonSize(top.items[--top.to], extra);
    } else {
      d.pending.pop();
      extra -= jsonSize(top, extra);
    }
  }
  return extra;
}

/**
 * Appends the operations that turn `before` into `after` at `path`, and returns how many
 * characters they take beyond replacing `after` whole: at most 0 (0 when it is replaced whole).
 */
function diff(path: string, pathSize: number, before: unknown, after: unknown, d: Diff): number {
  const opsAt = d.ops.length;
  const pendingAt = d.pending.length;
  let extra: number | undefined;
  if (isList(before) && isList(after)) extra = diffList(path, pathSize, before, after, d);
  else if (isMap(before) && isMap(after)) extra = diffObject(path, pathSize, before, after, d);
  if (extra !== undefined) {
    extra = settle(d, pendingAt, extra);
    if (extra <= 0) return extra;
  }
  d.ops.length = opsAt;
  d.pending.length = pendingAt;
  d.ops.push({ op: "replace", path, value: after });
  return 0;
}

/** Keys found by a scan below this many, by a Map from it on. */
const SCAN_KEYS = 16;

/**
 * For each of `keys`, its index in `among` (-1 when absent). Object keys are distinct, so each
 * is found once; a few are scanned for (keys of the same text are mostly the same string), more
 * looked up in a Map.
 */
function keyIndexes(among: readonly string[], keys: readonly string[]): number[] {
  // Plain arrays: a typed array costs more to make than these few items to fill.
  if (among.length < SCAN_KEYS) return keys.map((k) => among.indexOf(k));
  const index = new Map<string, number>();
  among.forEach((k, i) => index.set(k, i));
  return keys.map((k) => index.get(k) ?? -1);
}

/**
 * Fields removed, changed and added, with `extra` before the unchanged fields are counted; or
 * undefined when `after` orders its kept keys otherwise than `before` (operations could not
 * give its key order).
 */
function diffObject(path: string, pathSize: number, before: Obj, after: Obj, d: Diff): number | undefined {
  const keysBefore = Object.keys(before);
  const keysAfter = Object.keys(after);
  // The values by index, in the keys' order: one call each, not a keyed lookup per key.
  const valuesBefore = Object.values(before);
  const valuesAfter = Object.values(after);
  if (keysBefore.length <= keysAfter.length && keysBefore.every((k, i) => keysAfter[i] === k)) {
    const extra = diffSameKeys(path, pathSize, keysBefore, valuesBefore, keysAfter, valuesAfter, d);
    if (extra !== undefined) return extra;
  }
  // Each key of `after` with a value, by its index among `before`'s keys with values (-1: added).
  const from = keyIndexes(keysBefore, keysAfter);
  const kept: boolean[] = [];
  // The kept keys in `before`'s order, then the added ones: what the operations give.
  let last = -1;
  let added = false;
  for (let j = 0; j < keysAfter.length; j++) {
    if (valuesAfter[j] === undefined) {
      from[j] = -1;
      continue;
    }
    const i = from[j] ?? -1;
    if (i < 0 || valuesBefore[i] === undefined) {
      from[j] = -1;
      added = true;
      continue;
    }
    if (added || i < last) return undefined;
    last = i;
    kept[i] = true;
  }
  // Against the replacement: its operation, braces, keys, colons and commas.
  d.pending.push(path);
  let extra = -REPLACE - 1;
  let count = 0;
  for (let i = 0; i < keysBefore.length; i++) {
    const k = keysBefore[i];
    if (k === undefined || kept[i] || valuesBefore[i] === undefined) continue;
    const key = escapeKey(k);
    d.ops.push({ op: "remove", path: `${path}/${key}` });
    extra += REMOVE + childPathSize(pathSize, key);
  }
  for (let j = 0; j < keysAfter.length; j++) {
    const k = keysAfter[j];
    const value = valuesAfter[j];
    if (k === undefined || value === undefined) continue;
    count++;
    d.pending.push(k);
    extra -= 2;
    const i = from[j] ?? -1;
    const old = i >= 0 ? valuesBefore[i] : undefined;
    if (old === value) {
      d.pending.push(value);
      continue;
    }
    const key = escapeKey(k);
    const at = `${path}/${key}`;
    const atSize = childPathSize(pathSize, key);
    if (old === undefined) {
      d.ops.push({ op: "add", path: at, value });
      extra += ADD + atSize;
    } else {
      extra += REPLACE + atSize + diff(at, atSize, old, value, d);
    }
  }
  return count === 0 ? extra - 1 : extra;
}

/**
 * diffObject where `after` has `before`'s keys in the same order, and maybe more after them
 * (the engine's copies, `{ ...item, field }`): each value read once. Undefined when a value is
 * undefined (then the general reading), its operations taken back.
 */
function diffSameKeys(
  path: string,
  pathSize: number,
  keysBefore: readonly string[],
  valuesBefore: readonly unknown[],
  keysAfter: readonly string[],
  valuesAfter: readonly unknown[],
  d: Diff,
): number | undefined {
  const opsAt = d.ops.length;
  const pendingAt = d.pending.length;
  d.pending.push(path);
  let extra = -REPLACE - 1;
  let count = 0;
  for (let i = 0; i < keysAfter.length; i++) {
    const k = keysAfter[i];
    const value = valuesAfter[i];
    const kept = i < keysBefore.length;
    const old = kept ? valuesBefore[i] : undefined;
    if (k === undefined || value === undefined || (kept && old === undefined)) {
      d.ops.length = opsAt;
      d.pending.length = pendingAt;
      return undefined;
    }
    count++;
    d.pending.push(k);
    extra -= 2;
    if (old === value) {
      d.pending.push(value);
      continue;
    }
    const key = escapeKey(k);
    const at = `${path}/${key}`;
    const atSize = childPathSize(pathSize, key);
    if (!kept) {
      d.ops.push({ op: "add", path: at, value });
      extra += ADD + atSize;
    } else {
      extra += REPLACE + atSize + diff(at, atSize, old, value, d);
    }
  }
  return count === 0 ? extra - 1 : extra;
}

/** An item's `name`, the key that pairs a changed item with the input's. */
function nameOf(item: unknown): string | undefined {
  if (!isMap(item) || !Object.hasOwn(item, "name")) return undefined;
  const name = item.name;
  return typeof name === "string" ? name : undefined;
}

/**
 * Pairs `after`'s items with `before`'s: `src[j]` is the index in `before` of the item paired
 * with `after[j]` (-1 for a new item), `same[j]` whether it is that very item. By identity,
 * then by name; then only the longest run of pairs in order is kept.
 */
function pair(before: readonly unknown[], after: readonly unknown[]): { src: Int32Array; same: Uint8Array } {
  const m = before.length;
  const n = after.length;
  const src = new Int32Array(n).fill(-1);
  const same = new Uint8Array(n);
  const paired = new Uint8Array(m);
  // By identity: each item of `before` once, the first occurrence first.
  const first = new Map<unknown, number>();
  const nextSame = new Int32Array(m);
  for (let i = m - 1; i >= 0; i--) {
    const item = before[i];
    nextSame[i] = first.get(item) ?? -1;
    first.set(item, i);
  }
  let unpaired = 0;
  for (let j = 0; j < n; j++) {
    const item = after[j];
    const i = first.get(item);
    if (i === undefined) {
      unpaired++;
      continue;
    }
    const following = nextSame[i] ?? -1;
    if (following >= 0) first.set(item, following);
    else first.delete(item);
    src[j] = i;
    same[j] = 1;
    paired[i] = 1;
  }
  // By name, among the items left: each name's items chained from the first, as by identity.
  if (unpaired > 0) {
    const firstNamed = new Map<string, number>();
    const nextNamed = new Int32Array(m);
    for (let i = m - 1; i >= 0; i--) {
      if (paired[i]) continue;
      const name = nameOf(before[i]);
      if (name === undefined) continue;
      nextNamed[i] = firstNamed.get(name) ?? -1;
      firstNamed.set(name, i);
    }
    if (firstNamed.size > 0) {
      for (let j = 0; j < n; j++) {
        if ((src[j] ?? -1) >= 0) continue;
        const name = nameOf(after[j]);
        const i = name === undefined ? undefined : firstNamed.get(name);
        if (name === undefined || i === undefined) continue;
        const following = nextNamed[i] ?? -1;
        if (following >= 0) firstNamed.set(name, following);
        else firstNamed.delete(name);
        src[j] = i;
        paired[i] = 1;
      }
    }
  }
  keepLongestRun(src, same);
  return { src, same };
}

/** A pair `src[j] = i` in a run of pairs in order, after the pair `prev`. */
interface RunLink {
  readonly i: number;
  readonly j: number;
  readonly prev: RunLink | undefined;
}

/** Unpairs all but the longest run of pairs in order (an item moved is removed and added again). */
function keepLongestRun(src: Int32Array, same: Uint8Array): void {
  let last = -1;
  let ordered = true;
  for (const i of src) {
    if (i < 0) continue;
    if (i < last) {
      ordered = false;
      break;
    }
    last = i;
  }
  if (ordered) return;
  // Patience sorting: tails[k] ends the best run of length k + 1.
  const tails: RunLink[] = [];
  src.forEach((i, j) => {
    if (i < 0) return;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const tail = tails[mid];
      if (tail !== undefined && tail.i < i) lo = mid + 1;
      else hi = mid;
    }
    tails[lo] = { i, j, prev: tails[lo - 1] };
  });
  const keep = new Uint8Array(src.length);
  for (let link = tails.at(-1); link; link = link.prev) keep[link.j] = 1;
  src.forEach((i, j) => {
    if (i < 0 || keep[j]) return;
    src[j] = -1;
    same[j] = 0;
  });
}

/** Nothing to pair, for a middle with no items: shared, since it is only read. */
const NO_ITEMS: { src: Int32Array; same: Uint8Array } = { src: new Int32Array(0), same: new Uint8Array(0) };
/** No item paired. */
const nonePaired = (n: number): { src: Int32Array; same: Uint8Array } =>
  n === 0 ? NO_ITEMS : { src: new Int32Array(n).fill(-1), same: new Uint8Array(n) };

/** Items removed, added and patched, with `extra` before the unchanged items are counted. */
function diffList(
  path: string,
  pathSize: number,
  before: readonly unknown[],
  after: readonly unknown[],
  d: Diff,
): number {
  // The same items at both ends are left alone without pairing them.
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  )
    tail++;
  const middleBefore = before.length - tail > head ? before.slice(head, before.length - tail) : [];
  const middleAfter = after.length - tail > head ? after.slice(head, after.length - tail) : [];
  // Only added, or only removed, items need no pairing.
  const { src, same } =
    middleBefore.length > 0 && middleAfter.length > 0
      ? pair(middleBefore, middleAfter)
      : nonePaired(middleAfter.length);
  if (head > 0) d.pending.push(new Run(after, 0, head));
  if (tail > 0) d.pending.push(new Run(after, after.length - tail, after.length));

  // Against the replacement: its operation, brackets and commas.
  d.pending.push(path);
  let extra = -REPLACE - (after.length === 0 ? 2 : after.length + 1);
  // Which of the input's middle items are paired (none to look at when the middle is empty).
  const kept = middleBefore.length === 0 ? NO_ITEMS.same : new Uint8Array(middleBefore.length);
  for (const i of src) if (i >= 0) kept[i] = 1;
  for (let i = middleBefore.length - 1; i >= 0; i--) {
    if (kept[i]) continue;
    d.ops.push({ op: "remove", path: `${path}/${head + i}` });
    extra += REMOVE + indexPathSize(pathSize, head + i);
  }
  for (let j = 0; j < middleAfter.length; j++) {
    const i = src[j] ?? -1;
    const item = middleAfter[j];
    if (same[j]) {
      d.pending.push(item);
      continue;
    }
    const at = `${path}/${head + j}`;
    const atSize = indexPathSize(pathSize, head + j);
    if (i < 0) {
      d.ops.push({ op: "add", path: at, value: item });
      extra += ADD + atSize;
    } else {
      extra += REPLACE + atSize + diff(at, atSize, middleBefore[i], item, d);
    }
  }
  return extra;
}

/**
 * The operations that turn the input's list into the engine's: none when it is the same list,
 * the whole list added when the input has none, else item by item (see above).
 */
export function listPatch(
  path: string,
  before: readonly unknown[] | undefined,
  after: readonly unknown[] | undefined,
  ops: PatchOperation[],
): void {
  if (before === after || after === undefined) return;
  // An empty list is added whole too: the API server sends a Pod without containers as
  // `containers: null`, which the engine reads as none, and `add` replaces whatever is there.
  if (before === undefined || before.length === 0) {
    if (after.length > 0) ops.push({ op: "add", path, value: after });
    return;
  }
  diff(path, stringSize(path), before, after, { ops, pending: [] });
}

/** The operations that turn the input's value into the engine's: added when absent, else field by field. */
export function valuePatch(path: string, before: unknown, after: unknown, ops: PatchOperation[]): void {
  if (before === after || after === undefined) return;
  if (before === undefined) {
    ops.push({ op: "add", path, value: after });
    return;
  }
  diff(path, stringSize(path), before, after, { ops, pending: [] });
}

/** The Pod's labels, annotations and spec after injection, as podPatch reads them. */
export interface InjectedParts {
  readonly labels: Overlaid;
  readonly annotations: MapEdit;
  readonly spec: PodSpec;
}

/** The operations turning `before` into the injected Pod: its metadata and the spec's lists. */
export function podPatch(before: Pod & { readonly spec: PodSpec }, after: InjectedParts): PatchOperation[] {
  const ops: PatchOperation[] = [];
  if (!before.metadata) {
    ops.push({
      op: "add",
      path: "/metadata",
      value: { labels: overlaid(after.labels), annotations: after.annotations.toObject() },
    });
  } else {
    overlayPatch("/metadata/labels", before.metadata.labels, after.labels, ops);
    editPatch("/metadata/annotations", before.metadata.annotations, after.annotations, ops);
  }
  const b = before.spec;
  const a = after.spec;
  listPatch("/spec/initContainers", b.initContainers, a.initContainers, ops);
  listPatch("/spec/containers", b.containers, a.containers, ops);
  listPatch("/spec/volumes", b.volumes, a.volumes, ops);
  listPatch("/spec/imagePullSecrets", b.imagePullSecrets, a.imagePullSecrets, ops);
  valuePatch("/spec/securityContext", b.securityContext, a.securityContext, ops);
  return ops;
}
