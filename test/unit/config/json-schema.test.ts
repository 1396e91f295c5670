// The chart's JSON Schema for `config` is generated from the loader's own rules: the committed
// file is what scripts/config-schema.ts writes, and it refuses the configs the loader refuses
// (the rows of cases.ts), except the rules JSON Schema cannot state.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { FORMAT, formatProblem, type FormatName, type StringFormat } from "../../../src/config/formats.js";
import {
  configJsonSchema,
  ruleJsonSchema,
  withConfigSchema,
  type JsonSchema,
} from "../../../src/config/json-schema.js";
import { ACCEPTED, REFUSED } from "./cases.js";

const VALUES_SCHEMA = join(
  resolve(dirname(fileURLToPath(import.meta.url)), "../../.."),
  "charts",
  "sidecar-injector",
  "values.schema.json",
);

// A JSON Schema (draft-07) evaluator for exactly the keywords the generator writes; any other
// keyword fails the test, so a new one cannot be ignored here by accident.
const KNOWN = new Set([
  "description",
  "type",
  "enum",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "properties",
  "additionalProperties",
  "propertyNames",
  "items",
  "required",
  "if",
  "then",
  "else",
  "minItems",
  "maxItems",
]);

function typeOf(v: unknown): string[] {
  if (v === null) return ["null"];
  if (Array.isArray(v)) return ["array"];
  if (typeof v === "number") return Number.isInteger(v) ? ["integer", "number"] : ["number"];
  return [typeof v];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The JSON pointers where `v` fails `s`; empty when it passes. */
function errors(s: JsonSchema, v: unknown, at = ""): string[] {
  const out: string[] = [];
  for (const k of Object.keys(s))
    if (!KNOWN.has(k)) throw new Error(`keyword ${k} at ${at} is not evaluated by this test`);
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!typeOf(v).some((t) => types.includes(t))) return [`${at}: type`];
  }
  if (Array.isArray(s.enum) && !s.enum.includes(v)) out.push(`${at}: enum`);
  if (typeof v === "string") {
    if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) out.push(`${at}: pattern`);
    if (typeof s.minLength === "number" && v.length < s.minLength) out.push(`${at}: minLength`);
    if (typeof s.maxLength === "number" && v.length > s.maxLength) out.push(`${at}: maxLength`);
  }
  if (typeof v === "number") {
    if (typeof s.minimum === "number" && v < s.minimum) out.push(`${at}: minimum`);
    if (typeof s.maximum === "number" && v > s.maximum) out.push(`${at}: maximum`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === "number" && v.length < s.minItems) out.push(`${at}: minItems`);
    if (typeof s.maxItems === "number" && v.length > s.maxItems) out.push(`${at}: maxItems`);
    const items = s.items;
    if (isObject(items)) v.forEach((x, i) => out.push(...errors(items, x, `${at}/${i}`)));
  }
  if (isObject(v)) {
    const props = isObject(s.properties) ? s.properties : {};
    for (const r of Array.isArray(s.required) ? s.required : [])
      if (!(r in v)) out.push(`${at}/${String(r)}: required`);
    for (const [k, x] of Object.entries(v)) {
      if (isObject(s.propertyNames)) out.push(...errors(s.propertyNames, k, `${at}/${k} (name)`));
      const sub = Object.hasOwn(props, k) ? props[k] : s.additionalProperties;
      if (sub === false) out.push(`${at}/${k}: additionalProperties`);
      else if (isObject(sub)) out.push(...errors(sub, x, `${at}/${k}`));
    }
  }
  if (isObject(s.if)) {
    const branch = errors(s.if, v, at).length === 0 ? s.then : s.else;
    if (isObject(branch)) out.push(...errors(branch, v, at));
  }
  return out;
}

/** The schema the generator writes for a string of `format`. */
function ruleSchema(format: StringFormat): JsonSchema {
  return ruleJsonSchema({ kind: "string", format });
}

const committed = readFileSync(VALUES_SCHEMA, "utf8");
const chartSchema: unknown = JSON.parse(committed);
assert.ok(isObject(chartSchema) && isObject(chartSchema.properties) && isObject(chartSchema.properties.config));
const config: JsonSchema = chartSchema.properties.config;

test("the committed values.schema.json is the generated one (run scripts/config-schema.ts)", () => {
  assert.deepEqual(config, configJsonSchema());
  assert.equal(withConfigSchema(committed), committed);
});

test("the defaults pass the schema", () => {
  assert.deepEqual(errors(config, DEFAULT_CONFIG), []);
});

describe("the schema refuses what the loader refuses, as far as JSON Schema can say it", () => {
  for (const row of REFUSED) {
    test(row.name, () => {
      const found = errors(config, row.config);
      if (row.schema === false)
        assert.deepEqual(found, [], "a rule JSON Schema cannot state: the schema accepts, the loader refuses");
      else assert.ok(found.length > 0, "the schema accepts what the loader refuses");
    });
  }
});

describe("the schema accepts what the loader accepts", () => {
  for (const row of ACCEPTED) {
    test(row.name, () => {
      assert.deepEqual(errors(config, row.config), []);
    });
  }
});

test("every pattern reads the same in JavaScript and in Go's RE2 (helm's)", () => {
  for (const [name, format] of Object.entries(FORMAT)) {
    const pattern: string | undefined = "pattern" in format ? format.pattern : undefined;
    if (pattern === undefined) continue;
    assert.doesNotThrow(() => new RegExp(pattern, "u"), name);
    assert.ok(pattern.startsWith("^") && pattern.endsWith("$"), `${name}: anchored`);
    // RE2 has no look-arounds, no back-references, no possessive or atomic groups.
    assert.doesNotMatch(pattern, /\(\?[=!<>]|\\[1-9]|[*+?}][+]/u, name);
    // Classes that differ between the two (\s \w \d \b read Unicode or ASCII) are not used.
    assert.doesNotMatch(pattern, /\\[swdbSWDB]/u, name);
  }
});

describe("the schema's pattern says what the loader's check says, on samples of each checked format", () => {
  // Values the loader refuses and the pattern lets through: JSON Schema only approximates IPv6.
  const SCHEMA_LOOSER = new Set(["1:2:3/64", ":::/8", "fd00::1::1/64"]);
  const CIDRS = [
    "",
    "*",
    " *",
    "*,10.0.0.0/8",
    "10.0.0.0/8",
    " 10.0.0.0/8 , 192.168.0.0/16",
    "0.0.0.0/0",
    "255.255.255.255/32",
    "10.0.0.0/032",
    "fd00::/8",
    "::/0",
    "::ffff:10.0.0.1/128",
    "2001:db8::/129",
    "10.0.0.0/33",
    "10.0.0.0",
    "256.0.0.0/8",
    "01.0.0.0/8",
    "10.0.0.0/8,",
    ",10.0.0.0/8",
    "10.0.0.0/-1",
    "10.0.0.0/1a",
    "fd00::zz/8",
    "1:2:3/64",
    ":::/8",
    "fd00::1::1/64",
  ];
  const PORTS = [
    "",
    "*",
    " * ",
    "80",
    "0080",
    "80,443",
    " 80 , 443 ",
    "1",
    "65535",
    "0",
    "65536",
    "http",
    "80,",
    ",80",
    "80,,443",
    "*,80",
    "-1",
    "+80",
    "8 0",
    "99999999",
  ];
  const samples: Partial<Record<FormatName, readonly string[]>> = {
    includeIPRanges: CIDRS,
    excludeIPRanges: CIDRS,
    includePorts: PORTS,
    ports: PORTS,
    logLevel: [
      "trace",
      "debug",
      "info",
      "warning",
      "warn",
      "error",
      "critical",
      "off",
      "",
      "Warning",
      "warn ",
      "fatal",
    ],
    scopedLogLevels: [
      "misc:error",
      "misc:error,upstream:info",
      "misc:error, upstream:info",
      "",
      "misc",
      "misc:",
      ":error",
      "misc:error:x",
      "misc:error,",
      "a b:info",
      "misc:loud",
    ],
    agentLogLevels: [
      "default:info",
      "info",
      "default:debug,ads:warn",
      "none",
      "fatal",
      "",
      "default:trace",
      "default:",
      ":info",
      "a:b:info",
      "info,",
      "default:INFO",
    ],
    quantity: [
      "100m",
      "0.5",
      ".5",
      "1.",
      "+1",
      "1e3",
      "1E3",
      "1e-3",
      "1e+05",
      "1Ki",
      "1.5Gi",
      "0",
      "-1",
      "100 m",
      "1GB",
      "1e999",
      "",
      "m",
      "1m1",
      "1ki",
      ".",
    ],
    labelKey: [
      "app",
      "example.com/app",
      "a".repeat(63),
      "a".repeat(64),
      "Example.com/app",
      "example.com/",
      "/app",
      "a/b/c",
      "-app",
      "app-",
      "app_1.x",
    ],
    image: [
      "proxyv2",
      "istio/proxyv2:1.28.0",
      "localhost:5000/a/b",
      `a@sha256:${"0".repeat(64)}`,
      "A/b",
      "a/B",
      "a:",
      "a:-x",
      "a b",
      "",
      "a//b",
      "a__b",
      "a___b",
      "[::1]:5000/a",
    ],
  };
  for (const [name, format] of Object.entries(FORMAT)) {
    const values = samples[name as FormatName];
    if (values === undefined) continue;
    test(name, () => {
      let refused = 0;
      for (const value of values) {
        const loader = formatProblem(format, value) === undefined;
        const schema = errors(ruleSchema(format), value).length === 0;
        if (!loader) refused += 1;
        if (SCHEMA_LOOSER.has(value))
          assert.ok(schema && !loader, `${name} ${JSON.stringify(value)}: listed as looser`);
        else assert.equal(schema, loader, `${name} ${JSON.stringify(value)}: schema ${schema}, loader ${loader}`);
      }
      assert.ok(refused > 0 && refused < values.length, `${name}: samples on both sides`);
    });
  }
});
