// A watch (GET <collection>?watch=true, one JSON event a line) with every part of its life
// bounded, in place of @kubernetes/client-node's Watch, which bounds none of it and keeps the
// request's abort to itself until the API server answers:
//
// - its request must be answered (status and headers) within `startTimeoutMs`: past it the
//   start fails, and the request is aborted, its connection closed (client-node's left it open
//   until the API server answered or dropped it: a socket per failed start);
// - the API server is asked to end it after `timeoutSeconds`; one still open `graceMs` after
//   that is a connection gone dead without a reset (a NAT or a node gone): it is aborted and
//   ends with an error, where client-node's waited for TCP's keep-alive to give up (minutes).
//   resumingWatch, below, starts it again from where it was when the API server ends it so;
// - a line (an event) longer than `maxLineBytes`, a line that is not an event (an object with
//   a type and an object), an ERROR event (a Status), or an event `onEvent` throws on, ends it
//   with an error that says so: the caller starts it again, and reads the object's state
//   afresh, rather than miss a change;
// - stop() aborts it at any time, and after it nothing is delivered, not even its end.
//
// The caller learns of the end through `onEnd` (undefined when the API server ended it, else
// a KubeError naming the watch), once, and starts it again; `onEnd` may come before the start
// has resolved (an answer that ends at once). Every event but ERROR is handed on, BOOKMARK
// included (its object carries the resourceVersion to resume from). Credentials, TLS and any
// proxy come from the kubeconfig, as for every other call; the start's deadline runs from
// when the credentials are in hand (an exec plugin may ask a person), as a call's does.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeError } from "./api.js";

export interface WatchLimits {
  /** The request must be answered within this long. */
  readonly startTimeoutMs: number;
  /** How long the API server is asked to keep the watch open (its `timeoutSeconds`). */
  readonly timeoutSeconds: number;
  /** How long past timeoutSeconds a watch still open is taken for dead. */
  readonly graceMs: number;
  /** The longest line (one event, its object included) read. */
  readonly maxLineBytes: number;
}

/**
 * The watches' limits. An event holds one object: at most about 1.5 MiB stored (etcd's
 * request limit), more as JSON with escapes. Five to ten minutes open (resumingWatch), as
 * client-go's reflectors ask.
 */
export const WATCH_LIMITS: Omit<WatchLimits, "startTimeoutMs"> = {
  timeoutSeconds: 300,
  graceMs: 30_000,
  maxLineBytes: 8 * 1024 * 1024,
};

/** What a call or watch past its deadline fails with. */
export function noAnswer(ms: number): string {
  return `no answer from the API server within ${ms / 1000} s`;
}

/** One event: ADDED, MODIFIED, DELETED or BOOKMARK, and its object (a JSON object). */
export type WatchEventHandler = (type: string, object: unknown) => void;

/** `what`: how errors name the watch, e.g. "watch /api/v1/namespaces/ns/secrets (metadata.name=x)". */
export async function startWatch(
  kc: KubeConfig,
  what: string,
  path: string,
  query: Readonly<Record<string, string>>,
  limits: WatchLimits,
  onEvent: WatchEventHandler,
  onEnd: (err?: unknown) => void,
): Promise<() => void> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new KubeError(`${what}: the kubeconfig has no current cluster`, undefined);
  const url = new URL(server.replace(/\/+$/, "") + path);
  for (const [k, v] of Object.entries({ ...query, watch: "true", timeoutSeconds: String(limits.timeoutSeconds) }))
    url.searchParams.set(k, v);
  const options: RequestOptions = { headers: { Accept: "application/json", "User-Agent": "sidecar-injector" } };
  try {
    await kc.applyToHTTPSOptions(options);
  } catch (e) {
    throw new KubeError(`${what}: ${message(e)}`, undefined);
  }

  const controller = new AbortController();
  /** Set once the watch is over, by whichever way: nothing is delivered after it. */
  let over = false;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    over = true;
    for (const t of timers) clearTimeout(t);
    controller.abort();
  };
  const end = (err?: unknown): void => {
    if (over) return;
    finish();
    onEnd(err);
  };
  const after = (ms: number, then: () => void): void => {
    const t = setTimeout(then, ms);
    t.unref();
    timers.push(t);
  };

  return new Promise<() => void>((resolve, reject) => {
    let started = false;
    const fail = (cause: unknown): void => {
      const err = cause instanceof KubeError ? cause : new KubeError(`${what}: ${message(cause)}`, undefined);
      if (started) return end(err);
      if (over) return;
      finish();
      reject(err);
    };
    const onAnswer = (res: IncomingMessage): void => {
      if (over) return void res.destroy();
      if (res.statusCode !== 200) return refused(res, what, limits.maxLineBytes, fail);
      started = true;
      for (const t of timers.splice(0)) clearTimeout(t);
      after(limits.timeoutSeconds * 1000 + limits.graceMs, () =>
        end(
          new KubeError(
            `${what}: still open ${limits.graceMs / 1000} s past the ${limits.timeoutSeconds} s asked: taken for a dead connection`,
            undefined,
          ),
        ),
      );
      readLines(res, limits.maxLineBytes, {
        line: (text) => {
          if (over) return;
          const event = parseEvent(text);
          if (event === undefined) return end(new KubeError(`${what}: a line that is not a watch event`, undefined));
          if (event.type === "ERROR") {
            const status = event.object as { message?: unknown; code?: unknown } | undefined;
            const code = typeof status?.code === "number" ? status.code : undefined;
            const said = typeof status?.message === "string" ? status.message : "the API server ended it with an error";
            return end(new KubeError(`${what}: ${said}`, code));
          }
          try {
            onEvent(event.type, event.object);
          } catch (e) {
            end(new KubeError(`${what}: a ${event.type} event not handled: ${message(e)}`, undefined));
          }
        },
        tooLong: () => end(new KubeError(`${what}: an event longer than ${limits.maxLineBytes} bytes`, undefined)),
        done: () => end(),
        failed: (err) => end(new KubeError(`${what}: ${message(err)}`, undefined)),
      });
      resolve(() => finish());
    };
    let req: ClientRequest;
    try {
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      req = send(url, { ...options, method: "GET", signal: controller.signal }, onAnswer);
    } catch (e) {
      return fail(e);
    }
    req.on("socket", (socket) => socket.setKeepAlive(true, 30_000));
    // An abort of ours (stop, a deadline) is already settled; anything else ends the watch.
    req.on("error", (err) => {
      if (!over) fail(err);
    });
    after(limits.startTimeoutMs, () => fail(new KubeError(`${what}: ${noAnswer(limits.startTimeoutMs)}`, undefined)));
    req.end();
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function parseEvent(text: string): { type: string; object: unknown } | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null) return undefined;
    const type: unknown = Reflect.get(v, "type");
    const object: unknown = Reflect.get(v, "object");
    return typeof type === "string" && typeof object === "object" && object !== null && !Array.isArray(object)
      ? { type, object }
      : undefined;
  } catch {
    return undefined;
  }
}

/** A start the API server refused: the failure names its Status's message (or the HTTP status), and its code. */
function refused(res: IncomingMessage, what: string, maxBytes: number, fail: (err: KubeError) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const status = res.statusCode ?? 0;
  const settle = (): void => {
    const body = Buffer.concat(chunks).toString("utf8");
    let said: string | undefined;
    try {
      const m: unknown = Reflect.get(JSON.parse(body) as object, "message");
      if (typeof m === "string" && m !== "") said = m;
    } catch {
      // not a Status: the HTTP status says it
    }
    fail(
      new KubeError(`${what}: ${(said ?? `HTTP ${status} ${res.statusMessage ?? ""}`.trim()).slice(0, 300)}`, status),
    );
  };
  res.on("data", (chunk: Buffer) => {
    length += chunk.length;
    if (length > maxBytes) return settle();
    chunks.push(chunk);
  });
  res.on("end", settle);
  res.on("error", settle);
}

interface LineSink {
  line(text: string): void;
  tooLong(): void;
  done(): void;
  failed(err: unknown): void;
}

/** Splits a stream into lines (UTF-8, "\n"), holding at most `maxBytes` of a line not yet ended. */
function readLines(res: IncomingMessage, maxBytes: number, sink: LineSink): void {
  let held: Buffer[] = [];
  let heldBytes = 0;
  res.on("data", (chunk: Buffer) => {
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      const piece = chunk.subarray(from, nl);
      if (heldBytes + piece.length > maxBytes) return sink.tooLong();
      const text = heldBytes === 0 ? piece.toString("utf8") : Buffer.concat([...held, piece]).toString("utf8");
      held = [];
      heldBytes = 0;
      from = nl + 1;
      if (text.trim() !== "") sink.line(text);
    }
    const rest = chunk.subarray(from);
    if (rest.length === 0) return;
    heldBytes += rest.length;
    if (heldBytes > maxBytes) return sink.tooLong();
    // A copy: the chunk's buffer may be a view into a larger one the socket reuses.
    held.push(Buffer.from(rest));
  });
  res.on("end", () => {
    if (heldBytes > 0) sink.line(Buffer.concat(held).toString("utf8"));
    sink.done();
  });
  // Node says only "aborted" of a connection closed inside the answer.
  const cut = (): void => sink.failed(new Error("the connection closed before the API server ended the watch"));
  res.on("error", cut);
  res.on("close", () => {
    if (!res.complete) cut();
  });
}

/** The resourceVersion in an event's object, if it has one. */
function resourceVersionOf(object: unknown): string | undefined {
  const metadata: unknown = typeof object === "object" && object !== null ? Reflect.get(object, "metadata") : undefined;
  const rv: unknown =
    typeof metadata === "object" && metadata !== null ? Reflect.get(metadata, "resourceVersion") : undefined;
  return typeof rv === "string" && rv !== "" ? rv : undefined;
}

/**
 * A watch that the API server's ends at the time asked do not interrupt. Ended so, it starts
 * again at once from the last resourceVersion it saw (an event's, or a bookmark's, which it
 * asks for), so that nothing changed between is missed and the objects are not sent again.
 * Any other end goes to `onEnd` as startWatch's does: an error (a 410 for a resourceVersion too
 * old among them), a failed restart, or an end before the time asked (an API server shutting
 * down); the caller then starts afresh. The time asked is drawn for each start from
 * [timeoutSeconds, 2 × timeoutSeconds), as client-go's reflectors draw theirs, so that the
 * replicas' watches do not all end together. BOOKMARK events are not handed on.
 */
export async function resumingWatch(
  kc: KubeConfig,
  what: string,
  path: string,
  query: Readonly<Record<string, string>>,
  limits: WatchLimits,
  onEvent: WatchEventHandler,
  onEnd: (err?: unknown) => void,
): Promise<() => void> {
  let resourceVersion: string | undefined;
  let current: (() => void) | undefined;
  let stopped = false;
  const open = (): Promise<() => void> => {
    const asked = limits.timeoutSeconds + Math.floor(Math.random() * limits.timeoutSeconds);
    const since = performance.now();
    return startWatch(
      kc,
      what,
      path,
      { ...query, allowWatchBookmarks: "true", ...(resourceVersion === undefined ? {} : { resourceVersion }) },
      { ...limits, timeoutSeconds: asked },
      (type, object) => {
        resourceVersion = resourceVersionOf(object) ?? resourceVersion;
        if (type !== "BOOKMARK") onEvent(type, object);
      },
      (err) => {
        // The API server's own end at the time asked (its timer starts after ours: not before).
        const atTime = performance.now() - since >= asked * 1000 * 0.9;
        if (err !== undefined || resourceVersion === undefined || !atTime) return onEnd(err);
        open().then(
          (stop) => {
            if (stopped) stop();
            else current = stop;
          },
          (e: unknown) => {
            if (!stopped) onEnd(e);
          },
        );
      },
    );
  };
  current = await open();
  return () => {
    stopped = true;
    current?.();
  };
}
