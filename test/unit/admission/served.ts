// A real `serve` process for tests: the CLI under tsx, its JSON log lines parsed as they come,
// and the address it logs once serving. Which process did what is read from the log lines
// (pino writes the pid of the process on every line).
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { resolve } from "node:path";

export const CLI = resolve("src/cli.ts");
/** Starting a worker under tsx on a saturated 2-core machine takes seconds: waits are generous, and only bound
 * failures. */
export const START_TIMEOUT_MS = 120_000;

export type LogLine = Record<string, unknown> & { msg?: string; pid?: number };

export interface Served {
  readonly child: ChildProcessWithoutNullStreams;
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly pids: number[];
  readonly exited: Promise<number | null>;
  lines(): LogLine[];
  stderr(): string;
  /** Resolves with the first line (from the start) that matches; rejects at the timeout. */
  waitFor(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export interface ServeProcessOptions {
  /** The environment of the process (default: this one's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Node flags after `--import tsx` (a worker runs with them too). */
  readonly nodeArgs?: readonly string[];
}

/** A `serve` process just spawned: its log lines as they come, nothing waited for yet. */
export interface Started {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  lines(): LogLine[];
  stderr(): string;
  /**
   * Resolves with the first line (from the start) that matches; rejects at the timeout, or
   * once the process has exited without one.
   */
  waitFor(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export function startServe(args: readonly string[], opts: ServeProcessOptions = {}): Started {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", ...(opts.nodeArgs ?? []), CLI, "serve", "--port", "0", ...args],
    {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
    },
  );
  let out = "";
  let err = "";
  const parsed: LogLine[] = [];
  const waiters = new Set<() => void>();
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const nl = out.lastIndexOf("\n");
    if (nl < 0) return;
    for (const line of out.slice(0, nl).split("\n")) if (line.startsWith("{")) parsed.push(JSON.parse(line) as LogLine);
    out = out.slice(nl + 1);
    for (const w of waiters) w();
  });
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  let ended = false;
  const exited = new Promise<number | null>((r) =>
    child.on("exit", (code) => {
      ended = true;
      r(code);
      for (const w of waiters) w();
    }),
  );
  const waitFor = (match: (l: LogLine) => boolean, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> =>
    new Promise((ok, fail) => {
      const check = (): void => {
        const found = parsed.find(match);
        if (found === undefined && !ended) return;
        waiters.delete(check);
        clearTimeout(timer);
        if (found !== undefined) ok(found);
        else fail(new Error(`exited without a matching log line; stderr: ${err}`));
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        fail(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { child, exited, lines: () => parsed, stderr: () => err, waitFor };
}

export async function serve(args: readonly string[], opts: ServeProcessOptions = {}): Promise<Served> {
  const started = startServe(args, opts);
  const { child, exited } = started;
  const serving = await Promise.race([
    started.waitFor((l) => l.msg === "sidecar injector serving"),
    exited.then((code) => {
      throw new Error(`serve exited ${code}: ${started.stderr()}`);
    }),
  ]);
  const url = new URL(String(serving.url));
  const adminPort = typeof serving.adminUrl === "string" ? Number(new URL(serving.adminUrl).port) : undefined;
  return {
    child,
    port: Number(url.port),
    adminPort,
    pids: serving.pids as number[],
    exited,
    lines: started.lines,
    stderr: started.stderr,
    waitFor: started.waitFor,
  };
}
