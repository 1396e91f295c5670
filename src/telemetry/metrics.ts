// prom-client registry factory. Each call returns a fresh Registry (never prom-client's global
// default), so tests and several servers in one process do not share counters.
//
// Label values are bounded: skip reasons come from SKIP_REASONS, failure reasons are error
// codes from the admission error registry, dry-run decisions are REVIEW_DECISIONS. Never a pod name, namespace or
// free-form message.
//
// With `serve --workers N` every process keeps its own registry; what /metrics answers is their
// sum (see aggregateSnapshots), gathered by the primary over IPC (src/workers/primary.ts).

import { AggregatorRegistry, Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { SKIP_REASONS } from "../injection/decisions.js";

/** Why a review was answered without a patch: one table with the decision codes (src/injection/decisions.ts). */
export { SKIP_REASONS, type SkipReason } from "../injection/decisions.js";

/**
 * How a review was answered (admission/review.ts's ReviewDecision): the label of the dry-run
 * counter. injected: with a patch; skipped: a Pod CREATE the decision left alone; allowed: not
 * a Pod CREATE; refused: allowed:false.
 */
export const REVIEW_DECISIONS = ["injected", "skipped", "allowed", "refused"] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

/** Why a TLS handshake (or a renegotiation) was refused or failed: bounded, from the OpenSSL error code. */
export const TLS_HANDSHAKE_FAILURE_REASONS = {
  /** A protocol version below TLS 1.2, or a record that is not TLS at all. */
  PROTOCOL: "protocol",
  /** Plain HTTP sent to the HTTPS port. */
  PLAIN_HTTP: "plain_http",
  /** No cipher suite, signature algorithm or key-exchange group in common. */
  CIPHER: "cipher",
  /** The client does not trust our CA (its caBundle lacks our issuer). */
  UNKNOWN_CA: "unknown_ca",
  /** The client rejects our certificate: wrong names, expired, unsupported. */
  BAD_CERTIFICATE: "bad_certificate",
  /** The handshake did not finish in time. */
  TIMEOUT: "timeout",
  /** The client closed or reset the connection before the handshake finished (a TCP probe that connects and closes
   * counts here). */
  RESET: "reset",
  /** A client-initiated renegotiation, refused. */
  RENEGOTIATION: "renegotiation",
  OTHER: "other",
} as const;
export type TlsHandshakeFailureReason =
  (typeof TLS_HANDSHAKE_FAILURE_REASONS)[keyof typeof TLS_HANDSHAKE_FAILURE_REASONS];

/** Why certificate files (`--tls-cert`/`--tls-key`) were not reloaded: the old pair stays in use. */
export const CERT_RELOAD_FAILURE_REASONS = {
  /** A file cannot be read. */
  READ: "read",
  /** A file holds no PEM certificate, or no unencrypted PEM private key. */
  PARSE: "parse",
  /** The key does not belong to the certificate. */
  MISMATCH: "mismatch",
  EXPIRED: "expired",
  NOT_YET_VALID: "not_yet_valid",
  /** The TLS server would not take the pair (e.g. a key too weak for OpenSSL's security level). */
  REJECTED: "rejected",
} as const;
export type CertReloadFailureReason = (typeof CERT_RELOAD_FAILURE_REASONS)[keyof typeof CERT_RELOAD_FAILURE_REASONS];

/**
 * What came of a change of the config's source (`serve --istio-config`: Istio's ConfigMaps):
 * applied (in effect in every process from then on), failed (not imported; the last good
 * config stays in effect).
 */
export const CONFIG_RELOAD_RESULTS = ["applied", "failed"] as const;
export type ConfigReloadResult = (typeof CONFIG_RELOAD_RESULTS)[number];

/** Upper bounds in seconds: the work per Pod is expected to take well under a millisecond. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

export interface Metrics {
  readonly registry: Registry;
  /** Every POST to /inject, well-formed or not. */
  readonly requests: Counter;
  /** Reviews answered with a patch. */
  readonly success: Counter;
  readonly skip: Counter<"reason">;
  readonly failure: Counter<"reason">;
  /**
   * Reviews with `request.dryRun: true` (`kubectl apply --dry-run=server`), by decision: also
   * counted above like any review; nothing they answer is stored.
   */
  readonly dryRun: Counter<"decision">;
  /** From the first byte of the handler to the response being handed to the socket. */
  readonly duration: Histogram;
  /** TLS handshakes refused or failed, by TlsHandshakeFailureReason. */
  readonly tlsHandshakeFailures: Counter<"reason">;
  /** Changed certificate files not loaded (the old pair kept), by CertReloadFailureReason. */
  readonly certReloadFailures: Counter<"reason">;
  /** Changes of the config's source (`--istio-config`), by ConfigReloadResult. */
  readonly configReloads: Counter<"result">;
}

/** One process's metrics as `Registry.getMetricsAsJSON()` gives them: what crosses between processes. */
export type MetricsSnapshot = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

/**
 * The Prometheus text of the sum of several processes' metrics: counters and histograms add
 * up, series by series; gauges add up too (RSS, heap, handles: the pod's total), except where
 * prom-client's default metrics say otherwise (event-loop lag averaged, start time and version
 * taken once).
 */
export function aggregateSnapshots(snapshots: readonly MetricsSnapshot[]): Promise<string> {
  return AggregatorRegistry.aggregate([...snapshots]).metrics();
}

/** A registry whose text (what /metrics answers) comes from elsewhere: the sum over every process. */
class ExposedRegistry extends Registry {
  constructor(private readonly expose: () => Promise<string>) {
    super();
  }

  override metrics(): Promise<string> {
    return this.expose();
  }
}

export interface MetricsOptions {
  /**
   * What /metrics answers instead of this process's own text (a worker of `serve --workers N`:
   * the sum over every process). `registry.getMetricsAsJSON()` still gives this process's own.
   */
  readonly exposition?: () => Promise<string>;
  /**
   * Whether the registry has prom-client's process metrics (CPU, memory, event loop, garbage
   * collection); default true. Without them the registry sets up nothing that outlives it (a
   * warm-up's throwaway one, admission/warm-up.ts).
   */
  readonly processMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = opts.exposition === undefined ? new Registry() : new ExposedRegistry(opts.exposition);
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "sidecar_injection_requests_total",
    help: "Total number of sidecar injection requests.",
    registers: [registry],
  });
  const success = new Counter({
    name: "sidecar_injection_success_total",
    help: "Total number of successful sidecar injections.",
    registers: [registry],
  });
  const skip = new Counter({
    name: "sidecar_injection_skip_total",
    help: "Total number of reviews answered without injecting, by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const failure = new Counter({
    name: "sidecar_injection_failure_total",
    help: "Total number of failed or refused injection requests, by error code.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const dryRun = new Counter({
    name: "sidecar_injection_dry_run_total",
    help: "Reviews of dry-run requests (nothing is stored), by decision; also counted in the other injection metrics.",
    labelNames: ["decision"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "sidecar_injection_duration_seconds",
    help: "Time taken to answer an injection request.",
    buckets: [...DURATION_BUCKETS],
    registers: [registry],
  });
  const tlsHandshakeFailures = new Counter({
    name: "sidecar_injector_tls_handshake_failures_total",
    help: "TLS handshakes refused or failed, and client renegotiations refused, by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const certReloadFailures = new Counter({
    name: "sidecar_injector_cert_reload_failures_total",
    help: "Changed certificate files not loaded (the previous pair is still served), by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const configReloads = new Counter({
    name: "sidecar_injector_config_reload_total",
    help: "Changes of the injector's config source (serve --istio-config) applied, or failed with the last good config kept, by result.",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  // Publish every bounded series at 0 so rate() works from the first scrape.
  for (const reason of Object.values(SKIP_REASONS)) skip.inc({ reason }, 0);
  for (const decision of REVIEW_DECISIONS) dryRun.inc({ decision }, 0);
  for (const reason of Object.values(TLS_HANDSHAKE_FAILURE_REASONS)) tlsHandshakeFailures.inc({ reason }, 0);
  for (const reason of Object.values(CERT_RELOAD_FAILURE_REASONS)) certReloadFailures.inc({ reason }, 0);
  for (const result of CONFIG_RELOAD_RESULTS) configReloads.inc({ result }, 0);
  return {
    registry,
    requests,
    success,
    skip,
    failure,
    dryRun,
    duration,
    tlsHandshakeFailures,
    certReloadFailures,
    configReloads,
  };
}
