// The bundler's options (scripts/bundle.mjs): names are not kept (no per-closure renaming
// call), and the build's check finds a class of ours that the bundler renamed because two
// modules declare the same top-level name, which would make logs name it wrongly.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { build } from "esbuild";
import { bundleOptions, checkClassNames } from "../../../scripts/bundle.mjs";

function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "bundle-test-"));
  mkdirSync(join(root, "src"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, "src", name), text);
  return root;
}

async function bundle(root: string): Promise<string> {
  const out = join(root, "out", "main.js");
  await build({ ...bundleOptions(root, out), entryPoints: [join(root, "src", "main.ts")], logLevel: "silent" });
  return out;
}

test("two modules declaring one class name: the build's check names the renamed class", async () => {
  const root = project({
    "a.ts": "export class Problem extends Error {}\nexport class Only {}\n",
    "b.ts": "export class Problem extends Error {}\n",
    "main.ts":
      'import * as a from "./a.js";\nimport * as b from "./b.js";\nconsole.log(new a.Problem().constructor.name, new b.Problem().constructor.name, new a.Only());\n',
  });
  try {
    const out = await bundle(root);
    assert.deepEqual(checkClassNames(root, [out]), ["Problem"]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("distinct names: every class keeps its name, and no closure is wrapped to keep one", async () => {
  const root = project({
    "a.ts": "export class Problem extends Error {}\nexport const each = (xs: number[]) => xs.map((x) => x + 1);\n",
    "main.ts": 'import { Problem, each } from "./a.js";\nconsole.log(new Problem().constructor.name, each([1]));\n',
  });
  try {
    const out = await bundle(root);
    assert.deepEqual(checkClassNames(root, [out]), []);
    assert.doesNotMatch(readFileSync(out, "utf8"), /__name\(/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the shipped bundles: every class of src/ under its own name", () => {
  const root = join(import.meta.dirname, "..", "..", "..");
  const bundles = ["cli.js", "workers/entry.js", "admission/review-worker.js"].map((f) => join(root, "dist", f));
  assert.deepEqual(checkClassNames(root, bundles), []);
});
