// Pods made to exercise the Prometheus merge the policy computes from the Pod's annotations
// (src/policy/prometheus.ts), for the proof (policy-proof.test.ts), under the default config:
// the usual scrape, port and path; scrape "false" and merge-metrics "false" (no merge); the
// agent's port already (no merge); merge-metrics "true" with a path alone; values the engine
// writes as they are (a scrape that is no boolean, a port with a leading zero, a path with
// "<", "&", "?" and non-ASCII) beside a Prometheus annotation the merge does not read; empty
// values (merged, no env); a probed Pod (the env before the probers); scrape-targets (handed
// over and removed; left alone with scrape "false"); a Deployment's Pod; and five Pods outside
// the domain: a port of the sidecar's (which the webhook refuses), another spelling of scrape,
// a quote in the path, scrape-targets with a blank, and the secure port.
import { stringify } from "yaml";
import type { Pod } from "../../src/kube/types.js";

const NS = "policy-prometheus";
const image = "example.com/app:1";

const pod = (name: string, annotations: Record<string, string>, probed = false): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: NS, labels: { app: name }, annotations },
  spec: {
    containers: [
      {
        name: "app",
        image,
        ports: [{ name: "metrics", containerPort: 8080 }],
        ...(probed ? { readinessProbe: { httpGet: { path: "/ready", port: "metrics" } } } : {}),
      },
    ],
  },
});

const SCRAPE = "prometheus.io/scrape";
const PORT = "prometheus.io/port";
const PATH = "prometheus.io/path";
const MERGE = "prometheus.istio.io/merge-metrics";
const TARGETS = "prometheus.istio.io/scrape-targets";

const PODS: Record<string, Pod> = {
  usual: pod("usual", { [SCRAPE]: "true", [PORT]: "8080", [PATH]: "/metrics" }),
  "scrape-false": pod("scrape-false", { [SCRAPE]: "false", [PORT]: "8080" }),
  "merge-off": pod("merge-off", { [MERGE]: "false", [SCRAPE]: "true", [PORT]: "8080" }),
  "already-merged": pod("already-merged", { [SCRAPE]: "true", [PORT]: "15020", [PATH]: "/stats/prometheus" }),
  "merge-on-path": pod("merge-on-path", { [MERGE]: "true", [PATH]: "/stats" }),
  "as-they-are": pod("as-they-are", {
    [SCRAPE]: "yes",
    [PORT]: "08080",
    [PATH]: "/m?x=<a>&b=é",
    "prometheus.io/scheme": "https",
  }),
  empty: pod("empty", { [SCRAPE]: "", [PORT]: "", [PATH]: "" }),
  probed: pod("probed", { [SCRAPE]: "True", [PORT]: "8080" }, true),
  "sidecar-port": pod("sidecar-port", { [SCRAPE]: "true", [PORT]: "15090" }),
  "other-spelling": pod("other-spelling", { "prometheus.io.scrape": "true", [PORT]: "8080" }),
  "quoted-path": pod("quoted-path", { [SCRAPE]: "true", [PATH]: '/a"b' }),
  targets: pod("targets", { [TARGETS]: "8080:/m?a=<b>&c,9091,7070:", [PORT]: "6060", [PATH]: "/p" }),
  "targets-not-scraped": pod("targets-not-scraped", { [TARGETS]: "8080", [SCRAPE]: "false" }),
  "targets-blank": pod("targets-blank", { [TARGETS]: "8080, 9091" }),
  "secure-port": pod("secure-port", { "prometheus.istio.io/secure-port": "15091" }),
};

const DEPLOYMENT = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "scraped", namespace: NS },
  spec: {
    selector: { matchLabels: { app: "scraped" } },
    template: {
      metadata: { labels: { app: "scraped" }, annotations: { [SCRAPE]: "true", [PORT]: "9102" } },
      spec: { containers: [{ name: "scraped", image, ports: [{ containerPort: 9102 }] }] },
    },
  },
};

/** The cases: one manifest each. */
export const PROMETHEUS_CASES: readonly { id: string; manifest: string }[] = [
  ...Object.entries(PODS).map(([id, p]) => ({ id: `prometheus/${id}`, manifest: stringify(p) })),
  { id: "prometheus/deployment", manifest: stringify(DEPLOYMENT) },
];

/** The cases meant to fall outside the domain. */
export const PROMETHEUS_CASES_OUTSIDE: readonly string[] = [
  "prometheus/sidecar-port",
  "prometheus/other-spelling",
  "prometheus/quoted-path",
  "prometheus/targets-blank",
  "prometheus/secure-port",
];
