// Re-injection: a Pod that carries a `sidecar.istio.io/status` annotation was injected before
// (for instance a manifest copied from a running Pod). The containers that injection added are
// removed first, and what it rewrote is put back, so injecting twice gives the same Pod.
//
// Only containers go (Istio's stripPod removes the status's containers, nothing else). Volumes
// and pull secrets stay, and the templates' own are merged over them by name (placement.ts),
// as Istio merges its templates over the Pod: a volume the Pod gives its own source (a SPIFFE
// CSI driver for `workload-socket`) keeps it on every injection, not only the first, and an
// older injection's volume the app still mounts (`istio-certs`) stays.
import type { Config } from "../config/types.js";
import type { Container } from "../kube/types.js";
import { A, CONTAINER, GRPC_BOOTSTRAP_INIT } from "./annotations.js";
import { parseOverrides } from "./overrides.js";
import { copyOwn, jsonMap, own } from "./own.js";
import { APP_PROBERS_ENV, restoreProbes } from "./probes.js";
import { mergedPort, PROMETHEUS_ENV, restorePrometheus } from "./prometheus.js";
import type { CheckedPod } from "./shape.js";

interface Status {
  initContainers?: string[] | null;
  containers?: string[] | null;
  volumes?: string[] | null;
  imagePullSecrets?: string[] | null;
}

const STATUS_LISTS = ["initContainers", "containers", "volumes", "imagePullSecrets"] as const;

/** The status a previous injection wrote; undefined when there is none, or it is not what an injector writes. */
function parseStatus(raw: string | undefined): Status | undefined {
  const s = raw === undefined ? undefined : jsonMap(raw);
  if (!s) return undefined;
  const status: Status = {};
  for (const key of STATUS_LISTS) {
    const names = own(s, key);
    if (names === undefined || names === null) continue;
    if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) return undefined;
    status[key] = names;
  }
  return status;
}

/** The containers an injection adds whole (an app container a template writes too, it amends). */
const INJECTED_NAMES = new Set<string>([...Object.values(CONTAINER), GRPC_BOOTSTRAP_INIT]);

/**
 * The Pod without its previous injection, or the Pod itself when it was never injected. With
 * `allListed`, the volumes and pull secrets the status names go too: the Pod as its workload
 * would create it again, before any injection (policy/verdict.ts), not the input of the next.
 */
export function stripInjected(pod: CheckedPod, config: Config, allListed = false): CheckedPod {
  const annotations = pod.metadata?.annotations;
  const status = parseStatus(own(annotations, A.status));
  if (!status || !annotations) return pod;
  const overrides = parseOverrides(annotations);
  const recorded = new Map(
    [...(overrides?.containers ?? []), ...(overrides?.initContainers ?? [])].map((c) => [c.name, c]),
  );
  // Each list loses the names the status lists for it, as Istio's stripPod removes them: a
  // container of a name listed for the other list is not the injection's (the Pod's own
  // istio-proxy among its containers where the status names the native sidecar's).
  const listedMain = new Set(status.containers ?? []);
  const listedInit = new Set(status.initContainers ?? []);
  const isOldProxy = (listed: ReadonlySet<string>) => (c: Container) =>
    c.name === CONTAINER.proxy && listed.has(c.name);
  const oldProxy =
    (pod.spec.initContainers ?? []).find(isOldProxy(listedInit)) ?? pod.spec.containers.find(isOldProxy(listedMain));
  // The last of a name, as the container sees it: a Pod's own istio-proxy may set
  // ISTIO_KUBE_APP_PROBERS itself, and the injection appended its own after it.
  const env = (name: string): string | undefined => oldProxy?.env?.findLast((e) => e.name === name)?.value;
  // What the injection added wholly goes; an app container it only amended (recorded in the
  // overrides) goes back to its recorded original, in place, and stays as it is where none is
  // recorded (the overrides annotation removed, or a status naming the app's container): it is
  // the app's, as Istio keeps it (it merges the templates over the Pod as it came).
  const undo = (list: readonly Container[], listed: ReadonlySet<string>): Container[] =>
    list.flatMap((c) => {
      if (!listed.has(c.name)) return [c];
      const original = recorded.get(c.name);
      if (INJECTED_NAMES.has(c.name)) return [];
      return [original ?? c];
    });

  const spec = copyOwn(pod.spec);
  // The previous injection's agent port: its PROXY_CONFIG's statusPort, else the config's.
  const agentPort = mergedPort(env("PROXY_CONFIG"), config.proxy.statusPort);
  const probers = env(APP_PROBERS_ENV);
  spec.containers = restoreProbes(undo(pod.spec.containers, listedMain), probers, agentPort);
  if (pod.spec.initContainers)
    spec.initContainers = restoreProbes(undo(pod.spec.initContainers, listedInit), probers, agentPort);
  if (allListed) {
    const volumes = new Set(status.volumes ?? []);
    const secrets = new Set(status.imagePullSecrets ?? []);
    if (pod.spec.volumes) spec.volumes = pod.spec.volumes.filter((v) => !volumes.has(v.name));
    if (pod.spec.imagePullSecrets)
      spec.imagePullSecrets = pod.spec.imagePullSecrets.filter((s) => s.name === undefined || !secrets.has(s.name));
  }

  // The status annotation stays (in place) until the new injection rewrites it.
  const nextAnnotations = { ...annotations };
  restorePrometheus(nextAnnotations, env(PROMETHEUS_ENV), agentPort);
  return { ...pod, metadata: { ...pod.metadata, annotations: nextAnnotations }, spec };
}
