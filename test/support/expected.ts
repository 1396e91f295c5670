// Expected-output files for golden tests. They change only on request: with
// `UPDATE_GOLDEN=1` the actual output is written (review the diff before committing);
// otherwise a missing file is a failure, never a file written and then compared with itself.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === "1";

/** Asserts that `actual` equals the content of `file` (writing it first when `update`). */
export function assertMatchesExpected(file: string, actual: string, what: string, update = UPDATE_GOLDEN): void {
  if (update) writeFileSync(file, actual);
  assert.ok(
    existsSync(file),
    `${what}: expected file ${file} is missing (write it with UPDATE_GOLDEN=1 and review it)`,
  );
  assert.equal(actual, readFileSync(file, "utf8"), `${what}: output differs from ${file} (UPDATE_GOLDEN=1 to refresh)`);
}
