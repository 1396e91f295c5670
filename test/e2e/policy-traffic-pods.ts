// Pods made to exercise the interception arguments the policy takes from the Pod's traffic
// annotations (src/policy/traffic.ts), for the proof (policy-proof.test.ts), under the default
// config: each annotation alone, the excluded inbound ports with and without the agent's status
// port and empty, the outbound ports the config leaves out (-q, -o added), the interfaces (-k
// from either annotation, reroute-virtual-interfaces winning; -c), all the port ones at once with
// the agent's log level (which sets another of istio-init's arguments) and a resource, and four
// Pods outside the domain: an IPv6 range, ports and interfaces with spaces (admitted by the
// webhook), and a range the webhook refuses. And the annotations that say what the config says
// (src/policy/no-op-annotations.ts): the config's interception mode, the probe rewrite on a
// Pod whose probes are rewritten ("true"), and classic sidecars (as the proof decides them); a
// mode other than the config's, native sidecars, and the rewrite spelled "1" (which the webhook
// reads as "true") are outside. And the
// proxy's readiness probe (src/policy/readiness.ts): each field alone, all three with a 0 (the
// field left out, the API server's default stored), and a value with a leading 0 (outside).
import { stringify } from "yaml";
import type { Pod } from "../../src/kube/types.js";

const NS = "policy-traffic";
const T = "traffic.sidecar.istio.io/";
const R = "readiness.status.sidecar.istio.io/";

const pod = (name: string, annotations: Record<string, string>): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: NS, labels: { app: name }, annotations },
  spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080 }] }] },
});

/** A Pod with an httpGet and a tcpSocket probe, saying whether its probes are rewritten. */
function probed(name: string, rewrite: string): Pod {
  const p = pod(name, { "sidecar.istio.io/rewriteAppHTTPProbers": rewrite });
  const [app] = p.spec?.containers ?? [];
  if (!app) return p;
  return {
    ...p,
    spec: {
      containers: [
        {
          ...app,
          readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
          livenessProbe: { tcpSocket: { port: 8080 } },
        },
      ],
    },
  };
}

const PODS: Record<string, Pod> = {
  "include-ranges": pod("include-ranges", { [`${T}includeOutboundIPRanges`]: "10.96.0.0/12,172.16.0.0/12" }),
  "exclude-ranges": pod("exclude-ranges", { [`${T}excludeOutboundIPRanges`]: "169.254.169.254/32" }),
  "include-inbound": pod("include-inbound", { [`${T}includeInboundPorts`]: "80,8080" }),
  "exclude-inbound": pod("exclude-inbound", { [`${T}excludeInboundPorts`]: "8080" }),
  "exclude-inbound-status": pod("exclude-inbound-status", { [`${T}excludeInboundPorts`]: "15020,9090" }),
  "exclude-inbound-empty": pod("exclude-inbound-empty", { [`${T}excludeInboundPorts`]: "" }),
  "outbound-ports": pod("outbound-ports", {
    [`${T}includeOutboundPorts`]: "80,443",
    [`${T}excludeOutboundPorts`]: "5432",
  }),
  "all-traffic": pod("all-traffic", {
    [`${T}includeOutboundIPRanges`]: "*",
    [`${T}excludeOutboundIPRanges`]: "10.96.0.1/32,10.96.0.10/32",
    [`${T}includeInboundPorts`]: "*",
    [`${T}excludeInboundPorts`]: "9090,9091",
    [`${T}includeOutboundPorts`]: "",
    [`${T}excludeOutboundPorts`]: "3306,6379",
    "sidecar.istio.io/agentLogLevel": "default:debug",
    "sidecar.istio.io/proxyCPU": "200m",
  }),
  kubevirt: pod("kubevirt", { [`${T}kubevirtInterfaces`]: "net1" }),
  "reroute-wins": pod("reroute-wins", {
    [`${T}kubevirtInterfaces`]: "net1",
    "istio.io/reroute-virtual-interfaces": "net2,eth-3",
    [`${T}excludeInterfaces`]: "eth0",
  }),
  "readiness-delay": pod("readiness-delay", { [`${R}initialDelaySeconds`]: "5" }),
  "readiness-period": pod("readiness-period", { [`${R}periodSeconds`]: "30" }),
  "readiness-threshold": pod("readiness-threshold", { [`${R}failureThreshold`]: "10" }),
  "readiness-all": pod("readiness-all", {
    [`${R}initialDelaySeconds`]: "1",
    [`${R}periodSeconds`]: "0",
    [`${R}failureThreshold`]: "0",
    [`${T}excludeInboundPorts`]: "8080",
  }),
  "mode-redirect": pod("mode-redirect", { "sidecar.istio.io/interceptionMode": "REDIRECT" }),
  "rewrite-true": probed("rewrite-true", "true"),
  "rewrite-one": probed("rewrite-one", "1"),
  "native-false": pod("native-false", { "sidecar.istio.io/nativeSidecar": "false" }),
  ipv6: pod("ipv6", { [`${T}excludeOutboundIPRanges`]: "::1/128" }),
  "spaced-ports": pod("spaced-ports", { [`${T}includeInboundPorts`]: " 80 " }),
  "spaced-interfaces": pod("spaced-interfaces", { [`${T}excludeInterfaces`]: "eth0, eth1" }),
  "refused-range": pod("refused-range", { [`${T}includeOutboundIPRanges`]: "10.0.0.0/33" }),
  "mode-tproxy": pod("mode-tproxy", { "sidecar.istio.io/interceptionMode": "TPROXY" }),
  "readiness-leading-zero": pod("readiness-leading-zero", { [`${R}periodSeconds`]: "05" }),
  "native-true": pod("native-true", { "sidecar.istio.io/nativeSidecar": "true" }),
};

/** The cases: one manifest each. */
export const TRAFFIC_CASES: readonly { id: string; manifest: string }[] = Object.entries(PODS).map(([id, p]) => ({
  id: `traffic/${id}`,
  manifest: stringify(p),
}));

/** The cases meant to fall outside the domain. */
export const TRAFFIC_CASES_OUTSIDE: readonly string[] = [
  "traffic/rewrite-one",
  "traffic/ipv6",
  "traffic/spaced-ports",
  "traffic/spaced-interfaces",
  "traffic/refused-range",
  "traffic/mode-tproxy",
  "traffic/readiness-leading-zero",
  "traffic/native-true",
];
