// Warming up a serving process before it says it is ready (`serve --warm-up D`).
//
// Why: V8 runs a new process's code in its interpreter and compiles the hot parts on background
// threads as they run. A review costs a new process about three times what it costs once
// compiled, while the compiler takes up to half of the core besides, for the first thousands of
// reviews: a replica that became ready at once and was sent 1,000 reviews a second held them
// for up to a second, and at 2,000 a second it shed some (test/bench/HISTORY.md, "A new
// process's first seconds"). Kubernetes sends a Pod no traffic until it is ready, so a process
// that answers reviews of its own first meets its first real ones compiled.
//
// How: the process serves a copy of its webhook on a loopback port of its own (127.0.0.1, a
// port the kernel picks, never shared with a primary's workers): the same code, TLS and config
// as the real port, so what is compiled is what the real reviews run; its own log that goes
// nowhere and its own metrics registry (no process metrics), so that none of it shows in the
// log or in /metrics. A client in the process sends it the reviews of warm-up-reviews.ts, a few
// at a time, until `reviews` have been answered or `budgetMs` has passed, whichever comes
// first, then the copy is closed. One line is logged: how many, how long.
//
// A warm-up is an optimisation, never a reason not to serve: any failure (the loopback port,
// an answer that is not 200) ends it early, logged at warn with what went wrong, and the
// process goes on to be ready.

import tls, { type TLSSocket } from "node:tls";
import type { Config } from "../config/types.js";
import { createLogger, defaultLogFormat, type Logger } from "../telemetry/logger.js";
import { createMetrics } from "../telemetry/metrics.js";
import { startServer, type RunningServer, type TlsKeyPair } from "./https.js";
import { createApp, type AppEndpoints, type AppOptions } from "./server.js";
import { warmUpReviews } from "./warm-up-reviews.js";

/** Reviews answered at most: about what it takes for the time of a review to settle (see the file's header). */
export const WARM_UP_REVIEWS = 10_000;
/** Requests on their way at once: enough to keep the server busy while the client reads an answer. */
const CONCURRENCY = 4;
/**
 * How long one warm-up request may take before the warm-up gives up (a review on the loopback
 * takes milliseconds, a few hundred at most while the code is cold); with CLOSE_TIMEOUT_MS, at
 * most how far past its budget a warm-up can hold readiness back.
 */
const REQUEST_TIMEOUT_MS = 5_000;
/** How long the copy's close may take: it holds the warm-up's own connections only. */
const CLOSE_TIMEOUT_MS = 1_000;

export interface WarmUpOptions {
  readonly config: Config;
  readonly tls: TlsKeyPair;
  /** The log level of the real app, so that the copy builds the same lines (then drops them). */
  readonly logLevel: string;
  /** Where the one line about the warm-up goes. */
  readonly logger: Logger;
  /** The warm-up ends after this long, however many reviews it has had. */
  readonly budgetMs: number;
  /** The warm-up ends after this many reviews (default WARM_UP_REVIEWS). */
  readonly reviews?: number;
  /** Which endpoints the real app serves: the copy is built the same way. */
  readonly endpoints?: AppEndpoints;
  /** The real app's: whether the cluster runs native sidecars, so that the copy renders the same way. */
  readonly nativeSidecarsSupported?: AppOptions["nativeSidecarsSupported"];
  /** The request bodies sent in turn (default warmUpReviews()). */
  readonly bodies?: readonly Buffer[];
  /** Ends the warm-up early (the server is closing): no failure, no more reviews. */
  readonly signal?: AbortSignal;
}

export interface WarmUpResult {
  /** Reviews answered 200. */
  readonly reviews: number;
  readonly durationMs: number;
  /** Why the warm-up ended before its count or its time, if it did. */
  readonly failure?: string;
}

/** A log destination that drops every line. */
const NOWHERE = { write: (): void => undefined };

/**
 * Answers reviews of its own on a loopback copy of the webhook until `reviews` are answered,
 * `budgetMs` has passed or `signal` aborts. Never rejects: a failure is in the result (and
 * logged at warn).
 */
export async function warmUp(opts: WarmUpOptions): Promise<WarmUpResult> {
  const started = performance.now();
  const { answered, failure, copy } = await answerOwnReviews(opts, started).catch((e: unknown) => ({
    answered: 0,
    failure: `the copy failed: ${e instanceof Error ? e.message : String(e)}`,
    copy: undefined,
  }));
  const durationMs = Math.round(performance.now() - started);
  const fields = { reviews: answered, durationMs, ...(copy === undefined ? {} : { copy }) };
  if (failure !== undefined) opts.logger.warn({ ...fields, reason: failure }, "warm-up ended early; serving anyway");
  else if (opts.signal?.aborted === true) opts.logger.info(fields, "warm-up stopped: the server is closing");
  else opts.logger.info(fields, "warmed up");
  return { reviews: answered, durationMs, ...(failure === undefined ? {} : { failure }) };
}

/** The warm-up itself: the copy started, its reviews answered, the copy closed. */
async function answerOwnReviews(
  opts: WarmUpOptions,
  started: number,
): Promise<{ answered: number; failure: string | undefined; copy: string | undefined }> {
  const limit = opts.reviews ?? WARM_UP_REVIEWS;
  const app = createApp({
    config: opts.config,
    // The lines the real app's log builds, in its format, then dropped.
    logger: createLogger({
      level: opts.logLevel,
      destination: NOWHERE,
      format: defaultLogFormat(process.env, process.stdout.isTTY === true),
    }),
    metrics: createMetrics({ processMetrics: false }),
    isReady: () => true,
    endpoints: opts.endpoints ?? "webhook",
    ...(opts.nativeSidecarsSupported === undefined ? {} : { nativeSidecarsSupported: opts.nativeSidecarsSupported }),
  });
  let copy: RunningServer;
  try {
    copy = await startServer({ app, port: 0, host: "127.0.0.1", exclusive: true, tls: opts.tls });
  } catch (e) {
    await app.retire();
    const why = e instanceof Error ? e.message : String(e);
    return { answered: 0, failure: `cannot serve the copy on a loopback port: ${why}`, copy: undefined };
  }
  const port = copy.port;
  let answered = 0;
  let failure: string | undefined;
  try {
    const deadline = started + opts.budgetMs;
    const requests = (opts.bodies ?? warmUpReviews()).map((body) => requestBytes(body));
    let sent = 0;
    const more = (): boolean =>
      failure === undefined && opts.signal?.aborted !== true && sent < limit && performance.now() < deadline;
    const client = async (): Promise<void> => {
      let connection: Connection | undefined;
      try {
        while (more()) {
          const request = requests[sent % requests.length];
          sent += 1;
          if (request === undefined) return;
          connection ??= await connect(port);
          const answer = await connection.exchange(request);
          if (answer.status !== 200) throw new Error(`the copy answered ${answer.status}`);
          answered += 1;
          if (answer.closes) {
            connection.close();
            connection = undefined;
          }
        }
      } catch (e) {
        // Once closing, a connection cut under an exchange is the close's doing, not a failure.
        if (opts.signal?.aborted !== true) failure ??= e instanceof Error ? e.message : String(e);
      } finally {
        connection?.close();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    return { answered, failure, copy: `127.0.0.1:${port}` };
  } finally {
    await copy.close({ timeoutMs: CLOSE_TIMEOUT_MS, idleGraceMs: 0 });
    await app.retire();
  }
}

/** A review's POST as the API server sends it: HTTP/1.1, keep-alive, JSON. */
function requestBytes(body: Buffer): Buffer {
  const head =
    "POST /inject?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
    `Accept: application/json, */*\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

interface Answer {
  readonly status: number;
  /** The server closes the connection after it. */
  readonly closes: boolean;
}

/** One keep-alive connection to the copy: a request written, its answer read, in turn. */
interface Connection {
  exchange(request: Buffer): Promise<Answer>;
  close(): void;
}

/** The end of an answer's head. */
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

/**
 * A TLS connection to the copy on `port`. Its answers are read as the copy writes them: a
 * status line, headers with a Content-Length, that many bytes (anything else fails the
 * exchange). Written by hand, not with node:https, whose client would cost the one core more
 * than the server it warms.
 */
function connect(port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    // The copy's certificate is this process's own, on a port it has just opened: nothing to verify.
    const socket: TLSSocket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
    socket.setTimeout(REQUEST_TIMEOUT_MS);
    let waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void } | undefined;
    let received: Buffer[] = [];
    let length = 0;
    const fail = (e: Error): void => {
      const w = waiting;
      waiting = undefined;
      socket.destroy();
      if (w === undefined) reject(e);
      else w.reject(e);
    };
    socket.on("error", fail);
    socket.on("timeout", () => fail(new Error(`no answer from the copy in ${REQUEST_TIMEOUT_MS} ms`)));
    const closed = (): void => fail(new Error("the copy closed the connection"));
    socket.on("close", closed);
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      length += chunk.length;
      const all = received.length === 1 ? chunk : Buffer.concat(received, length);
      received = [all];
      const end = all.indexOf(HEAD_END);
      if (end < 0) return;
      const head = all.toString("latin1", 0, end);
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
      const size = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (status?.[1] === undefined || size?.[1] === undefined) {
        fail(new Error(`an answer the warm-up cannot read: ${JSON.stringify(head.slice(0, 200))}`));
        return;
      }
      const total = end + HEAD_END.length + Number(size[1]);
      if (length < total) return;
      if (length > total) {
        fail(new Error("the copy sent more than one answer"));
        return;
      }
      received = [];
      length = 0;
      const w = waiting;
      waiting = undefined;
      w?.resolve({ status: Number(status[1]), closes: /\r\nconnection: *close/i.test(head) });
    });
    socket.once("secureConnect", () =>
      resolve({
        exchange: (request) =>
          new Promise<Answer>((res, rej) => {
            if (socket.destroyed) {
              rej(new Error("the copy closed the connection"));
              return;
            }
            waiting = { resolve: res, reject: rej };
            socket.write(request);
          }),
        close: () => {
          socket.off("close", closed);
          socket.destroy();
        },
      }),
    );
  });
}
