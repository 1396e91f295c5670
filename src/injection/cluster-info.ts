// The cluster and network a proxy reports, as Istio settles them after the templates ran
// (overwriteClusterInfo, applyMetadata):
// - the cluster is the configured one (unless it is the default, `Kubernetes`, which Istio's
//   values leave empty for the template to default), or the webhook path's; the
//   network is the configured one, or the webhook path's, or — above both — the Pod's
//   `topology.istio.io/network` label;
// - these, with every other variable the webhook path sets, are written on one istio-proxy
//   only: the first in `containers`, else the first in `initContainers` (a Pod given both the
//   sidecar and the grpc-agent template has one in each list). Each is taken out of that
//   container's env and appended again, in name order;
// - a network so found becomes the Pod's `topology.istio.io/network` label.
// The templates write the configured cluster and network only.
import type { Container, EnvVar } from "../kube/types.js";
import { CONTAINER, L } from "./annotations.js";
import { copyOwn } from "./own.js";
import type { Params } from "./params.js";

export const CLUSTER_ENV = "ISTIO_META_CLUSTER_ID";
export const NETWORK_ENV = "ISTIO_META_NETWORK";
const DEFAULT_CLUSTER = "Kubernetes";

/** The variables written on the proxy after the templates ran, by name. */
export function clusterEnv(p: Params): Record<string, string> {
  const out: Record<string, string> = { ...p.pathEnv };
  const cluster = p.pathEnv[CLUSTER_ENV] || (p.config.clusterId === DEFAULT_CLUSTER ? "" : p.config.clusterId);
  const network = p.labels[L.network] ?? (p.pathEnv[NETWORK_ENV] || p.config.network);
  if (cluster) out[CLUSTER_ENV] = cluster;
  if (network) out[NETWORK_ENV] = network;
  return out;
}

function rewrite(c: Container, vars: Readonly<Record<string, string>>): Container {
  const kept = (c.env ?? []).filter((e) => !Object.hasOwn(vars, e.name));
  const added: EnvVar[] = Object.entries(vars)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value }));
  const next = copyOwn(c);
  next.env = [...kept, ...added];
  return next;
}

/** The Pod's containers with `vars` written on the one istio-proxy Istio picks. */
export function writeClusterEnv(
  initContainers: Container[],
  containers: Container[],
  vars: Readonly<Record<string, string>>,
): { initContainers: Container[]; containers: Container[] } {
  // Nothing to write (the common case): the lists as given, not copied.
  if (Object.keys(vars).length === 0) return { initContainers, containers };
  const onProxy = (list: Container[]): Container[] | undefined => {
    const i = list.findIndex((c) => c.name === CONTAINER.proxy);
    const proxy = list[i];
    return proxy === undefined ? undefined : list.with(i, rewrite(proxy, vars));
  };
  const main = onProxy(containers);
  if (main) return { initContainers: [...initContainers], containers: main };
  return { initContainers: onProxy(initContainers) ?? [...initContainers], containers: [...containers] };
}
