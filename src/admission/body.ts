// Reading a request body within the limits, and the Content-Type rules of the endpoints.

import type { IncomingMessage } from "node:http";
import { AdmissionError } from "./errors.js";

/** Istio's MaxRequestBodyBytes. */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
/** The API server gives a webhook at most 30 s (default 10 s); a body slower than this is dead. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
}

export const YAML_TYPES = new Set(["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"]);

/** Accepts `application/json` with optional parameters; a charset, if given, must be UTF-8. */
export function checkJsonContentType(header: string | undefined): void {
  const [type = "", ...params] = (header ?? "").split(";");
  if (type.trim().toLowerCase() !== "application/json") {
    throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", `Content-Type must be application/json`);
  }
  checkCharset(params);
}

export function checkCharset(params: readonly string[]): void {
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

