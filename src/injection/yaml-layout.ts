// Continuation lines as go-yaml v2 reads them. Inside a quoted scalar or a flow collection
// ([…], {…}), go-yaml (what kubectl and istioctl kube-inject read manifests with, through
// sigs.k8s.io/yaml) does not look at indentation: a line of `a: 'x` can go on with `y'` at
// any indent, and `command: ["sh",` with `"-c"]` under its key. YAML 1.2, and the `yaml`
// parser, want such lines indented past their block, and refuse the document otherwise.
//
// `relaidContinuations` follows the parser's own errors, one at a time: an error that lies in
// a quoted scalar or a flow collection as go-yaml reads it ("Missing closing 'quote" where the
// parser cut the scalar, "Flow sequence in block collection must be sufficiently indented",
// "All mapping items must start at the same column" on a scalar's under-indented line); where
// it opened, from the parser's syntax tree. It finds where that scalar or
// collection ends as go-yaml does (the next unescaped quote; the matching bracket, quotes and
// comments skipped) and indents the lines in between past the column of the quote or bracket.
// That changes no value: a quoted scalar's line breaks fold with the white space around them,
// and white space between a flow collection's items means nothing. Where the parser is content
// with a line (a plain scalar going on over lines, a block scalar) nothing is touched, and a
// line at column 0 that starts a document marker (`---`, `...`) makes it give up: go-yaml ends
// the document there, inside a quote or not, and so refuses it.

import { Parser, parseAllDocuments, type Document } from "yaml";

const LF = 10;

/** Bytes of text parsed again in all, at most: a refused document costs a bounded amount. */
const REPARSE_BYTES = 4 * 1024 * 1024;
/** Rounds (one construct each) at most. */
const MAX_ROUNDS = 64;

/** The documents of `text`, as every reader of YAML here parses it. */
function parseYamlText(text: string): Document.Parsed[] {
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false, merge: true });
  return Array.isArray(docs) ? docs : [];
}

/**
 * The documents of `text`; when the parser refuses one, those of the text with its
 * continuation lines laid out (see the header), if the parser takes that. Otherwise the first
 * reading, whose errors are the text's own.
 */
export function parseWithContinuations(text: string): Document.Parsed[] {
  const docs = parseYamlText(text);
  return relaid(text, docs)?.docs ?? docs;
}

/**
 * `text` with the continuation lines of its quoted scalars and flow collections that the
 * parser refused indented past the quote or bracket that opened them; undefined when the
 * parser takes `text` as it is, or does not take that either.
 */
export function relaidContinuations(text: string): string | undefined {
  return relaid(text, parseYamlText(text))?.text;
}

/** Round by round, each from the reading before it: the text laid out and its documents, all taken. */
function relaid(text: string, docs: Document.Parsed[]): { text: string; docs: Document.Parsed[] } | undefined {
  const rounds = Math.min(MAX_ROUNDS, Math.max(1, Math.floor(REPARSE_BYTES / Math.max(text.length, 1))));
  let current = text;
  let reading = docs;
  for (let round = 0; round <= rounds; round++) {
    const error = firstError(reading);
    if (error === undefined) return round === 0 ? undefined : { text: current, docs: reading };
    if (round === rounds) return undefined;
    const span = spanOf(current, error);
    if (span === undefined) return undefined;
    const next = indentWithin(current, span.opener, span.end);
    if (next === undefined || next === current) return undefined;
    current = next;
    reading = parseYamlText(current);
  }
  return undefined;
}

interface ParseError {
  readonly offset: number;
}

function firstError(docs: readonly Document.Parsed[]): ParseError | undefined {
  for (const doc of docs) {
    const e = doc.errors[0];
    if (e) return { offset: e.pos[0] };
  }
  return undefined;
}

/**
 * The quoted scalar or flow collection an error lies in, as go-yaml reads it: the last one
 * the parser's syntax tree opens before the error, when go-yaml's end of it (the next
 * unescaped quote; the matching bracket) is at or past the error. None when the error is
 * about something else.
 */
function spanOf(text: string, error: ParseError): { opener: number; end: number } | undefined {
  const opener = tokenBefore(text, error.offset, (type) => SPANNING.has(type));
  if (opener === undefined) return undefined;
  const c = text[opener];
  const end =
    c === "'" || c === '"' ? quotedEnd(text, opener) : c === "[" || c === "{" ? flowEnd(text, opener) : undefined;
  return end !== undefined && end >= error.offset ? { opener, end } : undefined;
}

/** The tokens whose lines go-yaml reads at any indent. */
const SPANNING = new Set(["single-quoted-scalar", "double-quoted-scalar", "flow-collection"]);

/** The offset of the quote closing the quoted scalar opened at `at`, as go-yaml finds it. */
function quotedEnd(text: string, at: number): number | undefined {
  const quote = text.charCodeAt(at);
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote === 34 && c === 92 /* \ */) i++;
    else if (c === quote) {
      if (quote === 39 && text.charCodeAt(i + 1) === 39) i++;
      else return i;
    }
  }
  return undefined;
}

/**
 * The start of the last token of the parser's syntax tree of a `wanted` type that opens before
 * `offset`, none inside another (a flow collection's own, not one nested in it).
 */
function tokenBefore(text: string, offset: number, wanted: (type: string) => boolean): number | undefined {
  let found: number | undefined;
  const visit = (token: unknown, inside: boolean): void => {
    if (typeof token !== "object" || token === null) return;
    const type = "type" in token && typeof token.type === "string" ? token.type : "";
    const hit = wanted(type);
    if (hit && !inside && "offset" in token && typeof token.offset === "number" && token.offset < offset)
      if (found === undefined || token.offset > found) found = token.offset;
    for (const v of Object.values(token)) {
      if (Array.isArray(v)) for (const item of v) visit(item, inside || hit);
      else visit(v, inside || hit);
    }
  };
  for (const token of new Parser().parse(text)) visit(token, false);
  return found;
}

/** The offset of the bracket closing the flow collection opened at `at`, as go-yaml finds it. */
function flowEnd(text: string, at: number): number | undefined {
  let depth = 0;
  // Where a scalar can start, a quote opens a quoted one: after a bracket, `,`, `:` or `?`.
  let scalarStart = true;
  for (let i = at; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 13 || c === LF) continue;
    if (c === 35 /* # */ && /\s/.test(text[i - 1] ?? " ")) {
      const eol = text.indexOf("\n", i);
      if (eol < 0) return undefined;
      i = eol;
      continue;
    }
    if ((c === 39 || c === 34) && scalarStart) {
      const end = quotedEnd(text, i);
      if (end === undefined) return undefined;
      i = end;
      scalarStart = false;
      continue;
    }
    if (c === 91 /* [ */ || c === 123 /* { */) depth++;
    else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
      if (depth === 0) return i;
    }
    scalarStart = c === 91 || c === 123 || c === 44 /* , */ || c === 58 /* : */ || c === 63; /* ? */
  }
  return undefined;
}

/**
 * `text` with each line that starts after `opener` and at or before `end` indented past the
 * opener's column; undefined when one of them is a document marker at column 0.
 */
function indentWithin(text: string, opener: number, end: number): string | undefined {
  const lineStart = text.lastIndexOf("\n", opener) + 1;
  const column = opener - lineStart;
  let out = "";
  let from = 0;
  for (let nl = text.indexOf("\n", opener); nl >= 0 && nl < end; nl = text.indexOf("\n", nl + 1)) {
    const start = nl + 1;
    if (/^(?:---|\.\.\.)(?:[ \t\r\n]|$)/.test(text.slice(start, start + 4))) return undefined;
    let indent = 0;
    while (text.charCodeAt(start + indent) === 32) indent++;
    const next = text.charCodeAt(start + indent);
    // A line of nothing but white space is left alone: it folds as an empty line either way.
    if (indent > column || next === LF || next === 13 || Number.isNaN(next)) continue;
    out += text.slice(from, start) + " ".repeat(column + 1 - indent);
    from = start;
  }
  return out + text.slice(from);
}
