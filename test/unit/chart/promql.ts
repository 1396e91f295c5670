// A small PromQL reader for the chart's tests: not a full grammar, enough to check the rules and
// the dashboard the chart ships. It finds every vector selector (metric name and label
// matchers), every function called and every label named in by/without/on/ignoring, and it
// refuses what it does not know: an unbalanced bracket, an unknown function, a selector without
// a metric name, a token it cannot read. Grafana's variables ($namespace, $__rate_interval) are
// read as opaque values.

export interface Matcher {
  readonly name: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}

export interface Selector {
  readonly metric: string;
  readonly matchers: readonly Matcher[];
}

export interface PromqlShape {
  readonly selectors: readonly Selector[];
  readonly functions: readonly string[];
  /** Labels named in by (...), without (...), on (...), ignoring (...), group_left/right (...). */
  readonly groupingLabels: readonly string[];
}

/** Functions and aggregations the chart may use; anything else is refused. */
export const PROMQL_FUNCTIONS: ReadonlySet<string> = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "count",
  "topk",
  "bottomk",
  "quantile",
  "rate",
  "irate",
  "increase",
  "delta",
  "deriv",
  "absent",
  "absent_over_time",
  "histogram_quantile",
  "time",
  "vector",
  "scalar",
  "clamp_min",
  "clamp_max",
  "max_over_time",
  "min_over_time",
  "avg_over_time",
  "label_replace",
]);

const MATCH_OPS = ["=", "!=", "=~", "!~"] as const;
const isMatchOp = (s: string): s is Matcher["op"] => MATCH_OPS.some((o) => o === s);

const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const KEYWORDS = new Set(["bool", "and", "or", "unless"]);

type Token =
  | { kind: "ident"; text: string }
  | { kind: "string"; text: string }
  | { kind: "number"; text: string }
  | { kind: "duration"; text: string }
  | { kind: "var"; text: string }
  | { kind: "punct"; text: string };

const PATTERNS: readonly [Token["kind"], RegExp][] = [
  ["duration", /^(?:[0-9]+(?:ms|s|m|h|d|w|y))+(?![A-Za-z0-9_:])/],
  ["number", /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?/i],
  ["ident", /^[A-Za-z_:][A-Za-z0-9_:]*/],
  ["var", /^\$(?:\{[A-Za-z_][A-Za-z0-9_:]*\}|[A-Za-z_][A-Za-z0-9_]*)/],
  ["punct", /^(?:==|!=|=~|!~|<=|>=|[-+*/%^<>=(){}[\],:])/],
];

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  let rest = expr;
  while (rest.length > 0) {
    const ws = /^\s+/.exec(rest);
    if (ws) {
      rest = rest.slice(ws[0].length);
      continue;
    }
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      let i = 1;
      let text = "";
      for (; i < rest.length && rest[i] !== quote; i++) {
        if (rest[i] === "\\") i++;
        text += rest[i] ?? "";
      }
      if (i >= rest.length) throw new Error(`unterminated string in ${expr}`);
      out.push({ kind: "string", text });
      rest = rest.slice(i + 1);
      continue;
    }
    let matched = false;
    for (const [kind, re] of PATTERNS) {
      const m = re.exec(rest);
      if (!m) continue;
      out.push({ kind, text: m[0] });
      rest = rest.slice(m[0].length);
      matched = true;
      break;
    }
    if (!matched) throw new Error(`cannot read ${JSON.stringify(rest.slice(0, 20))} in ${expr}`);
  }
  return out;
}

const CLOSING: Readonly<Record<string, string>> = { "(": ")", "{": "}", "[": "]" };

/** Reads a PromQL expression; throws, naming the problem, when it is not one this reader accepts. */
export function readPromql(expr: string): PromqlShape {
  const tokens = tokenize(expr);
  const selectors: Selector[] = [];
  const functions: string[] = [];
  const groupingLabels: string[] = [];
  const stack: string[] = [];
  const at = (i: number): Token | undefined => tokens[i];

  // Balanced brackets first, over the whole expression.
  for (const t of tokens) {
    if (t.kind !== "punct") continue;
    if (t.text in CLOSING) stack.push(t.text);
    else if (t.text === ")" || t.text === "}" || t.text === "]") {
      const open = stack.pop();
      if (open === undefined || CLOSING[open] !== t.text) throw new Error(`unbalanced ${t.text} in ${expr}`);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed ${stack.join("")} in ${expr}`);

  const readMatchers = (start: number): [Matcher[], number] => {
    // tokens[start] is "{"
    const matchers: Matcher[] = [];
    let i = start + 1;
    while (at(i)?.text !== "}") {
      const name = at(i);
      const op = at(i + 1);
      const value = at(i + 2);
      if (name?.kind !== "ident" || op?.kind !== "punct" || !isMatchOp(op.text) || value?.kind !== "string") {
        throw new Error(`bad label matcher at ${JSON.stringify(name?.text)} in ${expr}`);
      }
      matchers.push({ name: name.text, op: op.text, value: value.text });
      i += 3;
      if (at(i)?.text === ",") i++;
      else if (at(i)?.text !== "}") throw new Error(`expected , or } after matcher ${name.text} in ${expr}`);
    }
    return [matchers, i + 1];
  };

  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t.kind === "ident" && GROUPING.has(t.text)) {
      if (at(i + 1)?.text !== "(") {
        if (t.text.startsWith("group_")) {
          i++;
          continue;
        }
        throw new Error(`${t.text} without a label list in ${expr}`);
      }
      i += 2;
      while (at(i)?.text !== ")") {
        const label = at(i);
        if (label?.kind !== "ident") throw new Error(`bad label in ${t.text} (...) in ${expr}`);
        groupingLabels.push(label.text);
        i++;
        if (at(i)?.text === ",") i++;
      }
      i++;
      continue;
    }
    if (t.kind === "ident" && KEYWORDS.has(t.text)) {
      i++;
      continue;
    }
    if (t.kind === "ident" && t.text === "offset") {
      if (at(i + 1)?.kind !== "duration") throw new Error(`offset without a duration in ${expr}`);
      i += 2;
      continue;
    }
    const next = at(i + 1);
    if (
      t.kind === "ident" &&
      (next?.text === "(" || (next?.kind === "ident" && (next.text === "by" || next.text === "without")))
    ) {
      if (!PROMQL_FUNCTIONS.has(t.text)) throw new Error(`unknown function ${t.text} in ${expr}`);
      functions.push(t.text);
      i++;
      continue;
    }
    if (t.kind === "ident") {
      if (at(i + 1)?.text === "{") {
        const [matchers, next] = readMatchers(i + 1);
        selectors.push({ metric: t.text, matchers });
        i = next;
      } else {
        selectors.push({ metric: t.text, matchers: [] });
        i++;
      }
      continue;
    }
    if (t.text === "{") throw new Error(`a selector without a metric name in ${expr}`);
    if (t.text === "[") {
      // A range or a subquery: durations, Grafana's interval variables, a colon.
      i++;
      while (at(i)?.text !== "]") {
        const r = at(i);
        if (!(r?.kind === "duration" || r?.kind === "var" || r?.text === ":"))
          throw new Error(`bad range ${JSON.stringify(r?.text)} in ${expr}`);
        i++;
      }
      i++;
      continue;
    }
    if (t.kind === "string") throw new Error(`a string outside a label matcher in ${expr}`);
    if (t.kind === "duration") throw new Error(`a duration outside a range in ${expr}`);
    i++;
  }
  return { selectors, functions, groupingLabels };
}
