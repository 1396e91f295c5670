import assert from "node:assert/strict";
import { test } from "node:test";
import jsonpatch from "fast-json-patch";
import { escapeKey, listPatch, mapPatch } from "../../../src/injection/patch.js";
import type { PatchOperation } from "../../../src/injection/types.js";

const apply = (doc: unknown, ops: PatchOperation[]): unknown =>
  jsonpatch.applyPatch(structuredClone(doc), structuredClone(ops) as jsonpatch.Operation[], true, false).newDocument;

test("keys with / and ~ are escaped per RFC 6901", () => {
  assert.equal(escapeKey("a/b~c"), "a~1b~0c");
  const ops: PatchOperation[] = [];
  mapPatch("/m", { "x/y": "1", gone: "2" }, { "x/y": "3", "k~1": "4" }, ops);
  assert.deepEqual(apply({ m: { "x/y": "1", gone: "2" } }, ops), { m: { "x/y": "3", "k~1": "4" } });
  assert.deepEqual(ops.map((o) => o.op).sort(), ["add", "remove", "replace"]);
});

test("an absent map or list is added whole", () => {
  const ops: PatchOperation[] = [];
  mapPatch("/metadata/labels", undefined, { a: "1" }, ops);
  listPatch("/spec/volumes", undefined, [{ name: "v" }], ops);
  assert.deepEqual(ops, [
    { op: "add", path: "/metadata/labels", value: { a: "1" } },
    { op: "add", path: "/spec/volumes", value: [{ name: "v" }] },
  ]);
});

test("insertions keep the original items untouched", () => {
  const a = { name: "a" };
  const b = { name: "b" };
  const x = { name: "x" };
  const y = { name: "y" };
  const ops: PatchOperation[] = [];
  listPatch("/l", [a, b], [x, a, y, b], ops);
  assert.ok(ops.every((o) => o.op === "add"));
  assert.deepEqual(apply({ l: [a, b] }, ops), { l: [x, a, y, b] });
});

test("a changed item is replaced in place; a reordered list is replaced whole", () => {
  const a = { name: "a" };
  const b = { name: "b" };
  const b2 = { name: "b", image: "new" };
  let ops: PatchOperation[] = [];
  listPatch("/l", [a, b], [a, b2], ops);
  assert.deepEqual(ops, [{ op: "replace", path: "/l/1", value: b2 }]);
  ops = [];
  listPatch("/l", [a, b], [b2, a], ops);
  assert.deepEqual(ops, [{ op: "replace", path: "/l", value: [b2, a] }]);
  ops = [];
  listPatch("/l", [a], [a], ops);
  assert.deepEqual(ops, []);
});
