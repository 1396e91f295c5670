// Refused TLS handshakes, counted and logged without flooding the log.
//
// Each failure is counted in sidecar_injector_tls_handshake_failures_total{reason}, the reason
// taken from the error code (OpenSSL's `ERR_SSL_*`, Node's `ERR_TLS_*`, or the socket's errno):
// a bounded set, so a scanner cannot grow the label space. Logging is rate-limited per reason:
// at most one line per interval (default 10 s) for each reason, and the next line says how many
// were left out in between. The clock is injectable, so tests decide what time it is.
//
// Why it matters: a caBundle without our issuer, a certificate without the name the API server
// dials, an expired certificate, all make the API server drop the handshake (it sends the alert
// `unknown_ca` or `bad_certificate`) and fail the admission; without this, the injector's side
// shows nothing at all.

import type { Counter } from "prom-client";
import { TLS_HANDSHAKE_FAILURE_REASONS as R, type TlsHandshakeFailureReason } from "../telemetry/metrics.js";

const EXACT: Readonly<Record<string, TlsHandshakeFailureReason>> = {
  ERR_TLS_HANDSHAKE_TIMEOUT: R.TIMEOUT,
  ECONNRESET: R.RESET,
  EPIPE: R.RESET,
  ECONNABORTED: R.RESET,
  ERR_TLS_RENEGOTIATION_DISABLED: R.RENEGOTIATION,
  ERR_SSL_HTTP_REQUEST: R.PLAIN_HTTP,
  ERR_SSL_HTTPS_PROXY_REQUEST: R.PLAIN_HTTP,
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: R.UNKNOWN_CA,
};

/** Families of OpenSSL codes, checked in order after the exact ones. */
const PATTERNS: readonly (readonly [RegExp, TlsHandshakeFailureReason])[] = [
  // The client's alert about our certificate: bad_certificate, certificate_expired, _unknown, ...
  [/^ERR_SSL_(SSLV3|TLSV1)_ALERT_(BAD_CERTIFICATE|CERTIFICATE_\w+|UNSUPPORTED_CERTIFICATE)$/, R.BAD_CERTIFICATE],
  [/^ERR_SSL_\w*(PROTOCOL|VERSION)\w*$/, R.PROTOCOL],
  [/^ERR_SSL_\w*(CIPHER|SIGNATURE_ALGORITHM|KEY_SHARE|SHARED_GROUPS|SIGALG)\w*$/, R.CIPHER],
];

/** The bounded reason for a failed handshake, from its error code. */
export function tlsFailureReason(err: { readonly code?: string | undefined }): TlsHandshakeFailureReason {
  const code = err.code ?? "";
  const exact = EXACT[code];
  if (exact) return exact;
  for (const [pattern, reason] of PATTERNS) if (pattern.test(code)) return reason;
  return R.OTHER;
}

export const DEFAULT_LOG_INTERVAL_MS = 10_000;

/** At most one pass per key per interval; counts what it held back. */
export class RateLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** `undefined`: hold back. Otherwise how many were held back for this key since the last pass. */
  take(key: string): { suppressed: number } | undefined {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    this.last.set(key, { at: now, suppressed: 0 });
    return { suppressed: entry?.suppressed ?? 0 };
  }
}

export interface TlsFailureLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface TlsFailureReporterOptions {
  readonly counter: Counter<"reason">;
  readonly log: TlsFailureLog;
  readonly intervalMs?: number;
  /** Milliseconds, as Date.now. */
  readonly now?: () => number;
}

export interface TlsFailureReporter {
  report(err: NodeJS.ErrnoException, remoteAddress: string | undefined): void;
}

export function createTlsFailureReporter(opts: TlsFailureReporterOptions): TlsFailureReporter {
  const limiter = new RateLimiter(opts.intervalMs ?? DEFAULT_LOG_INTERVAL_MS, opts.now);
  return {
    report(err, remoteAddress) {
      const reason = tlsFailureReason(err);
      opts.counter.inc({ reason });
      const pass = limiter.take(reason);
      if (pass === undefined) return;
      // OpenSSL's short reason ("no shared cipher", "tlsv1 alert unknown ca"), not its whole line.
      const detail = "reason" in err && typeof err.reason === "string" ? err.reason : err.message.slice(0, 120);
      opts.log.warn(
        {
          reason,
          code: err.code,
          detail,
          remoteAddress,
          ...(pass.suppressed > 0 ? { suppressed: pass.suppressed } : {}),
        },
        reason === R.RENEGOTIATION ? "TLS renegotiation refused" : "TLS handshake failed",
      );
    },
  };
}
