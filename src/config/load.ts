// Reads the injector config (YAML), checks every key against the rules of schema.ts and applies
// the defaults of defaults.ts. Every problem is collected, not only the first, and all of them
// are reported at once: the key path, the refused value (quoted, cut to a bounded prefix) and
// why. A config that would make the API server refuse injected Pods is refused here, at start.
// An unknown key is named with the closest known key beside it (annotation-keys.ts's
// closestName), or with what it means where the schema says (a ProxyConfig field: which key
// sets it, or that it is set per Pod).

import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { closestName } from "../injection/annotation-keys.js";
import { quote } from "../injection/quote.js";
import { DEFAULT_CONFIG } from "./defaults.js";
import { formatProblem } from "./formats.js";
import { CONFIG_SCHEMA, type ObjectRule, type Rule } from "./schema.js";
import type { Config } from "./types.js";
import { fileProblem } from "../file-problem.js";

/** One refused key: its path, and the message line that names it. */
export interface ConfigProblem {
  readonly key: string;
  readonly message: string;
}

/** How many problems one error lists; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 50;

export class ConfigError extends Error {
  readonly code = "ERR_CONFIG";
  /** The first refused key. */
  readonly key: string;

  constructor(
    readonly problems: readonly ConfigProblem[],
    source?: string,
    readonly total: number = problems.length,
  ) {
    // One super() call, first: with parameter properties, tsc assigns them right after it, and
    // a super() inside a branch would leave them assigned before it (a ReferenceError at run).
    super(ConfigError.message(problems, source, total));
    this.name = "ConfigError";
    this.key = problems[0]?.key ?? "(root)";
  }

  private static message(problems: readonly ConfigProblem[], source: string | undefined, total: number): string {
    const where = source === undefined ? "config" : `config ${source}:`;
    const first = problems[0]?.message ?? "(root): is invalid";
    if (total <= 1) return `${where} ${first}`;
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  ${p.message}`);
    if (total > listed.length) listed.push(`  … and ${total - listed.length} more`);
    return `${source === undefined ? "config:" : where} ${total} errors:\n${listed.join("\n")}`;
  }

  static one(key: string, why: string, source?: string): ConfigError {
    return new ConfigError([{ key, message: `${key}: ${why}` }], source);
  }
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A user value in a "got ..." clause: scalars quoted, containers by their kind. */
function got(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `a string ${quote(v)}`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  return typeof v === "object" ? "a map" : `a ${typeof v}`;
}

const PLAIN_KEY = /^[A-Za-z0-9_][-A-Za-z0-9_]{0,62}$/u;

/** The path of `k` below `key`; a key that is not a plain word is quoted. */
function child(key: string, k: string): string {
  const at = PLAIN_KEY.test(k) ? k : quote(k);
  return key === "" ? at : `${key}.${at}`;
}

/** Sets an own property, even one named __proto__. */
function put(out: Plain, k: string, v: unknown): void {
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}

class Problems {
  readonly list: ConfigProblem[] = [];
  total = 0;

  add(key: string, why: string, value?: string): void {
    this.total += 1;
    if (this.list.length >= MAX_LISTED_PROBLEMS) return;
    const at = key || "(root)";
    this.list.push({ key: at, message: value === undefined ? `${at}: ${why}` : `${at}=${quote(value)}: ${why}` });
  }
}

/** Why `k` is refused in the object of `rule` at `key`: what it means there, or the closest known key. */
function unknownKey(rule: ObjectRule, key: string, k: string): string {
  const meaning = rule.unknownKey?.(k);
  if (meaning !== undefined) return `unknown key: ${meaning}`;
  const closest = closestName(k, Object.keys(rule.fields));
  return closest === undefined ? "unknown key" : `unknown key; did you mean ${child(key, closest)}?`;
}

function enumText(values: readonly string[]): string {
  return values.map((v) => (v === "" ? '""' : v)).join(" | ");
}

/** Checks `input` against `rule`; returns the value to keep (`fallback` when it is refused). */
function walk(rule: Rule, input: unknown, fallback: unknown, key: string, out: Problems): unknown {
  switch (rule.kind) {
    case "string": {
      let s: string | undefined;
      if (typeof input === "string") s = input;
      else if (rule.accepts !== undefined && typeof input === "number" && Number.isFinite(input)) s = String(input);
      else if (rule.accepts === "scalar" && typeof input === "boolean") s = String(input);
      if (s === undefined) {
        out.add(key, `must be a string, got ${got(input)}`);
        return fallback;
      }
      const why = rule.format === undefined ? undefined : formatProblem(rule.format, s);
      if (why !== undefined) {
        out.add(key, why, s);
        return fallback;
      }
      return s;
    }
    case "integer": {
      const range = `must be a whole number from ${rule.min} to ${rule.max}${rule.description ? ` (${rule.description})` : ""}`;
      if (typeof input !== "number" || !Number.isInteger(input)) {
        out.add(key, `${range}, got ${got(input)}`);
        return fallback;
      }
      if (input < rule.min || input > rule.max) {
        out.add(key, range, String(input));
        return fallback;
      }
      return input;
    }
    case "boolean":
      if (typeof input === "boolean") return input;
      out.add(key, `must be true or false, got ${got(input)}`);
      return fallback;
    case "enum": {
      const s =
        typeof input === "string"
          ? input
          : rule.booleans === true && typeof input === "boolean"
            ? String(input)
            : undefined;
      if (s === undefined) {
        out.add(key, `must be one of ${enumText(rule.values)}, got ${got(input)}`);
        return fallback;
      }
      if (!rule.values.includes(s)) {
        out.add(key, `must be one of ${enumText(rule.values)}`, s);
        return fallback;
      }
      return s;
    }
    case "list": {
      if (!Array.isArray(input)) {
        out.add(key, `must be a list, got ${got(input)}`);
        return fallback;
      }
      return input.map((item: unknown, i) => walk(rule.item, item, undefined, `${key}[${i}]`, out));
    }
    case "map": {
      if (!isPlain(input)) {
        out.add(key, `must be a map, got ${got(input)}`);
        return fallback;
      }
      const before = out.total;
      const result: Plain = {};
      for (const [k, v] of Object.entries(input)) {
        const why = formatProblem(rule.key, k);
        if (why !== undefined) out.add(key, `key ${quote(k)} ${why}`);
        put(result, k, walk(rule.value, v, undefined, child(key, k), out));
      }
      if (rule.refine !== undefined && out.total === before) {
        const strings: Record<string, string> = {};
        for (const [k, v] of Object.entries(result)) if (typeof v === "string") put(strings, k, v);
        for (const p of rule.refine(strings)) out.add(key + p.at, p.why, p.value);
      }
      return result;
    }
    case "proxyConfig": {
      if (!isPlain(input)) {
        out.add(key, `must be a ProxyConfig map, got ${got(input)}`);
        return fallback;
      }
      const problems = rule.check(input);
      for (const p of problems) out.add(key + p.at, p.why, p.value);
      return problems.length > 0 ? fallback : input;
    }
    case "object": {
      if (!isPlain(input)) {
        out.add(key, `must be a map, got ${got(input)}`);
        return fallback;
      }
      const before = out.total;
      const defaults = !rule.replace && isPlain(fallback) ? fallback : {};
      const result: Plain = { ...defaults };
      for (const [k, v] of Object.entries(input)) {
        const sub = child(key, k);
        const fieldRule = Object.hasOwn(rule.fields, k) ? rule.fields[k] : undefined;
        if (fieldRule === undefined) {
          out.add(sub, unknownKey(rule, key, k));
          continue;
        }
        if (v === null || v === undefined) continue; // an empty YAML value keeps the default
        put(result, k, walk(fieldRule, v, Object.hasOwn(defaults, k) ? defaults[k] : undefined, sub, out));
      }
      for (const k of rule.required ?? []) {
        if (input[k] === undefined || input[k] === null) out.add(child(key, k), "is required");
      }
      if (rule.refine !== undefined && out.total === before) {
        for (const p of rule.refine(result)) out.add(key + p.at, p.why, p.value);
      }
      return result;
    }
  }
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Checks a parsed config document and applies the defaults; the result is frozen. Throws one
 * ConfigError listing every problem found.
 */
export function buildConfig(input: unknown, source?: string): Config {
  const problems = new Problems();
  const cfg = walk(CONFIG_SCHEMA, input ?? {}, DEFAULT_CONFIG, "", problems);
  if (problems.total > 0) throw new ConfigError(problems.list, source, problems.total);
  // The walk returned the defaults with every given key checked against the rule for it, and
  // CONFIG_SCHEMA has one rule per key of Config.
  return deepFreeze(cfg as Config);
}

export function parseConfig(text: string, source?: string): Config {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw ConfigError.one(source ?? "config", `is not valid YAML: ${(e as Error).message}`);
  }
  return buildConfig(doc, source);
}

export async function loadConfig(file?: string): Promise<Config> {
  if (!file) return buildConfig({});
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw ConfigError.one(file, `cannot be read: ${fileProblem(e)}`);
  }
  return parseConfig(text, file);
}
