// The webhook's HTTP surface. TLS, timeouts and draining live in https.ts; this file maps
// requests to review.ts and errors.ts, and writes one log line and the metrics per review.
//
// POST /inject, the API server's call for every Pod, is answered by a plain handler ahead of
// express: its path is recognised with two string comparisons, its answer written with one
// writeHead and one end. Everything else (health, /preview, /metrics, and any /inject path
// that is not plain: another case, a trailing slash, percent-escapes) goes through express 5,
// and an /inject path that reaches it is answered by the same code.

import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { ErrorRequestHandler, Express, default as createExpress } from "express";
import type { Config } from "../config/types.js";
import { clip } from "../injection/quote.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import { AdmissionError, closesConnection, ERRORS, errorBody, type ErrorCode } from "./errors.js";
import { answerOverloaded, countShed } from "./connection-shed.js";
import { answerReview, decodeAdmissionReview, parsePathEnv, type InjectFn, type ReviewOutcome } from "./review.js";
import {
  BodyBudget,
  checkJsonContentType,
  clientGone,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
  discardRest,
  holdAnswer,
  readRequestBody,
  type BodyLimits,
} from "./body.js";
import { previewHandler } from "./preview-route.js";
import type { WorkBudget } from "./work-budget.js";
import { createReviewPool, OFFLOAD_FROM_BYTES, type ReviewPool } from "./review-pool.js";
import { inlineCostOver } from "../injection/inline-cost.js";
import type { NamespaceAccess, NamespaceLookupService } from "./preview-lookup.js";
import { callerWaitsMs } from "./caller-deadline.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./https.js";

export { DEFAULT_MAX_BODY_BYTES } from "./body.js";

export interface AppOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** /readyz answers 200 only while this returns true (certificate loaded, not draining). */
  readonly isReady: () => boolean;
  /** Whether the cluster runs native sidecars (`nativeSidecars: auto`); may change over time. */
  readonly nativeSidecarsSupported?: boolean | (() => boolean | undefined);
  /** The API server, for /preview's namespace labels (none without cluster access); see preview-lookup.ts. */
  readonly namespaceAccess?: () => NamespaceAccess;
  /**
   * /preview's lookups, already set up (for the whole pod: the primary's, over IPC, in a worker
   * of `--workers N`); when given, namespaceAccess is not used.
   */
  readonly namespaceLookups?: NamespaceLookupService;
  /** The injector's own namespace, which the webhook configuration never selects. */
  readonly ownNamespace?: string;
  /** How long /preview waits for all of a request's namespace lookups; default 3 s. */
  readonly namespaceLookupTimeoutMs?: number;
  /** Request bodies over this many bytes get 413; default 6 MiB. */
  readonly maxBodyBytes?: number;
  /** A body not fully received this long after the headers gets 408; default 10 s. */
  readonly bodyTimeoutMs?: number;
  /**
   * The server's request timeout (https.ts requestTimeoutMs; 0: none): with the API server's
   * `?timeout=`, the deadline past which a review waiting for the worker is dropped
   * (caller-deadline.ts). Default DEFAULT_REQUEST_TIMEOUT_MS.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Which endpoints this app serves: `all` (one listener), `webhook` (/inject and health: the
   * port the API server calls) or `admin` (/preview, /metrics and health: a port that only
   * what the NetworkPolicy names can reach). Default all.
   */
  readonly endpoints?: AppEndpoints;
  /** Answer reviews of OFFLOAD_FROM_BYTES or more on a worker thread (default true). */
  readonly offloadLargeReviews?: boolean;
  /** All bodies being read together; past it ERR_OVERLOADED. Default DEFAULT_MAX_BUFFERED_BODY_BYTES. */
  readonly maxBufferedBodyBytes?: number;
  /** The injection engine; defaults to injection/inject.ts. */
  readonly inject?: InjectFn;
  /** The share of the event loop /preview may take (work-budget.ts); default a new one per app. */
  readonly previewWork?: WorkBudget;
}

export function nativeOption(v: AppOptions["nativeSidecarsSupported"]): { nativeSidecarsSupported?: boolean } {
  const value = typeof v === "function" ? v() : v;
  return value === undefined ? {} : { nativeSidecarsSupported: value };
}

/** Bytes of a large answer written at a time: TLS encrypts each as it is written, on the event loop. */
const ANSWER_PIECE_BYTES = 256 * 1024;

/** Every JSON answer's headers, as express's res.json writes them. */
function writeJson(res: ServerResponse, status: number, json: string | Uint8Array): void {
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": typeof json === "string" ? Buffer.byteLength(json) : json.byteLength,
  });
  res.end(json);
}

/**
 * A JSON answer of any size, written a piece at a time as the connection takes it, so that
 * encrypting megabytes never holds the event loop in one go (no ETag: nothing caches a POST).
 */
function sendInPieces(res: ServerResponse, body: Uint8Array): void {
  res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", "Content-Length": String(body.byteLength) });
  let at = 0;
  const next = (): void => {
    while (at < body.byteLength) {
      const piece = body.subarray(at, at + ANSWER_PIECE_BYTES);
      at += piece.byteLength;
      if (!res.write(piece)) {
        res.once("drain", next);
        return;
      }
    }
    res.end();
  };
  next();
}

export function sendError(res: ServerResponse, code: ErrorCode, message?: string): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  if (closesConnection(code)) res.setHeader("Connection", "close");
  discardRest(res.req);
  if (code === "ERR_OVERLOADED") res.setHeader("Retry-After", "1");
  writeJson(res, ERRORS[code].status, JSON.stringify(errorBody(code, message)));
}

/**
 * The path of a request the plain handler answers: `/inject`, or `/inject/…` with Istio's path
 * parameters and no percent-escape (whose decoding express's router checks), the query cut
 * off. Undefined for anything else, which express routes.
 */
export function plainInjectPath(url: string): string | undefined {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (path === "/inject") return path;
  return path.length > 8 && path.startsWith("/inject/") && !path.includes("%") ? path : undefined;
}

/** At most one "shedding" log line this often; the line carries the count since the last. */
const SHED_LOG_INTERVAL_MS = 1000;

/**
 * Answers a request the server refused because too many are in flight (before express, once
 * its body is read and dropped, so that it costs next to nothing), or because its connection came past
 * --max-connections (https.ts, connection-shed.ts). A review (isReviewRequest) is counted as a
 * failure with reason ERR_OVERLOADED in `metrics` (none given on the admin port); a shed probe,
 * scrape or /preview is not, so that the metric of refused reviews counts only those. Every
 * shed is logged, at most once a second with the number shed.
 */
export function overloadHandler(
  metrics: Metrics | undefined,
  logger: Logger,
  now: () => number = Date.now,
): (req: IncomingMessage, res: ServerResponse) => void {
  let shedSinceLog = 0;
  let lastLog = -Infinity;
  return (req, res) => {
    countShed(metrics, req);
    shedSinceLog += 1;
    if (now() - lastLog >= SHED_LOG_INTERVAL_MS) {
      logger.warn(
        { code: "ERR_OVERLOADED", shed: shedSinceLog, path: req.url?.split("?", 1)[0] },
        "requests shed: too many in flight or connections open",
      );
      lastLog = now();
      shedSinceLog = 0;
    }
    answerOverloaded(res);
  };
}

export const APP_ENDPOINTS = ["all", "webhook", "admin"] as const;
export type AppEndpoints = (typeof APP_ENDPOINTS)[number];

/** The log line and the metrics of one answered review. */
function reviewRecorder(
  metrics: Metrics,
  logger: Logger,
): (outcome: ReviewOutcome, durationMs: number, onWorker?: true) => void {
  return (outcome, durationMs, onWorker) => {
    switch (outcome.decision) {
      case "injected":
        metrics.success.inc();
        break;
      case "skipped":
      case "allowed":
        if (outcome.skipReason) metrics.skip.inc({ reason: outcome.skipReason });
        break;
      case "refused":
        metrics.failure.inc({ reason: outcome.errorCode ?? "ERR_INTERNAL" });
        break;
    }
    if (outcome.dryRun === true) metrics.dryRun.inc({ decision: outcome.decision });
    const fields = {
      uid: outcome.uid,
      namespace: outcome.namespace,
      pod: outcome.pod,
      operation: outcome.operation,
      decision: outcome.decision,
      reason: outcome.reason,
      patchOperations: outcome.patchOperations,
      durationMs,
      // Answered on the review worker (review-pool.ts): a large review, or a costly one (inline-cost.ts).
      onWorker,
    };
    const line = outcome.dryRun === true ? { ...fields, dryRun: true } : fields;
    if (outcome.error !== undefined) logger.error({ ...line, err: outcome.error }, "admission review failed");
    else logger.info(line, "admission review");
  };
}

type ReviewHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

/** One review, from the request to its answer, its log line and its metrics; never rejects. */
function reviewHandler(opts: AppOptions, limits: BodyLimits, pool: ReviewPool | undefined): ReviewHandler {
  const { config, logger, metrics } = opts;
  const record = reviewRecorder(metrics, logger);
  const engine = opts.inject === undefined ? {} : { inject: opts.inject };
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return async (req, res, path) => {
    const started = process.hrtime.bigint();
    const elapsedMs = (): number => Number(process.hrtime.bigint() - started) / 1e6;
    metrics.requests.inc();
    try {
      checkJsonContentType(req.headers["content-type"]);
      const body = await readRequestBody(req, limits);
      const pathEnv = parsePathEnv(path);
      // Answered here, unless it is large or costs more than its bytes say: then on the worker (review-pool.ts).
      if (pool === undefined || body.length < OFFLOAD_FROM_BYTES) {
        const review = decodeAdmissionReview(body);
        if (pool === undefined || inlineCostOver(review.request.object) === undefined) {
          const result = answerReview(review, {
            config,
            pathEnv,
            ...nativeOption(opts.nativeSidecarsSupported),
            ...engine,
          });
          writeJson(res, 200, result.body);
          record(result.outcome, elapsedMs());
          return;
        }
      }
      // Not run if its client goes, or its deadline passes, while it waits (ERR_CALLER_GONE).
      const caller = { res, waitsMs: callerWaitsMs(req.url, requestTimeoutMs) - elapsedMs() };
      const native = nativeOption(opts.nativeSidecarsSupported).nativeSidecarsSupported;
      const answer = await pool.run(body, pathEnv, native, caller);
      holdAnswer(res, answer.body.byteLength, limits.budget);
      sendInPieces(res, answer.body);
      record(answer.outcome, elapsedMs(), true);
    } catch (e) {
      const code: ErrorCode = e instanceof AdmissionError ? e.code : "ERR_INTERNAL";
      const message = e instanceof AdmissionError ? e.message : ERRORS.ERR_INTERNAL.message;
      // A client that has gone is sent nothing (sendError): its line has no status.
      const status = clientGone(res) ? undefined : ERRORS[code].status;
      sendError(res, code, message);
      metrics.failure.inc({ reason: code });
      const line = { code, status, path: clip(path), durationMs: elapsedMs() };
      if (code === "ERR_INTERNAL") logger.error({ ...line, err: e }, "admission request failed");
      else if (code === "ERR_CALLER_GONE") logger.warn({ ...line, message }, "admission request dropped");
      else logger.warn({ ...line, message }, "admission request refused");
    } finally {
      metrics.duration.observe(elapsedMs() / 1000);
    }
  };
}

/** Errors from express itself (e.g. a path that does not percent-decode) and from the small handlers. */
function expressErrors(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const status = typeof err === "object" && err !== null && "status" in err ? err.status : undefined;
    if (typeof status === "number" && status >= 400 && status < 500) {
      logger.warn({ code: "ERR_BAD_REQUEST", status: 400, path: clip(req.path) }, "request refused");
      sendError(res, "ERR_BAD_REQUEST");
      return;
    }
    logger.error({ err, path: clip(req.path) }, "request failed");
    sendError(res, "ERR_INTERNAL");
  };
}

/** The probes' answers, as express's res.json wrote them. */
const HEALTHY = JSON.stringify({ status: "ok" });
const READY = JSON.stringify({ status: "ready" });

/** /healthz, /readyz (a HEAD of them: a GET's answer is plain) and, on the admin side, /metrics. */
function addHealthAndMetrics(app: Express, opts: AppOptions, admin: boolean): void {
  app.get("/healthz", (_req, res) => {
    writeJson(res, 200, HEALTHY);
  });
  app.get("/readyz", (_req, res) => {
    if (opts.isReady()) writeJson(res, 200, READY);
    else sendError(res, "ERR_NOT_READY");
  });
  if (!admin) return;
  // Scrapes that arrive while one is being rendered get its text: a flood of scrapes costs one
  // rendering at a time (milliseconds, the workers' sums included), not one each.
  let rendering: Promise<string> | undefined;
  app.get("/metrics", async (_req, res) => {
    const text = await (rendering ??= opts.metrics.registry.metrics().finally(() => (rendering = undefined)));
    res.set("Content-Type", opts.metrics.registry.contentType).send(text);
  });
}

/**
 * The plain path of a GET of /healthz or /readyz (the probes' calls, answered without express);
 * undefined for anything else.
 */
function plainHealthPath(method: string | undefined, url: string): "/healthz" | "/readyz" | undefined {
  if (method !== "GET") return undefined;
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  return path === "/healthz" || path === "/readyz" ? path : undefined;
}

/** How long after start express is loaded when no request has needed it yet. */
const EXPRESS_PRELOAD_DELAY_MS = 1000;

/** The listener of one config; `retire` ends its review worker once the reviews it holds are answered. */
export type App = RequestListener & { readonly retire: () => Promise<void> };

export function createApp(opts: AppOptions): App {
  const endpoints = opts.endpoints ?? "all";
  const webhook = endpoints !== "admin";
  const admin = endpoints !== "webhook";
  const limits: BodyLimits = {
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    budget: new BodyBudget(opts.maxBufferedBodyBytes),
  };
  // Large reviews on a worker thread (not with a test's fake engine, which cannot go there).
  const pool =
    opts.offloadLargeReviews === false || opts.inject !== undefined ? undefined : createReviewPool(opts.config);
  const answerReview = reviewHandler(opts, limits, pool);

  // express (with its body parsers and MIME tables, a fifth of a start's CPU) is loaded when a
  // request first needs it, or a moment after start: the probes and the reviews never wait for it.
  const buildApp = (express: typeof createExpress): Express => {
    const app = express();
    app.disable("x-powered-by");
    app.set("etag", false);
    const injectPaths = webhook ? ["/inject", "/inject/*path"] : [];
    if (webhook) app.post(injectPaths, (req, res) => answerReview(req, res, req.path));
    if (admin)
      app.post("/preview", previewHandler({ ...opts, limits, sendError, ...(pool === undefined ? {} : { pool }) }));
    addHealthAndMetrics(app, opts, admin);
    // Another method on a known path: 405, saying which it takes (RFC 9110 requires Allow).
    const notAllowed =
      (allow: string) =>
      (_req: unknown, res: ServerResponse): void => {
        res.setHeader("Allow", allow);
        sendError(res, "ERR_METHOD_NOT_ALLOWED");
      };
    app.all([...injectPaths, ...(admin ? ["/preview"] : [])], notAllowed("POST"));
    app.all([...(admin ? ["/metrics"] : []), "/healthz", "/readyz"], notAllowed("GET, HEAD"));
    app.use((_req, res) => {
      sendError(res, "ERR_NOT_FOUND");
    });
    app.use(expressErrors(opts.logger));
    return app;
  };
  let app: Express | undefined;
  let loading: Promise<Express> | undefined;
  const loadApp = (): Promise<Express> => (loading ??= import("express").then((m) => (app = buildApp(m.default))));
  setTimeout(() => void loadApp().catch(() => undefined), EXPRESS_PRELOAD_DELAY_MS).unref();
  const viaExpress = (req: IncomingMessage, res: ServerResponse): void => {
    if (app !== undefined) {
      app(req, res);
      return;
    }
    loadApp().then(
      (loaded) => loaded(req, res),
      (err: unknown) => {
        opts.logger.error({ err, path: clip(req.url?.split("?", 1)[0] ?? "") }, "request failed");
        sendError(res, "ERR_INTERNAL");
      },
    );
  };

  const listener: RequestListener = (req, res) => {
    const url = req.url ?? "";
    const health = plainHealthPath(req.method, url);
    if (health === "/healthz") writeJson(res, 200, HEALTHY);
    else if (health === "/readyz") {
      if (opts.isReady()) writeJson(res, 200, READY);
      else sendError(res, "ERR_NOT_READY");
    } else {
      const path = webhook && req.method === "POST" ? plainInjectPath(url) : undefined;
      if (path === undefined) viaExpress(req, res);
      else void answerReview(req, res, path);
    }
  };
  return Object.assign(listener, { retire: () => pool?.retire() ?? Promise.resolve() });
}
