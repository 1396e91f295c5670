// Pods made to exercise the proxy resources and log levels the policy takes from the Pod's
// annotations (src/policy/resources.ts, log-levels.ts), for the proof (policy-proof.test.ts),
// under the default config: each request and limit alone, all four, a decimal the API server
// canonicalises ("0.5"), a limit without its request (which the API server copies into the
// request), the three log levels with a resource, a level Envoy does not know (written as it
// is, by both), and three Pods outside the domain: a value that is no plain quantity, a level
// with a space, and an annotation the policy does not honour beside one it does.
import { stringify } from "yaml";
import type { Pod } from "../../src/kube/types.js";

const NS = "policy-resources";

const pod = (name: string, annotations: Record<string, string>): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: NS, labels: { app: name }, annotations },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});

const PODS: Record<string, Pod> = {
  "cpu-decimal-memory-limit": pod("cpu-decimal-memory-limit", {
    "sidecar.istio.io/proxyCPU": "0.5",
    "sidecar.istio.io/proxyMemoryLimit": "1Gi",
  }),
  all: pod("all", {
    "sidecar.istio.io/proxyCPU": "100m",
    "sidecar.istio.io/proxyMemory": "64Mi",
    "sidecar.istio.io/proxyCPULimit": "2",
    "sidecar.istio.io/proxyMemoryLimit": "1G",
  }),
  memory: pod("memory", { "sidecar.istio.io/proxyMemory": "128Mi" }),
  "cpu-limit": pod("cpu-limit", { "sidecar.istio.io/proxyCPULimit": "1500m" }),
  "not-plain": pod("not-plain", { "sidecar.istio.io/proxyCPU": "1e3m" }),
  "with-another": pod("with-another", {
    "sidecar.istio.io/proxyCPU": "100m",
    "sidecar.istio.io/proxyImage": "example.com/proxy:2",
  }),
  "log-levels": pod("log-levels", {
    "sidecar.istio.io/logLevel": "debug",
    "sidecar.istio.io/componentLogLevel": "misc:error,upstream:debug",
    "sidecar.istio.io/agentLogLevel": "default:debug",
    "sidecar.istio.io/proxyMemory": "256Mi",
  }),
  "log-level-unknown": pod("log-level-unknown", { "sidecar.istio.io/logLevel": "loud" }),
  "log-level-spaced": pod("log-level-spaced", { "sidecar.istio.io/logLevel": "debug info" }),
};

/** The cases: one manifest each. */
export const RESOURCE_CASES: readonly { id: string; manifest: string }[] = Object.entries(PODS).map(([id, p]) => ({
  id: `resources/${id}`,
  manifest: stringify(p),
}));

/** The cases meant to fall outside the domain. */
export const RESOURCE_CASES_OUTSIDE: readonly string[] = [
  "resources/not-plain",
  "resources/with-another",
  "resources/log-level-spaced",
];
