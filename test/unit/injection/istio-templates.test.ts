// What Istio's gateway, grpc-agent and grpc-simple templates write where they differ from the
// sidecar template (found by the differential corpus, test/differential/).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const config = buildConfig({});
const LONG = "a-very-long-application-name-that-goes-on-and-on-past-sixty-three-chars";
const pod = (
  templates: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "p",
    namespace: "demo",
    labels,
    annotations: { "inject.istio.io/templates": templates, ...annotations },
  },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});
const workload = { kind: "Deployment", name: "shop", apiVersion: "apps/v1", namespace: "demo" };
const all = (p: Pod): Container[] => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];
const env = (c: Container | undefined, name: string): string | undefined => c?.env?.find((e) => e.name === name)?.value;

describe("gateway and grpc-agent templates", () => {
  for (const templates of ["gateway", "grpc-agent"]) {
    test(`${templates}: the canonical name is not cut to 63 characters, the sidecar's is`, () => {
      const out = inject(pod(templates, { app: LONG }), { namespace: "demo" }, config).pod;
      assert.equal(out.metadata?.labels?.["service.istio.io/canonical-name"], LONG);
      const sidecar = inject(pod("sidecar", { app: LONG }), { namespace: "demo" }, config).pod;
      assert.equal(sidecar.metadata?.labels?.["service.istio.io/canonical-name"], LONG.slice(0, 63));
    });

    test(`${templates}: ISTIO_META_WORKLOAD_NAME is the workload's name, not the workload-name label`, () => {
      const labels = { "service.istio.io/workload-name": "checkout-workload" };
      const out = inject(pod(templates, labels), { namespace: "demo", workload }, config).pod;
      const proxy = all(out).find((c) => c.name === "istio-proxy");
      assert.equal(env(proxy, "ISTIO_META_WORKLOAD_NAME"), "shop");
      const sidecar = inject(pod("sidecar", labels), { namespace: "demo", workload }, config).pod;
      assert.equal(
        env(
          all(sidecar).find((c) => c.name === "istio-proxy"),
          "ISTIO_META_WORKLOAD_NAME",
        ),
        "checkout-workload",
      );
    });
  }

  test("gateway: no resources on the proxy, whatever the resource annotations say", () => {
    const out = inject(
      pod("gateway", {}, { "sidecar.istio.io/proxyCPULimit": "2000m", "sidecar.istio.io/proxyMemory": "1Gi" }),
      { namespace: "demo" },
      config,
    ).pod;
    assert.equal(all(out).find((c) => c.name === "istio-proxy")?.resources, undefined);
  });

  test("grpc-agent: the bootstrap override's volume, the user's volumes and mounts", () => {
    const annotations = {
      "sidecar.istio.io/bootstrapOverride": "custom-bootstrap",
      "sidecar.istio.io/userVolume": '{"cache":{"emptyDir":{}}}',
      "sidecar.istio.io/userVolumeMount": '{"cache":{"mountPath":"/var/cache/proxy"}}',
    };
    const out = inject(pod("grpc-agent", {}, annotations), { namespace: "demo" }, config).pod;
    const volumes = out.spec?.volumes ?? [];
    assert.deepEqual(
      volumes.find((v) => v.name === "custom-bootstrap-volume"),
      { name: "custom-bootstrap-volume", configMap: { name: "custom-bootstrap" } },
    );
    assert.deepEqual(volumes.at(-1), { name: "cache", emptyDir: {} });
    const mounts = all(out).find((c) => c.name === "istio-proxy")?.volumeMounts ?? [];
    assert.deepEqual(mounts.at(-1), { name: "cache", mountPath: "/var/cache/proxy" });
    assert.equal(
      mounts.some((m) => m.name === "custom-bootstrap-volume"),
      false,
    );
  });

  for (const templates of ["sidecar", "gateway", "grpc-agent"]) {
    test(`${templates}: an empty bootstrapOverride is a ConfigMap volume with no name, as Istio writes it`, () => {
      const annotations = { "sidecar.istio.io/bootstrapOverride": "" };
      const out = inject(pod(templates, {}, annotations), { namespace: "demo" }, config).pod;
      assert.deepEqual(
        out.spec?.volumes?.find((v) => v.name === "custom-bootstrap-volume"),
        { name: "custom-bootstrap-volume", configMap: {} },
      );
    });
  }

  test("grpc-agent: istio-proxy comes first in what the template adds (status, overrides record)", () => {
    const input = pod("grpc-agent");
    input.spec = {
      containers: [
        { name: "app", image: "example.com/app:1" },
        { name: "istio-proxy", image: "auto", args: ["proxy", "sidecar", "--concurrency", "4"] },
      ],
    };
    const out = inject(input, { namespace: "demo" }, config).pod;
    const status = JSON.parse(out.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}") as {
      containers?: string[];
    };
    assert.deepEqual(status.containers, ["istio-proxy", "app"]);
    const overrides = JSON.parse(out.metadata?.annotations?.["proxy.istio.io/overrides"] ?? "{}") as {
      containers?: { name: string }[];
    };
    assert.deepEqual(
      overrides.containers?.map((c) => c.name),
      ["istio-proxy", "app"],
    );
    assert.deepEqual(
      out.spec?.containers.map((c) => c.name),
      ["app", "istio-proxy"],
    );
  });

  test("gateway: ISTIO_META_INTERCEPTION_MODE is the mesh's, whatever the Pod's annotation", () => {
    const out = inject(
      pod("gateway", {}, { "sidecar.istio.io/interceptionMode": "TPROXY" }),
      { namespace: "demo" },
      config,
    ).pod;
    assert.equal(
      env(
        all(out).find((c) => c.name === "istio-proxy"),
        "ISTIO_META_INTERCEPTION_MODE",
      ),
      "REDIRECT",
    );
  });
});

describe("grpc-simple template", () => {
  const out = inject(pod("grpc-simple"), { namespace: "demo" }, config).pod;
  const init = out.spec?.initContainers?.find((c) => c.name === "grpc-bootstrap-init");

  test("the bootstrap init container is Istio's: busybox, ISTIO_NAMESPACE, the discovery address from it", () => {
    assert.equal(init?.image, "busybox:1.28");
    assert.deepEqual(
      init?.env?.map((e) => e.name),
      ["INSTANCE_IP", "POD_NAME", "POD_NAMESPACE", "ISTIO_NAMESPACE"],
    );
    assert.equal(env(init, "ISTIO_NAMESPACE"), "istio-system\n");
    const script = init?.command?.[2] ?? "";
    assert.match(script, /^NODE_ID="sidecar~\$\{INSTANCE_IP\}~\$\{POD_NAME\}\.\$\{POD_NAMESPACE\}~cluster\.local"\n/);
    assert.match(script, /\nSERVER_URI="dns:\/\/\/istiod\.\$\{ISTIO_NAMESPACE\}\.svc:15010"\n/);
    assert.match(script, /"GENERATOR": "grpc"/);
    assert.ok(script.endsWith("}' > /var/lib/grpc/data/bootstrap.json"));
  });

  test("no istio.io/rev annotation", () => {
    assert.equal(out.metadata?.annotations?.["istio.io/rev"], undefined);
    assert.equal(out.metadata?.annotations?.["sidecar.istio.io/rewriteAppHTTPProbers"], "false");
  });

  test("grpc-bootstrap-init goes before the user's init containers, as a strategic merge orders them", () => {
    const input = pod("grpc-simple");
    input.spec = {
      ...input.spec!,
      initContainers: [
        { name: "setup", image: "example.com/setup:1" },
        { name: "migrate", image: "example.com/migrate:1" },
      ],
    };
    const r = inject(input, { namespace: "demo" }, config).pod;
    assert.deepEqual(
      r.spec?.initContainers?.map((c) => c.name),
      ["grpc-bootstrap-init", "setup", "migrate"],
    );
  });
});
