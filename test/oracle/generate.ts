// A seeded generator of varied workloads for the differential test: the same seed gives the
// same cases, byte for byte.
//
//   node --import tsx test/oracle/generate.ts [--seed N] [--count N]
//       prints N generated cases, one JSON object {"id","manifest"} per line
//   node --import tsx test/oracle/generate.ts --files PREFIX FILE...
//       prints one case per manifest file, with id PREFIX + its base name (Istio's own test
//       inputs join the corpus this way)
//   node --import tsx test/oracle/generate.ts --reinject ORACLE.jsonl [--seed N] [--count N]
//       prints N re-injection cases built from the oracle's answers in ORACLE.jsonl (lines
//       {"id","output"}): Istio's own output fed back in, as is or with an annotation changed
//   node --import tsx test/oracle/generate.ts --user-volumes
//       prints the fixed userVolume and userVolumeMount cases (USER_VOLUME_CASES), each with
//       native and with classic sidecars
//   node --import tsx test/oracle/generate.ts --fixed
//       prints the fixed cases (FIXED_CASES): template lists, re-injection edges
//   node --import tsx test/oracle/generate.ts --fixed-reinject ORACLE.jsonl
//       prints the fixed re-injection cases (FIXED_REINJECTIONS), built from the oracle's
//       answers to the fixed cases
//
// Every kind the injector reads (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
// CronJob, ReplicationController, DeploymentConfig; in Lists and multi-document files too),
// one to three containers and up to two init containers (some of them native sidecars), ports
// named and unnamed with every protocol, every probe kind (httpGet on named and numeric ports,
// HTTPS, tcpSocket, grpc, exec; startup, liveness, readiness) and lifecycle hooks, security
// contexts, volumes, resources, a user's own istio-proxy (an override), and the Istio
// annotations and labels users set, with valid values, edge values and invalid ones.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";
import { Rng } from "../support/rng.js";

export interface GeneratedCase {
  readonly id: string;
  readonly manifest: string;
}

type Obj = Record<string, unknown>;

// ---------------------------------------------------------------- annotations and labels

/** Values per annotation: [valid, edge, invalid]; an empty class is never drawn. */
type Values = readonly [readonly string[], readonly string[], readonly string[]];

const ANNOTATIONS: Readonly<Record<string, Values>> = {
  "sidecar.istio.io/inject": [["true", "false"], ["True", "yes", ""], []],
  "sidecar.istio.io/interceptionMode": [["REDIRECT", "TPROXY", "NONE"], [], ["redirect", "IPTABLES", ""]],
  "traffic.sidecar.istio.io/includeOutboundIPRanges": [
    ["*", "10.0.0.0/8", "10.96.0.0/12,172.16.0.0/12", "192.168.1.0/24"],
    ["", "0.0.0.0/0", "10.0.0.1/32", "fd00::/8,10.0.0.0/8"],
    ["10.0.0.0/33", "10.0.0.1", "*,10.0.0.0/8", "a.b.c.d/8"],
  ],
  "traffic.sidecar.istio.io/excludeOutboundIPRanges": [
    ["10.0.0.0/8", "169.254.169.254/32", "10.96.0.1/32,10.96.0.10/32"],
    ["", "::1/128", "0.0.0.0/0"],
    ["*", "300.0.0.0/8", "10.0.0.0/8,"],
  ],
  "traffic.sidecar.istio.io/includeInboundPorts": [
    ["*", "80", "80,8080", "8080,9090"],
    ["", " 80 ", "65535"],
    ["http", "0x50", "65536", "80;8080"],
  ],
  "traffic.sidecar.istio.io/excludeInboundPorts": [
    ["8080", "9090,9091", "15000"],
    ["", "0", "65535"],
    ["*", "-1", "99999"],
  ],
  "traffic.sidecar.istio.io/includeOutboundPorts": [["443", "80,443"], [""], []],
  "traffic.sidecar.istio.io/excludeOutboundPorts": [
    ["5432", "3306,6379", "9092"],
    ["", "0"],
    ["abc", "70000"],
  ],
  "traffic.sidecar.istio.io/excludeInterfaces": [["eth1", "eth1,eth2"], [""], []],
  "traffic.sidecar.istio.io/kubevirtInterfaces": [["net1", "net1,net2"], [""], []],
  "istio.io/reroute-virtual-interfaces": [["net1", "net1,net2"], [""], []],
  "status.sidecar.istio.io/port": [
    ["15020", "15021", "12345"],
    ["0", "65535"],
    ["http", "-1", "65536", ""],
  ],
  "readiness.status.sidecar.istio.io/initialDelaySeconds": [
    ["1", "10"],
    ["0", "4294967295"],
    ["-1", "1.5", "x"],
  ],
  "readiness.status.sidecar.istio.io/periodSeconds": [["5", "30"], ["1"], ["0.5", "fast"]],
  "readiness.status.sidecar.istio.io/failureThreshold": [
    ["3", "10"],
    ["1", "0"],
    ["-3", "many"],
  ],
  "sidecar.istio.io/proxyCPU": [
    ["100m", "200m", "1", "500m"],
    ["0", "1000m", "0.5"],
    ["1 core", "abc", "-"],
  ],
  "sidecar.istio.io/proxyMemory": [
    ["128Mi", "256Mi", "1Gi"],
    ["1G", "134217728", "0.5Gi"],
    ["lots", "128MB"],
  ],
  "sidecar.istio.io/proxyCPULimit": [["2", "1000m", "500m"], ["2000m", "0"], ["two"]],
  "sidecar.istio.io/proxyMemoryLimit": [["1Gi", "512Mi"], ["1024Mi", "2G"], ["1 GB"]],
  "sidecar.istio.io/proxyImage": [
    ["docker.io/istio/proxyv2:1.27.0", "gcr.io/istio-release/proxyv2:1.26.2"],
    ["proxyv2", "registry.local:5000/mesh/proxy@sha256:" + "a".repeat(64)],
    [],
  ],
  "sidecar.istio.io/proxyImageType": [["distroless", "debug", "default"], [""], []],
  "sidecar.istio.io/logLevel": [["debug", "info", "warning", "error"], ["trace", "off", ""], []],
  "sidecar.istio.io/componentLogLevel": [["misc:error", "upstream:debug,connection:info"], [""], []],
  "sidecar.istio.io/agentLogLevel": [["default:debug", "xdsproxy:debug,default:info"], [""], []],
  "proxy.istio.io/config": [
    [
      "holdApplicationUntilProxyStarts: true",
      '{"holdApplicationUntilProxyStarts": true}',
      "concurrency: 2",
      "terminationDrainDuration: 30s",
      'proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: "true"\n',
      '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound"]}}',
      "tracing:\n  sampling: 10\n",
      "holdApplicationUntilProxyStarts: false",
      "interceptionMode: TPROXY",
    ],
    ["{}", "", "concurrency: 0", "drainDuration: 5s\nparentShutdownDuration: 10s\n"],
    [
      "{holdApplicationUntilProxyStarts: yes",
      "concurrency: two",
      "unknownField: 1",
      "terminationDrainDuration: forever",
    ],
  ],
  "sidecar.istio.io/nativeSidecar": [["true", "false"], ["", "TRUE"], []],
  "sidecar.istio.io/rewriteAppHTTPProbers": [["true", "false"], ["", "no"], []],
  "prometheus.istio.io/merge-metrics": [
    ["true", "false"],
    ["1", "0", "TRUE"],
    ["yes", "on", ""],
  ],
  "sidecar.istio.io/bootstrapOverride": [["custom-bootstrap", "envoy-bootstrap-v2"], [], []],
  "sidecar.istio.io/userVolume": [
    [
      '{"cache":{"emptyDir":{}}}',
      '{"certs":{"secret":{"secretName":"my-certs"}}}',
      '{"cfg":{"configMap":{"name":"proxy-extra"}}}',
    ],
    ["{}"],
    [],
  ],
  "sidecar.istio.io/userVolumeMount": [
    ['{"cache":{"mountPath":"/var/cache/proxy"}}', '{"certs":{"mountPath":"/etc/certs","readOnly":true}}'],
    ["{}"],
    [],
  ],
  "sidecar.istio.io/capNetBindService": [["true", "false"], [""], []],
  "inject.istio.io/templates": [
    ["sidecar", "grpc-agent", "sidecar,grpc-agent"],
    ["grpc-simple", "gateway"],
    ["no-such-template"],
  ],
  "kubectl.kubernetes.io/default-container": [["@app"], ["istio-proxy"], []],
  "kubectl.kubernetes.io/default-logs-container": [["@app"], [], []],
  "sidecar.istio.io/statsInclusionPrefixes": [["cluster.outbound,listener"], [""], []],
  "sidecar.istio.io/extraStatTags": [["request_host,destination_port"], [""], []],
  "prometheus.io/scrape": [["true", "false"], ["TRUE", ""], []],
  "prometheus.io/port": [["8080", "9090", "@port"], ["15020", "15090"], []],
  "prometheus.io/path": [["/metrics", "/stats", "/custom/metrics"], [""], []],
  "k8s.v1.cni.cncf.io/networks": [["macvlan-conf", "default/macvlan,default/sriov"], [""], []],
  "cluster-autoscaler.kubernetes.io/safe-to-evict": [["true", "false"], [], []],
};

const ANNOTATION_KEYS = Object.keys(ANNOTATIONS);

const LABELS: Readonly<Record<string, readonly string[]>> = {
  app: ["web", "api", "reviews", "a-very-long-application-name-that-goes-on-and-on-past-sixty-three-chars"],
  version: ["v1", "v2", "1.0.3"],
  "app.kubernetes.io/name": ["shop", "catalog"],
  "app.kubernetes.io/version": ["2.4.1", "latest"],
  "service.istio.io/canonical-name": ["checkout", "frontend"],
  "service.istio.io/canonical-revision": ["r7", "canary"],
  "sidecar.istio.io/inject": ["true", "false", "yes"],
  "topology.istio.io/network": ["network1", "east"],
  "service.istio.io/workload-name": ["checkout-workload"],
  "security.istio.io/tlsMode": ["disabled", "istio"],
  "istio.io/rev": ["canary", "default"],
  tier: ["backend", "frontend"],
};

// ---------------------------------------------------------------- pods

const APP_NAMES = ["app", "web", "api", "worker", "cache", "metrics-exporter", "log-shipper"];
const IMAGES = [
  "nginx:1.27",
  "ghcr.io/acme/api:2.3.1",
  "busybox",
  "registry.local:5000/team/worker@sha256:" + "b".repeat(64),
  "redis:7",
];
const PORT_NAMES = ["http", "http-web", "grpc", "tcp-db", "metrics", "https", "http2-api", "admin"];

interface PodGen {
  readonly pod: Obj;
  readonly appNames: string[];
  readonly ports: number[];
}

/** Ports of one container; port numbers and names are unique in the Pod (`used`, `usedNames`). */
function portList(rng: Rng, used: Set<number>, usedNames: Set<string>): { ports: Obj[]; names: string[] } {
  const out: Obj[] = [];
  const names: string[] = [];
  const n = rng.pick([0, 1, 1, 2, 3]);
  for (let i = 0; i < n; i++) {
    let port = rng.pick([80, 443, 3000, 5000, 8080, 8443, 9090, 9100, 50051, 15020, 15090, 1]);
    while (used.has(port)) port++;
    used.add(port);
    const p: Obj = { containerPort: port };
    if (rng.chance(0.7)) {
      let name = rng.pick(PORT_NAMES);
      while (usedNames.has(name)) name = `${name}${i}`;
      usedNames.add(name);
      names.push(name);
      p.name = name;
    }
    if (rng.chance(0.3)) p.protocol = rng.pick(["TCP", "UDP", "SCTP"]);
    if (rng.chance(0.05)) p.hostPort = port + 30000;
    out.push(p);
  }
  return { ports: out, names };
}

function handler(rng: Rng, names: string[], ports: Obj[], forHook: boolean): Obj {
  const kinds = forHook
    ? ["httpGet", "httpGet", "tcpSocket", "exec", "sleep"]
    : ["httpGet", "httpGet", "httpGet", "tcpSocket", "grpc", "exec"];
  const kind = rng.pick(kinds);
  const anyPort = (): number | string => {
    if (names.length && rng.chance(0.5)) return rng.pick(names);
    const p = ports.length && rng.chance(0.7) ? rng.pick(ports) : undefined;
    return p ? Number(p.containerPort) : rng.pick([8080, 3000, 9999]);
  };
  switch (kind) {
    case "httpGet": {
      const h: Obj = { port: anyPort() };
      if (rng.chance(0.8)) h.path = rng.pick(["/", "/healthz", "/ready", "/live?full=1", "/status/ok"]);
      if (rng.chance(0.15)) h.scheme = rng.pick(["HTTPS", "HTTP"]);
      if (rng.chance(0.1)) h.host = rng.pick(["127.0.0.1", "localhost", "10.0.0.5"]);
      if (rng.chance(0.15)) h.httpHeaders = [{ name: "X-Probe", value: "1" }];
      return { httpGet: h };
    }
    case "tcpSocket":
      return { tcpSocket: { port: anyPort(), ...(rng.chance(0.1) ? { host: "127.0.0.1" } : {}) } };
    case "grpc": {
      const g: Obj = { port: Number(ports.length ? rng.pick(ports).containerPort : 50051) };
      if (rng.chance(0.5)) g.service = rng.pick(["", "health", "grpc.health.v1.Health"]);
      return { grpc: g };
    }
    case "sleep":
      return { sleep: { seconds: rng.int(1, 10) } };
    default:
      return { exec: { command: rng.pick([["cat", "/tmp/healthy"], ["sh", "-c", "test -f /ready"], ["/bin/true"]]) } };
  }
}

function probe(rng: Rng, names: string[], ports: Obj[]): Obj {
  const p: Obj = handler(rng, names, ports, false);
  if (rng.chance(0.5)) p.initialDelaySeconds = rng.int(0, 30);
  if (rng.chance(0.5)) p.periodSeconds = rng.int(1, 20);
  if (rng.chance(0.3)) p.timeoutSeconds = rng.int(1, 5);
  if (rng.chance(0.3)) p.failureThreshold = rng.int(1, 10);
  if (rng.chance(0.1)) p.successThreshold = 1;
  return p;
}

function resources(rng: Rng): Obj | undefined {
  if (!rng.chance(0.5)) return undefined;
  const r: Obj = {};
  if (rng.chance(0.8))
    r.requests = { cpu: rng.pick(["50m", "100m", "0.25", "1"]), memory: rng.pick(["64Mi", "128Mi", "1G"]) };
  if (rng.chance(0.5)) r.limits = { cpu: rng.pick(["500m", "1000m", "2"]), memory: rng.pick(["256Mi", "1Gi"]) };
  return r;
}

function securityContext(rng: Rng): Obj | undefined {
  if (!rng.chance(0.35)) return undefined;
  const s: Obj = {};
  if (rng.chance(0.6)) s.runAsUser = rng.pick([0, 1000, 1337, 65534]);
  if (rng.chance(0.4)) s.runAsGroup = rng.pick([0, 1000, 3000]);
  if (rng.chance(0.4)) s.runAsNonRoot = rng.chance(0.7);
  if (rng.chance(0.3)) s.readOnlyRootFilesystem = true;
  if (rng.chance(0.3)) s.allowPrivilegeEscalation = false;
  if (rng.chance(0.2)) s.capabilities = { drop: ["ALL"], ...(rng.chance(0.3) ? { add: ["NET_BIND_SERVICE"] } : {}) };
  if (rng.chance(0.05)) s.privileged = true;
  return s;
}

function container(
  rng: Rng,
  name: string,
  used: Set<number>,
  usedNames: Set<string>,
  init: boolean,
): { c: Obj; ports: number[] } {
  const c: Obj = { name, image: rng.pick(IMAGES) };
  if (rng.chance(0.2)) c.imagePullPolicy = rng.pick(["Always", "IfNotPresent", "Never"]);
  if (rng.chance(0.25)) c.command = rng.pick([["/bin/server"], ["sh", "-c"]]);
  if (rng.chance(0.25)) c.args = rng.pick([["--port=8080"], ["serve", "--verbose"], ["sleep 3600"]]);
  const { ports, names } = init && !rng.chance(0.2) ? { ports: [], names: [] } : portList(rng, used, usedNames);
  if (ports.length) c.ports = ports;
  if (rng.chance(0.4)) {
    c.env = [{ name: "MODE", value: rng.pick(["prod", "dev"]) }];
    if (rng.chance(0.3))
      (c.env as Obj[]).push({ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
  }
  const r = resources(rng);
  if (r) c.resources = r;
  const s = securityContext(rng);
  if (s) c.securityContext = s;
  if (!init || rng.chance(0.15)) {
    if (rng.chance(0.55)) c.readinessProbe = probe(rng, names, ports);
    if (rng.chance(0.45)) c.livenessProbe = probe(rng, names, ports);
    if (rng.chance(0.25)) c.startupProbe = probe(rng, names, ports);
    if (rng.chance(0.12)) {
      const lc: Obj = {};
      if (rng.chance(0.6)) lc.preStop = handler(rng, names, ports, true);
      if (rng.chance(0.5)) lc.postStart = handler(rng, names, ports, true);
      if (Object.keys(lc).length) c.lifecycle = lc;
    }
  }
  if (rng.chance(0.3)) c.volumeMounts = [{ name: "data", mountPath: rng.pick(["/data", "/var/lib/app"]) }];
  return { c, ports: ports.map((p) => Number(p.containerPort)) };
}

/** A user's own istio-proxy (or istio-init): Istio merges it over what it injects. */
function override(rng: Rng, name: string): Obj {
  const c: Obj = { name, image: rng.pick(["auto", "docker.io/istio/proxyv2:1.26.0", "my-proxy:dev"]) };
  if (rng.chance(0.4))
    c.resources = {
      requests: { cpu: "300m", memory: "512Mi" },
      ...(rng.chance(0.5) ? { limits: { cpu: "3", memory: "2Gi" } } : {}),
    };
  if (rng.chance(0.3))
    c.securityContext = { runAsUser: rng.pick([1234, 1337, 0]), ...(rng.chance(0.5) ? { runAsGroup: 1234 } : {}) };
  if (rng.chance(0.3)) c.env = [{ name: "EXTRA", value: "1" }];
  if (rng.chance(0.3) && name === "istio-proxy") c.args = ["proxy", "sidecar", "--concurrency", "4"];
  if (rng.chance(0.2)) c.lifecycle = { preStop: { exec: { command: ["sleep", "10"] } } };
  return c;
}

function podGen(rng: Rng): PodGen {
  const used = new Set<number>();
  const usedNames = new Set<string>();
  const n = rng.pick([1, 1, 1, 2, 2, 3]);
  const appNames = rng.some(APP_NAMES, n);
  const containers: Obj[] = [];
  const allPorts: number[] = [];
  for (const name of appNames) {
    const { c, ports } = container(rng, name, used, usedNames, false);
    containers.push(c);
    allPorts.push(...ports);
  }
  const spec: Obj = { containers };
  const inits = rng.pick([0, 0, 0, 1, 1, 2]);
  if (inits) {
    spec.initContainers = Array.from({ length: inits }, (_, i) => {
      const { c } = container(rng, `init-${["setup", "migrate"][i] ?? i}`, used, usedNames, true);
      if (rng.chance(0.2)) c.restartPolicy = "Always";
      return c;
    });
  }
  if (rng.chance(0.08)) {
    const which = rng.pick(["istio-proxy", "istio-proxy", "istio-init"]);
    if (which === "istio-proxy") containers.push(override(rng, which));
    else spec.initContainers = [...((spec.initContainers as Obj[] | undefined) ?? []), override(rng, which)];
  }
  if (containers.some((c) => Array.isArray(c.volumeMounts)) || rng.chance(0.2)) {
    spec.volumes = [
      rng.pick([
        { name: "data", emptyDir: {} },
        { name: "data", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
        { name: "data", configMap: { name: "app-config" } },
        { name: "data", secret: { secretName: "app-secret" } },
        { name: "data", persistentVolumeClaim: { claimName: "data" } },
      ]),
    ];
    if (rng.chance(0.1)) (spec.volumes as Obj[]).push({ name: "istio-envoy", emptyDir: {} });
  }
  const psc = rng.chance(0.3)
    ? {
        ...(rng.chance(0.5) ? { fsGroup: 2000 } : {}),
        ...(rng.chance(0.5) ? { runAsUser: rng.pick([1000, 1337]) } : {}),
        ...(rng.chance(0.3) ? { runAsNonRoot: true } : {}),
        ...(rng.chance(0.2) ? { sysctls: [{ name: "net.ipv4.ip_local_port_range", value: "1024 65535" }] } : {}),
      }
    : undefined;
  if (psc && Object.keys(psc).length) spec.securityContext = psc;
  if (rng.chance(0.3)) spec.serviceAccountName = rng.pick(["default", "reviews", "sa-with-a-long-name"]);
  if (rng.chance(0.1)) spec.nodeName = rng.pick(["node-1", "node-2", "node-3"]);
  if (rng.chance(0.04)) spec.hostNetwork = true;
  if (rng.chance(0.1)) spec.dnsPolicy = rng.pick(["ClusterFirst", "Default", "None"]);
  if (rng.chance(0.08)) spec.imagePullSecrets = [{ name: "regcred" }];
  if (rng.chance(0.08)) spec.terminationGracePeriodSeconds = rng.pick([0, 30, 120]);
  if (rng.chance(0.05)) spec.shareProcessNamespace = true;

  const metadata: Obj = {};
  const labels: Obj = {};
  for (const k of rng.some(Object.keys(LABELS), rng.pick([0, 1, 1, 2, 3]))) labels[k] = rng.pick(LABELS[k] ?? []);
  if (rng.chance(0.6)) labels.app ??= rng.pick(LABELS.app ?? []);
  if (Object.keys(labels).length) metadata.labels = labels;
  const annotations: Obj = {};
  for (const k of rng.some(ANNOTATION_KEYS, rng.pick([0, 1, 1, 2, 2, 3, 4, 6]))) {
    const [valid, edge, invalid] = ANNOTATIONS[k] as Values;
    const r = rng.next();
    const cls =
      r < 0.72 || (!edge.length && !invalid.length)
        ? valid
        : r < 0.9 && edge.length
          ? edge
          : invalid.length
            ? invalid
            : edge;
    let v = rng.pick(cls);
    if (v === "@app") v = appNames[0] ?? "app";
    if (v === "@port") v = String(allPorts[0] ?? 8080);
    annotations[k] = v;
  }
  // Prometheus annotations come together, as users write them.
  if (rng.chance(0.12) && annotations["prometheus.io/scrape"] === undefined) {
    annotations["prometheus.io/scrape"] = "true";
    annotations["prometheus.io/port"] = String(allPorts[0] ?? 9090);
    if (rng.chance(0.5)) annotations["prometheus.io/path"] = "/metrics";
  }
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  return { pod: { metadata, spec }, appNames, ports: allPorts };
}

// ---------------------------------------------------------------- workloads

const KINDS = [
  "Pod",
  "Deployment",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "Job",
  "CronJob",
  "ReplicationController",
  "DeploymentConfig",
] as const;

function workload(rng: Rng, kind: string, name: string): Obj {
  const { pod } = podGen(rng);
  const meta = pod.metadata as Obj;
  const namespace = rng.chance(0.25) ? rng.pick(["shop", "test-ns", "kube-system", "istio-system"]) : undefined;
  const top: Obj = { name, ...(namespace ? { namespace } : {}) };
  const labels = (meta.labels as Obj | undefined) ?? { app: name };
  if (kind === "Pod") {
    if (rng.chance(0.15)) {
      delete top.name;
      top.generateName = `${name}-`;
    }
    if (rng.chance(0.2))
      top.ownerReferences = [
        {
          apiVersion: "apps/v1",
          kind: rng.pick(["ReplicaSet", "StatefulSet", "DaemonSet"]),
          name: `${name}-7d9f8c6b5`,
          uid: "0b3c1a2e-0000-4000-8000-000000000001",
          controller: true,
        },
      ];
    return { apiVersion: "v1", kind: "Pod", metadata: { ...top, ...meta }, spec: pod.spec };
  }
  const template: Obj = { metadata: { ...meta, labels }, spec: pod.spec };
  const selector = { matchLabels: labels };
  switch (kind) {
    case "Deployment":
      return { apiVersion: "apps/v1", kind, metadata: top, spec: { replicas: rng.int(1, 5), selector, template } };
    case "StatefulSet":
      return {
        apiVersion: "apps/v1",
        kind,
        metadata: top,
        spec: { serviceName: name, replicas: rng.int(1, 3), selector, template },
      };
    case "DaemonSet":
      return { apiVersion: "apps/v1", kind, metadata: top, spec: { selector, template } };
    case "ReplicaSet":
      return { apiVersion: "apps/v1", kind, metadata: top, spec: { replicas: 2, selector, template } };
    case "Job":
      (template.spec as Obj).restartPolicy = rng.pick(["Never", "OnFailure"]);
      return { apiVersion: "batch/v1", kind, metadata: top, spec: { backoffLimit: rng.int(0, 6), template } };
    case "CronJob":
      (template.spec as Obj).restartPolicy = "OnFailure";
      return {
        apiVersion: "batch/v1",
        kind,
        metadata: top,
        spec: { schedule: "*/5 * * * *", jobTemplate: { spec: { template } } },
      };
    case "ReplicationController":
      return { apiVersion: "v1", kind, metadata: top, spec: { replicas: 1, selector: labels, template } };
    default:
      return {
        apiVersion: "apps.openshift.io/v1",
        kind: "DeploymentConfig",
        metadata: top,
        spec: { replicas: 1, selector: labels, template },
      };
  }
}

/**
 * YAML 1.1 quoting, so that Istio's Go YAML reads the same strings as our YAML 1.2 parser
 * (unquoted, `yes`, `off` or `0x50` would be a boolean or a number to it).
 */
function yamlOf(doc: unknown): string {
  return stringify(doc, { version: "1.1", lineWidth: 0, aliasDuplicateObjects: false });
}

/** `count` generated cases from `seed`. */
export function generate(seed: number, count: number): GeneratedCase[] {
  const rng = new Rng(seed);
  const out: GeneratedCase[] = [];
  for (let i = 0; i < count; i++) {
    const shape = rng.next();
    const id = `g${String(i).padStart(4, "0")}`;
    if (shape < 0.05) {
      // A List of two workloads.
      const items = [0, 1].map((j) => workload(rng, rng.pick(KINDS), `${id}-item${j}`));
      out.push({ id: `${id}-list`, manifest: yamlOf({ apiVersion: "v1", kind: "List", items }) });
    } else if (shape < 0.09) {
      // Several documents, one of them not a workload (printed unchanged).
      const docs = [
        workload(rng, rng.pick(KINDS), `${id}-a`),
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: `${id}-svc` },
          spec: { selector: { app: "web" }, ports: [{ port: 80 }] },
        },
        workload(rng, rng.pick(KINDS), `${id}-b`),
      ];
      out.push({ id: `${id}-multi`, manifest: docs.map(yamlOf).join("---\n") });
    } else {
      const kind = rng.pick(KINDS);
      out.push({
        id: `${id}-${kind.toLowerCase()}`,
        manifest: yamlOf(workload(rng, kind, `${id.replace("g", "w")}-${kind.toLowerCase()}`)),
      });
    }
  }
  return out;
}

const REINJECT_ANNOTATIONS: readonly (readonly [string, string])[] = [
  ["sidecar.istio.io/proxyCPU", "250m"],
  ["traffic.sidecar.istio.io/excludeOutboundPorts", "5432"],
  ["sidecar.istio.io/nativeSidecar", "false"],
  ["sidecar.istio.io/interceptionMode", "NONE"],
  ["proxy.istio.io/config", "holdApplicationUntilProxyStarts: true"],
  ["status.sidecar.istio.io/port", "0"],
  ["prometheus.istio.io/merge-metrics", "false"],
];

/** Istio's own outputs fed back in: as they are, or with one annotation set on each pod template. */
export function reinjectionCases(
  answers: readonly { id: string; output?: string }[],
  seed: number,
  count: number,
): GeneratedCase[] {
  const rng = new Rng(seed ^ 0x5eed);
  const usable = answers.filter((a) => typeof a.output === "string" && a.output.includes("sidecar.istio.io/status"));
  const chosen = rng.some(usable, count);
  return chosen.map((a) => {
    const docs = a
      .output!.split(/^---\n/m)
      .filter((d) => d.trim() !== "")
      .map((d) => parse(d) as unknown);
    const change = rng.chance(0.5) ? rng.pick(REINJECT_ANNOTATIONS) : undefined;
    if (change) for (const d of docs) setTemplateAnnotation(d, change[0], change[1]);
    return { id: `r-${a.id}${change ? `-${change[0].split("/")[1]}` : ""}`, manifest: docs.map(yamlOf).join("---\n") };
  });
}

function setTemplateAnnotation(doc: unknown, key: string, value: string): void {
  if (typeof doc !== "object" || doc === null) return;
  const d = doc as Obj;
  if (d.kind === "List" && Array.isArray(d.items)) {
    for (const item of d.items) setTemplateAnnotation(item, key, value);
    return;
  }
  const spec = d.spec as Obj | undefined;
  const meta = (
    d.kind === "Pod"
      ? d.metadata
      : d.kind === "CronJob"
        ? (((spec?.jobTemplate as Obj | undefined)?.spec as Obj | undefined)?.template as Obj | undefined)?.metadata
        : (spec?.template as Obj | undefined)?.metadata
  ) as Obj | undefined;
  if (!meta) return;
  meta.annotations = { ...((meta.annotations as Obj | undefined) ?? {}), [key]: value };
}

// ---------------------------------------------------------------- userVolume and userVolumeMount

/**
 * sidecar.istio.io/userVolume and userVolumeMount entries as people write them and as Go reads
 * them (Istio decodes each into a corev1.Volume or VolumeMount): keys in another case
 * (`configmap`, `readonly`, `mountpath`, as Istio's own wasm example and some charts write
 * them), unknown keys, two spellings of one field, nulls, every kind of volume source, numbers
 * and quantities, and values of the wrong type, which Istio refuses. [name, userVolume,
 * userVolumeMount, more]; each case is made once with native sidecars and once with classic
 * ones. `more.lists`: the Pod has volumes and init containers of its own, so that Istio's merge
 * keeps the entries' null members (without, it drops them first).
 */
type UserVolumeMore = { readonly annotations?: Obj; readonly lists?: true };
const USER_VOLUME_CASES: readonly (readonly [string, string | undefined, string | undefined, UserVolumeMore?])[] = [
  [
    "wasm-lowercase",
    '[{"name":"wasm","configmap":{"name":"wasm"}}]',
    '[{"name":"wasm","mountPath":"/var/local/lib/wasm-filters","readonly":true}]',
  ],
  [
    "wasm-docs",
    '[{"name":"wasmfilters-dir","emptyDir": { } } ]',
    '[{"mountPath":"/var/local/lib/wasm-filters","name":"wasmfilters-dir"}]',
  ],
  ["mountpath-subpath", '{"cfg":{"configMap":{"name":"cfg"}}}', '{"cfg":{"mountpath":"/etc/cfg","subpath":"a.conf"}}'],
  [
    "secret-capitals",
    '{"certs":{"Secret":{"SecretName":"my-certs","DefaultMode":256}}}',
    '{"certs":{"MountPath":"/etc/certs","ReadOnly":true}}',
  ],
  [
    "emptydir-lowercase",
    '{"cache":{"emptydir":{"medium":"Memory","sizelimit":"64Mi"}}}',
    '{"cache":{"mountPath":"/cache"}}',
  ],
  ["name-capital", '[{"Name":"other","emptyDir":{}}]', '[{"Name":"other","mountPath":"/other"}]'],
  [
    "unknown-keys",
    '{"v":{"bogus":1,"emptyDir":{"bogus":{"a":[1]}}}}',
    '{"v":{"mountPath":"/v","bogus":"x","readOnly":true}}',
  ],
  ["readonly-string", undefined, '{"v":{"mountPath":"/v","readOnly":"true"}}'],
  ["readonly-number", undefined, '{"v":{"mountPath":"/v","readOnly":1}}'],
  [
    "readonly-twice",
    undefined,
    '[{"mountPath":"/a","readonly":true,"readOnly":false},{"mountPath":"/b","readOnly":true,"readonly":false}]',
  ],
  [
    "null-members",
    '{"a":{"configMap":{"name":"c","Optional":false,"optional":null}},"b":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"a":null,"b":"c"}},"spec":{"accessModes":["x",null],"resources":{"requests":{"storage":null,"cpu":"1"}}}}}}}',
    '[{"mountPath":"/a","mountPropagation":"","mountpropagation":null},{"mountPath":"/b","Name":"b","name":null}]',
  ],
  [
    "null-members-pod-lists",
    '{"a":{"configMap":{"name":"c","Optional":false,"optional":null}},"b":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"a":null,"b":"c"}},"spec":{"accessModes":["x",null],"resources":{"requests":{"storage":null,"cpu":"1"}}}}}}}',
    '[{"mountPath":"/a","mountPropagation":"","mountpropagation":null},{"mountPath":"/b","Name":"b","name":null}]',
    { lists: true },
  ],
  [
    "readonly-null",
    undefined,
    '[{"mountPath":"/a","readOnly":true,"readonly":null},{"mountPath":"/b","readOnly":null}]',
  ],
  [
    "struct-twice",
    '{"c":{"configMap":{"name":"c"},"configmap":{"optional":true,"items":[{"key":"k","path":"p"}]}}}',
    undefined,
  ],
  ["null-source", '{"c":{"emptyDir":null,"configMap":{"name":"c","items":null,"defaultMode":null}}}', undefined],
  [
    "zero-values",
    '{"h":{"hostPath":{}},"p":{"projected":{}},"c":{"configMap":{"name":"","items":[],"optional":false,"defaultMode":0}},"e":{"emptyDir":{"medium":""}}}',
    undefined,
  ],
  [
    "projected",
    '{"p":{"projected":{"defaultMode":420,"sources":[null,{"serviceAccountToken":{"audience":"vault","expirationSeconds":3600,"path":"token"}},{"configmap":{"name":"ca","items":[{"key":"ca.crt","path":"ca.crt","mode":0}]}},{"secret":{"name":"s","optional":false}},{"downwardAPI":{"items":[{"path":"cpu","resourceFieldRef":{"containerName":"app","resource":"limits.cpu"}},{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}}]}},{"clusterTrustBundle":{"signerName":"example.com/signer","labelSelector":{"matchLabels":{"a":"b"}},"path":"bundle.pem"}}]}}}',
    '{"p":{"mountPath":"/var/run/secrets/projected","readOnly":true}}',
  ],
  [
    "csi",
    '{"s":{"csi":{"driver":"secrets-store.csi.k8s.io","readonly":true,"volumeAttributes":{"secretProviderClass":"vault"},"nodePublishSecretRef":{"name":"creds"}}}}',
    '{"s":{"mountPath":"/mnt/secrets","readOnly":true}}',
  ],
  [
    "ephemeral",
    '{"scratch":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"type":"scratch"}},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"fast","resources":{"requests":{"storage":"1Gi","cpu":0.5,"memory":1073741824}}}}}}}',
    '{"scratch":{"mountPath":"/scratch"}}',
  ],
  ["ephemeral-empty", '{"e":{"ephemeral":{"volumeClaimTemplate":{}}}}', undefined],
  [
    "ephemeral-time",
    '{"e":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"creationTimestamp":"2024-02-29T23:30:05.5-01:00"},"spec":{}}}}}',
    undefined,
  ],
  [
    "ephemeral-bad-time",
    '{"e":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"creationTimestamp":"yesterday"}}}}}',
    undefined,
  ],
  ["ephemeral-bad-label", '{"e":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"a":5}}}}}}', undefined],
  [
    "pvc-nfs-image",
    '{"data":{"persistentVolumeClaim":{"claimname":"data","readOnly":false}},"nfs":{"nfs":{"server":"nfs.local","path":"/exports","readonly":true}},"img":{"image":{"reference":"quay.io/x/y:1","pullpolicy":"IfNotPresent"}}}',
    '{"data":{"mountPath":"/data","mountpropagation":"HostToContainer"},"img":{"mountPath":"/img","recursiveReadOnly":"IfPossible","readOnly":true}}',
  ],
  [
    "quantities",
    '{"a":{"emptyDir":{"sizeLimit":1.5}},"b":{"emptyDir":{"sizeLimit":" 1000 "}},"c":{"emptyDir":{"sizeLimit":"1e3"}},"d":{"emptyDir":{"sizeLimit":1073741824}},"e":{"emptyDir":{"sizeLimit":null}}}',
    undefined,
  ],
  ["quantity-bool", '{"a":{"emptyDir":{"sizeLimit":true}}}', undefined],
  ["quantity-suffix", '{"a":{"emptyDir":{"sizeLimit":"5KM"}}}', undefined],
  ["quantity-tab", '{"a":{"emptyDir":{"sizeLimit":"\\t5"}}}', undefined],
  ["mode-fraction", '{"s":{"secret":{"secretName":"s","defaultMode":1.5}}}', undefined],
  ["mode-int32-overflow", '{"s":{"secret":{"secretName":"s","defaultMode":2147483648}}}', undefined],
  [
    "mode-negative",
    '{"s":{"secret":{"secretName":"s","defaultMode":-1,"items":[{"key":"k","path":"p","mode":493}]}}}',
    undefined,
  ],
  [
    "int64-overflow",
    '{"p":{"projected":{"sources":[{"serviceAccountToken":{"path":"t","expirationSeconds":1e21}}]}}}',
    undefined,
  ],
  ["name-number", '{"a":{"name":5,"emptyDir":{}}}', undefined],
  ["string-for-struct", '{"a":{"secret":"my-secret"}}', undefined],
  ["object-for-list", '{"a":{"configMap":{"name":"c","items":{"key":"k","path":"p"}}}}', undefined],
  ["string-for-name", '{"a":{"configMap":{"name":true}}}', undefined],
  [
    "unicode-fold",
    '{"a":{"\u017fecret":{"secretName":"s","items":[{"\u212aey":"k","path":"p"}]}}}',
    '{"a":{"mountPath":"/a","\u017fubPath":"x"}}',
  ],
  [
    "in-tree",
    '{"r":{"rbd":{"monitors":["10.0.0.1:6789"],"image":"img","readOnly":true}},"i":{"iscsi":{"targetPortal":"10.0.0.2:3260","iqn":"iqn.2001-04.com.example:storage","lun":0}},"f":{"fc":{"lun":0,"targetWWNs":["500a0982991b8dc5"]}},"g":{"gitRepo":{"repository":"https://example.com/r.git"}},"h":{"hostPath":{"path":"/var/log","type":"Directory"}}}',
    undefined,
  ],
  [
    "grpc-agent",
    '[{"name":"wasm","configmap":{"name":"wasm"}}]',
    '[{"name":"wasm","mountpath":"/wasm","readonly":true}]',
    { annotations: { "inject.istio.io/templates": "grpc-agent" } },
  ],
  [
    "grpc-agent-refused",
    undefined,
    '[{"name":"wasm","mountPath":"/wasm","readOnly":"yes"}]',
    { annotations: { "inject.istio.io/templates": "grpc-agent" } },
  ],
];

/** USER_VOLUME_CASES as Pods, each with native sidecars (the default) and classic ones. */
export function userVolumeCases(): GeneratedCase[] {
  return USER_VOLUME_CASES.flatMap(([name, volume, mount, more]) =>
    (["native", "classic"] as const).map((mode) => {
      const annotations: Obj = { ...more?.annotations };
      if (volume !== undefined) annotations["sidecar.istio.io/userVolume"] = volume;
      if (mount !== undefined) annotations["sidecar.istio.io/userVolumeMount"] = mount;
      if (mode === "classic") annotations["sidecar.istio.io/nativeSidecar"] = "false";
      const spec: Obj = { containers: [{ name: "app", image: "nginx:1.27", ports: [{ containerPort: 8080 }] }] };
      if (more?.lists) {
        spec.initContainers = [{ name: "init", image: "busybox:1.36", args: ["true"] }];
        spec.volumes = [{ name: "data", emptyDir: {} }];
      }
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: `uv-${name}`, annotations }, spec };
      return { id: `uv-${name}-${mode}`, manifest: yamlOf(pod) };
    }),
  );
}

// ---------------------------------------------------------------- fixed cases

/**
 * Fixed cases for what the seeded generator reaches too rarely: template lists with a name
 * twice or a third template (`sidecar,grpc-agent,grpc-simple`, where Istio's native sidecar
 * ends up as the later template's proxy among the init containers, not a native sidecar),
 * names trimmed; a status annotation that names the native sidecar beside a Pod's own
 * istio-proxy among its containers; an overrides record under another case of its key; an
 * empty bootstrapOverride (a ConfigMap volume with no name); an opted-out Pod whose proxy config
 * does not parse; an app probe on the Pod's own status port. And
 * the bases of FIXED_REINJECTIONS (`fx-base-*`), injected by Istio and fed back in.
 * [name, annotations, mode, containers (else one app container)].
 */
type FixedCase = readonly [string, Readonly<Record<string, string>>, "native" | "classic", (readonly Obj[])?];
const APP: Obj = {
  name: "app",
  image: "nginx:1.27",
  ports: [{ containerPort: 8080, name: "http" }],
  readinessProbe: { httpGet: { path: "/ready", port: "http" } },
};
const OWN_PROXY: Obj = {
  name: "istio-proxy",
  image: "auto",
  ports: [{ containerPort: 15021, name: "health" }],
  env: [{ name: "OWN", value: "1" }],
};
const APP_NUMERIC_PROBE: Obj = { ...APP, readinessProbe: { httpGet: { path: "/ready", port: 8080 } } };
const tpl = (t: string): Record<string, string> => ({ "inject.istio.io/templates": t });
const FIXED_CASES: readonly FixedCase[] = [
  ["tpl-sidecar-grpc-agent-grpc-simple", tpl("sidecar,grpc-agent,grpc-simple"), "native"],
  ["tpl-sidecar-gateway-sidecar", tpl("sidecar,gateway,sidecar"), "native"],
  ["tpl-sidecar-grpc-agent-sidecar", tpl("sidecar,grpc-agent,sidecar"), "classic"],
  ["tpl-grpc-agent-sidecar-grpc-agent", tpl("grpc-agent,sidecar,grpc-agent"), "classic"],
  ["tpl-gateway-sidecar-gateway", tpl("gateway,sidecar,gateway"), "classic"],
  [
    "tpl-grpc-simple-grpc-agent-grpc-simple-own",
    tpl("grpc-simple,grpc-agent,grpc-simple"),
    "classic",
    [APP, OWN_PROXY],
  ],
  ["tpl-tabs", tpl("\tgrpc-agent ,\tsidecar\t"), "classic"],
  [
    "status-native-own-proxy",
    { "sidecar.istio.io/status": '{"initContainers":["istio-init","istio-proxy"],"containers":null}' },
    "classic",
    [APP, OWN_PROXY],
  ],
  [
    "overrides-key-case",
    {
      "sidecar.istio.io/status": '{"initContainers":["istio-init"],"containers":null}',
      "proxy.istio.io/overrides": '{"Containers":[{"name":"istio-proxy","resources":{"limits":{"cpu":"3"}}}]}',
    },
    "classic",
  ],
  ["bootstrap-override-empty", { "sidecar.istio.io/bootstrapOverride": "" }, "native"],
  ["bootstrap-override-empty", { "sidecar.istio.io/bootstrapOverride": "" }, "classic"],
  [
    "bootstrap-override-empty-grpc-agent",
    { ...tpl("grpc-agent"), "sidecar.istio.io/bootstrapOverride": "" },
    "classic",
  ],
  // istioctl kube-inject reads the proxy config before it checks the opt-out (istiod's webhook after).
  [
    "opt-out-bad-proxy-config",
    { "sidecar.istio.io/inject": "false", "proxy.istio.io/config": "terminationDrainDuration: forever" },
    "classic",
  ],
  // An app probe on a numeric port that is the Pod's own status port (Istio compares with the mesh's).
  ["probe-on-status-port", { "status.sidecar.istio.io/port": "8080" }, "classic", [APP_NUMERIC_PROBE]],
  ["base-grpc-agent", tpl("grpc-agent"), "classic"],
  ["base-own-proxy", {}, "classic", [APP, OWN_PROXY]],
  [
    "base-own-proxy-probers",
    {},
    "classic",
    [APP, { name: "istio-proxy", image: "auto", env: [{ name: "ISTIO_KUBE_APP_PROBERS", value: "{}" }] }],
  ],
];

/** FIXED_CASES as Pods (classic: `sidecar.istio.io/nativeSidecar: "false"`). */
export function fixedCases(): GeneratedCase[] {
  return FIXED_CASES.map(([name, given, mode, containers]) => {
    const annotations: Obj = { ...given };
    if (mode === "classic") annotations["sidecar.istio.io/nativeSidecar"] = "false";
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `fx-${name}`, annotations },
      spec: { containers: containers ?? [APP] },
    };
    return { id: `fx-${name}-${mode}`, manifest: yamlOf(pod) };
  });
}

/**
 * Istio's answers for the `fx-base-*` cases fed back in: as they are (the Pod's own istio-proxy
 * re-injected: its ports among ISTIO_META_POD_PORTS again, its probes put back), and for
 * grpc-agent (whose status names the app's container) with the overrides record removed or
 * "null". [base, change]: the annotation's new value, or null to remove it.
 */
const FIXED_REINJECTIONS: readonly (readonly [string, string | null | undefined])[] = [
  ["base-own-proxy", undefined],
  ["base-own-proxy-probers", undefined],
  ["base-grpc-agent", null],
  ["base-grpc-agent", "null"],
];

export function fixedReinjectionCases(answers: readonly { id: string; output?: string }[]): GeneratedCase[] {
  return FIXED_REINJECTIONS.flatMap(([base, change]) => {
    const answer = answers.find((a) => a.id === `fx-${base}-classic`);
    if (answer?.output === undefined) throw new Error(`no answer for fx-${base}-classic`);
    const pod = parse(answer.output.split(/^---\n/m)[0] ?? "") as Obj;
    const annotations = ((pod.metadata as Obj).annotations ?? {}) as Obj;
    if (change === null) delete annotations["proxy.istio.io/overrides"];
    else if (change !== undefined) annotations["proxy.istio.io/overrides"] = change;
    const what = change === undefined ? "as-is" : change === null ? "overrides-removed" : "overrides-null";
    return [{ id: `fx-r-${base}-${what}`, manifest: yamlOf(pod) }];
  });
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      count: { type: "string" },
      reinject: { type: "string" },
      files: { type: "string" },
      "user-volumes": { type: "boolean" },
      fixed: { type: "boolean" },
      "fixed-reinject": { type: "string" },
    },
    allowPositionals: true,
  });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, not ${values.seed}`);
  let cases: GeneratedCase[];
  if (values.files !== undefined) {
    const prefix = values.files;
    cases = positionals.map((f) => ({
      id: `${prefix}${basename(f).replace(/\.yaml$/, "")}`,
      manifest: readFileSync(f, "utf8"),
    }));
  } else if (values.reinject) {
    const answers = readFileSync(values.reinject, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { id: string; output?: string });
    cases = reinjectionCases(answers, seed, Number(values.count ?? 150));
  } else if (values["user-volumes"]) cases = userVolumeCases();
  else if (values.fixed) cases = fixedCases();
  else if (values["fixed-reinject"]) {
    const answers = readFileSync(values["fixed-reinject"], "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { id: string; output?: string });
    cases = fixedReinjectionCases(answers);
  } else cases = generate(seed, Number(values.count ?? 1100));
  process.stdout.write(cases.map((c) => JSON.stringify(c)).join("\n") + "\n");
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
