// The webhook's HTTP surface (express 5). TLS, timeouts and draining live in https.ts; this
// file maps requests to review.ts and errors.ts, and writes one log line and the metrics per
// review.

import type { IncomingMessage } from "node:http";
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from "express";
import type { Config } from "../config/types.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import { AdmissionError, ERRORS, errorBody, type ErrorCode } from "./errors.js";
import { admit, decodeAdmissionReview, parsePathEnv, type InjectFn, type ReviewOutcome } from "./review.js";
import { formatPreview, labelsGivenFor, parseLabelList, parsePreviewInput, preview, PreviewError, type PreviewFormat } from "../preview.js";

/** Istio's MaxRequestBodyBytes. */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
/** The API server gives a webhook at most 30 s (default 10 s); a body slower than this is dead. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

export interface AppOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** /readyz answers 200 only while this returns true (certificate loaded, not draining). */
  readonly isReady: () => boolean;
  /** Whether the cluster runs native sidecars (`nativeSidecars: auto`); may change over time. */
  readonly nativeSidecarsSupported?: boolean | (() => boolean | undefined);
  /** Labels of a namespace from the API server, for /preview (undefined without cluster access). */
  readonly namespaceLabels?: (namespace: string) => Promise<Readonly<Record<string, string>> | undefined>;
  /** The injector's own namespace, which the webhook configuration never selects. */
  readonly ownNamespace?: string;
  /** How long /preview waits for `namespaceLabels` before saying they are not known; default 3 s. */
  readonly namespaceLookupTimeoutMs?: number;
  /** Request bodies over this many bytes get 413; default 6 MiB. */
  readonly maxBodyBytes?: number;
  /** A body not fully received this long after the headers gets 408; default 10 s. */
  readonly bodyTimeoutMs?: number;
  /** The injection engine; defaults to injection/inject.ts. */
  readonly inject?: InjectFn;
}

export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
}

function nativeOption(v: AppOptions["nativeSidecarsSupported"]): { nativeSidecarsSupported?: boolean } {
  const value = typeof v === "function" ? v() : v;
  return value === undefined ? {} : { nativeSidecarsSupported: value };
}

/** A namespace label lookup for /preview gives up after this long (the preview says so). */
export const NAMESPACE_LOOKUP_TIMEOUT_MS = 3000;

const YAML_TYPES = new Set(["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"]);

/** JSON unless the Accept header prefers YAML (an Accept that allows neither gets JSON too). */
export function previewAnswerFormat(accept: string | undefined, chosen: string | false): "json" | "yaml" {
  return accept && chosen !== false && YAML_TYPES.has(chosen) ? "yaml" : "json";
}

/** /preview takes JSON or YAML (a charset, if given, must be UTF-8). */
export function previewContentType(header: string | undefined): "json" | "yaml" {
  const [type = "", ...params] = (header ?? "").split(";");
  const media = type.trim().toLowerCase();
  if (media !== "application/json" && !YAML_TYPES.has(media)) {
    throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json or application/yaml");
  }
  checkCharset(params);
  return media === "application/json" ? "json" : "yaml";
}

/** Accepts `application/json` with optional parameters; a charset, if given, must be UTF-8. */
export function checkJsonContentType(header: string | undefined): void {
  const [type = "", ...params] = (header ?? "").split(";");
  if (type.trim().toLowerCase() !== "application/json") {
    throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", `Content-Type must be application/json`);
  }
  checkCharset(params);
}

function checkCharset(params: readonly string[]): void {
  for (const param of params) {
    const [name = "", value = ""] = param.split("=", 2);
    if (name.trim().toLowerCase() !== "charset") continue;
    const charset = value.trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") {
      throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Type charset must be utf-8");
    }
  }
}

/**
 * Reads the whole request body, refusing it (ERR_BODY_TOO_LARGE) as soon as the declared
 * Content-Length or the bytes received exceed the limit, and (ERR_REQUEST_TIMEOUT) when it is
 * not complete in time. A refused body is drained by Node, bounded by the server's requestTimeout.
 */
export function readRequestBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { maxBodyBytes, bodyTimeoutMs } = limits;
  const tooLarge = (): AdmissionError =>
    new AdmissionError("ERR_BODY_TOO_LARGE", `request body is larger than the limit of ${maxBodyBytes} bytes`);

  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
    return Promise.reject(new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Encoding must be identity"));
  }
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) return Promise.reject(tooLarge());

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;

    const settle = (err: AdmissionError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onAbort);
      if (err) {
        req.resume(); // discard the rest
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBodyBytes) settle(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onAbort = (): void =>
      settle(new AdmissionError("ERR_BODY_READ", "the connection closed before the request body was complete"));
    const timer = setTimeout(() => settle(new AdmissionError("ERR_REQUEST_TIMEOUT")), bodyTimeoutMs);

    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onAbort);
    req.on("close", onAbort);
  });
}

function sendError(res: Response, code: ErrorCode, message?: string): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  if (code === "ERR_REQUEST_TIMEOUT" || code === "ERR_BODY_READ") res.set("Connection", "close");
  res.status(ERRORS[code].status).json(errorBody(code, message));
}

export function createApp(opts: AppOptions): Express {
  const { config, logger, metrics, isReady } = opts;
  const limits: BodyLimits = {
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
  };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  const recordOutcome = (outcome: ReviewOutcome, durationMs: number): void => {
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
    const line = {
      uid: outcome.uid,
      namespace: outcome.namespace,
      pod: outcome.pod,
      operation: outcome.operation,
      decision: outcome.decision,
      reason: outcome.reason,
      patchOperations: outcome.patchOperations,
      durationMs,
    };
    if (outcome.error !== undefined) logger.error({ ...line, err: outcome.error }, "admission review failed");
    else logger.info(line, "admission review");
  };

  const injectHandler = async (req: Request, res: Response): Promise<void> => {
    const started = process.hrtime.bigint();
    const elapsedMs = (): number => Number(process.hrtime.bigint() - started) / 1e6;
    metrics.requests.inc();
    try {
      checkJsonContentType(req.headers["content-type"]);
      const body = await readRequestBody(req, limits);
      const review = decodeAdmissionReview(body);
      const result = admit(review, {
        config,
        pathEnv: parsePathEnv(req.path),
        ...nativeOption(opts.nativeSidecarsSupported),
        ...(opts.inject === undefined ? {} : { inject: opts.inject }),
      });
      res.status(200).json(result.review);
      recordOutcome(result.outcome, elapsedMs());
    } catch (e) {
      const code: ErrorCode = e instanceof AdmissionError ? e.code : "ERR_INTERNAL";
      const message = e instanceof AdmissionError ? e.message : ERRORS.ERR_INTERNAL.message;
      sendError(res, code, message);
      metrics.failure.inc({ reason: code });
      const line = { code, status: ERRORS[code].status, path: req.path, durationMs: elapsedMs() };
      if (code === "ERR_INTERNAL") logger.error({ ...line, err: e }, "admission request failed");
      else logger.warn({ ...line, message }, "admission request refused");
    } finally {
      metrics.duration.observe(elapsedMs() / 1000);
    }
  };

  const injectPaths = ["/inject", "/inject/*path"];
  app.post(injectPaths, injectHandler);

  // POST /preview: what /inject would do, and why, for a Pod, workload, List, several YAML
  // documents or an AdmissionReview; JSON or YAML; no side effects; same limits as /inject.
  app.post("/preview", async (req: Request, res: Response): Promise<void> => {
    const started = process.hrtime.bigint();
    try {
      const inputFormat = previewContentType(req.headers["content-type"]);
      const body = await readRequestBody(req, limits);
      if (body.length === 0) throw new AdmissionError("ERR_EMPTY_BODY");
      const docs = parsePreviewInput(body.toString("utf8"), inputFormat);
      const q = req.query;
      const namespace = typeof q.namespace === "string" && q.namespace ? q.namespace : undefined;
      const given = typeof q.namespaceLabels === "string" ? parseLabelList(q.namespaceLabels) : undefined;
      const format: PreviewFormat = q.format === "diff" ? "diff" : previewAnswerFormat(req.headers.accept, req.accepts(["application/json", ...YAML_TYPES]));
      const entries = await preview(docs, {
        config,
        ...(namespace ? { namespace } : {}),
        namespaceLabels: async (ns) => labelsGivenFor(ns, namespace, given) ?? lookupLabels(ns),
        ...(opts.ownNamespace ? { ownNamespace: opts.ownNamespace } : {}),
        ...nativeOption(opts.nativeSidecarsSupported),
      });
      const text = formatPreview(entries, format);
      res.status(200).type(format === "json" ? "application/json" : format === "yaml" ? "application/yaml" : "text/plain").send(text);
      logger.info({ path: "/preview", items: entries.length, durationMs: Number(process.hrtime.bigint() - started) / 1e6 }, "preview");
    } catch (e) {
      const code: ErrorCode = e instanceof AdmissionError ? e.code : e instanceof PreviewError ? "ERR_PREVIEW_INPUT" : "ERR_INTERNAL";
      const message = e instanceof AdmissionError || e instanceof PreviewError ? e.message : ERRORS.ERR_INTERNAL.message;
      sendError(res, code, message);
      if (code === "ERR_INTERNAL") logger.error({ path: "/preview", err: e }, "preview failed");
    }
  });

  const lookupLabels = async (ns: string): Promise<Readonly<Record<string, string>> | undefined> => {
    if (!opts.namespaceLabels) return undefined;
    try {
      return await Promise.race([
        opts.namespaceLabels(ns),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), opts.namespaceLookupTimeoutMs ?? NAMESPACE_LOOKUP_TIMEOUT_MS).unref()),
      ]);
    } catch (e) {
      logger.warn({ namespace: ns, err: e instanceof Error ? e.message : String(e) }, "namespace labels not read for /preview");
      return undefined;
    }
  };

  app.get("/healthz", (_req, res) => {
    res.status(200).json({ status: "ok" });
  });
  app.get("/readyz", (_req, res) => {
    if (isReady()) res.status(200).json({ status: "ready" });
    else sendError(res, "ERR_NOT_READY");
  });
  app.get("/metrics", async (_req, res) => {
    const text = await metrics.registry.metrics();
    res.set("Content-Type", metrics.registry.contentType).send(text);
  });

  app.all([...injectPaths, "/preview", "/healthz", "/readyz", "/metrics"], (_req, res) => {
    sendError(res, "ERR_METHOD_NOT_ALLOWED");
  });
  app.use((_req, res) => {
    sendError(res, "ERR_NOT_FOUND");
  });
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    // Errors from express itself (e.g. a path that does not percent-decode) and from the small
    // handlers above.
    const status = typeof err === "object" && err !== null && "status" in err ? err.status : undefined;
    if (typeof status === "number" && status >= 400 && status < 500) {
      logger.warn({ code: "ERR_BAD_REQUEST", status: 400, path: req.path }, "request refused");
      sendError(res, "ERR_BAD_REQUEST");
      return;
    }
    logger.error({ err, path: req.path }, "request failed");
    sendError(res, "ERR_INTERNAL");
  };
  app.use(onError);
  return app;
}
