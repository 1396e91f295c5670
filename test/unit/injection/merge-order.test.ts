// The order of the lists Istio merges (env, volume mounts, ports, volumes, init containers)
// where a Pod declares its own istio-proxy or several templates are selected: each expectation
// is the order in Istio's own output (the oracle, test/oracle: `istio-oracle-86c9f01 -f pod.yaml`,
// with ENABLE_NATIVE_SIDECARS=false for classic sidecars) for the Pod beside it, under the
// oracle's settings (test/oracle/injector-config.yaml). The order matters: an env var's $(VAR)
// refers only to the ones before it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Container, Pod, PodSpec } from "../../../src/kube/types.js";

const file = join(import.meta.dirname, "../../oracle/injector-config.yaml");
const native = parseConfig(readFileSync(file, "utf8"), file);
const classic = { ...native, nativeSidecars: "false" as const };

const app: Container = { name: "app", image: "nginx" };
const env = (...names: string[]): { name: string; value: string }[] => names.map((name) => ({ name, value: "v" }));
const pod = (templates: string | undefined, containers: Container[], spec: Partial<PodSpec> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", annotations: templates ? { "inject.istio.io/templates": templates } : {} },
  spec: { containers, volumes: [{ name: "extra", emptyDir: {} }], ...spec },
});
const ownProxy: Container = {
  name: "istio-proxy",
  image: "auto",
  env: [{ name: "ISTIO_META_X", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }, ...env("CA_ADDR")],
  volumeMounts: [
    { name: "extra", mountPath: "/extra" },
    { name: "istio-envoy", mountPath: "/etc/istio/proxy" },
  ],
  ports: [
    { containerPort: 9000, name: "p9000" },
    { containerPort: 15090, name: "p15090" },
  ],
};

function injected(p: Pod, cfg = native): { spec: PodSpec; of: (name: string) => Container } {
  const spec = inject(p, { namespace: "default" }, cfg).pod.spec;
  assert.ok(spec);
  const of = (name: string): Container => {
    const c = [...(spec.initContainers ?? []), ...spec.containers].find((x) => x.name === name);
    assert.ok(c, `no ${name}`);
    return c;
  };
  return { spec, of };
}
const envOf = (c: Container): string[] => (c.env ?? []).map((e) => e.name);
const mountsOf = (c: Container): unknown[] => (c.volumeMounts ?? []).map((m) => m.mountPath);
const portsOf = (c: Container): number[] => (c.ports ?? []).map((p) => p.containerPort);

const SIDECAR_ENV = [
  "PILOT_CERT_PROVIDER",
  "CA_ADDR",
  "POD_NAME",
  "POD_NAMESPACE",
  "INSTANCE_IP",
  "SERVICE_ACCOUNT",
  "HOST_IP",
  "ISTIO_CPU_LIMIT",
  "PROXY_CONFIG",
  "ISTIO_META_POD_PORTS",
  "ISTIO_META_APP_CONTAINERS",
  "GOMEMLIMIT",
  "ISTIO_META_CLUSTER_ID",
  "ISTIO_META_NODE_NAME",
  "ISTIO_META_INTERCEPTION_MODE",
  "ISTIO_META_WORKLOAD_NAME",
  "ISTIO_META_OWNER",
  "ISTIO_META_MESH_ID",
  "TRUST_DOMAIN",
];
const SIDECAR_MOUNTS = [
  "/var/run/secrets/workload-spiffe-uds",
  "/var/run/secrets/credential-uds",
  "/var/run/secrets/workload-spiffe-credentials",
  "/var/run/secrets/istio",
  "/var/run/secrets/istio/crl",
  "/var/lib/istio/data",
  "/etc/istio/proxy",
  "/var/run/secrets/tokens",
  "/etc/istio/pod",
];
const GRPC_SIMPLE_ENV = ["GRPC_XDS_BOOTSTRAP", "GRPC_GO_LOG_VERBOSITY_LEVEL", "GRPC_GO_LOG_SEVERITY_LEVEL"];

describe("merged lists in Istio's order", () => {
  test("a Pod's own istio-proxy: its env and mounts among the template's, where they came in its own list", () => {
    for (const cfg of [native, classic]) {
      const proxy = injected(pod(undefined, [app, ownProxy]), cfg).of("istio-proxy");
      assert.deepEqual(envOf(proxy), ["PILOT_CERT_PROVIDER", "ISTIO_META_X", ...SIDECAR_ENV.slice(1)]);
      assert.deepEqual(mountsOf(proxy), [...SIDECAR_MOUNTS.slice(0, 6), "/extra", ...SIDECAR_MOUNTS.slice(6)]);
      assert.deepEqual(portsOf(proxy), [9000, 15090]);
    }
  });

  test("sidecar,grpc-agent (classic): grpc-agent's env and ports first", () => {
    const proxy = injected(pod("sidecar,grpc-agent", [app]), classic).of("istio-proxy");
    assert.deepEqual(envOf(proxy), [
      "ISTIO_META_GENERATOR",
      "OUTPUT_CERTS",
      ...SIDECAR_ENV,
      "ISTIO_META_DNS_CAPTURE",
      "DISABLE_ENVOY",
    ]);
    assert.deepEqual(portsOf(proxy), [15020, 15090]);
  });

  test("grpc-agent,grpc-simple: grpc-simple's mount first in the app container", () => {
    for (const cfg of [native, classic]) {
      const { of, spec } = injected(pod("grpc-agent,grpc-simple", [app]), cfg);
      assert.deepEqual(mountsOf(of("app")), [
        "/var/lib/grpc/data/",
        "/var/lib/istio/data",
        "/etc/istio/proxy",
        "/var/run/secrets/workload-spiffe-credentials",
      ]);
      assert.deepEqual(envOf(of("app")), [
        "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT",
        "GRPC_XDS_BOOTSTRAP",
        "GRPC_GO_LOG_VERBOSITY_LEVEL",
        "GRPC_GO_LOG_SEVERITY_LEVEL",
      ]);
      assert.deepEqual(
        spec.volumes?.map((v) => v.name),
        [
          "grpc-io-proxyless-bootstrap",
          "workload-socket",
          "workload-certs",
          "istio-xds",
          "istio-data",
          "istio-podinfo",
          "istio-token",
          "istiod-ca-cert",
          "extra",
        ],
      );
    }
  });

  test("grpc-simple,sidecar with the Pod's own istio-proxy: each template merged over it in turn", () => {
    const own: Container = { name: "istio-proxy", image: "auto", env: env("ISTIO_META_X", "CA_ADDR") };
    const proxy = injected(pod("grpc-simple,sidecar", [app, own]), classic).of("istio-proxy");
    assert.deepEqual(envOf(proxy), [
      "PILOT_CERT_PROVIDER",
      ...GRPC_SIMPLE_ENV,
      "ISTIO_META_X",
      ...SIDECAR_ENV.slice(1),
    ]);
    assert.deepEqual(mountsOf(proxy), [...SIDECAR_MOUNTS, "/var/lib/grpc/data/"]);
  });

  test("grpc-simple,sidecar: the Pod's volumes and init containers under each template in turn", () => {
    const volumes = [
      { name: "extra", emptyDir: {} },
      { name: "workload-socket", csi: { driver: "csi.spiffe.io", readOnly: true } },
      { name: "istio-data", emptyDir: { medium: "Memory" } },
    ];
    const initContainers: Container[] = [
      { name: "setup", image: "busybox" },
      { name: "istio-init", image: "auto" },
    ];
    const { spec } = injected(pod("grpc-simple,sidecar", [app], { volumes, initContainers }), classic);
    assert.deepEqual(
      spec.volumes?.map((v) => v.name),
      [
        "grpc-io-proxyless-bootstrap",
        "extra",
        "workload-socket",
        "credential-socket",
        "workload-certs",
        "istio-envoy",
        "istio-data",
        "istio-podinfo",
        "istio-token",
        "istiod-ca-cert",
        "istio-ca-crl",
      ],
    );
    assert.deepEqual(
      spec.initContainers?.map((c) => c.name),
      ["grpc-bootstrap-init", "setup", "istio-init"],
    );
  });
});
