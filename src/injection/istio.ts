// Istio's fixed facts, named once: the ports the sidecar listens on, the id its proxy runs as
// when the config does not say (and always in TPROXY mode), the revision a config that names
// none serves, and where the proxy finds its files. Every template, the interception, the
// Prometheus merge and the explanations read them from here.

/** The sidecar's well-known ports (Istio's pkg/config/constants and the injection template). */
export const PORT = {
  /** Envoy's admin interface. */
  admin: 15000,
  /** Where iptables redirects outbound traffic (istio-iptables -p). */
  outbound: 15001,
  /** Where iptables redirects inbound traffic (istio-iptables -z). */
  inbound: 15006,
  /** pilot-agent's status server, and the merged Prometheus metrics (the config's default). */
  agentStatus: 15020,
  /** Envoy's readiness endpoint, which the agent's probes ask. */
  readiness: 15021,
  /** Envoy's own Prometheus endpoint. */
  envoyPrometheus: 15090,
} as const;

/** The uid and gid Istio's templates run the proxy as: the default, and always in TPROXY mode. */
export const PROXY_ID = 1337;

/** The revision a config that names none serves (Istio's "default"). */
export const DEFAULT_REVISION = "default";

/** The revision a config serves: its own, else the default one. */
export function servedRevision(revision: string): string {
  return revision || DEFAULT_REVISION;
}

/** The agent's readiness endpoint on PORT.readiness. */
export const READINESS_PATH = "/healthz/ready";

/** The file a bootstrapOverride ConfigMap is mounted as. */
export const BOOTSTRAP_OVERRIDE_DIR = "/etc/istio/custom-bootstrap";
export const BOOTSTRAP_OVERRIDE_FILE = `${BOOTSTRAP_OVERRIDE_DIR}/custom_bootstrap.json`;

/** The cluster id a config that names none reports. */
export const DEFAULT_CLUSTER_ID = "Kubernetes";
