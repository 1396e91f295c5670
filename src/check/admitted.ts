// What the API server's own admission adds to a stored Pod's injected containers after the
// injector answered, so that the stale-sidecar comparison (stale.ts) does not take it for a
// change of config: a Pod injected a moment ago must compare equal to what the injector makes
// now. A mutating webhook that changes a Pod makes the API server run its built-in mutating
// admission plugins again (reinvocation, Kubernetes 1.15 and later), so they reach the
// containers the webhook added, after it answered. Each addition is recognised by the
// evidence it leaves in the stored Pod, never by a name alone:
// - ServiceAccount (on by default): mounts the Pod's API token volume read-only at
//   /var/run/secrets/kubernetes.io/serviceaccount into every init and regular container that
//   mounts nothing at that path (ephemeral containers are added later, through a subresource it
//   does not mutate). The volume is a projected one with a serviceAccountToken source, named
//   kube-api-access-<5 random characters> (or an existing volume of that prefix, reused). A
//   stored mount at that path, read-only, of a projected ServiceAccount token volume, where the
//   injector's container mounts nothing at that path now, is the plugin's and is left out. One
//   where the injector mounts something there now is compared: the plugin would leave it alone.
// - LimitRanger (on by default): in a namespace with a LimitRange of type Container, gives each
//   container the default limit and request of each resource it sets none of, and says which in
//   the Pod's kubernetes.io/limit-ranger annotation ("LimitRanger plugin set: cpu, memory
//   request for container istio-proxy; ephemeral-storage limit for init container istio-init").
//   Such a value is the namespace's, not the sidecar's: a restart gets it again, from the same
//   LimitRange, so it is left out where the injector gives no value of that resource now. Where
//   it does, the value is compared: a restart would get the injector's. A value the annotation
//   does not name stays compared (the annotation is the only record of what LimitRanger set;
//   with two LimitRanges that both set some, only the last one's are named).
// - AlwaysPullImages (off by default; the CIS Kubernetes Benchmark asks for it): sets
//   imagePullPolicy Always on every container. A stored Always on an injected container, in a
//   Pod whose every init and regular container pulls Always, is taken as the plugin's: the
//   injector's policy now is compared instead. Where an app container pulls otherwise the
//   plugin is not on, and the sidecar's Always is compared. (Ephemeral containers are left out
//   of that test: the plugin does not reach those `kubectl debug` adds later.)
//
// Pure: no I/O.

import type { Container, Volume } from "../kube/types.js";
import { isMap, own } from "../injection/own.js";
import type { CheckedPod } from "../injection/shape.js";

/** Where the ServiceAccount admission plugin mounts the API token (DefaultAPITokenMountPath). */
export const TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A projected volume with a serviceAccountToken source: what the plugin mounts (TokenVolumeSource). */
function isTokenVolume(volume: Volume): boolean {
  const projected = volume.projected;
  if (!isMap(projected) || !Array.isArray(projected.sources)) return false;
  return projected.sources.some((s) => isMap(s) && isMap(s.serviceAccountToken));
}

/** The names of the stored Pod's volumes the ServiceAccount plugin's mount can be of. */
function tokenVolumes(pod: CheckedPod): ReadonlySet<string> {
  return new Set((pod.spec.volumes ?? []).filter(isTokenVolume).map((v) => v.name));
}

/** The annotation LimitRanger writes on a Pod it gave default resources to. */
export const LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger";

type ResourceList = "requests" | "limits";

/** One part of LimitRanger's annotation: `cpu, memory request for container istio-proxy`. */
const LIMIT_RANGER_PART = /^(\S.*) (request|limit) for (?:init )?container (\S+)$/;

/** What LimitRanger set, by container name (unique in a Pod), from its annotation on the stored Pod. */
function limitRangerSet(pod: CheckedPod): ReadonlyMap<string, Readonly<Record<ResourceList, ReadonlySet<string>>>> {
  const set = new Map<string, Record<ResourceList, Set<string>>>();
  const value = own(pod.metadata?.annotations, LIMIT_RANGER_ANNOTATION);
  const prefix = "LimitRanger plugin set: ";
  if (typeof value !== "string" || !value.startsWith(prefix)) return set;
  for (const part of value.slice(prefix.length).split("; ")) {
    const m = LIMIT_RANGER_PART.exec(part);
    if (!m) continue;
    const [, keys = "", kind, name = ""] = m;
    const entry = set.get(name) ?? { requests: new Set<string>(), limits: new Set<string>() };
    set.set(name, entry);
    for (const key of keys.split(", ")) entry[kind === "request" ? "requests" : "limits"].add(key);
  }
  return set;
}

/**
 * Whether the injector's container gives a value of `key` in `list` now: a limit gives the
 * request too (the API server's defaulting, which comes before LimitRanger).
 */
function gives(now: Container, list: ResourceList, key: string): boolean {
  const has = (l: ResourceList): boolean => {
    const values = now.resources?.[l];
    return isMap(values) && Object.hasOwn(values, key);
  };
  return has("limits") || (list === "requests" && has("requests"));
}

/**
 * What the stored Pod's admission added after the injector answered, taken out of one of its
 * injected containers (`stored`), given the container the injector makes now (`now`).
 */
export type Unadmit = (stored: Container, now: Container) => Container;

/** The additions admission made to `pod` (the stored Pod), to take out of each injected container. */
export function admittedBy(pod: CheckedPod): Unadmit {
  const tokens = tokenVolumes(pod);
  const limitRanger = limitRangerSet(pod);
  const withoutToken = (stored: Container, now: Container): Container => {
    if (tokens.size === 0 || now.volumeMounts?.some((m) => m.mountPath === TOKEN_MOUNT_PATH)) return stored;
    const mounts = stored.volumeMounts?.filter(
      (m) => !(m.mountPath === TOKEN_MOUNT_PATH && m.readOnly === true && tokens.has(String(m.name))),
    );
    return mounts === undefined || mounts.length === stored.volumeMounts?.length
      ? stored
      : { ...stored, volumeMounts: mounts };
  };
  const withoutDefaults = (stored: Container, now: Container): Container => {
    const set = limitRanger.get(stored.name);
    if (set === undefined || stored.resources === undefined) return stored;
    const resources = { ...stored.resources };
    for (const list of ["requests", "limits"] as const) {
      const values = resources[list];
      if (!isMap(values)) continue;
      resources[list] = Object.fromEntries(
        Object.entries(values).filter(([key]) => !set[list].has(key) || gives(now, list, key)),
      );
    }
    return { ...stored, resources };
  };
  // Whether AlwaysPullImages admitted the Pod: its every init and regular container pulls Always.
  const alwaysPulled = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].every(
    (c) => c.imagePullPolicy === "Always",
  );
  const withoutPull = (stored: Container, now: Container): Container => {
    if (!alwaysPulled || stored.imagePullPolicy !== "Always") return stored;
    const { imagePullPolicy: _, ...rest } = stored;
    return now.imagePullPolicy === undefined ? rest : { ...rest, imagePullPolicy: now.imagePullPolicy };
  };
  return (stored, now) => withoutPull(withoutDefaults(withoutToken(stored, now), now), now);
}
