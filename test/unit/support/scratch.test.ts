// The tests' temporary folders hold private keys: they go when the process exits, even when the
// file that made them failed before its own clean-up ran.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { removeScratchDirs, scratchDir } from "../../support/scratch.js";

const SCRATCH = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "support", "scratch.ts");

/** Runs a child that makes a folder, writes a key into it, prints its path and exits `code`. */
function childLeaves(code: number): string {
  const script =
    `import { scratchDir } from ${JSON.stringify(SCRATCH)};` +
    `import { writeFileSync } from "node:fs";` +
    `const d = scratchDir("scratch-test-"); writeFileSync(d + "/tls.key", "k");` +
    `process.stdout.write(d); process.exitCode = ${code};`;
  try {
    return execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
    });
  } catch (e) {
    const out = (e as { stdout?: string }).stdout;
    if (code !== 0 && typeof out === "string" && out !== "") return out;
    throw e;
  }
}

describe("scratchDir", () => {
  test("a folder is removed when its process exits", () => {
    const dir = childLeaves(0);
    assert.match(dir, /scratch-test-/);
    assert.equal(existsSync(dir), false);
  });

  test("a folder is removed when its process exits with a failure", () => {
    const dir = childLeaves(1);
    assert.match(dir, /scratch-test-/);
    assert.equal(existsSync(dir), false);
  });

  test("removeScratchDirs removes every folder made so far", () => {
    const a = scratchDir("scratch-test-");
    const b = scratchDir("scratch-test-");
    writeFileSync(join(a, "tls.key"), "k");
    assert.ok(existsSync(a) && existsSync(b));
    removeScratchDirs();
    assert.equal(existsSync(a), false);
    assert.equal(existsSync(b), false);
  });
});
