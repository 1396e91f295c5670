// AdmissionReview in, AdmissionReview out. Pure functions: no I/O, no logger, no clock. The
// HTTP layer (server.ts) reads the body, calls decodeAdmissionReview (gate.ts) and admit, and
// logs the outcome that admit returns. admit passes the review through the gate (gate.ts), as
// the preview does, and answers what passes with the engine.

import type { Config } from "../config/types.js";
import { inject as engineInject } from "../injection/inject.js";
import { EngineFailure, InjectionError, type InjectContext, type InjectResult } from "../injection/types.js";
import type { AdmissionReview, Pod } from "../kube/types.js";
import { clip } from "../injection/quote.js";
import { skipReasonOf } from "../injection/decisions.js";
import { SKIP_REASONS, type ReviewDecision, type SkipReason } from "../telemetry/metrics.js";
import { ERRORS, type ErrorCode } from "./errors.js";
import {
  AUDIT_DECISION_KEY,
  AUDIT_REASON_KEY,
  buildResponseReview,
  gate,
  podDisplayName,
  podNamespace,
  refusalMessage,
  type IncomingReview,
  type ResponseFields,
  type UnchangedBecause,
} from "./gate.js";
import { responseBytes } from "./answer.js";

// What callers of this module used before the gate had a module of its own.
export {
  AUDIT_DECISION_KEY,
  AUDIT_REASON_KEY,
  buildResponseReview,
  decodeAdmissionReview,
  encodePatch,
  REFUSAL_PREFIX,
  refusalMessage,
  sanitizeWarnings,
  validateAdmissionReview,
  type IncomingReview,
} from "./gate.js";

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
export { REVIEW_DECISIONS, type ReviewDecision } from "../telemetry/metrics.js";

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
  /** `request.dryRun: true`: answered alike, nothing stored; its own metric and log field. */
  readonly dryRun?: boolean;
}

export interface ReviewResult {
  readonly review: AdmissionReview;
  readonly outcome: ReviewOutcome;
}

/** A review answered as the webhook sends it. */
export interface ReviewAnswer {
  /** The UTF-8 JSON of the AdmissionReview admit returns, in a buffer of its own. */
  readonly body: Buffer;
  readonly outcome: ReviewOutcome;
}

/** How an answer is put together: the AdmissionReview (buildResponseReview) or its bytes (responseBytes). */
type Envelope<T> = (apiVersion: string, uid: string, fields: ResponseFields) => T;

interface Answered<T> {
  readonly answer: T;
  readonly outcome: ReviewOutcome;
}

function audit(decision: ReviewDecision, reason: string): Record<string, string> {
  return { [AUDIT_DECISION_KEY]: decision, [AUDIT_REASON_KEY]: reason };
}

/** The metric label of each reason the gate admits a review unchanged for. */
const UNCHANGED_SKIP_REASONS: Readonly<Record<UnchangedBecause, SkipReason>> = {
  not_a_pod: SKIP_REASONS.NOT_A_POD,
  not_create: SKIP_REASONS.NOT_CREATE,
};

/**
 * Answers one review. Never throws: an InjectionError becomes allowed:false with a 400 status
 * naming the field; any other exception becomes allowed:false with a generic message and is
 * returned in `outcome.error` for the caller to log.
 */
export function admit(review: IncomingReview, opts: AdmitOptions): ReviewResult {
  const { answer, outcome } = answered(review, opts, buildResponseReview);
  return { review: answer, outcome };
}

/**
 * admit, answered as the bytes the webhook sends (`JSON.stringify` of admit's review, as
 * UTF-8), written without building the review's text (answer.ts).
 */
export function answerReview(review: IncomingReview, opts: AdmitOptions): ReviewAnswer {
  const { answer, outcome } = answered(review, opts, responseBytes);
  return { body: answer, outcome };
}

/** The one decision behind admit and answerReview: the fields of the answer and the outcome. */
function answered<T>(review: IncomingReview, opts: AdmitOptions, envelope: Envelope<T>): Answered<T> {
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
  const dryRun = request.dryRun === true;

  const allowUnchanged = (skipReason: SkipReason, reason: string): Answered<T> => ({
    answer: envelope(apiVersion, uid, {
      allowed: true,
      warnings: [`sidecar-injector: ${reason}`],
      auditAnnotations: audit("allowed", reason),
    }),
    outcome: {
      uid: outUid,
      namespace: outNamespace,
      pod: outPod,
      operation,
      decision: "allowed",
      reason,
      skipReason,
      patchOperations: 0,
      dryRun,
    },
  });

  const refuse = (errorCode: ErrorCode, message: string, error?: unknown): Answered<T> => {
    const spec = ERRORS[errorCode];
    const outcome: ReviewOutcome = {
      uid: outUid,
      namespace: outNamespace,
      pod: outPod,
      operation,
      decision: "refused",
      reason: message,
      errorCode,
      patchOperations: 0,
      dryRun,
    };
    // Only an internal error carries its exception, for the caller to log (the one spread: a rare path).
    return {
      answer: envelope(apiVersion, uid, {
        allowed: false,
        status: { code: spec.status, message: refusalMessage(message), reason: spec.reason, status: "Failure" },
        auditAnnotations: audit("refused", message),
      }),
      outcome: error === undefined ? outcome : { ...outcome, error },
    };
  };

  const verdict = gate(request);
  if (!verdict.pass) {
    if ("refused" in verdict) return refuse(verdict.refused.code, verdict.refused.message);
    return allowUnchanged(UNCHANGED_SKIP_REASONS[verdict.unchanged], verdict.reason);
  }

  const ctx: InjectContext = {
    namespace,
    ...(opts.pathEnv !== undefined && Object.keys(opts.pathEnv).length > 0 ? { pathEnv: opts.pathEnv } : {}),
    ...(opts.nativeSidecarsSupported === undefined ? {} : { nativeSidecarsSupported: opts.nativeSidecarsSupported }),
  };

  try {
    const result = (opts.inject ?? engineInject)(verdict.pod, ctx, opts.config);
    const reasons = result.decision.reasons;
    if (!result.decision.inject) {
      // The last reason is the rule that decided; earlier ones say what was passed over.
      const reason = reasons.at(-1) ?? "not injected";
      return {
        answer: envelope(apiVersion, uid, {
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
          dryRun,
        },
      };
    }
    const reason = reasons.at(-1) ?? "injected";
    return {
      answer: envelope(apiVersion, uid, {
        allowed: true,
        patch: result.patch,
        warnings: result.warnings,
        auditAnnotations: audit("injected", reason),
      }),
      outcome: {
        uid: outUid,
        namespace: outNamespace,
        pod: outPod,
        operation,
        decision: "injected",
        reason,
        patchOperations: result.patch.length,
        dryRun,
      },
    };
  } catch (e) {
    if (e instanceof InjectionError) {
      const message = e.message.includes(e.field) ? e.message : `${e.field}: ${e.message}`;
      return refuse(e.code, message);
    }
    // A bug, not bad input: the message says which step failed and nothing of the input; the
    // exception goes to the log.
    if (e instanceof EngineFailure)
      return refuse("ERR_INTERNAL", `internal error while ${e.step}; see the injector's logs`, e.cause);
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
 * Go's strings.ToUpper: each character by its simple case mapping, one character for one (ß
 * stays ß; JavaScript's toUpperCase makes it SS).
 */
function goToUpper(s: string): string {
  let out = "";
  for (const c of s) {
    const upper = c.toUpperCase();
    out += [...upper].length === 1 ? upper : c;
  }
  return out;
}

/**
 * Istio's webhook path parameters: `/inject/k1/v1/k2/v2` sets proxy env vars. `cluster` is
 * ISTIO_META_CLUSTER_ID, `net` is ISTIO_META_NETWORK, any other key is upper-cased; `--slash--`
 * in a value (not a key) decodes to `/`; `/inject/:ENV:K=V:ENV:K2=V2` is the deprecated form (same key
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
    // Only the values (every second segment) decode --slash--; the keys stay as written.
    rest.split("/").forEach((segment, i) => items.push(i % 2 === 1 ? segment.replaceAll("--slash--", "/") : segment));
  }

  // Keys are data: collected in a Map, then made own properties (a `__proto__` key included).
  const env = new Map<string, string>();
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = items[i] ?? "";
    const value = items[i + 1] ?? "";
    if (key === "") continue;
    env.set(PATH_PARAMETER_ENV.get(key) ?? goToUpper(key), value);
  }
  return Object.fromEntries(env);
}
