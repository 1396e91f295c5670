import assert from "node:assert/strict";
import { test } from "node:test";
import {
  jsonPreScan,
  MANIFEST_LIMITS,
  measureValue,
  parseYamlDocuments,
  preScan,
  YamlLimitError,
  YamlSyntaxError,
  type YamlLimitKind,
  type YamlLimits,
} from "../../../src/injection/yaml-limits.js";

const SMALL: YamlLimits = { maxBytes: 1000, maxDepth: 3, maxNodes: 10, maxAliases: 2, maxDocuments: 2 };

function refusedFor(limit: YamlLimitKind, f: () => unknown): void {
  assert.throws(
    f,
    (e: unknown) => e instanceof YamlLimitError && e.limit === limit && e.message.includes(`(limit: ${limit})`),
  );
}

test("documents within the limits are read as the yaml package reads them, later duplicate keys winning", () => {
  assert.deepEqual(parseYamlDocuments("a: 1\nb: [x, 'y, z']\n", SMALL), [{ a: 1, b: ["x", "y, z"] }]);
  assert.deepEqual(parseYamlDocuments("a: 1\n---\nb: 2\n", SMALL), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(parseYamlDocuments("a: 1\na: 2\n", SMALL), [{ a: 2 }]);
  assert.deepEqual(parseYamlDocuments("# only a comment\n", SMALL), []);
  assert.deepEqual(parseYamlDocuments('{"a": {"b": [1, 2]}}', SMALL), [{ a: { b: [1, 2] } }]);
  assert.deepEqual(parseYamlDocuments("x: &v [1]\ny: *v\n", SMALL), [{ x: [1], y: [1] }]);
  assert.throws(
    () => parseYamlDocuments("a: [1\n", SMALL),
    (e: unknown) => e instanceof YamlSyntaxError && e.document === 1,
  );
  // An alias without an anchor is a syntax error, and the parser's message is cut.
  assert.throws(
    () => parseYamlDocuments(`a: *${"x".repeat(900)}`, SMALL),
    (e: unknown) => e instanceof YamlSyntaxError && e.message.startsWith("Unresolved alias") && e.message.length <= 201,
  );
});

test("each limit is enforced, and named", () => {
  refusedFor("bytes", () => parseYamlDocuments(`a: "${"x".repeat(1000)}"`, SMALL));
  // depth: flow, block, compact sequences, flow inside block
  refusedFor("depth", () => parseYamlDocuments("{a: {b: {c: {d: 1}}}}", SMALL));
  refusedFor("depth", () => parseYamlDocuments("a:\n b:\n  c:\n   d: 1\n", SMALL));
  refusedFor("depth", () => parseYamlDocuments("- - - - 1\n", SMALL));
  refusedFor("depth", () => parseYamlDocuments("a:\n b:\n  c: [1]\n", SMALL));
  assert.deepEqual(parseYamlDocuments("a:\n b:\n  c: 1\n", SMALL), [{ a: { b: { c: 1 } } }]);
  // nodes: keys and items, in flow and block
  refusedFor("nodes", () => parseYamlDocuments(`[${"1,".repeat(10)}1]`, SMALL));
  refusedFor("nodes", () => parseYamlDocuments(Array.from({ length: 11 }, (_, i) => `k${i}: ${i}`).join("\n"), SMALL));
  assert.equal(parseYamlDocuments(Array.from({ length: 10 }, (_, i) => `k${i}: ${i}`).join("\n"), SMALL).length, 1);
  // documents
  refusedFor("documents", () => parseYamlDocuments("a: 1\n---\nb: 2\n---\nc: 3\n", SMALL));
  // aliases: uses are counted, anchors are free
  refusedFor("aliases", () => parseYamlDocuments("x: &v 1\ny: *v\nz: *v\nw: *v\n", SMALL));
});

test("billion laughs: a few aliases that would expand exponentially are refused", () => {
  const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++)
    lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(", ")}]`);
  const limits: YamlLimits = { ...MANIFEST_LIMITS, maxAliases: 100, maxNodes: 100_000 };
  assert.throws(() => parseYamlDocuments(lines.join("\n"), limits), YamlLimitError);
});

test("the pre-scan refuses hostile shapes before the parser sees them, and reads real ones", () => {
  const limits: YamlLimits = { maxBytes: 1_000_000, maxDepth: 16, maxNodes: 256, maxAliases: 16, maxDocuments: 16 };
  refusedFor("depth", () => preScan("{a: ".repeat(5000) + "1" + "}".repeat(5000), limits));
  refusedFor("depth", () => preScan("[".repeat(8000), limits));
  refusedFor("depth", () => preScan("- ".repeat(5000) + "1", limits));
  refusedFor("nodes", () => preScan(`[${"1,".repeat(5000)}1]`, limits));
  refusedFor("nodes", () => preScan("a: 1\n".repeat(1001), limits));
  // What is quoted, commented, or inside a block scalar is not structure.
  const real = [
    "# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
    "holdApplicationUntilProxyStarts: true",
    'tracing: {zipkin: {address: "zipkin:9411"}}',
    "name: '[[[[[[[[[[[[[[[[[[[[[[[[[['",
    'other: "{{{{{{{{{{{{{{{{{{{{{\\"{{{{{{{"',
    "image: registry/x[1]",
    "script: |",
    "  if [ -f x ]; then { { { { { { { { { { { { { { { { { { { {",
    "  fi",
    "proxyMetadata:",
    "  A: b",
  ].join("\n");
  const figures = preScan(real, limits);
  assert.ok(figures.depth <= 3, JSON.stringify(figures));
  assert.ok(figures.nodes <= 20, JSON.stringify(figures));
  assert.equal(parseYamlDocuments(real, limits).length, 1);
});

test("measureValue counts exactly, without recursion", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  refusedFor("depth", () => measureValue(deep, MANIFEST_LIMITS));
  assert.equal(measureValue({ a: [1, 2], b: { c: 3 } }, SMALL), 5);
  // Shared values (what aliases become) are counted at each use.
  const shared = [1, 2, 3, 4];
  refusedFor("nodes", () => measureValue([shared, shared, shared], SMALL));
});

test("JSON is measured before JSON.parse sees it", () => {
  refusedFor("depth", () =>
    jsonPreScan("[".repeat(3_000_000) + "]".repeat(3_000_000), { ...SMALL, maxBytes: 10_000_000 }),
  );
  refusedFor("nodes", () => jsonPreScan(`[${"1,".repeat(20)}1]`, SMALL));
  assert.deepEqual(jsonPreScan('{"a": "[[[[[[,,,,,,,,,,,,\\"[[[[["}', SMALL), { depth: 1, nodes: 1, documents: 1 });
});

/** The scan one character at a time, as it was before strings were skipped by indexOf. */
function scanByCharacter(text: string): { depth: number; nodes: number } {
  let depth = 0;
  let maxDepth = 0;
  let nodes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 91 || c === 123) {
      depth++;
      nodes++;
      maxDepth = Math.max(maxDepth, depth);
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44) nodes++;
  }
  return { depth: maxDepth, nodes };
}

test("the JSON scan finds a string's end as a scan character by character does: escaped quotes, runs of backslashes, unterminated strings", () => {
  const LARGE: YamlLimits = { maxBytes: 1e9, maxDepth: 1e9, maxNodes: 1e9, maxAliases: 0, maxDocuments: 1 };
  let s = 7;
  const r = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = ['"', '"', "\\", "\\", "[", "]", "{", "}", ",", "a", " "];
  for (let n = 0; n < 5000; n++) {
    const text = Array.from({ length: Math.floor(r() * 40) }, () => alphabet[Math.floor(r() * alphabet.length)]).join(
      "",
    );
    const { depth, nodes } = jsonPreScan(text, LARGE);
    assert.deepEqual({ depth, nodes }, scanByCharacter(text), JSON.stringify(text));
  }
  assert.deepEqual(jsonPreScan('["a\\\\",["b\\\\\\"]"]]', LARGE), { depth: 2, nodes: 3, documents: 1 });
});
