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
//
// Pure: no I/O.

import type { Container, Volume } from "../kube/types.js";
import type { CheckedPod } from "../injection/shape.js";

/** Where the ServiceAccount admission plugin mounts the API token (DefaultAPITokenMountPath). */
export const TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A projected volume with a serviceAccountToken source: what the plugin mounts (TokenVolumeSource). */
function isTokenVolume(volume: Volume): boolean {
  const projected = volume.projected;
  if (!isRecord(projected) || !Array.isArray(projected.sources)) return false;
  return projected.sources.some((s) => isRecord(s) && isRecord(s.serviceAccountToken));
}

/** The names of the stored Pod's volumes the ServiceAccount plugin's mount can be of. */
function tokenVolumes(pod: CheckedPod): ReadonlySet<string> {
  return new Set((pod.spec.volumes ?? []).filter(isTokenVolume).map((v) => v.name));
}

/**
 * What the stored Pod's admission added after the injector answered, taken out of one of its
 * injected containers (`stored`), given the container the injector makes now (`now`).
 */
export type Unadmit = (stored: Container, now: Container) => Container;

/** The additions admission made to `pod` (the stored Pod), to take out of each injected container. */
export function admittedBy(pod: CheckedPod): Unadmit {
  const tokens = tokenVolumes(pod);
  return (stored, now) => {
    if (tokens.size === 0 || now.volumeMounts?.some((m) => m.mountPath === TOKEN_MOUNT_PATH)) return stored;
    const mounts = stored.volumeMounts?.filter(
      (m) => !(m.mountPath === TOKEN_MOUNT_PATH && m.readOnly === true && tokens.has(String(m.name))),
    );
    return mounts === undefined || mounts.length === stored.volumeMounts?.length
      ? stored
      : { ...stored, volumeMounts: mounts };
  };
}
