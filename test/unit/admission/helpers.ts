// Shared by the HTTPS tests: certificates from ensureLocalCertificates in a temp dir, a server
// on 127.0.0.1 port 0, and a client that trusts the generated CA.

export { podReview } from "../../support/review.js";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createApp, overloadHandler, type AppOptions } from "../../../src/admission/server.js";
import { startServer, type RunningServer, type StartServerOptions } from "../../../src/admission/https.js";
import { ensureLocalCertificates, type LocalCertificates } from "../../../src/certs/local.js";
import { buildConfig } from "../../../src/config/load.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { createMetrics, type Metrics } from "../../../src/telemetry/metrics.js";

let certs: Promise<{ dir: string; certs: LocalCertificates }> | undefined;

/** One set of certificates per test file (a process under node --test). */
export function testCertificates(): Promise<LocalCertificates> {
  certs ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "sidecar-injector-test-"));
    return { dir, certs: await ensureLocalCertificates(dir) };
  })();
  return certs.then((c) => c.certs);
}

export async function removeTestCertificates(): Promise<void> {
  if (certs) await rm((await certs).dir, { recursive: true, force: true });
}

export interface LogCapture {
  readonly stream: Writable;
  lines(): Record<string, unknown>[];
  text(): string;
}

export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const text = (): string => chunks.join("");
  return {
    stream,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface TestServer {
  readonly running: RunningServer;
  readonly metrics: Metrics;
  readonly logs: LogCapture;
  readonly ca: string;
  setReady(v: boolean): void;
  request(req: ClientRequest): Promise<ClientResponse>;
  close(): Promise<void>;
}

export async function startTestServer(
  app: Partial<AppOptions> = {},
  server: Partial<Omit<StartServerOptions, "app" | "tls">> = {},
): Promise<TestServer> {
  const c = await testCertificates();
  const logs = captureLogs();
  const metrics = app.metrics ?? createMetrics();
  let ready = true;
  let running: RunningServer | undefined = undefined;
  const logger = createLogger({ destination: logs.stream });
  const expressApp = createApp({
    config: buildConfig({}),
    logger,
    metrics,
    isReady: () => ready && running !== undefined && !running.draining,
    ...app,
  });
  running = await startServer({
    app: expressApp,
    port: 0,
    host: "127.0.0.1",
    tls: c,
    onOverload: overloadHandler(metrics, logger),
    ...server,
  });
  const r = running;
  return {
    running: r,
    metrics,
    logs,
    ca: c.ca,
    setReady: (v) => {
      ready = v;
    },
    request: (req) => send(r.port, c.ca, req),
    close: () => r.close(1000),
  };
}

export interface ClientRequest {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string | number>;
  /** Sent with Content-Length unless `chunked` is set. */
  readonly body?: string | Buffer;
  readonly chunked?: boolean;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json(): Record<string, unknown>;
}

export function send(port: number, ca: string, req: ClientRequest): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
    const headers: Record<string, string | number> = { ...req.headers };
    if (body !== undefined && !req.chunked) headers["content-length"] = body.length;
    const r = https.request(
      { host: "127.0.0.1", port, ca, method: req.method ?? "POST", path: req.path ?? "/inject", headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    if (body !== undefined && req.chunked) {
      // Several chunks, so the server sees a stream without a declared length.
      const step = 64 * 1024;
      for (let i = 0; i < body.length; i += step) r.write(body.subarray(i, i + step));
    } else if (body !== undefined) {
      r.write(body);
    }
    r.end();
  });
}

export const JSON_HEADERS = { "content-type": "application/json" };

export function responseOf(res: ClientResponse): Record<string, unknown> {
  const body = res.json();
  const response = body.response;
  if (typeof response !== "object" || response === null) throw new Error(`no response in ${res.body}`);
  return response as Record<string, unknown>;
}
