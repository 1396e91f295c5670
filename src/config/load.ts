import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { DEFAULT_CONFIG } from "./defaults.js";
import {
  INTERCEPTION_MODES,
  NATIVE_SIDECAR_MODES,
  POLICIES,
  type Config,
  type LabelSelector,
} from "./types.js";

export class ConfigError extends Error {
  readonly code = "ERR_CONFIG";
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config ${key}: ${message}`);
    this.name = "ConfigError";
  }
}

type Plain = Record<string, unknown>;

const ENUMS: Readonly<Record<string, readonly string[]>> = {
  policy: POLICIES,
  nativeSidecars: NATIVE_SIDECAR_MODES,
  "interception.mode": INTERCEPTION_MODES,
};

// Maps whose keys are free-form (every value a string).
const STRING_MAPS = new Set(["injectedAnnotations", "proxy.proxyMetadata"]);
const SELECTOR_LISTS = new Set(["neverInjectSelector", "alwaysInjectSelector"]);
const SELECTOR_OPERATORS = new Set(["In", "NotIn", "Exists", "DoesNotExist"]);

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "a map" : `a ${typeof v}`;
}

function stringMap(key: string, v: unknown): Record<string, string> {
  if (!isPlain(v)) throw new ConfigError(key, `must be a map of strings, got ${typeName(v)}`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === "string") out[k] = x;
    else if (typeof x === "number" || typeof x === "boolean") out[k] = String(x);
    else throw new ConfigError(`${key}.${k}`, `must be a string, got ${typeName(x)}`);
  }
  return out;
}

function selectorList(key: string, v: unknown): LabelSelector[] {
  if (!Array.isArray(v)) throw new ConfigError(key, `must be a list of label selectors, got ${typeName(v)}`);
  return v.map((sel, i) => {
    const at = `${key}[${i}]`;
    if (!isPlain(sel)) throw new ConfigError(at, `must be a label selector, got ${typeName(sel)}`);
    for (const k of Object.keys(sel)) {
      if (k !== "matchLabels" && k !== "matchExpressions") throw new ConfigError(`${at}.${k}`, "unknown key");
    }
    const out: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelector["matchExpressions"] } = {};
    if (sel.matchLabels !== undefined) out.matchLabels = stringMap(`${at}.matchLabels`, sel.matchLabels);
    if (sel.matchExpressions !== undefined) {
      if (!Array.isArray(sel.matchExpressions)) throw new ConfigError(`${at}.matchExpressions`, "must be a list");
      out.matchExpressions = sel.matchExpressions.map((e, j) => {
        const ea = `${at}.matchExpressions[${j}]`;
        if (!isPlain(e) || typeof e.key !== "string") throw new ConfigError(ea, "must have a string key");
        if (typeof e.operator !== "string" || !SELECTOR_OPERATORS.has(e.operator)) {
          throw new ConfigError(`${ea}.operator`, `must be one of In, NotIn, Exists, DoesNotExist`);
        }
        const values = e.values === undefined ? undefined : e.values;
        if (values !== undefined && (!Array.isArray(values) || values.some((x) => typeof x !== "string"))) {
          throw new ConfigError(`${ea}.values`, "must be a list of strings");
        }
        const op = e.operator as "In" | "NotIn" | "Exists" | "DoesNotExist";
        return values === undefined ? { key: e.key, operator: op } : { key: e.key, operator: op, values: values as string[] };
      });
    }
    return out;
  });
}

// Merges `input` over `defaults`, checking every key against the default's shape.
function merge(path: string, defaults: unknown, input: unknown): unknown {
  const key = path || "(root)";
  if (STRING_MAPS.has(path)) return stringMap(key, input);
  if (SELECTOR_LISTS.has(path)) return selectorList(key, input);
  if (path === "proxy.resources") {
    if (!isPlain(input)) throw new ConfigError(key, `must be a map, got ${typeName(input)}`);
    const out: Record<string, Record<string, string>> = {};
    for (const [k, v] of Object.entries(input)) {
      if (k !== "requests" && k !== "limits") throw new ConfigError(`${key}.${k}`, "unknown key (requests | limits)");
      out[k] = stringMap(`${key}.${k}`, v);
    }
    return out;
  }
  if (Array.isArray(defaults)) {
    if (!Array.isArray(input) || input.some((x) => typeof x !== "string")) {
      throw new ConfigError(key, `must be a list of strings, got ${typeName(input)}`);
    }
    return [...(input as string[])];
  }
  if (isPlain(defaults)) {
    if (!isPlain(input)) throw new ConfigError(key, `must be a map, got ${typeName(input)}`);
    const out: Plain = { ...defaults };
    for (const [k, v] of Object.entries(input)) {
      const sub = path ? `${path}.${k}` : k;
      if (!(k in defaults)) throw new ConfigError(sub, "unknown key");
      if (v === null || v === undefined) continue; // an empty YAML value keeps the default
      out[k] = merge(sub, defaults[k], v);
    }
    return out;
  }
  const allowed = ENUMS[path];
  if (allowed) {
    const s = typeof input === "boolean" ? String(input) : input;
    if (typeof s !== "string" || !allowed.includes(s)) {
      throw new ConfigError(key, `must be one of ${allowed.join(" | ")}, got ${JSON.stringify(input)}`);
    }
    return s;
  }
  if (typeof defaults === "number") {
    if (typeof input !== "number" || !Number.isInteger(input) || input < 0) {
      throw new ConfigError(key, `must be a non-negative whole number, got ${JSON.stringify(input)}`);
    }
    return input;
  }
  if (typeof defaults === "boolean") {
    if (typeof input !== "boolean") throw new ConfigError(key, `must be true or false, got ${JSON.stringify(input)}`);
    return input;
  }
  if (typeof input !== "string") throw new ConfigError(key, `must be a string, got ${typeName(input)}`);
  return input;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Validates a parsed config document and applies the defaults; the result is frozen. */
export function buildConfig(input: unknown): Config {
  const cfg = merge("", DEFAULT_CONFIG, input ?? {}) as Config;
  if (cfg.proxy.statusPort > 65535) throw new ConfigError("proxy.statusPort", "must be a port number (0-65535)");
  if (!cfg.proxy.image) throw new ConfigError("proxy.image", "must not be empty");
  return deepFreeze(cfg);
}

export function parseConfig(text: string, source = "config"): Config {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ConfigError(source, `is not valid YAML: ${(e as Error).message}`);
  }
  return buildConfig(doc);
}

export async function loadConfig(file?: string): Promise<Config> {
  if (!file) return buildConfig({});
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, `cannot be read: ${(e as Error).message}`);
  }
  return parseConfig(text, file);
}
