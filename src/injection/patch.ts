// RFC 6902 operations from the fields the injector changed, built by hand rather than by
// diffing whole objects: maps key by key (escaped per RFC 6901), lists as insertions when the
// original items are all kept in order, element replacements when only items changed, else
// the whole list. A map or list absent from the input is added whole. Nothing else is touched
// (managedFields in particular).
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
