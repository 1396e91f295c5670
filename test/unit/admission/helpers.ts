// Shared by the HTTPS tests: certificates from ensureLocalCertificates in a temp dir, a server
// on 127.0.0.1 port 0, and a client that trusts the generated CA.

export { podReview } from "../../support/review.js";
export { captureLogs, type LogCapture } from "../../support/logs.js";
export { JSON_HEADERS, send, type ClientRequest, type ClientResponse } from "../../support/https.js";
import { captureLogs, type LogCapture } from "../../support/logs.js";
import { send, type ClientRequest, type ClientResponse } from "../../support/https.js";
import { rm } from "node:fs/promises";
import { scratchDir } from "../../support/scratch.js";
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
    const dir = scratchDir("sidecar-injector-test-");
    return { dir, certs: await ensureLocalCertificates(dir) };
  })();
  return certs.then((c) => c.certs);
}

export async function removeTestCertificates(): Promise<void> {
  if (certs) await rm((await certs).dir, { recursive: true, force: true });
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

export function responseOf(res: ClientResponse): Record<string, unknown> {
  const body = res.json();
  const response = body.response;
  if (typeof response !== "object" || response === null) throw new Error(`no response in ${res.body}`);
  return response as Record<string, unknown>;
}
