import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { parseProxyConfig } from "../../../src/injection/proxy-config.js";
import {
  importIstioConfig,
  ISTIO_CONFIG_LIMITS,
  MAX_FINDINGS,
  type Finding,
  type IstioConfigMaps,
} from "../../../src/istio/import.js";
import { PINNED_VALUES } from "../../../src/istio/pinned.js";

type Plain = Record<string, unknown>;

/** The chart's default values with `change` applied at dotted paths. */
function values(change: Record<string, unknown> = {}): string {
  const v = structuredClone(PINNED_VALUES) as Plain;
  for (const [path, value] of Object.entries(change)) {
    const keys = path.split(".");
    let m = v;
    for (const k of keys.slice(0, -1)) {
      if (typeof m[k] !== "object" || m[k] === null) m[k] = {};
      m = m[k] as Plain;
    }
    m[keys[keys.length - 1] ?? ""] = value;
  }
  return JSON.stringify(v);
}

const DEFAULT_CONFIG_TEXT =
  "defaultTemplates: [sidecar]\npolicy: enabled\nalwaysInjectSelector:\n  []\nneverInjectSelector:\n  []\ninjectedAnnotations:\n";
const DEFAULT_MESH =
  "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\nenablePrometheusMerge: true\nrootNamespace: istio-system\ntrustDomain: cluster.local\n";

function maps(o: { values?: string; config?: string; mesh?: string } = {}): IstioConfigMaps {
  return {
    injector: { name: "istio-sidecar-injector", values: o.values ?? values(), config: o.config ?? DEFAULT_CONFIG_TEXT },
    mesh: { name: "istio", mesh: o.mesh ?? DEFAULT_MESH },
  };
}

function pathsOf(findings: readonly Finding[], severity: Finding["severity"]): string[] {
  return findings.filter((f) => f.severity === severity).map((f) => f.path);
}

interface Case {
  readonly name: string;
  readonly input: IstioConfigMaps;
  /** Keys the imported document must hold (a subset check). */
  readonly config?: Plain;
  readonly unsupported?: readonly string[];
  readonly ignored?: readonly string[];
  /** A word each unsupported finding's problem must contain, by path. */
  readonly problem?: Readonly<Record<string, RegExp>>;
}

const CASES: readonly Case[] = [
  {
    name: "the chart's defaults import to our defaults but the image (2000m and 1024Mi are our 2 and 1Gi)",
    input: maps(),
    config: { proxy: { image: "registry.istio.io/testing/proxyv2:latest" } },
    unsupported: [],
    ignored: [],
  },
  {
    name: "proxy and interception values map to our keys",
    input: maps({
      values: values({
        "global.hub": "reg.example/mesh",
        "global.tag": 128,
        "global.imagePullPolicy": "Always",
        "global.imagePullSecrets": ["pull", { name: "pull2" }],
        "global.logging.level": "default:debug",
        "global.proxy.logLevel": "debug",
        "global.proxy.privileged": true,
        "global.proxy.statusPort": 15021,
        "global.proxy.includeIPRanges": "10.0.0.0/8",
        "global.proxy.excludeOutboundPorts": "5432",
        "global.proxy.startupProbe.enabled": false,
        "global.multiCluster.clusterName": "east",
        "global.network": "n1",
        "sidecarInjectorWebhook.rewriteAppHTTPProbe": false,
        "pilot.cni.enabled": true,
        "pilot.env": { ENABLE_NATIVE_SIDECARS: "false" },
      }),
    }),
    config: {
      imagePullSecrets: ["pull", "pull2"],
      clusterId: "east",
      network: "n1",
      cni: true,
      nativeSidecars: "false",
      rewriteAppProbes: false,
      interception: { includeOutboundIPRanges: "10.0.0.0/8", excludeOutboundPorts: "5432" },
    },
    unsupported: [],
  },
  {
    name: "a revision names its own istiod; global.caAddress and the mesh's discoveryAddress win",
    input: maps({
      values: values({ revision: "canary", "global.caAddress": "ca.example:443" }),
      mesh: "defaultConfig:\n  discoveryAddress: istiod-canary.istio-system.svc:15012\n",
    }),
    config: {
      revision: "canary",
      caAddress: "ca.example:443",
      discoveryAddress: "istiod-canary.istio-system.svc:15012",
    },
    unsupported: [],
  },
  {
    name: "the mesh ID is global.meshID, else the trust domain",
    input: maps({ mesh: "trustDomain: example.org\n" }),
    config: { trustDomain: "example.org", meshId: "example.org" },
  },
  {
    name: "global.meshID wins over the trust domain for the mesh ID",
    input: maps({ values: values({ "global.meshID": "m1" }), mesh: "trustDomain: example.org\n" }),
    config: { trustDomain: "example.org", meshId: "m1" },
  },
  {
    name: "global.variant is the variant, not part of the image: the tag is global.tag as written",
    input: maps({ values: values({ "global.tag": "1.28.0-debug", "global.variant": "distroless" }) }),
    config: { proxy: { image: "registry.istio.io/testing/proxyv2:1.28.0-debug" }, variant: "distroless" },
  },
  {
    name: "a proxy image with a slash is used whole, and as written (no image type); proxy_init's apart",
    input: maps({ values: values({ "global.proxy.image": "my.reg/envoy:v1", "global.proxy_init.image": "init" }) }),
    config: {
      proxy: { image: "my.reg/envoy:v1", imageTyped: false },
      proxyInit: { image: "registry.istio.io/testing/init:latest" },
    },
  },
  {
    name: "a proxy_init image with a slash is used whole, and as written",
    input: maps({ values: values({ "global.proxy_init.image": "my.reg/proxyinit:1.0" }) }),
    config: {
      proxy: { image: "registry.istio.io/testing/proxyv2:latest" },
      proxyInit: { image: "my.reg/proxyinit:1.0", imageTyped: false },
    },
  },
  {
    name: "values with no counterpart are unsupported, by path",
    input: maps({
      values: values({
        "global.proxy.lifecycle": { preStop: { exec: { command: ["sleep", "5"] } } },
        "global.proxy.tracer": "zipkin",
        "global.logAsJson": true,
        "global.pilotCertProvider": "kubernetes",
        "global.proxy.seccompProfile": { type: "RuntimeDefault" },
        "pilot.cni.provider": "multus",
      }),
    }),
    unsupported: [
      "istio-sidecar-injector.values.global.logAsJson",
      "istio-sidecar-injector.values.global.pilotCertProvider",
      "istio-sidecar-injector.values.global.proxy.lifecycle",
      "istio-sidecar-injector.values.global.proxy.seccompProfile",
      "istio-sidecar-injector.values.global.proxy.tracer",
      "istio-sidecar-injector.values.pilot.cni.provider",
    ],
  },
  {
    name: "istiod-only values are ignored when changed, silent when not",
    input: maps({
      values: values({
        "global.defaultResources.requests.cpu": "50m",
        "sidecarInjectorWebhook.reinvocationPolicy": "IfNeeded",
        "pilot.env": { PILOT_TRACE_SAMPLING: "1" },
      }),
    }),
    unsupported: [],
    ignored: [
      "istio-sidecar-injector.values.global.defaultResources.requests.cpu",
      "istio-sidecar-injector.values.sidecarInjectorWebhook.reinvocationPolicy",
      "istio-sidecar-injector.values.pilot.env.PILOT_TRACE_SAMPLING",
    ],
  },
  {
    name: "a top-level value that is not the chart's is unknown",
    input: maps({ values: values({ bogus: { x: 1 } }) }),
    unsupported: ["istio-sidecar-injector.values.bogus.x"],
    problem: { "istio-sidecar-injector.values.bogus.x": /not a value of Istio's chart/ },
  },
  {
    name: "a value of the wrong type is named, and the rest imported",
    input: maps({
      values: values({
        "global.proxy.privileged": "yes",
        "global.proxy.readinessPeriodSeconds": 1.5,
        "global.network": "n2",
      }),
    }),
    config: { network: "n2" },
    unsupported: [
      "istio-sidecar-injector.values.global.proxy.privileged",
      "istio-sidecar-injector.values.global.proxy.readinessPeriodSeconds",
    ],
  },
  {
    name: "policy, selectors and injectedAnnotations come from config",
    input: maps({
      config:
        'policy: disabled\nneverInjectSelector:\n- matchLabels: {a: b}\nalwaysInjectSelector:\n- matchExpressions: [{key: x, operator: Exists}]\ninjectedAnnotations:\n  "example.com/x": "1"\n',
    }),
    config: {
      policy: "disabled",
      neverInjectSelector: [{ matchLabels: { a: "b" } }],
      alwaysInjectSelector: [{ matchExpressions: [{ key: "x", operator: "Exists" }] }],
      injectedAnnotations: { "example.com/x": "1" },
    },
    unsupported: [],
  },
  {
    name: "custom and modified templates, other default templates, a bad policy, unknown keys",
    input: maps({
      config:
        "policy: sometimes\ndefaultTemplates: [sidecar, extra]\ntemplates:\n  sidecar: |\n    spec: {}\n  extra: |\n    metadata: {}\nbogus: 1\n",
    }),
    unsupported: [
      "istio-sidecar-injector.config.policy",
      "istio-sidecar-injector.config.defaultTemplates",
      "istio-sidecar-injector.config.templates.sidecar",
      "istio-sidecar-injector.config.templates.extra",
      "istio-sidecar-injector.config.bogus",
    ],
    problem: {
      "istio-sidecar-injector.config.templates.sidecar": /differs from Istio's sidecar template/,
      "istio-sidecar-injector.config.templates.extra": /custom injection template/,
    },
  },
  {
    name: "mesh ProxyConfig: into proxyConfig as written, but discoveryAddress; other MeshConfig not reported",
    input: maps({
      mesh: "enablePrometheusMerge: false\naccessLogFile: /dev/stdout\ndefaultConfig:\n  discoveryAddress: d.example:15012\n  holdApplicationUntilProxyStarts: true\n  proxyMetadata: {A: b, B: 'true'}\n  concurrency: 2\n  interceptionMode: TPROXY\n  tracing: {zipkin: {address: 'z:9411'}, sampling: 5}\n",
    }),
    config: {
      prometheusMerge: false,
      discoveryAddress: "d.example:15012",
      proxyConfig: {
        holdApplicationUntilProxyStarts: true,
        proxyMetadata: { A: "b", B: "true" },
        concurrency: 2,
        interceptionMode: "TPROXY",
        tracing: { zipkin: { address: "z:9411" }, sampling: 5 },
      },
    },
    unsupported: [],
  },
  {
    name: "mesh ProxyConfig: an unknown field, which istiod drops, is reported as ignored and left out",
    input: maps({
      mesh: "defaultConfig:\n  concurrenccy: 2\n  tracing: {zipkn: {}, sampling: 5}\n  drainDuration: 60s\n",
    }),
    config: { proxyConfig: { tracing: { sampling: 5 }, drainDuration: "60s" } },
    unsupported: [],
    problem: { "istio.mesh.defaultConfig": /"concurrenccy", which is not a ProxyConfig field: istiod drops it/ },
  },
  {
    name: "mesh ProxyConfig that istiod refuses: unsupported, left out whole",
    input: maps({ mesh: "defaultConfig:\n  holdApplicationUntilProxyStarts: true\n  statusPort: 0\n" }),
    config: {},
    unsupported: ["istio.mesh.defaultConfig"],
    problem: { "istio.mesh.defaultConfig": /refused by istiod: statusPort must be a port from 1 to 65535/ },
  },
  {
    name: "bad JSON in values: named, the config and mesh still imported",
    input: maps({ values: '{"global": ', mesh: "trustDomain: t.example\n" }),
    config: { trustDomain: "t.example" },
    unsupported: ["istio-sidecar-injector.values"],
    problem: { "istio-sidecar-injector.values": /not valid JSON/ },
  },
  {
    name: "bad YAML in config and a mesh that is no map",
    input: maps({ config: "policy: [\n", mesh: "- a\n- b\n" }),
    unsupported: ["istio-sidecar-injector.config", "istio.mesh"],
  },
  {
    name: "nothing given: both ConfigMaps are named as missing",
    input: {},
    config: {},
    unsupported: ["istio-sidecar-injector", "istio"],
  },
  {
    name: "a ConfigMap without its key",
    input: { injector: { name: "istio-sidecar-injector-canary" }, mesh: { name: "istio-canary" } },
    unsupported: ["istio-sidecar-injector-canary.values", "istio-sidecar-injector-canary.config", "istio-canary.mesh"],
  },
];

describe("importIstioConfig", () => {
  for (const c of CASES) {
    test(c.name, () => {
      const r = importIstioConfig(c.input);
      if (c.config !== undefined) assertSubset(r.config, c.config, "config");
      if (c.unsupported !== undefined)
        assert.deepEqual(
          pathsOf(r.findings, "unsupported").sort(),
          [...c.unsupported].sort(),
          JSON.stringify(r.findings, null, 1),
        );
      if (c.ignored !== undefined)
        assert.deepEqual(
          pathsOf(r.findings, "ignored")
            .filter((p) => !p.endsWith(".config.templates"))
            .sort(),
          [...c.ignored].sort(),
        );
      for (const [path, re] of Object.entries(c.problem ?? {})) {
        const f = r.findings.find((x) => x.path === path);
        assert.ok(f, `no finding at ${path}`);
        assert.match(f.problem, re);
      }
      for (const f of r.findings) assert.ok(f.instead.length > 0, `${f.path} says what to do instead`);
      // Whatever the input, the document is a config our injector takes.
      assert.doesNotThrow(() => buildConfig(r.config, "(imported)"));
    });
  }

  test("the document holds only what differs from our defaults, quantities as the API server stores them", () => {
    const r = importIstioConfig(maps({ values: values({ "global.hub": "docker.io/istio", "global.tag": "1.28.0" }) }));
    assert.deepEqual(r.config, {});
    const more = importIstioConfig(
      maps({
        values: values({
          "global.hub": "docker.io/istio",
          "global.tag": "1.28.0",
          "global.proxy.resources": {
            requests: { cpu: "0.1", memory: "128Mi" },
            limits: { cpu: "2", memory: "1025Mi" },
          },
        }),
      }),
    );
    assert.deepEqual(more.config, {
      proxy: { resources: { requests: { cpu: "0.1", memory: "128Mi" }, limits: { cpu: "2", memory: "1025Mi" } } },
    });
  });
});

describe("importIstioConfig on hostile input", () => {
  test("a values text past the size limit is a finding, not a parse", () => {
    const r = importIstioConfig(maps({ values: `{"a": "${"x".repeat(ISTIO_CONFIG_LIMITS.maxBytes)}"}` }));
    const f = r.findings.find((x) => x.path === "istio-sidecar-injector.values");
    assert.ok(f);
    assert.match(f.problem, /limit: bytes/);
  });

  test("deep nesting and alias expansion are refused by the YAML limits", () => {
    const deep = importIstioConfig(maps({ config: `${"[".repeat(5000)}${"]".repeat(5000)}` }));
    assert.match(deep.findings.find((x) => x.path === "istio-sidecar-injector.config")?.problem ?? "", /limit: depth/);
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
            .fill(`*${String.fromCharCode(97 + i)}`)
            .join(", ")}]`,
      ),
    ].join("\n");
    const aliases = importIstioConfig(maps({ mesh: bomb }));
    assert.match(aliases.findings.find((x) => x.path === "istio.mesh")?.problem ?? "", /limit: aliases/);
  });

  test("a huge user value is quoted by a bounded prefix", () => {
    const r = importIstioConfig(maps({ values: values({ "global.proxy.tracer": "z".repeat(100_000) }) }));
    const f = r.findings.find((x) => x.path.endsWith("global.proxy.tracer"));
    assert.ok(f);
    assert.ok(f.problem.length < 400, `problem is ${f.problem.length} characters`);
    assert.match(f.problem, /\(100000 characters\)/);
  });

  test("findings are bounded, and the rest counted", () => {
    const templates = Array.from({ length: 500 }, (_, i) => `  t${i}: x\n`).join("");
    const r = importIstioConfig(maps({ config: `templates:\n${templates}` }));
    assert.equal(r.findings.length, MAX_FINDINGS + 1);
    assert.match(r.findings[MAX_FINDINGS]?.problem ?? "", /300 more findings/);
  });

  test("__proto__ keys stay data", () => {
    const r = importIstioConfig(
      maps({
        config: 'injectedAnnotations:\n  "__proto__": "x"\n',
        mesh: 'defaultConfig:\n  proxyMetadata: {"__proto__": "y"}\n',
      }),
    );
    assert.equal(({} as Plain).x, undefined);
    assert.equal(Object.getPrototypeOf(r.config), Object.prototype);
    const annotations = r.config.injectedAnnotations as Plain;
    assert.ok(Object.hasOwn(annotations, "__proto__"));
    assert.equal(Object.getOwnPropertyDescriptor(annotations, "__proto__")?.value, "x");
    const md = (r.config.proxyConfig as Plain).proxyMetadata as Plain;
    assert.equal(Object.getOwnPropertyDescriptor(md, "__proto__")?.value, "y");
    // and reach the proxy's env as one
    const overlay = parseProxyConfig(undefined, buildConfig({ proxyConfig: r.config.proxyConfig }));
    assert.equal(Object.getOwnPropertyDescriptor(overlay.proxyMetadata, "__proto__")?.value, "y");
  });
});

function assertSubset(actual: unknown, expected: unknown, at: string): void {
  if (typeof expected === "object" && expected !== null && !Array.isArray(expected)) {
    assert.ok(typeof actual === "object" && actual !== null, `${at}: missing`);
    for (const [k, v] of Object.entries(expected)) assertSubset((actual as Plain)[k], v, `${at}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, at);
}
