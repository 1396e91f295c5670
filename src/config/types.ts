// The injector's configuration, after defaults are applied. Every field is required here;
// the YAML file may leave any of them out (see defaults.ts).

export const POLICIES = ["enabled", "disabled"] as const;
export type Policy = (typeof POLICIES)[number];

export const NATIVE_SIDECAR_MODES = ["auto", "true", "false"] as const;
export type NativeSidecarMode = (typeof NATIVE_SIDECAR_MODES)[number];

export const INTERCEPTION_MODES = ["REDIRECT", "TPROXY", "NONE"] as const;
export type InterceptionMode = (typeof INTERCEPTION_MODES)[number];

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface ResourceList {
  readonly cpu?: string;
  readonly memory?: string;
  readonly "ephemeral-storage"?: string;
}

export interface Resources {
  readonly requests?: ResourceList;
  readonly limits?: ResourceList;
}

export interface ProxySettings {
  readonly image: string;
  /**
   * Whether an image type (the Pod's sidecar.istio.io/proxyImageType, the ProxyConfig's
   * image.imageType, `variant`) is written into the image's tag; false: the image as written,
   * as Istio uses a `global.proxy.image` given as a full name.
   */
  readonly imageTyped: boolean;
  readonly imagePullPolicy: string;
  readonly uid: number;
  readonly gid: number;
  readonly statusPort: number;
  readonly logLevel: string;
  readonly componentLogLevel: string;
  readonly agentLogLevel: string;
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly privileged: boolean;
  readonly readinessInitialDelaySeconds: number;
  readonly readinessPeriodSeconds: number;
  readonly readinessFailureThreshold: number;
  readonly startupProbe: { readonly enabled: boolean; readonly failureThreshold: number };
  readonly resources: Resources;
  readonly proxyMetadata: Readonly<Record<string, string>>;
}

export interface InterceptionSettings {
  readonly mode: InterceptionMode;
  readonly includeOutboundIPRanges: string;
  readonly excludeOutboundIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  readonly includeOutboundPorts: string;
  readonly excludeOutboundPorts: string;
}

export interface Config {
  readonly revision: string;
  /** Revision tags that point at this injector's revision (istio.io/rev=<tag> selects it too). */
  readonly revisionTags: readonly string[];
  /**
   * Whether the webhooks also select namespaces with neither injection label (the chart's
   * webhook.enableNamespacesByDefault, Istio's sidecarInjectorWebhook.enableNamespacesByDefault).
   */
  readonly enableNamespacesByDefault: boolean;
  readonly meshId: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly clusterDomain: string;
  readonly network: string;
  readonly discoveryAddress: string;
  readonly caAddress: string;
  readonly policy: Policy;
  readonly neverInjectSelector: readonly LabelSelector[];
  readonly alwaysInjectSelector: readonly LabelSelector[];
  readonly ignoredNamespaces: readonly string[];
  readonly injectedAnnotations: Readonly<Record<string, string>>;
  readonly nativeSidecars: NativeSidecarMode;
  readonly rewriteAppProbes: boolean;
  readonly prometheusMerge: boolean;
  readonly cni: boolean;
  readonly imagePullSecrets: readonly string[];
  /**
   * Istio's global.variant: the image type of both images where the Pod (and, for the proxy,
   * the ProxyConfig's image.imageType) names none; empty: none.
   */
  readonly variant: string;
  readonly proxy: ProxySettings;
  /** The istio-init (istio-validation) image; empty: the proxy's, with its imageTyped. */
  readonly proxyInit: { readonly image: string; readonly imageTyped: boolean };
  readonly interception: InterceptionSettings;
  /**
   * The mesh's ProxyConfig (Istio's meshConfig.defaultConfig), as written: JSON or proto field
   * names, checked at load as the proxy.istio.io/config annotation is.
   */
  readonly proxyConfig: Readonly<Record<string, unknown>>;
}
