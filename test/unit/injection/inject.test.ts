import assert from "node:assert/strict";
import { describe, test } from "node:test";
import jsonpatch from "fast-json-patch";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { namesJson } from "../../../src/injection/metadata.js";
import { InjectionError } from "../../../src/injection/types.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const config = buildConfig({});
const pod = (annotations: Record<string, string> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "demo", annotations, managedFields: [{ manager: "kubectl" }] },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});
const proxyOf = (p: Pod): Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");
const env = (c: Container | undefined, name: string): string | undefined => c?.env?.find((e) => e.name === name)?.value;

describe("inject", () => {
  test("a skipped pod gets no patch and is returned as is", () => {
    const input = pod({ "sidecar.istio.io/inject": "false" });
    const r = inject(input, { namespace: "demo" }, config);
    assert.equal(r.decision.inject, false);
    assert.deepEqual(r.patch, []);
    assert.equal(r.pod, input);
  });

  test("the patch never touches managedFields and reproduces the result", () => {
    const input = pod();
    const r = inject(input, { namespace: "demo" }, config);
    assert.ok(r.patch.every((op) => !op.path.startsWith("/metadata/managedFields")));
    const out = jsonpatch.applyPatch(
      structuredClone(input),
      structuredClone(r.patch) as jsonpatch.Operation[],
      true,
      false,
    ).newDocument;
    assert.deepEqual(out, JSON.parse(JSON.stringify(r.pod)));
  });

  test("webhook path parameters become proxy env", () => {
    const r = inject(
      pod(),
      { namespace: "demo", pathEnv: { ISTIO_META_CLUSTER_ID: "east", ISTIO_META_NETWORK: "n1" } },
      config,
    );
    const proxy = proxyOf(r.pod);
    assert.equal(env(proxy, "ISTIO_META_CLUSTER_ID"), "east");
    assert.equal(env(proxy, "ISTIO_META_NETWORK"), "n1");
  });

  test("nativeSidecars auto follows what the cluster supports", () => {
    const native = inject(pod(), { namespace: "demo", nativeSidecarsSupported: true }, config);
    assert.equal(proxyOf(native.pod)?.restartPolicy, "Always");
    assert.ok(native.pod.spec?.initContainers?.some((c) => c.name === "istio-proxy"));
    const classic = inject(pod(), { namespace: "demo", nativeSidecarsSupported: false }, config);
    assert.ok(classic.pod.spec?.containers.some((c) => c.name === "istio-proxy"));
  });

  test("the owner comes from the controller reference when the pod has a generated name", () => {
    const input: Pod = {
      metadata: {
        generateName: "web-abc12-",
        labels: { "pod-template-hash": "abc12" },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-abc12", controller: true }],
      },
      spec: { containers: [{ name: "web" }] },
    };
    const proxy = proxyOf(inject(input, { namespace: "shop" }, config).pod);
    assert.equal(env(proxy, "ISTIO_META_OWNER"), "kubernetes://apis/apps/v1/namespaces/shop/deployments/web");
    assert.equal(env(proxy, "ISTIO_META_WORKLOAD_NAME"), "web");
  });

  test("deprecated and ineffective annotations are reported as warnings, each short", () => {
    const r = inject(
      pod({
        "traffic.sidecar.istio.io/kubevirtInterfaces": "net1",
        "readiness.status.sidecar.istio.io/applicationPorts": "8080",
        "sidecar.istio.io/inject": "true",
      }),
      { namespace: "demo" },
      config,
    );
    assert.ok(
      r.warnings.some((w) => /kubevirtInterfaces is deprecated: use istio.io\/reroute-virtual-interfaces/.test(w)),
    );
    assert.ok(r.warnings.some((w) => /applicationPorts has no effect/.test(w)));
    assert.ok(r.warnings.some((w) => /annotation is deprecated/.test(w)));
    for (const w of r.warnings) assert.ok(w.length <= 120, w);
    const native = inject(
      pod({ "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true" }),
      { namespace: "demo", nativeSidecarsSupported: true },
      config,
    );
    assert.ok(native.warnings.some((w) => /no effect with native sidecars/.test(w)));
  });

  test("ignored values are reported as warnings", () => {
    const r = inject(pod({ "sidecar.istio.io/proxyImage": "proxyv2:debug" }), { namespace: "demo" }, config);
    assert.ok(r.warnings.some((w) => w.includes("sidecar.istio.io/proxyImage")));
    assert.equal(proxyOf(r.pod)?.image, config.proxy.image);
  });

  test("invalid annotations are refused naming the annotation; malformed pods are refused naming the field", () => {
    assert.throws(
      () => inject(pod({ "traffic.sidecar.istio.io/includeInboundPorts": "http" }), { namespace: "demo" }, config),
      (e: unknown) =>
        e instanceof InjectionError && e.code === "ERR_INVALID_ANNOTATION" && e.message.includes("includeInboundPorts"),
    );
    assert.throws(
      () => inject({ metadata: {}, spec: { containers: {} } } as unknown as Pod, { namespace: "demo" }, config),
      (e: unknown) => e instanceof InjectionError && e.code === "ERR_INVALID_POD" && e.field === "spec.containers",
    );
    assert.throws(
      () =>
        inject(
          { metadata: { labels: { a: 1 } }, spec: { containers: [{ name: "x" }] } } as unknown as Pod,
          { namespace: "demo" },
          config,
        ),
      (e: unknown) => e instanceof InjectionError && e.field === 'metadata.labels["a"]',
    );
  });

  test("a scrape of an Istio port is refused", () => {
    assert.throws(
      () => inject(pod({ "prometheus.io/port": "15090" }), { namespace: "demo" }, config),
      (e: unknown) => e instanceof InjectionError && e.field === "prometheus.io/port",
    );
  });
});

describe("the status annotation's lists", () => {
  test("are the JSON of the injected names, as JSON.stringify writes them, whatever the names hold", () => {
    const odd = ['quo"te', "back\\slash", "tab\there", "ünï", "emoji 🚀", "lone \ud800", "x".repeat(100), ""];
    for (const name of odd) {
      assert.equal(namesJson([{ name }]), JSON.stringify([name]), name);
      assert.equal(namesJson([{ name: "a" }, { name }, {}]), JSON.stringify(["a", name, null]), name);
    }
    assert.equal(namesJson([]), "null");
  });

  test("an injected Pod's status names what was injected", () => {
    const r = inject(pod(), { namespace: "demo" }, config);
    const status = JSON.parse(r.pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "") as Record<
      string,
      unknown
    >;
    assert.deepEqual(status.initContainers, ["istio-init"]);
    assert.deepEqual(status.containers, ["istio-proxy"]);
    assert.equal(status.imagePullSecrets, null);
    assert.equal(status.revision, "default");
  });
});

describe("re-injection keeps the Pod's volumes and pull secrets (Istio strips only containers)", () => {
  const volumeOf = (p: Pod, name: string): unknown => p.spec?.volumes?.find((v) => v.name === name);
  const csiPod = (annotations: Record<string, string>): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "demo", annotations },
    spec: {
      containers: [{ name: "web", image: "nginx" }],
      // SPIRE's agent hands the workload its socket through a CSI driver in place of the emptyDir.
      volumes: [{ name: "workload-socket", csi: { driver: "csi.spiffe.io", readOnly: true } }],
    },
  });

  test("a volume named like an injected one keeps the Pod's own source, injected once, twice, or with a status", () => {
    const once = inject(csiPod({}), { namespace: "demo" }, config).pod;
    const twice = inject(once, { namespace: "demo" }, config).pod;
    const status = inject(
      csiPod({ "sidecar.istio.io/status": '{"volumes":["workload-socket"]}' }),
      { namespace: "demo" },
      config,
    ).pod;
    for (const p of [once, twice, status]) {
      assert.deepEqual(volumeOf(p, "workload-socket"), {
        name: "workload-socket",
        csi: { driver: "csi.spiffe.io", readOnly: true },
      });
    }
    assert.deepEqual(twice, once, "injecting twice gives the same Pod");
  });

  test("an older injection's volume that the app still mounts stays, and so does a pull secret it named", () => {
    const input: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "p",
        namespace: "demo",
        annotations: { "sidecar.istio.io/status": '{"volumes":["istio-certs"],"imagePullSecrets":["regcred"]}' },
      },
      spec: {
        containers: [{ name: "app", image: "img", volumeMounts: [{ name: "istio-certs", mountPath: "/etc/certs" }] }],
        volumes: [{ name: "istio-certs", secret: { secretName: "istio.default" } }],
        imagePullSecrets: [{ name: "regcred" }],
      },
    };
    const out = inject(input, { namespace: "demo" }, config).pod;
    assert.deepEqual(volumeOf(out, "istio-certs"), { name: "istio-certs", secret: { secretName: "istio.default" } });
    assert.deepEqual(out.spec?.imagePullSecrets, [{ name: "regcred" }]);
  });
});
