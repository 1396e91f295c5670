// The AdmissionReview answer as the bytes the webhook sends: the UTF-8 of
// JSON.stringify(buildResponseReview(apiVersion, uid, fields)), byte for byte, written without
// the strings that text would be built from. Pure: no I/O, no clock.
//
// Why: on the request path the answer is most of the work after the engine. Built as text,
// the patch is one JSON string, then a base64 string of its bytes, then the envelope around
// that, then the bytes the connection sends: four copies of the patch, each a string of its
// full size. A string over 128 KiB is a large object to V8 (a patch rewriting 200 containers
// is 145 KB of JSON, 194 KB of base64), and each such string costs a garbage collection of
// the young generation or a memory mapping of its own: about 1.5 ms for one of 128 KiB made
// from a buffer, where one of 96 KiB takes 10 µs (Node 20, measured on the development VM). So:
// - The patch's JSON is written in pieces: runs of operations sized for about GROUP_CHARS of
//   text (most Pods' patches in one piece), and an operation whose value is a list or map of
//   many items (the containers, env or annotations it adds) an item at a time; the pieces are
//   collected into a byte buffer kept for the next answer (grown while it stays within
//   RETAINED_BYTES).
// - Those bytes are base64-encoded a slice at a time (BASE64_SLICE_BYTES, a multiple of 3, so
//   the slices' encodings join into the whole's) straight into the answer.
// - The envelope (everything but the patch) is JSON.stringify'd without the patch, and the
//   patch's two fields are written after `allowed`, where buildResponseReview puts them.
// - An operation whose value is one plain object holding shared parts (the proxy container it
//   adds) or a short list of plain objects (the init containers, the volumes) is written item
//   by item from texts kept from the answer before: an item that `shared` froze (a part built once
//   per config, the same object for every Pod) is its kept JSON text; for the others, the
//   `"key":value` text of each field whose value is a primitive or a shared object is kept by
//   the operation's path and the item's index (the first ITEM_TEXTS items of the first
//   PATH_TEXTS paths), and used while that field holds the same value (===) under the same keys
//   in the same order; any other field (the Pod's own values: the proxy's env, names, ports) is
//   stringified anew, a list's shared items from their kept texts. Only objects frozen to the
//   bottom by `shared` have their texts kept: text kept for anything that may still change would
//   be wrong. For the recorded review this leaves about a fifth of the patch's text to
//   JSON.stringify (three quarters when only lists were written this way: the proxy container,
//   the largest value, is one object).
// The pieces are JSON.stringify's own text of each value, joined as JSON.stringify joins them
// (`[a,b]`, `{"k":v}`, a value it leaves out left out, `null` for one in a list), and anything
// that is not a plain object or list (a class instance, something with toJSON) is given to
// JSON.stringify whole: the result is its text, whatever the operations hold.

import { isShared } from "../injection/template-parts.js";
import type { PatchOperation } from "../injection/types.js";
import { buildResponseReview, type ResponseFields } from "./gate.js";

/** Bytes of patch JSON encoded at a time: 64 KiB of base64, each slice a string of the young generation. */
const BASE64_SLICE_BYTES = 48 * 1024;
/** Pieces of JSON collected as one string before they are written out: well below a large object. */
const FLUSH_CHARS = 16 * 1024;
/** The byte buffer is kept for the next answer up to this size; a larger patch gets a buffer of its own. */
const RETAINED_BYTES = 1024 * 1024;
/** An operation's value, a list or map of more items than this, is stringified item by item. */
const SPLIT_ITEMS = 32;
/** Operations in the first run stringified together, and the fewest in any later one. */
const GROUP_OPS = 32;
/** Operations in a run at most. */
const MAX_GROUP_OPS = 512;
/** Characters of JSON a run is sized for, from the run before it: well below a large object. */
const GROUP_CHARS = 32 * 1024;

/**
 * The length of the next run of operations, from the last full run (`ops` operations, `chars`
 * characters of JSON): about GROUP_CHARS at that run's characters per operation, at most twice
 * its length (a change in the operations' size is met within a few runs, not by one run of
 * MAX_GROUP_OPS larger ones), within GROUP_OPS-MAX_GROUP_OPS.
 */
export function nextRunLength(ops: number, chars: number): number {
  const fit = Math.floor((ops * GROUP_CHARS) / Math.max(chars, 1));
  return Math.min(MAX_GROUP_OPS, 2 * ops, Math.max(GROUP_OPS, fit));
}

/** Items of an operation's list (the first ITEM_TEXTS) whose fields' texts are kept for the next answer. */
const ITEM_TEXTS = 8;
/** Operations' paths whose items' texts are kept, at most: the first ones seen. */
const PATH_TEXTS = 32;

/** What the patch's JSON is written into. */
let retained: Buffer | undefined;

/** Collects JSON text and writes it out as UTF-8 into a growing buffer. */
class JsonBytes {
  buf: Buffer;
  length = 0;
  private pending = "";

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  add(text: string): void {
    this.pending += text;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
  }

  /** Writes a piece of some size as it is: no copy into the pending string. */
  write(text: string): void {
    this.flush();
    this.put(text);
  }

  flush(): void {
    const text = this.pending;
    if (text === "") return;
    this.pending = "";
    this.put(text);
  }

  private put(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4).
    const needed = this.length + text.length * 3;
    if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    this.length += this.buf.write(text, this.length, "utf8");
  }
}

type Plain = Readonly<Record<string, unknown>>;

/** A list JSON.stringify writes item by item (no toJSON of its own). */
function isPlainArray(v: object): v is readonly unknown[] {
  return Array.isArray(v) && Object.getPrototypeOf(v) === Array.prototype && !Object.hasOwn(v, "toJSON");
}

/** An object JSON.stringify writes key by key: no class, no toJSON. */
function isPlainObject(v: object): v is Plain {
  const proto: unknown = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && typeof Reflect.get(v, "toJSON") !== "function";
}

/** A list or plain object of more than SPLIT_ITEMS items. */
function isLarge(v: unknown): v is readonly unknown[] | Plain {
  if (typeof v !== "object" || v === null) return false;
  if (isPlainArray(v)) return v.length > SPLIT_ITEMS;
  if (!isPlainObject(v)) return false;
  let n = 0;
  for (const key in v) if (Object.hasOwn(v, key) && ++n > SPLIT_ITEMS) return true;
  return false;
}

/** An operation whose value is large (isLarge): written field by field. */
function hasLargeValue(op: unknown): op is Plain {
  return typeof op === "object" && op !== null && isPlainObject(op) && isLarge(op.value);
}

/** Writes JSON.stringify(v)'s text, item by item. */
function writeItems(v: readonly unknown[] | Plain, out: JsonBytes): void {
  if (isPlainArray(v)) {
    out.add("[");
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.add(",");
      out.add(JSON.stringify(v[i]) ?? "null");
    }
    out.add("]");
    return;
  }
  let first = true;
  out.add("{");
  for (const key of Object.keys(v)) {
    const text = JSON.stringify(v[key]);
    if (text === undefined) continue;
    out.add(`${first ? "" : ","}${JSON.stringify(key)}:${text}`);
    first = false;
  }
  out.add("}");
}

/** Writes JSON.stringify(op)'s text for an operation whose value is large, the value item by item. */
function writeOperation(op: Plain, out: JsonBytes): void {
  let first = true;
  out.add("{");
  for (const key of Object.keys(op)) {
    const item = op[key];
    if (key === "value" && isLarge(item)) {
      out.add(`${first ? "" : ","}"value":`);
      writeItems(item, out);
    } else {
      const text = JSON.stringify(item);
      if (text === undefined) continue;
      out.add(`${first ? "" : ","}${JSON.stringify(key)}:${text}`);
    }
    first = false;
  }
  out.add("}");
}

/**
 * The texts of an item's fields as the answer before wrote them: `"key":value` for a field
 * whose value is a string, number, boolean, null or an object `shared` froze (its text cannot
 * change while it lives), undefined for any other (written anew each time).
 */
interface ItemTexts {
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
  readonly texts: readonly (string | undefined)[];
}

/** By operation path, the kept texts of its list's items, by index. */
const itemTexts = new Map<string, (ItemTexts | undefined)[]>();

/** The JSON text of each object `shared` froze that an answer wrote whole. */
const sharedTexts = new WeakMap<object, string>();

function sharedText(value: object): string {
  let text = sharedTexts.get(value);
  if (text === undefined) sharedTexts.set(value, (text = JSON.stringify(value)));
  return text;
}

/**
 * JSON.stringify(v)'s text; a list's items that `shared` froze (the proxy's constant env
 * entries among the Pod's) from their kept texts.
 */
function fieldJson(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null || !isPlainArray(v) || v.length === 0 || v.length > SPLIT_ITEMS)
    return JSON.stringify(v);
  let text = "[";
  for (let i = 0; i < v.length; i++) {
    const item: unknown = v[i];
    if (i > 0) text += ",";
    text +=
      typeof item === "object" && item !== null && isShared(item) ? sharedText(item) : (JSON.stringify(item) ?? "null");
  }
  return `${text}]`;
}

function textsOf(item: Plain): ItemTexts {
  const keys = Object.keys(item);
  const values = keys.map((key) => item[key]);
  const texts = values.map((v, i) => {
    const fixed =
      typeof v === "string" ||
      typeof v === "boolean" ||
      (typeof v === "number" && Number.isFinite(v)) ||
      v === null ||
      (typeof v === "object" && isShared(v));
    return fixed ? `${JSON.stringify(keys[i])}:${JSON.stringify(v)}` : undefined;
  });
  return { keys, values, texts };
}

/** JSON.stringify(item)'s text from the kept texts of its fields, undefined when its keys are not theirs. */
function fromTexts(item: Plain, kept: ItemTexts): string | undefined {
  const keys = Object.keys(item);
  if (keys.length !== kept.keys.length) return undefined;
  let text = "{";
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key === undefined || key !== kept.keys[i]) return undefined;
    const v = item[key];
    let piece = kept.texts[i];
    if (piece === undefined || v !== kept.values[i]) {
      const json = fieldJson(v);
      if (json === undefined) continue;
      piece = `${JSON.stringify(key)}:${json}`;
    }
    text += first ? piece : `,${piece}`;
    first = false;
  }
  return `${text}}`;
}

/** Whether one of a plain object's fields is an object `shared` froze. */
function holdsShared(value: Plain): boolean {
  for (const key in value) {
    const v = value[key];
    if (typeof v === "object" && v !== null && isShared(v)) return true;
  }
  return false;
}

/**
 * An operation whose value is one plain object holding shared parts (the proxy container it
 * adds) or a short list of plain objects (the init containers, the volumes): its items'
 * fields' texts are kept. A value that `shared` froze whole is its kept text. An object of
 * the Pod's own values only (a rewritten probe) is left to the runs of operations
 * stringified together: keeping its texts would cost more than it saves.
 */
function hasKeptValue(op: unknown): op is Plain & { readonly path: string } {
  if (typeof op !== "object" || op === null || !isPlainObject(op) || typeof op.path !== "string") return false;
  const value = op.value;
  if (typeof value !== "object" || value === null) return false;
  if (!isPlainArray(value)) return isShared(value) || (isPlainObject(value) && holdsShared(value));
  if (value.length === 0 || value.length > SPLIT_ITEMS) return false;
  const item: unknown = value[0];
  return typeof item === "object" && item !== null && isPlainObject(item);
}

/**
 * JSON.stringify(v)'s text for the item at `index` of an operation's value (0 for a value
 * that is not a list): a shared object's kept text, else a plain object's from the texts kept
 * of its fields where those still hold (keeping them anew where they do not).
 */
function itemText(v: unknown, slots: (ItemTexts | undefined)[] | undefined, index: number): string | undefined {
  if (typeof v !== "object" || v === null) return JSON.stringify(v);
  if (isShared(v)) return sharedText(v);
  if (slots === undefined || index >= ITEM_TEXTS || !isPlainObject(v)) return JSON.stringify(v);
  const kept = slots[index];
  const known = kept === undefined ? undefined : fromTexts(v, kept);
  if (known !== undefined) return known;
  slots[index] = textsOf(v);
  return JSON.stringify(v);
}

/** JSON.stringify(op)'s text, its value written by itemText: the texts kept of its fields where those still hold. */
function keptValueOperation(op: Plain & { readonly path: string }): string {
  let slots = itemTexts.get(op.path);
  if (slots === undefined && itemTexts.size < PATH_TEXTS) itemTexts.set(op.path, (slots = []));
  let text = "{";
  let first = true;
  for (const key of Object.keys(op)) {
    const item = op[key];
    let json: string | undefined;
    if (key !== "value") json = JSON.stringify(item);
    else if (typeof item === "object" && item !== null && isPlainArray(item)) {
      json = "[";
      for (let j = 0; j < item.length; j++) json += `${j > 0 ? "," : ""}${itemText(item[j], slots, j) ?? "null"}`;
      json += "]";
    } else json = itemText(item, slots, 0);
    if (json === undefined) continue;
    text += `${first ? "" : ","}${JSON.stringify(key)}:${json}`;
    first = false;
  }
  return `${text}}`;
}

/**
 * The UTF-8 of JSON.stringify(ops), in a buffer reused by the next call: bytes [0, length).
 * Runs of operations are stringified in one call each (a call costs about what half a
 * kilobyte of JSON does), those with a large or kept value on their own. The first run is
 * GROUP_OPS long; each full run sizes the next (nextRunLength): a patch's operations come in
 * kinds, and the probes' of 50 containers, 150 of about 130 characters, take three calls, not five.
 */
function patchJsonBytes(ops: readonly PatchOperation[]): JsonBytes {
  const out = new JsonBytes((retained ??= Buffer.allocUnsafeSlow(64 * 1024)));
  let from = 0;
  let group = GROUP_OPS;
  const run = (to: number): void => {
    if (to > from) {
      if (from > 0) out.add(",");
      // The list's brackets are its own, written by the caller: a slice of the text, not a copy.
      const text = JSON.stringify(ops.slice(from, to));
      out.write(text.slice(1, -1));
      if (to - from === group) group = nextRunLength(group, text.length);
    }
    from = to;
  };
  // Most patches: a few operations with short lists, stringified in one call and written as they are.
  if (!isPlainArray(ops) || (ops.length <= GROUP_OPS && !ops.some((op) => hasLargeValue(op) || hasKeptValue(op)))) {
    out.write(JSON.stringify(ops));
  } else {
    out.add("[");
    for (let i = 0; i < ops.length; i++) {
      const op: unknown = ops[i];
      if (i - from === group) run(i);
      if (hasLargeValue(op)) {
        run(i);
        if (i > 0) out.add(",");
        writeOperation(op, out);
        from = i + 1;
      } else if (hasKeptValue(op)) {
        run(i);
        if (i > 0) out.add(",");
        out.add(keptValueOperation(op));
        from = i + 1;
      }
    }
    run(ops.length);
    out.add("]");
  }
  out.flush();
  if (out.buf !== retained && out.buf.length <= RETAINED_BYTES) retained = out.buf;
  return out;
}

/**
 * The answer's bytes: the UTF-8 of JSON.stringify(buildResponseReview(apiVersion, uid,
 * fields)). The buffer is the answer's alone (not a slice of a pool), so that it can be
 * handed to another thread.
 */
export function responseBytes(apiVersion: string, uid: string, fields: ResponseFields): Buffer {
  const ops = fields.patch;
  if (ops === undefined || ops.length === 0)
    return bytesOf(JSON.stringify(buildResponseReview(apiVersion, uid, fields)));
  const envelope = JSON.stringify(buildResponseReview(apiVersion, uid, { ...fields, patch: undefined }));
  // buildResponseReview writes uid, allowed, then patchType and patch.
  const before = `{"apiVersion":${JSON.stringify(apiVersion)},"kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":${String(fields.allowed)}`;
  if (!envelope.startsWith(before)) {
    return bytesOf(JSON.stringify(buildResponseReview(apiVersion, uid, fields)));
  }
  const head = `${before},"patchType":"JSONPatch","patch":"`;
  const tail = `"${envelope.slice(before.length)}`;

  const json = patchJsonBytes(ops);
  const base64Length = Math.ceil(json.length / 3) * 4;
  const headBytes = Buffer.byteLength(head, "utf8");
  const answer = Buffer.allocUnsafeSlow(headBytes + base64Length + Buffer.byteLength(tail, "utf8"));
  let at = answer.write(head, 0, "utf8");
  for (let from = 0; from < json.length; from += BASE64_SLICE_BYTES) {
    at += answer.write(
      json.buf.toString("base64", from, Math.min(json.length, from + BASE64_SLICE_BYTES)),
      at,
      "latin1",
    );
  }
  answer.write(tail, at, "utf8");
  return answer;
}

/** Text as UTF-8 in a buffer of its own. */
function bytesOf(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, "utf8"));
  bytes.write(text, 0, "utf8");
  return bytes;
}
