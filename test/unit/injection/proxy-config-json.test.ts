// PROXY_CONFIG as Istio writes it, nested messages included (their fields read and written
// through proxy-config-schema.ts). istio-proxy-config-json.jsonl holds
// [proxy.istio.io/config value, Istio's PROXY_CONFIG or REFUSE], as Istio's injector at 86c9f01
// (the oracle, test/oracle, with the settings of test/oracle/injector-config.yaml) answered
// for a Pod carrying that annotation. Ours must be the same text, but for the differences
// listed in KNOWN.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.js";
import { parseProxyConfig } from "../../../src/injection/proxy-config.js";

const configFile = new URL("../../oracle/injector-config.yaml", import.meta.url);
const config = parseConfig(readFileSync(configFile, "utf8"), configFile.pathname);
const ROWS = readFileSync(new URL("istio-proxy-config-json.jsonl", import.meta.url), "utf8")
  .split("\n")
  .filter((l) => l !== "")
  .map((l) => JSON.parse(l) as [string, string]);

// None today: value -> our PROXY_CONFIG, where it is not Istio's.
const KNOWN = new Map<string, string>();

function ours(value: string): string {
  try {
    return parseProxyConfig(value, config).json.trim();
  } catch {
    return "REFUSE";
  }
}

test("PROXY_CONFIG is Istio's text for every value of the table", () => {
  assert.ok(ROWS.length >= 90);
  // The table has what makes the difference: dropped fields, defaults, durations, enums, wrappers.
  for (const want of [
    '{"drainDuration":"90s"}',
    '{"interceptionMode":"TPROXY"}',
    '{"concurrency":0}',
    '{"holdApplicationUntilProxyStarts":false}',
    '{"gatewayTopology":{"numTrustedProxies":2}}',
    "REFUSE",
  ]) {
    assert.ok(
      ROWS.some((r) => r[1] === want),
      want,
    );
  }
  const differ: string[] = [];
  let knownSeen = 0;
  for (const [value, istio] of ROWS) {
    const known = KNOWN.get(value);
    if (known !== undefined) knownSeen += 1;
    const answer = ours(value);
    if (answer !== (known ?? istio)) differ.push(`${JSON.stringify(value)}: Istio ${istio}, ours ${answer}`);
  }
  assert.deepEqual(differ, []);
  assert.equal(knownSeen, KNOWN.size, "every known difference is still in the table");
});

test("the config's own ProxyConfig fields are written with the annotation's, in proxy.proto's order", () => {
  const moved = parseConfig("discoveryAddress: other.example:15012\nproxy:\n  statusPort: 15021\n", "inline.yaml");
  assert.equal(
    parseProxyConfig(undefined, moved).json,
    '{"discoveryAddress":"other.example:15012","statusPort":15021}\n',
  );
  assert.equal(
    parseProxyConfig("statusPort: 15020\nconcurrency: 1", moved).json,
    '{"discoveryAddress":"other.example:15012","concurrency":1}\n',
  );
  assert.equal(
    parseProxyConfig("discovery_address: istiod.istio-system.svc:15012", moved).json,
    '{"statusPort":15021}\n',
  );
});
