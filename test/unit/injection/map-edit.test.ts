// MapEdit (src/injection/map-edit.ts) against what it stands for: a plain object copied from the
// base and edited in place. For random sequences of sets, deletes and assigns over random keys
// (array-index keys, `__proto__` and `constructor` among them), the edit reads, lists and
// materializes as the object does, and editPatch writes exactly mapPatch's operations over it.
// And the patch reads only the keys set: a base of many keys is listed at most once.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MapEdit } from "../../../src/injection/map-edit.js";
import { setOwn } from "../../../src/injection/own.js";
import { editPatch, mapPatch } from "../../../src/injection/patch.js";
import type { PatchOperation } from "../../../src/injection/types.js";
import { countedMap } from "../../support/counted.js";

/** A small seeded generator (mulberry32): the same cases on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ["a", "b", "c", "d/e", "f~g", "0", "7", "12", "__proto__", "constructor", "x.io/y", "z"];

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)] as T;
}

function baseOf(next: () => number): Record<string, string> {
  const base: Record<string, string> = {};
  const n = Math.floor(next() * 7);
  for (let i = 0; i < n; i++) setOwn(base, pick(next, KEYS), pick(next, ["1", "2", "3"]));
  return base;
}

describe("MapEdit", () => {
  test("reads, lists, materializes and patches as the plain object it stands for, over 5,000 random edits", () => {
    const next = random(20261130);
    for (let round = 0; round < 5000; round++) {
      const base = baseOf(next);
      const plain: Record<string, string> = {};
      for (const k of Object.keys(base)) setOwn(plain, k, base[k] ?? "");
      const edit = new MapEdit(base);
      const steps: string[] = [];
      const n = Math.floor(next() * 6);
      for (let i = 0; i < n; i++) {
        const key = pick(next, KEYS);
        const value = pick(next, ["1", "2", "3", "4"]);
        const what = next();
        if (what < 0.45) {
          edit.set(key, value);
          setOwn(plain, key, value);
          steps.push(`set ${key}=${value}`);
        } else if (what < 0.8) {
          edit.delete(key);
          delete plain[key];
          steps.push(`delete ${key}`);
        } else {
          const source: Record<string, string> = {};
          setOwn(source, key, value);
          setOwn(source, pick(next, KEYS), value);
          edit.assign(source);
          for (const k of Object.keys(source)) setOwn(plain, k, source[k] ?? "");
          steps.push(`assign ${JSON.stringify(source)}`);
        }
      }
      const why = `base ${JSON.stringify(base)}, ${steps.join("; ")}`;
      assert.deepEqual(Object.keys(edit.toObject()), Object.keys(plain), why);
      assert.deepEqual(edit.keys(), Object.keys(plain), why);
      for (const k of KEYS) assert.equal(edit.get(k), Object.hasOwn(plain, k) ? plain[k] : undefined, `${why}: ${k}`);
      const expected: PatchOperation[] = [];
      mapPatch("/m", base, plain, expected);
      const got: PatchOperation[] = [];
      editPatch("/m", base, edit, got);
      assert.deepEqual(got, expected, why);
    }
  });

  test("the patch of a few keys set over many lists the base's keys at most once, and reads none of its values", () => {
    const counts = { listings: 0, reads: 0 };
    const target: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) target[`example.com/note-${i}`] = "v";
    target["sidecar.istio.io/status"] = "old";
    target["x.io/other"] = "old";
    const base = countedMap(target, counts);
    const edit = new MapEdit(base);
    edit.set("sidecar.istio.io/status", "new");
    edit.set("x.io/other", "new");
    edit.set("istio.io/rev", "default");
    const ops: PatchOperation[] = [];
    editPatch("/metadata/annotations", base, edit, ops);
    assert.deepEqual(ops, [
      { op: "replace", path: "/metadata/annotations/sidecar.istio.io~1status", value: "new" },
      { op: "replace", path: "/metadata/annotations/x.io~1other", value: "new" },
      { op: "add", path: "/metadata/annotations/istio.io~1rev", value: "default" },
    ]);
    // Two replacements are put in the base's order: its keys listed once (Object.keys reads a
    // descriptor per key), and besides that only the values of the keys set read.
    const size = Object.keys(target).length;
    assert.ok(counts.listings <= 1, `${counts.listings} listings`);
    assert.ok(counts.reads <= size + 10, `${counts.reads} reads for ${size} keys`);
  });
});
