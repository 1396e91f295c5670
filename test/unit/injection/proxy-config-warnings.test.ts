// Unknown ProxyConfig fields in proxy.istio.io/config: Istio admits and drops them, so they are
// warned about, never refused: each named by its path (nested too) with the closest known field
// of its message (JSON or proto name), bounded in number and length whatever the Pod carries.
// Known fields, by either name, say nothing. Then through the engine, the preview and `check`:
// the warnings reach what the webhook answers, what the preview shows and what check reports.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sanitizeWarnings } from "../../../src/admission/review.js";
import { checkObject } from "../../../src/check/check.js";
import { closestName, editDistance } from "../../../src/injection/annotation-keys.js";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { InjectionError } from "../../../src/injection/types.js";
import { PROXY_CONFIG_LIMITS } from "../../../src/injection/yaml-limits.js";
import {
  MAX_FIELD_WARNINGS,
  parseProxyConfig,
  proxyConfigWarnings,
  unknownProxyConfigFields,
} from "../../../src/injection/proxy-config.js";
import type { Pod } from "../../../src/kube/types.js";
import { preview } from "../../../src/preview.js";

const config = buildConfig({});
const ANNOTATION = "proxy.istio.io/config";

function warningsFor(value: string): string[] {
  return proxyConfigWarnings({ [ANNOTATION]: value });
}

/** What a warning says for an unknown field at `path`, with `closest` when one is close. */
function said(path: string, closest?: string): string {
  return `unknown ProxyConfig field ${JSON.stringify(path)} in ${ANNOTATION} is ignored${closest === undefined ? "" : `; did you mean ${JSON.stringify(closest)}?`}`;
}

describe("unknown ProxyConfig fields", () => {
  const cases: readonly { name: string; value: string; want: readonly string[] }[] = [
    { name: "a typo at the top", value: "concurrenccy: 2", want: [said("concurrenccy", "concurrency")] },
    {
      name: "the letter case (jsonpb matches names exactly)",
      value: "Concurrency: 2",
      want: [said("Concurrency", "concurrency")],
    },
    {
      name: "a typo in JSON",
      value: '{"holdApplicationUntilProxyStart": true}',
      want: [said("holdApplicationUntilProxyStart", "holdApplicationUntilProxyStarts")],
    },
    {
      name: "a typo of a proto name: the proto name suggested",
      value: "hold_application_until_proxy_start: true",
      want: [said("hold_application_until_proxy_start", "hold_application_until_proxy_starts")],
    },
    {
      name: "nested",
      value: "tracing:\n  zipkn: {address: zipkin:9411}",
      want: [said("tracing.zipkn", "tracing.zipkin")],
    },
    {
      name: "nested twice",
      value: "proxyHeaders: {setCurrentClientCertDetails: {subjct: true}}",
      want: [
        said("proxyHeaders.setCurrentClientCertDetails.subjct", "proxyHeaders.setCurrentClientCertDetails.subject"),
      ],
    },
    {
      name: "nested under a proto name",
      value: "gateway_topology: {num_trusted_proxie: 1}",
      want: [said("gateway_topology.num_trusted_proxie", "gateway_topology.num_trusted_proxies")],
    },
    {
      name: "in a list item",
      value: "readinessProbe: {httpGet: {httpHeaders: [{name: a}, {nme: b}]}}",
      want: [said("readinessProbe.httpGet.httpHeaders[1].nme", "readinessProbe.httpGet.httpHeaders[1].name")],
    },
    {
      name: "in a map value",
      value: "tracing: {customTags: {team: {literl: {value: x}}}}",
      want: [said("tracing.customTags.team.literl", "tracing.customTags.team.literal")],
    },
    { name: "nothing close: no suggestion", value: "somethingElseEntirely: 1", want: [said("somethingElseEntirely")] },
    {
      name: "several, in document order",
      value: "concurency: 2\nsds: {enabld: true}\nmeshID: m",
      want: [said("concurency", "concurrency"), said("sds.enabld", "sds.enabled"), said("meshID", "meshId")],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(warningsFor(c.value), c.want);
      // Admitted, as Istio admits it: the same warnings ride on the overlay the sidecar is built from.
      assert.deepEqual(parseProxyConfig(c.value, config).warnings, c.want);
    });
  }

  test("known fields by their JSON or proto names, at any depth, and free-form maps: nothing", () => {
    const known = [
      "concurrency: 2\nholdApplicationUntilProxyStarts: true\ninterceptionMode: TPROXY",
      "hold_application_until_proxy_starts: true\nproxy_metadata: {ANY_NAME: x}\nruntime_values: {}",
      "proxyMetadata: {concurrenccy: x, ISTIO_META_DNS_CAPTURE: 'true'}\nruntimeValues: {zipkn: v}",
      "tracing: {zipkin: {address: 'z:9411'}, max_path_tag_length: 99, customTags: {zipkn: {literal: {value: v}}}, sampling: 10}",
      "readiness_probe: {http_get: {path: /ready, port: 8080, http_headers: [{name: a, value: b}]}, failureThreshold: 3}",
      "image: {imageType: distroless}\nproxyStatsMatcher: {inclusionPrefixes: [a]}\nextraStatTags: [a, b]",
      "envoyAccessLogService: {address: 'als:9000', tls_settings: {mode: SIMPLE, subjectAltNames: [a]}, tcpKeepalive: {probes: 3}}",
      "concurrency: null\ntracing: null",
    ];
    for (const value of known) {
      assert.deepEqual(warningsFor(value), [], value);
      assert.deepEqual(parseProxyConfig(value, config).warnings, [], value);
    }
    assert.deepEqual(proxyConfigWarnings(undefined), []);
    assert.deepEqual(proxyConfigWarnings({}), []);
    assert.deepEqual(warningsFor("  "), []);
    assert.deepEqual(parseProxyConfig(undefined, config).warnings, []);
  });

  test("a value of another type is not looked into: it is refused (a known field) or dropped (an unknown one)", () => {
    assert.deepEqual(warningsFor("tracing: [zipkn]\nsds: 3"), []);
    assert.throws(() => parseProxyConfig("tracing: [zipkn]", config), /tracing must be a map/);
    assert.deepEqual(warningsFor("zipkn: {address: x}"), [said("zipkn")]);
  });

  test("a mistyped known field is refused, naming it; an unreadable annotation gets no warning, only the refusal", () => {
    assert.throws(
      () => parseProxyConfig("concurrency: two\nconcurrenccy: 2", config),
      (e: unknown) =>
        e instanceof InjectionError &&
        e.code === "ERR_INVALID_ANNOTATION" &&
        /concurrency must be a whole number/.test(e.message),
    );
    const tooDeep = PROXY_CONFIG_LIMITS.maxDepth + 1;
    const tooLong = PROXY_CONFIG_LIMITS.maxBytes + 1;
    for (const value of [
      "concurrency: [",
      "{",
      `${"{a: ".repeat(tooDeep)}1${"}".repeat(tooDeep)}`,
      "x".repeat(tooLong),
    ]) {
      assert.deepEqual(warningsFor(value), [], value.slice(0, 20));
      assert.throws(() => parseProxyConfig(value, config), InjectionError, value.slice(0, 20));
    }
  });

  test("many unknown fields: MAX_FIELD_WARNINGS named, the rest counted", () => {
    const value = Array.from({ length: 200 }, (_, i) => `unknown${i}: ${i}`).join("\n");
    const found = unknownProxyConfigFields(
      Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`unknown${i}`, i])),
    );
    assert.equal(found.total, 200);
    assert.equal(found.named.length, MAX_FIELD_WARNINGS);
    const w = warningsFor(value);
    assert.equal(w.length, MAX_FIELD_WARNINGS + 1);
    assert.deepEqual(
      w.slice(0, MAX_FIELD_WARNINGS),
      Array.from({ length: MAX_FIELD_WARNINGS }, (_, i) => said(`unknown${i}`)),
    );
    assert.equal(
      w.at(-1),
      `${200 - MAX_FIELD_WARNINGS} more unknown ProxyConfig field(s) in ${ANNOTATION} are ignored`,
    );
    // Nested ones count the same.
    const nested = `tracing: {${Array.from({ length: 50 }, (_, i) => `t${i}: 1`).join(", ")}}\nsds: {${Array.from({ length: 50 }, (_, i) => `s${i}: 1`).join(", ")}}`;
    const n = warningsFor(nested);
    assert.equal(n.length, MAX_FIELD_WARNINGS + 1);
    assert.equal(
      n.at(-1),
      `${100 - MAX_FIELD_WARNINGS} more unknown ProxyConfig field(s) in ${ANNOTATION} are ignored`,
    );
  });

  test("hostile long names: quoted bounded, not compared, and every warning fits what the API server keeps", () => {
    const longTop = JSON.stringify({ ["y".repeat(10_000)]: 1 });
    const longTag = JSON.stringify({ tracing: { customTags: { ["k".repeat(5000)]: { literl: {} } } } });
    const longNested = JSON.stringify({ connectionSettings: { ["listenerConnectionLimit".repeat(400)]: 1 } });
    const [top] = warningsFor(longTop);
    assert.ok(top !== undefined);
    assert.match(top, /\(10000 characters\) in proxy\.istio\.io\/config is ignored$/, "named, no suggestion");
    const [tag] = warningsFor(longTag);
    assert.ok(tag !== undefined);
    // The tag's name is cut, so the path still ends in the unknown field, and the suggestion is found.
    assert.match(
      tag,
      /^unknown ProxyConfig field "tracing\.customTags\.k{16}… \(5000 characters\)\.literl" .*did you mean "tracing\.customTags\.k{16}… \(5000 characters\)\.literal"\?$/,
    );
    const [nested] = warningsFor(longNested);
    assert.ok(nested !== undefined);
    assert.match(
      nested,
      /^unknown ProxyConfig field "connectionSettings\.listenerConnectionLimit.*" \(9219 characters\) in proxy\.istio\.io\/config is ignored$/,
    );
    for (const w of [top, tag, nested]) {
      assert.ok(w.length <= 256, `${w.length}: ${w}`);
      assert.deepEqual(sanitizeWarnings([w]), [w], "not cut by the AdmissionResponse's limits");
    }
  });
});

describe("the closest-name search", () => {
  /** Levenshtein distance by the whole table, to check the two-row, early-stopping one against. */
  function fullTable(a: string, b: string): number {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const row = [i];
      for (let j = 1; j <= b.length; j++)
        row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
      prev = row;
    }
    return prev[b.length]!;
  }

  test("editDistance is the Levenshtein distance, or limit + 1 past the limit (20,000 seeded pairs)", () => {
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const word = (): string => Array.from({ length: next(10) }, () => "abc"[next(3)]).join("");
    for (let k = 0; k < 20_000; k++) {
      const [a, b, limit] = [word(), word(), next(6)];
      assert.equal(editDistance(a, b, limit), Math.min(fullTable(a, b), limit + 1), `${a} ${b} ${limit}`);
    }
  });

  test("closestName: letter case ignored, within a third of the length, the first on a tie, long names not compared", () => {
    assert.equal(closestName("Concurrency", ["concurrency", "meshId"]), "concurrency");
    assert.equal(closestName("concurency", ["concurrency"]), "concurrency");
    assert.equal(closestName("abcdef", ["uvwxyz"]), undefined);
    assert.equal(closestName("sdx", ["sds", "sdy"]), "sds");
    assert.equal(closestName(`${"a".repeat(101)}`, ["a".repeat(101)]), undefined);
  });
});

describe("through the engine and the preview", () => {
  const pod = (annotations: Record<string, string>): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", annotations },
    spec: { containers: [{ name: "web", image: "nginx" }] },
  });

  test("an injected Pod: the warning is in the result, beside the annotation-key ones", () => {
    const r = inject(
      pod({ [ANNOTATION]: "concurrenccy: 2", "sidecar.istio.io/proxyCpu": "1" }),
      { namespace: "shop" },
      config,
    );
    assert.equal(r.decision.inject, true);
    assert.deepEqual(
      r.warnings.filter((w) => w.startsWith("unknown")),
      [
        'unknown annotation "sidecar.istio.io/proxyCpu" is ignored; did you mean sidecar.istio.io/proxyCPU?',
        said("concurrenccy", "concurrency"),
      ],
    );
    // Admitted and dropped from PROXY_CONFIG, as Istio drops it.
    const proxy = r.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.equal(proxy?.env?.find((e) => e.name === "PROXY_CONFIG")?.value, "{}\n");
  });

  test("a Pod not injected: its ProxyConfig is not read, and nothing is said of it", () => {
    const r = inject(
      pod({ [ANNOTATION]: "concurrenccy: 2", "sidecar.istio.io/inject": "false" }),
      { namespace: "shop" },
      config,
    );
    assert.equal(r.decision.inject, false);
    assert.deepEqual(
      r.warnings.filter((w) => w.includes("ProxyConfig")),
      [],
    );
  });

  test("the preview shows it", async () => {
    const [entry] = await preview([pod({ [ANNOTATION]: "tracing: {zipkn: {address: 'z:9411'}}" })], {
      config,
      namespace: "shop",
      givenLabels: { "istio-injection": "enabled" },
    });
    assert.ok(entry !== undefined);
    assert.equal(entry.decision.inject, true);
    assert.deepEqual(entry.warnings, [said("tracing.zipkn", "tracing.zipkin")]);
  });

  test("check reports it for a stored object, as it reports unknown annotation keys", () => {
    const stored = pod({ [ANNOTATION]: "concurrenccy: 2", "sidecar.istio.io/proxyCpu": "1" });
    const r = checkObject(
      { kind: "Pod", namespace: "shop", name: "web", pod: stored },
      { name: "shop", labels: {} },
      [],
      config,
    );
    assert.deepEqual(
      r.findings.filter((f) => f.message.startsWith("unknown")),
      [
        {
          severity: "warning",
          message: 'unknown annotation "sidecar.istio.io/proxyCpu" is ignored; did you mean sidecar.istio.io/proxyCPU?',
        },
        { severity: "warning", message: said("concurrenccy", "concurrency") },
      ],
    );
  });
});
