// YAML read with explicit limits: size, nesting depth, number of keys and items, aliases,
// documents. The `yaml` package is correct but costly on hostile input: ~10 µs per key or item,
// a duplicate-key check that is quadratic (`uniqueKeys`, off here: later keys win, as
// sigs.k8s.io/yaml and Istio read them), and recursion that is slow, then overflows the stack,
// on deep flow collections. So the text is first measured in one linear pass (`preScan`), and
// only text within the limits is handed to the parser; the parsed values are then measured
// exactly (aliases expand) with the same limits.
//
// The pre-scan reads YAML's structure well enough to bound the parser's work: flow brackets
// outside quoted scalars and comments, block nesting by indentation and by compact "- "/"? "
// indicators, document markers, and one node per entry line or flow comma. It over-counts
// rather than under-counts, and the limits are set far above real inputs.
import { visit, type Document } from "yaml";
import { parseWithContinuations } from "./yaml-layout.js";

export interface YamlLimits {
  /** Size of the text, in UTF-16 code units (what a JS string holds). */
  readonly maxBytes: number;
  /** Nesting of maps and lists; a scalar document is depth 0, `{a: 1}` depth 1. */
  readonly maxDepth: number;
  /** Keys and items over all documents. */
  readonly maxNodes: number;
  /** Alias (`*name`) uses; anchors alone are free. */
  readonly maxAliases: number;
  readonly maxDocuments: number;
}

export const YAML_LIMIT_KINDS = ["bytes", "depth", "nodes", "aliases", "documents"] as const;
export type YamlLimitKind = (typeof YAML_LIMIT_KINDS)[number];

/**
 * `proxy.istio.io/config`: Istio reads any annotation the API server admits, and so do we: its
 * bytes are bounded by the API server's limit on all of a Pod's annotations together (256 KiB),
 * and everything else only as far as that forces it (the densest text, a flow list, has a key or
 * item every 2 characters), but for the expansion of aliases (a few aliases of a long list are
 * a billion laughs) and a depth past any ProxyConfig's (Istio reads deeper unknown fields; no
 * real annotation has them). Real annotations are well under 4 KiB and 100 keys and items. The
 * parser takes 10-20 µs a key or item (test/bench/worst-case.bench.ts), so a review whose
 * annotation is longer than INLINE_PROXY_CONFIG_CHARS (inline-cost.ts) is answered on
 * the worker thread, never on the event loop: the densest 256 KiB about 1.5 s there.
 */
export const PROXY_CONFIG_LIMITS: YamlLimits = {
  maxBytes: 256 * 1024,
  maxDepth: 64,
  maxNodes: 128 * 1024,
  maxAliases: 1024,
  maxDocuments: 128 * 1024,
};

/** The `inject` and `preview` commands: local files, read once; a manifest may be megabytes. */
export const MANIFEST_LIMITS: YamlLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxDepth: 100,
  maxNodes: 2_000_000,
  maxAliases: 10_000,
  maxDocuments: 10_000,
};

/**
 * POST /preview bodies in YAML (JSON bodies are read by JSON.parse): the server's event loop
 * reads them, so they are held to what the parser reads in tens of milliseconds (a Deployment
 * is a few hundred keys and items; larger manifests: `sidecar-injector preview -f`, offline).
 */
export const PREVIEW_YAML_LIMITS: YamlLimits = {
  maxBytes: 64 * 1024,
  maxDepth: 64,
  maxNodes: 1000,
  maxAliases: 100,
  maxDocuments: 100,
};

/**
 * POST /preview bodies in JSON: JSON.parse reads long strings fast, many small values slowly
 * (a 6 MiB Pod of 130k containers: ~250 ms), so the shape is held: 50k keys and items is a List
 * of a hundred Deployments. maxBytes is the body limit of the HTTP layer.
 */
export const PREVIEW_JSON_LIMITS: YamlLimits = {
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxDepth: 64,
  maxNodes: 50_000,
  maxAliases: 0,
  maxDocuments: 1,
};

export class YamlLimitError extends Error {
  constructor(
    readonly limit: YamlLimitKind,
    message: string,
  ) {
    super(message);
    this.name = "YamlLimitError";
  }
}

/** A YAML syntax error (the parser's first message, one line). */
export class YamlSyntaxError extends Error {
  constructor(
    readonly document: number,
    message: string,
  ) {
    super(message);
    this.name = "YamlSyntaxError";
  }
}

function over(limit: YamlLimitKind, max: number): YamlLimitError {
  const what: Record<YamlLimitKind, string> = {
    bytes: `is longer than ${max} characters`,
    depth: `nests deeper than ${max} levels`,
    nodes: `has more than ${max} keys and items`,
    aliases: `uses more than ${max} aliases`,
    documents: `has more than ${max} documents`,
  };
  return new YamlLimitError(limit, `${what[limit]} (limit: ${limit})`);
}

const SPACE = 32;
const TAB = 9;
const LF = 10;
const CR = 13;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === CR || Number.isNaN(c);
}

export interface ScanFigures {
  readonly depth: number;
  readonly nodes: number;
  readonly documents: number;
}

/**
 * One pass over `text`, refusing it as soon as an estimate passes a limit. Linear: each
 * character is looked at a bounded number of times (the indentation stack only holds
 * increasing indents, each pushed and popped once).
 */
export function preScan(text: string, limits: YamlLimits): ScanFigures {
  if (text.length > limits.maxBytes) throw over("bytes", limits.maxBytes);
  const n = text.length;
  const indents: number[] = [];
  let maxDepth = 0;
  let nodes = 0;
  let documents = 1;
  let sawContent = false;
  let flow = 0;
  /** Block depth of the line that opened the current flow collection. */
  let flowBase = 0;
  /** Indent of the line that opened a block scalar; its more indented lines are content. */
  let blockScalarParent = -1;
  let i = 0;
  const note = (depth: number, count: number): void => {
    if (depth > maxDepth) {
      maxDepth = depth;
      if (depth > limits.maxDepth) throw over("depth", limits.maxDepth);
    }
    nodes += count;
    if (nodes > limits.maxNodes) throw over("nodes", limits.maxNodes);
  };
  while (i < n) {
    // At the start of a line.
    let indent = 0;
    while (i < n && text.charCodeAt(i) === SPACE) {
      indent++;
      i++;
    }
    const c = text.charCodeAt(i);
    if (i >= n) break;
    if (c === LF || c === CR || (c === 35 /* # */ && flow === 0)) {
      while (i < n && text.charCodeAt(i) !== LF) i++;
      i++;
      continue;
    }
    if (blockScalarParent >= 0) {
      if (indent > blockScalarParent) {
        while (i < n && text.charCodeAt(i) !== LF) i++;
        i++;
        continue;
      }
      blockScalarParent = -1;
    }
    if (
      flow === 0 &&
      indent === 0 &&
      (text.startsWith("---", i) || text.startsWith("...", i)) &&
      isBlank(text.charCodeAt(i + 3))
    ) {
      if (text.startsWith("---", i) && sawContent) {
        documents++;
        if (documents > limits.maxDocuments) throw over("documents", limits.maxDocuments);
      }
      indents.length = 0;
      i += 3;
    }
    let depth = 0;
    let lineStart = i;
    if (flow === 0) {
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) >= indent) indents.pop();
      indents.push(indent);
      depth = indents.length;
      // Compact nesting: "- - a", "? - a", "- a: b" open levels on one line.
      let compact = 0;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (
          (d === 45 /* - */ || d === 63) /* ? */ &&
          isBlank(text.charCodeAt(i + 1)) &&
          text.charCodeAt(i + 1) !== LF
        ) {
          compact++;
          if (depth + compact > limits.maxDepth) throw over("depth", limits.maxDepth);
          i += 2;
          while (i < n && text.charCodeAt(i) === SPACE) i++;
        } else break;
      }
      depth += compact;
      lineStart = i;
      note(depth, 1 + compact);
    }
    sawContent = true;
    // The rest of the line: quoted scalars, flow brackets, comments, a block scalar indicator.
    let sigEnd = i;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (d === LF) break;
      if (d === 34 /* " */ || d === 39 /* ' */) {
        const prev = i > 0 ? text.charCodeAt(i - 1) : LF;
        // A quote opens a quoted scalar only where a scalar can start.
        if (isBlank(prev) || prev === 91 || prev === 123 || prev === 44 || prev === 58 || prev === 45 || prev === 63) {
          i = skipQuoted(text, i, d);
          sigEnd = i;
          continue;
        }
      } else if (d === 35 /* # */ && i > 0 && isBlank(text.charCodeAt(i - 1))) {
        while (i < n && text.charCodeAt(i) !== LF) i++;
        break;
      } else if ((d === 91 /* [ */ || d === 123) /* { */ && (flow > 0 || i === 0 || isBlank(text.charCodeAt(i - 1)))) {
        // In block context a bracket opens a collection only where a value starts ("a: b[1]"
        // is a string); in flow context every bracket does. A line that starts with one is
        // the value of the entry above it (or the document), not an entry itself.
        flow++;
        if (flow === 1) flowBase = i === lineStart ? depth - 1 : depth;
        note(flowBase + flow, 1);
      } else if (d === 93 /* ] */ || d === 125 /* } */) {
        if (flow > 0) flow--;
      } else if (d === 44 /* , */ && flow > 0) {
        note(flowBase + flow, 1);
      }
      i++;
      if (!isBlank(d)) sigEnd = i;
    }
    // "key: |", "- >-", "key: |2+": the following, more indented lines are scalar content.
    if (flow === 0 && /(?:^|[\s:-])[|>][-+1-9]*$/.test(lineTail(text, sigEnd))) blockScalarParent = indent;
    i++;
  }
  return { depth: maxDepth, nodes, documents };
}

/** The last few characters of the line that ends at `end` (for the block scalar test). */
function lineTail(text: string, end: number): string {
  let start = end;
  while (start > 0 && end - start < 8 && text.charCodeAt(start - 1) !== LF) start--;
  return text.slice(start, end);
}

/** The index after the quoted scalar opening at `i` (or the end of the text). */
function skipQuoted(text: string, i: number, quote: number): number {
  const n = text.length;
  let j = i + 1;
  while (j < n) {
    const d = text.charCodeAt(j);
    if (quote === 34 && d === 92 /* \ */) {
      j += 2;
      continue;
    }
    if (d === quote) {
      if (quote === 39 && text.charCodeAt(j + 1) === 39) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return n;
}

/**
 * JSON text measured before JSON.parse, which is linear but slow on deep nesting (~0.8 µs a
 * level: 3 s for a 6 MiB body of brackets). Brackets outside strings give the depth, commas
 * the items; a string's escapes are skipped.
 */
export function jsonPreScan(text: string, limits: YamlLimits): ScanFigures {
  if (text.length > limits.maxBytes) throw over("bytes", limits.maxBytes);
  let depth = 0;
  let maxDepth = 0;
  let nodes = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // To the closing quote: the next quote not escaped (after an even run of backslashes),
      // found by indexOf, since strings are most of a Pod's text.
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) {
          i = n;
          break;
        }
        let slashes = 0;
        while (q - 1 - slashes >= j && text.charCodeAt(q - 1 - slashes) === 92 /* \ */) slashes++;
        if (slashes % 2 === 0) {
          i = q;
          break;
        }
        j = q + 1;
      }
    } else if (c === 91 || c === 123) {
      depth++;
      nodes++;
      if (depth > maxDepth) {
        maxDepth = depth;
        if (depth > limits.maxDepth) throw over("depth", limits.maxDepth);
      }
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44 /* , */) {
      nodes++;
      if (nodes > limits.maxNodes) throw over("nodes", limits.maxNodes);
    }
  }
  return { depth: maxDepth, nodes, documents: 1 };
}

/**
 * Depth and node count of parsed values, exactly, without recursion (aliases may have made a
 * small text into a large value). Throws past the limits; `nodesSoFar` carries the count over
 * documents.
 */
export function measureValue(value: unknown, limits: YamlLimits, nodesSoFar = 0): number {
  let nodes = nodesSoFar;
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v !== "object" || v === null) continue;
    if (depth + 1 > limits.maxDepth) throw over("depth", limits.maxDepth);
    const children = Array.isArray(v) ? v : Object.values(v);
    nodes += children.length;
    if (nodes > limits.maxNodes) throw over("nodes", limits.maxNodes);
    for (const c of children) if (typeof c === "object" && c !== null) stack.push([c, depth + 1]);
  }
  return nodes;
}

/**
 * Every document of `text` as plain values (empty documents left out), within `limits`.
 * Throws YamlLimitError past a limit, YamlSyntaxError on invalid YAML. `prepare`, when given,
 * may change each parsed document's nodes before they become values.
 */
export function parseYamlDocuments(
  text: string,
  limits: YamlLimits,
  prepare?: (doc: Document.Parsed) => void,
): unknown[] {
  preScan(text, limits);
  const list = parseWithContinuations(text);
  if (list.length > limits.maxDocuments) throw over("documents", limits.maxDocuments);
  const out: unknown[] = [];
  let nodes = 0;
  let aliases = 0;
  for (const [i, d] of list.entries()) {
    const first = d.errors[0];
    if (first) throw new YamlSyntaxError(i + 1, firstLine(first.message));
    visit(d, {
      Alias() {
        aliases++;
      },
    });
    if (aliases > limits.maxAliases) throw over("aliases", limits.maxAliases);
    prepare?.(d);
    let js: unknown;
    try {
      // The parser's own guard against exponential expansion ("billion laughs").
      js = d.toJS({ maxAliasCount: limits.maxAliases });
    } catch (e) {
      if (e instanceof ReferenceError && e.message.startsWith("Excessive alias count")) {
        throw new YamlLimitError("aliases", "has aliases that expand too far (limit: aliases)");
      }
      // An alias without its anchor, for one.
      if (e instanceof Error) throw new YamlSyntaxError(i + 1, firstLine(e.message));
      throw e;
    }
    nodes = measureValue(js, limits, nodes);
    if (js !== null && js !== undefined) out.push(js);
  }
  return out;
}

/** The first line of a parser message, cut: the parser may quote the input (an alias name). */
function firstLine(message: string): string {
  const line = message.split("\n", 1)[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line || "invalid YAML";
}
