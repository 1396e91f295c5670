// The chart's JSON Schema for `config` is generated from the loader's own rules: the committed
// file is what scripts/config-schema.ts writes, and it refuses the configs the loader refuses
// (the rows of cases.ts), except the rules JSON Schema cannot state.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { FORMAT } from "../../../src/config/formats.js";
import { configJsonSchema, withConfigSchema, type JsonSchema } from "../../../src/config/json-schema.js";
import { ACCEPTED, REFUSED } from "./cases.js";

const VALUES_SCHEMA = join(resolve(dirname(fileURLToPath(import.meta.url)), "../../.."), "charts", "sidecar-injector", "values.schema.json");

// A JSON Schema (draft-07) evaluator for exactly the keywords the generator writes; any other
// keyword fails the test, so a new one cannot be ignored here by accident.
const KNOWN = new Set([
  "description", "type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "properties",
  "additionalProperties", "propertyNames", "items", "required", "if", "then", "else", "minItems", "maxItems",
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
  for (const k of Object.keys(s)) if (!KNOWN.has(k)) throw new Error(`keyword ${k} at ${at} is not evaluated by this test`);
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
    for (const r of Array.isArray(s.required) ? s.required : []) if (!(r in v)) out.push(`${at}/${String(r)}: required`);
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
      if (row.schema === false) assert.deepEqual(found, [], "a rule JSON Schema cannot state: the schema accepts, the loader refuses");
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
