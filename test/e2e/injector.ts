// The injector under test: the built program (`node dist/cli.js serve`), run as its own
// process on 127.0.0.1 with a serving certificate for 127.0.0.1 signed by a test CA.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureLocalCertificates } from "../../src/certs/local.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "cli.js");

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => ok(port));
    });
  });
}

export interface TestCerts {
  readonly dir: string;
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export async function testCertificates(): Promise<TestCerts> {
  const dir = mkdtempSync(join(tmpdir(), "e2e-certs-"));
  await ensureLocalCertificates(dir);
  return { dir, caPem: readFileSync(join(dir, "ca.crt"), "utf8"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
}

export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(url, { ca, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end();
  });
}

export class Injector {
  private child: ChildProcess | undefined;
  private log = "";
  private configDir = mkdtempSync(join(tmpdir(), "e2e-injector-"));

  constructor(
    readonly port: number,
    private readonly certs: TestCerts,
  ) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Starts `serve` with the given config text and waits until /readyz answers 200. */
  async start(configText = "{}\n"): Promise<void> {
    if (this.child) throw new Error("injector already running");
    const configFile = join(this.configDir, "config.yaml");
    writeFileSync(configFile, configText);
    this.log = "";
    const child = spawn(
      process.execPath,
      [CLI, "serve", "--host", "127.0.0.1", "--port", String(this.port), "--tls-cert", this.certs.certFile, "--tls-key", this.certs.keyFile, "--config", configFile, "--log-level", "warn"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    child.stdout?.setEncoding("utf8").on("data", (c: string) => (this.log += c));
    child.stderr?.setEncoding("utf8").on("data", (c: string) => (this.log += c));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`injector exited with ${child.exitCode}:\n${this.log}`);
      try {
        if ((await httpsGet(`${this.url}/readyz`, this.certs.caPem)).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`injector not ready within 20 s:\n${this.log}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** The value of a counter (summed over its labels) from /metrics. */
  async counter(name: string): Promise<number> {
    const { body } = await httpsGet(`${this.url}/metrics`, this.certs.caPem);
    let sum = 0;
    for (const line of body.split("\n")) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.configDir, { recursive: true, force: true });
  }
}
