// A connection past the bound is answered, not dropped. The bound is https.ts's maxConnections
// (open connections of one process), or the primary's when every worker is at its own
// (workers/primary.ts). Such a connection gets its TLS handshake, its request is read to the
// end, and it is answered 503 ERR_OVERLOADED with `Retry-After: 1` and `Connection: close`.
//
// Why not close it: the API server calls a webhook with client-go's rest client, which retries a
// 429 or 5xx that carries Retry-After (a POST included, within the webhook's timeoutSeconds), but
// retries a POST whose connection closed or reset only when it is a GET. A closed connection is
// a failed call, and under `failurePolicy: Fail` a refused Pod; a 503 is a Pod admitted a second
// later. The request is read to its end before the answer (answerWhenRead, which https.ts uses
// for a request past --max-requests too): answered while the client still sends, the client can
// lose the answer to a reset.
//
// Bounded, since answering costs a handshake: about 1 ms of CPU a connection on the 2-core
// development VM (2,000 connections one after the other, each a handshake, a request and the 503:
// the server's CPU over them), four times a review on a kept-alive connection. At most
// MAX_SHEDDING_CONNECTIONS are answered at once and MAX_SHED_ANSWERS_PER_SECOND a second (a
// token bucket holding a second's worth: about 3 % of a core), each within SHED_TIMEOUT_MS
// (handshake, request and answer; Node's own timeouts, and a last timer past them), and at most
// DEFAULT_MAX_BODY_BYTES of a body are read (then the connection is closed). Past either bound
// a connection is closed at once, before any TLS, as it was before: a flood of connections
// costs what it did, and the first of a burst (the API server's few) are told to retry.
import type { IncomingMessage, ServerResponse } from "node:http";
import { X509Certificate, createPrivateKey } from "node:crypto";
import https from "node:https";
import type { Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { awaitsContinue, BODY_REFUSED, DEFAULT_MAX_BODY_BYTES } from "./body.js";
import { errorBody, ERRORS } from "./errors.js";
import { startTimeoutChecks } from "./handed.js";
import { answerPlainHttp } from "./plain-http.js";
import type { Metrics } from "../telemetry/metrics.js";

/** Shed connections being answered at once; past it one is closed before its handshake. */
export const MAX_SHEDDING_CONNECTIONS = 32;
/** Shed connections answered a second, at most (a bucket of as many tokens, refilled at that rate). */
export const MAX_SHED_ANSWERS_PER_SECOND = 32;
/** The handshake, the request and the answer of a shed connection, each, at most. */
export const SHED_TIMEOUT_MS = 5_000;

const OVERLOADED = JSON.stringify(errorBody("ERR_OVERLOADED"));

/** A review's path as express routes it (case-insensitive): `/inject`, `/inject/…` or `/inject?…`, or absolute-form. */
const REVIEW_PATH = /^(?:https?:\/\/[^/?#]*)?\/inject(?:[/?]|$)/i;

/**
 * Whether a request is a review (a POST to a review path): what a shed counts in
 * `sidecar_injection_failure_total{reason="ERR_OVERLOADED"}`, the metric of refused reviews. A
 * shed probe, scrape or /preview is logged, not counted there.
 */
export function isReviewRequest(req: IncomingMessage): boolean {
  return req.method === "POST" && REVIEW_PATH.test(req.url ?? "");
}

/**
 * Counts a shed as a refused review in `metrics` (none: a listener that serves no reviews) when
 * it is one: a review request, or a connection closed unread (`req` undefined), which may have
 * carried one. The one rule of every place that sheds, one process or the primary.
 */
export function countShed(metrics: Pick<Metrics, "failure"> | undefined, req: IncomingMessage | undefined): void {
  if (metrics !== undefined && (req === undefined || isReviewRequest(req)))
    metrics.failure.inc({ reason: "ERR_OVERLOADED" });
}

/** The answer to a request refused for overload: 503 ERR_OVERLOADED, retry in a second, connection closed. */
export function answerOverloaded(res: ServerResponse): void {
  answerRetryLater(res, ERRORS.ERR_OVERLOADED.status, OVERLOADED);
}

/**
 * Every "come back in a second" answer (overload, no worker ready): `status` with the JSON
 * `body`, `Retry-After: 1`, and the connection closed, so the client's retry may land on a
 * process that can take it.
 */
export function answerRetryLater(res: ServerResponse, status: number, body: string): void {
  res.shouldKeepAlive = false;
  res
    .writeHead(status, {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(body)),
      "Retry-After": "1",
      Connection: "close",
    })
    .end(body);
}

/**
 * Calls `answer` once the request's body has been read to its end (and dropped): a server that
 * answers and closes while the client is still sending makes the client's next write fail with a
 * reset or a broken pipe, and the client may never read the answer. Measured: Go's HTTP client
 * (the API server's) posting 3-6 MB bodies to a 503 written at once got `write: broken pipe`
 * instead of the 503 for 27-40 % of them; none once the body was read first. More than
 * DEFAULT_MAX_BODY_BYTES closes the connection; a body that never ends is the server's
 * requestTimeout to end.
 */
export function answerWhenRead(
  req: IncomingMessage,
  res: ServerResponse,
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  res.shouldKeepAlive = false;
  // A client waiting for 100 Continue sends no body before it: answered at once.
  if (awaitsContinue(req)) {
    answer(req, res);
    return;
  }
  let read = 0;
  req.on("data", (chunk: Buffer) => {
    read += chunk.byteLength;
    if (read > DEFAULT_MAX_BODY_BYTES) req.socket.destroy();
  });
  req.on("error", () => undefined);
  const answerOnce = (): void => {
    if (!res.headersSent && !res.destroyed) answer(req, res);
  };
  req.on("end", answerOnce);
  // A body HTTP's parser refused midway never ends: answered now (the connection then closes).
  req.once(BODY_REFUSED, answerOnce);
}

/**
 * Throws unless `key` is the private key of `cert`. OpenSSL keeps an RSA and an EC certificate
 * side by side, so a certificate of one type with a key of the other is not refused by it:
 * every listener checks a new pair with this before serving it.
 */
export function checkPair(cert: string | Buffer, key: string | Buffer): void {
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error("the certificate and the key do not match (key values mismatch)");
  }
}

export interface ConnectionShedderOptions {
  /** The TLS settings the listener serves with, and its pair (see setCertificate). */
  readonly contextOptions: SecureContextOptions;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Writes the answer, once the request has been read (default answerOverloaded). */
  readonly answer?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Default MAX_SHEDDING_CONNECTIONS. */
  readonly maxAtOnce?: number;
  /** Default MAX_SHED_ANSWERS_PER_SECOND. */
  readonly perSecond?: number;
  /** Default SHED_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** The clock of the rate bound, in ms (default performance.now). */
  readonly now?: () => number;
  /** A handshake of a shed connection that failed (as https.ts's option of that name). Must not throw. */
  readonly onTlsClientError?: (err: NodeJS.ErrnoException, socket: TLSSocket) => void;
}

export interface ConnectionShedder {
  /**
   * Answers the connection (accepted, not read from) as the header says: true; or closes it at
   * once when `maxAtOnce` are being answered or `perSecond` were this last second: false.
   */
  shed(socket: Socket): boolean;
  /** Connections being answered now. */
  readonly shedding: number;
  /** New handshakes use this pair. Throws, keeping the one before, if they do not match. */
  setCertificate(cert: string | Buffer, key: string | Buffer): void;
  /** Closes every connection being answered; shed() closes each new one at once from then on. */
  close(): void;
}

export function createConnectionShedder(opts: ConnectionShedderOptions): ConnectionShedder {
  const timeoutMs = opts.timeoutMs ?? SHED_TIMEOUT_MS;
  const maxAtOnce = opts.maxAtOnce ?? MAX_SHEDDING_CONNECTIONS;
  const perSecond = opts.perSecond ?? MAX_SHED_ANSWERS_PER_SECOND;
  const now = opts.now ?? (() => performance.now());
  let tokens = perSecond;
  let filledAt = now();
  /** One answer's token, if the bucket has one. */
  const token = (): boolean => {
    const t = now();
    tokens = Math.min(perSecond, tokens + ((t - filledAt) / 1000) * perSecond);
    filledAt = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
  const answer = opts.answer ?? ((_req: IncomingMessage, res: ServerResponse) => answerOverloaded(res));
  const server = https.createServer({
    ...opts.contextOptions,
    cert: opts.cert,
    key: opts.key,
    handshakeTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    connectionsCheckingInterval: Math.min(1_000, timeoutMs),
    keepAlive: false,
  });
  startTimeoutChecks(server);
  // As on the listener it stands in for (https.ts): no client-initiated renegotiation, and the
  // failed handshakes reported.
  server.on("secureConnection", (socket: TLSSocket) => socket.disableRenegotiation());
  server.on("tlsClientError", answerPlainHttp);
  const onTlsClientError = opts.onTlsClientError;
  if (onTlsClientError) server.on("tlsClientError", onTlsClientError);
  const active = new Set<Socket>();
  let closed = false;

  server.on("request", (req: IncomingMessage, res: ServerResponse) => answerWhenRead(req, res, answer));
  // Expect: 100-continue: no 100, the 503 at once (its body is never uploaded for nothing).
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    res.shouldKeepAlive = false;
    answer(req, res);
  });

  return {
    shed(socket) {
      if (closed || active.size >= maxAtOnce || !token()) {
        socket.destroy();
        return false;
      }
      active.add(socket);
      // Past Node's own timeouts (which answer 408 and close), whatever is left is closed.
      const last = setTimeout(() => socket.destroy(), 2 * timeoutMs + 1_000);
      last.unref();
      socket.on("error", () => undefined);
      socket.once("close", () => {
        clearTimeout(last);
        active.delete(socket);
      });
      server.emit("connection", socket);
      return true;
    },
    get shedding() {
      return active.size;
    },
    setCertificate(cert, key) {
      checkPair(cert, key);
      server.setSecureContext({ ...opts.contextOptions, cert, key });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const socket of active) socket.destroy();
      server.close(() => undefined);
    },
  };
}
