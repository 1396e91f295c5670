// The Dockerfile's build stage, run on exactly the files it copies: every file the build reads
// must be among them (a script the build script imports, a config file), or `docker build`
// fails where the repository's own build succeeds. No Docker engine here: the stage's COPY
// lines are read, those paths copied into an empty folder beside the repository's
// node_modules (what its `npm ci` installs), and its `npm run build` run there.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..", "..", "..");

/** The sources of the COPY lines of the stage named `stage` (not --from ones), and its RUN lines. */
function stageOf(dockerfile: string, stage: string): { copies: string[]; runs: string[] } {
  const copies: string[] = [];
  const runs: string[] = [];
  let inStage = false;
  // Continuation lines joined, comments dropped.
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n");
  for (const line of lines.map((l) => l.trim())) {
    if (line.startsWith("FROM ")) inStage = new RegExp(`\\sAS\\s+${stage}$`, "i").test(line);
    else if (inStage && line.startsWith("COPY ") && !line.includes("--from=")) {
      const words = line.split(/\s+/).slice(1);
      copies.push(...words.slice(0, -1));
    } else if (inStage && line.startsWith("RUN ")) runs.push(line.slice(4));
  }
  return { copies, runs };
}

test("the image's build stage builds dist/ from the files it copies", { timeout: 180_000 }, () => {
  const { copies, runs } = stageOf(readFileSync(join(root, "Dockerfile"), "utf8"), "build");
  assert.ok(copies.includes("src"), `the stage copies ${copies.join(", ")}`);
  assert.ok(runs.includes("npm run build"), "the stage runs npm run build");
  const dir = mkdtempSync(join(tmpdir(), "image-build-"));
  try {
    for (const path of copies) {
      assert.ok(existsSync(join(root, path)), `${path}, copied by the Dockerfile, exists`);
      cpSync(join(root, path), join(dir, path), { recursive: true });
    }
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
    const r = spawnSync("npm", ["run", "build"], { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, `npm run build on the copied files failed:\n${r.stdout}\n${r.stderr}`);
    // What the runtime stage takes from it runs.
    const version = execFileSync(process.execPath, [join(dir, "dist", "cli.js"), "version"], { encoding: "utf8" });
    assert.match(version, /\d+\.\d+\.\d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
