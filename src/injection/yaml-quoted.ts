// What YAML reads from a value Istio's template writes between double quotes without escaping
// it (`- "{{ annotation … }}"`): the traffic annotations in istio-init's arguments, the
// ProxyConfig's proxyMetadata values in the proxy's env. Istio parses the rendered template
// with go-yaml v2 (libyaml's scanner), so the value the Pod gets is the scalar it reads:
// - escapes are decoded (`\t` is a tab, `\x41` an "A"); one it does not know, or a code that
//   is no character, fails the template, as does a `"` (it ends the scalar early) or a
//   character YAML does not allow in its input (a control character, a BOM);
// - line breaks fold: a single break between two lines is a space, n breaks are n-1 newlines;
//   blanks before a break and at the start of the next line are dropped; `\` before a break
//   joins the lines; CR LF, CR and NEL are read as LF, LS and PS as themselves;
// - a line that starts with `---` or `...` and a blank (a document marker) fails it.
// Values without a `\`, a `"`, a line break or an odd character, which is nearly all of them,
// are read as written (one scan, no copy).

/** YAML double-quoted escapes (go-yaml v2: no `\/`): to the character, or the count of hex digits after. */
const ESCAPES: ReadonlyMap<string, string | number> = new Map<string, string | number>([
  ["0", "\0"],
  ["a", "\x07"],
  ["b", "\b"],
  ["t", "\t"],
  ["\t", "\t"],
  ["n", "\n"],
  ["v", "\v"],
  ["f", "\f"],
  ["r", "\r"],
  ["e", "\x1b"],
  [" ", " "],
  ['"', '"'],
  ["'", "'"],
  ["\\", "\\"],
  ["N", "\u0085"],
  ["_", "\u00a0"],
  ["L", "\u2028"],
  ["P", "\u2029"],
  ["x", 2],
  ["u", 4],
  ["U", 8],
]);

/** What libyaml reads at all: printable characters, tab and line breaks (no BOM inside). */
function yamlPrintable(c: number): boolean {
  return (
    c === 0x09 ||
    c === 0x0a ||
    c === 0x0d ||
    (c >= 0x20 && c <= 0x7e) ||
    c === 0x85 ||
    (c >= 0xa0 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff) ||
    c >= 0x10000
  );
}

/** Why YAML cannot read `value` at all, written anywhere in the template: a character it does not allow. */
export function unprintable(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.codePointAt(i) ?? 0;
    if (c > 0xffff) i++;
    if (!yamlPrintable(c))
      return `has a character (U+${c.toString(16).toUpperCase().padStart(4, "0")}) the injection template cannot hold`;
  }
  return undefined;
}

const isBlank = (c: string | undefined): boolean => c === " " || c === "\t";
const isBreak = (c: string | undefined): boolean =>
  c === "\n" || c === "\r" || c === "\u0085" || c === "\u2028" || c === "\u2029";

export type QuotedReading =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly why: string };

const PLAIN = /^[^\\"\r\n\u0085\u2028\u2029]*$/;

/** The scalar YAML reads from `"${raw}"`, or why the template's YAML fails there. */
export function readDoubleQuoted(raw: string): QuotedReading {
  const odd = unprintable(raw);
  if (odd !== undefined) return fail(odd);
  // Blanks around a line break are the only ones that change: without a break, as written.
  if (PLAIN.test(raw)) return { ok: true, value: raw };
  let out = "";
  let i = 0;
  // The value starts after `- "`: not at a line's start.
  let column = 1;
  for (;;) {
    if (
      column === 0 &&
      (raw.startsWith("---", i) || raw.startsWith("...", i)) &&
      (isBlank(raw[i + 3]) || isBreak(raw[i + 3]))
    )
      return fail("has a line that starts a YAML document (--- or ...) inside the injection template's quoted string");
    if (i >= raw.length) break;
    let leadingBlanks = false;
    // Non-blank characters.
    while (i < raw.length && !isBlank(raw[i]) && !isBreak(raw[i])) {
      const ch = raw[i] ?? "";
      if (ch === '"') return fail(`has a '"', which ends the injection template's quoted string`);
      if (ch !== "\\") {
        const cp = raw.codePointAt(i) ?? 0;
        const s = String.fromCodePoint(cp);
        out += s;
        i += s.length;
        column++;
        continue;
      }
      const next = raw[i + 1];
      if (isBreak(next)) {
        // An escaped line break: the lines are joined.
        i += raw[i + 1] === "\r" && raw[i + 2] === "\n" ? 3 : 2;
        column = 0;
        leadingBlanks = true;
        break;
      }
      const escape = next === undefined ? undefined : ESCAPES.get(next);
      if (escape === undefined)
        return fail(`has a '\\' that is not a YAML escape (the injection template writes it inside "…")`);
      if (typeof escape === "string") {
        out += escape;
        i += 2;
        column += 2;
        continue;
      }
      const hex = raw.slice(i + 2, i + 2 + escape);
      if (hex.length < escape || !/^[0-9A-Fa-f]+$/.test(hex))
        return fail(`has a '\\' that is not a YAML escape (the injection template writes it inside "…")`);
      const code = parseInt(hex, 16);
      if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
        return fail(`has an escape (\\${next ?? ""}${hex}) that is no character`);
      out += String.fromCodePoint(code);
      i += 2 + escape;
      column += 2 + escape;
    }
    if (i >= raw.length) break;
    // Blanks and line breaks, folded.
    let whitespace = "";
    let leadingBreak = "";
    let trailingBreaks = "";
    while (i < raw.length && (isBlank(raw[i]) || isBreak(raw[i]))) {
      const ch = raw[i] ?? "";
      if (isBlank(ch)) {
        if (!leadingBlanks) whitespace += ch;
        i++;
        column++;
        continue;
      }
      const crlf = ch === "\r" && raw[i + 1] === "\n";
      const read = ch === "\u2028" || ch === "\u2029" ? ch : "\n";
      i += crlf ? 2 : 1;
      column = 0;
      if (!leadingBlanks) {
        whitespace = "";
        leadingBreak = read;
        leadingBlanks = true;
      } else trailingBreaks += read;
    }
    if (leadingBlanks) {
      if (leadingBreak === "\n") out += trailingBreaks === "" ? " " : trailingBreaks;
      else out += leadingBreak + trailingBreaks;
    } else out += whitespace;
  }
  return { ok: true, value: out };
}

function fail(why: string): QuotedReading {
  return { ok: false, why };
}

/** Why `value` between double quotes makes the template's YAML fail, or undefined when it does not. */
export function quotedProblem(value: string): string | undefined {
  const r = readDoubleQuoted(value);
  return r.ok ? undefined : r.why;
}
