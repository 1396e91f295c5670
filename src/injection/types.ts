import type { Pod } from "../kube/types.js";

/** The workload a Pod belongs to, as Istio names it in ISTIO_META_OWNER / WORKLOAD_NAME. */
export interface WorkloadRef {
  readonly name: string;
  readonly namespace: string;
  readonly kind: string;
  readonly apiVersion: string;
}

export interface InjectContext {
  /** Namespace the Pod is created in (the AdmissionRequest's, or the manifest's, or "default"). */
  readonly namespace: string;
  /** The owning workload when the caller knows it (the CLI does); else derived from the Pod. */
  readonly workload?: WorkloadRef;
  /** Extra proxy env from the webhook path (`/inject/cluster/c1/net/n1`). */
  readonly pathEnv?: Readonly<Record<string, string>>;
  /** Whether the cluster's kubelets run native sidecars; decides `nativeSidecars: auto`. */
  readonly nativeSidecarsSupported?: boolean;
}

/** Why, as a bounded code: which rule took the decision (each rule's row: decisions.ts). */
export const DECISION_CODES = [
  "host_network",
  "ignored_namespace",
  "pod_label",
  "pod_annotation",
  "never_inject_selector",
  "always_inject_selector",
  "policy_enabled",
  "policy_disabled",
  "annotations_too_large",
] as const;
export type DecisionCode = (typeof DECISION_CODES)[number];

export interface Decision {
  readonly inject: boolean;
  readonly code: DecisionCode;
  /** Human-readable, in the order the decision was taken. */
  readonly reasons: readonly string[];
}

export interface PatchOperation {
  readonly op: "add" | "replace" | "remove";
  readonly path: string;
  readonly value?: unknown;
}

export interface InjectResult {
  readonly decision: Decision;
  /** RFC 6902 operations turning the input Pod into `pod`; empty when not injected. */
  readonly patch: readonly PatchOperation[];
  /** The Pod as it will be stored (the input itself when not injected). */
  readonly pod: Pod;
  /** Values that were ignored or overridden, for AdmissionReview warnings. */
  readonly warnings: readonly string[];
}

export const INJECTION_ERROR_CODES = ["ERR_INVALID_ANNOTATION", "ERR_INVALID_POD"] as const;
export type InjectionErrorCode = (typeof INJECTION_ERROR_CODES)[number];

/**
 * An unexpected failure (a bug, not bad input) in one step of the engine: the message names
 * the step and nothing of the input; the exception behind it is the cause, for the log.
 */
export class EngineFailure extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`unexpected failure while ${step}`, { cause });
    this.name = "EngineFailure";
  }
}

/** Input the injector refuses: the message names the field and the value. */
export class InjectionError extends Error {
  constructor(
    readonly code: InjectionErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "InjectionError";
  }
}
