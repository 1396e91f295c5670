// Composition root for `serve`: config -> certificates -> logger/metrics -> express app ->
// HTTPS server; readiness, certificate reload, and draining on SIGTERM/SIGINT.

import { resolve } from "node:path";
import { createApp } from "./admission/server.js";
import { DEFAULT_HOST, startServer, type RunningServer } from "./admission/https.js";
import {
  loadCertificateFiles,
  watchCertificateFiles,
  type CertificatePair,
  type CertificateWatch,
} from "./certs/files.js";
import { ensureLocalCertificates } from "./certs/local.js";
import { loadConfig } from "./config/load.js";
import { createLogger } from "./telemetry/logger.js";
import { createMetrics } from "./telemetry/metrics.js";

export const DEFAULT_PORT = 9443;
/** Kubernetes gives a terminating Pod 30 s by default; leave room for the exit. */
export const DRAIN_TIMEOUT_MS = 15_000;
/** How often local certificates are checked for renewal in a long-running `npm start`. */
const LOCAL_RENEW_CHECK_MS = 12 * 60 * 60 * 1000;

export interface ServeOptions {
  /** YAML config file; defaults apply when absent. */
  readonly configFile?: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 9443; 0 picks a free port. */
  readonly port?: number;
  /** Serving certificate and key files (both or neither); watched and reloaded. */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Folder for local certificates when no files are given; default `certs/` under the cwd. */
  readonly certDir?: string;
  /** pino level; default info. */
  readonly logLevel?: string;
}

export interface ServeHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Drains and stops the server (what SIGTERM does, without exiting the process). */
  close(): Promise<void>;
}

/**
 * Starts the webhook and resolves once it is serving and ready. SIGTERM and SIGINT drain it
 * and exit the process with status 0; a second signal during the drain ends it at once.
 */
export async function runServe(opts: ServeOptions = {}): Promise<ServeHandle> {
  const logger = createLogger({ level: opts.logLevel ?? "info" });
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new Error("--tls-cert and --tls-key must be given together");
  }
  const config = await loadConfig(opts.configFile);
  const metrics = createMetrics();

  let tls: { cert: string; key: string };
  let filePair: CertificatePair | undefined;
  let watch: CertificateWatch | undefined;
  let renew: ReturnType<typeof setInterval> | undefined;
  const certDir = resolve(opts.certDir ?? "certs");
  if (opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
    filePair = await loadCertificateFiles(opts.tlsCert, opts.tlsKey);
    tls = filePair;
    logger.info({ cert: opts.tlsCert, notAfter: filePair.notAfter }, "serving certificate loaded from files");
  } else {
    const local = await ensureLocalCertificates(certDir);
    tls = local;
    logger.info(
      { dir: certDir, generated: local.generated, reason: local.reason || undefined, notAfter: local.notAfter },
      local.generated.leaf ? "local certificates generated" : "local certificates reused",
    );
  }

  // Set once the server is listening with a certificate loaded: ready from then on, until draining.
  let server: RunningServer | undefined = undefined;
  const app = createApp({
    config,
    logger,
    metrics,
    isReady: () => server !== undefined && !server.draining,
    // Left to `nativeSidecars: auto` resolution once the kube client reports kubelet versions.
  });

  const running = await startServer({
    app,
    port: opts.port ?? DEFAULT_PORT,
    host: opts.host ?? DEFAULT_HOST,
    tls,
  });
  server = running;

  if (filePair !== undefined && opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
    watch = watchCertificateFiles(
      opts.tlsCert,
      opts.tlsKey,
      filePair,
      (pair) => {
        running.setCertificate(pair.cert, pair.key);
        logger.info({ cert: opts.tlsCert, notAfter: pair.notAfter }, "serving certificate reloaded");
      },
      { onError: (err) => logger.warn({ file: err.file, message: err.message }, "serving certificate not reloaded") },
    );
  } else {
    renew = setInterval(() => {
      ensureLocalCertificates(certDir).then(
        (local) => {
          if (!local.generated.leaf) return;
          running.setCertificate(local.cert, local.key);
          logger.info({ dir: certDir, reason: local.reason, notAfter: local.notAfter }, "local certificates renewed");
        },
        (err: unknown) => logger.warn({ err, dir: certDir }, "local certificates not renewed"),
      );
    }, LOCAL_RENEW_CHECK_MS);
    renew.unref();
  }

  const url = `https://${running.host.includes(":") ? `[${running.host}]` : running.host}:${running.port}`;
  logger.info({ url, revision: config.revision }, "sidecar injector serving");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      watch?.close();
      if (renew !== undefined) clearInterval(renew);
      const started = Date.now();
      await running.close(DRAIN_TIMEOUT_MS);
      logger.info({ durationMs: Date.now() - started }, "server stopped");
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal, inFlight: running.inFlight }, "draining");
    // A second signal while draining is not caught any more: the process ends at once.
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "drain failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);

  return { host: running.host, port: running.port, url, close };
}
