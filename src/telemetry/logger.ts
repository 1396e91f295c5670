// pino logger factory. One JSON object per line on stdout (or the given stream). The logger is
// passed to whoever needs it; nothing here is a module-level singleton.
//
// What is never logged: request or review bodies, Pod specs, private keys. Callers log only
// the fields they name; the redact paths below are a second line of defence for the keys a
// careless `logger.info({ ...something })` could carry.

import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Minimum level written; default `info`. */
  readonly level?: string;
  /** Value of the `name` field on every line; default `sidecar-injector`. */
  readonly name?: string;
  /** Where lines go; default stdout. Tests pass a stream that collects them. */
  readonly destination?: DestinationStream;
}

/** Field paths whose values are replaced before a line is written. */
export const REDACTED_PATHS: readonly string[] = [
  "key",
  "*.key",
  "tls.key",
  "privateKey",
  "*.privateKey",
  "password",
  "*.password",
  "token",
  "*.token",
  "body",
  "*.body",
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "headers.cookie",
];

export function isLogLevel(v: string): v is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(v);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  if (!isLogLevel(level)) {
    throw new Error(`unknown log level ${JSON.stringify(level)} (one of ${LOG_LEVELS.join(", ")})`);
  }
  const options = {
    name: opts.name ?? "sidecar-injector",
    level,
    redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
    serializers: { err: pino.stdSerializers.err },
  };
  return pino(options, opts.destination ?? stdoutDestination());
}

/**
 * Lines are gathered and written LOG_BATCH_BYTES at a time, and at least every
 * LOG_FLUSH_INTERVAL_MS, instead of one write (a trip to libuv's thread pool) per line: at a
 * thousand reviews a second, one write in about ten lines. A line waits at most the interval;
 * whatever is gathered is written synchronously when the process exits, a crash included
 * (pino's exit hook); only a SIGKILL loses it.
 */
export const LOG_BATCH_BYTES = 2048;
export const LOG_FLUSH_INTERVAL_MS = 100;
/**
 * No write is longer than PIPE_BUF, and a write holds whole lines: on the pipe a container
 * runtime reads, the lines of several processes (`serve --workers N`) never interleave.
 */
const LOG_MAX_WRITE_BYTES = 4096;

function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, maxWrite: LOG_MAX_WRITE_BYTES, periodicFlush: LOG_FLUSH_INTERVAL_MS });
}
