import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseProxyConfig } from "../../../src/injection/proxy-config.js";
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
  assert.equal(json.json, '{"interceptionMode":"TPROXY","concurrency":2}\n');
  // Later duplicate keys win, as Istio (sigs.k8s.io/yaml) reads them.
  assert.equal(parseProxyConfig("concurrency: 1\nconcurrency: 3\n", DEFAULT_CONFIG).json, '{"concurrency":3}\n');
  assert.equal(parseProxyConfig("# nothing\n", DEFAULT_CONFIG).json, "{}\n");
});

test("each limit refuses the annotation, naming it and the limit", () => {
  refused(`concurrency: 1\n# ${"x".repeat(PROXY_CONFIG_LIMITS.maxBytes)}`, /limit: bytes/);
  refused("{a: ".repeat(5000) + "1" + "}".repeat(5000), /limit: (depth|bytes)/);
  refused("{a: ".repeat(PROXY_CONFIG_LIMITS.maxDepth + 1) + "1" + "}".repeat(PROXY_CONFIG_LIMITS.maxDepth + 1), /nests deeper than 16 levels \(limit: depth\)/);
  refused(`proxyMetadata:\n${Array.from({ length: PROXY_CONFIG_LIMITS.maxNodes }, (_, i) => `  K${i}: v`).join("\n")}`, /limit: nodes/);
  refused(`a: &x 1\n${Array.from({ length: PROXY_CONFIG_LIMITS.maxAliases + 1 }, (_, i) => `b${i}: *x`).join("\n")}`, /limit: aliases/);
  refused("concurrency: 1\n---\nconcurrency: 2\n", /must be one ProxyConfig map, not several YAML documents/);
  refused("concurrency: [1\n", /not YAML or JSON/);
  refused("- 1\n", /must be a ProxyConfig map/);
});

test("the 190 KB / 20k-key map that took 9 s is refused at once, by its size", () => {
  const hostile = Array.from({ length: 20_000 }, (_, i) => `k${i}: ${i}`).join("\n");
  assert.ok(hostile.length > 180_000);
  refused(hostile, /limit: bytes/);
  // Within the byte limit, as many keys as fit are refused by count before the parser runs.
  const dense = Array.from({ length: 1500 }, (_, i) => `k${i}: 1`).join("\n");
  assert.ok(dense.length <= PROXY_CONFIG_LIMITS.maxBytes);
  refused(dense, /limit: nodes/);
});
