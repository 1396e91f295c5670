// Facts of Istio at the commit this injector follows (istio/istio 86c9f01), against which an
// imported configuration is compared: the injection templates its chart
// (manifests/charts/istio-control/istio-discovery) puts into the istio-sidecar-injector
// ConfigMap, by SHA-256 of their text as the ConfigMap holds it (the file, trimmed, plus the
// newline of the YAML block scalar), and the `values` that chart renders with its defaults.
// When the pinned commit moves, regenerate both from the chart; test/istio-import checks them
// against the chart of the checkout.

export const ISTIO_COMMIT = "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c";

/** The chart's templates: their file under files/, and the SHA-256 of the ConfigMap's text. */
export const PINNED_TEMPLATES: ReadonlyMap<string, { readonly file: string; readonly sha256: string }> = new Map([
  [
    "sidecar",
    { file: "injection-template.yaml", sha256: "9d7bd5fc214ff1004b115158be8992b92618e8017d993244aac8329cf10fff27" },
  ],
  [
    "gateway",
    {
      file: "gateway-injection-template.yaml",
      sha256: "266a2162fe6795521563915d655d55957a12c7d6ffaed22e74dbab2c43666b04",
    },
  ],
  [
    "grpc-simple",
    { file: "grpc-simple.yaml", sha256: "cc0c60252f24558ef15b6c2ba77350f3c84a52b16f0009fcee440e98ca94c2da" },
  ],
  [
    "grpc-agent",
    { file: "grpc-agent.yaml", sha256: "79e57936d94e4194011cccc22f2adc39a8b20032ead5e7ad2cc1a0e79ef84c84" },
  ],
  ["waypoint", { file: "waypoint.yaml", sha256: "9993b07c0b42fa1f773088bea3f13fae52317b3baa5ae9cd33e36d64257d78dc" }],
  [
    "kube-gateway",
    { file: "kube-gateway.yaml", sha256: "25ab106e6a5ddbd4702a011252069f29ed42e1e487c08496308473980adbb389" },
  ],
  [
    "agentgateway",
    { file: "agentgateway.yaml", sha256: "14b132edb9432d5d0e7a15469e99623d97fa651527312e628579c5f24dc7b5b6" },
  ],
  [
    "agentgateway-waypoint",
    { file: "agentgateway-waypoint.yaml", sha256: "613652b66c9a7cb972a41d37f64ad1f21d199578e60459b98af4242ccfd1abe3" },
  ],
]);

/** The istio-sidecar-injector ConfigMap's `values` as the chart renders them with its defaults. */
export const PINNED_VALUES: unknown = {
  gateways: {
    seccompProfile: {},
    securityContext: {},
  },
  global: {
    caAddress: "",
    caName: "",
    certSigners: [],
    configCluster: false,
    configValidation: true,
    defaultPodDisruptionBudget: {
      enabled: true,
    },
    defaultResources: {
      requests: {
        cpu: "10m",
      },
    },
    externalIstiod: false,
    hub: "registry.istio.io/testing",
    imagePullPolicy: "",
    imagePullSecrets: [],
    istioNamespace: "istio-system",
    istiod: {
      enableAnalysis: false,
    },
    logAsJson: false,
    logging: {
      level: "default:info",
    },
    meshID: "",
    meshNetworks: {},
    mountMtlsCerts: false,
    multiCluster: {
      clusterName: "",
    },
    nativeNftables: false,
    network: "",
    networkPolicy: {
      enabled: false,
    },
    omitSidecarInjectorConfigMap: false,
    operatorManageWebhooks: false,
    pilotCertProvider: "istiod",
    priorityClassName: "",
    proxy: {
      autoInject: "enabled",
      clusterDomain: "cluster.local",
      componentLogLevel: "misc:error",
      excludeIPRanges: "",
      excludeInboundPorts: "",
      excludeOutboundPorts: "",
      image: "proxyv2",
      includeIPRanges: "*",
      includeInboundPorts: "*",
      includeOutboundPorts: "",
      logLevel: "warning",
      outlierLogPath: "",
      privileged: false,
      readinessFailureThreshold: 4,
      readinessInitialDelaySeconds: 0,
      readinessPeriodSeconds: 15,
      resources: {
        limits: {
          cpu: "2000m",
          memory: "1024Mi",
        },
        requests: {
          cpu: "100m",
          memory: "128Mi",
        },
      },
      seccompProfile: {},
      startupProbe: {
        enabled: true,
        failureThreshold: 600,
      },
      statusPort: 15020,
      tracer: "none",
    },
    proxy_init: {
      forceApplyIptables: false,
      image: "proxyv2",
    },
    remotePilotAddress: "",
    resourceScope: "all",
    sds: {
      token: {
        aud: "istio-ca",
      },
    },
    sts: {
      servicePort: 0,
    },
    tag: "latest",
    variant: "",
    waypoint: {
      affinity: {},
      nodeSelector: {},
      resources: {
        limits: {
          cpu: "2",
          memory: "1Gi",
        },
        requests: {
          cpu: "100m",
          memory: "128Mi",
        },
      },
      tolerations: [],
      topologySpreadConstraints: [],
    },
  },
  pilot: {
    cni: {
      enabled: false,
      provider: "default",
    },
    env: {},
  },
  revision: "",
  sidecarInjectorWebhook: {
    alwaysInjectSelector: [],
    defaultTemplates: [],
    enableNamespacesByDefault: false,
    injectedAnnotations: {},
    neverInjectSelector: [],
    reinvocationPolicy: "Never",
    rewriteAppHTTPProbe: true,
    templates: {},
  },
};
