// The messages between the primary of `serve --workers N` and its workers (node:cluster IPC).
//
// primary -> worker
//   init         once, first: what to serve with, the certificate pair in use, and whether the
//                nodes run native sidecars (`nativeSidecars: auto`; null: not known). A worker
//                listens only once it has it, so a worker started later (a replacement) never
//                serves a pair older than the others', nor a stale node state.
//   certificate  every new pair (rotation, reload, renewal); the worker acknowledges it.
//   native       every change of the nodes' native sidecar support, which the primary watches.
//   config       every new config (`serve --istio-config`: Istio's ConfigMaps changed), with its
//                generation (init's config is generation `configGeneration`); the worker
//                swaps it in between requests and acknowledges (config-applied).
//   looked-up    the answer to a worker's lookup: a label or the reason it is not known, per
//                namespace, or why nothing was looked up.
//   collect      the worker's own metrics, for a scrape that one of the workers is answering.
//   exposition   the answer to a worker's expose: the sum over every process, or why not.
//   connection   with a socket handle: a connection the primary accepted on the webhook port or
//                the admin port (`listener`), not yet read from (no TLS yet); the worker serves it
//                on that listener and acknowledges. Without a handle (Node's, when the primary
//                closed the connection before it was written): acknowledged, not taken.
//   ping         is the worker's event loop turning? Answered with pong at once (see primary.ts's
//                UNRESPONSIVE_AFTER_MS).
//   drain        stop as a single process does on SIGTERM, then exit 0; connections keep coming
//                until last-connection.
//   last-connection  no more connections come to this worker (every one handed before it is
//                ahead of it on the channel): after the primary's shutdown delay, or at once
//                when the worker drains on its own.
// worker -> primary
//   hello        the worker listens to the channel: the primary answers with init.
//   listening    its listeners are up (both ports' connections come from the primary, from
//                now on); ready once its pair is a serving one.
//   applied      the pair of this generation is in every listener of the worker.
//   config-applied  the config of this generation answers every request the worker reads
//                from now on (sent once listening, and after each config).
//   accepted     a connection handed over is taken (or refused, `taken: false`), and how many
//                connections the worker's webhook listener has open now: the primary closes its
//                descriptor, writes the next hand-over (hand-over.ts), and, for the webhook
//                port, its count of hand-overs on the way drops by one (see distributor.ts).
//   open         how many connections the worker has open, after some closed (batched).
//   draining     the worker drains (SIGTERM to it): the primary hands it nothing more.
//   pong         the answer to ping.
//   snapshot     the answer to collect.
//   expose       /metrics was asked of this worker: the primary sums every process.
//   failed       the worker could not start (it exits 1 right after); the message says why.
//   lookup       /preview wants namespace labels for a caller's bearer token: the primary, the
//                one process with the Kubernetes client, reviews the token and reads them
//                (admission/preview-lookup.ts), with one cache and one limit for every worker.
//                The token crosses only this channel, and is never logged.
//
// Every message carries `type` with the PREFIX, so nothing else on the channel is mistaken for one.

import type { Config } from "../config/types.js";
import type { ListenerName } from "./hand-over.js";
import type { NamespaceLabelsResult } from "../preview.js";
import type { MetricsSnapshot } from "../telemetry/metrics.js";

export const PREFIX = "sidecar-injector:";

/** Environment variable set on a worker: its entry (main.ts's runWorker) serves only with it. */
export const WORKER_ENV = "SIDECAR_INJECTOR_WORKER";

/** What a worker serves with; plain data (it crosses the IPC channel as JSON). */
export interface WorkerSettings {
  readonly config: Config;
  readonly host: string;
  readonly port: number;
  readonly adminPort?: number;
  readonly logLevel: string;
  readonly shutdownDelayMs: number;
  /** Before it is ready, each serving process warms up this long at most (admission/warm-up.ts); 0: not at all. */
  readonly warmUpMs: number;
  readonly maxConcurrentRequests?: number;
  readonly maxConnections?: number;
  /**
   * Whether /preview may ask the API server for namespace labels (through the primary, in a
   * worker), and which namespace is ours.
   */
  readonly clusterAccess: boolean;
  readonly ownNamespace: string;
}

export interface CertificateUpdate {
  readonly cert: string;
  readonly key: string;
  /** Increases with every pair the primary pushes. */
  readonly generation: number;
  /**
   * A certificate the API server trusts. False for the placeholder a self-managing replica
   * serves until its first serving certificate: the worker listens but is not ready.
   */
  readonly serving: boolean;
}

export interface ConfigUpdate {
  /** Plain data: checked and frozen again by the worker (buildConfig). */
  readonly config: Config;
  /** Increases with every config the primary pushes. */
  readonly generation: number;
}

/** Per namespace: its labels, or why they are not known (a Map does not cross the channel). */
export type LookupResults = ReadonlyArray<readonly [string, NamespaceLabelsResult]>;

export type ToWorker =
  | {
      readonly type: `${typeof PREFIX}init`;
      readonly settings: WorkerSettings;
      readonly certificate: CertificateUpdate;
      readonly nativeSidecars: boolean | null;
      /** The generation of settings.config. */
      readonly configGeneration: number;
    }
  | { readonly type: `${typeof PREFIX}native`; readonly nativeSidecars: boolean | null }
  | ({ readonly type: `${typeof PREFIX}config` } & ConfigUpdate)
  | {
      readonly type: `${typeof PREFIX}looked-up`;
      readonly id: number;
      readonly results?: LookupResults;
      readonly error?: string;
    }
  | ({ readonly type: `${typeof PREFIX}certificate` } & CertificateUpdate)
  | { readonly type: `${typeof PREFIX}collect`; readonly id: number }
  | {
      readonly type: `${typeof PREFIX}exposition`;
      readonly id: number;
      readonly text?: string;
      readonly error?: string;
    }
  | { readonly type: `${typeof PREFIX}connection`; readonly id: number; readonly listener: ListenerName }
  | { readonly type: `${typeof PREFIX}ping`; readonly id: number }
  | { readonly type: `${typeof PREFIX}drain` }
  | { readonly type: `${typeof PREFIX}last-connection` };

export type FromWorker =
  | { readonly type: `${typeof PREFIX}hello` }
  | { readonly type: `${typeof PREFIX}listening` }
  | { readonly type: `${typeof PREFIX}applied`; readonly generation: number }
  | { readonly type: `${typeof PREFIX}config-applied`; readonly generation: number }
  | {
      readonly type: `${typeof PREFIX}accepted`;
      readonly id: number;
      readonly listener: ListenerName;
      readonly taken: boolean;
      readonly open: number;
    }
  | { readonly type: `${typeof PREFIX}open`; readonly open: number }
  | { readonly type: `${typeof PREFIX}draining` }
  | { readonly type: `${typeof PREFIX}pong`; readonly id: number }
  | { readonly type: `${typeof PREFIX}snapshot`; readonly id: number; readonly snapshot: MetricsSnapshot }
  | { readonly type: `${typeof PREFIX}expose`; readonly id: number }
  | { readonly type: `${typeof PREFIX}failed`; readonly message: string }
  | {
      readonly type: `${typeof PREFIX}lookup`;
      readonly id: number;
      readonly token: string;
      readonly namespaces: readonly string[];
    };

/** Whether `m` is one of ours (anything else on the channel is ignored). */
export function isMessage<T extends { readonly type: string }>(m: unknown): m is T {
  return typeof m === "object" && m !== null && "type" in m && typeof m.type === "string" && m.type.startsWith(PREFIX);
}
