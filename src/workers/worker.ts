// A worker's side of the channel to the primary of `serve --workers N` (see protocol.ts): waits
// for init, keeps the latest certificate pair and node state pushed, takes the connections the
// primary hands it and acknowledges each with its count of open connections (closes reported
// batched), answers the primary's requests for this process's metrics, asks it for the sum over
// every process when /metrics is scraped here, and for /preview's namespace labels (a worker
// has no Kubernetes client).
import { Socket } from "node:net";
import {
  LOOKUP_DEADLINE_MS,
  NOT_KNOWN,
  notReadWithin,
  type NamespaceLookupService,
} from "../admission/preview-lookup.js";
import type { NamespaceLabelsResult } from "../preview.js";
import {
  isMessage,
  PREFIX,
  type CertificateUpdate,
  type ConfigUpdate,
  type FromWorker,
  type LookupResults,
  type ToWorker,
  type WorkerSettings,
} from "./protocol.js";
import type { MetricsSnapshot } from "../telemetry/metrics.js";

/** How long a scrape answered by this worker waits for the primary's sum. */
export const EXPOSE_TIMEOUT_MS = 10_000;
/**
 * How long a /preview lookup waits for the primary's answer: its deadline (the primary's
 * lookups give up by then) and room for the channel of a busy primary. Past it, what was asked
 * is said not read within the deadline, as when the API server is that slow.
 */
export const LOOKUP_ANSWER_TIMEOUT_MS = LOOKUP_DEADLINE_MS + 2_000;
/**
 * Closes are reported to the primary at most this often, in one message with the count open:
 * the first close after a quiet interval at once, those after it together at the interval's
 * end. At most 50 messages a second per worker whatever the rate of connections; the primary's
 * count lags the truth by no more than this, and only ever counts too many.
 */
export const OPEN_REPORT_INTERVAL_MS = 20;

/** Where handed connections go: a listener of the worker (https.ts, `handed`). */
export interface ConnectionSink {
  /** Serves the connection; false if it was refused (and destroyed). */
  accept(socket: Socket): boolean;
  /** Connections open now. */
  readonly connections: number;
}

export interface WorkerChannel {
  /** Resolves with what to serve with, once the primary has sent it. */
  readonly settings: Promise<WorkerSettings>;
  /** The latest pair pushed (the one of init until another comes). */
  certificate(): CertificateUpdate;
  /** Called with every pair pushed after init. */
  onCertificate(fn: (c: CertificateUpdate) => void): void;
  /** The latest config pushed (init's until another comes). */
  config(): ConfigUpdate;
  /** Called with every config pushed after init. */
  onConfig(fn: (c: ConfigUpdate) => void): void;
  /** Tells the primary the config of this generation is in effect. */
  configApplied(generation: number): void;
  /** The nodes' native sidecar support, as the primary last pushed it (undefined: not known). */
  nativeSidecars(): boolean | undefined;
  /** /preview's namespace lookups, run by the primary; never rejects (see NOT_KNOWN). */
  readonly lookups: NamespaceLookupService;
  /** Called when the primary says drain. */
  onDrain(fn: () => void): void;
  /**
   * Connections handed by the primary go here from now on (before: refused): the webhook
   * port's to `webhook`, the admin port's to `admin` (none: refused).
   */
  serveConnections(sinks: { readonly webhook: ConnectionSink; readonly admin?: ConnectionSink | undefined }): void;
  /** Tells the primary this worker drains on its own: it hands it nothing more. */
  draining(): void;
  /** Resolves when the primary says no more connections come. */
  readonly lastConnection: Promise<void>;
  /** Answers the primary's requests for this process's own metrics. */
  onCollect(fn: () => Promise<MetricsSnapshot>): void;
  /** The Prometheus text of the sum over every process; rejects if the primary cannot give it. */
  expose(): Promise<string>;
  /** Tells the primary the listeners are up: it hands connections from now on. */
  listening(): void;
  applied(generation: number): void;
  /** Resolves once the message is on its way (exit after it). */
  failed(message: string): Promise<void>;
}

/** The channel itself: this process's IPC to its primary, or a fake in tests. */
export interface ChannelPort {
  /** Resolves once the message is handed to the channel (or the channel is gone). */
  send(m: FromWorker): Promise<void>;
  /** `handle`: what came with the message (a socket, for a connection handed over). */
  onMessage(fn: (m: unknown, handle: unknown) => void): void;
}

function processPort(): ChannelPort {
  if (process.send === undefined) throw new Error("not a worker process: no channel to a primary");
  return {
    send: (m) =>
      // The channel is gone only when the primary is; node:cluster then ends this process.
      new Promise((resolve) => {
        if (process.send === undefined) resolve();
        else process.send(m, undefined, undefined, () => resolve());
      }),
    onMessage: (fn) => process.on("message", fn),
  };
}

export function connectToPrimary(port: ChannelPort = processPort()): WorkerChannel {
  const send = (m: FromWorker): Promise<void> => port.send(m);
  let latest: CertificateUpdate | undefined;
  let latestConfig: ConfigUpdate | undefined;
  let onConfig: ((c: ConfigUpdate) => void) | undefined;
  let native: boolean | undefined;
  let nextLookup = 1;
  const lookups = new Map<number, { resolve: (r: LookupResults | string) => void; timer: NodeJS.Timeout }>();
  let onCertificate: ((c: CertificateUpdate) => void) | undefined;
  let onDrain: (() => void) | undefined;
  let drainAsked = false;
  let onCollect: (() => Promise<MetricsSnapshot>) | undefined;
  let nextExpose = 1;
  const exposes = new Map<
    number,
    { resolve: (t: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  let gotSettings: ((s: WorkerSettings) => void) | undefined;
  const settings = new Promise<WorkerSettings>((resolve) => (gotSettings = resolve));
  let sinks: { readonly webhook: ConnectionSink; readonly admin?: ConnectionSink | undefined } | undefined;
  let openReport: NodeJS.Timeout | undefined;
  let lastReport = -Infinity;
  const reportOpen = (): void => {
    openReport = undefined;
    lastReport = Date.now();
    void send({ type: `${PREFIX}open`, open: sinks?.webhook.connections ?? 0 });
  };
  const onClose = (): void => {
    if (openReport !== undefined) return;
    const wait = lastReport + OPEN_REPORT_INTERVAL_MS - Date.now();
    if (wait <= 0) reportOpen();
    else openReport = setTimeout(reportOpen, wait);
  };
  let lastConnection: (() => void) | undefined;
  const noMoreConnections = new Promise<void>((resolve) => (lastConnection = resolve));

  port.onMessage((m: unknown, handle: unknown) => {
    if (!isMessage<ToWorker>(m)) return;
    switch (m.type) {
      case `${PREFIX}init`:
        latest = m.certificate;
        latestConfig = { config: m.settings.config, generation: m.configGeneration };
        native = m.nativeSidecars ?? undefined;
        gotSettings?.(m.settings);
        break;
      case `${PREFIX}native`:
        native = m.nativeSidecars ?? undefined;
        break;
      case `${PREFIX}config`: {
        if (latestConfig !== undefined && m.generation <= latestConfig.generation) break;
        latestConfig = { config: m.config, generation: m.generation };
        onConfig?.(latestConfig);
        break;
      }
      case `${PREFIX}looked-up`: {
        const l = lookups.get(m.id);
        if (l === undefined) break;
        lookups.delete(m.id);
        clearTimeout(l.timer);
        l.resolve(m.results ?? m.error ?? "no answer");
        break;
      }
      case `${PREFIX}certificate`: {
        const { cert, key, generation, serving } = m;
        if (latest !== undefined && generation <= latest.generation) break;
        latest = { cert, key, generation, serving };
        onCertificate?.(latest);
        break;
      }
      case `${PREFIX}collect`: {
        const id = m.id;
        const collect = onCollect ?? ((): Promise<MetricsSnapshot> => Promise.resolve([]));
        collect().then(
          (snapshot) => void send({ type: `${PREFIX}snapshot`, id, snapshot }),
          // No answer: the scrape fails at the primary's timeout rather than miss a worker's counts.
          () => undefined,
        );
        break;
      }
      case `${PREFIX}exposition`: {
        const e = exposes.get(m.id);
        if (e === undefined) break;
        exposes.delete(m.id);
        clearTimeout(e.timer);
        if (m.text !== undefined) e.resolve(m.text);
        else e.reject(new Error(`metrics not summed over the workers: ${m.error ?? "no answer"}`));
        break;
      }
      case `${PREFIX}connection`: {
        // Every hand-over is acknowledged, taken or not, so the primary's count stays true.
        const listener = m.listener === "admin" ? "admin" : "webhook";
        const sink = listener === "admin" ? sinks?.admin : sinks?.webhook;
        let taken = false;
        if (handle instanceof Socket) {
          if (sink === undefined) handle.destroy();
          else if ((taken = sink.accept(handle)) && listener === "webhook") handle.once("close", onClose);
        }
        void send({ type: `${PREFIX}accepted`, id: m.id, listener, taken, open: sinks?.webhook.connections ?? 0 });
        break;
      }
      case `${PREFIX}ping`:
        void send({ type: `${PREFIX}pong`, id: m.id });
        break;
      case `${PREFIX}drain`:
        drainAsked = true;
        onDrain?.();
        break;
      case `${PREFIX}last-connection`:
        lastConnection?.();
        break;
    }
  });
  void send({ type: `${PREFIX}hello` });

  const lookup = async (token: string, namespaces: readonly string[]): Promise<Map<string, NamespaceLabelsResult>> => {
    const out = new Map<string, NamespaceLabelsResult>();
    if (namespaces.length === 0) return out;
    const answer = await new Promise<LookupResults | string | undefined>((resolve) => {
      const id = nextLookup++;
      const timer = setTimeout(() => {
        lookups.delete(id);
        resolve(undefined);
      }, LOOKUP_ANSWER_TIMEOUT_MS);
      lookups.set(id, { resolve, timer });
      void send({ type: `${PREFIX}lookup`, id, token, namespaces });
    });
    if (typeof answer === "object") for (const [ns, result] of answer) if (namespaces.includes(ns)) out.set(ns, result);
    // No answer in time, or none at all: as a lookup of the API server that failed or was late.
    const unknown = answer === undefined ? notReadWithin(LOOKUP_DEADLINE_MS) : NOT_KNOWN.failed;
    for (const ns of namespaces) if (!out.has(ns)) out.set(ns, { unknown });
    return out;
  };

  return {
    settings,
    certificate() {
      if (latest === undefined) throw new Error("no certificate from the primary yet");
      return latest;
    },
    onCertificate(fn) {
      onCertificate = fn;
    },
    config() {
      if (latestConfig === undefined) throw new Error("no config from the primary yet");
      return latestConfig;
    },
    onConfig(fn) {
      onConfig = fn;
    },
    configApplied(generation) {
      void send({ type: `${PREFIX}config-applied`, generation });
    },
    nativeSidecars: () => native,
    lookups: { lookup },
    onDrain(fn) {
      onDrain = fn;
      if (drainAsked) fn();
    },
    onCollect(fn) {
      onCollect = fn;
    },
    serveConnections(s) {
      sinks = s;
    },
    draining() {
      void send({ type: `${PREFIX}draining` });
    },
    lastConnection: noMoreConnections,
    expose() {
      return new Promise((resolve, reject) => {
        const id = nextExpose++;
        const timer = setTimeout(() => {
          exposes.delete(id);
          reject(
            new Error(
              `metrics not summed over the workers: no answer from the primary within ${EXPOSE_TIMEOUT_MS / 1000}s`,
            ),
          );
        }, EXPOSE_TIMEOUT_MS);
        exposes.set(id, { resolve, reject, timer });
        void send({ type: `${PREFIX}expose`, id });
      });
    },
    listening() {
      void send({ type: `${PREFIX}listening` });
    },
    applied(generation) {
      void send({ type: `${PREFIX}applied`, generation });
    },
    failed(message) {
      return send({ type: `${PREFIX}failed`, message });
    },
  };
}
