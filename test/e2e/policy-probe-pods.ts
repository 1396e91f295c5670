// Pods made to exercise the policy's probe rewrite where the corpora are thin, for the proof
// (policy-proof.test.ts), under the default config:
// - container names whose probers' paths sort apart from the names ("a-b" and "a-0" before
//   "a/..."), a native sidecar's probes among the init containers, hooks after probes;
// - ports: a name resolved, an unknown name (rewritten, not handed over), the agent's port as a
//   number (likewise) and as a name (handed over), a host, HTTPS, headers with "<", ">", "&"
//   and non-ASCII, a timeout, a grpc service, an exec probe left alone;
// - a Pod whose only probe is on the agent's port (rewritten, no ISTIO_KUBE_APP_PROBERS);
// - a Deployment's Pod with probes;
// - two Pods outside the domain, counted and not compared: a quote in a probe's path, and a
//   repeated container name (which validation refuses either way).
import { stringify } from "yaml";
import type { Container, Pod } from "../../src/kube/types.js";

const NS = "policy-probes";
const image = "example.com/app:1";

const pod = (name: string, spec: NonNullable<Pod["spec"]>): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: NS, labels: { app: name } },
  spec,
});

const ready = (port: number | string, path = "/r"): Container["readinessProbe"] => ({ httpGet: { path, port } });

const PODS: Record<string, Pod> = {
  sorting: pod("sorting", {
    initContainers: [
      { name: "setup", image },
      { name: "a0", image, restartPolicy: "Always", startupProbe: { tcpSocket: { port: 9 } } },
    ],
    containers: [
      {
        name: "a",
        image,
        readinessProbe: ready(8080),
        livenessProbe: { tcpSocket: { port: 8081 } },
        startupProbe: { grpc: { port: 9000 } },
      },
      {
        name: "b",
        image,
        readinessProbe: ready(8080),
        lifecycle: { preStop: { httpGet: { path: "/stop", port: 80 } } },
      },
      { name: "a-b", image, readinessProbe: ready(8080), lifecycle: { postStart: { tcpSocket: { port: 81 } } } },
      { name: "ab", image, livenessProbe: ready(8080, "/l") },
      { name: "a-0", image, readinessProbe: ready(8080) },
      { name: "c", image, livenessProbe: { exec: { command: ["true"] } } },
    ],
  }),
  ports: pod("ports", {
    containers: [
      {
        name: "web",
        image,
        ports: [{ name: "http", containerPort: 8080 }, { name: "admin", containerPort: 15020 }, { containerPort: 9 }],
        readinessProbe: {
          httpGet: {
            path: "/ready?x=<a>&b=é",
            port: "http",
            host: "example.com",
            scheme: "HTTPS",
            httpHeaders: [
              { name: "X-A", value: "<a>&b é" },
              { name: "X-Empty", value: "" },
            ],
          },
          timeoutSeconds: 5,
        },
        livenessProbe: { httpGet: { path: "/live", port: "missing" } },
        startupProbe: { tcpSocket: { port: 15020, host: "h" } },
        lifecycle: { preStop: { tcpSocket: { port: "admin" } }, postStart: { httpGet: { port: 15020 } } },
      },
      { name: "rpc", image, readinessProbe: { grpc: { port: 9000, service: "health.v1" }, timeoutSeconds: 3 } },
    ],
  }),
  "agent-port-only": pod("agent-port-only", {
    containers: [{ name: "web", image, readinessProbe: ready(15020) }],
  }),
  "repeated-name": pod("repeated-name", {
    containers: [
      { name: "web", image, readinessProbe: ready(80) },
      { name: "web", image },
    ],
  }),
  "quoted-path": pod("quoted-path", { containers: [{ name: "web", image, readinessProbe: ready(80, '/a"b') }] }),
};

const DEPLOYMENT = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "probed", namespace: NS },
  spec: {
    selector: { matchLabels: { app: "probed" } },
    template: {
      metadata: { labels: { app: "probed", version: "v2" } },
      spec: {
        containers: [
          {
            name: "probed",
            image,
            ports: [{ name: "http", containerPort: 8080 }],
            readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 3 },
            livenessProbe: { tcpSocket: { port: "http" } },
          },
        ],
      },
    },
  },
};

/** The cases: one manifest each. */
export const PROBE_CASES: readonly { id: string; manifest: string }[] = [
  ...Object.entries(PODS).map(([id, p]) => ({ id: `probes/${id}`, manifest: stringify(p) })),
  { id: "probes/deployment", manifest: stringify(DEPLOYMENT) },
];

/** The cases meant to fall outside the domain. */
export const PROBE_CASES_OUTSIDE: readonly string[] = ["probes/repeated-name", "probes/quoted-path"];
