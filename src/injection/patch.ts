// RFC 6902 operations from the fields the injector changed, built by hand rather than by
// diffing whole objects: maps key by key (escaped per RFC 6901), lists as insertions when the
// original items are all kept in order, element replacements when only items changed, else
// the whole list. A map or list absent from the input is added whole. Nothing else is touched
// (managedFields in particular).
//
// Work is linear in what changed, not in the size of the maps: a Pod may carry hundreds of
// thousands of labels (a 6 MiB review), each pass over such a map costs a few hundred
// milliseconds, and the injector sets a handful of them. So the template's labels are laid
// over the Pod's (`Overlaid`) rather than copied into a new map, and `overlayPatch` writes
// the operations from the handful alone.
import type { PatchOperation } from "./types.js";

export function escapeKey(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

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
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) ops.push({ op: "remove", path: `${path}/${escapeKey(key)}` });
  }
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key)) ops.push({ op: "add", path: `${path}/${escapeKey(key)}`, value });
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

/** A key objects order first (an array index): such keys do not keep their insertion order. */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * The operations of `mapPatch(path, before, overlaid(after), ops)`, in the same order, reading
 * only the overlay's keys when `before` is the base (then no key is removed, the overlay's keys
 * present in `before` are replaced in `before`'s order, and the others added in the overlay's).
 * `before`'s keys are listed only to order two or more replacements.
 */
export function overlayPatch(path: string, before: Readonly<Record<string, string>> | undefined, after: Overlaid, ops: PatchOperation[]): void {
  const keys = Object.keys(after.overlay);
  if (before === undefined || before !== after.base || keys.some((k) => ARRAY_INDEX.test(k))) {
    mapPatch(path, before, overlaid(after), ops);
    return;
  }
  const replaced = new Map<string, string>();
  const added: string[] = [];
  for (const key of keys) {
    const value = after.overlay[key] as string;
    if (!Object.hasOwn(before, key)) added.push(key);
    else if (before[key] !== value) replaced.set(key, value);
  }
  const inOrder = replaced.size > 1 ? Object.keys(before).filter((k) => replaced.has(k)) : [...replaced.keys()];
  for (const key of inOrder) ops.push({ op: "replace", path: `${path}/${escapeKey(key)}`, value: replaced.get(key) });
  for (const key of added) ops.push({ op: "add", path: `${path}/${escapeKey(key)}`, value: after.overlay[key] });
}

/**
 * Items are compared by identity: the engine never copies an item it leaves alone, so an
 * unchanged item is the very object of the input.
 */
export function listPatch(path: string, before: readonly unknown[] | undefined, after: readonly unknown[] | undefined, ops: PatchOperation[]): void {
  if (before === after || after === undefined) return;
  if (before === undefined) {
    if (after.length > 0) ops.push({ op: "add", path, value: after });
    return;
  }
  if (after.length === 0) {
    if (before.length > 0) ops.push({ op: "replace", path, value: [] });
    return;
  }
  // Pure insertions: every original item kept, in order.
  let j = 0;
  const inserted: number[] = [];
  for (let i = 0; i < after.length; i++) {
    if (j < before.length && after[i] === before[j]) j++;
    else inserted.push(i);
  }
  if (j === before.length) {
    for (const i of inserted) {
      ops.push({ op: "add", path: `${path}/${i}`, value: after[i] });
    }
    return;
  }
  // Same length: replace the items that changed.
  if (before.length === after.length) {
    const changed = after.flatMap((item, i) => (item === before[i] ? [] : [i]));
    if (changed.length < after.length) {
      for (const i of changed) ops.push({ op: "replace", path: `${path}/${i}`, value: after[i] });
      return;
    }
  }
  ops.push({ op: "replace", path, value: after });
}

export function valuePatch(path: string, before: unknown, after: unknown, ops: PatchOperation[]): void {
  if (before === after || after === undefined) return;
  ops.push({ op: before === undefined ? "add" : "replace", path, value: after });
}
