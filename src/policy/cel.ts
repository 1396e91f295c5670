// CEL text for the policy, as Kubernetes' CEL environment reads it:
// - a string literal is double-quoted with `\\`, `"` and the control characters escaped
//   (`\n`, `\r`, `\t`, else `\u00XX`), so any JSON string survives;
// - a JSON value is a CEL literal whose every map value and list element is wrapped in
//   `dyn(...)`: CEL type-checks a map literal as map(string, T) for one T, and the API server
//   refuses a literal that mixes strings, numbers and maps (e.g. a container) without it;
// - where the value must come from the Pod, a slot holds the CEL expression that computes it:
//   `slot(expr)` returns a marker string that `literal` writes as `dyn(expr)` instead.
// A JSON value is written in its own key order (the stored Pod's order is the API server's,
// whichever order a patch states), numbers as CEL ints (every number we write is an integer).

const SLOT_PREFIX = "\u0000cel-slot:";

/** A marker string standing for a CEL expression inside a JSON value given to `literal`. */
export function slot(expression: string): string {
  return `${SLOT_PREFIX}${expression}`;
}

function slotExpression(s: string): string | undefined {
  return s.startsWith(SLOT_PREFIX) ? s.slice(SLOT_PREFIX.length) : undefined;
}

/** A CEL string literal for `s`. */
export function str(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A CEL list literal of strings. */
export function strList(values: readonly string[]): string {
  return `[${values.map(str).join(", ")}]`;
}

/** The CEL literal for a JSON value (slots written as their expressions); throws on a non-integer number. */
export function literal(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") {
    const expr = slotExpression(value);
    return expr === undefined ? str(value) : `(${expr})`;
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${String(value)}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => `dyn(${literal(v)})`).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${str(k)}: dyn(${literal(v)})`).join(", ")}}`;
  }
  throw new TypeError(`not a JSON value: ${typeof value}`);
}

/** An RFC 6901 reference token: `~` as `~0`, `/` as `~1`. */
export function pointerToken(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** A JSONPatch operation as CEL (`value` is CEL text). */
export function jsonPatchOp(op: "add" | "replace", path: string, value: string): string {
  return `JSONPatch{op: ${str(op)}, path: ${str(path)}, value: ${value}}`;
}
