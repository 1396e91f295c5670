// Istio's other built-in templates: `gateway` (the proxy as a router, the Pod's only
// purpose), `grpc-agent` (proxyless gRPC with pilot-agent serving xDS, no Envoy) and
// `grpc-simple` (proxyless gRPC with a bootstrap file only, no agent).
import type { Container, EnvVar, JsonObject, Volume } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { labelOr, type Params } from "./params.js";
import {
  canonicalLabels,
  compile,
  CPU_LIMIT_ENV,
  MEM_LIMIT_ENV,
  NODE_NAME_ENV,
  ownerEnv,
  POD_IDENTITY_ENV,
  podPortsEnv,
  proxyArgs,
  proxyMetadataEnv,
  proxyProbes,
  withPathEnv,
} from "./sidecar.js";
import type { TemplateOutput } from "./template.js";

function defaultContainerAnnotations(p: Params): Record<string, string> {
  const out: Record<string, string> = { [A.rev]: p.config.revision || "default" };
  const first = p.appContainers[0];
  if (first !== undefined) {
    if (p.annotations[A.defaultLogsContainer] === undefined) out[A.defaultLogsContainer] = first;
    if (p.annotations[A.defaultContainer] === undefined) out[A.defaultContainer] = first;
  }
  return out;
}

/** The volumes (or mounts) of a JSON annotation, checked by validate.ts to be a map of name to object; by name, as Go's templates range over a map. */
function userEntries(p: Params, key: string): JsonObject[] {
  const raw = p.annotations[key];
  if (raw === undefined) return [];
  const parsed = JSON.parse(raw) as Record<string, JsonObject>;
  return Object.keys(parsed)
    .sort()
    .map((name) => ({ name, ...parsed[name] }));
}

const mount = (name: string, mountPath: string): JsonObject => ({ name, mountPath });
const PODINFO: Volume = {
  name: "istio-podinfo",
  downwardAPI: {
    items: [
      { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
      { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
    ],
  },
};
const TOKEN: Volume = {
  name: "istio-token",
  projected: { sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: "istio-ca" } }] },
};
const CA_CERT: Volume = { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } };

const GATEWAY_VOLUMES: readonly Volume[] = [
  { name: "workload-socket" },
  { name: "credential-socket", emptyDir: {} },
  { name: "workload-certs", emptyDir: {} },
  { name: "istio-envoy", emptyDir: { medium: "Memory" } },
  { name: "istio-data", emptyDir: {} },
  PODINFO,
  TOKEN,
  CA_CERT,
];
const GATEWAY_MOUNTS: readonly JsonObject[] = [
  mount("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
  mount("credential-socket", "/var/run/secrets/credential-uds"),
  mount("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
  mount("istiod-ca-cert", "/var/run/secrets/istio"),
  mount("istio-data", "/var/lib/istio/data"),
  mount("istio-envoy", "/etc/istio/proxy"),
  mount("istio-token", "/var/run/secrets/tokens"),
  mount("istio-podinfo", "/etc/istio/pod"),
];

function commonEnv(p: Params, appContainersEnv: EnvVar, withLimits: boolean): EnvVar[] {
  return [
    ...compile(p.config).certEnv,
    ...POD_IDENTITY_ENV,
    ...(withLimits ? [CPU_LIMIT_ENV] : []),
    { name: "PROXY_CONFIG", value: p.proxyConfig.json },
    podPortsEnv(p),
    ...(withLimits ? [MEM_LIMIT_ENV] : []),
    appContainersEnv,
    { name: "ISTIO_META_CLUSTER_ID", value: p.config.clusterId || "Kubernetes" },
    NODE_NAME_ENV,
  ];
}

/**
 * The gateway's and grpc-agent's labels: the sidecar's canonical labels, except that Istio's
 * gateway and grpc-agent templates do not cut the name to 63 characters (nor trim it).
 */
function uncutCanonicalLabels(p: Params): Record<string, string> {
  const name = labelOr(p, L.canonicalName, "app.kubernetes.io/name", "app") ?? p.workload.name;
  return { ...canonicalLabels(p), [L.canonicalName]: name };
}

/**
 * The gateway's and grpc-agent's ISTIO_META_WORKLOAD_NAME is the workload's name: unlike the
 * sidecar template, Istio's gateway and grpc-agent templates do not read the
 * service.istio.io/workload-name label.
 */
function deploymentOwnerEnv(p: Params): EnvVar[] {
  return ownerEnv(p).map((e) => (e.name === "ISTIO_META_WORKLOAD_NAME" ? { name: e.name, value: p.workload.name } : e));
}

const BOOTSTRAP_OVERRIDE_FILE = "/etc/istio/custom-bootstrap/custom_bootstrap.json";
const BOOTSTRAP_MOUNT = mount("custom-bootstrap-volume", "/etc/istio/custom-bootstrap");

/** The list with `item` inserted at `at`. */
function spliced<T>(list: readonly T[], at: number, item: T): T[] {
  return [...list.slice(0, at), item, ...list.slice(at)];
}

export function gatewayTemplate(p: Params): TemplateOutput {
  // sidecar.istio.io/bootstrapOverride: Istio's gateway template, as its sidecar template, sets
  // ISTIO_BOOTSTRAP_OVERRIDE and mounts the named ConfigMap at /etc/istio/custom-bootstrap.
  const bootstrap = p.annotations[A.bootstrapOverride];
  const env = [
    ...commonEnv(p, { name: "ISTIO_META_APP_CONTAINERS", value: p.appContainers.join(",") }, true),
    // The mesh's mode: Istio's gateway template does not read sidecar.istio.io/interceptionMode.
    { name: "ISTIO_META_INTERCEPTION_MODE", value: p.proxyConfig.interceptionMode ?? p.config.interception.mode },
    ...(p.config.network ? [{ name: "ISTIO_META_NETWORK", value: p.config.network }] : []),
    ...deploymentOwnerEnv(p),
    ...(bootstrap !== undefined ? [{ name: "ISTIO_BOOTSTRAP_OVERRIDE", value: BOOTSTRAP_OVERRIDE_FILE }] : []),
    ...compile(p.config).meshEnv,
    ...proxyMetadataEnv(p),
  ];
  const proxy: Container = {
    name: CONTAINER.proxy,
    image: p.proxyImage,
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args: proxyArgs(p, "router"),
    env: withPathEnv(env, p),
    ...(p.config.proxy.imagePullPolicy ? { imagePullPolicy: p.config.proxy.imagePullPolicy } : {}),
    ...proxyProbes(p, 15021, false, true),
    securityContext: { runAsUser: p.config.proxy.uid, runAsGroup: p.config.proxy.gid },
    volumeMounts: bootstrap !== undefined ? spliced(GATEWAY_MOUNTS, GATEWAY_MOUNTS.findIndex((m) => m.name === "istio-data") + 1, BOOTSTRAP_MOUNT) : [...GATEWAY_MOUNTS],
  };
  // Istio's gateway template sets no resources, whatever the proxyCPU/proxyMemory annotations say.
  return {
    labels: uncutCanonicalLabels(p),
    annotations: defaultContainerAnnotations(p),
    initContainers: [],
    containers: [proxy],
    volumes:
      bootstrap !== undefined
        ? spliced(GATEWAY_VOLUMES, GATEWAY_VOLUMES.findIndex((v) => v.name === "workload-certs") + 1, { name: "custom-bootstrap-volume", configMap: { name: bootstrap } })
        : GATEWAY_VOLUMES,
    imagePullSecrets: compile(p.config).imagePullSecrets,
    podSecurityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] },
  };
}

const XDS_VOLUME: Volume = { name: "istio-xds", emptyDir: { medium: "Memory" } };

export function grpcAgentTemplate(p: Params): TemplateOutput {
  // Istio's grpc-agent template adds the bootstrap override's volume (mounted nowhere) and the
  // user's volumes and mounts, as the sidecar template does.
  const bootstrap = p.annotations[A.bootstrapOverride];
  const statusPort = Number(p.statusPort) || 15020;
  const env = [
    { name: "ISTIO_META_GENERATOR", value: "grpc" },
    { name: "OUTPUT_CERTS", value: "/var/lib/istio/data" },
    ...commonEnv(p, { name: "ISTIO_META_APP_CONTAINERS", value: p.appContainers.join(",") }, false),
    ...(p.config.network ? [{ name: "ISTIO_META_NETWORK", value: p.config.network }] : []),
    ...deploymentOwnerEnv(p),
    ...compile(p.config).meshEnv,
    ...proxyMetadataEnv(p),
    { name: "ISTIO_META_DNS_CAPTURE", value: "false" },
    { name: "DISABLE_ENVOY", value: "true" },
  ];
  const proxy: Container = {
    name: CONTAINER.proxy,
    image: p.proxyImage,
    ports: [{ containerPort: statusPort, protocol: "TCP", name: "mesh-metrics" }],
    args: proxyArgs(p, "sidecar"),
    lifecycle: { postStart: { exec: { command: ["pilot-agent", "wait", `--url=http://localhost:${statusPort}/healthz/ready`] } } },
    env: withPathEnv(env, p),
    ...(p.config.proxy.imagePullPolicy ? { imagePullPolicy: p.config.proxy.imagePullPolicy } : {}),
    ...proxyProbes(p, statusPort, false),
    ...(p.resources ? { resources: p.resources as JsonObject } : {}),
    volumeMounts: [
      mount("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
      mount("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
      mount("istiod-ca-cert", "/var/run/secrets/istio"),
      mount("istio-data", "/var/lib/istio/data"),
      mount("istio-xds", "/etc/istio/proxy"),
      mount("istio-token", "/var/run/secrets/tokens"),
      mount("istio-podinfo", "/etc/istio/pod"),
      ...userEntries(p, A.userVolumeMount),
    ],
  };
  const apps: Container[] = p.appContainers.map((name) => ({
    name,
    env: [
      { name: "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", value: "true" },
      { name: "GRPC_XDS_BOOTSTRAP", value: "/etc/istio/proxy/grpc-bootstrap.json" },
    ],
    volumeMounts: [
      mount("istio-data", "/var/lib/istio/data"),
      mount("istio-xds", "/etc/istio/proxy"),
      mount("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
    ],
  }));
  return {
    labels: uncutCanonicalLabels(p),
    annotations: { [A.rewriteProbes]: "false", ...defaultContainerAnnotations(p) },
    initContainers: [],
    // istio-proxy first, then the apps, as Istio's template lists them (the order of the overrides record).
    containers: [proxy, ...apps],
    volumes: [
      { name: "workload-socket" },
      { name: "workload-certs" },
      ...(bootstrap !== undefined ? [{ name: "custom-bootstrap-volume", configMap: { name: bootstrap } }] : []),
      XDS_VOLUME,
      { name: "istio-data", emptyDir: {} },
      PODINFO,
      TOKEN,
      CA_CERT,
      ...(userEntries(p, A.userVolume) as Volume[]),
    ],
    imagePullSecrets: compile(p.config).imagePullSecrets,
  };
}

const GRPC_BOOTSTRAP_VOLUME = "grpc-io-proxyless-bootstrap";
const GRPC_BOOTSTRAP_DIR = "/var/lib/grpc/data/";

/** Istio's grpc-simple init container image: a shell to write the bootstrap file, not the proxy. */
export const GRPC_SIMPLE_INIT_IMAGE = "busybox:1.28";

/**
 * The control plane's namespace (Istio's values.global.istioNamespace): the namespace part of
 * the discovery address `istiod.<namespace>.svc…`, else istio-system.
 */
export function istioNamespace(discoveryAddress: string): string {
  return /^[^.:]+\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.|:|$)/.exec(discoveryAddress)?.[1] ?? "istio-system";
}

// Istio's script, as its template writes it: the node id's domain and the xDS port are Istio's
// own constants, the namespace comes from ISTIO_NAMESPACE.
const GRPC_SIMPLE_SCRIPT = `NODE_ID="sidecar~\${INSTANCE_IP}~\${POD_NAME}.\${POD_NAMESPACE}~cluster.local"
SERVER_URI="dns:///istiod.\${ISTIO_NAMESPACE}.svc:15010"
echo '
{
  "xds_servers": [
    {
      "server_uri": "'\${SERVER_URI}'",
      "channel_creds": [{"type": "insecure"}],
      "server_features" : ["xds_v3"]
    }
  ],
  "node": {
    "id": "'\${NODE_ID}'",
    "metadata": {
      "GENERATOR": "grpc"
    }
  }
}' > ${GRPC_BOOTSTRAP_DIR}bootstrap.json`;

/** Istio's `grpc-simple`: a busybox init container writes the gRPC xDS bootstrap; no agent, no Envoy. */
export function grpcSimpleTemplate(p: Params): TemplateOutput {
  const init: Container = {
    name: "grpc-bootstrap-init",
    image: GRPC_SIMPLE_INIT_IMAGE,
    volumeMounts: [mount(GRPC_BOOTSTRAP_VOLUME, GRPC_BOOTSTRAP_DIR)],
    // INSTANCE_IP, POD_NAME, POD_NAMESPACE, then the control plane's namespace (a YAML block
    // scalar in Istio's template, so with its newline).
    env: [POD_IDENTITY_ENV[2], POD_IDENTITY_ENV[0], POD_IDENTITY_ENV[1]].flatMap((e) => (e ? [e] : [])).concat([
      { name: "ISTIO_NAMESPACE", value: `${istioNamespace(p.config.discoveryAddress)}\n` },
    ]),
    command: ["sh", "-c", GRPC_SIMPLE_SCRIPT],
  };
  const apps: Container[] = p.appContainers.map((name) => ({
    name,
    env: [
      { name: "GRPC_XDS_BOOTSTRAP", value: `${GRPC_BOOTSTRAP_DIR}bootstrap.json` },
      { name: "GRPC_GO_LOG_VERBOSITY_LEVEL", value: "99" },
      { name: "GRPC_GO_LOG_SEVERITY_LEVEL", value: "info" },
    ],
    volumeMounts: [mount(GRPC_BOOTSTRAP_VOLUME, GRPC_BOOTSTRAP_DIR)],
  }));
  return {
    labels: {},
    // Istio's grpc-simple template writes no istio.io/rev.
    annotations: { [A.rewriteProbes]: "false" },
    initContainers: [init],
    containers: apps,
    volumes: [{ name: GRPC_BOOTSTRAP_VOLUME, emptyDir: {} }],
    imagePullSecrets: [],
  };
}
