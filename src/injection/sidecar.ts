// Istio's default `sidecar` template: the istio-proxy container (pilot-agent running Envoy),
// its env, args, probes, security context, mounts, and the Pod volumes and metadata it needs,
// composed of the parts every template shares (template-parts.ts).
import type { Container, EnvVar, JsonObject, Volume } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { cniAnnotations, initContainer, resolveInterception } from "./interception.js";
import { PROXY_ID } from "./istio.js";
import type { Params } from "./params.js";
import { own } from "./own.js";
import { invalidAnnotation } from "./validate.js";
import { unprintable } from "./yaml-quoted.js";
import {
  BOOTSTRAP_MOUNT,
  BOOTSTRAP_MOUNT_AFTER,
  BOOTSTRAP_VOLUME_AFTER,
  bootstrapVolume,
  canonicalLabels,
  ConfigMemo,
  configParts,
  defaultContainerAnnotations,
  ENVOY_PROM_CONTAINER_PORT,
  insertedAfter,
  mounts,
  ownerEnv,
  proxyArgs,
  proxyMetadataEnv,
  proxyProbes,
  pushLeadEnv,
  pushTailEnv,
  userEntries,
  userVolumes,
  volumes,
  shared,
  withPathEnv,
} from "./template-parts.js";
import type { TemplateOutput } from "./template.js";

const SIDECAR_VOLUMES: readonly Volume[] = shared(
  volumes([
    "workload-socket",
    "credential-socket",
    "workload-certs",
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
    "istio-ca-crl",
  ]),
);
const SIDECAR_MOUNTS: JsonObject[] = shared(
  mounts([
    "workload-socket",
    "credential-socket",
    "workload-certs",
    "istiod-ca-cert",
    "istio-ca-crl",
    "istio-data",
    "istio-envoy",
    "istio-token",
    "istio-podinfo",
  ]),
);

const SECURITY_CONTEXTS = new ConfigMemo<JsonObject>(8);

function proxySecurityContext(p: Params, traceLogging: boolean): JsonObject {
  return SECURITY_CONTEXTS.get(p.config, [traceLogging, p.tproxy, p.capNetBindService], () =>
    buildSecurityContext(p, traceLogging),
  );
}

function buildSecurityContext(p: Params, traceLogging: boolean): JsonObject {
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
    runAsGroup: root ? PROXY_ID : cfg.gid,
    runAsNonRoot: !root,
    runAsUser: root ? 0 : cfg.uid,
  };
}

const HOLD_LIFECYCLE: NonNullable<Container["lifecycle"]> = shared({
  postStart: { exec: { command: ["pilot-agent", "wait"] } },
});
const DRAIN_LIFECYCLE = new ConfigMemo<NonNullable<Container["lifecycle"]>>();

function lifecycle(p: Params): Container["lifecycle"] | undefined {
  if (p.hold) return HOLD_LIFECYCLE;
  if (p.native) {
    return DRAIN_LIFECYCLE.get(p.config, [p.statusPort], () => drainLifecycle(p.statusPort));
  }
  return undefined;
}

/**
 * The native sidecar's drain on the status port, written unquoted as Istio's template writes
 * it: a YAML plain scalar, whose trailing blanks and (YAML 1.1) line breaks are dropped, and in
 * which a character YAML does not allow (a vertical tab, which the port's validation trims)
 * fails the template.
 */
function drainLifecycle(statusPort: string): NonNullable<Container["lifecycle"]> {
  const why = unprintable(statusPort);
  if (why !== undefined) throw invalidAnnotation(A.statusPort, statusPort, why);
  return {
    preStop: {
      exec: {
        command: [
          "pilot-agent",
          "request",
          `--debug-port=${statusPort.replace(/[ \t\r\n\u0085\u2028\u2029]+$/, "")}`,
          "POST",
          "drain",
        ],
      },
    },
  };
}

/** The proxy's ports, and the interception mode's env, the same for every Pod. */
const PROXY_PORTS: NonNullable<Container["ports"]> = shared([{ ...ENVOY_PROM_CONTAINER_PORT }]);
const MODE_ENV = new Map<string, EnvVar>();
function modeEnv(mode: string): EnvVar {
  let e = MODE_ENV.get(mode);
  if (e === undefined) {
    e = shared({ name: "ISTIO_META_INTERCEPTION_MODE", value: mode });
    MODE_ENV.set(mode, e);
  }
  return e;
}

export function sidecarTemplate(p: Params): TemplateOutput {
  const interception = resolveInterception(p);
  const metaEnv = proxyMetadataEnv(p);
  // The two proxyMetadata entries the template compares with "true", as written (the env holds
  // what its YAML reads of them).
  const metaTrue = (name: string): boolean =>
    (own(p.proxyConfig.proxyMetadata, name) ?? own(p.config.proxy.proxyMetadata, name)) === "true";
  const bootstrap = p.annotations[A.bootstrapOverride];

  // Pushed one by one: no intermediate arrays for the optional entries.
  const env: EnvVar[] = [];
  pushLeadEnv(env, p, "sidecar");
  env.push(modeEnv(p.mode));
  pushTailEnv(env, p, ownerEnv(p), bootstrap !== undefined, metaEnv);

  // The shared (frozen) lists themselves unless the Pod adds to them: the later steps copy a list they change.
  let mountList: JsonObject[] = SIDECAR_MOUNTS;
  let volumeList: readonly Volume[] = SIDECAR_VOLUMES;
  if (bootstrap !== undefined) {
    mountList = insertedAfter(mountList, BOOTSTRAP_MOUNT_AFTER, BOOTSTRAP_MOUNT);
    volumeList = insertedAfter(volumeList, BOOTSTRAP_VOLUME_AFTER, bootstrapVolume(bootstrap));
  }
  if (p.annotations[A.userVolumeMount] !== undefined) {
    mountList = [...mountList, ...userEntries(p, A.userVolumeMount, p.native ? "initContainers" : "containers")];
  }
  if (p.annotations[A.userVolume] !== undefined) volumeList = [...volumeList, ...userVolumes(p)];

  // Field by field, in the template's order: no object made and spread for an optional one.
  const proxy: Container = { name: CONTAINER.proxy, image: p.proxyImage };
  if (p.native) proxy.restartPolicy = "Always";
  proxy.ports = PROXY_PORTS;
  proxy.args = proxyArgs(p, "sidecar");
  const lc = lifecycle(p);
  if (lc) proxy.lifecycle = lc;
  proxy.env = withPathEnv(env, p);
  const pull = p.config.proxy.imagePullPolicy;
  if (pull) proxy.imagePullPolicy = pull;
  Object.assign(proxy, proxyProbes(p));
  proxy.securityContext = proxySecurityContext(p, metaTrue("IPTABLES_TRACE_LOGGING"));
  if (p.resources) proxy.resources = p.resources;
  proxy.volumeMounts = mountList;

  const init = initContainer(p, interception, metaEnv);
  const annotations = defaultContainerAnnotations(p);
  Object.assign(annotations, cniAnnotations(p, interception));

  const labels: Record<string, string> = { [L.tlsMode]: p.labels[L.tlsMode] || "istio" };
  if (metaTrue("ISTIO_META_ENABLE_HBONE")) labels[L.tunnel] = p.labels[L.tunnel] || "http";
  Object.assign(labels, canonicalLabels(p));

  return {
    labels,
    annotations,
    initContainers: init ? (p.native ? [init, proxy] : [init]) : p.native ? [proxy] : [],
    containers: p.native ? [] : [proxy],
    volumes: volumeList,
    imagePullSecrets: configParts(p.config).imagePullSecrets,
  };
}
