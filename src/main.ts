// Composition root for `serve`: config -> certificates -> logger/metrics -> express app ->
// HTTPS server; readiness, certificate reload, and draining on SIGTERM/SIGINT.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createApp, overloadHandler, type AppEndpoints } from "./admission/server.js";
import { DEFAULT_HOST, startServer, type RunningServer } from "./admission/https.js";
import { createTlsFailureReporter } from "./admission/tls-failures.js";
import {
  loadCertificateFiles,
  watchCertificateFiles,
  type CertificatePair,
  type CertificateWatch,
} from "./certs/files.js";
import { ensureLocalCertificates } from "./certs/local.js";
import { DEFAULT_NAMES, type CertMode } from "./certs/modes.js";
import { createCa, mintServingCert } from "./certs/authority.js";
import { CertManager, createCertMetrics, type CertManagerOptions } from "./certs/manager.js";
import { createKubeApi, type KubeApi } from "./kube/client.js";
import { NativeSidecarDetector } from "./kube/nodes.js";
import { loadConfig } from "./config/load.js";
import { createLogger } from "./telemetry/logger.js";
import { createMetrics } from "./telemetry/metrics.js";

export const DEFAULT_PORT = 9443;
/**
 * After SIGTERM (and the shutdown delay): how long in-flight reviews and kept-alive clients
 * get. The chart's terminationGracePeriodSeconds covers its preStop sleep, the shutdown delay
 * and this, with room for the exit.
 */
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
  /**
   * A second listener for /preview and /metrics (and health), which then leave the webhook
   * port; 0 picks a free port. Default: one listener serves everything.
   */
  readonly adminPort?: number;
  /** Serving certificate and key files (both or neither); watched and reloaded. */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Folder for local certificates when no files are given; default `certs/` under the cwd. */
  readonly certDir?: string;
  /** pino level; default info. */
  readonly logLevel?: string;
  /** local (default without files), files (default with --tls-cert), or kubernetes (self-managed). */
  readonly certMode?: CertMode;
  /** kubernetes mode settings; see KubernetesCertOptions. */
  readonly kubernetes?: Partial<KubernetesCertOptions>;
  /**
   * After SIGTERM, keep accepting connections this long while not ready, each response
   * closing its connection (default 0: the chart's preStop sleep does this before SIGTERM).
   */
  readonly shutdownDelayMs?: number;
  /** Reviews in flight at once before new ones are shed with 503 (default DEFAULT_MAX_CONCURRENT_REQUESTS). */
  readonly maxConcurrentRequests?: number;
  /** Open connections at once (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number;
}

/** kubernetes mode settings: the certificate manager's, less what the config file says. */
export type KubernetesCertOptions = Omit<CertManagerOptions, "clusterDomain">;

const DAY_MS = 24 * 60 * 60 * 1000;
export const KUBERNETES_CERT_DEFAULTS: Omit<KubernetesCertOptions, "namespace"> = {
  serviceName: DEFAULT_NAMES.service,
  webhookConfigName: DEFAULT_NAMES.webhookConfig,
  secretName: DEFAULT_NAMES.caSecret,
  extraSans: [],
  caValidityMs: 5 * 365 * DAY_MS,
  servingValidityMs: 7 * DAY_MS,
  propagationMs: 10_000,
  resyncMs: 60_000,
};

/** The namespace this Pod runs in: POD_NAMESPACE, else the service account's, else a default. */
function ownNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim();
  } catch {
    return DEFAULT_NAMES.namespace;
  }
}

export interface ServeHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** The admin listener (/preview, /metrics), when `adminPort` is set. */
  readonly adminUrl?: string;
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
  let manager: CertManager | undefined;
  let native: NativeSidecarDetector | undefined;
  const certDir = resolve(opts.certDir ?? "certs");
  const mode: CertMode = opts.certMode ?? (opts.tlsCert !== undefined ? "files" : "local");
  if (mode === "files") {
    if (opts.tlsCert === undefined || opts.tlsKey === undefined) throw new Error("--cert-mode files needs --tls-cert and --tls-key");
    filePair = await loadCertificateFiles(opts.tlsCert, opts.tlsKey);
    tls = filePair;
    logger.info({ cert: opts.tlsCert, notAfter: filePair.notAfter }, "serving certificate loaded from files");
  } else if (mode === "kubernetes") {
    // Until the manager has a certificate the API server trusts, the server answers /healthz
    // with a throwaway one and /readyz says not ready.
    const now = new Date();
    const scratch = await createCa({ validityMs: DAY_MS, now, commonName: "sidecar-injector-not-ready" });
    const issuer = scratch.certs[0];
    if (!issuer) throw new Error("could not create a placeholder certificate");
    const placeholder = await mintServingCert(scratch, issuer, { dnsNames: ["not-ready.invalid"], validityMs: DAY_MS, now });
    tls = { cert: placeholder.certPem, key: placeholder.keyPem };
  } else {
    const local = await ensureLocalCertificates(certDir);
    tls = local;
    logger.info(
      { dir: certDir, generated: local.generated, reason: local.reason || undefined, notAfter: local.notAfter },
      local.generated.leaf ? "local certificates generated" : "local certificates reused",
    );
  }

  const clusterAccess = mode === "kubernetes" || Boolean(process.env.KUBERNETES_SERVICE_HOST);
  let kubeApi: KubeApi | undefined;
  const clusterApi = (): KubeApi => (kubeApi ??= createKubeApi());

  // Set once the server is listening with a certificate loaded: ready from then on, until draining.
  let server: RunningServer | undefined = undefined;
  const appOptions = {
    config,
    logger,
    metrics,
    isReady: () => server !== undefined && !server.draining && (manager === undefined || manager.certificate !== undefined),
    nativeSidecarsSupported: () => native?.current(),
    // /preview reads namespace labels from the API server, for callers allowed to read them.
    ...(clusterAccess ? { namespaceAccess: clusterApi, ownNamespace: ownNamespace() } : {}),
  };
  const tlsFailures = createTlsFailureReporter({ counter: metrics.tlsHandshakeFailures, log: logger });
  const listen = (endpoints: AppEndpoints, port: number): Promise<RunningServer> =>
    startServer({
      app: createApp({ ...appOptions, endpoints }),
      port,
      host: opts.host ?? DEFAULT_HOST,
      tls,
      onOverload: overloadHandler(metrics, logger),
      onTlsClientError: (err, socket) => tlsFailures.report(err, socket.remoteAddress),
      ...(opts.maxConcurrentRequests === undefined ? {} : { maxConcurrentRequests: opts.maxConcurrentRequests }),
      ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    });
  // With an admin port, the port the API server calls serves /inject and health only.
  const running = await listen(opts.adminPort === undefined ? "all" : "webhook", opts.port ?? DEFAULT_PORT);
  const adminServer = opts.adminPort === undefined ? undefined : await listen("admin", opts.adminPort);
  const listeners = [running, ...(adminServer ? [adminServer] : [])];
  const setCertificate = (cert: string, key: string): void => {
    for (const l of listeners) l.setCertificate(cert, key);
  };
  server = running;

  if (mode === "kubernetes") {
    const k: KubernetesCertOptions = { ...KUBERNETES_CERT_DEFAULTS, namespace: ownNamespace(), ...opts.kubernetes };
    const kube = clusterApi();
    manager = new CertManager(
      { ...k, clusterDomain: config.clusterDomain },
      {
        kube,
        logger,
        metrics: createCertMetrics(metrics.registry),
        onCertificate: (cert) => setCertificate(cert.certPem, cert.keyPem),
      },
    );
    await manager.start();
    logger.info({ namespace: k.namespace, secret: k.secretName, webhookConfig: k.webhookConfigName, ready: manager.certificate !== undefined }, "self-managed certificates started");
  } else   if (filePair !== undefined && opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
    watch = watchCertificateFiles(
      opts.tlsCert,
      opts.tlsKey,
      filePair,
      (pair) => {
        setCertificate(pair.cert, pair.key);
        logger.info({ cert: opts.tlsCert, notAfter: pair.notAfter }, "serving certificate reloaded");
      },
      {
        onError: (err) => {
          metrics.certReloadFailures.inc({ reason: err.reason });
          logger.warn({ file: err.file, reason: err.reason, message: err.message }, "serving certificate not reloaded, the previous one is still served");
        },
        onExpiring: (pair, msLeft) =>
          logger.warn({ cert: opts.tlsCert, notAfter: pair.notAfter, hoursLeft: Math.floor(msLeft / 3_600_000) }, msLeft > 0 ? "serving certificate expires soon and has not been renewed" : "serving certificate has expired and has not been renewed"),
      },
    );
  } else {
    renew = setInterval(() => {
      ensureLocalCertificates(certDir).then(
        (local) => {
          if (!local.generated.leaf) return;
          setCertificate(local.cert, local.key);
          logger.info({ dir: certDir, reason: local.reason, notAfter: local.notAfter }, "local certificates renewed");
        },
        (err: unknown) => logger.warn({ err, dir: certDir }, "local certificates not renewed"),
      );
    }, LOCAL_RENEW_CHECK_MS);
    renew.unref();
  }

  // nativeSidecars: auto follows the nodes' kubelet versions wherever the cluster can be asked.
  if (config.nativeSidecars === "auto" && clusterAccess) {
    native = new NativeSidecarDetector(clusterApi(), logger);
    await native.start();
  }

  const urlOf = (l: RunningServer): string => `https://${l.host.includes(":") ? `[${l.host}]` : l.host}:${l.port}`;
  const url = urlOf(running);
  const adminUrl = adminServer === undefined ? undefined : urlOf(adminServer);
  logger.info({ url, ...(adminUrl === undefined ? {} : { adminUrl }), revision: config.revision }, "sidecar injector serving");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.off("SIGHUP", onHangup);
      watch?.close();
      manager?.stop();
      native?.stop();
      if (renew !== undefined) clearInterval(renew);
      const started = Date.now();
      await Promise.all(listeners.map((l) => l.close({ delayMs: opts.shutdownDelayMs ?? 0, timeoutMs: DRAIN_TIMEOUT_MS })));
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
  // A closed terminal or a stray `kill -HUP` must not take the webhook down without a drain.
  const onHangup = (): void => logger.warn({ signal: "SIGHUP" }, "SIGHUP ignored: send SIGTERM to stop");
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  process.on("SIGHUP", onHangup);

  return { host: running.host, port: running.port, url, ...(adminUrl === undefined ? {} : { adminUrl }), close };
}
