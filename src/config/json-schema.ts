// The JSON Schema of the injector config, made from the rules of schema.ts, for the `config`
// value of the chart (charts/sidecar-injector/values.schema.json, written by
// scripts/config-schema.ts). It says what JSON Schema can: types, known keys, enums, ranges,
// and the patterns and lengths of formats.ts. What it cannot (a request above its limit,
// Istio's exact IPv6 check, the total size of annotations) the injector still refuses at start.

import { CONFIG_SCHEMA, type Rule } from "./schema.js";

export type JsonSchema = { [key: string]: unknown };

const CONFIG_DESCRIPTION =
  "Injector config (README, Configuration). Generated from src/config/schema.ts by scripts/config-schema.ts; " +
  "the injector checks it again, completely, at start.";

function describe(out: JsonSchema, description: string | undefined): JsonSchema {
  return description === undefined ? out : { description, ...out };
}

/** The JSON Schema of one rule. */
export function ruleJsonSchema(rule: Rule): JsonSchema {
  switch (rule.kind) {
    case "string": {
      const type =
        rule.accepts === "scalar"
          ? ["string", "number", "boolean"]
          : rule.accepts === "number"
            ? ["string", "number"]
            : "string";
      const out: JsonSchema = { type };
      const f = rule.format;
      if (f?.minLength !== undefined) out.minLength = f.minLength;
      if (f?.maxLength !== undefined) out.maxLength = f.maxLength;
      if (f?.pattern !== undefined) out.pattern = f.pattern;
      if (rule.minimum !== undefined) out.minimum = rule.minimum;
      return describe(out, rule.description ?? f?.expect);
    }
    case "integer":
      return describe({ type: "integer", minimum: rule.min, maximum: rule.max }, rule.description);
    case "boolean":
      return describe({ type: "boolean" }, rule.description);
    case "enum":
      return describe(
        { enum: rule.booleans === true ? [...rule.values, true, false] : [...rule.values] },
        rule.description,
      );
    case "list":
      return describe({ type: "array", items: ruleJsonSchema(rule.item) }, rule.description);
    case "map": {
      const names: JsonSchema = {};
      if (rule.key.maxLength !== undefined) names.maxLength = rule.key.maxLength;
      if (rule.key.pattern !== undefined) names.pattern = rule.key.pattern;
      return describe(
        { type: "object", propertyNames: names, additionalProperties: ruleJsonSchema(rule.value) },
        rule.description,
      );
    }
    case "proxyConfig":
      return describe({ type: "object", propertyNames: { enum: [...rule.fieldNames] } }, rule.description);
    case "object": {
      const properties: JsonSchema = {};
      for (const [k, r] of Object.entries(rule.fields)) properties[k] = ruleJsonSchema(r);
      const out: JsonSchema = { type: "object", additionalProperties: false };
      if (rule.required !== undefined) out.required = [...rule.required];
      out.properties = properties;
      return describe({ ...out, ...rule.jsonSchema }, rule.description);
    }
  }
}

/** The schema of the chart's `config` value. */
export function configJsonSchema(): JsonSchema {
  const { description: _omitted, ...rest } = ruleJsonSchema(CONFIG_SCHEMA);
  return { description: CONFIG_DESCRIPTION, ...rest };
}

/** JSON as values.schema.json is written: two-space indents, ASCII only, a final newline. */
export function schemaText(schema: unknown): string {
  const text = JSON.stringify(schema, null, 2).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return `${text}\n`;
}

/**
 * The chart's values.schema.json (given as text) with its `config` property replaced by
 * configJsonSchema(); every other value is kept as it is.
 */
export function withConfigSchema(valuesSchema: string): string {
  const parsed: unknown = JSON.parse(valuesSchema);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new Error("values.schema.json is not a JSON object");
  const properties: unknown = "properties" in parsed ? parsed.properties : undefined;
  if (typeof properties !== "object" || properties === null || !("config" in properties)) {
    throw new Error("values.schema.json has no properties.config to replace");
  }
  Object.assign(properties, { config: configJsonSchema() });
  return schemaText(parsed);
}
