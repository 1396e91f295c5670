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
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
