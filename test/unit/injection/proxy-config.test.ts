import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseProxyConfig, PROXY_CONFIG_FIELDS } from "../../../src/injection/proxy-config.js";
import { MESSAGES } from "../../../src/injection/proxy-config-schema.js";
import { InjectionError } from "../../../src/injection/types.js";
import { PROXY_CONFIG_LIMITS } from "../../../src/injection/yaml-limits.js";

const KEY = "proxy.istio.io/config";

function refused(annotation: string, why: RegExp): void {
  assert.throws(
    () => parseProxyConfig(annotation, DEFAULT_CONFIG),
    (e: unknown) =>
      e instanceof InjectionError &&
      e.code === "ERR_INVALID_ANNOTATION" &&
      e.message.startsWith(`invalid annotation ${KEY}=`) &&
      why.test(e.message) &&
      // The value is quoted to a bounded prefix.
      e.message.length < 400,
  );
}

test("YAML and JSON ProxyConfig overlays are read", () => {
  const yaml = parseProxyConfig("holdApplicationUntilProxyStarts: true\nproxyMetadata:\n  A: b\n", DEFAULT_CONFIG);
  assert.equal(yaml.holdApplicationUntilProxyStarts, true);
  assert.deepEqual(yaml.proxyMetadata, { A: "b" });
  const json = parseProxyConfig('{"interceptionMode": "TPROXY", "concurrency": 2}', DEFAULT_CONFIG);
  assert.equal(json.interceptionMode, "TPROXY");
  assert.equal(json.json, '{"concurrency":2,"interceptionMode":"TPROXY"}\n', "proxy.proto's order");
  // Later duplicate keys win, as Istio (sigs.k8s.io/yaml) reads them.
  assert.equal(parseProxyConfig("concurrency: 1\nconcurrency: 3\n", DEFAULT_CONFIG).json, '{"concurrency":3}\n');
  assert.equal(parseProxyConfig("# nothing\n", DEFAULT_CONFIG).json, "{}\n");
});

test("each limit refuses the annotation, naming it and the limit", () => {
  refused(
    `concurrency: 1\n# ${"x".repeat(PROXY_CONFIG_LIMITS.maxBytes)}`,
    /longer than 262144 characters \(limit: bytes\)/,
  );
  refused("{a: ".repeat(5000) + "1" + "}".repeat(5000), /limit: (depth|bytes)/);
  refused(
    "{a: ".repeat(PROXY_CONFIG_LIMITS.maxDepth + 1) + "1" + "}".repeat(PROXY_CONFIG_LIMITS.maxDepth + 1),
    /nests deeper than 64 levels \(limit: depth\)/,
  );
  // Within the bytes, only aliases can make more keys and items than the limit.
  const list = `[${Array.from({ length: 1000 }, () => "1").join(",")}]`;
  const aliases = (n: number): string =>
    `a: &x ${list}\n${Array.from({ length: n }, (_, i) => `b${i}: *x`).join("\n")}`;
  refused(aliases(Math.ceil(PROXY_CONFIG_LIMITS.maxNodes / 1000) + 1), /limit: nodes/);
  refused(
    `a: &x 1\n${Array.from({ length: PROXY_CONFIG_LIMITS.maxAliases + 1 }, (_, i) => `b${i}: *x`).join("\n")}`,
    /limit: aliases/,
  );
  refused("concurrency: [1\n", /not YAML or JSON/);
  refused("- 1\n", /must be a ProxyConfig map/);
});

test("any annotation the API server admits (256 KiB for all of them) is read, as Istio reads it", () => {
  const limit = 256 * 1024;
  assert.equal(PROXY_CONFIG_LIMITS.maxBytes, limit);
  // Each is as dense as YAML lets keys and items be, or has as many documents as fit.
  const fill = (head: string, item: string, tail = ""): string =>
    head + item.repeat(Math.floor((limit - head.length - tail.length) / item.length)) + tail;
  const within = {
    "a flow list": fill("extraStatTags: [", "a,", "a]"),
    "a block list": fill("extraStatTags:\n", "- a\n"),
    "unknown keys (20,000, 258 KB)": Array.from({ length: 20_000 }, (_, i) => `k${i}: ${i}`)
      .join("\n")
      .slice(0, limit),
    "a long proxyMetadata": fill("proxyMetadata:\n", " K: v\n"),
    documents: fill("concurrency: 3\n", "---\n"),
    "nested to the depth limit":
      "{a: ".repeat(PROXY_CONFIG_LIMITS.maxDepth) + "1" + "}".repeat(PROXY_CONFIG_LIMITS.maxDepth),
    "aliases within the limits": `a: &x [1,2,3]\n${Array.from({ length: 1000 }, (_, i) => `b${i}: *x`).join("\n")}`,
  };
  for (const [what, text] of Object.entries(within)) {
    assert.ok(text.length <= limit, `${what}: ${text.length}`);
    assert.doesNotThrow(() => parseProxyConfig(text, DEFAULT_CONFIG), what);
  }
  assert.equal(parseProxyConfig(within.documents, DEFAULT_CONFIG).json, '{"concurrency":3}\n', "the first document");
});

// Each row checked against Istio's validateProxyConfig (validate.go, 86c9f01) on the same text.
const ISTIO_ADMITS = [
  "",
  "{}",
  "null",
  "holdApplicationUntilProxyStarts: yes",
  "hold_application_until_proxy_starts: true",
  'concurrency: "2"',
  "concurrency: 2.0",
  "concurrency: 0x10",
  "concurrency: null",
  "interceptionMode: 1",
  'statusPort: "15021"',
  "serviceCluster: foo",
  "tracingServiceName: CANONICAL_NAME_ONLY",
  "drainDuration: 1m",
  "drainDuration: 1h2m3s",
  "terminationDrainDuration: 0.5s",
  'discoveryAddress: "[::1]:15012"',
  "discoveryAddress: 1.2.3.4:15012",
  'discoveryAddress: "foo.:15012"',
  "discoveryAddress: istiod:+15012",
  "statsdUdpAddress: statsd:8125",
  "envoyMetricsService: {address: m:9000}",
  "controlPlaneAuthPolicy: 1",
  "proxyMetadata: {A: null}",
  "unknownField: {a: [1]}",
  "tracing: {}",
  "fileFlushMinSizeKb: 1",
  "a: 1\n---\nb: 2",
];
const ISTIO_REFUSES: [string, RegExp][] = [
  ['holdApplicationUntilProxyStarts: "true"', /holdApplicationUntilProxyStarts must be true or false/],
  ["holdApplicationUntilProxyStarts: maybe", /holdApplicationUntilProxyStarts must be true or false/],
  ["concurrency: 2.5", /concurrency must be a whole number/],
  ["concurrency: 99999999999", /concurrency must be a whole number/],
  ["interceptionMode: tproxy", /interceptionMode must be one of REDIRECT, TPROXY, NONE/],
  ['interceptionMode: "1"', /interceptionMode must be one of/],
  ["statusPort: 0", /statusPort must be a port from 1 to 65535/],
  ["statusPort: 70000", /statusPort must be a port/],
  ["proxyAdminPort: 0", /proxyAdminPort must be a port/],
  ['configPath: ""', /configPath must not be empty/],
  ['binaryPath: ""', /binaryPath must not be empty/],
  ['serviceCluster: ""', /serviceCluster must not be empty/],
  ["tracingServiceName: X", /tracingServiceName must be one of APP_LABEL_AND_NAMESPACE/],
  ["drainDuration: 1.5s", /drainDuration must be whole seconds/],
  ["drainDuration: 500ms", /drainDuration must be whole seconds/],
  ["drainDuration: 0s", /at least 1ms/],
  ["drainDuration: -5s", /at least 1ms/],
  ["drainDuration: 45", /drainDuration must be a duration/],
  ["terminationDrainDuration: 1x", /terminationDrainDuration must be a duration/],
  ['discoveryAddress: ""', /discoveryAddress must not be empty/],
  ["discoveryAddress: istiod", /discoveryAddress must be <host>:<port>/],
  ["discoveryAddress: istiod:0", /port from 1 to 65535/],
  ["discoveryAddress: a_b:15012", /DNS name or an IP address/],
  ["discoveryAddress: foo.123:15012", /DNS name or an IP address/],
  ['discoveryAddress: ":15012"', /DNS name or an IP address/],
  ['discoveryAddress: "a:b:15012"', /must be <host>:<port>/],
  ["statsdUdpAddress: x", /statsdUdpAddress must be <host>:<port>/],
  ["envoyMetricsService: {address: x}", /envoyMetricsService.address must be <host>:<port>/],
  ["envoyAccessLogService: {address: 5}", /envoyAccessLogService.address must be a string/],
  ["controlPlaneAuthPolicy: 2", /controlPlaneAuthPolicy must be NONE or MUTUAL_TLS/],
  ["controlPlaneAuthPolicy: X", /controlPlaneAuthPolicy must be one of NONE, MUTUAL_TLS/],
  ["proxyMetadata: {A: 1}", /proxyMetadata."A" must be a string/],
  ["proxyMetadata: [a]", /proxyMetadata must be a map of strings/],
  ["extraStatTags: a", /extraStatTags must be a list of strings/],
  ["extraStatTags: [1]", /extraStatTags must be a list of strings/],
  ["tracing: 1", /tracing must be a map/],
  ["image: x", /image must be a map/],
  ["meshId: 5", /meshId must be a string/],
  ["meshId: yes", /meshId must be a string/],
  ["fileFlushMinSizeKb: -1", /fileFlushMinSizeKb must be a whole number from 0/],
  ["statsCompression: 1", /statsCompression must be true or false/],
  ["concurrency: .inf", /\.inf or \.nan/],
  ["unknownField: .nan", /\.inf or \.nan/],
  ["5", /must be a ProxyConfig map/],
  ["[1,2]", /must be a ProxyConfig map/],
];

test("what Istio's validateProxyConfig admits is admitted", () => {
  for (const text of ISTIO_ADMITS)
    assert.doesNotThrow(() => parseProxyConfig(text, DEFAULT_CONFIG), JSON.stringify(text));
});

test("what Istio's validateProxyConfig refuses is refused, naming the field", () => {
  for (const [text, why] of ISTIO_REFUSES) {
    assert.throws(
      () => parseProxyConfig(text, DEFAULT_CONFIG),
      (e: unknown) =>
        e instanceof InjectionError &&
        e.message.startsWith(`invalid annotation ${KEY}=${JSON.stringify(text)}: `) &&
        why.test(e.message),
      JSON.stringify(text),
    );
  }
});

test("values are read as go-yaml reads them: YAML 1.1 scalars, the JSON name over the proto name, the first document", () => {
  assert.equal(
    parseProxyConfig("holdApplicationUntilProxyStarts: on", DEFAULT_CONFIG).holdApplicationUntilProxyStarts,
    true,
  );
  assert.equal(
    parseProxyConfig("hold_application_until_proxy_starts: true", DEFAULT_CONFIG).holdApplicationUntilProxyStarts,
    true,
  );
  assert.equal(
    parseProxyConfig("interception_mode: TPROXY\ninterceptionMode: NONE", DEFAULT_CONFIG).interceptionMode,
    "NONE",
  );
  assert.equal(parseProxyConfig("interceptionMode: 1", DEFAULT_CONFIG).interceptionMode, "TPROXY");
  assert.equal(parseProxyConfig("concurrency: 010", DEFAULT_CONFIG).json, '{"concurrency":8}\n');
  assert.equal(parseProxyConfig("concurrency: 2\n---\nconcurrency: 3\n", DEFAULT_CONFIG).json, '{"concurrency":2}\n');
  assert.deepEqual(parseProxyConfig("proxyMetadata: {A: null, B: x}", DEFAULT_CONFIG).proxyMetadata, { A: "", B: "x" });
});

test("goDuration reads Go's duration syntax", async () => {
  const { goDuration } = await import("../../../src/injection/proxy-config.js");
  assert.equal(goDuration("0"), 0n);
  assert.equal(goDuration("1h2m3.5s"), 3_723_500_000_000n);
  assert.equal(goDuration("-1.5ms"), -1_500_000n);
  assert.equal(goDuration("1µs"), 1000n);
  assert.equal(goDuration(".5s"), 500_000_000n);
  for (const bad of ["", "1", "s", "1x", "1.s.", ".s", "1s2", "9999999999999999999h", "- 1s"])
    assert.equal(goDuration(bad), undefined, bad);
});

test("the fields read are the generated schema's ProxyConfig, every one, in proto order", () => {
  const schema = MESSAGES.get("ProxyConfig") ?? [];
  assert.ok(schema.length > 30, "reads the schema");
  assert.deepEqual(
    PROXY_CONFIG_FIELDS.map(([json, proto]) => [json, proto]),
    schema.map(([json, proto]) => [json, proto]),
  );
});

test("controlPlaneAuthPolicy: NONE and MUTUAL_TLS, not INHERIT (declared in proto, refused by Istio)", () => {
  const kind = PROXY_CONFIG_FIELDS.find(([json]) => json === "controlPlaneAuthPolicy")?.[2];
  assert.deepEqual(kind, ["NONE", "MUTUAL_TLS"]);
  refused('{"controlPlaneAuthPolicy": "INHERIT"}', /controlPlaneAuthPolicy must be one of NONE, MUTUAL_TLS/);
  refused('{"controlPlaneAuthPolicy": 1000}', /controlPlaneAuthPolicy must be NONE or MUTUAL_TLS/);
  // Accepted; the zero value jsonpb does not write.
  assert.equal(parseProxyConfig('{"controlPlaneAuthPolicy": "NONE"}', DEFAULT_CONFIG).json, "{}\n");
});

test("a oneof with two members written: jsonpb keeps the one declared later, whatever the order written", () => {
  const json = (text: string): unknown => JSON.parse(parseProxyConfig(text, DEFAULT_CONFIG).json);
  // pilot-agent reads PROXY_CONFIG with jsonpb, which refuses two members of one oneof.
  assert.deepEqual(json('tracing: {datadog: {address: "b:2"}, zipkin: {address: "a:1"}}'), {
    tracing: { datadog: { address: "b:2" } },
  });
  assert.deepEqual(json('tracing: {openCensusAgent: {address: "c:3"}, zipkin: {address: "a:1"}, sampling: 5}'), {
    tracing: { openCensusAgent: { address: "c:3" }, sampling: 5 },
  });
  assert.deepEqual(json("privateKeyProvider: {qat: {pollDelay: 1s}, cryptomb: {pollDelay: 2s}}"), {
    privateKeyProvider: { qat: { pollDelay: "1s" } },
  });
});

test("tracing, private key provider and connection settings: refused where Istio's agent validation refuses them", () => {
  // Each checked against Istio's injector (the oracle of test/oracle).
  const refused = [
    "tracing: {zipkin: {address: zipkin.istio-system}}",
    "tracing: {zipkin: {}}",
    "tracing: {zipkin: {address: '$(HOST_IP):$(HOST_IP)'}}",
    "tracing: {datadog: {address: 'a:0'}}",
    "tracing: {lightstep: {address: 'a:1'}}",
    "tracing: {lightstep: {}}",
    "tracing: {datadog: {address: bad}, zipkin: {address: 'b:2'}}",
    "tracing: {tlsSettings: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /x}}",
    "tracing: {tlsSettings: {mode: MUTUAL}}",
    "tracing: {tlsSettings: {credentialName: 'configmap://x'}}",
    "tracing: {tlsSettings: {mode: SIMPLE, credentialName: c, caCertificates: /x}}",
    "privateKeyProvider: {}",
    "privateKeyProvider: {cryptomb: {}}",
    "privateKeyProvider: {cryptomb: null}",
    "privateKeyProvider: {qat: {pollDelay: 0s}}",
    "connectionSettings: {httpMaxConcurrentStreams: 0}",
    "connectionSettings: {listenerPerConnectionBufferLimitBytes: -1}",
    "connectionSettings: {httpIdleTimeout: -1s}",
    "connectionSettings: {http2InitialStreamWindowSize: 1000}",
    "connectionSettings: {http2_initial_stream_window_size: 70000, listenerConnectionLimit: 0}",
  ];
  for (const text of refused)
    assert.throws(
      () => parseProxyConfig(text, DEFAULT_CONFIG),
      (e: unknown) => e instanceof InjectionError && e.field === "proxy.istio.io/config",
      text,
    );
  const admitted = [
    "tracing: {zipkin: {address: 'zipkin.istio-system:9411'}}",
    "tracing: {zipkin: {address: '$(HOST_IP):9411'}}",
    "tracing: {lightstep: {address: 'a:1', accessToken: t}}",
    // jsonpb keeps datadog (declared after zipkin): zipkin's bad address is gone.
    "tracing: {zipkin: {address: bad}, datadog: {address: 'b:2'}}",
    "tracing: {stackdriver: {}}",
    "tracing: {sampling: 5}",
    "tracing: {tlsSettings: {mode: MUTUAL, clientCertificate: /a, privateKey: /b}}",
    "tracing: {tlsSettings: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: []}}",
    "tracing: {customTags: {a: null}}",
    "privateKeyProvider: {qat: {pollDelay: 1ms}}",
    "privateKeyProvider: null",
    "connectionSettings: {globalDownstreamConnectionLimit: 5, httpDrainTimeout: 2s}",
  ];
  for (const text of admitted) assert.doesNotThrow(() => parseProxyConfig(text, DEFAULT_CONFIG), text);
});
