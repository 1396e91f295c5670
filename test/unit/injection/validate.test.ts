// One test per row of validate.ts's table: values Istio's injector admits (valid and edge) and
// values it refuses, each taken from what Istio's own code does with it (validate.go, the
// injection template, Go's strconv and netip).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig, parseConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { annotationValueProblem, annotationWarnings, validateAnnotations } from "../../../src/injection/validate.js";
import { InjectionError } from "../../../src/injection/types.js";

const refuses = (key: string, value: string, why?: RegExp, others: Record<string, string> = {}): void => {
  assert.throws(
    () => validateAnnotations({ ...others, [key]: value }),
    (e: unknown) =>
      e instanceof InjectionError &&
      e.code === "ERR_INVALID_ANNOTATION" &&
      e.field === key &&
      e.message.startsWith(`invalid annotation ${key}=${JSON.stringify(value)}: `) &&
      (why === undefined || why.test(e.message)),
    `${key}=${JSON.stringify(value)} should be refused${why ? ` with ${String(why)}` : ""}`,
  );
};
const admits = (key: string, ...values: string[]): void => {
  for (const value of values)
    assert.doesNotThrow(() => validateAnnotations({ [key]: value }), `${key}=${JSON.stringify(value)}`);
};
const warnings = (annotations: Record<string, string>): string[] => annotationWarnings(annotations, false, false);

test("sidecar.istio.io/interceptionMode: REDIRECT, TPROXY or NONE, exactly", () => {
  admits("sidecar.istio.io/interceptionMode", "REDIRECT", "TPROXY", "NONE");
  refuses("sidecar.istio.io/interceptionMode", "redirect", /must be REDIRECT, TPROXY or NONE/);
  refuses("sidecar.istio.io/interceptionMode", " REDIRECT");
  refuses("sidecar.istio.io/interceptionMode", "");
});

test("status.sidecar.istio.io/port: a uint16, trimmed", () => {
  admits("status.sidecar.istio.io/port", "15020", "0", "65535", " 15020 ", "0015020", "15020\u00a0");
  refuses("status.sidecar.istio.io/port", "65536", /port number \(0-65535\)/);
  refuses("status.sidecar.istio.io/port", "-1");
  refuses("status.sidecar.istio.io/port", "+1");
  refuses("status.sidecar.istio.io/port", "");
  refuses("status.sidecar.istio.io/port", "1_000");
});

test("readiness.status.sidecar.istio.io/*: a uint32, not trimmed (int32: where a template writes it, below)", () => {
  for (const key of ["initialDelaySeconds", "periodSeconds", "failureThreshold"].map(
    (k) => `readiness.status.sidecar.istio.io/${k}`,
  )) {
    admits(key, "0", "10", "2147483647", "0002147483647", "2147483648", "4294967295");
    refuses(key, "4294967296", /whole number from 0 to 4294967295/, { "status.sidecar.istio.io/port": "0" });
    refuses(key, " 10");
    refuses(key, "1.5");
    refuses(key, "");
    refuses(key, "-1");
  }
});

describe("readiness.status.sidecar.istio.io/*: within int32 where a template writes it into the readiness probe", () => {
  // validate.go admits a uint32; the sidecar and grpc-agent templates write it into the probe's
  // int32 field, which Istio then fails to decode. The gateway's probe does not read it, and
  // with the status port "0" there is no probe: Istio admits those, so we do.
  const config = buildConfig({});
  const run = (annotations: Record<string, string>, statusPort?: number) =>
    inject(
      { metadata: { name: "p", annotations }, spec: { containers: [{ name: "app", image: "example.com/app:1" }] } },
      { namespace: "demo" },
      statusPort === undefined ? config : parseConfig(`proxy:\n  statusPort: ${statusPort}\n`),
    );
  for (const key of ["initialDelaySeconds", "periodSeconds", "failureThreshold"].map(
    (k) => `readiness.status.sidecar.istio.io/${k}`,
  )) {
    test(key, () => {
      const int32 =
        /invalid annotation .*: must be a whole number from 0 to 2147483647 \(the readiness probe's int32 field\)/;
      for (const templates of ["sidecar", "grpc-agent", "sidecar,grpc-agent"]) {
        for (const v of ["2147483648", "4294967295"])
          assert.throws(() => run({ [key]: v, "inject.istio.io/templates": templates }), int32, `${templates} ${v}`);
        assert.throws(
          () =>
            run({ [key]: "4294967295", "inject.istio.io/templates": templates, "status.sidecar.istio.io/port": " 0" }),
          int32,
          'a status port " 0" is not "0": there is a probe',
        );
        assert.doesNotThrow(() => run({ [key]: "2147483647", "inject.istio.io/templates": templates }));
        assert.doesNotThrow(() =>
          run({ [key]: "4294967295", "inject.istio.io/templates": templates, "status.sidecar.istio.io/port": "0" }),
        );
      }
      assert.throws(() => run({ [key]: "4294967295" }), int32, "the default template: sidecar");
      assert.throws(() => run({ [key]: "4294967295", "status.sidecar.istio.io/port": "15021" }, 0), int32);
      assert.doesNotThrow(() => run({ [key]: "0004294967295" }, 0), "the config's status port 0: no probe");
      assert.doesNotThrow(() => run({ [key]: "4294967295", "inject.istio.io/templates": "gateway" }));
      // Named after what Istio's validation refuses, as Istio names it.
      assert.throws(
        () => run({ [key]: "4294967295", "prometheus.istio.io/merge-metrics": "" }),
        (e: unknown) => e instanceof InjectionError && e.field === "prometheus.istio.io/merge-metrics",
      );
    });
  }
});

test("CIDR lists: netip.ParsePrefix on each part, no space, no empty part", () => {
  const inc = "traffic.sidecar.istio.io/includeOutboundIPRanges";
  const exc = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
  admits(inc, "*", "", "10.0.0.0/8", "10.0.0.0/8,fd00::/8", "0.0.0.0/0", "::/0", "::ffff:10.0.0.1/128", "10.1.2.3/8");
  admits(exc, "", "192.168.0.0/16,10.0.0.0/8");
  refuses(inc, "10.0.0.0/8, fd00::/8", /" fd00::\/8" is not a CIDR/);
  refuses(inc, " 10.0.0.0/8");
  refuses(inc, "10.0.0.0/8,");
  refuses(inc, "10.0.0.0");
  refuses(inc, "10.0.0.0/08", /"10.0.0.0\/08" is not a CIDR/);
  refuses(inc, "10.0.0.0/33");
  refuses(inc, "010.0.0.0/8");
  refuses(inc, "fe80::1%eth0/64");
  refuses(inc, "fd00::/129");
  refuses(inc, " * ");
  refuses(exc, "*");
  refuses(exc, "300.0.0.0/8");
});

test("inbound and outbound port lists: parsePorts, each 0 to 65535 with space around", () => {
  for (const key of [
    "traffic.sidecar.istio.io/includeInboundPorts",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
  ]) {
    admits(key, "", "0", "80", "1, 65535", " 80 , 443 ", "0080", "   ");
    refuses(key, "65536", /"65536" is not a port number \(0-65535\)/);
    refuses(key, "80,,443", /"" is not a port number/);
    refuses(key, "80,");
    refuses(key, "http");
    refuses(key, "-1");
  }
  admits("traffic.sidecar.istio.io/includeInboundPorts", "*");
  refuses("traffic.sidecar.istio.io/includeInboundPorts", " * ");
  refuses("traffic.sidecar.istio.io/excludeOutboundPorts", "*");
});

test("traffic.sidecar.istio.io/includeOutboundPorts: not checked by Istio, only written raw between quotes", () => {
  const key = "traffic.sidecar.istio.io/includeOutboundPorts";
  admits(key, "", "80,443", "0", "http", "*", "a\\tb", "\\x41");
  assert.deepEqual(warnings({ [key]: "80, 443" }), []);
  assert.deepEqual(warnings({ [key]: "http" }), [`${key}="http" is not a port list: istio-init may fail`]);
  refuses(key, '80"', /has a '"'/);
  refuses(key, "80\\q", /is not a YAML escape/);
  refuses(key, "80\\x4", /is not a YAML escape/);
  refuses(key, "80\\");
  refuses(key, "80\u0001", /U\+0001/);
});

test("traffic.sidecar.istio.io/includeOutboundPorts: not checked where no istio-init is rendered (interception NONE)", () => {
  const key = "traffic.sidecar.istio.io/includeOutboundPorts";
  const pod = (annotations: Record<string, string>) => ({
    metadata: { name: "q", annotations: { [key]: 'a"b', ...annotations } },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  });
  const config = buildConfig({});
  const refused = (annotations: Record<string, string>, c = config): boolean => {
    try {
      inject(pod(annotations), { namespace: "demo" }, c);
      return false;
    } catch (e) {
      assert.ok(e instanceof InjectionError && e.field === key, String(e));
      return true;
    }
  };
  assert.equal(refused({}), true);
  assert.equal(refused({ "sidecar.istio.io/interceptionMode": "NONE" }), false);
  assert.equal(refused({ "proxy.istio.io/config": "interceptionMode: NONE" }), false);
  assert.equal(refused({}, buildConfig({ interception: { mode: "NONE" } })), false);
  // The annotation wins over the ProxyConfig, in Istio's template as here.
  assert.equal(
    refused({ "sidecar.istio.io/interceptionMode": "REDIRECT", "proxy.istio.io/config": "interceptionMode: NONE" }),
    true,
  );
  assert.equal(
    refused({ "sidecar.istio.io/nativeSidecar": "true", "sidecar.istio.io/interceptionMode": "NONE" }),
    false,
  );
  // Only the sidecar template renders istio-init.
  assert.equal(refused({ "inject.istio.io/templates": "gateway" }), false);
  assert.equal(refused({ "inject.istio.io/templates": "grpc-agent" }), false);
  // With CNI, the sidecar template writes the annotations for the plugin whatever the mode.
  assert.equal(refused({ "sidecar.istio.io/interceptionMode": "NONE" }, buildConfig({ cni: true })), true);
  // Checked alone (the config loader's way), the Pod's own annotation decides.
  assert.doesNotThrow(() => validateAnnotations({ [key]: 'a"b', "sidecar.istio.io/interceptionMode": "NONE" }));
});

test("interface names: net.ValidateInterfaceNames", () => {
  for (const key of [
    "traffic.sidecar.istio.io/excludeInterfaces",
    "traffic.sidecar.istio.io/kubevirtInterfaces",
    "istio.io/reroute-virtual-interfaces",
  ]) {
    admits(key, "", "eth0", "eth0, net1", "a.b_c-d", "abcdefghijklmno");
    refuses(key, "abcdefghijklmnop", /longer than 15 characters/);
    refuses(key, "0eth", /is not an interface name/);
    refuses(key, "eth0:1");
    refuses(key, "veth@if2");
    refuses(key, "eth0,,net1", /empty interface name/);
    refuses(key, "eth0,");
    refuses(key, " ");
  }
});

test("prometheus.io/merge-metrics: strconv.ParseBool", () => {
  admits("prometheus.istio.io/merge-metrics", "true", "false", "1", "0", "t", "F", "TRUE", "False");
  refuses("prometheus.istio.io/merge-metrics", "yes", /must be "true" or "false"/);
  refuses("prometheus.istio.io/merge-metrics", " true");
  refuses("prometheus.istio.io/merge-metrics", "");
});

test("proxy resources: resource.ParseQuantity (no trimming), and not negative", () => {
  for (const key of [
    "sidecar.istio.io/proxyCPU",
    "sidecar.istio.io/proxyMemory",
    "sidecar.istio.io/proxyCPULimit",
    "sidecar.istio.io/proxyMemoryLimit",
  ]) {
    admits(key, "100m", "2", "1Gi", "0.5", "1e3", "0", "+1");
    refuses(key, "fast", /not a Kubernetes quantity/);
    refuses(key, " 100m", /white space around it/);
    refuses(key, "100m\n");
    refuses(key, "");
    admits(key, "-1");
  }
});

test("sidecar.istio.io/userVolume and userVolumeMount: what the template can range over", () => {
  for (const key of ["sidecar.istio.io/userVolume", "sidecar.istio.io/userVolumeMount"]) {
    admits(key, '{"v":{"emptyDir":{}}}', '[{"emptyDir":{}},{"configMap":{"name":"c"}}]', "null", "{}", "[]");
    refuses(key, "{", /is not JSON/);
    refuses(key, '"v"', /must be a JSON object of name to definition/);
    refuses(key, "1");
    refuses(key, "true");
    refuses(key, "[1]", /"0" must be a non-empty JSON object/);
    refuses(key, '{"v":"x"}', /"v" must be a non-empty JSON object/);
    refuses(key, '{"v":null}');
    refuses(key, '{"v":{}}', /"v" must be a non-empty JSON object/);
    refuses(key, "[{}]");
    admits(key, '{"v":{"emptyDir":null}}', '{"":{"emptyDir":{}}}', '{"v":{"name":"x","emptyDir":{}}}');
  }
});

test("the user volumes are checked where a template writes them: sidecar and grpc-agent, not gateway or grpc-simple", () => {
  // Istio's templates range over them (and fail on what they cannot range over) only in the
  // sidecar and grpc-agent templates: a gateway Pod carrying a bad one is injected (a Deployment
  // of Istio's gateway chart with `userVolume: ""`, found by mutating real manifests).
  const config = buildConfig({});
  const pod = (annotations: Record<string, string>) => ({
    metadata: { name: "gw", annotations },
    spec: { containers: [{ name: "istio-proxy", image: "auto" }] },
  });
  for (const key of ["sidecar.istio.io/userVolume", "sidecar.istio.io/userVolumeMount"]) {
    for (const value of ["", "5", "[1]"]) {
      for (const templates of ["gateway", "grpc-simple"]) {
        const r = inject(pod({ "inject.istio.io/templates": templates, [key]: value }), { namespace: "demo" }, config);
        assert.equal(r.decision.inject, true, `${templates} ${key}=${value}`);
      }
      for (const templates of ["sidecar", "grpc-agent", "gateway,sidecar"]) {
        assert.throws(
          () => inject(pod({ "inject.istio.io/templates": templates, [key]: value }), { namespace: "demo" }, config),
          { code: "ERR_INVALID_ANNOTATION", field: key },
          `${templates} ${key}=${value}`,
        );
      }
    }
  }
});

test("sidecar.istio.io/status: container lists must be lists of names; anything else is ignored", () => {
  const key = "sidecar.istio.io/status";
  admits(
    key,
    '{"containers":["istio-proxy"],"initContainers":["istio-init"]}',
    '{"containers":null}',
    '{"volumes":"x"}',
    '{"revision":1}',
    "{",
    "[]",
    '"x"',
    "null",
    "",
  );
  refuses(key, '{"containers":"x"}', /containers must be a list of container names/);
  refuses(key, '{"containers":[1]}');
  refuses(key, '{"containers":[null]}');
  refuses(key, '{"initContainers":{}}', /initContainers must be a list of container names/);
});

test("inject.istio.io/templates: an empty name is no template", () => {
  admits("inject.istio.io/templates", "sidecar", "sidecar, gateway", "anything");
  refuses("inject.istio.io/templates", "", /has an empty template name/);
  refuses("inject.istio.io/templates", " ");
  refuses("inject.istio.io/templates", "sidecar,");
  refuses("inject.istio.io/templates", "sidecar,,gateway");
});

test("sidecar.istio.io/proxyImageType: written raw into the image, unless the image annotation is a full name", () => {
  admits("sidecar.istio.io/proxyImageType", "distroless", "debug", "");
  refuses("sidecar.istio.io/proxyImageType", 'x"y', /has a '"'/);
  assert.doesNotThrow(() =>
    validateAnnotations({
      "sidecar.istio.io/proxyImageType": 'x"y',
      "sidecar.istio.io/proxyImage": "example.com/proxy:1",
    }),
  );
});

test("admitted as Istio admits them, with a warning when the value is ignored or breaks the proxy", () => {
  const cases: [string, string, string | undefined][] = [
    ["sidecar.istio.io/rewriteAppHTTPProbers", "true", undefined],
    ["sidecar.istio.io/rewriteAppHTTPProbers", "F", undefined],
    [
      "sidecar.istio.io/rewriteAppHTTPProbers",
      "sometimes",
      'sidecar.istio.io/rewriteAppHTTPProbers="sometimes" is not true or false: ignored',
    ],
    ["sidecar.istio.io/nativeSidecar", "false", undefined],
    [
      "sidecar.istio.io/nativeSidecar",
      "yes",
      'sidecar.istio.io/nativeSidecar="yes" reads as "true": only "false" turns it off',
    ],
    ["sidecar.istio.io/nativeSidecar", "", "sidecar.istio.io/nativeSidecar is empty: ignored"],
    ["sidecar.istio.io/capNetBindService", "true", undefined],
    ["sidecar.istio.io/capNetBindService", "1", 'sidecar.istio.io/capNetBindService="1" is not "true": ignored'],
    ["sidecar.istio.io/logLevel", "debug", undefined],
    [
      "sidecar.istio.io/logLevel",
      "loud",
      'sidecar.istio.io/logLevel="loud" is no Envoy log level: the proxy may not start',
    ],
    ["sidecar.istio.io/componentLogLevel", "misc:error,upstream:debug", undefined],
    [
      "sidecar.istio.io/componentLogLevel",
      "misc",
      'sidecar.istio.io/componentLogLevel="misc" is not <component>:<level>,…: Envoy may not start',
    ],
    ["sidecar.istio.io/agentLogLevel", "default:info,ads:debug", undefined],
    ["sidecar.istio.io/agentLogLevel", "fatal", undefined],
    [
      "sidecar.istio.io/agentLogLevel",
      "default:trace",
      'sidecar.istio.io/agentLogLevel="default:trace" is not [<scope>:]<level>,…: pilot-agent may not start',
    ],
    [
      "readiness.status.sidecar.istio.io/applicationPorts",
      "8080",
      "readiness.status.sidecar.istio.io/applicationPorts has no effect any more: ignored",
    ],
    [
      "readiness.status.sidecar.istio.io/applicationPorts",
      "a, b",
      "readiness.status.sidecar.istio.io/applicationPorts has no effect any more: ignored",
    ],
  ];
  for (const [key, value, warning] of cases) {
    admits(key, value);
    assert.deepEqual(warnings({ [key]: value }), warning === undefined ? [] : [warning], `${key}=${value}`);
  }
  admits("sidecar.istio.io/rewriteAppHTTPProbers", "sometimes");
  admits("example.com/anything", "goes");
});

test("kubevirtInterfaces: deprecated, and ignored beside reroute-virtual-interfaces", () => {
  assert.deepEqual(warnings({ "traffic.sidecar.istio.io/kubevirtInterfaces": "net1" }), [
    "traffic.sidecar.istio.io/kubevirtInterfaces is deprecated: use istio.io/reroute-virtual-interfaces",
  ]);
  assert.deepEqual(
    warnings({ "traffic.sidecar.istio.io/kubevirtInterfaces": "net1", "istio.io/reroute-virtual-interfaces": "net2" }),
    ["traffic.sidecar.istio.io/kubevirtInterfaces ignored: istio.io/reroute-virtual-interfaces is set"],
  );
});

test("every warning stays under 120 characters, whatever the value", () => {
  const long = "x".repeat(100_000);
  const keys = [
    "sidecar.istio.io/rewriteAppHTTPProbers",
    "sidecar.istio.io/nativeSidecar",
    "sidecar.istio.io/capNetBindService",
    "sidecar.istio.io/logLevel",
    "sidecar.istio.io/componentLogLevel",
    "sidecar.istio.io/agentLogLevel",
    "readiness.status.sidecar.istio.io/applicationPorts",
    "traffic.sidecar.istio.io/includeOutboundPorts",
    "traffic.sidecar.istio.io/kubevirtInterfaces",
    "sidecar.istio.io/proxyImage",
  ];
  for (const value of [long, "\u0001".repeat(200), "é".repeat(60)]) {
    const all = annotationWarnings(Object.fromEntries(keys.map((k) => [k, value])), true, true);
    assert.equal(all.length, keys.length + 1);
    for (const w of all) assert.ok(w.length <= 120, `${w.length}: ${w}`);
  }
});

test("names that are Object.prototype's find no row", () => {
  assert.doesNotThrow(() =>
    validateAnnotations(JSON.parse('{"__proto__":"x","constructor":"y","toString":"z"}') as Record<string, string>),
  );
  assert.equal(annotationValueProblem("constructor", "x"), undefined);
});

test("annotationValueProblem: the reason alone, for the config loader", () => {
  assert.equal(
    annotationValueProblem("traffic.sidecar.istio.io/excludeInboundPorts", "80,http"),
    '"http" is not a port number (0-65535)',
  );
  assert.equal(annotationValueProblem("traffic.sidecar.istio.io/excludeInboundPorts", "0"), undefined);
  assert.equal(annotationValueProblem("sidecar.istio.io/logLevel", "loud"), undefined);
});

test("when annotations fail both ways, the validation table's is named before the template's, whatever their order", () => {
  // Istio validates every annotation (validate.go) before it renders its template: a Pod with
  // one of each is refused naming the first kind (found by a differential run against Istio).
  const late: Record<string, string> = {
    "traffic.sidecar.istio.io/includeOutboundPorts": 'a"b',
    "sidecar.istio.io/userVolume": "[1",
    "sidecar.istio.io/status": '{"containers":"x"}',
  };
  const early: Record<string, string> = {
    "prometheus.istio.io/merge-metrics": "",
    "sidecar.istio.io/interceptionMode": "redirect",
  };
  for (const [lateKey, lateValue] of Object.entries(late))
    for (const [earlyKey, earlyValue] of Object.entries(early))
      for (const annotations of [
        { [lateKey]: lateValue, [earlyKey]: earlyValue },
        { [earlyKey]: earlyValue, [lateKey]: lateValue },
      ])
        assert.throws(
          () => validateAnnotations(annotations),
          (e: unknown) => e instanceof InjectionError && e.field === earlyKey,
          `${lateKey} with ${earlyKey}`,
        );
  // Each of the late ones is refused on its own.
  for (const [key, value] of Object.entries(late)) refuses(key, value);
});
