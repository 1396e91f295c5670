// POST /preview: what /inject would do, and why, for a Pod, workload, List, several YAML
// documents or an AdmissionReview; JSON or YAML; no side effects; same limits as /inject.

import type { Request, RequestHandler, Response } from "express";
import { AdmissionError, ERRORS, type ErrorCode } from "./errors.js";
import { checkCharset, YAML_TYPES, readRequestBody, type BodyLimits } from "./body.js";
import { nativeOption, type AppOptions } from "./server.js";
import { formatPreview, labelsGivenFor, parseLabelList, parsePreviewInput, preview, PreviewError, type PreviewFormat } from "../preview.js";

/** A namespace label lookup for /preview gives up after this long (the preview says so). */
export const NAMESPACE_LOOKUP_TIMEOUT_MS = 3000;

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


export interface PreviewRouteOptions extends AppOptions {
  readonly limits: BodyLimits;
  readonly sendError: (res: Response, code: ErrorCode, message?: string) => void;
}

export function previewHandler(opts: PreviewRouteOptions): RequestHandler {
  const { config, logger, limits, sendError } = opts;
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

  return async (req: Request, res: Response): Promise<void> => {
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
  };
}
