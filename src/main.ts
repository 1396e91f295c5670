// Composition root for `serve`: config -> certificates -> logger/metrics -> express app ->
// HTTPS server; readiness, certificate reload, and draining on SIGTERM/SIGINT.
//
// With `workers` > 1 this process is the primary of that many worker processes (node:cluster,
// src/workers/): it keeps the certificate source and pushes each pair to the workers, which
// each run the listeners below (runWorker), the connections of both ports handed to them by
// the primary, which listens on them; it alone talks to the API server (certificates,
// the node watch, /preview's lookups), so a worker never loads the Kubernetes client. With 1
// (the default) everything runs here, and the client is loaded only with cluster access.

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
// What only one kind of process needs is imported where it is used: the primary of
// `--workers N` never loads express or the injection engine, a worker never loads the
// certificate authority, the certificate manager or the Kubernetes client, and a single
// process never loads node:cluster or the workers' protocol ends.
import type { App, AppEndpoints } from "./admission/server.js";
import { DEFAULT_HOST, type RunningServer } from "./admission/https.js";
import { countShed } from "./admission/connection-shed.js";
import {
  DEFAULT_NAMES,
  openCertificateSource,
  type CertificateChoice,
  type CertificateSource,
  type CertMode,
} from "./certs/modes.js";
import type { CertManagerOptions } from "./certs/manager.js";
import type { NamespaceLookupService } from "./admission/preview-lookup.js";
import type { KubeApi } from "./kube/api.js";
import type { NativeSidecarDetector } from "./kube/nodes.js";
import type { IstioConfigFollower } from "./istio/live.js";
import type { IstioSelection } from "./istio/source.js";
import { buildConfig, loadConfig } from "./config/load.js";
import { createLogger } from "./telemetry/logger.js";
import { createMetrics, type Metrics } from "./telemetry/metrics.js";
import type { Config } from "./config/types.js";
import type { Logger } from "./telemetry/logger.js";
import { WORKER_ENV, type WorkerSettings } from "./workers/protocol.js";

export const DEFAULT_PORT = 9443;
/**
 * After SIGTERM (and the shutdown delay): how long in-flight reviews and kept-alive clients
 * get. The chart's terminationGracePeriodSeconds covers its preStop sleep, the shutdown delay
 * and this, with room for the exit.
 */
export const DRAIN_TIMEOUT_MS = 15_000;
/**
 * A draining worker takes the connections its primary hands it until the primary says the last
 * is on its way; past its shutdown delay and this, it stops waiting for that word.
 */
const LAST_CONNECTION_WAIT_MS = 5_000;

export interface ServeOptions {
  /** YAML config file; defaults apply when absent. */
  readonly configFile?: string;
  /**
   * `NS` or `NS/REV`: the config is imported from Istio's ConfigMaps there
   * (istio-sidecar-injector[-REV], istio[-REV]) instead of a file, and follows their changes.
   */
  readonly istioConfig?: string;
  /** With istioConfig: serve what can be honoured when some settings cannot (else refuse to start). */
  readonly allowUnsupported?: boolean;
  /** With istioConfig: the revision tags pointing at this injector, and Istio's `auto` webhook (IstioSelection). */
  readonly istioSelection?: IstioSelection;
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
  /**
   * Before it says it is ready, each serving process answers reviews of its own on a loopback
   * copy of its webhook for this long at most, or WARM_UP_REVIEWS of them (admission/warm-up.ts).
   * Default 0: ready as soon as it listens.
   */
  readonly warmUpMs?: number;
  /** Reviews in flight at once before new ones are shed with 503 (default DEFAULT_MAX_CONCURRENT_REQUESTS). */
  readonly maxConcurrentRequests?: number;
  /** Open connections at once (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number;
  /**
   * Processes that serve (default 1: this one). More: this process forks that many workers
   * on the same ports and keeps the certificates; 0 or "auto": one per available core.
   */
  readonly workers?: number | "auto";
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

/** Which certificate source the options choose: files given, kubernetes asked for, else local. */
function certificateChoice(opts: ServeOptions, config: Config): CertificateChoice {
  const mode: CertMode = opts.certMode ?? (opts.tlsCert !== undefined ? "files" : "local");
  if (mode === "local") {
    // --tls-san: names the local certificate covers besides localhost and 127.0.0.1.
    const extraNames = opts.kubernetes?.extraSans ?? [];
    return { mode, dir: resolve(opts.certDir ?? "certs"), ...(extraNames.length > 0 ? { extraNames } : {}) };
  }
  if (mode === "kubernetes") {
    // The namespace is read when the manager starts, as the Pod's own.
    return {
      mode,
      options: () => ({
        ...KUBERNETES_CERT_DEFAULTS,
        namespace: ownNamespace(),
        ...opts.kubernetes,
        clusterDomain: config.clusterDomain,
      }),
    };
  }
  const { tlsCert, tlsKey } = opts;
  if (tlsCert === undefined || tlsKey === undefined)
    throw new Error("--cert-mode files needs --tls-cert and --tls-key");
  return { mode, certFile: tlsCert, keyFile: tlsKey };
}

/** The settings every serving process needs, from the options (a worker gets them over IPC). */
function servingSettings(opts: ServeOptions, config: Config): WorkerSettings {
  const clusterAccess =
    opts.certMode === "kubernetes" || opts.istioConfig !== undefined || Boolean(process.env.KUBERNETES_SERVICE_HOST);
  return {
    config,
    host: opts.host ?? DEFAULT_HOST,
    port: opts.port ?? DEFAULT_PORT,
    ...(opts.adminPort === undefined ? {} : { adminPort: opts.adminPort }),
    logLevel: opts.logLevel ?? "info",
    shutdownDelayMs: opts.shutdownDelayMs ?? 0,
    warmUpMs: opts.warmUpMs ?? 0,
    ...(opts.maxConcurrentRequests === undefined ? {} : { maxConcurrentRequests: opts.maxConcurrentRequests }),
    ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    clusterAccess,
    ownNamespace: clusterAccess ? ownNamespace() : DEFAULT_NAMES.namespace,
  };
}

/**
 * `--istio-config`: the config imported from Istio's ConfigMaps (src/istio/live.ts), read before
 * anything listens; a ConfigMap missing, a setting that cannot be honoured or an API server
 * that does not answer ends the start here. Followed once serving (`follow`).
 */
async function loadIstioConfig(
  opts: ServeOptions,
  logger: Logger,
  metrics: Metrics,
): Promise<{ follower: IstioConfigFollower; config: Config } | undefined> {
  if (opts.istioConfig === undefined) return undefined;
  const { parseIstioConfigSource } = await import("./istio/source.js");
  const { IstioConfigFollower } = await import("./istio/live.js");
  const { createKubeApi, defaultKubeConfig } = await import("./kube/client.js");
  const follower = new IstioConfigFollower(parseIstioConfigSource(opts.istioConfig), {
    kube: createKubeApi(defaultKubeConfig({ environmentOnly: true })),
    logger,
    reloads: metrics.configReloads,
    allowUnsupported: opts.allowUnsupported === true,
    ...(opts.istioSelection === undefined ? {} : { selection: opts.istioSelection }),
  });
  return { follower, config: await follower.load() };
}

/**
 * What serving asks of the API server, besides certificates: /preview's namespace lookups and,
 * with `nativeSidecars: auto`, the nodes' kubelet versions. Loads the Kubernetes client, so it
 * is opened only with cluster access, and only in the process that talks to the API server (the
 * only one, or the primary of `--workers N`).
 */
interface ClusterServices {
  readonly lookups: NamespaceLookupService;
  nativeSidecars(): boolean | undefined;
  /** With `nativeSidecars: auto`: starts following the nodes; `onChange` gets each change. */
  watchNodes(onChange?: (supported: boolean) => void): Promise<void>;
  stop(): void;
}

async function openClusterServices(s: WorkerSettings, logger: Logger): Promise<ClusterServices | undefined> {
  if (!s.clusterAccess) return undefined;
  const { createKubeApi, defaultKubeConfig } = await import("./kube/client.js");
  const { NamespaceLookups } = await import("./admission/preview-lookup.js");
  let kubeApi: KubeApi | undefined;
  // Credentials are read at the first call: a lookup without them says the API server could not be asked.
  const clusterApi = (): KubeApi => (kubeApi ??= createKubeApi(defaultKubeConfig({ environmentOnly: true })));
  let native: NativeSidecarDetector | undefined;
  return {
    lookups: new NamespaceLookups(clusterApi, { logger }),
    nativeSidecars: () => native?.current(),
    async watchNodes(onChange) {
      if (s.config.nativeSidecars !== "auto" || native !== undefined) return;
      const { NativeSidecarDetector } = await import("./kube/nodes.js");
      native = new NativeSidecarDetector(clusterApi(), logger);
      if (onChange !== undefined) native.onChange(onChange);
      await native.start();
    },
    stop: () => native?.stop(),
  };
}

/** What a serving process gets from the API server: directly, or from its primary over IPC. */
interface ClusterView {
  readonly lookups: NamespaceLookupService | undefined;
  nativeSidecars(): boolean | undefined;
}

/** The listeners of one serving process (the only one, or a worker), and how to stop them. */
interface Listeners {
  readonly running: RunningServer;
  readonly admin: RunningServer | undefined;
  setCertificate(cert: string, key: string): void;
  /** Every request read from now on is answered with this config (in-flight ones finish with theirs). */
  setConfig(config: Config): void;
  /**
   * Makes the process ready (/readyz 200 while it serves): after the warm-up, when there is one
   * (admission/warm-up.ts); until then the listeners answer, not ready. A close() meanwhile
   * ends the warm-up, and the process never becomes ready.
   */
  becomeReady(): Promise<void>;
  /**
   * Drains every listener; logs "server stopped". `lastConnection`: the listeners' connections
   * are handed to them (a worker's), and keep coming until this resolves.
   */
  close(lastConnection?: Promise<unknown>): Promise<void>;
}

/** What the system said of a listen that failed, in words, naming the option that chose the address. */
const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: "the port is in use (another process, or the other port of this one)",
  EACCES: "permission denied (a port below 1024 needs privileges)",
  EADDRNOTAVAIL: "no interface of this machine has that address",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name could not be resolved now",
};

function listenProblem(e: unknown, host: string, port: number, option: string): Error {
  const code = e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined;
  const why = code === undefined ? undefined : LISTEN_ERRORS[code];
  if (why === undefined) return e instanceof Error ? e : new Error(String(e));
  const where = `${host}:${port}`;
  return new Error(`cannot listen on ${where} (${option}, --host): ${why}`);
}

async function startListeners(
  s: WorkerSettings,
  logger: Logger,
  metrics: Metrics,
  tls: { cert: string; key: string },
  certificateServing: () => boolean,
  cluster: ClusterView,
  /** The connections of both ports are handed to this process (a worker's): it listens on neither. */
  handed = false,
): Promise<Listeners> {
  const { createApp, overloadHandler } = await import("./admission/server.js");
  const { startServer } = await import("./admission/https.js");
  const { createTlsFailureReporter } = await import("./admission/tls-failures.js");
  // Set once the server is listening and warmed up (becomeReady): ready from then on while its
  // certificate is a serving one, until draining.
  let server: RunningServer | undefined = undefined;
  const appOptions = {
    config: s.config,
    logger,
    metrics,
    isReady: () => server !== undefined && !server.draining && certificateServing(),
    nativeSidecarsSupported: () => cluster.nativeSidecars(),
    // /preview reads namespace labels from the API server, for callers allowed to read them.
    ...(cluster.lookups === undefined ? {} : { namespaceLookups: cluster.lookups, ownNamespace: s.ownNamespace }),
  };
  const tlsFailures = createTlsFailureReporter({ counter: metrics.tlsHandshakeFailures, log: logger });
  // Each listener's app, swapped whole for a new config: a request goes to the app of its arrival.
  let config = s.config;
  const apps: { readonly endpoints: AppEndpoints; current: App }[] = [];
  /** A listener's own errors (a failed accept), logged at most once a second with the count since. */
  const listenerErrors = (endpoints: AppEndpoints): ((err: Error) => void) => {
    let since = 0;
    let last = -Infinity;
    return (err) => {
      since += 1;
      if (Date.now() - last < 1_000) return;
      logger.error({ err, endpoints, errors: since }, "listener error: a connection was lost");
      last = Date.now();
      since = 0;
    };
  };
  const listen = (endpoints: AppEndpoints, port: number, handedHere = false): Promise<RunningServer> => {
    const app = { endpoints, current: createApp({ ...appOptions, config, endpoints }) };
    apps.push(app);
    // The admin port serves no reviews: what it sheds is logged, not counted as a refused review.
    const reviews = endpoints === "admin" ? undefined : metrics;
    return startServer({
      app: (req, res) => app.current(req, res),
      port,
      ...(handedHere ? { handed: true } : {}),
      host: s.host,
      tls,
      onOverload: overloadHandler(reviews, logger),
      // Closed before its handshake, past the bounds of the 503s, its request unread: counted as
      // a review shed (none on the admin port).
      onConnectionDropped: () => countShed(reviews, undefined),
      onListenerError: listenerErrors(endpoints),
      onTlsClientError: (err, socket) => tlsFailures.report(err, socket.remoteAddress),
      ...(s.maxConcurrentRequests === undefined ? {} : { maxConcurrentRequests: s.maxConcurrentRequests }),
      ...(s.maxConnections === undefined ? {} : { maxConnections: s.maxConnections }),
    });
  };
  // With an admin port, the port the API server calls serves /inject and health only.
  const running = await listen(s.adminPort === undefined ? "all" : "webhook", s.port, handed).catch((e: unknown) => {
    throw listenProblem(e, s.host, s.port, "--port");
  });
  const admin =
    s.adminPort === undefined
      ? undefined
      : await listen("admin", s.adminPort, handed).catch(async (e: unknown) => {
          await running.close(0).catch(() => undefined);
          throw listenProblem(e, s.host, s.adminPort ?? 0, "--admin-port");
        });
  const listeners = [running, ...(admin ? [admin] : [])];
  /** Ends a warm-up under way when the listeners close. */
  const stopWarmUp = new AbortController();

  let closing: Promise<void> | undefined;
  return {
    running,
    admin,
    async becomeReady() {
      // Listening, not ready: /healthz answers, /readyz says not ready until the warm-up is over.
      if (s.warmUpMs > 0 && closing === undefined) {
        // A worker's port is its primary's, which says where it listens.
        const where = handed ? {} : { url: urlOf(running.host, running.port) };
        logger.info({ ...where, budgetMs: s.warmUpMs }, "warming up before ready");
        const { warmUp } = await import("./admission/warm-up.js");
        await warmUp({
          config,
          tls,
          logLevel: s.logLevel,
          logger,
          budgetMs: s.warmUpMs,
          endpoints: s.adminPort === undefined ? "all" : "webhook",
          nativeSidecarsSupported: appOptions.nativeSidecarsSupported,
          signal: stopWarmUp.signal,
        });
      }
      server = running;
    },
    setCertificate(cert, key) {
      for (const l of listeners) l.setCertificate(cert, key);
    },
    setConfig(next) {
      config = next;
      for (const app of apps) {
        const old = app.current;
        app.current = createApp({ ...appOptions, config, endpoints: app.endpoints });
        // The old app's review worker ends once the reviews it holds are answered.
        void old.retire();
      }
    },
    close(lastConnection) {
      stopWarmUp.abort();
      closing ??= (async () => {
        const started = Date.now();
        // Handed connections stop when whoever hands them says so (after its own delay).
        const drain =
          handed && lastConnection !== undefined
            ? { until: lastConnection, timeoutMs: DRAIN_TIMEOUT_MS }
            : { delayMs: s.shutdownDelayMs, timeoutMs: DRAIN_TIMEOUT_MS };
        await Promise.all(listeners.map((l) => l.close(drain)));
        logger.info({ durationMs: Date.now() - started }, "server stopped");
      })();
      return closing;
    },
  };
}

const urlOf = (host: string, port: number): string => `https://${host.includes(":") ? `[${host}]` : host}:${port}`;

/**
 * SIGTERM and SIGINT run `close` and exit 0 (1 if it fails); SIGINT again during the drain (a
 * person's second Ctrl-C) ends the process at once, SIGTERM again is logged and the drain goes
 * on (see whileDraining). SIGHUP and SIGUSR1 are logged and ignored. Returns what removes the
 * handlers.
 */
function onSignals(logger: Logger, inFlight: () => number | undefined, close: () => Promise<void>): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    const n = inFlight();
    logger.info({ signal, ...(n === undefined ? {} : { inFlight: n }) }, "draining");
    // A second SIGINT while draining is not caught any more: the process ends at once.
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "drain failed");
        process.exit(1);
      },
    );
  };
  const removeIgnored = ignoreSignals(logger);
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    removeIgnored();
  };
}

/**
 * Installs the listeners of the signals that are logged and ignored, SIGHUP and SIGUSR1;
 * returns what removes them. A signal that once had a listener and has none again takes its
 * default action, which ends the process: whoever removes them while the process goes on
 * installs them again (whileDraining does).
 */
function ignoreSignals(logger: Logger): () => void {
  // A closed terminal or a stray `kill -HUP` must not take the webhook down without a drain.
  const onHangup = (): void => logger.warn({ signal: "SIGHUP" }, "SIGHUP ignored: send SIGTERM to stop");
  // Node starts its inspector (a debugger anyone in the Pod's network namespace could reach on
  // 127.0.0.1:9229) on SIGUSR1 unless the signal has a listener; `--inspect` still starts it.
  const onInspect = (): void =>
    logger.warn({ signal: "SIGUSR1" }, "SIGUSR1 ignored: the inspector starts only with --inspect");
  process.on("SIGHUP", onHangup);
  process.on("SIGUSR1", onInspect);
  return () => {
    process.off("SIGHUP", onHangup);
    process.off("SIGUSR1", onInspect);
  };
}

/**
 * Runs `drain` with SIGTERM logged and not obeyed: a runtime may send its stop signal again
 * (the kubelet does when a Pod's deletion is repeated with a shorter grace period), and the
 * drain, bounded on its own, must not be cut short by it (SIGKILL does that at the deadline).
 * SIGHUP and SIGUSR1 stay ignored meanwhile; SIGINT, with its listener gone, ends the process.
 */
async function whileDraining<T>(logger: Logger, drain: () => Promise<T>): Promise<T> {
  const again = (): void =>
    logger.warn(
      { signal: "SIGTERM" },
      "already draining: SIGTERM ignored (SIGINT or SIGKILL ends the process at once)",
    );
  process.on("SIGTERM", again);
  const removeIgnored = ignoreSignals(logger);
  try {
    return await drain();
  } finally {
    process.off("SIGTERM", again);
    removeIgnored();
  }
}

/**
 * The process's close, with the signal handlers that call it installed: the first call removes
 * the handlers, stops the certificate source and the cluster services, then runs `stop` (the
 * listeners' drain, or the workers') during which SIGTERM is ignored; later calls get the same
 * promise.
 */
function closeOnSignals(
  logger: Logger,
  inFlight: () => number | undefined,
  certs: CertificateSource,
  kube: ClusterServices | undefined,
  stop: () => Promise<void>,
): () => Promise<void> {
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      removeSignals();
      certs.stop();
      kube?.stop();
      await whileDraining(logger, stop);
    })());
  const removeSignals = onSignals(logger, inFlight, close);
  return close;
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
  const requested = opts.workers ?? 1;
  const workers =
    requested === 1 ? 1 : (await import("./workers/primary.js")).resolveWorkerCount(requested, availableParallelism());
  const metrics = createMetrics();
  const istio = await loadIstioConfig(opts, logger, metrics);
  const config = istio?.config ?? (await loadConfig(opts.configFile));
  const certs = await openCertificateSource(certificateChoice(opts, config), { logger, metrics });
  const settings = servingSettings(opts, config);
  if (workers > 1) return runPrimary(opts, workers, settings, logger, metrics, certs, istio?.follower);

  const kube = await openClusterServices(settings, logger);
  const listeners = await startListeners(settings, logger, metrics, certs.initial, () => certs.serving(), {
    lookups: kube?.lookups,
    nativeSidecars: () => kube?.nativeSidecars(),
  });
  const { running, admin } = listeners;
  const warming = settings.warmUpMs > 0;
  // Without a warm-up, ready as soon as it listens (with a serving certificate).
  if (!warming) await listeners.becomeReady();
  // From the moment it listens: a warm-up can take seconds, and a signal then must drain it too.
  const close = closeOnSignals(
    logger,
    () => running.inFlight,
    certs,
    kube,
    () => {
      istio?.follower.stop();
      return listeners.close();
    },
  );
  await certs.start((cert, key) => listeners.setCertificate(cert, key));
  // Closed meanwhile (a signal): nothing more to start.
  if (!running.draining) {
    // Not waited for by the warm-up, whose copy renders as the nodes say from the moment they are read.
    const nodes = kube?.watchNodes();
    istio?.follower.follow((next) => listeners.setConfig(next));
    if (warming) await listeners.becomeReady();
    await nodes;
  }
  const url = urlOf(running.host, running.port);
  const adminUrl = admin === undefined ? undefined : urlOf(admin.host, admin.port);
  if (!running.draining) {
    logger.info(
      {
        url,
        ...(adminUrl === undefined ? {} : { adminUrl }),
        revision: config.revision,
        ...(istio === undefined ? {} : { configSource: istio.follower.description }),
      },
      "sidecar injector serving",
    );
  }
  return { host: running.host, port: running.port, url, ...(adminUrl === undefined ? {} : { adminUrl }), close };
}

/** The node flags a worker runs with: this process's, less those that make no sense twice. */
function workerExecArgv(typescript: boolean): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "-e" || a === "-p" || a === "--eval" || a === "--print") {
      i++;
      continue;
    }
    if (/^--(test|inspect|debug|eval=|print=|input-type|watch)/.test(a)) continue;
    out.push(a);
  }
  // Under tsx (tests, benchmarks) the worker's entry is TypeScript too.
  if (typescript && !out.some((a) => a.includes("tsx"))) out.push("--import", "tsx");
  return out;
}

/** What the primary reports for a connection whose client reset it before it was handed to a worker. */
const CLIENT_GONE: NodeJS.ErrnoException = Object.assign(
  new Error("the client reset the connection before it was handed to a worker"),
  { code: "ECONNRESET" },
);

async function runPrimary(
  opts: ServeOptions,
  workers: number,
  settings: WorkerSettings,
  logger: Logger,
  metrics: Metrics,
  certs: CertificateSource,
  istio: IstioConfigFollower | undefined,
): Promise<ServeHandle> {
  const typescript = import.meta.url.endsWith(".ts");
  const { startPrimary } = await import("./workers/primary.js");
  const { createTlsFailureReporter } = await import("./admission/tls-failures.js");
  const tlsFailures = createTlsFailureReporter({ counter: metrics.tlsHandshakeFailures, log: logger });
  const kube = await openClusterServices(settings, logger);
  const primary = await startPrimary(
    {
      workers,
      settings,
      logger: logger.child({ role: "primary" }),
      registry: metrics.registry,
      exec: fileURLToPath(new URL(`./workers/entry${typescript ? ".ts" : ".js"}`, import.meta.url)),
      execArgv: workerExecArgv(typescript),
      // The worker's own drain (shutdown delay, then at most DRAIN_TIMEOUT_MS), and room to exit.
      exitTimeoutMs: settings.shutdownDelayMs + DRAIN_TIMEOUT_MS + 5_000,
      ...(kube === undefined ? {} : { lookups: kube.lookups }),
      // A review the primary sheds counts as a single process's does (a connection closed
      // before its request, unread, counts as one); a shed probe or scrape does not.
      onShed: (req) => countShed(metrics, req),
      // Its failed handshakes (answering a shed one) are counted as a worker's are, in the sum.
      onTlsClientError: (err, socket) => tlsFailures.report(err, socket.remoteAddress),
      // A connection reset before its hand-over, closed there: a worker (or a single process)
      // would have counted its handshake as reset.
      onClientGone: () => tlsFailures.report(CLIENT_GONE, undefined),
    },
    { ...certs.initial, serving: certs.serving() },
  ).catch((e: unknown) => {
    // Which of its two ports it could not listen on: the error says the port.
    const port = e instanceof Error && "port" in e && typeof e.port === "number" ? e.port : settings.port;
    throw listenProblem(e, settings.host, port, port === settings.adminPort ? "--admin-port" : "--port");
  });
  // Its ports answer from now on (each worker's probes, not ready until it is warm).
  if (settings.warmUpMs > 0)
    logger.info(
      { url: urlOf(primary.host, primary.port), budgetMs: settings.warmUpMs, workers },
      "warming up before ready",
    );
  const close = closeOnSignals(
    logger,
    () => undefined,
    certs,
    kube,
    async () => {
      istio?.stop();
      const started = Date.now();
      const { failed } = await primary.close();
      logger.info({ durationMs: Date.now() - started, workers, failed }, "workers stopped");
      if (failed > 0) throw new Error(`${failed} of ${workers} workers failed while draining`);
    },
  );
  try {
    await certs.start((cert, key) => primary.setCertificate(cert, key, true));
    // Pushed to every worker as soon as read: a worker warming up renders as the nodes say from then on.
    await kube?.watchNodes((supported) => primary.setNativeSidecars(supported));
    istio?.follow((next) => primary.setConfig(next));
    if (certs.serving()) await primary.whenReady();
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  const url = urlOf(primary.host, primary.port);
  const adminUrl = primary.adminPort === undefined ? undefined : urlOf(primary.host, primary.adminPort);
  logger.info(
    {
      url,
      ...(adminUrl === undefined ? {} : { adminUrl }),
      revision: settings.config.revision,
      ...(istio === undefined ? {} : { configSource: istio.description }),
      workers,
      pids: primary.pids(),
    },
    "sidecar injector serving",
  );
  return { host: primary.host, port: primary.port, url, ...(adminUrl === undefined ? {} : { adminUrl }), close };
}

/**
 * A worker of `serve --workers N` (its entry is workers/entry.ts): serves with the settings and
 * certificate pairs its primary sends, drains when told to (or on SIGTERM/SIGINT), then exits 0.
 * A failure to start is reported to the primary, and the process exits 1.
 */
export async function runWorker(): Promise<void> {
  const { connectToPrimary } = await import("./workers/worker.js");
  const channel = connectToPrimary();
  const sent = await channel.settings;
  const logger = createLogger({ level: sent.logLevel }).child({ worker: Number(process.env[WORKER_ENV] ?? "0") });
  try {
    // The config crossed the channel as JSON: checked and frozen again, as loadConfig leaves it.
    const settings = { ...sent, config: buildConfig(sent.config, "the primary's config") };
    const metrics = createMetrics({ exposition: () => channel.expose() });
    channel.onCollect(() => metrics.registry.getMetricsAsJSON());
    let certificate = channel.certificate();
    // The API server is the primary's: node state pushed, /preview's lookups asked over IPC.
    // Both ports are the primary's: it hands each connection to one worker.
    const listeners = await startListeners(
      settings,
      logger,
      metrics,
      certificate,
      () => certificate.serving,
      { lookups: settings.clusterAccess ? channel.lookups : undefined, nativeSidecars: () => channel.nativeSidecars() },
      true,
    );
    channel.serveConnections({ webhook: listeners.running, admin: listeners.admin });
    const apply = (): void => {
      const latest = channel.certificate();
      if (latest.generation !== certificate.generation) {
        listeners.setCertificate(latest.cert, latest.key);
        certificate = latest;
      }
      channel.applied(certificate.generation);
    };
    // Listening: the primary hands this worker connections (its probes answered, not ready) and
    // may tell it to drain, from now on, the warm-up included.
    channel.listening();
    // A config pushed (--istio-config): checked and frozen as the first one, then swapped in.
    let configGeneration = channel.config().generation;
    const applyConfig = (): void => {
      const latest = channel.config();
      if (latest.generation !== configGeneration) {
        listeners.setConfig(buildConfig(latest.config, "the primary's config"));
        configGeneration = latest.generation;
      }
      channel.configApplied(configGeneration);
    };
    applyConfig();
    channel.onConfig(() => {
      try {
        applyConfig();
      } catch (err) {
        logger.error({ err }, "config from the primary not taken, the previous one is still in effect");
      }
    });
    // Connections keep coming until the primary says the last is on its way: after its shutdown
    // delay, or at once when this worker drains on its own. Bounded, should that word not come.
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      if (closing !== undefined) return closing;
      // SIGINT again then ends the worker at once; SIGTERM again is ignored (whileDraining).
      removeSignals();
      return (closing = whileDraining(logger, () =>
        listeners.close(
          Promise.race([
            channel.lastConnection,
            sleep(settings.shutdownDelayMs + LAST_CONNECTION_WAIT_MS, undefined, { ref: false }),
          ]),
        ),
      ));
    };
    const removeSignals = onSignals(
      logger,
      () => listeners.running.inFlight,
      () => {
        channel.draining();
        return close();
      },
    );
    channel.onDrain(() => {
      logger.info({ inFlight: listeners.running.inFlight }, "draining");
      close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "drain failed");
          process.exit(1);
        },
      );
    });
    // Ready once warm: the primary counts this worker ready when it has taken the current pair
    // (a pair pushed during the warm-up is taken then); not at all once draining.
    await listeners.becomeReady();
    if (closing !== undefined) return;
    const take = (): void => {
      try {
        apply();
      } catch (err) {
        logger.error({ err }, "certificate from the primary not taken, the previous one is still served");
        // Says which pair it serves: not the current one (so not ready), but warm.
        channel.applied(certificate.generation);
      }
    };
    take();
    channel.onCertificate(take);
  } catch (err) {
    logger.error({ err }, "worker did not start");
    await channel.failed(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
