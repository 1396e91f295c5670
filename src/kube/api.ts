// The port to the API server: what the rest of the injector asks of it (KubeApi), the errors
// it answers with (KubeError), and every call it may make (KUBE_API_CALLS). Types and plain
// values only: importing this never loads @kubernetes/client-node, which only client.ts (the
// one implementation) imports, and only where a process talks to the API server itself.

import type { Pod } from "./types.js";

export interface SecretObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly labels?: Record<string, string>;
  };
  readonly type?: string;
  readonly data?: Record<string, string>;
}

/** A ConfigMap as read: its name, version and text data (binaryData is not read). */
export interface ConfigMapObject {
  readonly name: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly data: Readonly<Record<string, string>>;
}

export interface WebhookEntry {
  readonly name: string;
  readonly caBundle?: string;
  /** Where the API server sends reviews: the name it verifies our certificate against. */
  readonly clientConfig?: WebhookClientConfig;
}

/** A webhook's clientConfig, less the caBundle (see WebhookEntry.caBundle). */
export interface WebhookClientConfig {
  readonly service?: {
    readonly name: string;
    readonly namespace: string;
    readonly port?: number;
    readonly path?: string;
  };
  readonly url?: string;
}

export interface WebhookConfigObject {
  readonly name: string;
  readonly resourceVersion?: string;
  readonly webhooks: readonly WebhookEntry[];
}

/**
 * Every call this client makes to the API server, as RBAC sees it: the chart grants exactly
 * these (a test renders it and compares), so a verb granted and never used, or used and never
 * granted, fails the build. `when` says which mode makes the call.
 */
export const KUBE_API_CALLS = [
  {
    apiGroup: "",
    resource: "secrets",
    verb: "create",
    when: "self-managed",
    by: "createSecret (the CA Secret, if absent)",
  },
  { apiGroup: "", resource: "secrets", verb: "get", when: "self-managed", by: "readSecret" },
  { apiGroup: "", resource: "secrets", verb: "update", when: "self-managed", by: "replaceSecret" },
  { apiGroup: "", resource: "secrets", verb: "watch", when: "self-managed", by: "watchSecret" },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verb: "get",
    when: "self-managed",
    by: "readWebhookConfig",
  },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verb: "patch",
    when: "self-managed",
    by: "patchCaBundles",
  },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verb: "watch",
    when: "self-managed",
    by: "watchWebhookConfig",
  },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verb: "list",
    when: "webhook-selector",
    by: "listWebhookConfigs (--webhook-config-selector)",
  },
  { apiGroup: "", resource: "namespaces", verb: "get", when: "always", by: "readNamespaceLabels (/preview)" },
  {
    apiGroup: "authentication.k8s.io",
    resource: "tokenreviews",
    verb: "create",
    when: "always",
    by: "reviewToken (/preview's caller)",
  },
  {
    apiGroup: "authorization.k8s.io",
    resource: "subjectaccessreviews",
    verb: "create",
    when: "always",
    by: "canGetNamespace (/preview's caller)",
  },
  { apiGroup: "", resource: "nodes", verb: "list", when: "always", by: "listKubeletVersions (nativeSidecars: auto)" },
  {
    apiGroup: "",
    resource: "configmaps",
    verb: "get",
    when: "istio-config",
    by: "readConfigMap (serve --istio-config: Istio's two ConfigMaps, by name)",
  },
  {
    apiGroup: "",
    resource: "configmaps",
    verb: "watch",
    when: "istio-config",
    by: "watchConfigMap (serve --istio-config)",
  },
] as const;

/** HTTP status of a failed call (undefined: no answer at all, e.g. connection refused). */
export class KubeError extends Error {
  readonly code = "ERR_KUBE";
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = "KubeError";
  }
  get conflict(): boolean {
    return this.status === 409 || this.status === 422;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** The user a bearer token authenticates as (TokenReview), to ask what that user may do. */
export interface KubeUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** Our webhook configuration: by name, or every one with these labels. */
export type WebhookTarget = { readonly name: string } | { readonly labelSelector: string };

export interface KubeApi {
  readSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
  /** Throws KubeError with status 409 when it already exists. */
  createSecret(namespace: string, secret: SecretObject): Promise<SecretObject>;
  /** Replaces with the resourceVersion precondition of `secret`; 409 on conflict. */
  replaceSecret(namespace: string, secret: SecretObject): Promise<SecretObject>;
  readWebhookConfig(name: string): Promise<WebhookConfigObject | undefined>;
  /** Sets the caBundle of the given webhooks (by index), only if the resourceVersion still matches. */
  patchCaBundles(
    name: string,
    resourceVersion: string | undefined,
    updates: readonly { index: number; caBundle: string }[],
  ): Promise<WebhookConfigObject>;
  /** MutatingWebhookConfigurations with these labels (a label selector, e.g. "app=x,team=y"). */
  listWebhookConfigs(labelSelector: string): Promise<WebhookConfigObject[]>;
  /** Calls onChange on every change of the configuration(s) until the returned stop is called. */
  watchWebhookConfig(
    target: WebhookTarget,
    onChange: (cfg: WebhookConfigObject | undefined) => void,
    onEnd: (err?: unknown) => void,
  ): Promise<() => void>;
  /** Calls onChange with each change of the named Secret (undefined when deleted) until stopped. */
  watchSecret(
    namespace: string,
    name: string,
    onChange: (secret: SecretObject | undefined) => void,
    onEnd: (err?: unknown) => void,
  ): Promise<() => void>;
  /** A namespace's labels; undefined when it does not exist. `signal` aborts the call. */
  readNamespaceLabels(name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined>;
  /** Kubelet versions of all nodes (e.g. "v1.33.2"). */
  listKubeletVersions(): Promise<string[]>;
  /**
   * TokenReview: the user a bearer token authenticates as; undefined when it authenticates no
   * one. `signal` aborts the call.
   */
  reviewToken(token: string, signal?: AbortSignal): Promise<KubeUser | undefined>;
  /**
   * SubjectAccessReview: whether `user` may `get` namespace `name` (asked as the API server
   * authorizes GET /api/v1/namespaces/<name>: resource namespaces, that name, in that namespace).
   * `signal` aborts the call.
   */
  canGetNamespace(user: KubeUser, name: string, signal?: AbortSignal): Promise<boolean>;
  /** A ConfigMap; undefined when it does not exist. */
  readConfigMap(namespace: string, name: string): Promise<ConfigMapObject | undefined>;
  /** Calls onChange with each change of the named ConfigMap (undefined when deleted) until stopped. */
  watchConfigMap(
    namespace: string,
    name: string,
    onChange: (configMap: ConfigMapObject | undefined) => void,
    onEnd: (err?: unknown) => void,
  ): Promise<() => void>;
}

// --- What `sidecar-injector check` reads, with the credentials of whoever runs it -----------

/** A namespace: its name and labels (with kubernetes.io/metadata.name, which the API server sets). */
export interface NamespaceObject {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** One rule of a webhook: what operations on which resources it is called for. */
export interface WebhookRule {
  readonly operations: readonly string[];
  readonly apiGroups: readonly string[];
  readonly apiVersions: readonly string[];
  readonly resources: readonly string[];
  readonly scope?: string;
}

/** A webhook of a MutatingWebhookConfiguration, with what decides whether the API server calls it. */
export interface AdmissionWebhook {
  readonly name: string;
  readonly rules: readonly WebhookRule[];
  readonly namespaceSelector?: LabelSelectorObject;
  readonly objectSelector?: LabelSelectorObject;
  readonly matchConditions: readonly { readonly name: string; readonly expression: string }[];
  readonly failurePolicy?: string;
  readonly clientConfig?: WebhookClientConfig;
}

export interface LabelSelectorObject {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly {
    readonly key: string;
    readonly operator: string;
    readonly values?: readonly string[];
  }[];
}

export interface MutatingWebhookConfigurationObject {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly webhooks: readonly AdmissionWebhook[];
}

/** The kinds `check` reads a Pod template from (spec.template; a CronJob's spec.jobTemplate.spec.template). */
export const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** A stored Pod or workload as read: its metadata, and for a workload its Pod template. */
export interface StoredObject {
  readonly kind: "Pod" | WorkloadKind;
  readonly namespace: string;
  readonly name: string;
  /** The Pod itself, or the workload's Pod template as a Pod (metadata and spec). */
  readonly pod: Pod;
  /**
   * The Pod or template as stored, every field of its metadata and spec (plain JSON), to inject
   * it again and compare its sidecar; absent: `pod` is all there is.
   */
  readonly stored?: unknown;
}

/** A MutatingAdmissionPolicy, as `check` reads it: who it is, and the conditions on the Pods it takes. */
export interface AdmissionPolicyObject {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly matchConditions: readonly { readonly name: string; readonly expression: string }[];
}

/** A MutatingAdmissionPolicyBinding: the policy it binds, and the namespaces and Pods it selects. */
export interface AdmissionPolicyBindingObject {
  readonly name: string;
  readonly policyName: string;
  readonly namespaceSelector?: LabelSelectorObject;
  readonly objectSelector?: LabelSelectorObject;
}

/** The cluster's MutatingAdmissionPolicies and bindings, at the first version it serves (v1, else v1beta1). */
export interface AdmissionPolicies {
  readonly apiVersion: string;
  readonly policies: readonly AdmissionPolicyObject[];
  readonly bindings: readonly AdmissionPolicyBindingObject[];
}

/** A Deployment, as `check` reads it: each container's command line (command then args). */
export interface DeploymentObject {
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly { readonly name: string; readonly args: readonly string[] }[];
}

/**
 * Reads for `check`: the objects, their namespaces and every MutatingWebhookConfiguration.
 * Made with the caller's own kubeconfig, not the injector's ServiceAccount, so they are not
 * in KUBE_API_CALLS; CHECK_API_CALLS says what the caller needs.
 */
export interface InspectApi {
  /** undefined when it does not exist. */
  readNamespace(name: string): Promise<NamespaceObject | undefined>;
  listNamespaces(): Promise<NamespaceObject[]>;
  readObject(kind: StoredObject["kind"], namespace: string, name: string): Promise<StoredObject | undefined>;
  /** Pods of one namespace, or of all (namespace undefined), with an optional label selector. */
  listPods(namespace: string | undefined, labelSelector?: string): Promise<StoredObject[]>;
  listMutatingWebhookConfigurations(): Promise<MutatingWebhookConfigurationObject[]>;
  /** A ConfigMap's data (an injector's config); undefined when it does not exist. */
  readConfigMap(namespace: string, name: string): Promise<Readonly<Record<string, string>> | undefined>;
  /** Kubelet versions of all nodes (e.g. "v1.33.2"), to decide `nativeSidecars: auto` (inject --from-cluster). */
  listNodeVersions(): Promise<string[]>;
  /** Every MutatingAdmissionPolicy and binding; undefined when the cluster serves neither v1 nor v1beta1 of them. */
  listMutatingAdmissionPolicies(): Promise<AdmissionPolicies | undefined>;
  /** Deployments of every namespace with the label selector (the injector's, by the chart's label). */
  listDeployments(labelSelector: string): Promise<DeploymentObject[]>;
  /**
   * Discovery (GET /apis, then /apis/GROUP/VERSION): the versions of API group `group` the
   * cluster serves, its preferred version first, each with its resources' names (not their
   * subresources); [] when it serves the group at no version.
   */
  listServedVersions(group: string): Promise<ServedVersion[]>;
}

/** One served version of an API group: its name (e.g. "v1beta1") and its resources' names. */
export interface ServedVersion {
  readonly version: string;
  readonly resources: readonly string[];
}

/** What the user running `check` must be allowed (get/list), for the docs and the error messages. */
export const CHECK_API_CALLS = [
  { apiGroup: "", resource: "namespaces", verbs: ["get", "list"] },
  { apiGroup: "", resource: "pods", verbs: ["get", "list"] },
  { apiGroup: "apps", resource: "deployments, statefulsets, daemonsets, replicasets", verbs: ["get"] },
  { apiGroup: "batch", resource: "jobs, cronjobs", verbs: ["get"] },
  { apiGroup: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", verbs: ["list"] },
  { apiGroup: "", resource: "configmaps (the injector's config, in its namespace; optional)", verbs: ["get"] },
  { apiGroup: "", resource: "nodes (inject --from-cluster, with nativeSidecars: auto)", verbs: ["list"] },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingadmissionpolicies, mutatingadmissionpolicybindings (the chart's policy mode; optional)",
    verbs: ["list"],
  },
  {
    apiGroup: "apps",
    resource: "deployments (the injector's, for its --istio-config; optional)",
    verbs: ["list"],
  },
  {
    apiGroup: "",
    resource: "configmaps (Istio's, named by the injector's --istio-config; optional)",
    verbs: ["get"],
  },
] as const;
