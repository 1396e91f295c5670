// The one registry of coded errors the HTTP layer can answer with. Each code maps to the HTTP
// status (for transport errors, answered as `{error:{code,message}}`) or to the
// AdmissionResponse status (for errors answered inside an AdmissionReview with HTTP 200 and
// `allowed: false`), plus the Kubernetes StatusReason and a default message.

import type { InjectionErrorCode } from "../injection/types.js";

export interface ErrorSpec {
  /** HTTP status, or `response.status.code` for errors answered inside a review. */
  readonly status: number;
  /** Kubernetes metav1.StatusReason. */
  readonly reason: string;
  readonly message: string;
  /** `http`: the request is refused with this status. `review`: answered as an AdmissionReview. */
  readonly answer: "http" | "review";
}

export const ERRORS = {
  // --- transport: the body cannot be answered as an AdmissionReview ---
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    reason: "UnsupportedMediaType",
    message: "Content-Type must be application/json",
    answer: "http",
  },
  ERR_BODY_TOO_LARGE: {
    status: 413,
    reason: "RequestEntityTooLarge",
    message: "request body is larger than the limit",
    answer: "http",
  },
  ERR_EMPTY_BODY: { status: 400, reason: "BadRequest", message: "no body found", answer: "http" },
  ERR_BODY_READ: { status: 400, reason: "BadRequest", message: "request body could not be read", answer: "http" },
  ERR_MALFORMED_JSON: { status: 400, reason: "BadRequest", message: "request body is not valid JSON", answer: "http" },
  ERR_NOT_ADMISSION_REVIEW: {
    status: 400,
    reason: "BadRequest",
    message: "request body is not an AdmissionReview",
    answer: "http",
  },
  ERR_REQUEST_TIMEOUT: {
    status: 408,
    reason: "Timeout",
    message: "request body was not received in time",
    answer: "http",
  },
  ERR_BAD_REQUEST: { status: 400, reason: "BadRequest", message: "malformed request", answer: "http" },
  ERR_NOT_FOUND: { status: 404, reason: "NotFound", message: "no such endpoint", answer: "http" },
  ERR_METHOD_NOT_ALLOWED: { status: 405, reason: "MethodNotAllowed", message: "method not allowed", answer: "http" },
  ERR_NOT_READY: { status: 503, reason: "ServiceUnavailable", message: "not ready", answer: "http" },
  ERR_OVERLOADED: {
    status: 503,
    reason: "ServiceUnavailable",
    message: "sidecar-injector is overloaded: too many requests in flight; retry",
    answer: "http",
  },
  ERR_PREVIEW_INPUT: {
    status: 400,
    reason: "BadRequest",
    message: "the body holds no Pod, workload or AdmissionReview that can be previewed",
    answer: "http",
  },
  // /preview's bounds: what one request may ask, so that it cannot amplify without bound.
  ERR_PREVIEW_TOO_MANY_PODS: {
    status: 413,
    reason: "RequestEntityTooLarge",
    message: "the request holds more Pods and workloads than /preview answers at once",
    answer: "http",
  },
  ERR_PREVIEW_TOO_MANY_NAMESPACES: {
    status: 413,
    reason: "RequestEntityTooLarge",
    message: "the request names more namespaces than /preview looks up at once",
    answer: "http",
  },
  ERR_PREVIEW_ANSWER_TOO_LARGE: {
    status: 413,
    reason: "RequestEntityTooLarge",
    message: "the preview answer would be larger than the limit",
    answer: "http",
  },
  // --- answered inside the AdmissionReview (HTTP 200, allowed: false) ---
  ERR_INVALID_ANNOTATION: { status: 400, reason: "BadRequest", message: "invalid annotation", answer: "review" },
  ERR_INVALID_POD: { status: 400, reason: "BadRequest", message: "invalid Pod", answer: "review" },
  ERR_INVALID_CONFIG: {
    status: 400,
    reason: "BadRequest",
    message: "the injector configuration cannot be applied to this Pod",
    answer: "review",
  },
  // --- both: an unexpected exception; inside a review when one is being answered ---
  ERR_INTERNAL: {
    status: 500,
    reason: "InternalError",
    message: "internal error in the sidecar injector; see its logs",
    answer: "review",
  },
} as const satisfies Readonly<Record<string, ErrorSpec>>;

export type ErrorCode = keyof typeof ERRORS;

// Every code the injection engine throws must have an entry above.
const _injectionCodesCovered: Readonly<Record<InjectionErrorCode, ErrorSpec>> = ERRORS;
void _injectionCodesCovered;

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && Object.hasOwn(ERRORS, v);
}

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

/** A request the HTTP layer refuses; `message` is safe to send to the client. */
export class AdmissionError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
  ) {
    super(message);
    this.name = "AdmissionError";
    this.status = ERRORS[code].status;
  }

  toBody(): ErrorBody {
    return errorBody(this.code, this.message);
  }
}

export function errorBody(code: ErrorCode, message: string = ERRORS[code].message): ErrorBody {
  return { error: { code, message } };
}
