// The parts Istio's templates share, each written once and composed by sidecar.ts and
// templates-extra.ts: the proxy's volumes and where each is mounted, the env every agent
// starts and ends with, its arguments, readiness probes and Prometheus port, the Pod metadata
// every proxy template writes (istio.io/rev, kubectl's default container, the canonical
// labels), the user's volumes and mounts, and the parts that depend on the config only (built
// once per config and shared).
import type { Config, Resources } from "../config/types.js";
import type { Container, EnvVar, JsonObject, Probe, Volume } from "../kube/types.js";
import { A, L } from "./annotations.js";
import {
  BOOTSTRAP_OVERRIDE_DIR,
  BOOTSTRAP_OVERRIDE_FILE,
  DEFAULT_CLUSTER_ID,
  PORT,
  READINESS_PATH,
  servedRevision,
} from "./istio.js";
import { goDecode } from "./go-decode.js";
import { jsonScalar, jsonString } from "./json-text.js";
import { labelOr, workloadName, type Params } from "./params.js";
import { canonicalResources } from "./quantity.js";
import { invalidAnnotation, readInQuotes, userEntriesProblem } from "./validate.js";
import { quote } from "./quote.js";
import { ConfigMemo, shared } from "./shared-parts.js";

export { ConfigMemo, isShared, shared, type KeyPart } from "./shared-parts.js";

// --- Volumes and mounts ---------------------------------------------------------------------

/** Each volume a proxy template may add, by its name, with where the proxy mounts it. */
const VOLUME_PARTS = {
  "workload-socket": { volume: { name: "workload-socket" }, mountPath: "/var/run/secrets/workload-spiffe-uds" },
  "credential-socket": { volume: { name: "credential-socket" }, mountPath: "/var/run/secrets/credential-uds" },
  "workload-certs": { volume: { name: "workload-certs" }, mountPath: "/var/run/secrets/workload-spiffe-credentials" },
  "istio-envoy": { volume: { name: "istio-envoy", emptyDir: { medium: "Memory" } }, mountPath: "/etc/istio/proxy" },
  // grpc-agent's stand-in for istio-envoy: the agent writes the gRPC bootstrap there.
  "istio-xds": { volume: { name: "istio-xds", emptyDir: { medium: "Memory" } }, mountPath: "/etc/istio/proxy" },
  "istio-data": { volume: { name: "istio-data", emptyDir: {} }, mountPath: "/var/lib/istio/data" },
  "istio-podinfo": {
    volume: {
      name: "istio-podinfo",
      downwardAPI: {
        items: [
          { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
          { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
        ],
      },
    },
    mountPath: "/etc/istio/pod",
  },
  "istio-token": {
    volume: {
      name: "istio-token",
      projected: {
        sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: "istio-ca" } }],
      },
    },
    mountPath: "/var/run/secrets/tokens",
  },
  "istiod-ca-cert": {
    volume: { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
    mountPath: "/var/run/secrets/istio",
  },
  "istio-ca-crl": {
    volume: { name: "istio-ca-crl", configMap: { name: "istio-ca-crl", optional: true } },
    mountPath: "/var/run/secrets/istio/crl",
  },
} as const satisfies Record<string, { volume: Volume; mountPath: string }>;

export type ProxyVolumeName = keyof typeof VOLUME_PARTS;

/** The named volumes, in the order given. */
export function volumes(names: readonly ProxyVolumeName[]): Volume[] {
  return names.map((n) => shared(VOLUME_PARTS[n].volume));
}

export const mount = (name: string, mountPath: string): JsonObject => ({ name, mountPath });

/** Where the proxy mounts the named volume. */
export function mountPath(name: ProxyVolumeName): string {
  return VOLUME_PARTS[name].mountPath;
}

/** The mounts of the named volumes, in the order given. */
export function mounts(names: readonly ProxyVolumeName[]): JsonObject[] {
  return names.map((n) => shared(mount(n, VOLUME_PARTS[n].mountPath)));
}

/**
 * sidecar.istio.io/bootstrapOverride: the named ConfigMap, and where the proxy mounts it. An
 * empty name is left out, as Istio's typed round trip (`name,omitempty`) leaves it: `configMap: {}`.
 */
const BOOTSTRAP_VOLUME = "custom-bootstrap-volume";
export const bootstrapVolume = (configMap: string): Volume => ({
  name: BOOTSTRAP_VOLUME,
  configMap: configMap === "" ? {} : { name: configMap },
});
export const BOOTSTRAP_MOUNT: JsonObject = shared(mount(BOOTSTRAP_VOLUME, BOOTSTRAP_OVERRIDE_DIR));
export const BOOTSTRAP_ENV: EnvVar = shared({ name: "ISTIO_BOOTSTRAP_OVERRIDE", value: BOOTSTRAP_OVERRIDE_FILE });

/**
 * Where Istio's templates put the bootstrap override: its volume after workload-certs, its
 * mount after istio-data.
 */
export const BOOTSTRAP_VOLUME_AFTER: ProxyVolumeName = "workload-certs";
export const BOOTSTRAP_MOUNT_AFTER: ProxyVolumeName = "istio-data";

/** A copy of `list` with `item` after the item named `after` (at the end when none is). */
export function insertedAfter<T extends { readonly name?: unknown }>(list: readonly T[], after: string, item: T): T[] {
  const at = list.findIndex((x) => x.name === after);
  const i = at < 0 ? list.length : at + 1;
  return [...list.slice(0, i), item, ...list.slice(i)];
}

/**
 * The volumes (or mounts) of a JSON annotation, checked here to be null, a map of
 * name to object, or a list of objects: a map by name (Go's templates range over a map in key
 * order), a list by index, in order. The template writes each under `name: "<key or index>"`,
 * its own keys after (its own `name` wins), and Istio decodes the Pod it renders: each entry is
 * read as Go reads a corev1.Volume (corev1.VolumeMount) and written back (go-decode.ts), and one
 * Go cannot read refuses the Pod, as Istio's decoding does. `proxyIn`: the list of the container
 * the mounts go to. Where the Pod has no volumes (no such container list), Istio's merge adds
 * the whole list and drops the null members of its entries first.
 */
export function userEntries(
  p: Params,
  key: typeof A.userVolume | typeof A.userVolumeMount,
  proxyIn: "containers" | "initContainers" = "containers",
): JsonObject[] {
  const raw = p.annotations[key];
  if (raw === undefined) return [];
  // Checked here, where a template writes it, not for every Pod (validate.ts, whereWritten).
  const why = userEntriesProblem(raw);
  if (why !== undefined) throw invalidAnnotation(key, raw, why);
  // parse boundary: just checked to be null, a map of name to object, or a list of objects.
  const parsed = JSON.parse(raw) as Record<string, JsonObject> | null;
  if (parsed === null) return [];
  const list = Array.isArray(parsed);
  const names = list ? Object.keys(parsed) : Object.keys(parsed).sort();
  const volume = key === A.userVolume;
  // `containers` has no omitempty: Go writes it even empty, and the merge finds it there.
  const added = volume
    ? !p.pod.spec?.volumes?.length
    : proxyIn === "initContainers" && !p.pod.spec?.initContainers?.length;
  return names.map((name) => {
    const read = goDecode({ name, ...parsed[name] }, volume ? "v1.Volume" : "v1.VolumeMount", added);
    if (read.ok) return read.value;
    const entry = list ? `entry ${name}` : `entry ${quote(name)}`;
    throw invalidAnnotation(key, raw, `${entry}, ${read.at}: ${read.error}`);
  });
}

/** sidecar.istio.io/userVolume's volumes (see userEntries). */
export function userVolumes(p: Params): Volume[] {
  // parse boundary: decoded as a corev1.Volume, its name a string.
  return userEntries(p, A.userVolume) as Volume[];
}

// --- Env --------------------------------------------------------------------------------------

const fieldRef = (name: string, fieldPath: string): EnvVar => shared({ name, valueFrom: { fieldRef: { fieldPath } } });
const resourceRef = (name: string, resource: string): EnvVar =>
  shared({ name, valueFrom: { resourceFieldRef: { resource, divisor: "1" } } });

export const POD_NAME_ENV = fieldRef("POD_NAME", "metadata.name");
export const POD_NAMESPACE_ENV = fieldRef("POD_NAMESPACE", "metadata.namespace");
export const INSTANCE_IP_ENV = fieldRef("INSTANCE_IP", "status.podIP");
export const POD_IDENTITY_ENV: readonly EnvVar[] = [
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  INSTANCE_IP_ENV,
  fieldRef("SERVICE_ACCOUNT", "spec.serviceAccountName"),
  fieldRef("HOST_IP", "status.hostIP"),
];
const CPU_LIMIT_ENV = resourceRef("ISTIO_CPU_LIMIT", "limits.cpu");
const MEM_LIMIT_ENV = resourceRef("GOMEMLIMIT", "limits.memory");
const NODE_NAME_ENV = fieldRef("ISTIO_META_NODE_NAME", "spec.nodeName");

/**
 * What stands between two ports in ISTIO_META_POD_PORTS: Istio's template writes each port on a
 * line of its own and the comma at the start of every line after the first (`{{if not $first}},{{end}}`).
 */
export const POD_PORTS_SEPARATOR = "\n    ,";

/** ISTIO_META_POD_PORTS: every declared port of every container, as Istio formats it. */
function podPortsEnv(p: Params): EnvVar {
  const items: string[] = [];
  for (const c of p.templateContainers) {
    for (const port of c.ports ?? []) {
      // As JSON.stringify writes {name, hostPort, containerPort, protocol, hostIP}, those set (json-text.ts).
      let o = port.name ? `{"name":${jsonString(port.name)},` : "{";
      if (port.hostPort) o += `"hostPort":${jsonScalar(port.hostPort)},`;
      o += `"containerPort":${jsonScalar(port.containerPort)}`;
      if (port.protocol) o += `,"protocol":${jsonString(port.protocol)}`;
      if (port.hostIP) o += `,"hostIP":${jsonString(port.hostIP)}`;
      items.push(`${o}}`);
    }
  }
  return {
    name: "ISTIO_META_POD_PORTS",
    value: items.length ? `[\n    ${items.join(POD_PORTS_SEPARATOR)}\n]` : "[\n]",
  };
}

/**
 * Where a template writes the CPU and memory limits among the env it starts with: the sidecar
 * template the memory limit after ISTIO_META_APP_CONTAINERS, the gateway template before it,
 * grpc-agent neither.
 */
export type LimitsEnv = "sidecar" | "gateway" | "none";

/**
 * Appends the env every agent starts with: the CA, the Pod's identity, its ProxyConfig, ports
 * and app containers, the cluster id and the node.
 */
export function pushLeadEnv(env: EnvVar[], p: Params, limits: LimitsEnv): void {
  for (const e of configParts(p.config).certEnv) env.push(e);
  for (const e of POD_IDENTITY_ENV) env.push(e);
  if (limits !== "none") env.push(CPU_LIMIT_ENV);
  env.push({ name: "PROXY_CONFIG", value: p.proxyConfig.json }, podPortsEnv(p));
  const apps: EnvVar = { name: "ISTIO_META_APP_CONTAINERS", value: p.appContainers.join(",") };
  if (limits === "sidecar") env.push(apps, MEM_LIMIT_ENV);
  else if (limits === "gateway") env.push(MEM_LIMIT_ENV, apps);
  else env.push(apps);
  env.push(configParts(p.config).clusterIdEnv, NODE_NAME_ENV);
}

/**
 * Appends the env every agent ends with: the network, the owner (as the template names it),
 * the bootstrap override's file when there is one, the mesh and the proxy metadata.
 */
export function pushTailEnv(
  env: EnvVar[],
  p: Params,
  owner: readonly EnvVar[],
  bootstrap: boolean,
  metadata: readonly EnvVar[],
): void {
  if (p.config.network) env.push({ name: "ISTIO_META_NETWORK", value: p.config.network });
  for (const e of owner) env.push(e);
  if (bootstrap) env.push(BOOTSTRAP_ENV);
  for (const e of configParts(p.config).meshEnv) env.push(e);
  for (const e of metadata) env.push(e);
}

/** ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER, as the sidecar template writes them. */
export function ownerEnv(p: Params): EnvVar[] {
  const w = p.workload;
  const out: EnvVar[] = [];
  const name = workloadName(p);
  if (name) out.push({ name: "ISTIO_META_WORKLOAD_NAME", value: name });
  if (w.apiVersion && w.name) {
    out.push({
      name: "ISTIO_META_OWNER",
      value: `kubernetes://apis/${w.apiVersion}/namespaces/${w.namespace || "default"}/${w.kind.toLowerCase()}s/${w.name}`,
    });
  }
  return out;
}

/**
 * proxyMetadataEnv per ProxyConfig overlay and config: a Pod without the ProxyConfig annotation
 * has its config's overlay, so its entries are built once per config and shared (frozen).
 */
const METADATA_ENV = new WeakMap<Params["proxyConfig"], { readonly config: Config; readonly env: EnvVar[] }>();

/** proxy.proxyMetadata with the Pod's ProxyConfig's (the mesh's, its annotation's over it) over it, by name. */
export function proxyMetadataEnv(p: Params): EnvVar[] {
  const hit = METADATA_ENV.get(p.proxyConfig);
  if (hit !== undefined && hit.config === p.config) return hit.env;
  const merged = { ...p.config.proxy.proxyMetadata, ...p.proxyConfig.proxyMetadata };
  const env = shared(
    Object.keys(merged)
      .sort()
      // Written raw between double quotes; one that breaks the template is refused, naming the Pod's ProxyConfig.
      .map((name) => ({
        name,
        value: readInQuotes(
          A.proxyConfig,
          p.annotations[A.proxyConfig] ?? "",
          merged[name] ?? "",
          `proxyMetadata ${quote(name)}: its value `,
        ),
      })),
  );
  METADATA_ENV.set(p.proxyConfig, { config: p.config, env });
  return env;
}

/** Sets env vars from the webhook path (`/inject/cluster/c1/net/n1`), replacing same-named ones. */
export function withPathEnv(env: EnvVar[], p: Params): EnvVar[] {
  const entries = Object.entries(p.pathEnv);
  if (entries.length === 0) return env;
  // Indexed: the env holds every proxyMetadata entry, which a Pod's annotation can make many.
  const at = new Map<string, number>();
  env.forEach((e, i) => {
    if (!at.has(e.name)) at.set(e.name, i);
  });
  for (const [name, value] of entries) {
    const i = at.get(name);
    if (i !== undefined) env[i] = { name, value };
    else {
      at.set(name, env.length);
      env.push({ name, value });
    }
  }
  return env;
}

// --- The proxy container ------------------------------------------------------------------

/** Envoy's Prometheus port, as the sidecar and gateway templates declare it. */
export const ENVOY_PROM_CONTAINER_PORT = {
  containerPort: PORT.envoyPrometheus,
  protocol: "TCP",
  name: "http-envoy-prom",
} as const;

const PROXY_ARGS = new ConfigMemo<string[]>();

export function proxyArgs(p: Params, kind: "sidecar" | "router"): string[] {
  const a = p.annotations;
  const logLevel = a[A.logLevel];
  const componentLogLevel = a[A.componentLogLevel];
  return PROXY_ARGS.get(p.config, [kind, logLevel, componentLogLevel, p.agentLogLevel], () => [
    "proxy",
    kind,
    "--domain",
    `$(POD_NAMESPACE).svc.${p.config.clusterDomain}`,
    `--proxyLogLevel=${logLevel ?? p.config.proxy.logLevel}`,
    `--proxyComponentLogLevel=${componentLogLevel ?? p.config.proxy.componentLogLevel}`,
    `--log_output_level=${p.agentLogLevel}`,
  ]);
}

/** The config's image pull policy, left out when empty. */
export function pullPolicy(p: Params): Pick<Container, "imagePullPolicy"> {
  return p.config.proxy.imagePullPolicy ? { imagePullPolicy: p.config.proxy.imagePullPolicy } : {};
}

function num(v: string | undefined, fallback: number): number {
  return v === undefined ? fallback : yamlSeconds(v);
}

/**
 * A readiness annotation's digits (validate.ts admits digits only) as the template's YAML reads
 * them, written unquoted: YAML 1.1 takes a leading 0 followed by octal digits as an octal
 * number ("010" is 8); any other, "08" or "0009" too, is read in decimal.
 */
function yamlSeconds(v: string): number {
  return /^0[0-7]+$/.test(v) ? parseInt(v, 8) : Number(v);
}

/**
 * Readiness (and startup) probes on the agent's readiness endpoint; none when the status port
 * is 0. `valuesOnly`: the gateway template's probe, always there and read from the config only
 * (it reads neither the status port nor the readiness annotations).
 */
export function proxyProbes(
  p: Params,
  port: number = PORT.readiness,
  startup = true,
  valuesOnly = false,
): Pick<Container, "startupProbe" | "readinessProbe"> {
  if (p.statusPort === "0" && !valuesOnly) return {};
  const annotation = (key: string): string | undefined =>
    valuesOnly ? undefined : probeSeconds(key, p.annotations[key]);
  const delay = annotation(A.readinessInitialDelay);
  const period = annotation(A.readinessPeriod);
  const threshold = annotation(A.readinessFailureThreshold);
  return PROXY_PROBES.get(p.config, [port, startup, delay, period, threshold], () =>
    buildProbes(p.config, port, startup, delay, period, threshold),
  );
}

const PROXY_PROBES = new ConfigMemo<Pick<Container, "startupProbe" | "readinessProbe">>();

/**
 * A readiness.status.sidecar.istio.io value as the template writes it into the probe's int32
 * field: Istio's validation admits a uint32 (validate.ts), and Istio then fails decoding the
 * Pod it rendered past 2147483647. Checked here, where a template writes it (the sidecar's and
 * grpc-agent's; the gateway's probe does not read it), so that a Pod Istio admits is admitted.
 */
function probeSeconds(key: string, value: string | undefined): string | undefined {
  if (value === undefined || yamlSeconds(value) <= INT32_MAX) return value;
  throw invalidAnnotation(
    key,
    value,
    `must be a whole number from 0 to ${INT32_MAX} (the readiness probe's int32 field)`,
  );
}

const INT32_MAX = 2 ** 31 - 1;

function buildProbes(
  config: Config,
  port: number,
  startup: boolean,
  delayAnnotation: string | undefined,
  periodAnnotation: string | undefined,
  thresholdAnnotation: string | undefined,
): Pick<Container, "startupProbe" | "readinessProbe"> {
  const cfg = config.proxy;
  const out: Pick<Container, "startupProbe" | "readinessProbe"> = {};
  if (startup && cfg.startupProbe.enabled) {
    out.startupProbe = {
      httpGet: { path: READINESS_PATH, port },
      periodSeconds: 1,
      timeoutSeconds: 3,
      failureThreshold: cfg.startupProbe.failureThreshold,
    };
  }
  const readiness: Probe = { httpGet: { path: READINESS_PATH, port } };
  const delay = num(delayAnnotation, cfg.readinessInitialDelaySeconds);
  if (delay) readiness.initialDelaySeconds = delay;
  // A 0 is left out, as Istio's rendering leaves it out (omitempty); the API server defaults it.
  const period = num(periodAnnotation, cfg.readinessPeriodSeconds);
  if (period) readiness.periodSeconds = period;
  readiness.timeoutSeconds = 3;
  const threshold = num(thresholdAnnotation, cfg.readinessFailureThreshold);
  if (threshold) readiness.failureThreshold = threshold;
  out.readinessProbe = readiness;
  return out;
}

// --- Pod metadata ---------------------------------------------------------------------------

/** istio.io/rev, and kubectl's default container (the first app's) unless the Pod names one. */
export function defaultContainerAnnotations(p: Params): Record<string, string> {
  const out: Record<string, string> = { [A.rev]: servedRevision(p.config.revision) };
  const first = p.appContainers[0];
  if (first !== undefined) {
    if (p.annotations[A.defaultLogsContainer] === undefined) out[A.defaultLogsContainer] = first;
    if (p.annotations[A.defaultContainer] === undefined) out[A.defaultContainer] = first;
  }
  return out;
}

/** service.istio.io/canonical-name and -revision, as Istio derives them (name cut to 63). */
export function canonicalLabels(p: Params): Record<string, string> {
  const name = (labelOr(p, L.canonicalName, "app.kubernetes.io/name", "app") ?? p.workload.name)
    .slice(0, 63)
    .replace(/^[-_.]+|[-_.]+$/g, "");
  return {
    [L.canonicalName]: name,
    [L.canonicalRevision]: labelOr(p, L.canonicalRevision, "app.kubernetes.io/version", "version") ?? "latest",
  };
}

// --- The parts that depend on the config only -------------------------------------------------

export interface ConfigParts {
  /** The proxy's resources, canonical; undefined when the config sets none. */
  readonly resources: Resources | undefined;
  readonly certEnv: readonly EnvVar[];
  readonly meshEnv: readonly EnvVar[];
  readonly imagePullSecrets: readonly { name: string }[];
  readonly clusterIdEnv: EnvVar;
}

const configPartsCache = new WeakMap<Config, ConfigParts>();

/** The parts of the templates that depend only on `config`, built once per config. */
export function configParts(config: Config): ConfigParts {
  const hit = configPartsCache.get(config);
  if (hit) return hit;
  const r = config.proxy.resources;
  const hasResources = Object.keys(r.requests ?? {}).length + Object.keys(r.limits ?? {}).length > 0;
  const meshId = config.meshId || config.trustDomain;
  const parts: ConfigParts = {
    resources: hasResources ? shared(canonicalResources(r)) : undefined,
    certEnv: [
      shared({ name: "PILOT_CERT_PROVIDER", value: "istiod" }),
      shared({ name: "CA_ADDR", value: config.caAddress }),
    ],
    meshEnv: [
      ...(meshId ? [shared({ name: "ISTIO_META_MESH_ID", value: meshId })] : []),
      ...(config.trustDomain ? [shared({ name: "TRUST_DOMAIN", value: config.trustDomain })] : []),
    ],
    imagePullSecrets: config.imagePullSecrets.map((name) => shared({ name })),
    clusterIdEnv: shared({ name: "ISTIO_META_CLUSTER_ID", value: config.clusterId || DEFAULT_CLUSTER_ID }),
  };
  configPartsCache.set(config, parts);
  return parts;
}
