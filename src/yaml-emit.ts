// YAML text of JSON-shaped data, the same text as the yaml library's
// `stringify(value, { lineWidth: 0, aliasDuplicateObjects: false })`, about twenty times faster:
// what /preview's YAML and diff answers write (each Pod once, and twice for a diff).
//
// The library builds a document of nodes for the value and then prints it, which for a List of
// a hundred Pods near the body limit took seconds. This writes the block structure itself
// (maps `key: value`, sequences `- item` indented under their key, `{}` and `[]` for empty ones)
// and asks the library only for the scalars whose form it would have to guess: every key and
// string that is not a plain word of more than five characters (so `true`, `null`, `1.0`, `~`,
// `yes` and any string with a quote, a colon or a newline are the library's call), numbers that
// are not safe integers, and multi-line strings, whose block form it re-indents to where the
// string sits. Short answers are remembered (SCALAR_MEMO entries of at most MEMO_MAX_CHARS).
//
// What it does not write itself (anything that is not a plain object, array, string, finite
// number, boolean or null; a key the library would write in the explicit `? key` form; nesting
// deeper than MAX_DEPTH) makes it hand the whole value to the library: the text is the same,
// only slower.

import { stringify } from "yaml";

const OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

/** Words the library always writes plain: a letter, then letters, digits, `_`, `.`, `/`, `-`. */
const PLAIN_WORD = /^[A-Za-z][A-Za-z0-9_./-]*$/;
/** Up to this length a plain word might be a keyword (`false`, `NULL`): the library decides. */
const KEYWORD_MAX = 5;
const MAX_DEPTH = 100;
const SCALAR_MEMO = 4096;
const MEMO_MAX_CHARS = 256;

/** Thrown inside: this value is left to the library. */
class Unsupported extends Error {}

const keyMemo = new Map<string, string>();
const valueMemo = new Map<string | number, string>();

function remember<K>(memo: Map<K, string>, key: K, text: string, chars: number): string {
  if (chars <= MEMO_MAX_CHARS) {
    if (memo.size >= SCALAR_MEMO) memo.clear();
    memo.set(key, text);
  }
  return text;
}

/** How the library writes `key` as a block map's key. */
function keyText(key: string): string {
  if (key.length > KEYWORD_MAX && PLAIN_WORD.test(key)) return key;
  const known = keyMemo.get(key);
  if (known !== undefined) return known;
  const line = stringify({ [key]: null }, OPTIONS);
  if (line.startsWith("? ") || !line.endsWith(": null\n")) throw new Unsupported();
  const text = line.slice(0, -": null\n".length);
  if (text.includes("\n")) throw new Unsupported();
  return remember(keyMemo, key, text, key.length);
}

/**
 * How the library writes a scalar as a block map's value or a sequence's item, whose map or
 * sequence starts at column `indent`: one line, or a block scalar's header and its lines.
 */
function scalarText(value: string | number, indent: number): string {
  if (typeof value === "string" && value.length > KEYWORD_MAX && PLAIN_WORD.test(value)) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && !Object.is(value, -0)) return String(value);
  let text = valueMemo.get(value);
  if (text === undefined) {
    // As the value of a top-level key: a block scalar's lines are indented by 2 there.
    const line = stringify({ k: value }, OPTIONS);
    if (!line.startsWith("k: ")) throw new Unsupported();
    text = remember(valueMemo, value, line.slice("k: ".length, -1), typeof value === "string" ? value.length : 0);
  }
  if (indent === 0 || !text.includes("\n")) return text;
  const pad = " ".repeat(indent);
  return text
    .split("\n")
    .map((l, i) => (i === 0 || l === "" ? l : pad + l))
    .join("\n");
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Writes `value` after a map key's `:` or a sequence's `- `, in a collection at column `indent`
 * (its nested collections at indent + 2). `inline`: it follows `- `, where a collection's first
 * line continues the item's line.
 */
function writeValue(out: string[], value: unknown, indent: number, inline: boolean, depth: number): void {
  if (value === null || value === undefined) {
    out.push(inline ? "null\n" : " null\n");
    return;
  }
  switch (typeof value) {
    case "boolean":
      out.push(inline ? `${value}\n` : ` ${value}\n`);
      return;
    case "number":
      if (!Number.isFinite(value)) throw new Unsupported();
      out.push(`${inline ? "" : " "}${scalarText(value, indent)}\n`);
      return;
    case "string":
      out.push(`${inline ? "" : " "}${scalarText(value, indent)}\n`);
      return;
    case "object":
      break;
    default:
      throw new Unsupported();
  }
  if (depth > MAX_DEPTH) throw new Unsupported();
  if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push(inline ? "[]\n" : " []\n");
      return;
    }
    if (!inline) out.push("\n");
    writeSeq(out, value, indent + 2, inline, depth + 1);
    return;
  }
  if (!isPlainObject(value)) throw new Unsupported();
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  if (keys.length === 0) {
    out.push(inline ? "{}\n" : " {}\n");
    return;
  }
  if (!inline) out.push("\n");
  writeMap(out, value, keys, indent + 2, inline, depth + 1);
}

function writeMap(
  out: string[],
  map: Record<string, unknown>,
  keys: readonly string[],
  indent: number,
  firstInline: boolean,
  depth: number,
): void {
  const pad = " ".repeat(indent);
  keys.forEach((k, i) => {
    out.push(`${i === 0 && firstInline ? "" : pad}${keyText(k)}:`);
    writeValue(out, map[k], indent, false, depth);
  });
}

function writeSeq(out: string[], seq: readonly unknown[], indent: number, firstInline: boolean, depth: number): void {
  const pad = " ".repeat(indent);
  for (let i = 0; i < seq.length; i++) {
    out.push(i === 0 && firstInline ? "- " : `${pad}- `);
    writeValue(out, seq[i], indent, true, depth);
  }
}

/** `stringify(value, { lineWidth: 0, aliasDuplicateObjects: false })`, written faster. */
export function yamlText(value: unknown): string {
  try {
    if (typeof value === "object" && value !== null) {
      const out: string[] = [];
      if (Array.isArray(value)) {
        if (value.length === 0) return "[]\n";
        writeSeq(out, value, 0, false, 1);
        return out.join("");
      }
      if (isPlainObject(value)) {
        const keys = Object.keys(value).filter((k) => value[k] !== undefined);
        if (keys.length === 0) return "{}\n";
        writeMap(out, value, keys, 0, false, 1);
        return out.join("");
      }
    }
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
  }
  return stringify(value, OPTIONS);
}
