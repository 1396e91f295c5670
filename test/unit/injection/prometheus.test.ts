import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import {
  mergedPort,
  parseScrapeTargets,
  prometheusMerge,
  restorePrometheus,
  securePortAnnotation,
} from "../../../src/injection/prometheus.js";
import { InjectionError } from "../../../src/injection/types.js";

const config = buildConfig({});
const merge = (a: Record<string, string>, port = 15020) => prometheusMerge(a, config, port);
const envOf = (a: Record<string, string>, port = 15020): unknown => {
  const env = merge(a, port)?.env;
  return env === undefined ? undefined : JSON.parse(env);
};

describe("prometheus merge", () => {
  test("the env is Istio's {scrape, path, port}, every key present", () => {
    assert.deepEqual(envOf({ "prometheus.io/port": "9100" }), { scrape: "", path: "", port: "9100" });
    assert.equal(merge({ "prometheus.io/port": "9100" })?.env, '{"scrape":"","path":"","port":"9100"}');
  });

  test("no env when the app set nothing, or only empty values", () => {
    assert.equal(envOf({}), undefined);
    assert.equal(envOf({ "prometheus.io/port": "", "prometheus.io/path": "", "prometheus.io.scrape": "" }), undefined);
    assert.deepEqual(merge({ "prometheus.io/port": "" })?.annotations, {
      "prometheus.io/port": "15020",
      "prometheus.io/path": "/stats/prometheus",
      "prometheus.io/scrape": "true",
    });
  });

  test("scrape-targets: handed over, port and path from the first target, the annotation removed", () => {
    const m = merge({ "prometheus.istio.io/scrape-targets": "8080:/metrics, 9100", "prometheus.io/port": "7000" });
    assert.deepEqual(JSON.parse(m?.env ?? "null"), {
      scrape: "",
      path: "/metrics",
      port: "8080",
      targets: [
        { port: "8080", path: "/metrics" },
        { port: "9100", path: "/metrics" },
      ],
    });
    assert.deepEqual(m?.remove, ["prometheus.istio.io/scrape-targets"]);
  });

  test("an unreadable scrape-targets is ignored with a warning, and still removed", () => {
    const m = merge({ "prometheus_istio_io/scrape_targets": ":/x", "prometheus.io/port": "9100" });
    assert.deepEqual(JSON.parse(m?.env ?? "null"), { scrape: "", path: "", port: "9100" });
    assert.equal(m?.warnings.length, 1);
    assert.match(m?.warnings[0] ?? "", /no port/);
    assert.deepEqual(m?.remove, ["prometheus_istio_io/scrape_targets"]);
  });

  test("every port the agent would scrape is checked, the annotation named", () => {
    const refused = (a: Record<string, string>, field: string, why: RegExp) =>
      assert.throws(
        () => merge(a),
        (e: unknown) => e instanceof InjectionError && e.field === field && why.test(e.message),
      );
    refused(
      { "prometheus.istio.io/scrape-targets": "8080,15090:/x" },
      "prometheus.istio.io/scrape-targets",
      /15090 is reserved/,
    );
    refused(
      { "prometheus.istio.io/scrape-targets": "http:/x" },
      "prometheus.istio.io/scrape-targets",
      /not a port number/,
    );
    refused(
      { "prometheus.istio.io/scrape-targets": "70000" },
      "prometheus.istio.io/scrape-targets",
      /not a port number/,
    );
    refused({ "prometheus.io/port": "015021" }, "prometheus.io/port", /15021 is reserved/);
    refused({ "prometheus.io/port": "0" }, "prometheus.io/port", /not a port number/);
    refused({ "prometheus.io/port": "x" }, "prometheus.io/port", /not a port number/);
    // The agent's own port, when it is not a reserved one (prometheus.io/port at it is "already merged").
    assert.throws(
      () => merge({ "prometheus.istio.io/scrape-targets": "8080,15030" }, 15030),
      /15030 is the sidecar's status port/,
    );
  });

  test("the target is the agent's status port, and a Pod already pointed there is left alone", () => {
    assert.equal(merge({}, 15030)?.annotations["prometheus.io/port"], "15030");
    assert.equal(merge({ "prometheus.io/port": "15030" }, 15030), undefined);
  });

  test("scrape: the first spelling that reads as a boolean decides", () => {
    assert.equal(merge({ "prometheus.io/scrape": "maybe", "prometheus-io/scrape": "false" }), undefined);
    assert.ok(merge({ "prometheus.io/scrape": "maybe" }));
  });

  test("parseScrapeTargets", () => {
    assert.deepEqual(parseScrapeTargets(" 8080 : /a ,,9100:"), [
      { port: "8080", path: "/a" },
      { port: "9100", path: "/metrics" },
    ]);
    assert.deepEqual(parseScrapeTargets(""), []);
    assert.equal(parseScrapeTargets("8080, :/x"), undefined);
  });

  test("restore puts the app's settings back, targets as scrape-targets", () => {
    const a: Record<string, string> = {
      "prometheus.io/port": "15020",
      "prometheus.io/path": "/stats/prometheus",
      "prometheus.io/scrape": "true",
    };
    restorePrometheus(
      a,
      JSON.stringify({
        scrape: "true",
        path: "/metrics",
        port: "8080",
        targets: [
          { port: "8080", path: "/metrics" },
          { port: "9100", path: "/m" },
        ],
      }),
      15020,
    );
    assert.deepEqual(a, {
      "prometheus.io/scrape": "true",
      "prometheus.istio.io/scrape-targets": "8080:/metrics,9100:/m",
    });
    const b: Record<string, string> = {
      "prometheus.io/port": "15020",
      "prometheus.io/path": "/stats/prometheus",
      "prometheus.io/scrape": "true",
    };
    restorePrometheus(b, '{"scrape":"","path":"","port":"9100"}', 15020);
    assert.deepEqual(b, { "prometheus.io/port": "9100" });
  });

  test("restore leaves annotations changed since the merge alone: they are the app's current settings", () => {
    const a: Record<string, string> = {
      "prometheus.io/port": "9200",
      "prometheus.io/path": "/stats/prometheus",
      "prometheus.io/scrape": "true",
    };
    restorePrometheus(a, '{"scrape":"","path":"","port":"9100"}', 15020);
    assert.deepEqual(a, {
      "prometheus.io/port": "9200",
      "prometheus.io/path": "/stats/prometheus",
      "prometheus.io/scrape": "true",
    });
    assert.equal(mergedPort('{"statusPort":15030}\n', 15020), 15030);
    assert.equal(mergedPort("{}\n", 15020), 15020);
    assert.equal(mergedPort("not json", 15020), 15020);
    assert.equal(mergedPort(undefined, 15020), 15020);
  });

  test("re-injection reads the current annotations, as Istio does", () => {
    const pod = {
      metadata: { name: "m", annotations: { "prometheus.io/port": "9100" } },
      spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
    };
    const first = inject(pod, { namespace: "demo" }, config);
    const changed = structuredClone(first.pod);
    const annotations = changed.metadata?.annotations ?? {};
    annotations["prometheus.io/port"] = "9200";
    const again = inject(changed, { namespace: "demo" }, config);
    const proxy = [...(again.pod.spec?.initContainers ?? []), ...(again.pod.spec?.containers ?? [])].find(
      (c) => c.name === "istio-proxy",
    );
    assert.equal(
      proxy?.env?.find((e) => e.name === "ISTIO_PROMETHEUS_ANNOTATIONS")?.value,
      '{"scrape":"true","path":"/stats/prometheus","port":"9200"}',
    );
    assert.equal(again.pod.metadata?.annotations?.["prometheus.io/port"], "15020");
    // Unchanged, it restores the app's own and merges them again: injecting twice changes nothing.
    assert.deepEqual(inject(first.pod, { namespace: "demo" }, config).pod, first.pod);
  });

  test("secure port: announced from the proxy's env, unless set, empty or 0", () => {
    const env = (v: string) => [{ name: "ENVOY_SECURE_MERGED_METRICS_PORT", value: v }];
    assert.equal(securePortAnnotation({}, env("15091")), "15091");
    assert.equal(securePortAnnotation({}, env("0")), undefined);
    assert.equal(securePortAnnotation({}, env("")), undefined);
    assert.equal(securePortAnnotation({}, undefined), undefined);
    assert.equal(securePortAnnotation({ "prometheus-istio-io/secure-port": "1" }, env("15091")), undefined);
  });
});

describe("inject: the merge's env goes to the one istio-proxy", () => {
  test("sidecar,grpc-agent with native sidecars: one istio-proxy (README, deliberate), the env on it once", () => {
    const pod = {
      metadata: {
        name: "p",
        annotations: {
          "inject.istio.io/templates": "sidecar,grpc-agent",
          "prometheus.io/scrape": "true",
          "prometheus.io/port": "8080",
        },
      },
      spec: { containers: [{ name: "web", image: "web:1" }] },
    };
    const r = inject(pod, { namespace: "demo" }, buildConfig({ nativeSidecars: true }));
    const proxies = (list: readonly { name: string; env?: { name: string }[] }[] | undefined) =>
      (list ?? []).filter((c) => c.name === "istio-proxy");
    const init = proxies(r.pod.spec?.initContainers);
    assert.equal(init.length, 1);
    assert.equal(proxies(r.pod.spec?.containers).length, 0);
    const env = "ISTIO_PROMETHEUS_ANNOTATIONS";
    assert.equal(init[0]?.env?.filter((e) => e.name === env).length, 1);
  });
});
