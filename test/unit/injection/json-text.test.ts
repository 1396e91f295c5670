// json-text.ts writes by hand what JSON.stringify would: checked against JSON.stringify itself
// over strings built from every kind of character JSON treats apart (control characters, the
// quote, the backslash, lone and paired surrogates, the line separators it leaves alone, plain
// ASCII and beyond), at lengths on both sides of the short-string loop's bound, and numbers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonScalar, jsonString, plainJsonString } from "../../../src/injection/json-text.js";

const PIECES = [
  "a",
  "Z",
  "0",
  "-",
  "/",
  " ",
  '"',
  "\\",
  "\n",
  "\t",
  "\u0000",
  "\u001f",
  "\u007f",
  "é",
  "\u2028",
  "\ud83d\ude00",
  "\ud83d",
  "\ude00",
  "~1",
  "€",
];

/** Deterministic pseudo-random strings of the pieces above (no Math.random: a failure reproduces). */
function* strings(count: number): Generator<string> {
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < count; i++) {
    const length = [0, 1, 5, 63, 64, 65, 200][i % 7] ?? 0;
    let s = "";
    // Mostly plain, with one piece of another kind now and then.
    while (s.length < length) s += next(4) === 0 ? (PIECES[next(PIECES.length)] ?? "") : "abcdefgh"[next(8)];
    yield s;
  }
}

describe("json-text", () => {
  it("jsonString writes what JSON.stringify writes, for every kind of character", () => {
    let escaped = 0;
    for (const s of strings(5000)) {
      assert.equal(jsonString(s), JSON.stringify(s), `for ${JSON.stringify(s)}`);
      if (!plainJsonString(s)) escaped++;
    }
    // Both branches were taken.
    assert.ok(escaped > 100 && escaped < 5000, `escaped ${escaped}`);
  });

  it("plainJsonString: true only for a short string JSON writes as it is", () => {
    for (const s of strings(5000)) {
      if (plainJsonString(s)) assert.equal(JSON.stringify(s), `"${s}"`, `for ${JSON.stringify(s)}`);
    }
    assert.equal(plainJsonString("x".repeat(64)), true);
    assert.equal(plainJsonString("x".repeat(65)), false, "long strings are left to JSON.stringify");
    for (const c of ['"', "\\", "\u0000", "\u001f", "\ud800", "\udfff"]) assert.equal(plainJsonString(`a${c}b`), false);
    for (const c of ["\u007f", "\u2028", "é", "\ue000"]) assert.equal(plainJsonString(`a${c}b`), true);
  });

  it("jsonScalar writes numbers and port names as JSON.stringify does", () => {
    for (const v of [0, 1, 8080, 65535, -1, 1.5, 1e21, 2 ** 53, -0, "http", 'a"b', "x".repeat(100)])
      assert.equal(jsonScalar(v), JSON.stringify(v), `for ${String(v)}`);
    for (const v of [NaN, Infinity, -Infinity]) assert.equal(jsonScalar(v), "null");
  });
});
