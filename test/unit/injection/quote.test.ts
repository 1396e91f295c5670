import { test } from "node:test";
import assert from "node:assert/strict";
import { quote, QUOTE_MAX_CHARS } from "../../../src/injection/quote.js";

test("short values are quoted whole, as JSON", () => {
  assert.equal(quote("100m"), '"100m"');
  assert.equal(quote('a"b\n'), '"a\\"b\\n"');
});

test("long values are cut to a bounded prefix with their length", () => {
  const long = "x".repeat(200_000);
  const q = quote(long);
  assert.ok(q.length < QUOTE_MAX_CHARS + 40, `quoted length ${q.length}`);
  assert.match(q, /^"x+…" \(200000 characters\)$/);
});

test("a cut never splits a surrogate pair", () => {
  const value = `${"a".repeat(QUOTE_MAX_CHARS - 1)}😀${"b".repeat(10)}`;
  const q = quote(value);
  assert.doesNotMatch(JSON.parse(q.slice(0, q.indexOf(" ("))), /[\ud800-\udbff](?![\udc00-\udfff])/);
});
