// Istio's other built-in templates: `gateway` (the proxy as a router, the Pod's only
// purpose), `grpc-agent` (proxyless gRPC with pilot-agent serving xDS, no Envoy) and
// `grpc-simple` (proxyless gRPC with a bootstrap file only, no agent).
import type { Container, EnvVar, JsonObject, Volume } from "../kube/types.js";
import { A, CONTAINER, GRPC_BOOTSTRAP_INIT, L } from "./annotations.js";
import { PORT, READINESS_PATH } from "./istio.js";
import { labelOr, type Params } from "./params.js";
import {
  BOOTSTRAP_MOUNT,
  BOOTSTRAP_MOUNT_AFTER,
  BOOTSTRAP_VOLUME_AFTER,
  bootstrapVolume,
  canonicalLabels,
  configParts,
  defaultContainerAnnotations,
  ENVOY_PROM_CONTAINER_PORT,
  INSTANCE_IP_ENV,
  insertedAfter,
  mount,
  mountPath,
  mounts,
  ownerEnv,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  proxyArgs,
  proxyMetadataEnv,
  proxyProbes,
  pullPolicy,
  pushLeadEnv,
  pushTailEnv,
  userEntries,
  userVolumes,
  volumes,
  withPathEnv,
} from "./template-parts.js";
import type { TemplateOutput } from "./template.js";

/** Istio's gateway template gives the credential socket and the workload certs an emptyDir. */
const GATEWAY_VOLUMES: readonly Volume[] = volumes([
  "workload-socket",
  "credential-socket",
  "workload-certs",
  "istio-envoy",
  "istio-data",
  "istio-podinfo",
  "istio-token",
  "istiod-ca-cert",
]).map((v) => (v.name === "credential-socket" || v.name === "workload-certs" ? { ...v, emptyDir: {} } : v));
const GATEWAY_MOUNTS: readonly JsonObject[] = mounts([
  "workload-socket",
  "credential-socket",
  "workload-certs",
  "istiod-ca-cert",
  "istio-data",
  "istio-envoy",
  "istio-token",
  "istio-podinfo",
]);

/**
 * The gateway's and grpc-agent's labels: the sidecar's canonical labels, except that Istio's
 * gateway and grpc-agent templates do not cut the name to 63 characters (nor trim it).
 */
function uncutCanonicalLabels(p: Params): Record<string, string> {
  const name = labelOr(p, L.canonicalName, "app.kubernetes.io/name", "app") ?? p.workload.name;
  return { ...canonicalLabels(p), [L.canonicalName]: name };
}

/**
 * The gateway's and grpc-agent's ISTIO_META_WORKLOAD_NAME is the workload's name, left out when
 * it has none (a Pod with a generateName alone): unlike the sidecar template, Istio's gateway
 * and grpc-agent templates do not read the service.istio.io/workload-name label.
 */
function deploymentOwnerEnv(p: Params): EnvVar[] {
  return ownerEnv(p).flatMap((e) =>
    e.name !== "ISTIO_META_WORKLOAD_NAME" ? [e] : p.workload.name ? [{ name: e.name, value: p.workload.name }] : [],
  );
}

export function gatewayTemplate(p: Params): TemplateOutput {
  // sidecar.istio.io/bootstrapOverride: Istio's gateway template, as its sidecar template, sets
  // ISTIO_BOOTSTRAP_OVERRIDE and mounts the named ConfigMap at /etc/istio/custom-bootstrap.
  const bootstrap = p.annotations[A.bootstrapOverride];
  const env: EnvVar[] = [];
  pushLeadEnv(env, p, "gateway");
  // The mesh's mode: Istio's gateway template does not read sidecar.istio.io/interceptionMode.
  env.push({
    name: "ISTIO_META_INTERCEPTION_MODE",
    value: p.proxyConfig.interceptionMode ?? p.config.interception.mode,
  });
  pushTailEnv(env, p, deploymentOwnerEnv(p), bootstrap !== undefined, proxyMetadataEnv(p));
  const proxy: Container = {
    name: CONTAINER.proxy,
    image: p.proxyImage,
    ports: [{ ...ENVOY_PROM_CONTAINER_PORT }],
    args: proxyArgs(p, "router"),
    env: withPathEnv(env, p),
    ...pullPolicy(p),
    ...proxyProbes(p, PORT.readiness, false, true),
    securityContext: { runAsUser: p.config.proxy.uid, runAsGroup: p.config.proxy.gid },
    volumeMounts:
      bootstrap !== undefined
        ? insertedAfter(GATEWAY_MOUNTS, BOOTSTRAP_MOUNT_AFTER, BOOTSTRAP_MOUNT)
        : [...GATEWAY_MOUNTS],
  };
  // Istio's gateway template sets no resources, whatever the proxyCPU/proxyMemory annotations say.
  return {
    labels: uncutCanonicalLabels(p),
    annotations: defaultContainerAnnotations(p),
    initContainers: [],
    containers: [proxy],
    volumes:
      bootstrap !== undefined
        ? insertedAfter(GATEWAY_VOLUMES, BOOTSTRAP_VOLUME_AFTER, bootstrapVolume(bootstrap))
        : GATEWAY_VOLUMES,
    imagePullSecrets: configParts(p.config).imagePullSecrets,
    podSecurityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] },
  };
}

const GRPC_AGENT_VOLUMES: readonly Volume[] = volumes([
  "workload-socket",
  "workload-certs",
  "istio-xds",
  "istio-data",
  "istio-podinfo",
  "istio-token",
  "istiod-ca-cert",
]);
const GRPC_AGENT_MOUNTS: readonly JsonObject[] = mounts([
  "workload-socket",
  "workload-certs",
  "istiod-ca-cert",
  "istio-data",
  "istio-xds",
  "istio-token",
  "istio-podinfo",
]);
const GRPC_APP_MOUNTS: readonly JsonObject[] = mounts(["istio-data", "istio-xds", "workload-certs"]);

export function grpcAgentTemplate(p: Params): TemplateOutput {
  // Istio's grpc-agent template adds the bootstrap override's volume (mounted nowhere) and the
  // user's volumes and mounts, as the sidecar template does.
  const bootstrap = p.annotations[A.bootstrapOverride];
  // Istio's grpc-agent template writes 15020 for the proxy's port, its postStart wait and its
  // readiness probe, whatever status.sidecar.istio.io/port says (which decides only whether
  // there is a readiness probe): the agent's status server is where its ProxyConfig says.
  const statusPort = PORT.agentStatus;
  const env: EnvVar[] = [
    { name: "ISTIO_META_GENERATOR", value: "grpc" },
    { name: "OUTPUT_CERTS", value: mountPath("istio-data") },
  ];
  pushLeadEnv(env, p, "none");
  pushTailEnv(env, p, deploymentOwnerEnv(p), false, proxyMetadataEnv(p));
  env.push({ name: "ISTIO_META_DNS_CAPTURE", value: "false" }, { name: "DISABLE_ENVOY", value: "true" });
  const proxy: Container = {
    name: CONTAINER.proxy,
    image: p.proxyImage,
    ports: [{ containerPort: statusPort, protocol: "TCP", name: "mesh-metrics" }],
    args: proxyArgs(p, "sidecar"),
    lifecycle: {
      postStart: {
        exec: { command: ["pilot-agent", "wait", `--url=http://localhost:${statusPort}${READINESS_PATH}`] },
      },
    },
    env: withPathEnv(env, p),
    ...pullPolicy(p),
    ...proxyProbes(p, statusPort, false),
    ...(p.resources ? { resources: p.resources } : {}),
    volumeMounts: [...GRPC_AGENT_MOUNTS, ...userEntries(p, A.userVolumeMount)],
  };
  const apps: Container[] = p.appContainers.map((name) => ({
    name,
    env: [
      { name: "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", value: "true" },
      { name: "GRPC_XDS_BOOTSTRAP", value: `${mountPath("istio-xds")}/grpc-bootstrap.json` },
    ],
    volumeMounts: [...GRPC_APP_MOUNTS],
  }));
  const volumeList =
    bootstrap !== undefined
      ? insertedAfter(GRPC_AGENT_VOLUMES, BOOTSTRAP_VOLUME_AFTER, bootstrapVolume(bootstrap))
      : [...GRPC_AGENT_VOLUMES];
  volumeList.push(...userVolumes(p));
  return {
    labels: uncutCanonicalLabels(p),
    annotations: { [A.rewriteProbes]: "false", ...defaultContainerAnnotations(p) },
    initContainers: [],
    // istio-proxy first, then the apps, as Istio's template lists them (the order of the overrides record).
    containers: [proxy, ...apps],
    volumes: volumeList,
    imagePullSecrets: configParts(p.config).imagePullSecrets,
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
    name: GRPC_BOOTSTRAP_INIT,
    image: GRPC_SIMPLE_INIT_IMAGE,
    volumeMounts: [mount(GRPC_BOOTSTRAP_VOLUME, GRPC_BOOTSTRAP_DIR)],
    // INSTANCE_IP, POD_NAME, POD_NAMESPACE, then the control plane's namespace (a YAML block
    // scalar in Istio's template, so with its newline).
    env: [
      INSTANCE_IP_ENV,
      POD_NAME_ENV,
      POD_NAMESPACE_ENV,
      { name: "ISTIO_NAMESPACE", value: `${istioNamespace(p.config.discoveryAddress)}\n` },
    ],
    command: ["sh", "-c", GRPC_SIMPLE_SCRIPT],
  };
  // Every container of the Pod, an istio-proxy of its own too: Istio's grpc-simple template
  // ranges over them all (grpc-agent leaves istio-proxy out).
  const apps: Container[] = p.containerNames.map((name) => ({
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
