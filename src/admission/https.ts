// The TLS server around the express app: TLS 1.2+, explicit timeouts, certificate swap without
// restart, and a bounded drain on shutdown.
//
// TLS: 1.3 with OpenSSL's default suites, or 1.2 with forward-secret (ECDHE) AEAD suites only,
// the server's order preferred; no static-RSA key exchange, no CBC, no DHE. Client-initiated
// renegotiation is refused on every connection (the connection is closed). Every refused
// handshake, and every refused renegotiation, is handed to `onTlsClientError`.

import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { SecureContextOptions, TLSSocket } from "node:tls";

export const TLS_MIN_VERSION = "TLSv1.2";

/** TLS 1.3: OpenSSL's default suites, as Node offers them. */
export const TLS13_CIPHER_SUITES = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"] as const;
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

export interface TlsKeyPair {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface StartServerOptions {
  readonly app: RequestListener;
  /** 0 picks a free port; see RunningServer.port. */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
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
  /**
   * Stops accepting connections, lets in-flight requests finish (at most drainTimeoutMs),
   * closes idle keep-alive connections, then force-closes whatever is left. Idempotent.
   */
  close(drainTimeoutMs?: number): Promise<void>;
  /** Serves new TLS handshakes with this pair; existing connections keep theirs. Throws if they do not match. */
  setCertificate(cert: string | Buffer, key: string | Buffer): void;
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

export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const host = opts.host ?? DEFAULT_HOST;
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout);

  const server = https.createServer({
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

  let draining = false;
  let closing: Promise<void> | undefined;
  const sockets = new Set<Socket>();
  const inFlight = new Set<ServerResponse>();
  let onIdle: (() => void) | undefined;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  server.on("connection", track);
  server.on("secureConnection", track);

  const onTlsClientError = opts.onTlsClientError;
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

  // Registered before the app so that the header is set before the app can respond.
  server.on("request", (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    if (draining) res.setHeader("Connection", "close");
    res.once("close", () => {
      inFlight.delete(res);
      if (inFlight.size === 0) onIdle?.();
    });
  });
  server.on("request", opts.app);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : opts.port;

  const drain = async (drainTimeoutMs: number): Promise<void> => {
    draining = true;
    const deadline = Date.now() + drainTimeoutMs;
    // Responses still to be written tell their clients not to reuse the connection.
    for (const res of inFlight) if (!res.headersSent) res.setHeader("Connection", "close");
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const idle = new Promise<void>((resolve) => {
      if (inFlight.size === 0) resolve();
      else onIdle = resolve;
    });
    await within(idle, drainTimeoutMs);
    server.closeIdleConnections();
    if (!(await within(closed, Math.max(0, deadline - Date.now())))) {
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }
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
    close(drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS) {
      closing ??= drain(drainTimeoutMs);
      return closing;
    },
    setCertificate(cert, key) {
      // setSecureContext resets any option not given, so the TLS settings are passed again.
      server.setSecureContext({ ...TLS_CONTEXT_OPTIONS, cert, key });
    },
  };
}
