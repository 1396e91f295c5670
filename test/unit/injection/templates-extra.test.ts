import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { GRPC_SIMPLE_INIT_IMAGE, istioNamespace } from "../../../src/injection/templates-extra.js";
import { InjectionError } from "../../../src/injection/types.js";
import { MAX_TEMPLATE_UNITS, TEMPLATE_OWN_UNITS } from "../../../src/injection/inline-cost.js";
import type { Container, Pod } from "../../../src/kube/types.js";

describe("grpc-simple", () => {
  test("the control plane's namespace comes from the discovery address", () => {
    assert.equal(istioNamespace("istiod.istio-system.svc:15012"), "istio-system");
    assert.equal(istioNamespace("istiod-canary.mesh-cp.svc.cluster.local:15012"), "mesh-cp");
    assert.equal(istioNamespace("10.0.0.1:15012"), "istio-system");
    assert.equal(istioNamespace("pilot.example.com:15012"), "istio-system");
  });

  test("busybox writes the bootstrap, ISTIO_NAMESPACE set; merged metrics annotations without a proxy or its env", () => {
    const config = buildConfig({ discoveryAddress: "istiod.mesh-cp.svc:15012" });
    const pod: Pod = {
      metadata: {
        name: "g",
        annotations: { "inject.istio.io/templates": "grpc-simple", "prometheus.io/port": "9100" },
      },
      spec: { containers: [{ name: "server", image: "example.com/grpc:1" }] },
    };
    const r = inject(pod, { namespace: "demo" }, config);
    const init = r.pod.spec?.initContainers?.find((c) => c.name === "grpc-bootstrap-init");
    assert.equal(init?.image, GRPC_SIMPLE_INIT_IMAGE);
    assert.deepEqual(
      init?.env?.find((e) => e.name === "ISTIO_NAMESPACE"),
      { name: "ISTIO_NAMESPACE", value: "mesh-cp\n" },
    );
    const annotations = r.pod.metadata?.annotations ?? {};
    assert.equal(annotations["prometheus.io/port"], "15020");
    assert.equal(annotations["istio.io/rev"], undefined, "grpc-simple writes no revision annotation");
    const all = [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])];
    assert.ok(!all.some((c) => c.name === "istio-proxy"));
    assert.ok(!all.some((c) => c.env?.some((e) => e.name === "ISTIO_PROMETHEUS_ANNOTATIONS")));
  });
});

describe("gateway", () => {
  const config = buildConfig({});
  const gateway = (annotations: Record<string, string>): Pod => ({
    metadata: { name: "gw", annotations: { "inject.istio.io/templates": "gateway", ...annotations } },
    spec: { containers: [{ name: "istio-proxy", image: "auto" }] },
  });

  test("sidecar.istio.io/bootstrapOverride: ISTIO_BOOTSTRAP_OVERRIDE, the ConfigMap as a volume, mounted, recorded in the status", () => {
    const r = inject(
      gateway({ "sidecar.istio.io/bootstrapOverride": "envoy-bootstrap-v2" }),
      { namespace: "demo" },
      config,
    );
    const proxy = r.pod.spec?.containers?.find((c) => c.name === "istio-proxy");
    assert.deepEqual(
      proxy?.env?.find((e) => e.name === "ISTIO_BOOTSTRAP_OVERRIDE"),
      { name: "ISTIO_BOOTSTRAP_OVERRIDE", value: "/etc/istio/custom-bootstrap/custom_bootstrap.json" },
    );
    const mounts = proxy?.volumeMounts?.map((m) => m.name) ?? [];
    assert.equal(mounts[mounts.indexOf("istio-data") + 1], "custom-bootstrap-volume");
    assert.deepEqual(
      proxy?.volumeMounts?.find((m) => m.name === "custom-bootstrap-volume"),
      { name: "custom-bootstrap-volume", mountPath: "/etc/istio/custom-bootstrap" },
    );
    const volumes = r.pod.spec?.volumes ?? [];
    assert.deepEqual(
      volumes.find((v) => v.name === "custom-bootstrap-volume"),
      { name: "custom-bootstrap-volume", configMap: { name: "envoy-bootstrap-v2" } },
    );
    assert.equal(volumes[volumes.findIndex((v) => v.name === "workload-certs") + 1]?.name, "custom-bootstrap-volume");
    const status = JSON.parse(r.pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}") as {
      volumes?: string[];
    };
    assert.ok(status.volumes?.includes("custom-bootstrap-volume"));
  });

  test("without the annotation: no bootstrap env, volume or mount", () => {
    const r = inject(gateway({}), { namespace: "demo" }, config);
    const proxy = r.pod.spec?.containers?.find((c) => c.name === "istio-proxy");
    assert.ok(proxy, "the gateway's istio-proxy is injected");
    assert.ok(!proxy.env?.some((e) => e.name === "ISTIO_BOOTSTRAP_OVERRIDE"));
    assert.ok(!proxy.volumeMounts?.some((m) => m.name === "custom-bootstrap-volume"));
    assert.ok(!r.pod.spec?.volumes?.some((v) => v.name === "custom-bootstrap-volume"));
  });
});

describe("grpc-agent", () => {
  const grpcAgentPod = (statusPort: string): Pod => ({
    metadata: {
      name: "g",
      annotations: { "inject.istio.io/templates": "grpc-agent", "status.sidecar.istio.io/port": statusPort },
    },
    spec: { containers: [{ name: "server", image: "example.com/grpc:1" }] },
  });
  const proxyOf = (pod: Pod) => pod.spec?.containers.find((c) => c.name === "istio-proxy");

  test("the proxy's port, postStart wait and readiness probe are on 15020, whatever the status port annotation", () => {
    // As Istio's template writes them (checked with Istio's injector at 86c9f01): the annotation
    // decides only whether there is a readiness probe.
    for (const statusPort of ["15020", "12345", "65535"]) {
      const proxy = proxyOf(inject(grpcAgentPod(statusPort), { namespace: "demo" }, buildConfig({})).pod);
      assert.deepEqual(proxy?.ports, [{ containerPort: 15020, protocol: "TCP", name: "mesh-metrics" }], statusPort);
      assert.deepEqual(proxy?.lifecycle?.postStart?.exec?.command, [
        "pilot-agent",
        "wait",
        "--url=http://localhost:15020/healthz/ready",
      ]);
      assert.equal(proxy?.readinessProbe?.httpGet?.port, 15020, statusPort);
      assert.equal(proxy?.readinessProbe?.httpGet?.path, "/healthz/ready");
    }
  });
});

describe("grpc-simple with an istio-proxy container of the Pod's own", () => {
  /** The Pod's own istio-proxy beside a worker, injected with grpc-simple; its result and proxy. */
  const injected = (own: Container): { pod: Pod; proxy: Container | undefined } => {
    const pod: Pod = {
      metadata: { name: "g", annotations: { "inject.istio.io/templates": "grpc-simple" } },
      spec: { containers: [{ name: "worker", image: "busybox" }, own] },
    };
    const out = inject(pod, { namespace: "demo" }, buildConfig({})).pod;
    return { pod: out, proxy: out.spec?.containers.find((c) => c.name === "istio-proxy") };
  };

  test("the container is kept and given the gRPC bootstrap like the others, as Istio's template does", () => {
    // Istio's grpc-simple template ranges over every container of the Pod, istio-proxy too
    // (checked with Istio's injector at 86c9f01, found by a differential run).
    const { pod, proxy } = injected({
      name: "istio-proxy",
      image: "my-proxy:dev",
      resources: { limits: { cpu: "3" } },
    });
    assert.equal(proxy?.image, "my-proxy:dev");
    assert.deepEqual(proxy?.resources, { limits: { cpu: "3" } });
    assert.deepEqual(
      proxy?.env?.map((e) => e.name),
      ["GRPC_XDS_BOOTSTRAP", "GRPC_GO_LOG_VERBOSITY_LEVEL", "GRPC_GO_LOG_SEVERITY_LEVEL"],
    );
    assert.deepEqual(proxy?.volumeMounts, [{ name: "grpc-io-proxyless-bootstrap", mountPath: "/var/lib/grpc/data/" }]);
    const status = JSON.parse(pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}") as {
      containers?: unknown;
    };
    assert.deepEqual(status.containers, ["worker", "istio-proxy"]);
  });

  test('its "image: auto" stays: the template sets no image to take its place', () => {
    // Istio's template merged over the Pod leaves the Pod's image; without one the API server
    // would refuse the Pod.
    const { proxy } = injected({ name: "istio-proxy", image: "auto", securityContext: { runAsUser: 1234 } });
    assert.equal(proxy?.image, "auto");
    assert.deepEqual(proxy?.securityContext, { runAsUser: 1234 });
    assert.equal(proxy?.env?.[0]?.name, "GRPC_XDS_BOOTSTRAP");
  });
});

describe("ISTIO_META_WORKLOAD_NAME of a Pod with a generateName alone", () => {
  test("gateway and grpc-agent leave it out; the sidecar template takes the workload-name label", () => {
    // Istio's gateway and grpc-agent templates write the workload's name only when there is one
    // (checked with Istio's injector at 86c9f01, found by a differential run).
    const env = (templates: string): Record<string, string | undefined> => {
      const pod: Pod = {
        metadata: {
          generateName: "w-",
          labels: { "service.istio.io/workload-name": "checkout" },
          annotations: { "inject.istio.io/templates": templates },
        },
        spec: { containers: [{ name: "web", image: "example.com/web:1" }] },
      };
      const out = inject(pod, { namespace: "demo" }, buildConfig({})).pod;
      const proxies = [...(out.spec?.initContainers ?? []), ...(out.spec?.containers ?? [])].filter(
        (c) => c.name === "istio-proxy",
      );
      return Object.fromEntries(
        proxies.map((c, i) => [String(i), c.env?.find((e) => e.name === "ISTIO_META_WORKLOAD_NAME")?.value]),
      );
    };
    assert.deepEqual(env("gateway"), { 0: undefined });
    assert.deepEqual(env("grpc-agent"), { 0: undefined });
    assert.deepEqual(env("sidecar"), { 0: "checkout" });
  });
});

describe("a template before sidecar, with native sidecars", () => {
  const config = buildConfig({ nativeSidecars: "true" });
  const pod = (templates: string): Pod => ({
    metadata: { name: "t", annotations: { "inject.istio.io/templates": templates } },
    spec: {
      initContainers: [{ name: "setup", image: "example.com/setup:1" }],
      containers: [{ name: "app", image: "example.com/app:1" }],
    },
  });

  for (const templates of ["grpc-agent,sidecar", "gateway,sidecar", "gateway,grpc-agent,sidecar"]) {
    test(`${templates}: one istio-proxy, a native sidecar with the earlier templates' settings, listed as Istio lists it`, () => {
      const r = inject(pod(templates), { namespace: "demo" }, config);
      const spec = r.pod.spec;
      assert.deepEqual(
        spec?.containers.map((c) => c.name),
        ["app"],
      );
      const proxies = (spec?.initContainers ?? []).filter((c) => c.name === "istio-proxy");
      assert.equal(proxies.length, 1);
      assert.equal(proxies[0]?.restartPolicy, "Always");
      if (templates.includes("grpc-agent"))
        assert.deepEqual(
          proxies[0]?.env?.find((e) => e.name === "ISTIO_META_GENERATOR"),
          { name: "ISTIO_META_GENERATOR", value: "grpc" },
        );
      // Istio's status record is its template Pod's: the proxy an earlier template put among the containers.
      const status = JSON.parse(r.pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}") as {
        containers: string[] | null;
        initContainers: string[] | null;
      };
      assert.ok(status.containers?.includes("istio-proxy"), JSON.stringify(status));
      assert.deepEqual(status.initContainers?.slice(0, 2), ["istio-init", "istio-proxy"], "the templates' own order");
    });
  }

  for (const templates of ["sidecar,grpc-agent", "sidecar,grpc-simple"])
    test(`${templates}: the later template's proxy merged into the native sidecar, not a second istio-proxy (Istio: two)`, () => {
      // grpc-simple writes the proxy among the containers only for a Pod that has its own.
      const input = pod(templates);
      if (templates.endsWith("grpc-simple")) input.spec?.containers.push({ name: "istio-proxy", image: "auto" });
      const r = inject(input, { namespace: "demo" }, config);
      const all = [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])];
      const proxies = all.filter((c) => c.name === "istio-proxy");
      assert.equal(proxies.length, 1);
      assert.equal(proxies[0]?.restartPolicy, "Always");
      assert.notEqual(proxies[0]?.image, "auto");
      if (templates.endsWith("grpc-agent")) assert.ok(proxies[0]?.env?.some((e) => e.name === "ISTIO_META_GENERATOR"));
    });
});

describe("a template named twice", () => {
  const config = buildConfig({ nativeSidecars: "false" });
  const pod = (templates: string): Pod => ({
    metadata: { name: "t", annotations: { "inject.istio.io/templates": templates } },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  });
  const proxyOf = (templates: string): Container | undefined =>
    inject(pod(templates), { namespace: "demo" }, config).pod.spec?.containers.find((c) => c.name === "istio-proxy");

  // Istio's selectTemplates keeps every name: each template is merged over the Pod in turn.
  test("is applied again where it comes again: the last one's fields win", () => {
    assert.equal(proxyOf("grpc-agent,sidecar,grpc-agent")?.readinessProbe?.httpGet?.port, 15020);
    assert.equal(proxyOf("sidecar,grpc-agent,sidecar")?.readinessProbe?.httpGet?.port, 15021);
    assert.equal(proxyOf("sidecar,gateway,sidecar")?.args?.[1], "sidecar");
    assert.equal(proxyOf("gateway,sidecar,gateway")?.args?.[1], "router");
  });

  test(`templates × (containers + ${TEMPLATE_OWN_UNITS}) of at most ${MAX_TEMPLATE_UNITS} are applied; more are refused, naming the annotation and the work`, () => {
    // One container: each name is 1 + TEMPLATE_OWN_UNITS units.
    const most = Math.floor(MAX_TEMPLATE_UNITS / (1 + TEMPLATE_OWN_UNITS));
    const names = (n: number): string =>
      Array.from({ length: n }, (_, i) => (i % 2 ? "grpc-agent" : "sidecar")).join(",");
    assert.equal(proxyOf(names(most))?.readinessProbe?.httpGet?.port, most % 2 ? 15021 : 15020);
    assert.throws(
      () => proxyOf(names(most + 1)),
      (e: unknown) =>
        e instanceof InjectionError &&
        e.code === "ERR_INVALID_ANNOTATION" &&
        e.message.startsWith("invalid annotation inject.istio.io/templates: ") &&
        e.message.includes(
          `its ${most + 1} templates and 1 container (init containers and those its overrides record counted) are ${(most + 1) * (1 + TEMPLATE_OWN_UNITS)} units`,
        ),
    );
  });

  test("names are trimmed as Go trims them: NEL is a space, the byte-order mark is not", () => {
    assert.equal(proxyOf("sidecar\u0085")?.args?.[1], "sidecar");
    assert.throws(() => proxyOf("\ufeffsidecar"), /unknown template/);
  });
});
