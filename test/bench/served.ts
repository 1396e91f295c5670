// The built `serve` in its own processes, for the benchmarks that measure it over HTTPS:
// started on a loopback port with local certificates in a scratch directory, waited on until
// /readyz answers 200.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "../support/https.js";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ServedBench {
  readonly url: string;
  readonly dir: string;
  /** The CA the server's local certificates are issued by. */
  readonly caFile: string;
  /** Starts `serve --workers N` and resolves once /readyz answers 200 (within 30 s). */
  start(workers: number): Promise<ChildProcess>;
  /** Removes the scratch directory. */
  dispose(): void;
}

export function servedBench(name: string, basePort: number, logLevel: "silent" | "warn"): ServedBench {
  const port = basePort + Math.floor(Math.random() * 1000);
  const url = `https://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const ready = (): Promise<boolean> =>
    request(`${url}/readyz`, { insecure: true }).then(
      (r) => r.status === 200,
      () => false,
    );
  return {
    url,
    dir,
    caFile: join(dir, "certs", "ca.crt"),
    async start(workers) {
      const args = [
        join(root, "dist", "cli.js"),
        "serve",
        "--port",
        String(port),
        "--cert-dir",
        join(dir, "certs"),
        "--log-level",
        logLevel,
        "--workers",
        String(workers),
      ];
      const server = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
      for (let i = 0; i < 300 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 100));
      if (!(await ready())) {
        server.kill("SIGKILL");
        throw new Error(`serve --workers ${workers} did not become ready on ${url}`);
      }
      return server;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
