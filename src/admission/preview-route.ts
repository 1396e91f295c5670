// POST /preview: what /inject would do, and why, for a Pod, workload, List, several YAML
// documents or an AdmissionReview; JSON or YAML; no side effects; same limits as /inject.
// Bounded: at most MAX_PREVIEW_PODS Pods, MAX_PREVIEW_NAMESPACES namespaces looked up and
// MAX_PREVIEW_ANSWER_BYTES of answer per request, each refused with its own code (413); its share
// of the event loop (work-budget.ts), and its Pods read and its answer formatted a slice of
// PREVIEW_SLICE_MS at a time, the loop given back between them to the reviews and probes that came
// meanwhile. Namespace
// labels come from the request, or from the API server for a caller allowed to read them
// (preview-lookup.ts). A body of OFFLOAD_FROM_BYTES or more is decoded, pre-scanned and parsed
// on the review worker (review-pool.ts), so its reading, and its refusal for size or shape, never
// holds the event loop; the answers are those of parsing it here.
//
// `kubectl create --raw <path>/preview -f pod.yaml` (through the API server's service proxy)
// sends the file's bytes with no Content-Type, and prints an error answer only when it decodes
// as a Kubernetes Status. So a body without Content-Type is read by its first character (JSON
// when it starts with `{` or `[`, else YAML), and every error is a Status object (kind, apiVersion,
// status: Failure, message, reason, code) that also carries this project's `error: {code,
// message}`, so existing clients read what they read before.

import type { Request, RequestHandler, Response } from "express";
import { AdmissionError, closesConnection, ERRORS, errorBody, type ErrorBody, type ErrorCode } from "./errors.js";
import {
  checkCharset,
  clientGone,
  discardRest,
  holdAnswer,
  YAML_TYPES,
  readRequestBody,
  type BodyLimits,
} from "./body.js";
import { WorkBudget, type Admitted } from "./work-budget.js";
import { Turns } from "./turns.js";
import { quote } from "../injection/quote.js";
import { bearerToken, isNamespaceName, LOOKUP_DEADLINE_MS, NamespaceLookups, NOT_KNOWN } from "./preview-lookup.js";
import { OFFLOAD_FROM_BYTES, type ReviewPool } from "./review-pool.js";
import { callerWaitsMs } from "./caller-deadline.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./https.js";
import { nativeOption, type AppOptions } from "./server.js";
import {
  formatPreviewInSlices,
  MAX_PREVIEW_ANSWER_BYTES,
  parseLabelList,
  parsePreviewInput,
  preview,
  PreviewError,
  PreviewLimitError,
  PREVIEW_SLICE_MS,
  type PreviewFormat,
} from "../preview.js";
import { formatPreviewSummary } from "../preview-summary.js";
import { policyDomain } from "../policy/verdict.js";

/** The one deadline of a request's namespace label lookups (the preview says what was not read). */
export const NAMESPACE_LOOKUP_TIMEOUT_MS = LOOKUP_DEADLINE_MS;

/** JSON unless the Accept header prefers YAML (an Accept that allows neither gets JSON too). */
export function previewAnswerFormat(accept: string | undefined, chosen: string | false): "json" | "yaml" {
  return accept && chosen !== false && YAML_TYPES.has(chosen) ? "yaml" : "json";
}

/**
 * /preview takes JSON or YAML (a charset, if given, must be UTF-8). No Content-Type at all is
 * "yaml": parsePreviewInput reads a body that starts with `{` or `[` as JSON, anything else as YAML.
 */
export function previewContentType(header: string | undefined): "json" | "yaml" {
  if (header === undefined || header.trim() === "") return "yaml";
  const [type = "", ...params] = header.split(";");
  const media = type.trim().toLowerCase();
  if (media !== "application/json" && !YAML_TYPES.has(media)) {
    throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json or application/yaml");
  }
  checkCharset(params);
  return media === "application/json" ? "json" : "yaml";
}

/** A /preview error: a Kubernetes Status (what kubectl prints) carrying the coded `error` too. */
export interface PreviewErrorBody extends ErrorBody {
  readonly kind: "Status";
  readonly apiVersion: "v1";
  readonly metadata: Record<string, never>;
  readonly status: "Failure";
  readonly message: string;
  /** metav1.StatusReason, e.g. UnsupportedMediaType, BadRequest, RequestEntityTooLarge. */
  readonly reason: string;
  /** The HTTP status. */
  readonly code: number;
}

export function previewErrorBody(code: ErrorCode, message: string = ERRORS[code].message): PreviewErrorBody {
  const spec = ERRORS[code];
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: spec.reason,
    code: spec.status,
    ...errorBody(code, message),
  };
}

/** Answers a /preview error as a Status, with the connection rules of every other error answer. */
export function sendPreviewError(res: Response, code: ErrorCode, message?: string): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  if (closesConnection(code)) res.set("Connection", "close");
  discardRest(res.req);
  if (code === "ERR_OVERLOADED") res.set("Retry-After", "1");
  res.status(ERRORS[code].status).json(previewErrorBody(code, message));
}

export interface PreviewRouteOptions extends AppOptions {
  readonly limits: BodyLimits;
  /** Not used: /preview answers its errors with sendPreviewError (Status objects). */
  readonly sendError?: (res: Response, code: ErrorCode, message?: string) => void;
  /** Where bodies of OFFLOAD_FROM_BYTES or more are parsed; without it, on the event loop. */
  readonly pool?: Pick<ReviewPool, "parsePreview">;
}

/** The query parameters /preview reads, and the values `format` takes. */
const PREVIEW_PARAMETERS = ["namespace", "namespaceLabels", "format"] as const;
const PREVIEW_FORMATS = ["summary", "diff"];

/**
 * /preview's parameters, each given once as a plain value: one given twice or as a list
 * (`namespaceLabels=a&namespaceLabels=b`, `namespaceLabels[]=a`) would be a preview of
 * something the caller did not ask, and a `format` we do not know would answer in another;
 * both are refused (ERR_PREVIEW_INPUT, naming it), as is a namespace no namespace can be
 * named. Other parameters are left alone.
 */
export function previewQuery(query: Request["query"]): Partial<Record<(typeof PREVIEW_PARAMETERS)[number], string>> {
  const out: Partial<Record<(typeof PREVIEW_PARAMETERS)[number], string>> = {};
  // A list in the forms other parsers read (`namespaceLabels[]=…`, `namespaceLabels[0]=…`).
  for (const key of Object.keys(query)) {
    const bracket = key.indexOf("[");
    const name = bracket > 0 ? key.slice(0, bracket) : undefined;
    if (name !== undefined && (PREVIEW_PARAMETERS as readonly string[]).includes(name))
      throw new PreviewError(`query parameter ${name}: give it once, as a single value`);
  }
  for (const name of PREVIEW_PARAMETERS) {
    const v: unknown = query[name];
    if (v === undefined) continue;
    if (typeof v !== "string") throw new PreviewError(`query parameter ${name}: give it once, as a single value`);
    out[name] = v;
  }
  if (out.namespace && !isNamespaceName(out.namespace))
    throw new PreviewError(`query parameter namespace: ${quote(out.namespace)} cannot be a namespace's name`);
  if (out.format !== undefined && !PREVIEW_FORMATS.includes(out.format))
    throw new PreviewError(
      `query parameter format: ${quote(out.format)} is not one of ${PREVIEW_FORMATS.join(", ")} (JSON or YAML: by Accept)`,
    );
  return out;
}

export function previewHandler(opts: PreviewRouteOptions): RequestHandler {
  const { config, logger, limits, pool } = opts;
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const work = opts.previewWork ?? new WorkBudget();
  const turns = new Turns();
  // The handler lives as long as its config (a new config builds a new app): the policy's
  // domain is built here, once, not per request. Native sidecars or not, the domain names the
  // same containers (in another order), so the nodes changing under it changes no verdict.
  const domain = policyDomain(
    config,
    nativeOption(opts.nativeSidecarsSupported).nativeSidecarsSupported ?? config.nativeSidecars === "true",
  );
  const access = opts.namespaceAccess;
  const lookups =
    opts.namespaceLookups ??
    (access &&
      new NamespaceLookups(access, {
        deadlineMs: opts.namespaceLookupTimeoutMs ?? NAMESPACE_LOOKUP_TIMEOUT_MS,
        logger,
      }));

  return async (req: Request, res: Response): Promise<void> => {
    const started = process.hrtime.bigint();
    // The event loop's time this preview takes: from its body read to its answer, less its waits.
    let workFrom: number | undefined;
    let admitted: Admitted | undefined;
    let waitedMs = 0;
    /** The event loop's time this preview has taken so far: since its body was read, less its waits. */
    const workedMs = (from: number): number => performance.now() - from - waitedMs;
    let endTurn: (() => void) | undefined;
    let dropped = false;
    const waiting = async <T>(p: Promise<T>): Promise<T> => {
      const from = performance.now();
      try {
        return await p;
      } finally {
        waitedMs += performance.now() - from;
      }
    };
    try {
      const inputFormat = previewContentType(req.headers["content-type"]);
      const body = await readRequestBody(req, limits);
      if (body.length === 0) throw new AdmissionError("ERR_EMPTY_BODY");
      admitted = work.admit(body.length / 1024);
      if (admitted === undefined)
        throw new AdmissionError("ERR_OVERLOADED", "previews are taking their share of the server's time: try again");
      workFrom = performance.now();
      const docs =
        pool !== undefined && body.length >= OFFLOAD_FROM_BYTES
          ? await waiting(
              // Not read if its client goes, or its deadline passes, while it waits (ERR_CALLER_GONE).
              pool.parsePreview(body, inputFormat, {
                res,
                waitsMs: callerWaitsMs(req.url, requestTimeoutMs) - Number(process.hrtime.bigint() - started) / 1e6,
              }),
            )
          : parsePreviewInput(body.toString("utf8"), inputFormat);
      const q = previewQuery(req.query);
      const namespace = q.namespace ? q.namespace : undefined;
      const given = q.namespaceLabels === undefined ? undefined : parseLabelList(q.namespaceLabels);
      // ?format=summary: preview -o summary's text, a few lines per Pod (what `kubectl create
      // --raw` users read); ?format=diff: the unified diff; else JSON or YAML by Accept.
      const summary = q.format === "summary";
      const format: PreviewFormat =
        q.format === "diff"
          ? "diff"
          : previewAnswerFormat(req.headers.accept, req.accepts(["application/json", ...YAML_TYPES]));
      // Labels the caller did not give are read only with its own bearer token (never logged).
      const token = bearerToken(req.headers.authorization);
      // Reviews and probes that came meanwhile are answered between slices of the Pods' reading
      // and of the answer's formatting, one preview at a time (turns.ts); the pauses and the
      // wait for its turn are not this preview's work. At each pause, what it has worked so far
      // is held in the work budget (previews admitted meanwhile see it), and after each pause
      // and its turn's wait, a preview whose client has gone stops.
      const stillWanted = (): void => {
        if (!clientGone(res)) return;
        dropped = true;
        throw new AdmissionError("ERR_CALLER_GONE", "the client went before its preview was done");
      };
      const slices = {
        ms: PREVIEW_SLICE_MS,
        pause: async () => {
          if (workFrom !== undefined && admitted !== undefined) work.progress(workedMs(workFrom), admitted);
          await waiting(new Promise<void>((done) => setImmediate(done)));
          stillWanted();
        },
        begin: async () => {
          endTurn = await waiting(turns.take());
          stillWanted();
        },
      };
      const entries = await preview(docs, {
        config,
        ...(namespace ? { namespace } : {}),
        ...(given ? { givenLabels: given } : {}),
        ...(lookups && token !== undefined
          ? { lookup: (namespaces: readonly string[]) => waiting(lookups.lookup(token, namespaces)) }
          : {}),
        ...(lookups && token === undefined ? { notLookedUp: NOT_KNOWN.anonymous } : {}),
        ...(opts.ownNamespace ? { ownNamespace: opts.ownNamespace } : {}),
        ...nativeOption(opts.nativeSidecarsSupported),
        policyDomain: domain,
        inlineOnly: true,
        slices,
      });
      const text = summary
        ? formatPreviewSummary(entries)
        : await formatPreviewInSlices(entries, format, MAX_PREVIEW_ANSWER_BYTES, slices);
      const answer = Buffer.from(text, "utf8");
      // Counted with the bodies being read until its client takes it: clients that do not read
      // their previews cannot hold more than that budget together (503 past it).
      holdAnswer(res, answer.byteLength, limits.budget);
      res
        .status(200)
        .set(
          "Content-Type",
          `${summary || format === "diff" ? "text/plain" : format === "json" ? "application/json" : "application/yaml"}; charset=utf-8`,
        )
        .send(answer);
      logger.info(
        {
          path: "/preview",
          items: entries.length,
          bytes: answer.byteLength,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        "preview",
      );
    } catch (e) {
      const code: ErrorCode =
        e instanceof AdmissionError || e instanceof PreviewLimitError
          ? e.code
          : e instanceof PreviewError
            ? "ERR_PREVIEW_INPUT"
            : "ERR_INTERNAL";
      const message =
        e instanceof AdmissionError || e instanceof PreviewError || e instanceof PreviewLimitError
          ? e.message
          : ERRORS.ERR_INTERNAL.message;
      sendPreviewError(res, code, message);
      if (code === "ERR_INTERNAL") logger.error({ path: "/preview", err: e }, "preview failed");
      else if (code === "ERR_CALLER_GONE") logger.warn({ path: "/preview", code, message }, "preview dropped");
      else if (e instanceof PreviewLimitError)
        logger.warn({ path: "/preview", code, limit: e.limit, count: e.count }, "preview refused");
    } finally {
      endTurn?.();
      if (workFrom !== undefined && admitted !== undefined) work.spend(workedMs(workFrom), admitted, !dropped);
    }
  };
}
