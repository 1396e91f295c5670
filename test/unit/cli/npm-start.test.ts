// `npm start`, as the README's set-up runs it: SIGTERM to npm (what a process manager or a
// terminal's `kill` sends to the command it started) reaches the injector, which drains and
// exits, and nothing is left listening. npm forwards the signal to its script's process, so
// that process must be the injector itself (`exec`), not a shell that would die and leave it
// running. Pre-scripts skipped (--ignore-scripts): the suite's dist/ is already built, and a
// rebuild here would rewrite it under the tests running beside this one.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..", "..", "..");

test("npm start: SIGTERM to npm drains the injector and leaves no process behind", { timeout: 120_000 }, async () => {
  const certDir = mkdtempSync(join(tmpdir(), "npm-start-"));
  const npm = spawn("npm", ["start", "--ignore-scripts", "--", "--port", "0", "--cert-dir", certDir], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SIDECAR_INJECTOR_LOG_FORMAT: "json" },
  });
  let out = "";
  npm.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  npm.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => npm.once("exit", (code) => r(code)));
  try {
    await new Promise<void>((ready, fail) => {
      const check = (): void => {
        if (out.includes('"msg":"sidecar injector serving"')) ready();
      };
      npm.stdout.on("data", check);
      void exited.then(() => fail(new Error(`npm start ended before serving:\n${out}`)));
    });
    npm.kill("SIGTERM");
    await exited;
    // The injector's own lines: it was told, and it stopped.
    const stopped = async (): Promise<boolean> => {
      for (let i = 0; i < 200; i++) {
        if (out.includes('"msg":"server stopped"')) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    };
    assert.ok(await stopped(), `the injector did not drain:\n${out}`);
    assert.match(out, /"signal":"SIGTERM"[^\n]*"msg":"draining"/);
    const left = spawnSync("pgrep", ["-f", certDir], { encoding: "utf8" });
    assert.equal(left.stdout.trim(), "", "no injector left running");
  } finally {
    npm.kill("SIGKILL");
    spawnSync("pkill", ["-KILL", "-f", certDir]);
    rmSync(certDir, { recursive: true, force: true });
  }
});
