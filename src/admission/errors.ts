// The one registry of coded errors. Each code the HTTP layer answers with maps to the HTTP
// status (for transport errors, answered as `{error:{code,message}}`) or to the
// AdmissionResponse status (for errors answered inside an AdmissionReview with HTTP 200 and
// `allowed: false`), plus the Kubernetes StatusReason and a default message (ERRORS). Each
// code only a command meets (a config, a manifest, certificate files, the API server, a remote
// preview) maps to its exit status and the shape of its message (EXIT_ERRORS). A command maps
// every error it ends with through exitStatusOf: input refused or that cannot be read exits 2
// (the command could not do its work; README "Command line", exit statuses); 1 is kept for the
// answers a command returns itself (a refused object, a finding).

import type { InjectionErrorCode } from "../injection/types.js";

export interface ErrorSpec {
  /** HTTP status, or `response.status.code` for errors answered inside a review. */
  readonly status: number;
  /** Kubernetes metav1.StatusReason. */
  readonly reason: string;
  readonly message: string;
  /** `http`: the request is refused with this status. `review`: answered as an AdmissionReview. */
  readonly answer: "http" | "review";
  /**
   * The answer closes the connection (`Connection: close`): its request's body was cut short
   * or late, or the server is shedding load. (A body refused unread, 413 or 415, is dropped
   * within a bound instead: body.ts discardRest.)
   */
  readonly closes?: true;
}

/** Whether the answer of `code` closes its connection (ErrorSpec.closes). */
export function closesConnection(code: ErrorCode): boolean {
  const spec: ErrorSpec = ERRORS[code];
  return spec.closes === true;
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
  ERR_BODY_READ: {
    status: 400,
    reason: "BadRequest",
    message: "request body could not be read",
    answer: "http",
    closes: true,
  },
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
    closes: true,
  },
  ERR_BAD_REQUEST: { status: 400, reason: "BadRequest", message: "malformed request", answer: "http" },
  ERR_HEADERS_TOO_LARGE: {
    status: 431,
    reason: "RequestHeaderFieldsTooLarge",
    message: "request headers are larger than the limit",
    answer: "http",
    closes: true,
  },
  ERR_EXPECTATION_FAILED: {
    status: 417,
    reason: "ExpectationFailed",
    message: "the only expectation served is 100-continue",
    answer: "http",
    closes: true,
  },
  ERR_TRANSFER_CODING: {
    status: 501,
    reason: "NotImplemented",
    message: "the only transfer coding served is chunked",
    answer: "http",
    closes: true,
  },
  ERR_NOT_FOUND: { status: 404, reason: "NotFound", message: "no such endpoint", answer: "http" },
  ERR_METHOD_NOT_ALLOWED: { status: 405, reason: "MethodNotAllowed", message: "method not allowed", answer: "http" },
  ERR_NOT_READY: { status: 503, reason: "ServiceUnavailable", message: "not ready", answer: "http" },
  ERR_OVERLOADED: {
    status: 503,
    reason: "ServiceUnavailable",
    message: "sidecar-injector is overloaded: too many requests in flight or connections open; retry",
    answer: "http",
    closes: true,
  },
  // A request that waited for the review worker until no one wanted its answer: its client had
  // closed the connection (then nothing is sent), or its deadline had passed (review-pool.ts).
  ERR_CALLER_GONE: {
    status: 504,
    reason: "Timeout",
    message: "not worked on: its caller had gone or its deadline had passed while it waited for the review worker",
    answer: "http",
    closes: true,
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

/** How a command answers a coded error that is no HTTP answer: its exit status, and what the message says. */
export interface ExitSpec {
  /** 1: something could not be read or reached; 2: input or arguments refused, with the reason. */
  readonly exit: 1 | 2;
  /** The shape of the message (the error's own message is printed, after `error: `). */
  readonly message: string;
}

export const EXIT_ERRORS = {
  ERR_CONFIG: { exit: 2, message: "the config file is refused: every problem, each naming its key" },
  ERR_MANIFEST: { exit: 2, message: "a manifest cannot be read or injected: the file, the document and why" },
  ERR_TLS_FILE: { exit: 2, message: "--tls-cert/--tls-key cannot be served: the file and why" },
  ERR_CERT: { exit: 2, message: "a certificate cannot be issued or read: which, and why" },
  ERR_DER: { exit: 2, message: "a certificate's DER cannot be read or written: where, and why" },
  ERR_KUBE: { exit: 2, message: "the API server refused or did not answer a call: the call and its status" },
  ERR_REMOTE_PREVIEW: {
    exit: 2,
    message: "the injector's /preview refused or did not answer: its status, code and message",
  },
  ERR_CHECK_NOT_FOUND: { exit: 2, message: "`check` names something the cluster does not hold" },
  ERR_ISTIO_CONFIG: {
    exit: 2,
    message: "serve --istio-config cannot start: a ConfigMap missing, or a setting it cannot honour (each named)",
  },
  ERR_COMPARE: {
    exit: 2,
    message:
      "istiod (--compare-with) could not be reached or gave no AdmissionReview answer: the URL and what is wrong",
  },
  // Node's own codes a command meets on user input.
  ERR_PARSE_ARGS_UNKNOWN_OPTION: {
    exit: 2,
    message: "an option the command does not take: the command, the option, and the help that lists its options",
  },
  ERR_PARSE_ARGS_INVALID_OPTION_VALUE: {
    exit: 2,
    message: "an option without its value, or a flag given one: the command and the option",
  },
  ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL: {
    exit: 2,
    message: "an argument the command does not take: the command and the argument",
  },
  ERR_INVALID_URL: { exit: 2, message: "a URL option that does not parse (Node's message)" },
  ENOENT: { exit: 2, message: "a file that does not exist (Node's message, naming it)" },
} as const satisfies Readonly<Record<string, ExitSpec>>;

export type ExitErrorCode = keyof typeof EXIT_ERRORS;
/** Every code of the registry. */
export type CodedErrorCode = ErrorCode | ExitErrorCode;

function isExitErrorCode(v: string): v is ExitErrorCode {
  return Object.hasOwn(EXIT_ERRORS, v);
}

/**
 * The exit status of a command that ends with an error of this code: EXIT_ERRORS's, or 2 for a
 * code the webhook answers with (the same input refused: a review that is no AdmissionReview,
 * an invalid annotation, a preview over its limits). Undefined for ERR_INTERNAL and for a code
 * the registry does not hold: the command still ends with one line and exit 2.
 */
export function exitStatusOf(code: unknown): 1 | 2 | undefined {
  if (typeof code !== "string" || code === "ERR_INTERNAL") return undefined;
  if (isExitErrorCode(code)) return EXIT_ERRORS[code].exit;
  return isErrorCode(code) ? 2 : undefined;
}
