// Istio's default `sidecar` template: the istio-proxy container (pilot-agent running Envoy),
// its env, args, probes, security context, mounts, and the Pod volumes and metadata it needs.
// The parts that depend only on the config are built once per config and shared.
import type { Config, Resources } from "../config/types.js";
import type { Container, EnvVar, JsonObject, Probe, Volume } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { cniAnnotations, initContainer, resolveInterception } from "./interception.js";
import { labelOr, workloadName, type Params } from "./params.js";
import { canonicalResources } from "./quantity.js";
import type { TemplateOutput } from "./template.js";

const fieldRef = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const resourceRef = (name: string, resource: string): EnvVar => ({
  name,
  valueFrom: { resourceFieldRef: { resource, divisor: "1" } },
});

export const POD_IDENTITY_ENV: readonly EnvVar[] = [
  fieldRef("POD_NAME", "metadata.name"),
  fieldRef("POD_NAMESPACE", "metadata.namespace"),
  fieldRef("INSTANCE_IP", "status.podIP"),
  fieldRef("SERVICE_ACCOUNT", "spec.serviceAccountName"),
  fieldRef("HOST_IP", "status.hostIP"),
];
export const CPU_LIMIT_ENV = resourceRef("ISTIO_CPU_LIMIT", "limits.cpu");
export const MEM_LIMIT_ENV = resourceRef("GOMEMLIMIT", "limits.memory");
export const NODE_NAME_ENV = fieldRef("ISTIO_META_NODE_NAME", "spec.nodeName");

export const READINESS_PATH = "/healthz/ready";
export const READINESS_PORT = 15021;

/** Per-config constants, computed once. */
export interface Compiled {
  readonly resources: Resources | undefined;
  readonly volumes: readonly Volume[];
  readonly mounts: readonly JsonObject[];
  readonly certEnv: readonly EnvVar[];
  readonly meshEnv: readonly EnvVar[];
  readonly imagePullSecrets: readonly { name: string }[];
}

const compiledCache = new WeakMap<Config, Compiled>();

export function compile(config: Config): Compiled {
  const hit = compiledCache.get(config);
  if (hit) return hit;
  const r = config.proxy.resources;
  const hasResources = Object.keys(r.requests ?? {}).length + Object.keys(r.limits ?? {}).length > 0;
  const compiled: Compiled = {
    resources: hasResources ? canonicalResources(r) : undefined,
    volumes: [
      { name: "workload-socket" },
      { name: "credential-socket" },
      { name: "workload-certs" },
      { name: "istio-envoy", emptyDir: { medium: "Memory" } },
      { name: "istio-data", emptyDir: {} },
      {
        name: "istio-podinfo",
        downwardAPI: {
          items: [
            { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
            { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
          ],
        },
      },
      {
        name: "istio-token",
        projected: { sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: "istio-ca" } }] },
      },
      { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
      { name: "istio-ca-crl", configMap: { name: "istio-ca-crl", optional: true } },
    ],
    mounts: [
      { name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" },
      { name: "credential-socket", mountPath: "/var/run/secrets/credential-uds" },
      { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" },
      { name: "istiod-ca-cert", mountPath: "/var/run/secrets/istio" },
      { name: "istio-ca-crl", mountPath: "/var/run/secrets/istio/crl" },
      { name: "istio-data", mountPath: "/var/lib/istio/data" },
      { name: "istio-envoy", mountPath: "/etc/istio/proxy" },
      { name: "istio-token", mountPath: "/var/run/secrets/tokens" },
      { name: "istio-podinfo", mountPath: "/etc/istio/pod" },
    ],
    certEnv: [
      { name: "PILOT_CERT_PROVIDER", value: "istiod" },
      { name: "CA_ADDR", value: config.caAddress },
    ],
    meshEnv: [
      ...((config.meshId || config.trustDomain) ? [{ name: "ISTIO_META_MESH_ID", value: config.meshId || config.trustDomain }] : []),
      ...(config.trustDomain ? [{ name: "TRUST_DOMAIN", value: config.trustDomain }] : []),
    ],
    imagePullSecrets: config.imagePullSecrets.map((name) => ({ name })),
  };
  compiledCache.set(config, compiled);
  return compiled;
}

/** ISTIO_META_POD_PORTS: every declared port of every container, as Istio formats it. */
export function podPortsEnv(p: Params): EnvVar {
  const items: string[] = [];
  for (const c of p.pod.spec?.containers ?? []) {
    for (const port of c.ports ?? []) {
      const o: Record<string, unknown> = {};
      if (port.name) o.name = port.name;
      if (port.hostPort) o.hostPort = port.hostPort;
      o.containerPort = port.containerPort;
      if (port.protocol) o.protocol = port.protocol;
      if (port.hostIP) o.hostIP = port.hostIP;
      items.push(JSON.stringify(o));
    }
  }
  return { name: "ISTIO_META_POD_PORTS", value: items.length ? `[\n    ${items.join(",\n    ")}\n]` : "[\n]" };
}

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

export function proxyMetadataEnv(p: Params): EnvVar[] {
  const merged = { ...p.config.proxy.proxyMetadata, ...p.proxyConfig.proxyMetadata };
  return Object.keys(merged)
    .sort()
    .map((name) => ({ name, value: merged[name] ?? "" }));
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

export function proxyArgs(p: Params, kind: "sidecar" | "router"): string[] {
  const a = p.annotations;
  return [
    "proxy",
    kind,
    "--domain",
    `$(POD_NAMESPACE).svc.${p.config.clusterDomain}`,
    `--proxyLogLevel=${a[A.logLevel] ?? p.config.proxy.logLevel}`,
    `--proxyComponentLogLevel=${a[A.componentLogLevel] ?? p.config.proxy.componentLogLevel}`,
    `--log_output_level=${p.agentLogLevel}`,
  ];
}

function num(v: string | undefined, fallback: number): number {
  return v === undefined ? fallback : Number(v);
}

/**
 * Readiness (and startup) probes on the agent's readiness endpoint; none when the status port
 * is 0. `valuesOnly`: the gateway template's probe, always there and read from the config only
 * (it reads neither the status port nor the readiness annotations).
 */
export function proxyProbes(p: Params, port = READINESS_PORT, startup = true, valuesOnly = false): Pick<Container, "startupProbe" | "readinessProbe"> {
  if (p.statusPort === "0" && !valuesOnly) return {};
  const annotation = (key: string): string | undefined => (valuesOnly ? undefined : p.annotations[key]);
  const cfg = p.config.proxy;
  const out: Pick<Container, "startupProbe" | "readinessProbe"> = {};
  if (startup && cfg.startupProbe.enabled) {
    out.startupProbe = { httpGet: { path: READINESS_PATH, port }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: cfg.startupProbe.failureThreshold };
  }
  const readiness: Probe = { httpGet: { path: READINESS_PATH, port } };
  const delay = num(annotation(A.readinessInitialDelay), cfg.readinessInitialDelaySeconds);
  if (delay) readiness.initialDelaySeconds = delay;
  // A 0 is left out, as Istio's rendering leaves it out (omitempty); the API server defaults it.
  const period = num(annotation(A.readinessPeriod), cfg.readinessPeriodSeconds);
  if (period) readiness.periodSeconds = period;
  readiness.timeoutSeconds = 3;
  const threshold = num(annotation(A.readinessFailureThreshold), cfg.readinessFailureThreshold);
  if (threshold) readiness.failureThreshold = threshold;
  out.readinessProbe = readiness;
  return out;
}

function proxySecurityContext(p: Params, traceLogging: boolean): JsonObject {
  const cfg = p.config.proxy;
  if (traceLogging) {
    return {
      allowPrivilegeEscalation: true,
      capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
      privileged: true,
      readOnlyRootFilesystem: true,
      runAsGroup: cfg.gid,
      runAsNonRoot: false,
      runAsUser: 0,
    };
  }
  const add = [...(p.tproxy ? ["NET_ADMIN"] : []), ...(p.capNetBindService ? ["NET_BIND_SERVICE"] : [])];
  const root = add.length > 0;
  return {
    allowPrivilegeEscalation: cfg.privileged,
    capabilities: add.length ? { add, drop: ["ALL"] } : { drop: ["ALL"] },
    privileged: cfg.privileged,
    readOnlyRootFilesystem: true,
    runAsGroup: root ? 1337 : cfg.gid,
    runAsNonRoot: !root,
    runAsUser: root ? 0 : cfg.uid,
  };
}

function lifecycle(p: Params): Container["lifecycle"] | undefined {
  if (p.hold) return { postStart: { exec: { command: ["pilot-agent", "wait"] } } };
  if (p.native) {
    return { preStop: { exec: { command: ["pilot-agent", "request", `--debug-port=${p.statusPort}`, "POST", "drain"] } } };
  }
  return undefined;
}

/**
 * The volumes (or mounts) of a JSON annotation, checked by validate.ts to be null, a map of name
 * to object, or a list of objects (named by index, in order, as Istio's template ranges).
 */
function userEntries(p: Params, key: string): JsonObject[] {
  const raw = p.annotations[key];
  if (raw === undefined) return [];
  const parsed = JSON.parse(raw) as Record<string, JsonObject> | null;
  if (parsed === null) return [];
  const names = Array.isArray(parsed) ? Object.keys(parsed) : Object.keys(parsed).sort();
  return names.map((name) => ({ name, ...parsed[name] }));
}

export function sidecarTemplate(p: Params): TemplateOutput {
  const compiled = compile(p.config);
  const a = p.annotations;
  const interception = resolveInterception(p);
  const metaEnv = proxyMetadataEnv(p);
  // The two proxyMetadata entries the template reads (the names are unique, from a map's keys).
  const metaTrue = (name: string): boolean => metaEnv.find((e) => e.name === name)?.value === "true";
  const bootstrap = a[A.bootstrapOverride];
  const network = p.config.network;

  // Pushed one by one: no intermediate arrays for the optional entries.
  const env: EnvVar[] = compiled.certEnv.concat(POD_IDENTITY_ENV);
  env.push(
    CPU_LIMIT_ENV,
    { name: "PROXY_CONFIG", value: p.proxyConfig.json },
    podPortsEnv(p),
    { name: "ISTIO_META_APP_CONTAINERS", value: p.appContainers.join(",") },
    MEM_LIMIT_ENV,
    { name: "ISTIO_META_CLUSTER_ID", value: p.config.clusterId || "Kubernetes" },
    NODE_NAME_ENV,
    { name: "ISTIO_META_INTERCEPTION_MODE", value: p.mode },
  );
  if (network) env.push({ name: "ISTIO_META_NETWORK", value: network });
  for (const e of ownerEnv(p)) env.push(e);
  if (bootstrap !== undefined) env.push({ name: "ISTIO_BOOTSTRAP_OVERRIDE", value: "/etc/istio/custom-bootstrap/custom_bootstrap.json" });
  for (const e of compiled.meshEnv) env.push(e);
  for (const e of metaEnv) env.push(e);

  const mounts: JsonObject[] = [...compiled.mounts];
  const volumes: Volume[] = [...compiled.volumes];
  if (bootstrap !== undefined) {
    mounts.splice(6, 0, { name: "custom-bootstrap-volume", mountPath: "/etc/istio/custom-bootstrap" });
    volumes.splice(3, 0, { name: "custom-bootstrap-volume", configMap: { name: bootstrap } });
  }
  mounts.push(...userEntries(p, A.userVolumeMount));
  volumes.push(...(userEntries(p, A.userVolume) as Volume[]));

  const proxy: Container = {
    name: CONTAINER.proxy,
    image: p.proxyImage,
    ...(p.native ? { restartPolicy: "Always" } : {}),
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args: proxyArgs(p, "sidecar"),
  };
  const lc = lifecycle(p);
  if (lc) proxy.lifecycle = lc;
  proxy.env = withPathEnv(env, p);
  if (p.config.proxy.imagePullPolicy) proxy.imagePullPolicy = p.config.proxy.imagePullPolicy;
  Object.assign(proxy, proxyProbes(p));
  proxy.securityContext = proxySecurityContext(p, metaTrue("IPTABLES_TRACE_LOGGING"));
  if (p.resources) proxy.resources = p.resources as JsonObject;
  proxy.volumeMounts = mounts;

  const init = initContainer(p, interception, metaEnv);
  const annotations: Record<string, string> = { [A.rev]: p.config.revision || "default" };
  const first = p.appContainers[0];
  if (first !== undefined) {
    if (a[A.defaultLogsContainer] === undefined) annotations[A.defaultLogsContainer] = first;
    if (a[A.defaultContainer] === undefined) annotations[A.defaultContainer] = first;
  }
  Object.assign(annotations, cniAnnotations(p, interception));

  const labels: Record<string, string> = { [L.tlsMode]: p.labels[L.tlsMode] || "istio" };
  if (metaTrue("ISTIO_META_ENABLE_HBONE")) labels[L.tunnel] = p.labels[L.tunnel] || "http";
  Object.assign(labels, canonicalLabels(p));

  return {
    labels,
    annotations,
    initContainers: init ? (p.native ? [init, proxy] : [init]) : p.native ? [proxy] : [],
    containers: p.native ? [] : [proxy],
    volumes,
    imagePullSecrets: compiled.imagePullSecrets,
  };
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
