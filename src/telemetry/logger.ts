// pino logger factory. One JSON object per line on stdout (or the given stream). The logger is
// passed to whoever needs it; nothing here is a module-level singleton.
//
// For a person at a terminal (`npm start`), the same lines as text: `HH:MM:SS level msg
// key=value …` (local time; an error's stack on the lines after). The format is `format`, else
// SIDECAR_INJECTOR_LOG_FORMAT (`serve --log-format` sets it, and its workers inherit it), else
// text when stdout is a terminal and JSON otherwise. A stream given as `destination` gets JSON
// unless `format` says text. Text lines go through the same batched writer, after the same
// redaction: they are made from the JSON line pino wrote.
//
// What is never logged: request or review bodies, Pod specs, private keys. Callers log only
// the fields they name; the redact paths below are a second line of defence for the keys a
// careless `logger.info({ ...something })` could carry.
//
// The paths are applied by redactFields, not by pino's `redact` option: that one passes every
// field of every line through its redactor (a wildcard path matches every top-level key), which
// cost more than the rest of the line; redactFields looks at the keys only, and copies a line
// only when there is something to censor.

import { hostname } from "node:os";
import { pino, type DestinationStream, type Logger } from "pino";
import { reportDrops } from "./log-drops.js";

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
  /** json or text; default: see the header. */
  readonly format?: LogFormat;
}

export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The environment variable that chooses the format when no option does. */
export const LOG_FORMAT_ENV = "SIDECAR_INJECTOR_LOG_FORMAT";

export function isLogFormat(v: string): v is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(v);
}

/** The format of stdout's lines: LOG_FORMAT_ENV when set, else text on a terminal, JSON otherwise. */
export function defaultLogFormat(env: NodeJS.ProcessEnv, stdoutIsTty: boolean): LogFormat {
  const v = env[LOG_FORMAT_ENV];
  if (v === undefined || v === "") return stdoutIsTty ? "text" : "json";
  if (!isLogFormat(v))
    throw new Error(
      `${LOG_FORMAT_ENV}=${JSON.stringify(v.slice(0, 64))} is not a log format (one of ${LOG_FORMATS.join(", ")})`,
    );
  return v;
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

/** What a redacted value is replaced with. */
export const REDACTED = "[redacted]";

interface RedactNode {
  /** The value at this path is censored. */
  readonly censor: boolean;
  /** Deeper paths by key; `*` is any key. */
  readonly next: ReadonlyMap<string, RedactNode>;
}

function redactTree(paths: readonly string[]): RedactNode {
  interface Building {
    censor: boolean;
    next: Map<string, Building>;
  }
  const root: Building = { censor: false, next: new Map() };
  for (const path of paths) {
    let node = root;
    for (const segment of path.split(".")) {
      let child = node.next.get(segment);
      if (child === undefined) {
        child = { censor: false, next: new Map() };
        node.next.set(segment, child);
      }
      node = child;
    }
    node.censor = true;
  }
  return root;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * `fields` with the values at `node`'s paths replaced by REDACTED: `fields` itself when none is
 * there, else a copy (the caller's object is never changed). Only plain objects are looked
 * into; a path ending at an undefined value censors nothing (pino leaves it out anyway).
 */
function redactIn(fields: Record<string, unknown>, node: RedactNode): Record<string, unknown> {
  const any = node.next.get("*");
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    const exact = node.next.get(key);
    if (exact === undefined && any === undefined) continue;
    const value = fields[key];
    if (value === undefined) continue;
    let replaced: unknown = value;
    if (exact?.censor === true || any?.censor === true) replaced = REDACTED;
    else if (isPlainObject(value)) {
      let inner = value;
      if (exact !== undefined) inner = redactIn(inner, exact);
      if (any !== undefined) inner = redactIn(inner, any);
      replaced = inner;
    }
    if (replaced !== value) {
      out ??= { ...fields };
      out[key] = replaced;
    }
  }
  return out ?? fields;
}

const REDACT_TREE = redactTree(REDACTED_PATHS);
const REDACT_ANY = REDACT_TREE.next.get("*");

/** A line's fields (or a child logger's bindings) with every REDACTED_PATHS value censored. */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactIn(fields, REDACT_TREE);
}

/** pino's error serializer, then the `*.…` paths inside what it made (an API error's `body`). */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  // Its own object (not a plain one): every own enumerable field is the error's.
  const out: Record<string, unknown> = { ...pino.stdSerializers.err(err) };
  return REDACT_ANY === undefined ? out : redactIn(out, REDACT_ANY);
}

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
    formatters: { log: redactFields },
    // A child logger's bindings are not formatted by pino: pino's own redaction, with the paths
    // that name their first key (none of which a review's line has, so it costs nothing there).
    redact: { paths: REDACTED_PATHS.filter((p) => !p.startsWith("*.")), censor: REDACTED },
    serializers: { err: serializeError },
  };
  const format =
    opts.format ??
    (opts.destination !== undefined ? "json" : defaultLogFormat(process.env, process.stdout.isTTY === true));
  const destination = opts.destination ?? stdoutDestination(format, options.name);
  return pino(options, format === "text" ? textDestination(destination) : destination);
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/** Fields every line has, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(["level", "time", "msg", "pid", "hostname", "name"]);

const two = (n: number): string => String(n).padStart(2, "0");

/** A value as `key=value` shows it: bare when it reads as one word, else as JSON. */
/** A string written bare in a text line: no blank, quote, `=`, backslash, nor any control or format character. */
const BARE_TEXT = /^[^\s"=\\\p{C}]+$/u;
/** What JSON.stringify leaves as it is and a terminal may act on: DEL, C1 controls, format (bidi) characters. */
const UNSEEN = /[\p{C}\u2028\u2029]/gu;

/** `text` with what a terminal may act on (UNSEEN) escaped as \uXXXX. */
function escapeUnseen(text: string): string {
  return text.replace(UNSEEN, (c) =>
    Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`).join(""),
  );
}

/**
 * A field's value in a text line: bare when it reads as one word, else as JSON with every
 * control and format character escaped, so that a value from a request (a Pod's name) cannot
 * move a terminal's cursor, set its title or turn the text around.
 */
function textValue(v: unknown): string {
  if (typeof v === "string" && BARE_TEXT.test(v)) return v;
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return escapeUnseen(JSON.stringify(v) ?? String(v));
}

/**
 * One of pino's JSON lines as `HH:MM:SS level msg key=value …\n` (the time in local time; an
 * `err` as its message, its stack on the following lines, indented). A line that is not JSON
 * is passed as it is.
 */
export function textLine(jsonLine: string): string {
  let fields: unknown;
  try {
    fields = JSON.parse(jsonLine);
  } catch {
    return jsonLine;
  }
  if (!isPlainObject(fields)) return jsonLine;
  const time = typeof fields.time === "number" ? new Date(fields.time) : undefined;
  const head =
    time === undefined ? "--:--:--" : `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}`;
  const level = typeof fields.level === "number" ? (LEVEL_NAMES[fields.level] ?? String(fields.level)) : "?";
  const parts = [head, level.padEnd(5), ...(typeof fields.msg === "string" ? [fields.msg] : [])];
  let stack = "";
  for (const [key, value] of Object.entries(fields)) {
    if (HEAD_FIELDS.has(key)) continue;
    if (key === "err" && isPlainObject(value) && typeof value.message === "string") {
      parts.push(`err=${textValue(value.message)}`);
      if (typeof value.stack === "string")
        stack = value.stack
          .split("\n")
          .slice(1)
          .map((l) => `    ${escapeUnseen(l.trim())}\n`)
          .join("");
      continue;
    }
    parts.push(`${key}=${textValue(value)}`);
  }
  return `${parts.join(" ")}\n${stack}`;
}

/** `inner` with each JSON line written as textLine makes it; flushing is the inner stream's. */
function textDestination(inner: DestinationStream): DestinationStream & { flushSync(): void } {
  return {
    write: (line: string) => inner.write(textLine(line)),
    // What pino calls on a fatal line and at exit.
    flushSync: () => {
      if ("flushSync" in inner && typeof inner.flushSync === "function") inner.flushSync();
    },
  };
}

/**
 * Lines are gathered and written LOG_BATCH_BYTES at a time, and at least every
 * LOG_FLUSH_INTERVAL_MS, instead of one write (a trip to libuv's thread pool) per line: at a
 * thousand reviews a second, one write in about ten lines. A line waits at most the interval;
 * whatever is gathered is written synchronously when the process exits, a crash included
 * (pino's exit hook); only a SIGKILL loses it. A reader that goes away (EPIPE) stops the
 * logging, not the process (pino's filter of a broken pipe).
 */
export const LOG_BATCH_BYTES = 3584;
export const LOG_FLUSH_INTERVAL_MS = 100;
/**
 * No write is longer than PIPE_BUF, and a write holds whole lines: on the pipe a container
 * runtime reads, the lines of several processes (`serve --workers N`) never interleave.
 */
const LOG_MAX_WRITE_BYTES = 4096;
/**
 * At most this many bytes of lines wait for a reader that does not read (sonic-boom's
 * maxLength): past it, lines are dropped, and a line says how many (log-drops.ts).
 */
export const MAX_UNWRITTEN_LOG_BYTES = 8 * 1024 * 1024;
/**
 * How long the synchronous write of the lines still held (at exit, and after a fatal line)
 * waits for a reader that does not read: past it they are dropped and the process goes on
 * exiting. Without a bound, a stdout pipe nobody empties would hold the process at exit
 * until it is killed, past the drain it had finished.
 */
export const EXIT_FLUSH_MS = 2_000;

/** Errors of a synchronous write that end it without ending the process: a full pipe past the bound, a reader gone. */
const GIVE_UP_WRITING = new Set(["EAGAIN", "EBUSY", "EPIPE"]);

function stdoutDestination(format: LogFormat, name: string): DestinationStream {
  let flushUntil: number | undefined;
  const stream = pino.destination({
    dest: 1,
    sync: false,
    minLength: LOG_BATCH_BYTES,
    maxWrite: LOG_MAX_WRITE_BYTES,
    maxLength: MAX_UNWRITTEN_LOG_BYTES,
    periodicFlush: LOG_FLUSH_INTERVAL_MS,
    // Asynchronous writes retry a full pipe for as long as it takes (the bound above caps what
    // waits); a synchronous flush only until its deadline.
    retryEAGAIN: () => flushUntil === undefined || Date.now() < flushUntil,
  });
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = (): void => {
    flushUntil = Date.now() + EXIT_FLUSH_MS;
    try {
      flushSync();
    } catch (e) {
      const code = e instanceof Error && "code" in e ? e.code : undefined;
      if (typeof code !== "string" || !GIVE_UP_WRITING.has(code)) throw e;
    } finally {
      flushUntil = undefined;
    }
  };
  reportDrops(stream, (dropped) => {
    const line = `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, hostname: hostname(), name, msg: "log lines dropped: stdout was not read", dropped })}\n`;
    return format === "text" ? textLine(line) : line;
  });
  return stream;
}
