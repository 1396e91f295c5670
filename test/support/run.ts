// Runs a program to its end and gathers what it printed: the one way tests run the built CLI
// (or a shell) as a user would. No timing: a hung program is the test runner's timeout.
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The built CLI (`npm test` builds it first). */
export const BUILT_CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), "..", ".."), "dist", "cli.js");

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  /** The whole environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Written to stdin, then closed; none: stdin is /dev/null. */
  readonly stdin?: string;
}

export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    if (child.stdout === null || child.stderr === null) throw new Error("no pipes to the child");
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", fail);
    child.on("close", (code) => ok({ code, stdout, stderr }));
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  });
}

/** The built CLI with `args`, run by this Node. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  return run(process.execPath, [BUILT_CLI, ...args], opts);
}
