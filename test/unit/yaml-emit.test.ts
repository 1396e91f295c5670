// yamlText writes what the yaml library's stringify(value, { lineWidth: 0,
// aliasDuplicateObjects: false }) writes, byte for byte: the scalars whose form is the library's
// call, block scalars at every depth, empty collections, values it hands back to the library,
// seeded random documents, and every golden manifest's preview entries (what /preview's YAML
// and diff answers write).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { yamlText } from "../../src/yaml-emit.js";
import { parseLabelList, parsePreviewInput, preview } from "../../src/preview.js";
import { buildConfig } from "../../src/config/load.js";

const OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;
const same = (value: unknown, what = JSON.stringify(value)): void =>
  assert.equal(yamlText(value), stringify(value, OPTIONS), what);

/** Strings whose YAML form differs from the string: keywords, numbers, indicators, quotes, newlines. */
const TRICKY = [
  "",
  " ",
  "a",
  "true",
  "True",
  "FALSE",
  "null",
  "Null",
  "~",
  "yes",
  "no",
  "on",
  "0",
  "-1",
  "1.0",
  "1e3",
  "0x1F",
  "0o17",
  ".inf",
  "-.inf",
  ".nan",
  "nginx:1.27",
  "a: b",
  "a:b",
  "key:",
  "#x",
  "x #y",
  "- x",
  "-",
  "--",
  "---",
  "...",
  "? x",
  "*alias",
  "&anchor",
  "!tag",
  "%dir",
  "@at",
  "`bt`",
  "it's",
  '"quoted"',
  "{json}",
  '{"a":1,"b":[true,null]}',
  "[1, 2]",
  "trailing ",
  " leading",
  "tab\there",
  "ünïcode ✓",
  "line\nbreak",
  "a\n\nb\n",
  "  indented\nsecond",
  "ends\n",
  "ends\n\n",
  "\n",
  "x\r\ny",
  "back\\slash",
  "long plain value with spaces",
  "/path/to/x",
  "15020",
  "a".repeat(300),
  `${"b".repeat(300)}: c`,
  "\u0007bell",
  "emoji 😀",
];

describe("yamlText", () => {
  it("writes each tricky string the library's way, as a value, an item and a key, at every depth", () => {
    for (const s of TRICKY) {
      same({ s }, `value ${JSON.stringify(s)}`);
      same([s], `item ${JSON.stringify(s)}`);
      same({ [s]: 1 }, `key ${JSON.stringify(s)}`);
      same({ a: [{ b: { c: [[s]] } }] }, `nested ${JSON.stringify(s)}`);
    }
  });

  it("writes numbers, booleans, null and undefined as the library does", () => {
    same({
      a: 0,
      b: -0,
      c: 1e21,
      d: 0.1,
      e: -5,
      f: 2 ** 60,
      g: 1.5e-7,
      h: true,
      i: false,
      j: null,
      k: undefined,
      l: Number.MAX_SAFE_INTEGER,
    });
    same([undefined, null, 1, -0]);
  });

  it("writes empty and nested collections as the library does", () => {
    same({ a: {}, b: [], c: [{}], d: [[]], e: [{ x: 1, y: [1, 2] }], f: [[1, 2], [3]], g: [[[{ h: [] }]]] });
    same({});
    same([]);
    same({ only: undefined });
  });

  it("hands what it does not write itself to the library, with the same text", () => {
    same({ d: new Date(0) }, "Date");
    same({ m: new Map([["k", 1]]) }, "Map");
    same({ n: Number.NaN, i: Number.POSITIVE_INFINITY }, "NaN, Infinity");
    same({ [`multi\nline key`]: 1 }, "a key written as ? key");
    same("top-level string");
    same(42);
    same(null);
  });

  it("writes seeded random documents as the library does", () => {
    let seed = 20261129;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const value = (depth: number): unknown => {
      const r = rand(depth > 4 ? 6 : 9);
      if (r === 0) return TRICKY[rand(TRICKY.length)];
      if (r === 1) return rand(1000) - 500;
      if (r === 2) return rand(2) === 0;
      if (r === 3) return null;
      if (r === 4) return `word-${rand(100)}.name`;
      if (r === 5) return rand(7) / 4;
      if (r === 6) return Array.from({ length: rand(4) }, () => value(depth + 1));
      return Object.fromEntries(
        Array.from({ length: rand(5) }, () => [
          rand(3) === 0 ? (TRICKY[rand(TRICKY.length)] as string) : `key${rand(20)}`,
          value(depth + 1),
        ]),
      );
    };
    for (let i = 0; i < 300; i++) same(value(0), `random document ${i}`);
  });

  it("writes every golden manifest's preview entries, objects and originals as the library does", async () => {
    const dir = join("test", "golden");
    const config = buildConfig({});
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") && !f.endsWith(".config.yaml"));
    assert.ok(files.length > 10, "golden manifests found");
    let entries = 0;
    for (const f of files) {
      const docs = parsePreviewInput(readFileSync(join(dir, f), "utf8"), "yaml", {
        maxBytes: 1 << 24,
        maxDepth: 64,
        maxNodes: 100_000,
        maxAliases: 100,
        maxDocuments: 100,
      });
      for (const d of docs) same(d, `${f}: a document as given`);
      for (const e of await preview(docs, { config, givenLabels: parseLabelList("istio-injection=enabled") })) {
        same(e.object, `${f}: ${e.name} as stored`);
        same({ items: [e] }, `${f}: ${e.name}'s entry`);
        entries++;
      }
    }
    assert.ok(entries >= files.length, `${entries} entries compared`);
  });
});
