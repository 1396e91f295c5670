// The injector under test: the built program (`node dist/cli.js serve`), run as its own
// process on 127.0.0.1, either with a serving certificate for 127.0.0.1 signed by a test CA
// (files), or managing its own certificates against the cluster (`--cert-mode kubernetes`).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureLocalCertificates } from "../../src/certs/local.js";
import { request } from "../support/https.js";
import { scratchDir } from "../support/scratch.js";

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
  const dir = scratchDir("e2e-certs-");
  await ensureLocalCertificates(dir);
  return {
    dir,
    caPem: readFileSync(join(dir, "ca.crt"), "utf8"),
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
  };
}

export interface HttpsOptions {
  method?: string;
  body?: string;
  contentType?: string;
  timeoutMs?: number;
  /** Skip verifying the server's certificate (e.g. polling /readyz before any CA is known). */
  insecure?: boolean;
}

/**
 * An HTTPS request verified against `ca` (PEM; several certificates allowed), through the tests'
 * one client: GET unless told, a body sent as JSON unless told, 2 s to answer unless told.
 */
export async function httpsRequest(
  url: string,
  ca: string | undefined,
  options: HttpsOptions = {},
): Promise<{ status: number; body: string }> {
  const { body, contentType = "application/json", timeoutMs = 2000, method = "GET", insecure } = options;
  return request(url, {
    method,
    timeoutMs,
    ...(ca === undefined ? {} : { ca }),
    ...(insecure ? { insecure } : {}),
    ...(body === undefined ? {} : { body, headers: { "Content-Type": contentType } }),
  });
}

/** Sum of a metric's samples in a Prometheus text exposition whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    const open = line.indexOf("{");
    const labelText = open === -1 ? "" : line.slice(open + 1, line.lastIndexOf("}"));
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export interface InjectorOptions {
  /** Serve these files (`--tls-cert`/`--tls-key`). Without them, `args` choose the certificate mode. */
  certs?: TestCerts;
  /** Extra `serve` arguments, e.g. `["--cert-mode", "kubernetes", "--namespace", "ns"]`. */
  args?: string[];
  /** Environment of the process (default: this one's), e.g. the cluster's for KUBECONFIG. */
  env?: NodeJS.ProcessEnv;
  /** `--log-level`; default warn. */
  logLevel?: string;
  /** How long start() waits for /readyz 200; default 20 s. */
  readyTimeoutMs?: number;
  /** `serve --istio-config` with this `NS[/REV]` instead of `--config` (start()'s config text is not used). */
  istioConfig?: string;
}

export class Injector {
  private child: ChildProcess | undefined;
  private log = "";
  private configDir = scratchDir("e2e-injector-");
  private readonly options: InjectorOptions;

  constructor(
    readonly port: number,
    certsOrOptions: TestCerts | InjectorOptions = {},
  ) {
    this.options = "certFile" in certsOrOptions ? { certs: certsOrOptions } : certsOrOptions;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Everything the process wrote to stdout and stderr since its last start. */
  get output(): string {
    return this.log;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts `serve` with the given config text and waits until /readyz answers 200 (without
   * verifying the certificate when no test CA is given: a self-managed CA is not known yet).
   */
  async start(configText = "{}\n"): Promise<void> {
    if (this.child) throw new Error("injector already running");
    const configFile = join(this.configDir, "config.yaml");
    writeFileSync(configFile, configText);
    this.log = "";
    const { certs, args = [], env = process.env, logLevel = "warn", readyTimeoutMs = 20_000 } = this.options;
    const tls = certs ? ["--tls-cert", certs.certFile, "--tls-key", certs.keyFile] : [];
    const child = spawn(
      process.execPath,
      [
        CLI,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        String(this.port),
        ...tls,
        ...(this.options.istioConfig === undefined
          ? ["--config", configFile]
          : ["--istio-config", this.options.istioConfig]),
        "--log-level",
        logLevel,
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env },
    );
    this.child = child;
    child.stdout?.setEncoding("utf8").on("data", (c: string) => (this.log += c));
    child.stderr?.setEncoding("utf8").on("data", (c: string) => (this.log += c));
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`injector exited with ${child.exitCode}:\n${this.log}`);
      try {
        if ((await httpsRequest(`${this.url}/readyz`, certs?.caPem, { insecure: !certs })).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`injector not ready within ${readyTimeoutMs / 1000} s:\n${this.log}`);
  }

  /** Sends `signal` and resolves with how the process ended (SIGKILL after `killAfterMs`). */
  async terminate(
    signal: NodeJS.Signals = "SIGTERM",
    killAfterMs = 60_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child) throw new Error("injector not running");
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once("exit", (code, sig) => r({ code, signal: sig })),
    );
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    const result = await exited;
    clearTimeout(timer);
    this.child = undefined;
    return result;
  }

  /** Sends `signal` to the running process without waiting for anything. */
  signal(signal: NodeJS.Signals): void {
    if (!this.child) throw new Error("injector not running");
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** The CA to verify the injector with: the given one, else the test CA of its files. */
  private caFor(ca: string | undefined): string {
    const pem = ca ?? this.options.certs?.caPem;
    if (!pem) throw new Error("no CA to verify the injector with: pass one (e.g. the published caBundle)");
    return pem;
  }

  /** GET /metrics, verified against `ca` (default: the test CA). */
  async metrics(ca?: string): Promise<string> {
    const { status, body } = await httpsRequest(`${this.url}/metrics`, this.caFor(ca));
    if (status !== 200) throw new Error(`GET /metrics: ${status} ${body.slice(0, 200)}`);
    return body;
  }

  /** The value of a counter (summed over its labels) from /metrics. */
  async counter(name: string, ca?: string): Promise<number> {
    return metricValue(await this.metrics(ca), name) ?? 0;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.configDir, { recursive: true, force: true });
  }
}
