// A small evaluator for the CEL that sidecar injectors write in their webhooks' matchConditions,
// so that `check` says what the API server decides instead of "not evaluated". The subset:
//
//   expr    := and ( "||" and )*
//   and     := unary ( "&&" unary )*
//   unary   := "!" unary | compare
//   compare := operand [ ( "==" | "!=" | "in" ) operand ]
//   operand := "(" expr ")" | "has" "(" select ")" | select | list | STRING | "true" | "false" | "null"
//   select  := IDENT ( "." IDENT | "[" STRING "]" )*        IDENT: object, oldObject, request
//   list    := "[" [ operand ( "," operand )* ] "]"
//   STRING  := '...' or "..." with the escapes \\ \' \" \n \t \r
//
// Semantics are CEL's: selecting a key a map lacks is an error (`has()` asks instead); `in`
// tests a map's keys or a list's elements; `==` of values of different types is false; `&&` and
// `||` are commutative, so an error on one side is absorbed when the other side decides
// (`false && error` is false, `true || error` is true); `!`, `&&` and `||` need booleans. The
// variables are those of a Pod's CREATE: `object` (the Pod), `oldObject` (null) and `request`
// with namespace, name, operation, kind and resource; any other request field (userInfo...) is
// not known here.
//
// Anything else (numbers, functions and macros, `?.`, comparisons other than == and !=, raw
// strings) is outside the subset: the result is "unsupported", never a guess. Work is bounded:
// expressions longer than MAX_EXPRESSION_LENGTH or nested deeper than MAX_DEPTH are not read, so
// a hostile expression costs a bounded, small amount of time and stack.
//
// Pure: no I/O.

import { quote } from "../injection/quote.js";

export const MAX_EXPRESSION_LENGTH = 10_000;
export const MAX_DEPTH = 32;

export type CelResult =
  | { readonly kind: "value"; readonly value: boolean }
  /** The API server's evaluation would fail: failurePolicy decides (Fail refuses the Pod, Ignore skips the webhook). */
  | { readonly kind: "error"; readonly message: string }
  /** Outside the subset: not evaluated. */
  | { readonly kind: "unsupported"; readonly message: string };

export interface CelVariables {
  readonly object: unknown;
  readonly request: Readonly<Record<string, unknown>>;
}

/** The request fields known for a Pod's CREATE; others are "unsupported". */
const REQUEST_FIELDS = new Set([
  "namespace",
  "name",
  "operation",
  "kind",
  "resource",
  "requestKind",
  "requestResource",
]);

type Node =
  | { readonly t: "or" | "and"; readonly items: readonly Node[] }
  | { readonly t: "not"; readonly item: Node }
  | { readonly t: "cmp"; readonly op: "==" | "!=" | "in"; readonly left: Node; readonly right: Node }
  | { readonly t: "has"; readonly select: Select }
  | { readonly t: "select"; readonly select: Select }
  | { readonly t: "list"; readonly items: readonly Node[] }
  | { readonly t: "lit"; readonly value: string | boolean | null };

interface Select {
  readonly root: string;
  readonly path: readonly string[];
}

type Token =
  | { readonly k: "op"; readonly v: string }
  | { readonly k: "ident"; readonly v: string }
  | { readonly k: "str"; readonly v: string };

/** Outside the subset (or not CEL at all). */
class Unsupported extends Error {}
/** A CEL evaluation error (no such key, a type the operator does not take). */
class CelError extends Error {}

const OPS = ["||", "&&", "==", "!=", "(", ")", "[", "]", ".", ",", "!"];
const ESCAPES: Readonly<Record<string, string>> = { "\\": "\\", "'": "'", '"': '"', n: "\n", t: "\t", r: "\r" };

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] ?? "";
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op !== undefined) {
      tokens.push({ k: "op", v: op });
      i += op.length;
      continue;
    }
    if (c === "'" || c === '"') {
      if (src.startsWith(c.repeat(3), i)) throw new Unsupported("triple-quoted strings are outside the subset");
      let value = "";
      i++;
      for (;;) {
        const d = src[i];
        if (d === undefined) throw new Unsupported("a string is not closed");
        i++;
        if (d === c) break;
        if (d === "\\") {
          const e = src[i];
          const escaped = e === undefined ? undefined : ESCAPES[e];
          if (escaped === undefined) throw new Unsupported(`the escape \\${e ?? ""} is outside the subset`);
          value += escaped;
          i++;
        } else value += d;
      }
      tokens.push({ k: "str", v: value });
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 256));
    if (word) {
      tokens.push({ k: "ident", v: word[0] });
      i += word[0].length;
      continue;
    }
    throw new Unsupported(`${quote(src.slice(i, i + 10))} at ${i} is outside the subset`);
  }
  return tokens;
}

class CelParser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  parse(): Node {
    const node = this.expr();
    const next = this.tokens[this.pos];
    if (next !== undefined) throw new Unsupported(`${quote(next.v)} after a whole expression is outside the subset`);
    return node;
  }

  private peek(v: string): boolean {
    const t = this.tokens[this.pos];
    return t !== undefined && t.k !== "str" && t.v === v;
  }

  private take(v: string): void {
    if (!this.peek(v))
      throw new Unsupported(
        `expected ${quote(v)}, found ${this.tokens[this.pos] ? quote(this.tokens[this.pos]?.v ?? "") : "the end"}`,
      );
    this.pos++;
  }

  private nested<T>(read: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new Unsupported(`nested deeper than ${MAX_DEPTH} levels`);
    try {
      return read();
    } finally {
      this.depth--;
    }
  }

  private expr(): Node {
    return this.nested(() => {
      const items = [this.and()];
      while (this.peek("||")) {
        this.pos++;
        items.push(this.and());
      }
      return items.length === 1 && items[0] ? items[0] : { t: "or", items };
    });
  }

  private and(): Node {
    const items = [this.unary()];
    while (this.peek("&&")) {
      this.pos++;
      items.push(this.unary());
    }
    return items.length === 1 && items[0] ? items[0] : { t: "and", items };
  }

  private unary(): Node {
    if (this.peek("!")) {
      this.pos++;
      return this.nested(() => ({ t: "not", item: this.unary() }));
    }
    const left = this.operand();
    for (const op of ["==", "!=", "in"] as const) {
      if (this.peek(op)) {
        this.pos++;
        return { t: "cmp", op, left, right: this.operand() };
      }
    }
    return left;
  }

  private operand(): Node {
    const t = this.tokens[this.pos];
    if (t === undefined) throw new Unsupported("the expression ends too early");
    if (t.k === "str") {
      this.pos++;
      return { t: "lit", value: t.v };
    }
    if (t.k === "op" && t.v === "(") {
      this.pos++;
      const inner = this.expr();
      this.take(")");
      return inner;
    }
    if (t.k === "op" && t.v === "[") {
      this.pos++;
      return this.nested(() => {
        const items: Node[] = [];
        while (!this.peek("]")) {
          if (items.length > 0) this.take(",");
          items.push(this.operand());
        }
        this.pos++;
        return { t: "list", items };
      });
    }
    if (t.k === "ident") {
      if (t.v === "true" || t.v === "false") {
        this.pos++;
        return { t: "lit", value: t.v === "true" };
      }
      if (t.v === "null") {
        this.pos++;
        return { t: "lit", value: null };
      }
      if (t.v === "has") {
        this.pos++;
        this.take("(");
        const select = this.select();
        this.take(")");
        if (select.path.length === 0) throw new Unsupported("has() needs a field selection");
        return { t: "has", select };
      }
      return { t: "select", select: this.select() };
    }
    throw new Unsupported(`${quote(t.v)} is outside the subset`);
  }

  private select(): Select {
    const root = this.tokens[this.pos];
    if (root?.k !== "ident" || !["object", "oldObject", "request"].includes(root.v)) {
      throw new Unsupported(
        `${root ? quote(root.v) : "the end"} is not a variable of the subset (object, oldObject, request)`,
      );
    }
    this.pos++;
    const path: string[] = [];
    for (;;) {
      if (this.peek(".")) {
        this.pos++;
        const field = this.tokens[this.pos];
        if (field?.k !== "ident") throw new Unsupported('a field name must follow "."');
        if (this.tokens[this.pos + 1]?.v === "(" && this.tokens[this.pos + 1]?.k === "op")
          throw new Unsupported(`the function ${quote(field.v)} is outside the subset`);
        path.push(field.v);
        this.pos++;
      } else if (this.peek("[")) {
        this.pos++;
        const key = this.tokens[this.pos];
        if (key?.k !== "str") throw new Unsupported("only a string literal may index a map");
        path.push(key.v);
        this.pos++;
        this.take("]");
      } else return { root: root.v, path };
    }
  }
}

function isMap(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "list";
  if (typeof v === "object") return "map";
  return typeof v === "string"
    ? "string"
    : typeof v === "boolean"
      ? "bool"
      : typeof v === "number"
        ? "number"
        : "unknown";
}

class Evaluator {
  constructor(private readonly vars: CelVariables) {}

  private root(name: string, first: string | undefined): unknown {
    if (name === "object") return this.vars.object;
    if (name === "oldObject") return null;
    if (first !== undefined && !REQUEST_FIELDS.has(first))
      throw new Unsupported(`request.${first} is not known for a stored object`);
    return this.vars.request;
  }

  /** The value a selection reads; `has` mode: whether its last field is there. */
  private select(s: Select, has: boolean): unknown {
    let value = this.root(s.root, s.path[0]);
    for (let i = 0; i < s.path.length; i++) {
      const key = s.path[i] ?? "";
      if (!isMap(value)) throw new CelError(`${typeName(value)} has no field ${quote(key)}`);
      const there = Object.hasOwn(value, key);
      if (has && i === s.path.length - 1) return there;
      if (!there) throw new CelError(`no such key: ${quote(key)}`);
      value = value[key];
    }
    return value;
  }

  private bool(n: Node): boolean {
    const v = this.value(n);
    if (typeof v !== "boolean") throw new CelError(`a ${typeName(v)} where a bool is needed`);
    return v;
  }

  /** `&&` (absorb false) or `||` (absorb true), commutative with errors. */
  private logic(items: readonly Node[], absorbing: boolean): boolean {
    let error: CelError | undefined;
    for (const item of items) {
      try {
        if (this.bool(item) === absorbing) return absorbing;
      } catch (e) {
        if (!(e instanceof CelError)) throw e;
        error ??= e;
      }
    }
    if (error) throw error;
    return !absorbing;
  }

  value(n: Node): unknown {
    switch (n.t) {
      case "lit":
        return n.value;
      case "list":
        return n.items.map((i) => this.value(i));
      case "select": {
        const v = this.select(n.select, false);
        if (typeof v === "number") throw new Unsupported("numbers are outside the subset");
        return v === undefined ? null : v;
      }
      case "has":
        return this.select(n.select, true) === true;
      case "not":
        return !this.bool(n.item);
      case "and":
        return this.logic(n.items, false);
      case "or":
        return this.logic(n.items, true);
      case "cmp": {
        const left = this.value(n.left);
        const right = this.value(n.right);
        if (n.op === "in") {
          if (Array.isArray(right)) return right.some((r) => equal(left, r));
          if (isMap(right)) return typeof left === "string" && Object.hasOwn(right, left);
          throw new CelError(`in needs a list or a map, not a ${typeName(right)}`);
        }
        return n.op === "==" ? equal(left, right) : !equal(left, right);
      }
    }
  }
}

function equal(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
  }
  return a === b;
}

/** Evaluates one matchCondition expression (see the header); never throws for any input. */
export function evaluateCondition(expression: string, vars: CelVariables): CelResult {
  if (expression.length > MAX_EXPRESSION_LENGTH)
    return { kind: "unsupported", message: `longer than ${MAX_EXPRESSION_LENGTH} characters` };
  try {
    const ast = new CelParser(tokenize(expression)).parse();
    const value = new Evaluator(vars).value(ast);
    if (typeof value !== "boolean") return { kind: "error", message: `evaluates to a ${typeName(value)}, not a bool` };
    return { kind: "value", value };
  } catch (e) {
    if (e instanceof Unsupported) return { kind: "unsupported", message: e.message };
    if (e instanceof CelError) return { kind: "error", message: e.message };
    throw e;
  }
}
