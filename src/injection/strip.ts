// Re-injection: a Pod that carries a `sidecar.istio.io/status` annotation was injected before
// (for instance a manifest copied from a running Pod). What that injection added is removed
// first, and what it rewrote is put back, so injecting twice gives the same Pod.
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import { parseOverrides } from "./overrides.js";
import { APP_PROBERS_ENV, restoreProbes } from "./probes.js";
import { PROMETHEUS_ENV, restorePrometheus } from "./prometheus.js";

interface Status {
  initContainers?: string[] | null;
  containers?: string[] | null;
  volumes?: string[] | null;
  imagePullSecrets?: string[] | null;
}

function parseStatus(raw: string | undefined): Status | undefined {
  if (raw === undefined) return undefined;
  try {
    const s = JSON.parse(raw) as unknown;
    return typeof s === "object" && s !== null && !Array.isArray(s) ? (s as Status) : undefined;
  } catch {
    return undefined;
  }
}

const INJECTED_NAMES = new Set<string>(Object.values(CONTAINER));

/** The Pod without its previous injection, or the Pod itself when it was never injected. */
export function stripInjected(pod: Pod, config: Config): Pod {
  const annotations = pod.metadata?.annotations;
  const status = parseStatus(annotations?.[A.status]);
  if (!status || !annotations || !pod.spec) return pod;
  const overrides = parseOverrides(annotations);
  const overridden = new Set([...(overrides?.containers ?? []), ...(overrides?.initContainers ?? [])].map((c) => c.name));
  const listed = new Set([...(status.containers ?? []), ...(status.initContainers ?? [])]);
  // Only our own containers, or app containers recorded in the overrides, are taken out.
  const removable = (c: Container): boolean => listed.has(c.name) && (INJECTED_NAMES.has(c.name) || overridden.has(c.name));
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  const oldProxy = all.find((c) => c.name === CONTAINER.proxy && listed.has(c.name));
  const env = (name: string): string | undefined => oldProxy?.env?.find((e) => e.name === name)?.value;

  const volumes = new Set(status.volumes ?? []);
  const secrets = new Set(status.imagePullSecrets ?? []);
  const spec = { ...pod.spec };
  spec.containers = restoreProbes(pod.spec.containers.filter((c) => !removable(c)), env(APP_PROBERS_ENV)) as Container[];
  if (pod.spec.initContainers) {
    spec.initContainers = restoreProbes(pod.spec.initContainers.filter((c) => !removable(c)), env(APP_PROBERS_ENV)) as Container[];
  }
  if (pod.spec.volumes) spec.volumes = pod.spec.volumes.filter((v) => !volumes.has(v.name));
  if (pod.spec.imagePullSecrets) spec.imagePullSecrets = pod.spec.imagePullSecrets.filter((s) => !secrets.has(s.name));

  const nextAnnotations = { ...annotations };
  delete nextAnnotations[A.status];
  restorePrometheus(nextAnnotations, env(PROMETHEUS_ENV), config);
  return { ...pod, metadata: { ...pod.metadata, annotations: nextAnnotations }, spec };
}
