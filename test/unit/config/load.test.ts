import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig, ConfigError, parseConfig } from "../../../src/config/load.js";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";

test("an empty config is the default, frozen", () => {
  const c = buildConfig({});
  assert.deepEqual(c, DEFAULT_CONFIG);
  assert.ok(Object.isFrozen(c.proxy));
});

test("keys left out keep their defaults", () => {
  const c = parseConfig("proxy:\n  image: example.com/p:1\ninterception:\n  mode: TPROXY\n");
  assert.equal(c.proxy.image, "example.com/p:1");
  assert.equal(c.proxy.statusPort, 15020);
  assert.equal(c.interception.mode, "TPROXY");
  assert.equal(c.interception.includeInboundPorts, "*");
});

test("unknown keys and wrong types are errors naming the key", () => {
  const bad: [string, RegExp][] = [
    ["polcy: enabled", /polcy: unknown key/],
    ["proxy:\n  uid: root", /proxy\.uid: must be a non-negative whole number/],
    ["policy: sometimes", /policy: must be one of enabled \| disabled/],
    ["nativeSidecars: maybe", /nativeSidecars/],
    ["proxy:\n  resources:\n    request: {}", /proxy\.resources\.request: unknown key/],
    ["neverInjectSelector:\n- matchExpressions:\n  - {key: a, operator: Like}", /neverInjectSelector\[0\]\.matchExpressions\[0\]\.operator/],
    ["ignoredNamespaces: kube-system", /ignoredNamespaces: must be a list/],
    ["proxy: [1]", /proxy: must be a map/],
    ["a: [", /not valid YAML/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseConfig(text), (e: unknown) => e instanceof ConfigError && re.test(e.message), text);
  }
});

test("booleans for nativeSidecars are accepted as their string form", () => {
  assert.equal(parseConfig("nativeSidecars: true").nativeSidecars, "true");
});
