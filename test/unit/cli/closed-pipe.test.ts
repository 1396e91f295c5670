// A reader that stops early (`sidecar-injector policy render | head`) closes the pipe under a
// command still writing (megabytes of output, more than a pipe holds): the built CLI stops
// quietly with 141 (128 + SIGPIPE), as Unix tools do, with no error on stderr (before: an
// unhandled EPIPE 'error' event and a stack trace).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", ".."), "dist", "cli.js");

/** Runs the CLI, closes its stdout after the first chunk, and says how it ended and what it wrote on stderr. */
function readOneChunk(
  args: readonly string[],
  stdin: string,
): Promise<{ code: number | null; stderr: string; read: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    let read = 0;
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdout.once("data", (d: Buffer) => {
      read = d.length;
      child.stdout.destroy();
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, stderr, read }));
    child.stdin.end(stdin);
  });
}

const pods = Array.from(
  { length: 400 },
  (_, i) => `apiVersion: v1\nkind: Pod\nmetadata: {name: p${i}}\nspec: {containers: [{name: app, image: nginx}]}\n`,
).join("---\n");

for (const [what, args] of [
  ["inject", ["inject", "-f", "-"]],
  ["preview -o yaml", ["preview", "-f", "-", "-o", "yaml"]],
  ["preview -o json", ["preview", "-f", "-", "-o", "json"]],
] as const) {
  test(`${what}: a closed stdout ends it with 141, no error on stderr`, async () => {
    const r = await readOneChunk(args, pods);
    assert.ok(r.read > 0, "something was written before the pipe closed");
    assert.equal(r.code, 141, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|error|\n\s+at /i);
  });
}
