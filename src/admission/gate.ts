// The admission gate and the response envelope: what every AdmissionReview passes before the
// injection engine sees a Pod, whether it comes to POST /inject, to POST /preview or to the
// `preview` command, and the AdmissionReview that answers it. Pure: no I/O, no logger, no
// clock, no express; the webhook (review.ts) and the preview (preview.ts) both stand on it.
//
// The gate, in order:
// 1. The body is an AdmissionReview (decodeAdmissionReview, validateAdmissionReview): a JSON
//    object of kind AdmissionReview and apiVersion admission.k8s.io/v1 or v1beta1, whose
//    request has a non-empty uid; operation, namespace, name and subResource strings when
//    given; kind and resource objects of strings when given; dryRun a boolean when given.
//    Anything else is ERR_NOT_ADMISSION_REVIEW (HTTP 400), naming the first field that fails.
// 2. The request is about a Pod itself (isPodRequest): core group, kind Pod or resource pods,
//    no subresource; else it is admitted unchanged (`not_a_pod`).
// 3. The operation is CREATE; else it is admitted unchanged (`not_create`).
// 4. The request carries the object; else it is refused inside the review (ERR_INVALID_POD,
//    `request.object: must be the Pod being created`).
// What passes is the Pod without its managedFields, in the namespace of the request (else of
// the object, else `default`). The engine validates the Pod itself (injection/shape.ts).
//
// The envelope echoes the review's apiVersion and the request's uid; its patch is base64 JSON,
// its warnings one line each within the API server's sizes, and its refusals open with
// `sidecar-injector: ` so that whoever created the Pod sees whose refusal it is.

import type { PatchOperation } from "../injection/types.js";
import {
  ADMISSION_API_VERSIONS,
  type AdmissionApiVersion,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type Pod,
} from "../kube/types.js";
import { quoteName } from "../injection/quote.js";
import { MAX_POD_DEPTH } from "../injection/shape.js";
import { jsonPreScan, YamlLimitError, type YamlLimits } from "../injection/yaml-limits.js";
import { AdmissionError } from "./errors.js";

/** A review that passed validation: a known apiVersion and a request with a uid. */
export type IncomingReview = AdmissionReview & {
  readonly apiVersion: AdmissionApiVersion;
  readonly request: AdmissionRequest;
};

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

/**
 * Bodies with more opening brackets than this are scanned for depth before JSON.parse. With
 * fewer, JSON.parse is fast at any depth (tens of milliseconds at worst: it is slow on nesting,
 * about 0.7 µs a level, and a body cannot nest deeper than it has brackets), so the scan, which
 * reads every character in JavaScript, would cost more than it could save.
 */
export const DEEP_SCAN_FROM_OPENINGS = 64 * 1024;
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
  let text =
    typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") throw new AdmissionError("ERR_EMPTY_BODY");
  // A shorter text cannot hold that many brackets: not counted.
  if (text.length > DEEP_SCAN_FROM_OPENINGS && openings(text, DEEP_SCAN_FROM_OPENINGS) > DEEP_SCAN_FROM_OPENINGS) {
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

/**
 * The `[` and `{` in `text`, those in strings too, counted up to one past `cap`. Each found by
 * indexOf, a native search: a Pod's JSON has a bracket every few dozen characters, and this
 * costs a seventh of the depth scan for a 70 KB review.
 */
export function openings(text: string, cap: number): number {
  let n = 0;
  for (let i = text.indexOf("{"); i >= 0 && n <= cap; i = text.indexOf("{", i + 1)) n++;
  for (let i = text.indexOf("["); i >= 0 && n <= cap; i = text.indexOf("[", i + 1)) n++;
  return n;
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

/** The namespace the Pod is created in: the request's, else the object's, else `fallback`. */
export function podNamespace(request: AdmissionRequest, fallback = "default"): string {
  const meta = isPlain(request.object) && isPlain(request.object.metadata) ? request.object.metadata : undefined;
  return nonEmptyString(request.namespace) ?? nonEmptyString(meta?.namespace) ?? fallback;
}

export function podDisplayName(object: unknown): string | undefined {
  if (!isPlain(object) || !isPlain(object.metadata)) return undefined;
  return nonEmptyString(object.metadata.name) ?? nonEmptyString(object.metadata.generateName);
}

export function withoutManagedFields(pod: Pod): Pod {
  // managedFields can be most of a Pod's bytes and the injector never reads them (Istio
  // strips them too). Patch paths do not touch them, so the patch still applies to the original.
  if (!isPlain(pod.metadata) || pod.metadata.managedFields === undefined) return pod;
  const { managedFields: _dropped, ...metadata } = pod.metadata;
  return { ...pod, metadata };
}

/** What the request is about, for a message: its kind (or resource) and subresource, bounded. */
export function describeObject(request: AdmissionRequest): string {
  const kind = quoteName(request.kind?.kind ?? request.resource?.resource ?? "object");
  return request.subResource ? `${kind}/${quoteName(request.subResource)}` : kind;
}

/** Why a Pod request that is not a CREATE is admitted unchanged. */
export function notCreateReason(request: AdmissionRequest): string {
  return `Pod ${request.operation === undefined ? "(no operation)" : quoteName(request.operation)} admitted unchanged: sidecars are injected on CREATE only`;
}

/** Why a review was admitted without asking the engine: bounded, a metric label of its own. */
export type UnchangedBecause = "not_a_pod" | "not_create";

/** What the gate lets through, or why not. */
export type GateVerdict =
  /** A Pod CREATE carrying its Pod: for the engine. */
  | { readonly pass: true; readonly pod: Pod; readonly namespace: string }
  /** Not a Pod CREATE: admitted unchanged, for `reason`. */
  | { readonly pass: false; readonly unchanged: UnchangedBecause; readonly reason: string }
  /** A Pod CREATE that cannot be answered: refused inside the review. */
  | {
      readonly pass: false;
      readonly refused: { readonly code: "ERR_INVALID_POD"; readonly field: string; readonly message: string };
    };

/**
 * Steps 2 to 4 of the gate, for a request that passed step 1. `fallbackNamespace`: that of a
 * request and object that name none (the API server always names one; the preview's input may not).
 */
export function gate(request: AdmissionRequest, fallbackNamespace = "default"): GateVerdict {
  if (!isPodRequest(request)) {
    return {
      pass: false,
      unchanged: "not_a_pod",
      reason: `${describeObject(request)} admitted unchanged: only Pods are injected`,
    };
  }
  if (request.operation !== "CREATE") return { pass: false, unchanged: "not_create", reason: notCreateReason(request) };
  const object = request.object;
  if (!isPlain(object)) {
    return {
      pass: false,
      refused: {
        code: "ERR_INVALID_POD",
        field: "request.object",
        message: "request.object: must be the Pod being created",
      },
    };
  }
  // A parse boundary: the engine checks the Pod's shape field by field (injection/shape.ts).
  return { pass: true, pod: withoutManagedFields(object as Pod), namespace: podNamespace(request, fallbackNamespace) };
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

/** What an answer says, besides the apiVersion and uid it echoes. */
export interface ResponseFields {
  readonly allowed: boolean;
  readonly patch?: readonly PatchOperation[] | undefined;
  readonly warnings?: readonly string[];
  readonly status?: AdmissionResponse["status"];
  readonly auditAnnotations?: Record<string, string>;
}

/** The response envelope: echoes apiVersion and uid. Empty warnings and patches are left out. */
export function buildResponseReview(apiVersion: string, uid: string, fields: ResponseFields): AdmissionReview {
  const response: AdmissionResponse = { uid, allowed: fields.allowed };
  if (fields.patch !== undefined && fields.patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = encodePatch(fields.patch);
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
