// One test per row of the README's "Deliberate differences from Istio" table: where Istio's
// injector produces a broken Pod, this injector does the sensible thing instead.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Config } from "../../../src/config/types.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const config = buildConfig({});
const web = (): Container => ({
  name: "web",
  image: "example.com/web:1",
  readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
});
const pod = (annotations: Record<string, string> = {}, containers: Container[] = [web()]): Pod => ({
  metadata: { name: "p", annotations },
  spec: { containers },
});
const all = (p: Pod): Container[] => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];
const env = (p: Pod, name: string): string | undefined =>
  all(p)
    .find((c) => c.name === "istio-proxy")
    ?.env?.find((e) => e.name === name)?.value;
const webOf = (p: Pod): Container | undefined => p.spec?.containers.find((c) => c.name === "web");

describe("deliberate differences from Istio", () => {
  test('status port "0": probes are left as they are (Istio points them at port 0)', () => {
    const r = inject(pod({ "status.sidecar.istio.io/port": "0" }), { namespace: "demo" }, config);
    assert.deepEqual(webOf(r.pod)?.readinessProbe, { httpGet: { path: "/ready", port: 8080 } });
    assert.equal(env(r.pod, "ISTIO_KUBE_APP_PROBERS"), undefined);
  });

  test('grpc-agent with status port "0": the proxy keeps its mounts and resources (Istio drops them)', () => {
    // Istio's grpc-agent template closes its status-port condition after the proxy's volume
    // mounts: with "0" it drops the readiness probe and the proxy's resources and mounts
    // (istio-xds, the socket to the app, among them). Ours drops the readiness probe only.
    const grpc = inject(
      pod({ "inject.istio.io/templates": "grpc-agent", "status.sidecar.istio.io/port": "0" }),
      { namespace: "demo" },
      config,
    );
    const proxy = grpc.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.equal(proxy?.readinessProbe, undefined);
    assert.ok(proxy?.volumeMounts?.some((m) => m.name === "istio-xds" && m.mountPath === "/etc/istio/proxy"));
    assert.ok(proxy?.resources?.requests !== undefined);
  });

  test("a Pod that opts out is left alone, a ProxyConfig that does not parse unread (kube-inject refuses it)", () => {
    for (const config of ["{holdApplicationUntilProxyStarts: yes", "concurrency: two"]) {
      const byAnnotation = inject(
        pod({ "sidecar.istio.io/inject": "false", "proxy.istio.io/config": config }),
        { namespace: "demo" },
        buildConfig({}),
      );
      assert.equal(byAnnotation.decision.inject, false);
      assert.deepEqual(byAnnotation.patch, []);
      const labelled: Pod = {
        metadata: {
          name: "p",
          labels: { "sidecar.istio.io/inject": "false" },
          annotations: { "proxy.istio.io/config": config },
        },
        spec: { containers: [web()] },
      };
      assert.equal(inject(labelled, { namespace: "demo" }, buildConfig({})).decision.inject, false);
      // Injected, the same value is refused, as Istio refuses it.
      assert.throws(() => inject(pod({ "proxy.istio.io/config": config }), { namespace: "demo" }, buildConfig({})), {
        code: "ERR_INVALID_ANNOTATION",
      });
    }
  });

  test('status port with blanks around it (" 15021"): probes go to 15021 (Istio: port 0)', () => {
    for (const v of [" 15021", "15021 "]) {
      const r = inject(pod({ "status.sidecar.istio.io/port": v }), { namespace: "demo" }, config);
      assert.deepEqual(webOf(r.pod)?.readinessProbe, { httpGet: { path: "/app-health/web/readyz", port: 15021 } });
      assert.equal(
        env(r.pod, "ISTIO_KUBE_APP_PROBERS"),
        '{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}',
      );
    }
  });

  test("status port with a blank after it: the native proxy's drain is sent to the port, as Istio's YAML reads it", () => {
    const native = buildConfig({ nativeSidecars: "true" });
    for (const v of ["15021 ", "15021\u2028", "15021\t\n"]) {
      const r = inject(pod({ "status.sidecar.istio.io/port": v }), { namespace: "demo" }, native);
      const proxy = all(r.pod).find((c) => c.name === "istio-proxy");
      assert.deepEqual(
        proxy?.lifecycle?.preStop?.exec?.command,
        ["pilot-agent", "request", "--debug-port=15021", "POST", "drain"],
        JSON.stringify(v),
      );
    }
    // A vertical tab passes the port's validation (trimmed) but not YAML, where the drain writes it.
    assert.throws(() => inject(pod({ "status.sidecar.istio.io/port": "15021\v" }), { namespace: "demo" }, native), {
      code: "ERR_INVALID_ANNOTATION",
    });
    assert.doesNotThrow(() =>
      inject(pod({ "status.sidecar.istio.io/port": "15021\v" }), { namespace: "demo" }, buildConfig({})),
    );
  });

  test("a Pod's own native-sidecar istio-proxy, native sidecars off: one, among the containers, no restartPolicy (Istio: two)", () => {
    const own: Container = {
      name: "istio-proxy",
      image: "auto",
      restartPolicy: "Always",
      securityContext: { runAsUser: 1234 },
    };
    for (const [how, annotations, cfg] of [
      ["config", {}, buildConfig({ nativeSidecars: "false" })],
      ["annotation", { "sidecar.istio.io/nativeSidecar": "false" }, buildConfig({ nativeSidecars: "true" })],
      ["gateway", { "inject.istio.io/templates": "gateway" }, buildConfig({ nativeSidecars: "true" })],
    ] as const) {
      const input: Pod = { ...pod(annotations), spec: { initContainers: [own], containers: [web()] } };
      const out = inject(input, { namespace: "demo" }, cfg).pod;
      const proxies = all(out).filter((c) => c.name === "istio-proxy");
      assert.equal(proxies.length, 1, how);
      assert.ok(out.spec?.containers.includes(proxies[0] as Container), how);
      assert.equal(proxies[0]?.restartPolicy, undefined, how);
      assert.equal(proxies[0]?.securityContext?.runAsUser, 1234, how);
    }
  });

  test("a Pod's own istio-proxy where Istio keeps it beside the injected one: one istio-proxy, the Pod's fields merged (Istio: two)", () => {
    const own: Container = { name: "istio-proxy", image: "auto", securityContext: { runAsUser: 1234 } };
    const cases: [string, Pod, Config][] = [
      [
        "declared among the init containers, native sidecars off",
        { ...pod({ "sidecar.istio.io/nativeSidecar": "false" }), spec: { initContainers: [own], containers: [web()] } },
        buildConfig({}),
      ],
      [
        "among the containers, grpc-agent,sidecar with native sidecars",
        pod({ "inject.istio.io/templates": "grpc-agent,sidecar" }, [web(), own]),
        buildConfig({ nativeSidecars: "true" }),
      ],
    ];
    for (const [how, input, cfg] of cases) {
      const proxies = all(inject(input, { namespace: "demo" }, cfg).pod).filter((c) => c.name === "istio-proxy");
      assert.equal(proxies.length, 1, how);
      assert.equal(proxies[0]?.securityContext?.runAsUser, 1234, how);
      assert.ok(proxies[0]?.image?.includes("proxyv2"), how);
    }
  });

  test("a template after sidecar and a proxy-writing one, native sidecars: one native sidecar, each template merged in turn (Istio: the later one's proxy, not a native sidecar)", () => {
    const cfg = buildConfig({ nativeSidecars: "true" });
    for (const [templates, args1, readinessPort] of [
      ["sidecar,grpc-agent,grpc-simple", "sidecar", 15020],
      ["sidecar,gateway,sidecar", "sidecar", 15021],
      ["sidecar,grpc-agent,gateway", "router", 15021],
    ] as const) {
      const out = inject(pod({ "inject.istio.io/templates": templates }), { namespace: "demo" }, cfg).pod;
      const proxies = all(out).filter((c) => c.name === "istio-proxy");
      assert.equal(proxies.length, 1, templates);
      assert.ok(out.spec?.initContainers?.includes(proxies[0] as Container), templates);
      assert.equal(proxies[0]?.restartPolicy, "Always", templates);
      assert.equal(proxies[0]?.args?.[1], args1, templates);
      assert.equal(proxies[0]?.readinessProbe?.httpGet?.port, readinessPort, templates);
    }
  });

  test('a proxy.istio.io/overrides record without a status: applied wherever the proxy goes; a nameless entry read as the name "" (Istio: an app container named "")', () => {
    const recorded = (overrides: string): Pod => pod({ "proxy.istio.io/overrides": overrides });
    const out = inject(
      recorded('{"containers":[{"name":"istio-proxy","env":[{"name":"A","value":"1"}]}]}'),
      { namespace: "demo" },
      buildConfig({ nativeSidecars: "true" }),
    ).pod;
    const proxy = out.spec?.initContainers?.find((c) => c.name === "istio-proxy");
    assert.equal(proxy?.env?.find((e) => e.name === "A")?.value, "1");
    // A nameless entry is read as Go reads it (the name ""), as Istio does: the Pod is injected.
    for (const nameless of ['{"containers":[{}]}', '{"containers":[null]}'])
      assert.equal(inject(recorded(nameless), { namespace: "demo" }, config).decision.inject, true, nameless);
  });

  test("a Pod's own istio-init among its containers: merged over the injected one, left nowhere else (Istio: two)", () => {
    const own: Container = { name: "istio-init", image: "example.com/own-init:1" };
    // grpc-simple writes an entry for each of the Pod's containers, the Pod's istio-init among them.
    const cases: Record<string, string>[] = [{}, { "inject.istio.io/templates": "sidecar,grpc-simple" }];
    for (const annotations of cases) {
      const out = inject(pod(annotations, [web(), own]), { namespace: "demo" }, config).pod;
      const inits = all(out).filter((c) => c.name === "istio-init");
      assert.equal(inits.length, 1, JSON.stringify(annotations));
      assert.ok(out.spec?.initContainers?.includes(inits[0] as Container), "among the init containers");
      assert.equal(inits[0]?.image, "example.com/own-init:1");
      assert.ok(inits[0]?.args?.includes("istio-iptables"), "the injected one, the Pod's fields over it");
    }
  });

  test("a proxyImage without '/' where the image is configured in full: the configured image (Istio: hub/full-name:tag)", () => {
    const full = buildConfig({
      proxy: { image: "my.reg/proxy:2.0", imageTyped: false },
      proxyInit: { image: "my.reg/proxyinit:1.0", imageTyped: false },
    });
    const r = inject(pod({ "sidecar.istio.io/proxyImage": "proxyv2-debug" }), { namespace: "demo" }, full);
    const image = (name: string) => all(r.pod).find((c) => c.name === name)?.image;
    assert.equal(image("istio-proxy"), "my.reg/proxy:2.0");
    assert.equal(image("istio-init"), "my.reg/proxyinit:1.0");
    assert.ok(r.warnings.some((w) => w.includes("sidecar.istio.io/proxyImage") && w.includes("ignored")));
  });

  test("a Pod's own container a template writes, whose ports repeat a containerPort: each kept (Istio: all over the first)", () => {
    // Kubernetes merges ports by containerPort: Istio merges the Pod's 53/UDP over its 53/TCP
    // (two 53/UDP named dns, which the API server refuses). Ours keeps each, in Istio's order.
    const dns: Container = {
      name: "dns",
      image: "example.com/dns:1",
      ports: [
        { containerPort: 53, protocol: "TCP", name: "dns-tcp" },
        { containerPort: 53, protocol: "UDP", name: "dns" },
      ],
    };
    const proxy: Container = {
      name: "istio-proxy",
      image: "auto",
      ports: [
        { containerPort: 15090, protocol: "UDP", name: "u" },
        { containerPort: 15090, protocol: "TCP", name: "t" },
      ],
    };
    const grpc = inject(pod({ "inject.istio.io/templates": "grpc-agent" }, [dns]), { namespace: "demo" }, config).pod;
    assert.deepEqual(grpc.spec?.containers.find((c) => c.name === "dns")?.ports, dns.ports);
    const own = inject(pod({}, [web(), proxy]), { namespace: "demo" }, config).pod;
    assert.deepEqual(
      all(own).find((c) => c.name === "istio-proxy")?.ports,
      proxy.ports,
      "the Pod's own ports over the template's 15090",
    );
  });

  test("a first injection whose app probe is on the Pod's own status port: not handed to the agent (Istio: handed over)", () => {
    const r = inject(pod({ "status.sidecar.istio.io/port": "8080" }), { namespace: "demo" }, config);
    assert.equal(env(r.pod, "ISTIO_KUBE_APP_PROBERS"), undefined);
  });

  test("a proxyMetadata key YAML 1.1 would read as something else: the env var is named as written (Istio: refused or renamed)", () => {
    for (const key of ["yes", "1", "null", "A #c"]) {
      const r = inject(
        pod({ "proxy.istio.io/config": JSON.stringify({ proxyMetadata: { [key]: "v" } }) }),
        { namespace: "demo" },
        config,
      );
      assert.equal(env(r.pod, key), "v", key);
    }
  });

  test("a Pod's own workload-socket emptyDir keeps its settings (Istio: the template's null emptyDir drops them)", () => {
    for (const templates of ["sidecar", "gateway", "grpc-agent"]) {
      const input = pod({ "inject.istio.io/templates": templates });
      input.spec = {
        ...input.spec,
        containers: input.spec?.containers ?? [],
        volumes: [{ name: "workload-socket", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }],
      };
      const r = inject(input, { namespace: "demo" }, config);
      const volumes = (r.pod.spec?.volumes ?? []).filter((v) => v.name === "workload-socket");
      assert.deepEqual(
        volumes,
        [{ name: "workload-socket", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }],
        templates,
      );
    }
  });

  test("statusPort in proxy.istio.io/config: probes and prometheus.io/port go to it (istiod's webhook: the mesh's 15020)", () => {
    const r = inject(pod({ "proxy.istio.io/config": "statusPort: 15030" }), { namespace: "demo" }, config);
    assert.deepEqual(webOf(r.pod)?.readinessProbe, { httpGet: { path: "/app-health/web/readyz", port: 15030 } });
    assert.equal(r.pod.metadata?.annotations?.["prometheus.io/port"], "15030");
  });

  test("re-injection after native sidecars are switched off: one istio-proxy (Istio: two)", () => {
    const native = inject(pod(), { namespace: "demo" }, buildConfig({ nativeSidecars: "true" }));
    assert.ok(native.pod.spec?.initContainers?.some((c) => c.name === "istio-proxy"));
    for (const [how, cfg, annotations] of [
      ["config", buildConfig({ nativeSidecars: "false" }), {}],
      ["annotation", buildConfig({ nativeSidecars: "true" }), { "sidecar.istio.io/nativeSidecar": "false" }],
    ] as const) {
      const again = structuredClone(native.pod);
      again.metadata = { ...again.metadata, annotations: { ...again.metadata?.annotations, ...annotations } };
      const r = inject(again, { namespace: "demo" }, cfg);
      assert.deepEqual(all(r.pod).filter((c) => c.name === "istio-proxy").length, 1, how);
      assert.deepEqual(
        r.pod.spec?.initContainers?.map((c) => c.name),
        ["istio-init"],
        how,
      );
      assert.equal(r.pod.spec?.containers.at(-1)?.name, "istio-proxy", how);
    }
  });

  test("re-injection keeps the recorded overrides over the template (Istio: the template wins where both set a field)", () => {
    const declared: Container = {
      name: "istio-proxy",
      image: "auto",
      securityContext: { runAsUser: 1234, runAsGroup: 4321 },
      resources: { limits: { memory: "2Gi" } },
    };
    const first = inject(pod({}, [web(), declared]), { namespace: "demo" }, config);
    const again = inject(first.pod, { namespace: "demo" }, config);
    assert.deepEqual(again.pod, first.pod);
    const proxy = all(again.pod).find((c) => c.name === "istio-proxy");
    const init = all(again.pod).find((c) => c.name === "istio-init");
    assert.equal(proxy?.securityContext?.runAsUser, 1234);
    assert.equal(
      init?.args?.[(init.args.indexOf("-u") ?? 0) + 1],
      "1234",
      "iptables exempts the uid the proxy runs as",
    );
  });

  test("re-injection keeps a recorded istio-init's own image and user (Istio: the template's image, runAsUser 0)", () => {
    const declared: Container = {
      name: "istio-init",
      image: "example.com/proxyv2:own",
      securityContext: { runAsUser: 1337 },
    };
    const first = inject(
      { metadata: { name: "p" }, spec: { containers: [web()], initContainers: [declared] } },
      { namespace: "demo" },
      config,
    );
    const init = (p: Pod): Container | undefined => p.spec?.initContainers?.find((c) => c.name === "istio-init");
    assert.equal(init(first.pod)?.image, "example.com/proxyv2:own");
    assert.match(first.pod.metadata?.annotations?.["proxy.istio.io/overrides"] ?? "", /"name":"istio-init"/);
    const again = inject(first.pod, { namespace: "demo" }, config);
    assert.deepEqual(again.pod, first.pod);
    assert.equal(init(again.pod)?.image, "example.com/proxyv2:own");
    assert.equal(init(again.pod)?.securityContext?.runAsUser, 1337);
  });

  test("re-injection after a config change gives what the current config injects (Istio keeps the old injection's extra env)", () => {
    const old = inject(pod(), { namespace: "demo" }, buildConfig({ proxy: { proxyMetadata: { OLD_SETTING: "1" } } }));
    assert.equal(env(old.pod, "OLD_SETTING"), "1");
    const again = inject(old.pod, { namespace: "demo" }, config);
    assert.equal(env(again.pod, "OLD_SETTING"), undefined);
    assert.deepEqual(again.pod, inject(pod(), { namespace: "demo" }, config).pod);
  });

  test("re-injection with its own status port: the rewritten probes are not handed to the agent as the app's", () => {
    const first = inject(
      pod({ "status.sidecar.istio.io/port": "15031" }, [
        web(),
        { name: "side", image: "example.com/side:1", livenessProbe: { httpGet: { path: "/l", port: "missing" } } },
      ]),
      { namespace: "demo" },
      config,
    );
    const again = inject(first.pod, { namespace: "demo" }, config);
    assert.equal(
      env(again.pod, "ISTIO_KUBE_APP_PROBERS"),
      '{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}',
    );
    assert.deepEqual(again.pod.spec, first.pod.spec);
  });
  test('re-injection after prometheus.istio.io/merge-metrics: "false": the app\'s own scrape annotations come back, no merge env', () => {
    const app = { "prometheus.io/scrape": "true", "prometheus.io/port": "9090" };
    const first = inject(pod(app), { namespace: "demo" }, config);
    assert.equal(first.pod.metadata?.annotations?.["prometheus.io/port"], "15020");
    const off = {
      ...first.pod,
      metadata: {
        ...first.pod.metadata,
        annotations: { ...first.pod.metadata?.annotations, "prometheus.istio.io/merge-metrics": "false" },
      },
    };
    const again = inject(off, { namespace: "demo" }, config);
    assert.equal(again.pod.metadata?.annotations?.["prometheus.io/port"], "9090");
    assert.equal(again.pod.metadata?.annotations?.["prometheus.io/path"], undefined);
    assert.equal(env(again.pod, "ISTIO_PROMETHEUS_ANNOTATIONS"), undefined);
  });
  test("proxy.istio.io/config: aliases expanding past the node limit, or nesting past 64 levels, are refused (Istio admits them)", () => {
    const list = `[${Array.from({ length: 1000 }, () => "1").join(",")}]`;
    const laughs = `a: &x ${list}\n${Array.from({ length: 132 }, (_, i) => `b${i}: *x`).join("\n")}`;
    const deep = "{a: ".repeat(65) + "1" + "}".repeat(65);
    for (const [what, annotation, why] of [
      ["aliases", laughs, /more than 131072 keys and items \(limit: nodes\)/],
      ["depth", deep, /nests deeper than 64 levels \(limit: depth\)/],
    ] as const) {
      assert.throws(
        () => inject(pod({ "proxy.istio.io/config": annotation }), { namespace: "demo" }, config),
        why,
        what,
      );
    }
    // One fewer level, or aliases within the limit: read (their unknown fields admitted).
    const within = `a: &x ${list}\n${Array.from({ length: 125 }, (_, i) => `b${i}: *x`).join("\n")}`;
    for (const annotation of [within, "{a: ".repeat(64) + "1" + "}".repeat(64)])
      assert.ok(inject(pod({ "proxy.istio.io/config": annotation }), { namespace: "demo" }, config).pod.spec);
  });
});
