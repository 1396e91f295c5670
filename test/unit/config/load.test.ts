import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { buildConfig, ConfigError, loadConfig, MAX_LISTED_PROBLEMS, parseConfig } from "../../../src/config/load.js";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { compareQuantities } from "../../../src/config/schema.js";
import { ACCEPTED, REFUSED } from "./cases.js";

function refusal(input: unknown): ConfigError {
  try {
    buildConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`accepted: ${JSON.stringify(input).slice(0, 200)}`);
}

test("an empty config is the default, frozen", () => {
  const c = buildConfig({});
  assert.deepEqual(c, DEFAULT_CONFIG);
  assert.ok(Object.isFrozen(c.proxy));
  assert.ok(Object.isFrozen(c.proxy.resources.requests));
});

test("every default passes its own rule", () => {
  assert.deepEqual(buildConfig(structuredClone(DEFAULT_CONFIG)), DEFAULT_CONFIG);
});

test("keys left out keep their defaults", () => {
  const c = parseConfig("proxy:\n  image: example.com/p:1\ninterception:\n  mode: TPROXY\n");
  assert.equal(c.proxy.image, "example.com/p:1");
  assert.equal(c.proxy.statusPort, 15020);
  assert.equal(c.interception.mode, "TPROXY");
  assert.equal(c.interception.includeInboundPorts, "*");
});

test("an empty YAML value keeps the default", () => {
  assert.equal(parseConfig("proxy:\n  image:\n").proxy.image, DEFAULT_CONFIG.proxy.image);
});

test("given resources replace the default as a whole", () => {
  assert.deepEqual(buildConfig({ proxy: { resources: { limits: { cpu: 1 } } } }).proxy.resources, {
    limits: { cpu: "1" },
  });
});

test("booleans for nativeSidecars, and scalars in string maps, are taken as their string form", () => {
  const c = parseConfig("nativeSidecars: true\nproxy:\n  proxyMetadata: {A: 1, B: false}\n");
  assert.equal(c.nativeSidecars, "true");
  assert.deepEqual(c.proxy.proxyMetadata, { A: "1", B: "false" });
});

describe("each rule refuses a bad value, naming the key, the value and why", () => {
  for (const row of REFUSED) {
    test(row.name, () => {
      const e = refusal(row.config);
      assert.equal(e.problems.length, 1, e.message);
      assert.equal(e.key, row.key, e.message);
      assert.match(e.message, /^config /);
      assert.match(e.problems[0]!.message, row.why);
      assert.ok(e.problems[0]!.message.startsWith(row.key), e.message);
    });
  }
});

describe("valid values are accepted", () => {
  for (const row of ACCEPTED) {
    test(row.name, () => {
      assert.doesNotThrow(() => buildConfig(row.config));
    });
  }
});

test("every error is listed at once, not only the first", () => {
  const text = [
    "polcy: enabled",
    "proxy:",
    "  uid: 0",
    "  resources:",
    '    requests: {cpu: "100 m"}',
    "interception:",
    "  includeInboundPorts: http",
    "  excludeOutboundIPRanges: 10.0.0.0/33",
    "ignoredNamespaces: [Kube-System]",
  ].join("\n");
  assert.throws(
    () => parseConfig(text, "/etc/sidecar-injector/config.yaml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(
        e.problems.map((p) => p.key),
        [
          "polcy",
          "proxy.uid",
          "proxy.resources.requests.cpu",
          "interception.includeInboundPorts",
          "interception.excludeOutboundIPRanges",
          "ignoredNamespaces[0]",
        ],
      );
      assert.equal(e.total, 6);
      assert.equal(e.key, "polcy");
      const lines = e.message.split("\n");
      assert.equal(lines[0], "config /etc/sidecar-injector/config.yaml: 6 errors:");
      assert.equal(lines.length, 7);
      assert.ok(
        lines.includes('  proxy.resources.requests.cpu="100 m": is not a Kubernetes quantity (for example 100m, 1Gi)'),
        e.message,
      );
      assert.ok(
        lines.includes('  interception.includeInboundPorts="http": "http" is not a port number (0-65535)'),
        e.message,
      );
      return true;
    },
  );
});

test("a config with very many errors lists a bounded number and counts the rest", () => {
  const e = refusal({ ignoredNamespaces: Array.from({ length: 10_000 }, (_, i) => `NS-${i}`) });
  assert.equal(e.total, 10_000);
  assert.equal(e.problems.length, MAX_LISTED_PROBLEMS);
  assert.match(e.message, new RegExp(`… and ${10_000 - MAX_LISTED_PROBLEMS} more$`));
  assert.ok(e.message.split("\n").length === MAX_LISTED_PROBLEMS + 2);
});

test("a huge value is quoted to a bounded prefix, also where it is one item of a list", () => {
  for (const config of [
    { proxy: { logLevel: "x".repeat(200_000) } },
    { interception: { excludeInboundPorts: `80,${"x".repeat(200_000)}` } },
    { interception: { excludeOutboundIPRanges: `10.0.0.0/8,${"1".repeat(200_000)}` } },
    { injectedAnnotations: { ["k".repeat(200_000)]: "v" } },
    { proxy: { imagee: "x", ["k".repeat(200_000)]: "v" } },
  ]) {
    const e = refusal(config);
    assert.ok(e.message.length < 800, `${e.message.length} characters: ${e.message.slice(0, 300)}`);
    assert.match(e.message, /\(200[0-9]{3} characters\)/);
  }
});

test("a key named __proto__ is an own key, not a prototype", () => {
  const c = parseConfig('proxy:\n  proxyMetadata: {"__proto__": "x", A: "1"}\n');
  assert.equal(Object.getPrototypeOf(c.proxy.proxyMetadata), Object.prototype);
  assert.deepEqual(Object.entries(c.proxy.proxyMetadata), [
    ["__proto__", "x"],
    ["A", "1"],
  ]);
  assert.equal(refusal(JSON.parse('{"__proto__": {"polluted": true}}')).key, "__proto__");
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("YAML that does not parse, and a file that cannot be read, are config errors", async () => {
  assert.throws(
    () => parseConfig("a: ["),
    (e: unknown) => e instanceof ConfigError && /not valid YAML/.test(e.message),
  );
  const dir = await mkdtemp(join(tmpdir(), "config-test-"));
  try {
    await assert.rejects(
      loadConfig(join(dir, "absent.yaml")),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.endsWith("absent.yaml: cannot be read: no such file or directory") &&
        !e.message.includes("ENOENT"),
    );
    await assert.rejects(
      loadConfig(dir),
      (e: unknown) => e instanceof ConfigError && e.message.endsWith(": cannot be read: is a directory"),
    );
    const file = join(dir, "config.yaml");
    await writeFile(file, "proxy:\n  resources:\n    requests: {cpu: 100 m}\n");
    await assert.rejects(
      loadConfig(file),
      (e: unknown) =>
        e instanceof ConfigError && e.message.startsWith(`config ${file}: proxy.resources.requests.cpu="100 m"`),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("quantities compare by value, across units", () => {
  const cases: [string, string, number][] = [
    ["100m", "1", -1],
    ["1", "1000m", 0],
    ["1Gi", "1024Mi", 0],
    ["2Gi", "2000Mi", 1],
    ["1G", "1Gi", -1],
    ["1e3", "1k", 0],
    ["1500m", "1.5", 0],
    ["-1", "0", -1],
    ["1Ei", "1E", 1],
    ["+1", ".5", 1],
    ["1.", "1000m", 0],
    ["0.1", "1e-1", 0],
    ["1e0005", "100k", 0],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(compareQuantities(a, b), want, `${a} vs ${b}`);
    assert.equal(compareQuantities(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
  assert.equal(compareQuantities("1x", "1"), undefined);
  assert.equal(compareQuantities(".", "1"), undefined);
  assert.equal(compareQuantities("1e999", "1"), undefined);
});
