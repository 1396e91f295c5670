// The primary of `serve --workers N`: forks N worker processes (node:cluster) that each run the
// webhook's app, and keeps them going. It serves no review itself: no express, no injection
// engine; it holds the certificate source (main.ts) and pushes every pair to every
// worker, sums the workers' metrics for a scrape, and drains them on shutdown. It is also the
// one process that talks to the API server (a worker never loads the Kubernetes client): it
// pushes the nodes' native sidecar support to every worker, and runs /preview's namespace
// lookups that the workers send it, with one cache for all of them.
//
// The webhook port is the primary's own listener (plain TCP, pauseOnConnect: it never reads a
// byte). Each accepted connection is passed over the channel to one worker, which serves it
// (TLS and everything after) and acknowledges with its count of open connections; closes are
// reported batched. The primary writes a worker's hand-overs one at a time, as Node would, from
// its own queue, and closes there one whose client reset it meanwhile, unwritten (hand-over.ts).
// The worker is the one with the fewest connections, open or on the way, ties
// round robin (distributor.ts), among those that listen and are not draining: the API server's
// few long-lived keep-alive connections spread one per worker (letting the kernel choose,
// SCHED_NONE, puts most on a few workers and leaves cores idle). A worker with K hand-overs not
// acknowledged, the oldest waiting W (MAX_UNACKNOWLEDGED_HANDOVERS, MAX_HANDOVER_WAIT_MS: its
// event loop is behind), or with --max-connections open or on the way, gets no more; when none
// is left the connection is shed: answered here, over TLS with the current pair, 503
// ERR_OVERLOADED with Retry-After, which the API server retries (connection-shed.ts; closed
// before any TLS past its bounds of so many at once and a second), counted as a
// review shed (`sidecar_injection_failure_total{reason="ERR_OVERLOADED"}`) and logged at most
// once a second. So past capacity it sheds, as one process does, where node:cluster's round
// robin (SCHED_RR) queued without bound in the primary.
// The admin port (/preview, /metrics, health) is the primary's own listener too, its connections
// handed the same way (not counted by the distributor: a scrape or a preview now and then needs
// no balance), each to the worker with the fewest hand-overs on the way, skipping one that has
// not acknowledged the last for MAX_HANDOVER_WAIT_MS (stopped, or in an endless loop). With no
// worker to take it (every one dead and being replaced, or stalled) the primary answers it itself,
// over TLS with the current pair: 503 ERR_NOT_READY with Retry-After, saying why, so a probe or a
// scrape then gets an answer, not a reset. (Shared by node:cluster, before, the port closed when
// the last worker died, until the first replacement listened again.)
//
// - A worker gets `init` (settings and the current pair) after its `hello`, listens with that
//   pair, and is ready once it has acknowledged the current pair and that pair is a serving one.
//   The primary is ready when every worker is ("every worker ready" is logged each time that
//   becomes true, with the certificate generation).
// - A new config (`serve --istio-config`) is pushed to every worker, and to a worker started
//   later with its init; each acknowledges it once in effect, and "config in effect in every
//   worker" is logged with its generation when the last one has.
// - A worker that does not answer the primary's ping (every PING_INTERVAL_MS) for
//   UNRESPONSIVE_AFTER_MS (its event loop stands still: stopped, an endless loop, a heap in
//   its last throes) is killed and so replaced: otherwise it held its connections, and those
//   handed to it meanwhile, for ever, while the other workers answered every probe.
// - A worker that exits unexpectedly is logged and replaced after a delay that doubles with
//   each death in a row (1 s, 2 s, 4 s … 30 s; a worker that lived a minute resets it), so a
//   worker that cannot live never becomes a fork loop. The others keep serving meanwhile.
//   A worker that fails before the first start is complete fails the start.
// - close() tells every worker to drain (as a single process does on SIGTERM) and waits for
//   them all to exit; a worker that exits non-zero, or is still there at the timeout (killed),
//   counts as failed. During the shutdown delay the primary keeps accepting and handing
//   connections to the draining workers (they answer, not ready, each response closing its
//   connection); then it closes its listener and tells each worker the last connection is on
//   its way. A worker that drains on its own (SIGTERM to it) gets no more connections at once.
import cluster, { type Worker } from "node:cluster";
import net, { type Socket } from "node:net";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Registry } from "prom-client";
import type { Config } from "../config/types.js";
import type { Logger } from "../telemetry/logger.js";
import { aggregateSnapshots, type MetricsSnapshot } from "../telemetry/metrics.js";
import type { NamespaceLookupService } from "../admission/preview-lookup.js";
import type { NamespaceLabelsResult } from "../preview.js";
import type { ServerResponse } from "node:http";
import { DEFAULT_MAX_CONNECTIONS, TLS_CONTEXT_OPTIONS } from "../admission/https.js";
import {
  answerOverloaded,
  answerRetryLater,
  createConnectionShedder,
  type ConnectionShedder,
} from "../admission/connection-shed.js";
import { errorBody, ERRORS } from "../admission/errors.js";
import { Distributor } from "./distributor.js";
import { clientGone, HandOverQueue, type ListenerName } from "./hand-over.js";
import {
  isMessage,
  PREFIX,
  WORKER_ENV,
  type CertificateUpdate,
  type ConfigUpdate,
  type FromWorker,
  type ToWorker,
  type WorkerSettings,
} from "./protocol.js";

export interface RestartPolicy {
  /** Delay before replacing the first worker to die (and after a long-lived one). */
  readonly initialDelayMs: number;
  /** The delay doubles with each death in a row, up to this. */
  readonly maxDelayMs: number;
  /** A worker that lived this long resets the count of deaths in a row. */
  readonly stableAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
};

/**
 * K, the hand-overs on the way to one worker and not yet acknowledged, and W, how long the
 * oldest of them has waited: a worker with K on the way, the oldest for W or more, gets no more
 * (see distributor.ts); when every worker is there, or at --max-connections, a new connection
 * is shed at once.
 *
 * Node passes one socket at a time to a process and waits for it to be taken, so each one on
 * the way waits a worker event-loop turn for the one before it, the queue node:cluster left
 * unbounded. Measured with the overload bench, `--workers 2`, no bound, on the 2-core machine
 * while others' work held its load average at 10-12 (every turn slow): at 100 new
 * connections/s (all answered, p99 1.8 s) the most on the way to one worker at each hand-over
 * was 21 at the median, 60 at p99; at 250/s, 43 and 120; at 1000/s, 53 and 208 — the primary's
 * queue grew with the offered rate, as the round robin's did.
 *
 * K alone (16, before W) shed bursts, not lag: with `--workers 2` pinned to one core, 29-32 of
 * 64 connections opened at once to idle workers were closed with the oldest hand-over 4-8 ms
 * old, and vegeta's open-loop load at 1,000 and 2,000/s (a new connection for each request due
 * while the others wait) lost about 1 % so, a third of the rate the server sustains; one
 * process takes such bursts (it sheds past 256 connections).
 *
 * W is a second, a tenth of the API server's default webhook timeout (10 s, the chart's):
 * a connection that has waited less will still be answered in time, and closing it fails its
 * review (under `failurePolicy: Fail`, a refused Pod: the API server does not retry an
 * admission call). W at 100 ms, before, shed for a busy machine's scheduling rather than for
 * overload: the side-by-side bench (`--workers 2` pinned to one core, keep-alive) lost 3.9 %
 * of 1,000/s on a quiet machine, and on a busy one 2.8 % of 500/s, 3.7 % of 1,000/s and 47 %
 * of 2,000/s, each closed connection reopened with a new TLS handshake that cost more than
 * the review (the shedding fed itself). With 1 s, the same bench on the same machine answered
 * all of 500/s and 1,000/s and 99.94 % of 2,000/s; the overload bench (a new connection per
 * review) still sheds past capacity, at 500/s and above, as one process does. Past K and W the
 * primary holds at most K connections for a worker, plus those of W at the offered rate.
 */
export const MAX_UNACKNOWLEDGED_HANDOVERS = 16;
export const MAX_HANDOVER_WAIT_MS = 1_000;

/** At most one "connections shed" log line this often; the line carries the count since the last. */
const SHED_LOG_INTERVAL_MS = 1_000;

/**
 * How often, at most, the primary looks for connections whose clients are gone among those
 * waiting to be written to a worker, before it sheds one (each look asks the system about every
 * one waiting: at most a few hundred per worker).
 */
const PURGE_INTERVAL_MS = 20;

/**
 * A worker that has not answered the primary's ping for this long is killed (SIGKILL) and
 * replaced. Answering takes one turn of its event loop, under a millisecond, and a second on a
 * machine overloaded; a worker that has not turned for this long has failed every review on its
 * connections (the API server's webhook timeout is at most 30 s) and takes no new one. Long
 * enough that nothing slow but alive reaches it.
 */
export const UNRESPONSIVE_AFTER_MS = 30_000;
/** How often the primary pings each worker (one ping awaited at a time). */
const PING_INTERVAL_MS = 1_000;

/** How long a scrape waits for each worker's metrics before it fails. */
export const COLLECT_TIMEOUT_MS = 5_000;

/**
 * The primary's answer on the admin port when no worker takes the connection (read to its end
 * first, as every shed answer): 503 ERR_NOT_READY with why, retry in a second, connection closed.
 * What a probe or a scrape gets while every worker is being replaced, instead of a reset.
 */
export function answerNoWorker(res: ServerResponse, why: string): void {
  answerRetryLater(res, ERRORS.ERR_NOT_READY.status, JSON.stringify(errorBody("ERR_NOT_READY", `not ready: ${why}`)));
}

/**
 * Deaths in a row of a worker slot, counting the one that just happened after `livedMs`, and
 * the delay before its replacement is forked.
 */
export function nextRestart(
  policy: RestartPolicy,
  deathsInARow: number,
  livedMs: number,
): { deathsInARow: number; delayMs: number } {
  const deaths = livedMs >= policy.stableAfterMs ? 1 : deathsInARow + 1;
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(deaths - 1, 30));
  return { deathsInARow: deaths, delayMs };
}

/** `--workers`: a count, or 0/auto for the cores available (`os.availableParallelism()`). */
export function resolveWorkerCount(requested: number | "auto", available: number): number {
  return requested === "auto" || requested === 0 ? Math.max(1, available) : requested;
}

export interface PrimaryOptions {
  readonly workers: number;
  readonly settings: WorkerSettings;
  readonly logger: Logger;
  /** The primary's own metrics (certificates, its process), added to every scrape. */
  readonly registry: Registry;
  /** The module each worker runs (it calls main.ts's runWorker), and its node flags. */
  readonly exec: string;
  readonly execArgv: readonly string[];
  /** After `drain`, how long a worker may take to exit before it is killed. */
  readonly exitTimeoutMs: number;
  readonly restart?: RestartPolicy;
  /** /preview's namespace lookups, run here for every worker (none: the workers ask for none). */
  readonly lookups?: NamespaceLookupService;
  /**
   * A connection shed because every worker is at its bound (or none takes connections): called
   * with its request once that is read and answered 503, or with undefined when the connection
   * is closed before its handshake (past the shedder's bounds). Must not throw.
   */
  readonly onShed?: (req: IncomingMessage | undefined) => void;
  /** A failed handshake of a shed connection the primary answers 503 (as https.ts's option). Must not throw. */
  readonly onTlsClientError?: (err: NodeJS.ErrnoException, socket: TLSSocket) => void;
  /**
   * A connection whose client reset it before it was handed to a worker: closed by the primary,
   * never handed (a worker counts such a one as a handshake reset). Must not throw.
   */
  readonly onClientGone?: () => void;
  /** Default MAX_UNACKNOWLEDGED_HANDOVERS. */
  readonly maxUnacknowledged?: number;
  /** Default MAX_HANDOVER_WAIT_MS. */
  readonly maxHandOverWaitMs?: number;
  /** Default UNRESPONSIVE_AFTER_MS. */
  readonly unresponsiveAfterMs?: number;
}

export interface Primary {
  readonly host: string;
  readonly port: number;
  readonly adminPort: number | undefined;
  /** Pushes a pair to every worker; a worker started later gets the latest one before it listens. */
  setCertificate(cert: string, key: string, serving: boolean): void;
  /** Pushes a config to every worker; a worker started later gets the latest one with its init. */
  setConfig(config: Config): void;
  /** The generation of the latest config every worker running now has acknowledged. */
  readonly configGeneration: { readonly latest: number; readonly everyWorker: number };
  /** Pushes the nodes' native sidecar support to every worker (and to a worker started later). */
  setNativeSidecars(supported: boolean | undefined): void;
  /** Every worker listens, not draining, with the current pair, which is a serving one. */
  readonly ready: boolean;
  /** Resolves the next time `ready` is true (at once if it is). */
  whenReady(): Promise<void>;
  /** The pids of the workers running now. */
  pids(): number[];
  /** Drains every worker and waits for them; resolves with how many failed. Idempotent. */
  close(): Promise<{ failed: number }>;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  /** The worker has its init: it takes every pair pushed from then on. */
  greeted: boolean;
  startedAt: number;
  listening: boolean;
  applied: number;
  configApplied: number;
  deathsInARow: number;
  failure: string | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  /** The ping awaiting its pong, and when (performance.now) it was sent. */
  ping: { readonly id: number; readonly since: number } | undefined;
}

export async function startPrimary(
  opts: PrimaryOptions,
  initial: { cert: string; key: string; serving: boolean },
): Promise<Primary> {
  const { logger, settings } = opts;
  const policy = opts.restart ?? DEFAULT_RESTART_POLICY;
  let certificate: CertificateUpdate = { ...initial, generation: 1 };
  let config: ConfigUpdate = { config: settings.config, generation: 1 };
  let everyWorkerConfig = 0;
  let nativeSidecars: boolean | null = null;
  let closing: Promise<{ failed: number }> | undefined;
  let started = false;
  let wasReady = false;
  let readyWaiters: Array<() => void> = [];
  let startFailed: ((e: Error) => void) | undefined;
  let allListening: (() => void) | undefined;
  let nextCollect = 1;
  const collects = new Map<
    number,
    { slot: Slot; resolve: (s: MetricsSnapshot) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, index) => ({
    index,
    worker: undefined,
    greeted: false,
    startedAt: 0,
    listening: false,
    applied: 0,
    configApplied: 0,
    deathsInARow: 0,
    failure: undefined,
    restartTimer: undefined,
    ping: undefined,
  }));

  const maxHandOverWaitMs = opts.maxHandOverWaitMs ?? MAX_HANDOVER_WAIT_MS;
  const distributor = new Distributor({
    maxUnacknowledged: opts.maxUnacknowledged ?? MAX_UNACKNOWLEDGED_HANDOVERS,
    maxWaitMs: maxHandOverWaitMs,
    maxOpen: settings.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
  });
  /**
   * Workers by their cluster id (the distributor's id: a replacement is a new one), with the
   * connections on their way to each (hand-over.ts): those not yet written go to another worker
   * when it exits or drains on its own; those written and never acknowledged, when it exits.
   */
  const byId = new Map<number, { worker: Worker; queue: HandOverQueue }>();
  let handOvers = 0;
  const shedLog = { webhook: { since: 0, last: -Infinity }, admin: { since: 0, last: -Infinity } };
  let lastPurge = -Infinity;
  /** Where the search for the admin port's next worker starts (ties go round robin). */
  let nextAdmin = 0;
  /** The admin port's answers when no worker takes its connections: not ready, and why. */
  const adminShedder: ConnectionShedder | undefined =
    settings.adminPort === undefined
      ? undefined
      : createConnectionShedder({
          contextOptions: TLS_CONTEXT_OPTIONS,
          cert: certificate.cert,
          key: certificate.key,
          answer: (_req, res) => answerNoWorker(res, noWorkerReason()),
          ...(opts.onTlsClientError === undefined ? {} : { onTlsClientError: opts.onTlsClientError }),
        });

  // Both ports are the primary's own listeners (below): the workers listen on none.
  cluster.setupPrimary({ exec: opts.exec, execArgv: [...opts.execArgv], silent: false });

  const isReady = (): boolean =>
    closing === undefined &&
    certificate.serving &&
    slots.every((s) => s.worker !== undefined && s.listening && s.applied === certificate.generation);
  const checkReady = (): void => {
    const ready = isReady();
    if (ready && !wasReady) {
      logger.info({ workers: slots.length, pids: pids(), generation: certificate.generation }, "every worker ready");
      const waiters = readyWaiters;
      readyWaiters = [];
      for (const w of waiters) w();
    }
    wasReady = ready;
    if (!started && allListening !== undefined && slots.every((s) => s.listening)) allListening();
  };
  /** Logs once when every worker running has acknowledged the latest config. */
  const checkConfig = (): void => {
    if (config.generation === everyWorkerConfig) return;
    const live = slots.filter((s) => s.worker !== undefined);
    if (live.length === 0 || !live.every((s) => s.configApplied === config.generation)) return;
    everyWorkerConfig = config.generation;
    if (config.generation > 1)
      logger.info({ workers: live.length, generation: config.generation }, "config in effect in every worker");
  };
  const pids = (): number[] =>
    slots.flatMap((s) => (s.worker?.process.pid === undefined ? [] : [s.worker.process.pid]));

  const send = (w: Worker, m: ToWorker): void => {
    if (!w.isConnected()) return;
    try {
      w.send(m);
    } catch (err) {
      logger.warn({ err, worker: w.id }, "message to a worker not sent");
    }
  };

  const collect = (slot: Slot, w: Worker): Promise<MetricsSnapshot> =>
    new Promise((resolve, reject) => {
      const id = nextCollect++;
      const timer = setTimeout(() => {
        collects.delete(id);
        reject(new Error(`worker ${slot.index} did not send its metrics within ${COLLECT_TIMEOUT_MS / 1000}s`));
      }, COLLECT_TIMEOUT_MS);
      collects.set(id, { slot, resolve, reject, timer });
      send(w, { type: `${PREFIX}collect`, id });
    });
  /** The sum over the primary and every worker that listens. */
  const exposition = async (): Promise<string> => {
    const live = slots.flatMap((s) =>
      s.worker !== undefined && s.listening && s.worker.isConnected() ? [collect(s, s.worker)] : [],
    );
    const snapshots = await Promise.all(live);
    return aggregateSnapshots([await opts.registry.getMetricsAsJSON(), ...snapshots]);
  };

  /** A worker's /preview lookups, answered here; the token is never logged. */
  const lookup = (w: Worker, id: number, token: unknown, namespaces: unknown): void => {
    const reply = (answer: { results: [string, NamespaceLabelsResult][] } | { error: string }): void =>
      send(w, { type: `${PREFIX}looked-up`, id, ...answer });
    if (opts.lookups === undefined) return reply({ error: "this injector has no cluster access" });
    if (
      typeof token !== "string" ||
      !Array.isArray(namespaces) ||
      !namespaces.every((n): n is string => typeof n === "string")
    ) {
      return reply({ error: "a lookup needs a token and a list of namespace names" });
    }
    opts.lookups.lookup(token, namespaces).then(
      (results) => reply({ results: [...results] }),
      (err: unknown) => {
        const error = err instanceof Error ? err.message : String(err);
        logger.warn({ error }, "namespace lookup for a worker failed");
        reply({ error });
      },
    );
  };

  const onMessage = (slot: Slot, w: Worker, m: unknown): void => {
    if (!isMessage<FromWorker>(m)) return;
    switch (m.type) {
      case `${PREFIX}hello`:
        slot.greeted = true;
        send(w, {
          type: `${PREFIX}init`,
          settings: { ...settings, config: config.config },
          configGeneration: config.generation,
          certificate,
          nativeSidecars,
        });
        break;
      case `${PREFIX}listening`:
        slot.listening = true;
        // A candidate for connections from now on (a replacement during the drain is not).
        // Warming up (--warm-up) until it takes its first pair: chosen only when no ready worker is.
        if (closing === undefined) distributor.add(w.id, { warming: settings.warmUpMs > 0 });
        logger.info({ worker: slot.index, workerPid: w.process.pid }, "worker listening");
        checkReady();
        break;
      case `${PREFIX}applied`:
        slot.applied = m.generation;
        // A worker takes its first pair once warm (main.ts's runWorker).
        distributor.warmed(w.id);
        checkReady();
        break;
      case `${PREFIX}config-applied`:
        slot.configApplied = m.generation;
        checkConfig();
        break;
      case `${PREFIX}snapshot`: {
        const c = collects.get(m.id);
        if (c === undefined) break;
        collects.delete(m.id);
        clearTimeout(c.timer);
        c.resolve(m.snapshot);
        break;
      }
      case `${PREFIX}expose`:
        exposition().then(
          (text) => send(w, { type: `${PREFIX}exposition`, id: m.id, text }),
          (err: unknown) => {
            const error = err instanceof Error ? err.message : String(err);
            logger.warn({ error }, "metrics not gathered from every worker");
            send(w, { type: `${PREFIX}exposition`, id: m.id, error });
          },
        );
        break;
      case `${PREFIX}failed`:
        slot.failure = m.message;
        break;
      case `${PREFIX}accepted`: {
        // The worker has its own descriptor of the connection: the primary's is closed, and the
        // next one written. By id: a hand-over Node could not deliver (the worker out of
        // descriptors) is never acknowledged.
        const h = byId.get(w.id)?.queue.acknowledged(m.id);
        if (h?.listener === "webhook") distributor.acknowledged(w.id, m.open);
        else distributor.reported(w.id, m.open);
        break;
      }
      case `${PREFIX}open`:
        distributor.reported(w.id, m.open);
        break;
      case `${PREFIX}draining`: {
        // Drained on its own (SIGTERM to the worker): the others take the connections at once,
        // those waiting for it among them. Drained by close(): it keeps getting them until the
        // primary's shutdown delay is over.
        if (closing !== undefined) break;
        distributor.remove(w.id);
        const queue = byId.get(w.id)?.queue;
        for (const h of queue?.takeWaiting() ?? []) handOver(h.socket, h.listener);
        send(w, { type: `${PREFIX}last-connection` });
        break;
      }
      case `${PREFIX}lookup`:
        lookup(w, m.id, m.token, m.namespaces);
        break;
      case `${PREFIX}pong`:
        if (slot.worker === w && slot.ping?.id === m.id) slot.ping = undefined;
        break;
    }
  };

  const fork = (slot: Slot): void => {
    slot.restartTimer = undefined;
    slot.ping = undefined;
    slot.greeted = false;
    slot.listening = false;
    slot.applied = 0;
    slot.configApplied = 0;
    slot.failure = undefined;
    slot.startedAt = Date.now();
    const w = cluster.fork({ [WORKER_ENV]: String(slot.index) });
    slot.worker = w;
    const queue = new HandOverQueue({
      // keepOpen: the primary keeps its descriptor until the worker says it has the connection
      // (closed then), or dies (closed then too). Sent with keepOpen false, Node closes it only
      // when the worker acknowledges the handle: a worker killed before that left the
      // connection open in the primary for good, its client waiting for a handshake.
      write: (h, done) =>
        w.send(
          { type: `${PREFIX}connection`, id: h.id, listener: h.listener } satisfies ToWorker,
          h.socket,
          { keepOpen: true },
          done,
        ),
      dropped: (h, why) => {
        if (h.listener === "webhook") distributor.lost(w.id, h.at);
        if (why === "gone") opts.onClientGone?.();
      },
      // One the worker never acknowledges (it could not receive the descriptor) holds the next
      // back this long at most.
      ackTimeoutMs: maxHandOverWaitMs,
    });
    byId.set(w.id, { worker: w, queue });
    w.on("message", (m: unknown) => onMessage(slot, w, m));
    w.on("error", (err: Error) => logger.warn({ err, worker: slot.index }, "worker channel error"));
    w.once("exit", (code: number | null, signal: NodeJS.Signals | null) => onExit(slot, w, code, signal));
  };

  let exits: { failed: number; pending: Set<Worker>; done: () => void } | undefined;
  const onExit = (slot: Slot, w: Worker, code: number | null, signal: NodeJS.Signals | null): void => {
    if (slot.worker === w) slot.worker = undefined;
    slot.greeted = false;
    slot.listening = false;
    distributor.remove(w.id);
    // Its connections not yet written go to another worker (or are shed); so do those written
    // and never acknowledged, once every message it sent is read (its channel closed): an
    // acknowledgement read by then closes the primary's descriptor of that one instead.
    const queue = byId.get(w.id)?.queue;
    for (const h of queue?.close() ?? []) handOver(h.socket, h.listener);
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(channelTimer);
      byId.delete(w.id);
      for (const h of queue?.takeWritten() ?? []) handOver(h.socket, h.listener);
    };
    // Should the channel's end never be seen, its connections are not held longer than this.
    const channelTimer = setTimeout(settle, maxHandOverWaitMs);
    if (w.isConnected()) w.once("disconnect", settle);
    else settle();
    for (const [id, c] of collects) {
      if (c.slot !== slot) continue;
      collects.delete(id);
      clearTimeout(c.timer);
      c.reject(new Error(`worker ${slot.index} exited during the scrape`));
    }
    const pid = w.process.pid;
    if (exits !== undefined) {
      if (code !== 0 && exits.pending.has(w)) {
        exits.failed += 1;
        logger.error(
          { worker: slot.index, workerPid: pid, code, signal, reason: slot.failure },
          "worker failed while stopping",
        );
      }
      exits.pending.delete(w);
      if (exits.pending.size === 0) exits.done();
      return;
    }
    checkReady();
    if (!started) {
      startFailed?.(
        new Error(
          `worker ${slot.index} exited before it was listening (${signal ?? `code ${code}`})${slot.failure === undefined ? "" : `: ${slot.failure}`}`,
        ),
      );
      return;
    }
    const next = nextRestart(policy, slot.deathsInARow, Date.now() - slot.startedAt);
    slot.deathsInARow = next.deathsInARow;
    logger.error(
      {
        worker: slot.index,
        workerPid: pid,
        code,
        signal,
        reason: slot.failure,
        restartInMs: next.delayMs,
        deathsInARow: next.deathsInARow,
      },
      "worker exited unexpectedly; replacing it",
    );
    slot.restartTimer = setTimeout(() => {
      if (closing !== undefined) return;
      fork(slot);
      logger.info({ worker: slot.index, workerPid: slot.worker?.process.pid }, "worker replaced");
    }, next.delayMs);
  };

  /**
   * A connection no worker takes: answered 503 (or closed, past the shedder's bound), logged at
   * most once a second per port; on the webhook port, counted (onShed).
   */
  const shed = (socket: Socket, listener: ListenerName): void => {
    const log = shedLog[listener];
    if (listener === "admin") {
      adminShedder?.shed(socket);
    } else if (!shedder.shed(socket)) opts.onShed?.(undefined);
    log.since += 1;
    const now = Date.now();
    if (now - log.last < SHED_LOG_INTERVAL_MS) return;
    const loads = {
      workers: distributor.loads(),
      waitedMs: distributor.waits(performance.now()).map((w) => Math.round(w.waitedMs)),
    };
    if (listener === "admin") {
      logger.warn(
        { code: "ERR_NOT_READY", answered: log.since, reason: noWorkerReason(), ...loads },
        "admin connections answered by the primary: no worker takes them",
      );
    } else {
      logger.warn(
        { code: "ERR_OVERLOADED", shed: log.since, ...loads },
        "connections shed: every worker is at its bound",
      );
    }
    log.last = now;
    log.since = 0;
  };

  /** Why no worker takes an admin-port connection, as the primary's answer says. */
  const noWorkerReason = (): string =>
    distributor.size === 0
      ? "no worker is running: the workers are being replaced"
      : `every worker is stalled: none has taken a connection handed to it within ${maxHandOverWaitMs / 1000}s`;

  /**
   * The webhook port's next worker (distributor.ts). Before a connection is shed, the connections
   * waiting to be written whose clients have gone are dropped (at most every PURGE_INTERVAL_MS),
   * so that they never take the place of a live one.
   */
  const chooseForWebhook = (now: number): number | undefined => {
    const id = distributor.choose(now);
    if (id !== undefined || now - lastPurge < PURGE_INTERVAL_MS) return id;
    lastPurge = now;
    let purged = 0;
    for (const { queue } of byId.values()) purged += queue.purge();
    return purged > 0 ? distributor.choose(now) : undefined;
  };

  /**
   * The admin port's next worker: of those that take connections, one whose channel is not
   * stalled, with the fewest hand-overs on the way, ties in turn; undefined when there is none.
   */
  const chooseForAdmin = (now: number): number | undefined => {
    const ids = distributor.ids();
    let best: { id: number; at: number; size: number } | undefined;
    for (let k = 0; k < ids.length; k++) {
      const at = (nextAdmin + k) % ids.length;
      const id = ids[at];
      const queue = id === undefined ? undefined : byId.get(id)?.queue;
      if (id === undefined || queue === undefined || queue.stalledFor(now) >= maxHandOverWaitMs) continue;
      if (best === undefined || queue.size < best.size) best = { id, at, size: queue.size };
    }
    if (best === undefined) return undefined;
    nextAdmin = (best.at + 1) % ids.length;
    return best.id;
  };

  /**
   * Each accepted connection (not read from: pauseOnConnect) goes to the worker chosen for its
   * port, unless its client has gone already; none: shed.
   */
  const handOver = (socket: Socket, listener: ListenerName): void => {
    if (clientGone(socket)) {
      socket.destroy();
      opts.onClientGone?.();
      return;
    }
    const now = performance.now();
    const id = listener === "webhook" ? chooseForWebhook(now) : chooseForAdmin(now);
    const to = id === undefined ? undefined : byId.get(id);
    if (id === undefined || to === undefined || !to.worker.isConnected()) {
      if (id !== undefined && listener === "webhook") distributor.lost(id, now);
      shed(socket, listener);
      return;
    }
    to.queue.push({ id: ++handOvers, socket, listener, at: now });
  };
  /** A listener's connection: a reset before the hand-over must not reach the process as an unhandled error. */
  const accepted =
    (listener: ListenerName) =>
    (socket: Socket): void => {
      socket.on("error", () => undefined);
      handOver(socket, listener);
    };

  /**
   * Pings every listening worker, one ping awaited at a time, and kills one whose ping has waited
   * UNRESPONSIVE_AFTER_MS (its exit replaces it). Not while the primary itself has stood still
   * (a tick late by more than a few intervals: stopped, or the machine): then the pongs may be
   * waiting, unread, in the channels, and every ping starts again.
   */
  const unresponsiveAfterMs = opts.unresponsiveAfterMs ?? UNRESPONSIVE_AFTER_MS;
  let pings = 0;
  let lastTick = performance.now();
  const watch = (): void => {
    const now = performance.now();
    const primaryStood = now - lastTick > 3 * PING_INTERVAL_MS;
    lastTick = now;
    for (const slot of slots) {
      const w = slot.worker;
      if (w === undefined || !slot.listening || !w.isConnected()) continue;
      if (slot.ping !== undefined && !primaryStood) {
        const waited = now - slot.ping.since;
        if (waited < unresponsiveAfterMs) continue;
        logger.error(
          { worker: slot.index, workerPid: w.process.pid, waitedMs: Math.round(waited) },
          "worker unresponsive: its event loop has not turned; killed, to be replaced",
        );
        slot.ping = undefined;
        w.process.kill("SIGKILL");
        continue;
      }
      slot.ping = { id: ++pings, since: now };
      send(w, { type: `${PREFIX}ping`, id: slot.ping.id });
    }
  };
  const watchdog = setInterval(watch, PING_INTERVAL_MS);
  watchdog.unref();

  const stopAll = (signal: NodeJS.Signals): void => {
    clearInterval(watchdog);
    for (const s of slots) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
      s.worker?.process.kill(signal);
    }
  };

  try {
    await new Promise<void>((resolve, reject) => {
      allListening = resolve;
      startFailed = reject;
      for (const slot of slots) fork(slot);
    });
  } catch (e) {
    adminShedder?.close();
    exits = { failed: 0, pending: new Set(slots.flatMap((s) => (s.worker ? [s.worker] : []))), done: () => undefined };
    stopAll("SIGKILL");
    throw e;
  }
  started = true;
  checkReady();
  // The shed connections' answers (connection-shed.ts), with the latest pair.
  const shedder = createConnectionShedder({
    contextOptions: TLS_CONTEXT_OPTIONS,
    cert: certificate.cert,
    key: certificate.key,
    answer: (req, res) => {
      opts.onShed?.(req);
      answerOverloaded(res);
    },
    ...(opts.onTlsClientError === undefined ? {} : { onTlsClientError: opts.onTlsClientError }),
  });
  const shedders = [shedder, ...(adminShedder === undefined ? [] : [adminShedder])];
  // noDelay: TCP_NODELAY is set on the sockets by the server that accepts them (this one), and
  // stays with each through the hand-over.
  const listener = net.createServer({ pauseOnConnect: true, noDelay: true }, accepted("webhook"));
  const adminListener =
    settings.adminPort === undefined
      ? undefined
      : net.createServer({ pauseOnConnect: true, noDelay: true }, accepted("admin"));
  const listen = (server: net.Server, port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, settings.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  try {
    await listen(listener, settings.port);
    if (adminListener !== undefined) await listen(adminListener, settings.adminPort ?? 0);
  } catch (e) {
    listener.close();
    adminListener?.close();
    for (const sh of shedders) sh.close();
    exits = { failed: 0, pending: new Set(slots.flatMap((s) => (s.worker ? [s.worker] : []))), done: () => undefined };
    stopAll("SIGKILL");
    throw e;
  }
  // Past the listen, an error on a listener (an accept that failed: EMFILE) is logged, never thrown.
  listener.on("error", (err) => logger.error({ err }, "webhook listener error"));
  adminListener?.on("error", (err) => logger.error({ err }, "admin listener error"));
  const portOf = (server: net.Server | undefined): number | undefined => {
    const a = server?.address();
    return typeof a === "object" && a !== null ? a.port : undefined;
  };
  const bound = {
    host: settings.host,
    port: portOf(listener) ?? settings.port,
    adminPort: adminListener === undefined ? undefined : (portOf(adminListener) ?? settings.adminPort),
  };

  const close = (): Promise<{ failed: number }> => {
    closing ??= new Promise((resolve) => {
      // A worker stuck while draining is killed at the drain's timeout, counted as failed.
      clearInterval(watchdog);
      const pending = new Set<Worker>();
      for (const s of slots) {
        if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
        s.restartTimer = undefined;
        const w = s.worker;
        if (w === undefined) continue;
        if (s.listening) {
          pending.add(w);
          send(w, { type: `${PREFIX}drain` });
        } else {
          // A replacement still starting serves no one: stopped, not drained.
          w.process.kill("SIGKILL");
        }
      }
      // As a single process keeps accepting during the shutdown delay (not ready, every answer
      // closing its connection), the primary keeps handing connections to the workers that do;
      // then it stops accepting, and tells each worker the last one is on its way.
      const stopAccepting = (): void => {
        listener.close();
        adminListener?.close();
        for (const sh of shedders) sh.close();
        for (const s of slots) {
          const w = s.worker;
          if (w === undefined) continue;
          distributor.remove(w.id);
          // After every connection on its way to it: each is written before this word.
          if (pending.has(w)) byId.get(w.id)?.queue.afterWritten(() => send(w, { type: `${PREFIX}last-connection` }));
        }
      };
      if (settings.shutdownDelayMs > 0) setTimeout(stopAccepting, settings.shutdownDelayMs);
      else stopAccepting();
      const timer = setTimeout(() => {
        for (const w of pending) {
          logger.error({ workerPid: w.process.pid }, "worker still running at the drain timeout; killed");
          w.process.kill("SIGKILL");
        }
      }, opts.exitTimeoutMs);
      exits = {
        failed: 0,
        pending,
        done: () => {
          clearTimeout(timer);
          resolve({ failed: exits?.failed ?? 0 });
        },
      };
      if (pending.size === 0) exits.done();
    });
    return closing;
  };

  return {
    host: bound.host,
    port: bound.port,
    adminPort: bound.adminPort,
    setCertificate(cert, key, serving) {
      certificate = { cert, key, serving, generation: certificate.generation + 1 };
      try {
        for (const sh of shedders) sh.setCertificate(cert, key);
      } catch (err) {
        logger.warn({ err, generation: certificate.generation }, "shed connections keep the previous pair");
      }
      for (const s of slots)
        if (s.worker !== undefined && s.greeted) send(s.worker, { type: `${PREFIX}certificate`, ...certificate });
      checkReady();
    },
    setConfig(next) {
      config = { config: next, generation: config.generation + 1 };
      for (const s of slots)
        if (s.worker !== undefined && s.greeted) send(s.worker, { type: `${PREFIX}config`, ...config });
    },
    get configGeneration() {
      return { latest: config.generation, everyWorker: everyWorkerConfig };
    },
    setNativeSidecars(supported) {
      nativeSidecars = supported ?? null;
      for (const s of slots)
        if (s.worker !== undefined && s.greeted) send(s.worker, { type: `${PREFIX}native`, nativeSidecars });
    },
    get ready() {
      return isReady();
    },
    whenReady() {
      if (isReady()) return Promise.resolve();
      return new Promise((resolve) => readyWaiters.push(resolve));
    },
    pids,
    close,
  };
}
