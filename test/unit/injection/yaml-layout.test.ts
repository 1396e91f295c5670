// Continuation lines of quoted scalars and flow collections at any indent, as go-yaml (kubectl,
// istioctl kube-inject) reads them. The values expected are those Istio's kube-inject gave for
// the same lines in a Pod's annotations, command, args and env (checked through the oracle).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { relaidContinuations } from "../../../src/injection/yaml-layout.js";
import { MANIFEST_LIMITS, parseYamlDocuments, YamlSyntaxError } from "../../../src/injection/yaml-limits.js";

const read = (text: string): unknown => parseYamlDocuments(text, MANIFEST_LIMITS)[0];

describe("continuation lines under their key", () => {
  const cases: readonly (readonly [string, string, unknown])[] = [
    ["a single-quoted scalar", "m:\n  a: 'x\n  y'\nn: 1\n", { m: { a: "x y" }, n: 1 }],
    ["at column 0", "m:\n  a: 'x\ny'\nn: 1\n", { m: { a: "x y" }, n: 1 }],
    ["'' inside", "a: 'it''s\nmore'\n", { a: "it's more" }],
    [
      "a double-quoted scalar, escapes and an escaped line break",
      'm:\n  a: "x\\\ny \\" z\n w"\nb: 1\n',
      { m: { a: 'xy " z w' }, b: 1 },
    ],
    ["a flow sequence", 'c:\n  command: ["sh",\n  "-c"]\n  x: 1\n', { c: { command: ["sh", "-c"], x: 1 } }],
    [
      "a flow sequence holding a quoted scalar over two lines",
      "c:\n  - command: ['echo\n  hi', \"x\"]\n    y: 1\n",
      { c: [{ command: ["echo hi", "x"], y: 1 }] },
    ],
    ["a flow map", "m:\n  labels: {a: b,\n  c: d}\n  x: 1\n", { m: { labels: { a: "b", c: "d" }, x: 1 } }],
    ["brackets opened and closed on their own lines", 'a: [\n"--a",\n"--b"\n]\nb: 1\n', { a: ["--a", "--b"], b: 1 }],
    [
      "a JSON annotation in single quotes (sock-shop's init-containers)",
      'm:\n  i: \'[\n      {"name": "x"}\n  ]\'\n',
      { m: { i: '[ {"name": "x"} ]' } },
    ],
  ];
  for (const [name, text, want] of cases)
    test(name, () => {
      assert.ok(relaidContinuations(text) !== undefined, "a line is relaid");
      assert.deepEqual(read(text), want);
    });

  test("quotes and brackets inside plain scalars, comments and block scalars open nothing", () => {
    assert.deepEqual(read("a: it's\nb: x[1\nc: 'y\nz'\n"), { a: "it's", b: "x[1", c: "y z" });
    assert.deepEqual(read("a: b # it's [\nc: 'x\ny'\n"), { a: "b", c: "x y" });
    assert.deepEqual(read("a: |\n  'not [ a quote\nb: 'x\ny'\n"), { a: "'not [ a quote\n", b: "x y" });
    // A plain scalar over lines whose next line starts with a quote or a bracket.
    assert.deepEqual(read("a: 'x\ny'\nargs:\n- echo\n  'hello\n- --name='world'\n"), {
      a: "x y",
      args: ["echo 'hello", "--name='world'"],
    });
    const docs = parseYamlDocuments("a: 'x\ny'\n---\nargs:\n- a\n  [b\n- c]\n", MANIFEST_LIMITS);
    assert.deepEqual(docs, [{ a: "x y" }, { args: ["a [b", "c]"] }]);
    // A block scalar under a sequence entry's key, its sibling key after it; one on its own line.
    assert.deepEqual(read('env:\n- value: |\n    x\n  name: "A\nB"\n'), { env: [{ value: "x\n", name: "A B" }] });
    assert.deepEqual(read("m:\n  a: 'x\n y'\n  note:\n    |\n    'quoted\n  inject: 'false'\n"), {
      m: { a: "x y", note: "'quoted\n", inject: "false" },
    });
  });

  test("an escaped quote, then the line under-indented", () => {
    assert.deepEqual(read('m:\n  b: "x\\"\n y\\\\"\n  c: 1\n'), { m: { b: 'x" y\\', c: 1 } });
  });

  test("text the parser takes is not touched", () => {
    for (const text of [
      "a: 'x\n  y'\n",
      'a: "x\\\n  y\n\n  z"\n',
      "a: [1,\n  2, {b: c,\n   d: 'e\n   f'}]\n",
      "a: |\n  'x\nb: c\n",
      "- 'x\n  y'\n- [a,\n  b]\n",
      "a: b\nc: [d, e]\nf: 'g'\n",
    ])
      assert.equal(relaidContinuations(text), undefined, text);
  });

  test("a document marker at column 0 inside a quote still ends the document: refused, as go-yaml refuses it", () => {
    assert.throws(() => read("a: 'x\n---\ny'\n"), YamlSyntaxError);
    assert.throws(() => read("a: [1,\n...\n2]\n"), YamlSyntaxError);
  });

  test("a document the layout does not explain stays refused with the parser's own error", () => {
    assert.throws(
      () => read("a: 'x\n  y\nb: [1\n"),
      (e: unknown) => e instanceof YamlSyntaxError && /quote|flow|collection/i.test(e.message),
    );
  });
});
