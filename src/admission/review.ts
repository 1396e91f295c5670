// AdmissionReview in, AdmissionReview out. Pure functions: no I/O, no logger, no clock. The
// HTTP layer (server.ts) reads the body, calls decodeAdmissionReview and admit, and logs the
// outcome that admit returns.

import type { Config } from "../config/types.js";
import { inject as engineInject } from "../injection/inject.js";
import { EngineFailure, InjectionError, type InjectContext, type InjectResult, type PatchOperation } from "../injection/types.js";
import {
  ADMISSION_API_VERSIONS,
  type AdmissionApiVersion,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type Pod,
} from "../kube/types.js";
import { clip, quoteName } from "../injection/quote.js";
import { MAX_POD_DEPTH } from "../injection/shape.js";
import { jsonPreScan, YamlLimitError, type YamlLimits } from "../injection/yaml-limits.js";
import { skipReasonOf } from "../injection/decisions.js";
import { SKIP_REASONS, type SkipReason } from "../telemetry/metrics.js";
import { AdmissionError, ERRORS, type ErrorCode } from "./errors.js";

/** A review that passed validation: a known apiVersion and a request with a uid. */
export type IncomingReview = AdmissionReview & {
  readonly apiVersion: AdmissionApiVersion;
  readonly request: AdmissionRequest;
};

export type InjectFn = (pod: Pod, ctx: InjectContext, config: Config) => InjectResult;

export interface AdmitOptions {
  readonly config: Config;
  /** Proxy env from the request path (`/inject/cluster/c1`); see parsePathEnv. */
  readonly pathEnv?: Readonly<Record<string, string>>;
  readonly nativeSidecarsSupported?: boolean;
  /** The injection engine; defaults to injection/inject.ts. Tests pass a fake. */
  readonly inject?: InjectFn;
}

/** What happened to a review, for the log line, the metrics and the audit annotations. */
export const REVIEW_DECISIONS = ["injected", "skipped", "allowed", "refused"] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

export interface ReviewOutcome {
  /**
   * injected: a Pod CREATE answered with a patch. skipped: a Pod CREATE the decision left
   * alone. allowed: not a Pod CREATE, admitted unchanged. refused: allowed:false.
   */
  readonly decision: ReviewDecision;
  /** The first reason of the decision, or the error message. */
  readonly reason: string;
  readonly uid: string;
  readonly namespace: string;
  /** Pod name, else its generateName; undefined when the object has neither. */
  readonly pod: string | undefined;
  readonly operation: string;
  readonly patchOperations: number;
  /** Bounded metric label, for skipped and allowed. */
  readonly skipReason?: SkipReason;
  /** Registry code, for refused. */
  readonly errorCode?: ErrorCode;
  /** The unexpected exception behind an ERR_INTERNAL refusal, for the caller to log. */
  readonly error?: unknown;
}

export interface ReviewResult {
  readonly review: AdmissionReview;
  readonly outcome: ReviewOutcome;
}

/**
 * What opens every refusal's status.message: the API server shows it to whoever created the
 * Pod (`admission webhook "…" denied the request: sidecar-injector: …`), and it names who refused.
 */
export const REFUSAL_PREFIX = "sidecar-injector: ";

export function refusalMessage(message: string): string {
  return message.startsWith(REFUSAL_PREFIX) ? message : `${REFUSAL_PREFIX}${message}`;
}

/** Audit annotation keys. The API server prefixes them with the webhook's name and a `/`. */
export const AUDIT_DECISION_KEY = "decision";
export const AUDIT_REASON_KEY = "reason";

// The API server may truncate warnings over 256 characters and in total over 4 KiB.
const MAX_WARNING_CHARS = 256;
const MAX_WARNINGS_TOTAL_CHARS = 4096;

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function notReview(message: string): AdmissionError {
  return new AdmissionError("ERR_NOT_ADMISSION_REVIEW", `request body is not an AdmissionReview: ${message}`);
}

function checkOptionalString(obj: Plain, key: string, at: string): void {
  if (obj[key] !== undefined && typeof obj[key] !== "string") throw notReview(`${at}.${key} must be a string`);
}

function checkGroupVersion(obj: Plain, key: string, last: "kind" | "resource"): void {
  const v = obj[key];
  if (v === undefined) return;
  if (!isPlain(v)) throw notReview(`request.${key} must be an object`);
  for (const field of ["group", "version", last]) {
    checkOptionalString(v, field, `request.${key}`);
  }
}

/** Checks the shape of a parsed body; throws ERR_NOT_ADMISSION_REVIEW naming the field. */
export function validateAdmissionReview(value: unknown): IncomingReview {
  if (!isPlain(value)) throw notReview("the body must be a JSON object");
  if (value.kind !== "AdmissionReview") throw notReview(`kind must be "AdmissionReview"`);
  const apiVersion = value.apiVersion;
  if (typeof apiVersion !== "string" || !(ADMISSION_API_VERSIONS as readonly string[]).includes(apiVersion)) {
    throw notReview(`apiVersion must be one of ${ADMISSION_API_VERSIONS.join(", ")}`);
  }
  const request = value.request;
  if (!isPlain(request)) throw notReview("request must be an object");
  if (nonEmptyString(request.uid) === undefined) throw notReview("request.uid must be a non-empty string");
  for (const key of ["operation", "namespace", "name", "subResource"]) checkOptionalString(request, key, "request");
  checkGroupVersion(request, "kind", "kind");
  checkGroupVersion(request, "resource", "resource");
  if (request.dryRun !== undefined && typeof request.dryRun !== "boolean") {
    throw notReview("request.dryRun must be true or false");
  }
  return value as unknown as IncomingReview;
}

/** Bodies at least this long are scanned for depth before JSON.parse (below it, parsing is fast at any depth). */
const DEEP_SCAN_FROM_CHARS = 64 * 1024;
/** The envelope (review, request) around a Pod of at most MAX_POD_DEPTH levels, and some room. */
const REVIEW_JSON_LIMITS: YamlLimits = {
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxDepth: MAX_POD_DEPTH + 10,
  maxNodes: Number.MAX_SAFE_INTEGER,
  maxAliases: 0,
  maxDocuments: 1,
};

/** Body bytes to a validated review. Throws ERR_EMPTY_BODY, ERR_MALFORMED_JSON, ERR_NOT_ADMISSION_REVIEW. */
export function decodeAdmissionReview(body: Uint8Array | string): IncomingReview {
  let text = typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") throw new AdmissionError("ERR_EMPTY_BODY");
  if (text.length > DEEP_SCAN_FROM_CHARS) {
    // JSON.parse takes seconds on megabytes of nested brackets; a linear scan refuses them in
    // milliseconds. The API server sends the typed Pod, about a dozen levels deep.
    try {
      jsonPreScan(text, REVIEW_JSON_LIMITS);
    } catch (e) {
      if (e instanceof YamlLimitError) throw notReview(`it nests deeper than ${REVIEW_JSON_LIMITS.maxDepth} levels`);
      throw e;
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the body; keep it out of the answer and the logs.
    throw new AdmissionError("ERR_MALFORMED_JSON");
  }
  return validateAdmissionReview(value);
}

/** True for a request about a Pod itself (core group, kind Pod / resource pods, no subresource). */
export function isPodRequest(request: AdmissionRequest): boolean {
  if (nonEmptyString(request.subResource) !== undefined) return false;
  const { kind, resource } = request;
  if (kind !== undefined && !((kind.group ?? "") === "" && kind.kind === "Pod")) return false;
  if (resource !== undefined && !((resource.group ?? "") === "" && resource.resource === "pods")) return false;
  if (kind !== undefined || resource !== undefined) return true;
  return isPlain(request.object) && request.object.kind === "Pod";
}

/** The namespace the Pod is created in: the request's, else the object's, else "default". */
export function podNamespace(request: AdmissionRequest): string {
  const meta = isPlain(request.object) && isPlain(request.object.metadata) ? request.object.metadata : undefined;
  return nonEmptyString(request.namespace) ?? nonEmptyString(meta?.namespace) ?? "default";
}

function podDisplayName(object: unknown): string | undefined {
  if (!isPlain(object) || !isPlain(object.metadata)) return undefined;
  return nonEmptyString(object.metadata.name) ?? nonEmptyString(object.metadata.generateName);
}

/**
 * Where a patch's UTF-8 is written on its way to base64, for patches that fit: `Buffer.from` of
 * a string over 4 KiB allocates a new buffer each time, which costs several times the encoding
 * itself (a 5 KB patch: ~7 µs against ~1 µs). Made on first use, then reused: encodePatch runs
 * to its end before anything else can write here (each worker thread has its own).
 */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;

/** JSON Patch operations as the AdmissionResponse carries them: base64 of the JSON array. */
export function encodePatch(ops: readonly PatchOperation[]): string {
  const json = JSON.stringify(ops);
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > SCRATCH_BYTES) return Buffer.from(json, "utf8").toString("base64");
  scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
  const written = scratch.write(json, 0, "utf8");
  return scratch.toString("base64", 0, written);
}

/** Where the patch goes in the text of a review whose patch was left empty. */
const PATCH_SLOT = '"patch":""';
/**
 * On a response whose patch is the base64 that buildResponseReview put there: that patch, in
 * which nothing needs escaping. A patch set or changed by anything else does not match it, and
 * a copy of the response does not carry it. A non-enumerable property, which JSON, spreads and
 * deep comparisons do not see (a WeakMap entry per review costs more than the rest of the envelope).
 */
const BASE64_PATCH = Symbol("base64 patch");
type MarkedResponse = AdmissionResponse & { readonly [BASE64_PATCH]?: string };

/**
 * The review as JSON: the very text JSON.stringify gives, without scanning the patch a second
 * time (it is most of the answer). The envelope is stringified with an empty patch, and the
 * base64 patch put into that slot as it is. The slot is found as the one `"patch":""` in the
 * text (in a JSON string a `"` is always `\"`, so a value cannot fake it); were there two, or a
 * patch not of buildResponseReview's making, the review is stringified whole.
 */
export function reviewJson(review: AdmissionReview): string {
  const response: MarkedResponse | undefined = review.response;
  const patch = response?.patch;
  if (response === undefined || patch === undefined || !Object.hasOwn(response, BASE64_PATCH) || response[BASE64_PATCH] !== patch) return JSON.stringify(review);
  const text = JSON.stringify({ ...review, response: { ...response, patch: "" } });
  const slot = text.indexOf(PATCH_SLOT);
  if (slot !== text.lastIndexOf(PATCH_SLOT)) return JSON.stringify(review);
  const at = slot + PATCH_SLOT.length - 1;
  return text.slice(0, at) + patch + text.slice(at);
}

/** One line each, no control characters, within the sizes the API server keeps. */
export function sanitizeWarnings(warnings: readonly string[]): string[] {
  const out: string[] = [];
  let total = 0;
  for (const w of warnings) {
    // eslint-disable-next-line no-control-regex
    let s = w.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
    if (s === "") continue;
    if (s.length > MAX_WARNING_CHARS) s = `${s.slice(0, MAX_WARNING_CHARS - 3)}...`;
    if (total + s.length > MAX_WARNINGS_TOTAL_CHARS) break;
    total += s.length;
    out.push(s);
  }
  return out;
}

function auditValue(s: string): string {
  return s.length > MAX_WARNING_CHARS ? `${s.slice(0, MAX_WARNING_CHARS - 3)}...` : s;
}

/** The response envelope: echoes apiVersion and uid. Empty warnings and patches are left out. */
export function buildResponseReview(
  apiVersion: string,
  uid: string,
  fields: {
    readonly allowed: boolean;
    readonly patch?: readonly PatchOperation[];
    readonly warnings?: readonly string[];
    readonly status?: AdmissionResponse["status"];
    readonly auditAnnotations?: Record<string, string>;
  },
): AdmissionReview {
  const response: AdmissionResponse = { uid, allowed: fields.allowed };
  if (fields.patch !== undefined && fields.patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = encodePatch(fields.patch);
    Object.defineProperty(response, BASE64_PATCH, { value: response.patch });
  }
  if (fields.status !== undefined) response.status = fields.status;
  const warnings = sanitizeWarnings(fields.warnings ?? []);
  if (warnings.length > 0) response.warnings = warnings;
  if (fields.auditAnnotations !== undefined) {
    const audit: Record<string, string> = {};
    // Keys, then values: Object.entries makes a pair per annotation.
    const given = fields.auditAnnotations;
    for (const k of Object.keys(given)) audit[k] = auditValue(given[k] ?? "");
    response.auditAnnotations = audit;
  }
  return { apiVersion, kind: "AdmissionReview", response };
}

function audit(decision: ReviewDecision, reason: string): Record<string, string> {
  return { [AUDIT_DECISION_KEY]: decision, [AUDIT_REASON_KEY]: reason };
}

export function withoutManagedFields(pod: Pod): Pod {
  // managedFields can be most of a Pod's bytes and the injector never reads them (Istio
  // strips them too). Patch paths do not touch them, so the patch still applies to the original.
  if (!isPlain(pod.metadata) || pod.metadata.managedFields === undefined) return pod;
  const { managedFields: _dropped, ...metadata } = pod.metadata;
  return { ...pod, metadata };
}

/**
 * What the request is about, for a message: its kind (or resource) and subresource, bounded.
 * String() because the preview also describes requests that were never validated.
 */
export function describeObject(request: AdmissionRequest): string {
  const kind = quoteName(String(request.kind?.kind ?? request.resource?.resource ?? "object"));
  return request.subResource ? `${kind}/${quoteName(String(request.subResource))}` : kind;
}

/** Why a Pod request that is not a CREATE is admitted unchanged. */
export function notCreateReason(request: AdmissionRequest): string {
  return `Pod ${request.operation === undefined ? "(no operation)" : quoteName(String(request.operation))} admitted unchanged: sidecars are injected on CREATE only`;
}

/**
 * Answers one review. Never throws: an InjectionError becomes allowed:false with a 400 status
 * naming the field; any other exception becomes allowed:false with a generic message and is
 * returned in `outcome.error` for the caller to log.
 */
export function admit(review: IncomingReview, opts: AdmitOptions): ReviewResult {
  const { apiVersion, request } = review;
  const uid = request.uid;
  const namespace = podNamespace(request);
  const displayName = podDisplayName(request.object);
  // The outcome feeds the log line: every user value in it bounded. Each outcome is one object
  // literal: a spread of shared fields followed by new keys is slow to build in V8.
  const outUid = clip(uid);
  const outNamespace = clip(namespace);
  const outPod = displayName === undefined ? undefined : clip(displayName);
  const operation = clip(request.operation ?? "");

  const allowUnchanged = (skipReason: SkipReason, reason: string): ReviewResult => ({
    review: buildResponseReview(apiVersion, uid, {
      allowed: true,
      warnings: [`sidecar-injector: ${reason}`],
      auditAnnotations: audit("allowed", reason),
    }),
    outcome: { uid: outUid, namespace: outNamespace, pod: outPod, operation, decision: "allowed", reason, skipReason, patchOperations: 0 },
  });

  const refuse = (errorCode: ErrorCode, message: string, error?: unknown): ReviewResult => {
    const spec = ERRORS[errorCode];
    return {
      review: buildResponseReview(apiVersion, uid, {
        allowed: false,
        status: { code: spec.status, message: refusalMessage(message), reason: spec.reason, status: "Failure" },
        auditAnnotations: audit("refused", message),
      }),
      outcome:
        error === undefined
          ? { uid: outUid, namespace: outNamespace, pod: outPod, operation, decision: "refused", reason: message, errorCode, patchOperations: 0 }
          : { uid: outUid, namespace: outNamespace, pod: outPod, operation, decision: "refused", reason: message, errorCode, patchOperations: 0, error },
    };
  };

  if (!isPodRequest(request)) {
    return allowUnchanged(
      SKIP_REASONS.NOT_A_POD,
      `${describeObject(request)} admitted unchanged: only Pods are injected`,
    );
  }
  if (request.operation !== "CREATE") {
    return allowUnchanged(SKIP_REASONS.NOT_CREATE, notCreateReason(request));
  }
  if (!isPlain(request.object)) {
    return refuse("ERR_INVALID_POD", "request.object: must be the Pod being created");
  }

  const ctx: InjectContext = {
    namespace,
    ...(opts.pathEnv !== undefined && Object.keys(opts.pathEnv).length > 0 ? { pathEnv: opts.pathEnv } : {}),
    ...(opts.nativeSidecarsSupported === undefined ? {} : { nativeSidecarsSupported: opts.nativeSidecarsSupported }),
  };

  try {
    const result = (opts.inject ?? engineInject)(withoutManagedFields(request.object as Pod), ctx, opts.config);
    const reasons = result.decision.reasons;
    if (!result.decision.inject) {
      // The last reason is the rule that decided; earlier ones say what was passed over.
      const reason = reasons.at(-1) ?? "not injected";
      return {
        review: buildResponseReview(apiVersion, uid, {
          allowed: true,
          warnings: [...result.warnings, `sidecar-injector: sidecar not injected: ${reasons.join("; ") || reason}`],
          auditAnnotations: audit("skipped", reason),
        }),
        outcome: {
          uid: outUid,
          namespace: outNamespace,
          pod: outPod,
          operation,
          decision: "skipped",
          reason,
          skipReason: skipReasonOf(result.decision.code),
          patchOperations: 0,
        },
      };
    }
    const reason = reasons.at(-1) ?? "injected";
    return {
      review: buildResponseReview(apiVersion, uid, {
        allowed: true,
        patch: result.patch,
        warnings: result.warnings,
        auditAnnotations: audit("injected", reason),
      }),
      outcome: { uid: outUid, namespace: outNamespace, pod: outPod, operation, decision: "injected", reason, patchOperations: result.patch.length },
    };
  } catch (e) {
    if (e instanceof InjectionError) {
      const message = e.message.includes(e.field) ? e.message : `${e.field}: ${e.message}`;
      return refuse(e.code, message);
    }
    // A bug, not bad input: the message says which step failed and nothing of the input; the
    // exception goes to the log.
    if (e instanceof EngineFailure) return refuse("ERR_INTERNAL", `internal error while ${e.step}; see the injector's logs`, e.cause);
    return refuse("ERR_INTERNAL", "internal error while answering the review; see the injector's logs", e);
  }
}

const PATH_PARAMETER_ENV: ReadonlyMap<string, string> = new Map([
  ["cluster", "ISTIO_META_CLUSTER_ID"],
  ["net", "ISTIO_META_NETWORK"],
]);

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Istio's webhook path parameters: `/inject/k1/v1/k2/v2` sets proxy env vars. `cluster` is
 * ISTIO_META_CLUSTER_ID, `net` is ISTIO_META_NETWORK, any other key is upper-cased; `--slash--`
 * in a segment decodes to `/`; `/inject/:ENV:K=V:ENV:K2=V2` is the deprecated form (same key
 * mapping, values as written); an unpaired last key is ignored. The first segment (`inject`) is not looked at.
 * Empty keys are dropped (they would make an invalid env var).
 */
export function parsePathEnv(path: string): Record<string, string> {
  let p = safeDecode(path.split("?", 1)[0] ?? "");
  if (p.endsWith("/")) p = p.slice(0, -1);
  // Like Go's strings.SplitN(p, "/", 3): "", the endpoint name, and everything after it.
  const first = p.indexOf("/");
  const second = first < 0 ? -1 : p.indexOf("/", first + 1);
  if (second < 0) return {};
  const rest = p.slice(second + 1);

  const items: string[] = [];
  if (rest.startsWith(":ENV:")) {
    for (const pair of rest.split(":ENV:").slice(1)) {
      const eq = pair.indexOf("=");
      if (eq > 0) items.push(pair.slice(0, eq), pair.slice(eq + 1));
    }
  } else {
    for (const segment of rest.split("/")) items.push(segment.replaceAll("--slash--", "/"));
  }

  // Keys are data: collected in a Map, then made own properties (a `__proto__` key included).
  const env = new Map<string, string>();
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = items[i] ?? "";
    const value = items[i + 1] ?? "";
    if (key === "") continue;
    env.set(PATH_PARAMETER_ENV.get(key) ?? key.toUpperCase(), value);
  }
  return Object.fromEntries(env);
}
