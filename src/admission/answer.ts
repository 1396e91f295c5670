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
// - The patch's JSON is written in pieces: the operations a few tens at a time (most Pods'
//   patches in one piece), and an operation whose value is a list or map of many items (the
//   containers, env or annotations it adds) an item at a time; the pieces are collected into a
//   byte buffer kept for the next answer (grown while it stays within RETAINED_BYTES).
// - Those bytes are base64-encoded a slice at a time (BASE64_SLICE_BYTES, a multiple of 3, so
//   the slices' encodings join into the whole's) straight into the answer.
// - The envelope (everything but the patch) is JSON.stringify'd without the patch, and the
//   patch's two fields are written after `allowed`, where buildResponseReview puts them.
// The pieces are JSON.stringify's own text of each value, joined as JSON.stringify joins them
// (`[a,b]`, `{"k":v}`, a value it leaves out left out, `null` for one in a list), and anything
// that is not a plain object or list (a class instance, something with toJSON) is given to
// JSON.stringify whole: the result is its text, whatever the operations hold.

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
/** Operations stringified together at most, in one call: some tens of KB of JSON. */
const GROUP_OPS = 32;

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
 * The UTF-8 of JSON.stringify(ops), in a buffer reused by the next call: bytes [0, length).
 * Runs of up to GROUP_OPS operations are stringified in one call (a call costs about what
 * half a kilobyte of JSON does), those with a large value on their own.
 */
function patchJsonBytes(ops: readonly PatchOperation[]): JsonBytes {
  const out = new JsonBytes((retained ??= Buffer.allocUnsafeSlow(64 * 1024)));
  let from = 0;
  const run = (to: number): void => {
    if (to > from) {
      if (from > 0) out.add(",");
      // The list's brackets are its own, written by the caller: a slice of the text, not a copy.
      const text = JSON.stringify(ops.slice(from, to));
      out.write(text.slice(1, -1));
    }
    from = to;
  };
  // Most patches: a few operations with short lists, stringified in one call and written as they are.
  if (!isPlainArray(ops) || (ops.length <= GROUP_OPS && !ops.some(hasLargeValue))) {
    out.write(JSON.stringify(ops));
  } else {
    out.add("[");
    for (let i = 0; i < ops.length; i++) {
      const op: unknown = ops[i];
      if (i - from === GROUP_OPS) run(i);
      if (!hasLargeValue(op)) continue;
      run(i);
      if (i > 0) out.add(",");
      writeOperation(op, out);
      from = i + 1;
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
