// The golden harness itself: an expected file is never created as a side effect of a run.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { assertMatchesExpected } from "../../support/expected.js";

describe("assertMatchesExpected", () => {
  const dir = mkdtempSync(join(tmpdir(), "expected-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a missing expected file fails and is not written", () => {
    const file = join(dir, "missing.injected");
    assert.throws(
      () => assertMatchesExpected(file, "output\n", "case", false),
      /expected file .*missing\.injected is missing/,
    );
    assert.equal(existsSync(file), false);
  });

  test("a different expected file fails, naming the file", () => {
    const file = join(dir, "differs.injected");
    writeFileSync(file, "old\n");
    assert.throws(() => assertMatchesExpected(file, "new\n", "case", false), /output differs from .*differs\.injected/);
    assert.equal(readFileSync(file, "utf8"), "old\n");
  });

  test("an equal expected file passes", () => {
    const file = join(dir, "same.injected");
    writeFileSync(file, "same\n");
    assert.doesNotThrow(() => assertMatchesExpected(file, "same\n", "case", false));
  });

  test("update writes the file, then compares", () => {
    const file = join(dir, "updated.injected");
    assertMatchesExpected(file, "fresh\n", "case", true);
    assert.equal(readFileSync(file, "utf8"), "fresh\n");
  });
});
