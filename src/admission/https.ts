// The TLS server around the express app: TLS 1.2+, explicit timeouts, certificate swap without
// restart, and a bounded drain on shutdown.
//
// TLS: 1.3 with OpenSSL's default suites, or 1.2 with forward-secret (ECDHE) AEAD suites only,
// the server's order preferred; no static-RSA key exchange, no CBC, no DHE. Client-initiated
// renegotiation is refused on every connection (the connection is closed). Every refused
// handshake, and every refused renegotiation, is handed to `onTlsClientError`.
//
// Connections: the HTTPS server never listens itself. A plain TCP listener accepts each
// connection without reading it (pauseOnConnect) and hands it over, as a worker's primary does
// for `handed` servers; so both serve the same way, with the same bounds. Past
// `maxConnections`, a connection is answered 503 ERR_OVERLOADED with Retry-After, which the API
// server retries, instead of closed, which it does not (connection-shed.ts).

import { STATUS_CODES, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import https from "node:https";
import net, { type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Duplex } from "node:stream";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import { answerOverloaded, answerWhenRead, checkPair, createConnectionShedder } from "./connection-shed.js";
import { answeredBeforeItsBody, expectContinue, refuseBodyMidway, takeFromParser } from "./body.js";
import { errorBody, ERRORS, type ErrorCode } from "./errors.js";
import { startTimeoutChecks } from "./handed.js";
import { answerPlainHttp, tcpOf } from "./plain-http.js";
export { PLAIN_HTTP_ANSWER } from "./plain-http.js";

export const TLS_MIN_VERSION = "TLSv1.2";

/** TLS 1.3: OpenSSL's default suites, as Node offers them. */
export const TLS13_CIPHER_SUITES = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_AES_128_GCM_SHA256",
] as const;
/** TLS 1.2: ECDHE key exchange (forward secrecy) and AEAD only; what Go's TLS client offers first. */
export const TLS12_CIPHER_SUITES = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
] as const;

/**
 * The TLS settings of every secure context: at creation and at each certificate swap
 * (`setSecureContext` resets whatever it is not given, so both use this one constant).
 */
export const TLS_CONTEXT_OPTIONS = {
  minVersion: TLS_MIN_VERSION,
  ciphers: [...TLS13_CIPHER_SUITES, ...TLS12_CIPHER_SUITES].join(":"),
  honorCipherOrder: true,
} as const satisfies SecureContextOptions;

export const DEFAULT_HOST = "127.0.0.1";
/** Whole request, headers and body. The API server's webhook timeout is at most 30 s. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/**
 * Longer than the API server's idle-connection timeout (Go's transport default, 90 s): if we
 * closed idle connections first, the API server could send a review on a connection we are
 * closing and fail the admission with EOF.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 95_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/**
 * While draining, a kept-alive connection is closed by the response to its next request
 * (`Connection: close`), so the client learns it before it could send another. One that
 * stays idle this long is closed by us: its client has stopped using it.
 */
export const DEFAULT_DRAIN_IDLE_GRACE_MS = 1_000;
/**
 * Requests being read or answered at once. Answering one takes well under a millisecond of
 * CPU, so this many in flight means the process is behind: past it a request is refused at
 * once (503, `Retry-After`) instead of queueing into the API server's timeout. Also bounds the
 * memory bodies can hold: this many times the body limit in the worst case.
 */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 256;
/**
 * Open connections served by the app. A new connection past it takes the place of one that has
 * had nothing to do for EVICT_IDLE_AFTER_MS (see evictionCandidate); with none such, it is
 * answered 503 ERR_OVERLOADED (Retry-After) and closed, by connection-shed.ts, which bounds how
 * many it answers at once and a second.
 */
export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * How long a connection must have had nothing to do (not a byte read since it was past its
 * handshake or last answered) before a new connection past maxConnections may take its place,
 * the longest idle first. Without it, a client holding the connections open and silent (before
 * their handshake, or kept alive between requests) would have every new one shed, the API
 * server's and the kubelet's probes among them, for as long as it liked. A connection whose
 * next request has begun to arrive is never closed; one closed between its requests is one
 * Go's client opens again.
 */
export const EVICT_IDLE_AFTER_MS = 1_000;
/**
 * The same for a connection that has not finished its TLS handshake: a client sends its hello
 * as it connects, and a handshake takes a few milliseconds, so one still before it after this
 * long is a client saying nothing. Shorter, so that such connections opened as fast as they
 * are closed still leave a place for others.
 */
export const EVICT_SILENT_AFTER_MS = 250;
/**
 * Requests one connection may have waiting for their answers (pipelined: sent before the
 * answer to the one before). Past it a request is refused as past `maxConcurrentRequests` is,
 * and its connection closed: one client's pipeline cannot take every place in flight.
 */
export const MAX_PIPELINED_REQUESTS = 32;

export interface TlsKeyPair {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface StartServerOptions {
  readonly app: RequestListener;
  /** 0 picks a free port; see RunningServer.port. With `handed`, only reported. */
  readonly port: number;
  /**
   * Listen on no port: every connection is handed to `accept` by whoever accepted it (a
   * worker of `serve --workers N`, whose primary listens on the port).
   */
  readonly handed?: boolean;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /**
   * In a worker of node:cluster, listen on a port of this process's own, not one the cluster's
   * primary shares among its workers (a warm-up's copy, warm-up.ts). Elsewhere it changes nothing.
   */
  readonly exclusive?: boolean;
  readonly tls: TlsKeyPair;
  readonly requestTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
  /**
   * A TLS handshake the server refused or that failed (`err.code` is OpenSSL's, e.g.
   * ERR_SSL_NO_SHARED_CIPHER, or ERR_TLS_HANDSHAKE_TIMEOUT, ECONNRESET), and a refused
   * client-initiated renegotiation (ERR_TLS_RENEGOTIATION_DISABLED). Must not throw.
   */
  readonly onTlsClientError?: (err: NodeJS.ErrnoException, socket: TLSSocket) => void;
  /** See DEFAULT_MAX_CONCURRENT_REQUESTS. */
  readonly maxConcurrentRequests?: number;
  /** See DEFAULT_MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /** See EVICT_IDLE_AFTER_MS; Infinity never closes one kept alive to make room. */
  readonly evictIdleAfterMs?: number;
  /** See EVICT_SILENT_AFTER_MS; Infinity never closes one before its handshake to make room. */
  readonly evictSilentAfterMs?: number;
  /**
   * A connection past `maxConnections` closed before its handshake, past the bounds of those
   * answered 503 (connection-shed.ts). Must not throw.
   */
  readonly onConnectionDropped?: () => void;
  /** An error of the listener itself (an accept that failed: EMFILE); it keeps listening. Must not throw. */
  readonly onListenerError?: (err: Error) => void;
  /**
   * Answers a request refused because `maxConcurrentRequests` are in flight, or one on a
   * connection past `maxConnections` once its body is read (default answerOverloaded).
   */
  readonly onOverload?: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface DrainOptions {
  /**
   * How long to keep accepting connections after the drain starts, not ready, every response
   * saying `Connection: close` (for load balancers that have not yet seen the readiness
   * change). Default 0: a preStop hook usually covers this.
   */
  readonly delayMs?: number;
  /** After the delay: how long in-flight requests and kept-alive clients get. */
  readonly timeoutMs?: number;
  /** See DEFAULT_DRAIN_IDLE_GRACE_MS. */
  readonly idleGraceMs?: number;
  /**
   * With `handed`: connections keep being accepted (after `delayMs`) until this resolves,
   * when whoever hands them has stopped.
   */
  readonly until?: Promise<unknown>;
}

export interface RunningServer {
  readonly server: https.Server;
  readonly host: string;
  /** The port actually bound. */
  readonly port: number;
  /** True from the moment close() is called: readiness must report not ready. */
  readonly draining: boolean;
  /** Requests whose responses have not finished. */
  readonly inFlight: number;
  /** Open connections served by the app. */
  readonly connections: number;
  /** Connections past `maxConnections` being answered 503 (connection-shed.ts). */
  readonly shedding: number;
  /**
   * Drains: not ready at once; after `delayMs` stops accepting connections; every response
   * from then on closes its connection; connections idle for `idleGraceMs` are closed; at
   * `timeoutMs` whatever is left is force-closed. A number is `timeoutMs`. Idempotent.
   */
  close(drain?: number | DrainOptions): Promise<void>;
  /** Serves new TLS handshakes with this pair; existing connections keep theirs. Throws if they do not match. */
  setCertificate(cert: string | Buffer, key: string | Buffer): void;
  /**
   * With `handed`: serves a connection accepted elsewhere, not yet read from. False when it is
   * not served by the app: at `maxConnections` (answered 503, or closed when too many are), or
   * once the drain is over (closed before any TLS).
   */
  accept(socket: Socket): boolean;
}

/**
 * An error answer written on the connection itself, then the connection closed: for what Node's
 * HTTP parser refuses before any handler sees a request. JSON, as every other error answer.
 */
function connectionErrorAnswer(code: ErrorCode, message?: string): string {
  const body = JSON.stringify(errorBody(code, message));
  const status = ERRORS[code].status;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * Whether a response is being written, or waits to be, on the connection: an answer written on
 * the connection itself would be read as (or into) that one's. Node keeps it as `_httpMessage`.
 */
function busy(socket: Duplex): boolean {
  return currentAnswer(socket) !== undefined;
}

/** Whether the answer under way on the connection has begun to be written. */
function started(socket: Duplex): boolean {
  return currentAnswer(socket)?.headersSent === true;
}

function currentAnswer(socket: Duplex): ServerResponse | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** A JSON error answer to `req`, after which its connection is closed; the rest of its body dropped. */
function answerAndClose(req: IncomingMessage, res: ServerResponse, code: ErrorCode, message?: string): void {
  const body = JSON.stringify(errorBody(code, message));
  res.writeHead(ERRORS[code].status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    Connection: "close",
  });
  res.end(body);
  req.resume();
}

/**
 * What Node's HTTP parser refused (`clientError`): malformed or smuggling-shaped framing (two
 * Content-Lengths, Content-Length with Transfer-Encoding), headers past the limit, a request not
 * received in time. Answered in JSON, naming what is wrong in llhttp's own words (a constant,
 * never the input), and the connection closed. When answers to requests received before it are
 * under way or waiting (`lastAnswer` gives the last of them), they are written first, in order,
 * then this one: the parser is taken off the connection meanwhile. A connection gone, or one
 * whose last answer closes it, gets nothing more.
 */
function answerClientError(
  err: Error & { code?: string; reason?: unknown },
  socket: Duplex,
  lastAnswer: (socket: Duplex) => ServerResponse | undefined,
): void {
  // A request that did not come in time is the one whose answer waits (408 in its place, as
  // Node answers it); anything else the parser refuses comes after it.
  const timedOut = err.code === "ERR_HTTP_REQUEST_TIMEOUT";
  // Only what HTTP's parser refused, or a request late, is answered: a TLS failure (a handshake
  // that never finished, ERR_TLS_HANDSHAKE_TIMEOUT) has no connection to answer on, and an
  // answer queued behind its handshake would keep it open for good.
  const http = timedOut || (err.code ?? "").startsWith("HPE_");
  const reason = typeof err.reason === "string" ? err.reason.slice(0, 100) : undefined;
  // A body the parser refused midway is its request's to answer; a later error of the same
  // parser, once the connection is taken from it, is already dealt with.
  if (http && !timedOut && socket.writable && refuseBodyMidway(socket, currentAnswer(socket), reason ?? err.code ?? ""))
    return;
  if (!http || !socket.writable) {
    socket.destroy();
    return;
  }
  const answer =
    err.code === "HPE_HEADER_OVERFLOW"
      ? connectionErrorAnswer("ERR_HEADERS_TOO_LARGE")
      : timedOut
        ? connectionErrorAnswer("ERR_REQUEST_TIMEOUT", "the request was not received in time")
        : connectionErrorAnswer("ERR_BAD_REQUEST", reason === undefined ? undefined : `malformed request: ${reason}`);
  if (timedOut ? started(socket) || answeredBeforeItsBody(socket) : busy(socket)) {
    if (timedOut) socket.destroy();
    else answerAfter(socket, lastAnswer(socket), answer);
    return;
  }
  socket.end(answer);
}

/**
 * `answer` written on the connection, and the connection closed, once `last` (the last answer
 * waiting on it) is done; the connection taken from HTTP's parser meanwhile. Without one, or
 * when `last` closes the connection itself (`Connection: close`), nothing is written.
 */
function answerAfter(socket: Duplex, last: ServerResponse | undefined, answer: string): void {
  if (last === undefined) {
    socket.destroy();
    return;
  }
  takeFromParser(socket);
  // Node's own `finish` listener (which ends a connection not kept alive) runs before `close`.
  last.once("close", () => {
    if (!socket.destroyed && socket.writable && !socket.writableEnded) socket.end(answer);
  });
}

/** Resolves true if `p` settles within `ms`, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A connection as eviction sees it: when it last had nothing to do, and whether it is past its handshake and busy. */
export interface ConnectionUse {
  readonly idleSince: number;
  readonly handshaken: boolean;
  readonly busy: boolean;
}

/**
 * The connection to close so that a new one past the bound is served: of those not busy, one
 * still before its handshake `silentAfterMs` after it was accepted (a client that connected and
 * said nothing) ahead of one kept alive and idle for `idleAfterMs` since its last answer, and of
 * those the longest idle. Undefined when there is none. One pass over the open connections (at
 * most maxConnections).
 */
export function evictionCandidate<T>(
  connections: Iterable<T>,
  use: (c: T) => ConnectionUse,
  now: number,
  idleAfterMs: number,
  silentAfterMs: number,
): T | undefined {
  let best: T | undefined;
  let bestUse: ConnectionUse | undefined;
  for (const c of connections) {
    const u = use(c);
    if (u.busy || now - u.idleSince < (u.handshaken ? idleAfterMs : silentAfterMs)) continue;
    const better =
      bestUse === undefined ||
      (!u.handshaken && bestUse.handshaken) ||
      (u.handshaken === bestUse.handshaken && u.idleSince < bestUse.idleSince);
    if (better) {
      best = c;
      bestUse = u;
    }
  }
  return best;
}

export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const host = opts.host ?? DEFAULT_HOST;
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout);

  const server = https.createServer({
    // Checked in the request handler, so that the answer is JSON (Node's has no body).
    requireHostHeader: false,
    ...TLS_CONTEXT_OPTIONS,
    cert: opts.tls.cert,
    key: opts.tls.key,
    requestTimeout,
    headersTimeout,
    // How often requestTimeout/headersTimeout are checked (Node's default is 30 s).
    connectionsCheckingInterval: Math.min(1_000, headersTimeout),
    // A TLS handshake must not take longer than sending the headers may.
    handshakeTimeout: headersTimeout,
  });
  server.requestTimeout = requestTimeout;
  server.headersTimeout = headersTimeout;
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  // Every header within the headers' 16 KiB is read: Node's default keeps the first 2,000 and
  // silently drops the rest, so a Content-Type after them was answered as missing.
  server.maxHeadersCount = 0;
  // A connection on which nothing moves this long while a request is answered (a client that
  // does not read its answer: the answer, megabytes for a large Pod, would be held for as long
  // as the client likes) is closed. Twice the request timeout, so that a request that does not
  // come in time gets its 408 first. Between requests, the keep-alive timeout applies instead.
  server.timeout = 2 * requestTimeout;
  // It never listens (see the header): the timeouts are checked as if it did.
  startTimeoutChecks(server);

  let draining = false;
  let closing: Promise<void> | undefined;
  /** Every accepted connection (TCP), and those past their handshake (TLS). */
  const connections = new Set<Socket>();
  const sockets = new Set<Socket>();
  const inFlight = new Set<ServerResponse>();
  /** Per connection, the response the next pipelined request must wait for. */
  const pending = new WeakMap<Socket, ServerResponse>();
  const maxConcurrent = opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
  let onIdle: (() => void) | undefined;

  const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const evictIdleAfterMs = opts.evictIdleAfterMs ?? EVICT_IDLE_AFTER_MS;
  const evictSilentAfterMs = opts.evictSilentAfterMs ?? EVICT_SILENT_AFTER_MS;
  const track =
    (set: Set<Socket>) =>
    (socket: Socket): void => {
      set.add(socket);
      socket.once("close", () => set.delete(socket));
    };
  server.on("connection", track(connections));
  server.on("secureConnection", track(sockets));
  /**
   * Per TCP connection: when it last had nothing to do (accepted, past its handshake, or its
   * last answer done) and the bytes read from it by then, and its TLS socket. A byte read since
   * (a request's headers arriving, not yet a request) makes it busy.
   */
  const idle = new WeakMap<Socket, { readonly since: number; readonly bytesRead: number }>();
  const markIdle = (tcp: Socket): void => {
    idle.set(tcp, { since: performance.now(), bytesRead: tcp.bytesRead });
  };
  const tlsOf = new WeakMap<Socket, Socket>();
  server.on("connection", markIdle);
  server.on("secureConnection", (socket: TLSSocket) => {
    const tcp = tcpOf(socket);
    if (tcp === undefined) return;
    tlsOf.set(tcp, socket);
    markIdle(tcp);
  });

  server.on("clientError", (err: Error, socket: Duplex) => answerClientError(err, socket, lastUnanswered));
  // CONNECT (a proxy's tunnel) and an expectation other than 100-continue: Node would close
  // the connection, or answer 417 without a body.
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    const answer = connectionErrorAnswer("ERR_METHOD_NOT_ALLOWED", "CONNECT is not served");
    if (busy(socket)) answerAfter(socket, lastUnanswered(socket), answer);
    else socket.end(answer);
  });
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) =>
    answerAndClose(req, res, "ERR_EXPECTATION_FAILED"),
  );
  // Expect: 100-continue: `100 Continue` once the body is read, not before its request is
  // looked at (Node's default): a refusal the headers decide is the final answer at once.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    // Said before its state is saved: the 100 must not give an Upgrade request its keep-alive back.
    if (req.headers.upgrade !== undefined) res.shouldKeepAlive = false;
    expectContinue(req, res);
    server.emit("request", req, res);
  });
  const onTlsClientError = opts.onTlsClientError;
  server.on("tlsClientError", answerPlainHttp);
  if (onTlsClientError) server.on("tlsClientError", onTlsClientError);
  server.on("secureConnection", (socket: TLSSocket) => {
    // Node would allow a few renegotiations per 10 minutes (tls.CLIENT_RENEG_LIMIT); allow none.
    // Node only emits an error for the attempt: the connection is closed here, whoever else
    // listens for client errors. The error comes more than once: reported once.
    socket.disableRenegotiation();
    let refused = false;
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "ERR_TLS_RENEGOTIATION_DISABLED" || refused) return;
      refused = true;
      socket.destroy();
      onTlsClientError?.(err, socket);
    });
  });

  const shed = opts.onOverload ?? ((_req: IncomingMessage, res: ServerResponse): void => answerOverloaded(res));
  const shedder = createConnectionShedder({
    contextOptions: TLS_CONTEXT_OPTIONS,
    cert: opts.tls.cert,
    key: opts.tls.key,
    answer: shed,
    ...(onTlsClientError ? { onTlsClientError } : {}),
  });
  /** Requests refused past `maxConcurrentRequests` whose body is still being read: busy, for the drain. */
  const refusing = new Set<ServerResponse>();

  /**
   * Per connection, its requests not yet answered (more than one when pipelined). Node emits no
   * `close` for a response still queued behind another when the connection goes: they are let
   * go with the connection, or each would hold its place among the requests in flight forever.
   */
  const unanswered = new WeakMap<Socket, Set<ServerResponse>>();
  const letGo = (res: ServerResponse): void => {
    refusing.delete(res);
    if (inFlight.delete(res) && inFlight.size === 0) onIdle?.();
  };
  const hold = (socket: Socket, res: ServerResponse): number => {
    const set = unanswered.get(socket) ?? new Set<ServerResponse>();
    if (!unanswered.has(socket)) {
      unanswered.set(socket, set);
      socket.once("close", () => {
        for (const r of set) letGo(r);
        set.clear();
      });
    }
    set.add(res);
    res.once("close", () => {
      set.delete(res);
      if (pending.get(socket) === res) pending.delete(socket);
      letGo(res);
      const tcp = tcpOf(socket);
      if (set.size === 0 && tcp !== undefined) markIdle(tcp);
    });
    return set.size;
  };

  /** The last of the connection's requests not yet answered, in the order they came. */
  const lastUnanswered = (socket: Duplex): ServerResponse | undefined => {
    let last: ServerResponse | undefined;
    for (const res of unanswered.get(socket as Socket) ?? []) last = res;
    return last;
  };

  /** Closes the connection evictionCandidate picks, if any, and gives its place at once: true. */
  const evictIdle = (): boolean => {
    const victim = evictionCandidate(
      connections,
      (tcp) => {
        const tls = tlsOf.get(tcp);
        const mark = idle.get(tcp);
        return {
          idleSince: mark?.since ?? 0,
          handshaken: tls !== undefined,
          busy:
            tls !== undefined &&
            ((unanswered.get(tls)?.size ?? 0) > 0 || (mark !== undefined && tcp.bytesRead !== mark.bytesRead)),
        };
      },
      performance.now(),
      evictIdleAfterMs,
      evictSilentAfterMs,
    );
    if (victim === undefined) return false;
    const tls = tlsOf.get(victim);
    connections.delete(victim);
    if (tls !== undefined) {
      sockets.delete(tls);
      tls.destroy();
    }
    victim.destroy();
    return true;
  };

  /**
   * While draining: the last unanswered response on a connection says `Connection: close`, and
   * none before it. Each would close the connection once written: pipelined requests already
   * received behind the first would go unanswered.
   */
  const closeWithLast = (socket: Socket): void => {
    const held = unanswered.get(socket);
    if (held === undefined) return;
    let last: ServerResponse | undefined;
    for (const res of held) last = res;
    for (const res of held) {
      if (res.headersSent) continue;
      if (res === last) res.setHeader("Connection", "close");
      // One that was last before: Node decides again (keep-alive, unless its client said close
      // or spoke HTTP/1.0).
      else if (!refusing.has(res) && res.getHeader("Connection") === "close") res.removeHeader("Connection");
    }
  };

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    // HTTP/1.1 without Host (Node's own check answers it without a body): refused as Go refuses it.
    if (req.headers.host === undefined && req.httpVersion !== "1.0") {
      answerAndClose(req, res, "ERR_BAD_REQUEST", "malformed request: missing required Host header");
      return;
    }
    // A request asking to switch protocols (Upgrade: h2c, websocket) is answered in HTTP/1.1,
    // and its connection closed: HTTP's parser reads nothing after such a request, so one
    // pipelined behind it would wait unanswered for the keep-alive timeout.
    if (req.headers.upgrade !== undefined) res.shouldKeepAlive = false;
    const socket = req.socket;
    const depth = hold(socket, res);
    if (draining) closeWithLast(socket);
    if (inFlight.size >= maxConcurrent || depth > MAX_PIPELINED_REQUESTS) {
      // Refused without being worked on: its body is read and dropped, then it is answered 503
      // and its connection closed (answered at once, the client could lose the answer).
      refusing.add(res);
      answerWhenRead(req, res, shed);
      return;
    }
    // Pipelined requests are answered one after the other: a response is written only once
    // the one before it on the connection is done. Node otherwise buffers the answers of a
    // pipeline and, past the socket's high-water mark, pauses the parser mid-stream and drops
    // the connection (HPE_PAUSED), losing every request after the first.
    const before = pending.get(socket);
    inFlight.add(res);
    pending.set(socket, res);
    if (before === undefined || before.closed) opts.app(req, res);
    // Not begun once its connection has gone: its answer could never be sent.
    else before.once("close", () => socket.destroyed || opts.app(req, res));
  });

  let stopped = false;
  /** A connection accepted (not read from): served, answered 503 past the bound, or closed once stopped. */
  const take = (socket: Socket): boolean => {
    if (stopped) {
      socket.destroy();
      return false;
    }
    if (connections.size >= maxConnections && !evictIdle()) {
      if (!shedder.shed(socket)) opts.onConnectionDropped?.();
      return false;
    }
    server.emit("connection", socket);
    return true;
  };

  // noDelay: Node sets TCP_NODELAY on the sockets of the server that accepts them, and the
  // HTTPS server is only handed them.
  const front = opts.handed ? undefined : net.createServer({ pauseOnConnect: true, noDelay: true }, take);
  if (front !== undefined) {
    try {
      await new Promise<void>((resolve, reject) => {
        front.once("error", reject);
        front.listen({ port: opts.port, host, exclusive: opts.exclusive === true }, () => {
          front.off("error", reject);
          resolve();
        });
      });
    } catch (e) {
      shedder.close();
      server.close();
      throw e;
    }
    // An accept that fails (EMFILE: out of file descriptors) loses that one connection; the
    // listener keeps listening, and the process must not die of it.
    front.on("error", (err) => opts.onListenerError?.(err));
  }
  const address = front?.address();
  const port = typeof address === "object" && address !== null ? address.port : opts.port;

  /** Sockets with no request being read or answered. */
  const idleSockets = (): Set<Socket> => {
    const busy = new Set<Socket>();
    for (const res of inFlight) if (res.socket) busy.add(res.socket);
    for (const res of refusing) if (res.socket) busy.add(res.socket);
    return new Set([...sockets].filter((s) => !busy.has(s)));
  };

  const drain = async (d: DrainOptions): Promise<void> => {
    draining = true;
    // The last response still to be written on each connection tells its client not to reuse it.
    for (const socket of new Set([...inFlight].map((res) => res.req.socket))) closeWithLast(socket);
    if (d.delayMs) await sleep(d.delayMs);
    if (opts.handed && d.until !== undefined) await d.until;
    const deadline = Date.now() + (d.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    const idleGrace = d.idleGraceMs ?? DEFAULT_DRAIN_IDLE_GRACE_MS;
    // Stop accepting: the front listener only, not Node's http close(), which would also close
    // every idle kept-alive connection at once: a client may be writing a request on one at that
    // very moment, and the API server does not retry a POST the connection reset under it.
    const closed =
      front === undefined ? Promise.resolve() : new Promise<void>((resolve) => front.close(() => resolve()));
    const idle = new Promise<void>((resolve) => {
      if (inFlight.size === 0) resolve();
      else onIdle = resolve;
    });
    await within(idle, Math.max(0, deadline - Date.now()));
    // Connections a client keeps using are closed by their next response; one left idle past
    // the grace has been given up on by its client.
    const idleSince = new Map<Socket, number>();
    while (connections.size > 0 && Date.now() < deadline) {
      const now = Date.now();
      const idleNow = idleSockets();
      for (const socket of idleSince.keys()) if (!idleNow.has(socket)) idleSince.delete(socket);
      for (const socket of idleNow) {
        const since = idleSince.get(socket) ?? now;
        idleSince.set(socket, since);
        // A response that began before the drain could not say "Connection: close": its
        // connection is idle and unannounced, and not writable once the client half-closed.
        if (now - since >= idleGrace || !socket.writable) socket.destroy();
      }
      await sleep(Math.min(50, idleGrace));
    }
    for (const socket of connections) socket.destroy();
    for (const socket of sockets) socket.destroy();
    stopped = true;
    shedder.close();
    // Stops the timer that checks the request and headers timeouts (see handed.ts).
    server.close();
    await closed;
  };

  return {
    server,
    host,
    port,
    get draining() {
      return draining;
    },
    get inFlight() {
      return inFlight.size;
    },
    get connections() {
      return connections.size;
    },
    get shedding() {
      return shedder.shedding;
    },
    close(d = {}) {
      closing ??= drain(typeof d === "number" ? { timeoutMs: d } : d);
      return closing;
    },
    setCertificate(cert, key) {
      checkPair(cert, key);
      // setSecureContext resets any option not given, so the TLS settings are passed again.
      server.setSecureContext({ ...TLS_CONTEXT_OPTIONS, cert, key });
      shedder.setCertificate(cert, key);
    },
    accept(socket) {
      if (!opts.handed) {
        socket.destroy();
        return false;
      }
      return take(socket);
    },
  };
}
