import assert from "node:assert/strict";
import { test } from "node:test";
import jsonpatch from "fast-json-patch";
import { escapeKey, listPatch, mapPatch, valuePatch } from "../../../src/injection/patch.js";
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

/** A container of some size, as a Pod's are. */
const container = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  image: `registry.example.com/team/${name}:1.2.3`,
  ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
  resources: { requests: { cpu: "100m", memory: "128Mi" } },
  ...extra,
});

const size = (ops: readonly PatchOperation[]): number => JSON.stringify(ops).length;

test("insertions keep the original items untouched", () => {
  const a = container("a");
  const b = container("b");
  const x = container("x");
  const y = container("y");
  const ops: PatchOperation[] = [];
  listPatch("/l", [a, b], [x, a, y, b], ops);
  assert.deepEqual(
    ops.map((o) => `${o.op} ${o.path}`),
    ["add /l/0", "add /l/2"],
  );
  assert.deepEqual(apply({ l: [a, b] }, ops), { l: [x, a, y, b] });
});

test("a changed item is patched where it stands, field by field", () => {
  const a = container("a");
  const timing = {
    initialDelaySeconds: 5,
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
  };
  const b = container("b", { livenessProbe: { tcpSocket: { port: 8080 }, ...timing } });
  const b2 = {
    ...b,
    image: "new",
    livenessProbe: { ...timing, httpGet: { path: "/app-health/b/livez", port: 15020 } },
  };
  const ops: PatchOperation[] = [];
  listPatch("/l", [a, b], [a, b2], ops);
  assert.deepEqual(ops, [
    { op: "replace", path: "/l/1/image", value: "new" },
    { op: "remove", path: "/l/1/livenessProbe/tcpSocket" },
    { op: "add", path: "/l/1/livenessProbe/httpGet", value: { path: "/app-health/b/livez", port: 15020 } },
  ]);
  assert.equal(JSON.stringify(apply({ l: [a, b] }, ops)), JSON.stringify({ l: [a, b2] }));
});

test("an object whose kept keys change order is replaced whole, so the result keeps the engine's key order", () => {
  const probe = { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 10 };
  const rewritten = { periodSeconds: 10, httpGet: { path: "/app-health/a/readyz", port: 15020 } };
  const a = container("a", { readinessProbe: probe });
  const a2 = { ...a, readinessProbe: rewritten };
  const ops: PatchOperation[] = [];
  listPatch("/l", [a], [a2], ops);
  assert.deepEqual(ops, [{ op: "replace", path: "/l/0/readinessProbe", value: rewritten }]);
  assert.equal(JSON.stringify(apply({ l: [a] }, ops)), JSON.stringify({ l: [a2] }));
});

test("items removed go from the highest index down, before the ones added", () => {
  const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => container(n));
  const x = container("x");
  const ops: PatchOperation[] = [];
  listPatch("/l", [a, b, c, d], [a, x, c], ops);
  assert.deepEqual(
    ops.map((o) => `${o.op} ${o.path}`),
    ["remove /l/3", "remove /l/1", "add /l/1"],
  );
  assert.deepEqual(apply({ l: [a, b, c, d] }, ops), { l: [a, x, c] });
});

test("a moved item is removed and added again; the longest run in order stays", () => {
  const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => container(n));
  const ops: PatchOperation[] = [];
  listPatch("/l", [a, b, c, d], [b, c, d, a], ops);
  assert.deepEqual(
    ops.map((o) => `${o.op} ${o.path}`),
    ["remove /l/0", "add /l/3"],
  );
  assert.deepEqual(apply({ l: [a, b, c, d] }, ops), { l: [b, c, d, a] });
});

test("a list or object is replaced whole where that is smaller", () => {
  const a = { name: "a" };
  const b = { name: "b" };
  const b2 = { name: "b", image: "new" };
  let ops: PatchOperation[] = [];
  listPatch("/l", [a, b], [b2, a], ops);
  assert.deepEqual(ops, [{ op: "replace", path: "/l", value: [b2, a] }]);
  ops = [];
  listPatch("/l", [a], [a], ops);
  assert.deepEqual(ops, []);
  ops = [];
  valuePatch("/s", { x: 1, y: 2 }, { x: 3, y: 4 }, ops);
  assert.deepEqual(ops, [{ op: "replace", path: "/s", value: { x: 3, y: 4 } }]);
});

test("a moved map key is removed and added again, so the map keeps the engine's order", () => {
  const before = { a: "1", "p/q": "2", c: "3" };
  const after = { a: "1", c: "3", "p/q": "4", d: "5" };
  const ops: PatchOperation[] = [];
  mapPatch("/m", before, after, ops);
  assert.deepEqual(
    ops.map((o) => `${o.op} ${o.path}`),
    ["remove /m/p~1q", "add /m/p~1q", "add /m/d"],
  );
  assert.equal(JSON.stringify(apply({ m: before }, ops)), JSON.stringify({ m: after }));
});

// --- Random trees, changed as the engine changes them (copies on the way to a change, the rest shared). ---

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function tree(r: () => number, depth: number): unknown {
  const k = r();
  if (depth <= 0 || k < 0.3)
    return k < 0.1 ? Math.floor(r() * 100) : k < 0.15 ? r() < 0.5 : `s${Math.floor(r() * 1000)}`;
  if (k < 0.65)
    return Array.from({ length: Math.floor(r() * 6) }, (_, i) =>
      r() < 0.7 ? { name: `n${i % 4}`, v: tree(r, depth - 1) } : tree(r, depth - 1),
    );
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 6); i > 0; i--)
    o[["a", "b/c", "d~e", "f", "g", "h"][Math.floor(r() * 6)] as string] = tree(r, depth - 1);
  return o;
}

function mutate(r: () => number, v: unknown, depth: number): unknown {
  if (Array.isArray(v)) {
    const out = [...(v as unknown[])];
    const n = 1 + Math.floor(r() * 3);
    for (let t = 0; t < n; t++) {
      const k = r();
      const i = Math.floor(r() * (out.length + 1));
      if (k < 0.3) out.splice(i, 0, tree(r, depth));
      else if (k < 0.5 && out.length > 0) out.splice(Math.min(i, out.length - 1), 1);
      else if (k < 0.6 && out.length > 1) out.push(...out.splice(Math.min(i, out.length - 1), 1));
      else if (out.length > 0)
        out[Math.min(i, out.length - 1)] = mutate(r, out[Math.min(i, out.length - 1)], depth - 1);
    }
    return out;
  }
  if (typeof v === "object" && v !== null && depth > 0) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const k = r();
    if (k < 0.15) return { ...o, [`new${Math.floor(r() * 3)}`]: tree(r, depth) };
    if (k < 0.2) return { [`new${Math.floor(r() * 3)}`]: tree(r, depth), ...o }; // added before the kept keys
    if (k < 0.3 && keys.length > 0) {
      const { [keys[0] as string]: _gone, ...rest } = o;
      return rest;
    }
    if (k < 0.4 && keys.length > 1) {
      const { [keys[0] as string]: first, ...rest } = o;
      return { ...rest, [keys[0] as string]: first }; // a kept key moved last
    }
    if (keys.length > 0) {
      const key = keys[Math.floor(r() * keys.length)] as string;
      return { ...o, [key]: mutate(r, o[key], depth - 1) };
    }
  }
  return tree(r, depth);
}

test("random trees: the operations give the changed tree byte for byte, and never outweigh replacing it", () => {
  const r = random(20261129);
  let perItem = 0;
  for (let n = 0; n < 3000; n++) {
    const before = {
      spec: { l: Array.from({ length: 1 + Math.floor(r() * 8) }, (_, i) => ({ name: `c${i}`, v: tree(r, 4) })) },
    };
    const after = { spec: { l: mutate(r, before.spec.l, 5) as unknown[] } };
    const ops: PatchOperation[] = [];
    listPatch("/spec/l", before.spec.l, after.spec.l, ops);
    const what = JSON.stringify({ before, after, ops });
    assert.equal(JSON.stringify(apply(before, ops)), JSON.stringify(after), what);
    const whole: PatchOperation[] = [{ op: "replace", path: "/spec/l", value: after.spec.l }];
    assert.ok(size(ops) <= size(whole), what);
    if (ops.length > 0 && !(ops.length === 1 && ops[0]?.path === "/spec/l")) perItem++;
  }
  assert.ok(perItem > 1000, `${perItem} of 3000 patched item by item`);
});

/** The value at an RFC 6901 pointer. */
function at(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

test("random trees with keys JSON escapes: no object's or list's operations outweigh replacing it whole", () => {
  // Keys and a path whose JSON text differs from their characters: a quote, a backslash, a
  // control character, lone and paired surrogates, a key past the short-string check, and
  // `/` and `~`, which the pointer escapes. The sizes the patch settles on must be exact for
  // each: a size off by one picks the larger way for some of these trees.
  const keys = [
    "a",
    "b/c",
    "d~e",
    'q"q',
    "\\",
    "\u0001",
    "\ud800",
    "\udc00x",
    "\u{1F600}",
    "é",
    "k".repeat(70),
    "y/".repeat(40),
  ];
  // Numbers whose JSON text is not their integer digits, or is at the edge of them.
  const numbers = [-0, -7, 0.25, 1e21, 2 ** 53, -(2 ** 53 - 1), 10, 99, 1000];
  const r = random(20261130);
  const leaf = (): unknown => {
    const k = r();
    if (k < 0.15) return Math.floor(r() * 100000);
    if (k < 0.2) return numbers[Math.floor(r() * numbers.length)];
    return k < 0.3 ? r() < 0.5 : `${keys[Math.floor(r() * keys.length)]}v`;
  };
  const grow = (depth: number): unknown => {
    const k = r();
    if (depth <= 0 || k < 0.3) return leaf();
    if (k < 0.6)
      return Array.from({ length: Math.floor(r() * 10) }, (_, i) =>
        r() < 0.7 ? { name: `n${i % 4}`, v: grow(depth - 1) } : grow(depth - 1),
      );
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(r() * 6); i > 0; i--) o[keys[Math.floor(r() * keys.length)] as string] = grow(depth - 1);
    return o;
  };
  const change = (v: unknown, depth: number): unknown => {
    if (Array.isArray(v)) {
      const out = [...(v as unknown[])];
      const i = Math.min(Math.floor(r() * out.length), out.length - 1);
      const k = r();
      if (out.length === 0 || k < 0.3) out.splice(Math.floor(r() * (out.length + 1)), 0, grow(depth));
      else if (k < 0.5) out.splice(i, 1);
      else out[i] = change(out[i], depth - 1);
      return out;
    }
    if (typeof v === "object" && v !== null && depth > 0) {
      const o = v as Record<string, unknown>;
      const own = Object.keys(o);
      if (own.length === 0 || r() < 0.2) return { ...o, [keys[Math.floor(r() * keys.length)] as string]: grow(depth) };
      const key = own[Math.floor(r() * own.length)] as string;
      return { ...o, [key]: change(o[key], depth - 1) };
    }
    return grow(depth);
  };
  let grouped = 0;
  for (let n = 0; n < 3000; n++) {
    const root = r() < 0.5 ? "/spec/l" : '/spec/"q"\ud800\u0001';
    const before = Array.from({ length: 1 + Math.floor(r() * 10) }, (_, i) => ({ name: `c${i}`, v: grow(4) }));
    const after = change(before, 5) as unknown[];
    const ops: PatchOperation[] = [];
    listPatch(root, before, after, ops);
    const what = JSON.stringify({ before, after, ops });
    const doc = { list: before };
    const rooted = (p: string): string => `/list${p.slice(root.length)}`;
    const patched = apply(
      doc,
      ops.map((op) => ({ ...op, path: rooted(op.path) })),
    );
    assert.equal(JSON.stringify(patched), JSON.stringify({ list: after }), what);
    // Every object or list some operations reach into, against the one replace of it.
    const under = new Map<string, PatchOperation[]>();
    for (const op of ops) {
      const steps = op.path.slice(root.length).split("/");
      for (let k = 1; k < steps.length; k++) {
        const prefix = root + steps.slice(0, k).join("/");
        if (ops.some((o) => o.path === prefix)) continue;
        under.set(prefix, [...(under.get(prefix) ?? []), op]);
      }
    }
    for (const [prefix, group] of under) {
      const whole = size([{ op: "replace", path: prefix, value: at({ list: after }, rooted(prefix)) }]);
      assert.ok(size(group) <= whole, `${prefix}: ${size(group)} > ${whole} in ${what}`);
      grouped++;
    }
  }
  assert.ok(grouped > 3000, `${grouped} objects or lists patched by parts`);
});

test("wide objects (past the few keys scanned for): fields removed, moved, added and changed give the changed object byte for byte", () => {
  const r = random(20261131);
  let byParts = 0;
  for (let n = 0; n < 500; n++) {
    const width = 16 + Math.floor(r() * 30);
    const before: Record<string, unknown> = {};
    for (let i = 0; i < width; i++)
      before[`k${i}`] = r() < 0.5 ? { v: i, w: [i, `s${i}`] } : `value-${i}-${"x".repeat(60)}`;
    const entries = Object.entries(before);
    const after: Record<string, unknown> = {};
    const moved: [string, unknown][] = [];
    for (const [k, v] of entries) {
      const t = r();
      if (t < 0.1) continue; // removed
      // Every fifth object has keys moved last: then it is replaced whole.
      if (t < 0.15 && n % 5 === 0) moved.push([k, v]);
      else if (t < 0.3 && typeof v === "object")
        after[k] = { ...(v as object), v: -1 }; // changed inside
      else if (t < 0.35) after[k] = `changed-${k}`;
      else after[k] = v;
    }
    if (r() < 0.5) after[`new${n}`] = "added";
    for (const [k, v] of moved) after[k] = v;
    const ops: PatchOperation[] = [];
    valuePatch("/o", before, after, ops);
    const what = JSON.stringify({ before, after, ops });
    assert.equal(JSON.stringify(apply({ o: before }, ops)), JSON.stringify({ o: after }), what);
    assert.ok(size(ops) <= size([{ op: "replace", path: "/o", value: after }]), what);
    if (ops.length > 0 && ops[0]?.path !== "/o") byParts++;
  }
  assert.ok(byParts > 300, `${byParts} of 500 patched by parts`);
});
