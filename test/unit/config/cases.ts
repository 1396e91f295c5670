// One row per config rule: a config the injector refuses (the key it names and why), or one it
// accepts. load.test.ts runs them through the loader, json-schema.test.ts through the chart's
// JSON Schema, which refuses the same rows except those marked `schema: false` (rules JSON
// Schema cannot state; the injector alone refuses those, at start).

export interface Refused {
  readonly name: string;
  readonly config: unknown;
  /** The key path of the (single) problem. */
  readonly key: string;
  readonly why: RegExp;
  /** false: the JSON Schema cannot state this rule and accepts the config. */
  readonly schema?: false;
}

export interface Accepted {
  readonly name: string;
  readonly config: unknown;
}

const requests = (list: Record<string, unknown>): unknown => ({ proxy: { resources: { requests: list } } });
const resources = (requests: Record<string, unknown>, limits: Record<string, unknown>): unknown => ({
  proxy: { resources: { requests, limits } },
});
const interception = (k: string, v: unknown): unknown => ({ interception: { [k]: v } });
const proxy = (k: string, v: unknown): unknown => ({ proxy: { [k]: v } });
const never = (selector: unknown): unknown => ({ neverInjectSelector: [selector] });
const DIGEST = `sha256:${"ab".repeat(32)}`;
const LONG_PREFIX = ["a", "b", "c", "d"].map((c) => c.repeat(62)).join(".") + ".example"; // 259 characters

export const REFUSED: readonly Refused[] = [
  // quantities (what the API server refuses: "quantities must match the regular expression")
  {
    name: "quantity with a space",
    config: requests({ cpu: "100 m" }),
    key: "proxy.resources.requests.cpu",
    why: /"100 m": is not a Kubernetes quantity/,
  },
  {
    name: "quantity with a unit typo",
    config: resources({}, { memory: "1GB" }),
    key: "proxy.resources.limits.memory",
    why: /is not a Kubernetes quantity/,
  },
  {
    name: "negative quantity",
    config: resources({}, { memory: "-1Gi" }),
    key: "proxy.resources.limits.memory",
    why: /must not be negative/,
  },
  {
    name: "negative quantity as a number",
    config: requests({ cpu: -1 }),
    key: "proxy.resources.requests.cpu",
    why: /"-1": must not be negative/,
  },
  {
    name: "quantity exponent past any real size",
    config: requests({ cpu: "1e999" }),
    key: "proxy.resources.requests.cpu",
    why: /exponent beyond 99/,
  },
  {
    name: "resource name",
    config: requests({ gpu: "1" }),
    key: "proxy.resources.requests",
    why: /key "gpu" must be cpu, memory or ephemeral-storage/,
  },
  {
    name: "request above its limit",
    config: resources({ cpu: "3" }, { cpu: "2" }),
    key: "proxy.resources.requests.cpu",
    why: /"3": must be at most the cpu limit \("2"\)/,
    schema: false,
  },
  {
    name: "request above its limit in other units",
    config: resources({ memory: "2Gi" }, { memory: "2000Mi" }),
    key: "proxy.resources.requests.memory",
    why: /at most the memory limit/,
    schema: false,
  },
  {
    name: "resources not a map",
    config: proxy("resources", "100m"),
    key: "proxy.resources",
    why: /must be a map, got a string "100m"/,
  },
  // ports: Istio's annotation check
  {
    name: "named port",
    config: interception("includeInboundPorts", "http"),
    key: "interception.includeInboundPorts",
    why: /"http" is not a port number \(0-65535\)/,
  },
  {
    name: "port past 65535",
    config: interception("excludeInboundPorts", "15020,65536"),
    key: "interception.excludeInboundPorts",
    why: /"65536" is not a port number/,
  },
  {
    name: "space around a CIDR (Istio refuses it)",
    config: interception("excludeOutboundIPRanges", "10.0.0.0/8, 192.168.0.0/16"),
    key: "interception.excludeOutboundIPRanges",
    why: /" 192.168.0.0\/16" is not a CIDR/,
  },
  {
    name: "port above 65535",
    config: interception("includeOutboundPorts", "65536"),
    key: "interception.includeOutboundPorts",
    why: /"65536" is not a port number/,
  },
  {
    name: "wildcard where none is taken",
    config: interception("excludeOutboundPorts", "*"),
    key: "interception.excludeOutboundPorts",
    why: /"\*" is not a port number/,
  },
  {
    name: "empty item in a port list",
    config: interception("excludeInboundPorts", "80,,90"),
    key: "interception.excludeInboundPorts",
    why: /"" is not a port number/,
  },
  {
    name: "port list as a number",
    config: interception("excludeInboundPorts", 8080),
    key: "interception.excludeInboundPorts",
    why: /must be a string, got number 8080/,
  },
  // CIDRs: Istio's annotation check
  {
    name: "IPv4 prefix /33",
    config: interception("excludeOutboundIPRanges", "10.0.0.0/33"),
    key: "interception.excludeOutboundIPRanges",
    why: /"10.0.0.0\/33" is not a CIDR/,
  },
  {
    name: "IPv4 address out of range",
    config: interception("includeOutboundIPRanges", "10.0.0.0/8,300.0.0.0/8"),
    key: "interception.includeOutboundIPRanges",
    why: /"300.0.0.0\/8" is not a CIDR/,
  },
  {
    name: "address without a prefix",
    config: interception("includeOutboundIPRanges", "10.0.0.1"),
    key: "interception.includeOutboundIPRanges",
    why: /is not a CIDR/,
  },
  {
    name: "IPv6 prefix /129",
    config: interception("excludeOutboundIPRanges", "fd00::/129"),
    key: "interception.excludeOutboundIPRanges",
    why: /is not a CIDR/,
  },
  {
    name: "IPv6 address that is not one",
    config: interception("excludeOutboundIPRanges", "1:2:3/64"),
    key: "interception.excludeOutboundIPRanges",
    why: /"1:2:3\/64" is not a CIDR/,
    schema: false,
  },
  {
    name: "wildcard in the exclude list",
    config: interception("excludeOutboundIPRanges", "*"),
    key: "interception.excludeOutboundIPRanges",
    why: /is not a CIDR/,
  },
  // enums
  {
    name: "interception mode",
    config: interception("mode", "redirect"),
    key: "interception.mode",
    why: /"redirect": must be one of REDIRECT \| TPROXY \| NONE/,
  },
  { name: "policy", config: { policy: "sometimes" }, key: "policy", why: /must be one of enabled \| disabled/ },
  {
    name: "nativeSidecars",
    config: { nativeSidecars: "maybe" },
    key: "nativeSidecars",
    why: /must be one of auto \| true \| false/,
  },
  { name: "nativeSidecars as a number", config: { nativeSidecars: 1 }, key: "nativeSidecars", why: /got number 1/ },
  {
    name: "imagePullPolicy",
    config: proxy("imagePullPolicy", "always"),
    key: "proxy.imagePullPolicy",
    why: /must be one of "" \| Always \| IfNotPresent \| Never/,
  },
  // log levels: Istio's annotation checks
  {
    name: "log level",
    config: proxy("logLevel", "verbose"),
    key: "proxy.logLevel",
    why: /"verbose": must be one of trace, debug/,
  },
  {
    name: "component log level without a level",
    config: proxy("componentLogLevel", "misc"),
    key: "proxy.componentLogLevel",
    why: /must be <component>:<level> pairs/,
  },
  {
    name: "agent log level",
    config: proxy("agentLogLevel", "default:loud"),
    key: "proxy.agentLogLevel",
    why: /must be \[<scope>:\]<level>/,
  },
  {
    name: "an Envoy level for the agent",
    config: proxy("agentLogLevel", "default:trace"),
    key: "proxy.agentLogLevel",
    why: /one of debug, info, warn, error, fatal, none/,
  },
  // images
  {
    name: "image with upper case in the path",
    config: proxy("image", "docker.io/Istio/proxyv2:1.28.0"),
    key: "proxy.image",
    why: /must be a container image reference/,
  },
  {
    name: "image with a space",
    config: proxy("image", "docker.io/istio/proxyv2:1.28.0 "),
    key: "proxy.image",
    why: /must be a container image reference/,
  },
  { name: "empty image", config: proxy("image", ""), key: "proxy.image", why: /must be a container image reference/ },
  {
    name: "init image",
    config: { proxyInit: { image: "not an image" } },
    key: "proxyInit.image",
    why: /must be a container image reference .*, or empty/,
  },
  // ids, ports and probe settings
  {
    name: "uid 0 (the proxy runs as non-root)",
    config: proxy("uid", 0),
    key: "proxy.uid",
    why: /"0": must be a whole number from 1 to 2147483647 \(istio-proxy runs as this user, and not as root\)/,
  },
  { name: "uid past int32", config: proxy("uid", 2147483648), key: "proxy.uid", why: /from 1 to 2147483647/ },
  {
    name: "uid as a name",
    config: proxy("uid", "root"),
    key: "proxy.uid",
    why: /must be a whole number from 1 to 2147483647.*, got a string "root"/,
  },
  { name: "negative gid", config: proxy("gid", -1), key: "proxy.gid", why: /from 0 to 2147483647/ },
  {
    name: "status port above 65535",
    config: proxy("statusPort", 70000),
    key: "proxy.statusPort",
    why: /"70000": must be a whole number from 0 to 65535/,
  },
  {
    name: "fractional probe period",
    config: proxy("readinessPeriodSeconds", 1.5),
    key: "proxy.readinessPeriodSeconds",
    why: /whole number/,
  },
  {
    name: "probe threshold past int32",
    config: proxy("readinessFailureThreshold", 2 ** 31),
    key: "proxy.readinessFailureThreshold",
    why: /from 0 to 2147483647/,
  },
  {
    name: "negative startup threshold",
    config: proxy("startupProbe", { failureThreshold: -1 }),
    key: "proxy.startupProbe.failureThreshold",
    why: /from 0 to 2147483647/,
  },
  {
    name: "startup probe switch as a string",
    config: proxy("startupProbe", { enabled: "yes" }),
    key: "proxy.startupProbe.enabled",
    why: /must be true or false, got a string "yes"/,
  },
  // proxyMetadata, imagePullSecrets, injectedAnnotations, ignoredNamespaces, revision
  {
    name: "proxyMetadata name",
    config: proxy("proxyMetadata", { "1BAD": "x" }),
    key: "proxy.proxyMetadata",
    why: /key "1BAD" must be an environment variable name/,
  },
  {
    name: "proxyMetadata value",
    config: proxy("proxyMetadata", { GOOD: { a: 1 } }),
    key: "proxy.proxyMetadata.GOOD",
    why: /must be a string, got a map/,
  },
  {
    name: "imagePullSecrets name",
    config: { imagePullSecrets: ["Reg_Cred"] },
    key: "imagePullSecrets[0]",
    why: /"Reg_Cred": must be a DNS subdomain/,
  },
  {
    name: "injectedAnnotations key",
    config: { injectedAnnotations: { "bad key": "v" } },
    key: "injectedAnnotations",
    why: /key "bad key" must be an annotation key/,
  },
  {
    name: "injectedAnnotations key prefix past 253",
    config: { injectedAnnotations: { [`${LONG_PREFIX}/x`]: "v" } },
    key: "injectedAnnotations",
    why: /its prefix is longer than 253 characters/,
    schema: false,
  },
  {
    name: "injectedAnnotations past the API server's size",
    config: { injectedAnnotations: { a: "x".repeat(256 * 1024) } },
    key: "injectedAnnotations",
    why: /total 262145 bytes, more than the 262144/,
    schema: false,
  },
  {
    name: "ignoredNamespaces upper case",
    config: { ignoredNamespaces: ["kube-system", "Kube-Public"] },
    key: "ignoredNamespaces[1]",
    why: /"Kube-Public": must be a DNS label/,
  },
  {
    name: "ignoredNamespaces too long",
    config: { ignoredNamespaces: ["a".repeat(64)] },
    key: "ignoredNamespaces[0]",
    why: /must be a DNS label/,
  },
  {
    name: "ignoredNamespaces not a list",
    config: { ignoredNamespaces: "kube-system" },
    key: "ignoredNamespaces",
    why: /must be a list, got a string/,
  },
  { name: "revision", config: { revision: "canary!" }, key: "revision", why: /"canary!": must be a label value/ },
  { name: "revision too long", config: { revision: "r".repeat(64) }, key: "revision", why: /must be a label value/ },
  // label selectors, as the API server validates them
  {
    name: "selector label key",
    config: never({ matchLabels: { "bad key": "1" } }),
    key: "neverInjectSelector[0].matchLabels",
    why: /key "bad key" must be a label key/,
  },
  {
    name: "selector label value",
    config: never({ matchLabels: { tier: "-x" } }),
    key: "neverInjectSelector[0].matchLabels.tier",
    why: /"-x": must be a label value/,
  },
  {
    name: "selector operator",
    config: never({ matchExpressions: [{ key: "a", operator: "Like" }] }),
    key: "neverInjectSelector[0].matchExpressions[0].operator",
    why: /must be one of In \| NotIn \| Exists \| DoesNotExist/,
  },
  {
    name: "selector In without values",
    config: never({ matchExpressions: [{ key: "a", operator: "In" }] }),
    key: "neverInjectSelector[0].matchExpressions[0].values",
    why: /at least one value for operator In/,
  },
  {
    name: "selector Exists with values",
    config: never({ matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }),
    key: "neverInjectSelector[0].matchExpressions[0].values",
    why: /must be empty for operator Exists/,
  },
  {
    name: "selector without a key",
    config: { alwaysInjectSelector: [{ matchExpressions: [{ operator: "Exists" }] }] },
    key: "alwaysInjectSelector[0].matchExpressions[0].key",
    why: /is required/,
  },
  {
    name: "selector expression key",
    config: never({ matchExpressions: [{ key: "a/b/c", operator: "Exists" }] }),
    key: "neverInjectSelector[0].matchExpressions[0].key",
    why: /must be a label key/,
  },
  {
    name: "selector unknown key",
    config: never({ matchLabel: {} }),
    key: "neverInjectSelector[0].matchLabel",
    why: /: unknown key; did you mean neverInjectSelector\[0\]\.matchLabels\?$/,
  },
  // addresses and domains
  {
    name: "discovery address without a port",
    config: { discoveryAddress: "istiod.istio-system.svc" },
    key: "discoveryAddress",
    why: /must be <host>:<port>/,
  },
  { name: "CA address with port 0", config: { caAddress: "istiod:0" }, key: "caAddress", why: /must be <host>:<port>/ },
  {
    name: "cluster domain upper case",
    config: { clusterDomain: "Cluster.Local" },
    key: "clusterDomain",
    why: /must be a DNS subdomain/,
  },
  { name: "empty cluster domain", config: { clusterDomain: "" }, key: "clusterDomain", why: /must be a DNS subdomain/ },
  {
    name: "trust domain",
    config: { trustDomain: "Cluster Local" },
    key: "trustDomain",
    why: /must be a SPIFFE trust domain/,
  },
  // types and unknown keys, as before
  {
    name: "boolean as a string",
    config: { cni: "true" },
    key: "cni",
    why: /must be true or false, got a string "true"/,
  },
  {
    name: "unknown key",
    config: { polcy: "enabled" },
    key: "polcy",
    why: /^polcy: unknown key; did you mean policy\?$/,
  },
  {
    name: "unknown nested key",
    config: proxy("imagee", "x"),
    key: "proxy.imagee",
    why: /^proxy\.imagee: unknown key; did you mean proxy\.image\?$/,
  },
  {
    name: "unknown key, letter case",
    config: proxy("StatusPort", 1),
    key: "proxy.StatusPort",
    why: /: unknown key; did you mean proxy\.statusPort\?$/,
  },
  {
    name: "unknown key deeper",
    config: { proxy: { startupProbe: { enable: true } } },
    key: "proxy.startupProbe.enable",
    why: /: unknown key; did you mean proxy\.startupProbe\.enabled\?$/,
  },
  {
    name: "unknown key, nothing close",
    config: { somethingElse: 1 },
    key: "somethingElse",
    why: /^somethingElse: unknown key$/,
  },
  {
    name: "a key Object.prototype has",
    config: { constructor: "x" },
    key: "constructor",
    why: /^constructor: unknown key$/,
  },
  {
    name: "a long unknown key: quoted bounded, not compared",
    config: { [`polic${"y".repeat(10_000)}`]: 1 },
    key: `"polic${"y".repeat(59)}…" (10005 characters)`,
    why: /^"polic.{60}" \(10005 characters\): unknown key$/,
  },
  // ProxyConfig fields carried over from a mesh config: they belong in proxyConfig
  {
    name: "a ProxyConfig field in proxy",
    config: proxy("concurrency", 2),
    key: "proxy.concurrency",
    why: /: unknown key: ProxyConfig's concurrency is set in proxyConfig$/,
  },
  {
    name: "a ProxyConfig field at the top, by its proto name",
    config: { drain_duration: "5s" },
    key: "drain_duration",
    why: /: unknown key: ProxyConfig's drainDuration is set in proxyConfig$/,
  },
  {
    name: "a mesh config's defaultConfig",
    config: { defaultConfig: { concurrency: 2 } },
    key: "defaultConfig",
    why: /: unknown key: the mesh's ProxyConfig \(meshConfig\.defaultConfig\) is proxyConfig here$/,
  },
  // proxyConfig: refused as Istio refuses the proxy.istio.io/config annotation
  {
    name: "proxyConfig not a map",
    config: { proxyConfig: "holdApplicationUntilProxyStarts: true" },
    key: "proxyConfig",
    why: /: must be a ProxyConfig map, got a string "holdApplicationUntilProxyStarts: true"$/,
  },
  {
    name: "proxyConfig field of the wrong type",
    config: { proxyConfig: { holdApplicationUntilProxyStarts: "yes" } },
    key: "proxyConfig",
    why: /: holdApplicationUntilProxyStarts must be true or false$/,
    schema: false,
  },
  {
    name: "proxyConfig duration Go cannot read",
    config: { proxyConfig: { drainDuration: "5 seconds" } },
    key: "proxyConfig",
    why: /: drainDuration must be a duration/,
    schema: false,
  },
  {
    name: "proxyConfig drain duration not whole seconds (agent.ValidateMeshConfigProxyConfig)",
    config: { proxyConfig: { drainDuration: "1500ms" } },
    key: "proxyConfig",
    why: /: drainDuration must be whole seconds$/,
    schema: false,
  },
  {
    name: "proxyConfig status port out of range",
    config: { proxyConfig: { statusPort: 0 } },
    key: "proxyConfig",
    why: /: statusPort must be a port from 1 to 65535$/,
    schema: false,
  },
  {
    name: "proxyConfig discovery address without a port",
    config: { proxyConfig: { discovery_address: "istiod.istio-system.svc" } },
    key: "proxyConfig",
    why: /: discoveryAddress must be <host>:<port>$/,
    schema: false,
  },
  {
    name: "proxyConfig interceptionMode by a number that names no mode",
    config: { proxyConfig: { interceptionMode: 7 } },
    key: "proxyConfig",
    why: /: interceptionMode must be one of REDIRECT, TPROXY, NONE$/,
    schema: false,
  },
  {
    name: "proxyConfig image.imageType that makes no tag",
    config: { proxyConfig: { image: { imageType: "x".repeat(130) } } },
    key: "proxyConfig",
    why: /^proxyConfig="x+…" \(130 characters\): image\.imageType would make proxy\.image's tag invalid/,
    schema: false,
  },
  {
    name: "variant with a character no tag has",
    config: { variant: "dist roless" },
    key: "variant",
    why: /must be an image type/,
  },
  {
    name: "variant that makes no tag of proxyInit.image",
    config: {
      proxy: { image: "docker.io/istio/proxyv2:1", imageTyped: false },
      proxyInit: { image: "docker.io/istio/proxyv2:1.28.0" },
      variant: "x".repeat(125),
    },
    key: "variant",
    why: /would make an image's tag invalid/,
    schema: false,
  },
  {
    name: "imageTyped not a boolean",
    config: { proxyInit: { imageTyped: "no" } },
    key: "proxyInit.imageTyped",
    why: /true or false|boolean/,
  },
  {
    name: "proxyConfig unknown field, named with the closest",
    config: { proxyConfig: { holdApplicationUntilProxyStart: true } },
    key: "proxyConfig",
    why: /: unknown ProxyConfig field "holdApplicationUntilProxyStart"; did you mean "holdApplicationUntilProxyStarts"\?$/,
  },
  {
    name: "proxyConfig unknown nested field, by its path",
    config: { proxyConfig: { tracing: { zipkn: { address: "z:9411" } } } },
    key: "proxyConfig",
    why: /: unknown ProxyConfig field "tracing\.zipkn"; did you mean "tracing\.zipkin"\?$/,
    schema: false,
  },
  { name: "section not a map", config: { proxy: [1] }, key: "proxy", why: /must be a map, got a list/ },
  { name: "document not a map", config: ["a"], key: "(root)", why: /must be a map, got a list/ },
];

export const ACCEPTED: readonly Accepted[] = [
  { name: "empty", config: {} },
  {
    name: "every key set to a valid value",
    config: {
      revision: "canary-1.28",
      meshId: "mesh 1",
      clusterId: "east",
      trustDomain: "td.example",
      clusterDomain: "corp.example",
      network: "net-1",
      discoveryAddress: "[fd00::1]:15012",
      caAddress: "ca.example:443",
      policy: "disabled",
      neverInjectSelector: [{ matchLabels: { "app.kubernetes.io/name": "batch", on: true, n: 1 } }],
      alwaysInjectSelector: [
        {
          matchExpressions: [
            { key: "tier", operator: "In", values: ["web", ""] },
            { key: "example.com/x", operator: "DoesNotExist", values: [] },
          ],
        },
      ],
      ignoredNamespaces: ["kube-system", "a".repeat(63)],
      injectedAnnotations: { "Example.COM/owner": "team", plain: 1 },
      nativeSidecars: false,
      rewriteAppProbes: false,
      prometheusMerge: false,
      cni: true,
      imagePullSecrets: ["regcred", "reg.cred-2"],
      variant: "distroless",
      proxy: {
        image: `localhost:5000/istio/proxy_v2--x@${DIGEST}`,
        imageTyped: false,
        imagePullPolicy: "IfNotPresent",
        uid: 1337,
        gid: 0,
        statusPort: 0,
        logLevel: "warning",
        componentLogLevel: "misc:error,upstream:info",
        agentLogLevel: "default:debug",
        holdApplicationUntilProxyStarts: true,
        privileged: false,
        readinessInitialDelaySeconds: 1,
        readinessPeriodSeconds: 2147483647,
        readinessFailureThreshold: 30,
        startupProbe: { enabled: false, failureThreshold: 0 },
        resources: {
          requests: { cpu: 0.5, memory: "1024Mi", "ephemeral-storage": "1e3" },
          limits: { cpu: "500m", memory: "1Gi" },
        },
        proxyMetadata: { ISTIO_META_DNS_CAPTURE: true, "my.var-1": 5, _X: "" },
      },
      proxyInit: { image: "registry.example/istio/proxyv2:1.28.0-distroless", imageTyped: true },
      interception: {
        mode: "TPROXY",
        includeOutboundIPRanges: "10.0.0.0/8,192.168.0.0/16,fd00::/8",
        excludeOutboundIPRanges: "",
        includeInboundPorts: " 80, 443 ",
        excludeInboundPorts: "15020",
        includeOutboundPorts: "",
        excludeOutboundPorts: "0080,65535",
      },
      proxyConfig: {
        holdApplicationUntilProxyStarts: true,
        proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true" },
        concurrency: "2",
        drain_duration: "1m",
        interceptionMode: "TPROXY",
        image: { imageType: "distroless" },
        tracing: { zipkin: { address: "zipkin.istio-system:9411" }, sampling: 10 },
        proxyStatsMatcher: { inclusionPrefixes: ["cluster.outbound"] },
      },
    },
  },
  {
    name: "wildcards where they are taken",
    config: { interception: { includeOutboundIPRanges: "*", includeInboundPorts: "*" } },
  },
  {
    name: "what Istio takes: port 0, a pilot-agent level",
    config: {
      proxy: { agentLogLevel: "fatal" },
      interception: { excludeInboundPorts: "0", includeOutboundPorts: " 0 , 80" },
    },
  },
  { name: "empty revision (written as default)", config: { revision: "" } },
  {
    name: "request equal to its limit in other units",
    config: {
      proxy: { resources: { requests: { memory: "1Gi", cpu: "1" }, limits: { memory: "1024Mi", cpu: "1000m" } } },
    },
  },
  { name: "no resources at all", config: { proxy: { resources: {} } } },
  { name: "image from Docker Hub by short name", config: { proxy: { image: "proxyv2" } } },
];
