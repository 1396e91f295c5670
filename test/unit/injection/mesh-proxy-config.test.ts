// The mesh's ProxyConfig (the config's proxyConfig, Istio's meshConfig.defaultConfig) with a
// Pod's proxy.istio.io/config over it, as istiod's webhook merges them (EffectiveProxyConfig:
// Istio's defaults <- the mesh's <- the annotation, each layer passing on what jsonpb writes of
// it; proxyMetadata merged key by key; proxyHeaders' correctProxyHeaders), and what the engine
// makes of the result: PROXY_CONFIG, the proxy's env, the interception mode, the image, and
// holdApplicationUntilProxyStarts as the sidecar template and reorderPod read it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { buildConfig, ConfigError, parseConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import { inject } from "../../../src/injection/inject.js";
import { parseProxyConfig } from "../../../src/injection/proxy-config.js";
import type { Container, Pod } from "../../../src/kube/types.js";
import { renderPolicy } from "../../../src/policy/render.js";

const mesh = (proxyConfig: Record<string, unknown>, more: Record<string, unknown> = {}): Config =>
  buildConfig({ ...more, proxyConfig });

const pod = (annotations: Record<string, string> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "demo", annotations },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});

const classic = { namespace: "demo", nativeSidecarsSupported: false };

function injected(config: Config, annotations: Record<string, string> = {}): Pod {
  return inject(pod(annotations), classic, config).pod;
}

const proxyOf = (p: Pod): Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");
const env = (p: Pod, name: string): string | undefined => proxyOf(p)?.env?.find((e) => e.name === name)?.value;
const names = (p: Pod): string[] => (p.spec?.containers ?? []).map((c) => c.name);

describe("merge: Istio's defaults <- proxyConfig <- the Pod's annotation", () => {
  // [mesh proxyConfig, annotation, PROXY_CONFIG]
  const TABLE: readonly [Record<string, unknown>, string | undefined, string][] = [
    [{}, undefined, "{}"],
    [{ concurrency: 2 }, undefined, '{"concurrency":2}'],
    [{ drainDuration: "45s", statusPort: 15020 }, undefined, "{}"], // Istio's defaults are left out
    [{ concurrency: 2 }, "concurrency: 4", '{"concurrency":4}'], // a top-level field is replaced
    [{ concurrency: 2 }, "drainDuration: 1m", '{"drainDuration":"60s","concurrency":2}'],
    // a wrapper is written at zero, so it replaces: concurrency 0, hold false
    [{ concurrency: 2 }, "concurrency: 0", '{"concurrency":0}'],
    [
      { holdApplicationUntilProxyStarts: true },
      "holdApplicationUntilProxyStarts: false",
      '{"holdApplicationUntilProxyStarts":false}',
    ],
    // a field at its zero value is not written, so the mesh's stays (EffectiveProxyConfig)
    [{ interceptionMode: "TPROXY" }, "interceptionMode: REDIRECT", '{"interceptionMode":"TPROXY"}'],
    [{ meshId: "m1" }, 'meshId: ""', '{"meshId":"m1"}'],
    // proxyMetadata maps are merged key by key, the annotation's value winning (mergeMap)
    [
      { proxyMetadata: { A: "1", B: "2" } },
      "proxyMetadata: {B: x, C: '3'}",
      '{"proxyMetadata":{"A":"1","B":"x","C":"3"}}',
    ],
    [{ proxyMetadata: { A: "1" } }, "proxyMetadata: {}", '{"proxyMetadata":{"A":"1"}}'],
    // a nested message is replaced whole
    [
      { tracing: { sampling: 10, zipkin: { address: "z:9411" } } },
      "tracing: {sampling: 20}",
      '{"tracing":{"sampling":20}}',
    ],
    // proxyHeaders keeps the mesh's forwardedClientCert, requestId, attemptCount, server and
    // envoyDebugHeaders when the annotation's leaves them unset (correctProxyHeaders), not the rest
    [
      {
        proxyHeaders: {
          forwardedClientCert: "SANITIZE",
          server: { disabled: true },
          preserveHttp1HeaderCase: true,
        },
      },
      "proxyHeaders: {requestId: {disabled: true}}",
      '{"proxyHeaders":{"forwardedClientCert":"SANITIZE","requestId":{"disabled":true},"server":{"disabled":true}}}',
    ],
    // serviceCluster and tracingServiceName are a oneof: setting one clears the other
    [
      { serviceCluster: "mine" },
      "tracingServiceName: CANONICAL_NAME_ONLY",
      '{"tracingServiceName":"CANONICAL_NAME_ONLY"}',
    ],
    [{ tracingServiceName: "APP_LABEL_AND_NAMESPACE" }, undefined, '{"tracingServiceName":"APP_LABEL_AND_NAMESPACE"}'],
    // proto names are read as JSON names
    [
      { drain_duration: "90s", proxy_metadata: { A: "1" } },
      undefined,
      '{"drainDuration":"90s","proxyMetadata":{"A":"1"}}',
    ],
  ];
  for (const [proxyConfig, annotation, want] of TABLE) {
    test(`${JSON.stringify(proxyConfig)} <- ${JSON.stringify(annotation ?? null)}`, () => {
      assert.equal(parseProxyConfig(annotation, mesh(proxyConfig)).json, `${want}\n`);
    });
  }

  test("the effective hold, interception mode and proxyMetadata are the merged ones", () => {
    const config = mesh({
      holdApplicationUntilProxyStarts: true,
      interceptionMode: "TPROXY",
      proxyMetadata: { A: "1" },
    });
    const none = parseProxyConfig(undefined, config);
    assert.equal(none.holdApplicationUntilProxyStarts, true);
    assert.equal(none.interceptionMode, "TPROXY");
    assert.deepEqual(none.proxyMetadata, { A: "1" });
    const over = parseProxyConfig(
      "holdApplicationUntilProxyStarts: false\ninterceptionMode: NONE\nproxyMetadata: {B: '2'}",
      config,
    );
    assert.equal(over.holdApplicationUntilProxyStarts, false);
    assert.equal(over.interceptionMode, "NONE");
    assert.deepEqual(over.proxyMetadata, { A: "1", B: "2" });
  });

  test("discoveryAddress and proxy.statusPort still feed PROXY_CONFIG; proxyConfig's own wins when both name a field", () => {
    const both = mesh(
      { discoveryAddress: "mesh.example:15012", concurrency: 1 },
      { discoveryAddress: "other.example:15012", proxy: { statusPort: 15021 } },
    );
    assert.equal(
      parseProxyConfig(undefined, both).json,
      '{"discoveryAddress":"mesh.example:15012","concurrency":1,"statusPort":15021}\n',
    );
    const port = mesh({ statusPort: 15030 }, { proxy: { statusPort: 15021 } });
    assert.equal(parseProxyConfig(undefined, port).json, '{"statusPort":15030}\n');
    // The agent's port (where merged metrics and rewritten probes go) is the ProxyConfig's.
    const p = injected(port, { "prometheus.io/scrape": "true" });
    assert.equal(p.metadata?.annotations?.["prometheus.io/port"], "15030");
  });

  test("without the annotation, no work per Pod: the same overlay, computed once per config", () => {
    const config = mesh({ concurrency: 2, proxyMetadata: { A: "1" } });
    assert.equal(parseProxyConfig(undefined, config), parseProxyConfig(undefined, config));
    assert.equal(parseProxyConfig("  ", config), parseProxyConfig(undefined, config));
  });
});

describe("what the engine makes of the merged ProxyConfig", () => {
  test("PROXY_CONFIG and the proxy's env carry the mesh's proxyMetadata, under the Pod's; proxy.proxyMetadata is env only", () => {
    const config = mesh(
      { proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true", B: "mesh" } },
      { proxy: { proxyMetadata: { B: "cfg", C: "cfg" } } },
    );
    const plain = injected(config);
    assert.equal(env(plain, "PROXY_CONFIG"), '{"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true","B":"mesh"}}\n');
    assert.equal(env(plain, "ISTIO_META_DNS_CAPTURE"), "true");
    assert.equal(env(plain, "B"), "mesh", "proxyConfig's proxyMetadata wins over proxy.proxyMetadata");
    assert.equal(env(plain, "C"), "cfg");
    const annotated = injected(config, { "proxy.istio.io/config": "proxyMetadata: {B: pod}" });
    assert.equal(env(annotated, "B"), "pod");
    assert.equal(env(annotated, "ISTIO_META_DNS_CAPTURE"), "true");
  });

  test("the interception mode: the Pod's sidecar.istio.io annotation, else the merged ProxyConfig's, else interception.mode", () => {
    const mode = (p: Pod): string | undefined => env(p, "ISTIO_META_INTERCEPTION_MODE");
    const tproxy = mesh({ interceptionMode: "TPROXY" });
    assert.equal(mode(injected(tproxy)), "TPROXY");
    assert.equal(env(injected(tproxy), "PROXY_CONFIG"), '{"interceptionMode":"TPROXY"}\n');
    assert.equal(mode(injected(tproxy, { "sidecar.istio.io/interceptionMode": "REDIRECT" })), "REDIRECT");
    // The Pod's ProxyConfig saying REDIRECT (jsonpb's zero, not written) leaves the mesh's, as
    // istiod's webhook merges (istioctl kube-inject, which applies the annotation raw, differs).
    assert.equal(mode(injected(tproxy, { "proxy.istio.io/config": "interceptionMode: REDIRECT" })), "TPROXY");
    assert.equal(mode(injected(tproxy, { "proxy.istio.io/config": "interceptionMode: NONE" })), "NONE");
    // proxyConfig naming a mode, even REDIRECT, wins over interception.mode
    const named = mesh({ interceptionMode: "REDIRECT" }, { interception: { mode: "TPROXY" } });
    assert.equal(mode(injected(named)), "REDIRECT");
    // interception.mode is the mesh's mode by another name: the same holds for it
    const legacy = buildConfig({ interception: { mode: "TPROXY" } });
    assert.equal(mode(injected(legacy)), "TPROXY");
    assert.equal(mode(injected(legacy, { "proxy.istio.io/config": "interceptionMode: REDIRECT" })), "TPROXY");
    assert.equal(mode(injected(legacy, { "proxy.istio.io/config": "interceptionMode: NONE" })), "NONE");
  });

  test("image.imageType of the mesh names the proxy's image type; the Pod's annotation wins", () => {
    const config = mesh({ image: { imageType: "distroless" } }, { proxy: { image: "example.com/proxyv2:1.28.0" } });
    assert.equal(proxyOf(injected(config))?.image, "example.com/proxyv2:1.28.0-distroless");
    assert.equal(
      proxyOf(injected(config, { "proxy.istio.io/config": "image: {imageType: debug}" }))?.image,
      "example.com/proxyv2:1.28.0-debug",
    );
  });
});

describe("holdApplicationUntilProxyStarts: (the Pod's or else the mesh's ProxyConfig) or proxy.holdApplicationUntilProxyStarts", () => {
  // [proxyConfig hold, proxy.hold, annotation, held]
  const TABLE: readonly [boolean | undefined, boolean, string | undefined, boolean][] = [
    [undefined, false, undefined, false],
    [true, false, undefined, true],
    [undefined, true, undefined, true],
    [true, false, "false", false], // the annotation replaces the mesh's
    [undefined, true, "false", true], // and is OR-ed with the config's proxy setting
    [true, true, "false", true],
    [undefined, false, "true", true],
  ];
  for (const [meshHold, values, annotation, held] of TABLE) {
    test(`proxyConfig ${String(meshHold)}, proxy ${String(values)}, annotation ${String(annotation)}: ${held ? "held" : "not held"}`, () => {
      const config = buildConfig({
        ...(meshHold === undefined ? {} : { proxyConfig: { holdApplicationUntilProxyStarts: meshHold } }),
        proxy: { holdApplicationUntilProxyStarts: values },
      });
      const p = injected(
        config,
        annotation === undefined ? {} : { "proxy.istio.io/config": `holdApplicationUntilProxyStarts: ${annotation}` },
      );
      assert.deepEqual(names(p), held ? ["istio-proxy", "app"] : ["app", "istio-proxy"]);
      assert.equal(proxyOf(p)?.lifecycle?.postStart !== undefined, held);
    });
  }

  test("the mesh's hold starts the proxy first with the gateway and gRPC templates too, native sidecars or not (reorderPod)", () => {
    const config = mesh({ holdApplicationUntilProxyStarts: true });
    for (const nativeSidecarsSupported of [false, true]) {
      for (const template of ["gateway", "grpc-agent"]) {
        const p = inject(
          pod({ "inject.istio.io/templates": template }),
          { namespace: "demo", nativeSidecarsSupported },
          config,
        ).pod;
        assert.equal(names(p)[0], "istio-proxy", template);
        assert.equal(env(p, "PROXY_CONFIG"), '{"holdApplicationUntilProxyStarts":true}\n', template);
      }
    }
    const unheld = injected(mesh({}), { "inject.istio.io/templates": "gateway" });
    assert.equal(names(unheld).at(-1), "istio-proxy");
  });

  test("native sidecars ignore it: istio-proxy is an init container, the app's containers keep their order", () => {
    const p = inject(
      pod(),
      { namespace: "demo", nativeSidecarsSupported: true },
      mesh({ holdApplicationUntilProxyStarts: true }),
    ).pod;
    assert.deepEqual(names(p), ["app"]);
    assert.equal(proxyOf(p)?.lifecycle?.postStart, undefined);
  });
});

test("every ProxyConfig of Istio's table, as the mesh's, gives the PROXY_CONFIG it gives as the annotation, or is refused", () => {
  // [proxy.istio.io/config value, Istio's PROXY_CONFIG or REFUSE], as the oracle answered (see
  // proxy-config-json.test.ts). Istio validates the mesh's defaultConfig as the annotation
  // (agent.ValidateMeshConfig), and over an empty mesh the two write the same PROXY_CONFIG.
  const oracleConfig = new URL("../../oracle/injector-config.yaml", import.meta.url);
  const base = parse(readFileSync(oracleConfig, "utf8")) as Record<string, unknown>;
  const rows = readFileSync(new URL("istio-proxy-config-json.jsonl", import.meta.url), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as [string, string]);
  // None today: value -> our PROXY_CONFIG, where it is not Istio's.
  const known = new Map<string, string>();
  let compared = 0;
  const differ: string[] = [];
  for (const [value, istio] of rows) {
    let doc: unknown;
    try {
      doc = parse(value);
    } catch {
      continue; // not YAML 1.2 (the config's reader); go-yaml's reading is the annotation's test
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) continue;
    let ours: string;
    try {
      ours = parseProxyConfig(undefined, buildConfig({ ...base, proxyConfig: doc })).json.trim();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      ours = /unknown ProxyConfig field/.test(e.message) ? "UNKNOWN" : "REFUSE";
    }
    // An unknown field, which Istio drops, is refused in a config file (load.ts).
    if (ours === "UNKNOWN") continue;
    compared++;
    if (ours !== (known.get(value) ?? istio)) differ.push(`${JSON.stringify(value)}: Istio ${istio}, ours ${ours}`);
  }
  assert.ok(compared >= 70, `only ${compared} rows compared`);
  assert.deepEqual(differ, []);
});

test("a config file's proxyConfig is refused as the annotation is, naming the config key", () => {
  assert.throws(
    () => parseConfig("proxyConfig:\n  drainDuration: 1500ms\n", "c.yaml"),
    /^ConfigError: config c\.yaml: proxyConfig: drainDuration must be whole seconds$/,
  );
});

test("the MutatingAdmissionPolicy renders the mesh's ProxyConfig as the webhook injects it", () => {
  const config = mesh({ holdApplicationUntilProxyStarts: true, proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true" } });
  const parts = renderPolicy(config, {
    apiVersion: "v1",
    name: "sidecar-injector",
    namespace: "sidecar-injector-system",
    nativeSidecarsSupported: false,
    enableNamespacesByDefault: false,
  }).parts;
  // Held: the proxy goes before the Pod's containers, as in the webhook's Pod.
  assert.deepEqual(
    parts.containers.before.map((c) => c.name),
    ["istio-proxy"],
  );
  const proxy = parts.containers.before[0];
  const webhook = proxyOf(injected(config));
  for (const name of ["PROXY_CONFIG", "ISTIO_META_DNS_CAPTURE"]) {
    const value = proxy?.env?.find((e) => e.name === name)?.value;
    assert.equal(value, webhook?.env?.find((e) => e.name === name)?.value, name);
  }
  assert.equal(
    proxy?.env?.find((e) => e.name === "PROXY_CONFIG")?.value,
    '{"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"},"holdApplicationUntilProxyStarts":true}\n',
  );
  assert.deepEqual(proxy?.lifecycle, webhook?.lifecycle);
});
