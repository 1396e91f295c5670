// A JSON value as Istio's injector reads it into a Kubernetes Go type and writes it back.
//
// Istio renders its template with a userVolume or userVolumeMount entry in it, turns the YAML
// into JSON (sigs.k8s.io/yaml: every object's keys sorted, numbers as Go writes a float64),
// merges it into the Pod (a strategic merge patch) and decodes the result into a corev1.Pod
// with encoding/json; then it writes the Pod back. What a value comes out as (`goDecode`):
// - a key names a field exactly, or else case-insensitively: Go folds ASCII letters and the
//   two non-ASCII letters whose case folding reaches one (U+017F ſ is s, U+212A K is k), which
//   for field names (all ASCII) is the whole of Unicode's simple folding it applies;
// - the keys are read in sorted order, so of two that name one field the later in that order
//   wins ("readonly" over "readOnly", whichever the annotation wrote first); into a struct or
//   a map already read the later one is read field by field (a list is replaced, its elements
//   read into those already there);
// - a key that names no field is dropped;
// - null sets a pointer, a list or a map to nil, a quantity or a time to its zero (a map's entry
//   stays, at that zero), and leaves anything else as it was (absent: its zero value). Unless
//   `dropNullMembers`: where the merge adds a list the Pod does not have (a Pod without volumes,
//   a native sidecar's mounts in a Pod without init containers), it drops every null member of
//   the objects it adds, at any depth (a null list element stays, read as above);
// - a string where Go wants a bool or a number, a number where it wants a string or is not a
//   whole number in an integer's range, an object where it wants a list...: Go's
//   UnmarshalTypeError, `json: cannot unmarshal string into Go struct field
//   VolumeMount.readOnly of type bool` (its path as Go writes it from the root type: JSON
//   names, and the Go names of embedded structs). Go goes on and reports the first such error
//   at the end; a quantity or a time it cannot parse stops it at once (their own
//   UnmarshalJSON), with their own message;
// - written back as Go writes it: each field in the struct's order, a field tagged omitempty
//   left out at its zero value ("", false, 0, nil, an empty list or map; a pointer only when
//   nil, so `optional: false` stays), omitzero at its zero, every other field written, at its
//   zero when unset (`hostPath: {path: ""}`); a quantity in its canonical spelling.
// The types come from kube-schema.ts, generated from k8s.io/api itself.
import type { JsonValue } from "../kube/types.js";
import { NAMED, SPECIAL, STRUCTS } from "./kube-schema.js";
import { isMap } from "./own.js";
import { goUnmarshalQuantity } from "./quantity.js";

type Scalar = "string" | "bool" | "int32" | "int64";

interface Field {
  /** The JSON name. */
  readonly key: string;
  /** The path Go's errors write for it: the embedded structs' Go names, then the JSON name. */
  readonly path: string;
  readonly typeName: string;
  readonly omitempty: boolean;
  readonly omitzero: boolean;
}

type GoType =
  | { readonly kind: Scalar | "quantity" | "time" | "raw"; readonly name: string }
  | { readonly kind: "pointer" | "slice" | "map"; readonly name: string; readonly elem: string }
  | {
      readonly kind: "struct";
      readonly name: string;
      readonly fields: readonly Field[];
      readonly exact: ReadonlyMap<string, Field>;
      readonly folded: ReadonlyMap<string, Field>;
    };

const SPECIAL_KINDS: Readonly<Record<string, "quantity" | "time" | "raw">> = {
  "resource.Quantity": "quantity",
  "v1.Time": "time",
  "v1.FieldsV1": "raw",
};

const TYPES = new Map<string, GoType>();

/** The type named `name` as Go writes it ("*v1.KeyToPath", "[]string", "v1.ResourceList"). */
function typeOf(name: string): GoType {
  let t = TYPES.get(name);
  if (t === undefined) {
    t = build(name);
    TYPES.set(name, t);
  }
  return t;
}

function build(name: string): GoType {
  if (name === "string" || name === "bool" || name === "int32" || name === "int64") return { kind: name, name };
  if (name.startsWith("*")) return { kind: "pointer", name, elem: name.slice(1) };
  if (name.startsWith("[]")) return { kind: "slice", name, elem: name.slice(2) };
  const [map, key = "", elem = ""] = /^map\[([^\]]+)\](.+)$/.exec(name) ?? [];
  if (map !== undefined) {
    if (typeOf(key).kind !== "string") throw new Error(`go-decode: map key of ${name} is no string`);
    return { kind: "map", name, elem };
  }
  const special = SPECIAL_KINDS[name];
  if (special !== undefined && SPECIAL.includes(name)) return { kind: special, name };
  const underlying = NAMED.get(name);
  // A named type decodes as its underlying type and is named as itself in errors.
  if (underlying !== undefined) return { ...typeOf(underlying), name };
  const fields = STRUCTS.get(name);
  if (fields === undefined) throw new Error(`go-decode: unknown type ${name}`);
  const list: Field[] = fields.map(([path, spec]) => {
    const [typeName = "", ...options] = spec.split(",");
    return {
      key: path.slice(path.lastIndexOf(".") + 1),
      path,
      typeName,
      omitempty: options.includes("omitempty"),
      omitzero: options.includes("omitzero"),
    };
  });
  const folded = new Map<string, Field>();
  // Of two fields that fold alike, Go takes the first.
  for (const f of list) if (!folded.has(fold(f.key))) folded.set(fold(f.key), f);
  return { kind: "struct", name, fields: list, exact: new Map(list.map((f) => [f.key, f])), folded };
}

/** encoding/json's foldName for a key that may name an (ASCII) field; see the header. */
function fold(key: string): string {
  return key.replace(/[a-z\u017f\u212a]/g, (c) => (c === "\u017f" ? "S" : c === "\u212a" ? "K" : c.toUpperCase()));
}

// --- Decoding ---------------------------------------------------------------------------------

/** A FieldsV1: the JSON as it is. */
class Raw {
  constructor(readonly json: JsonValue) {}
}

/**
 * A decoded Go value: a struct's fields set (by JSON name) or a map's entries, a list, a
 * scalar (a quantity's canonical spelling, a time's written form or null), a FieldsV1;
 * undefined: nil, or not set.
 */
type Value = undefined | null | string | number | boolean | Value[] | Fields | Raw;
type Fields = Map<string, Value>;

/** A quantity or a time Go cannot parse: it stops there. */
class Fatal extends Error {
  constructor(
    message: string,
    readonly at: string,
  ) {
    super(message);
  }
}

interface Context {
  readonly dropNulls: boolean;
  /** Go's errorContext: the JSON names (and embedded structs) from the root, and the struct being read. */
  readonly stack: string[];
  struct: string;
  /** Where, as the annotation writes it ("readonly", "items[1].mode"). */
  readonly at: string[];
  /** The first UnmarshalTypeError, with where it is. */
  saved: { readonly error: string; readonly at: string } | undefined;
}

function jsonKind(v: JsonValue): string {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  return Array.isArray(v) ? "array" : "object";
}

/**
 * Go's UnmarshalTypeError for `value` ("string", "number 1.5") where `type` is wanted, saved
 * unless one is: Go goes on, leaving `current` as it is.
 */
function mismatch(ctx: Context, value: string, type: GoType, current: Value): Value {
  if (ctx.saved === undefined) {
    const where = ctx.stack.length > 0 ? `Go struct field ${ctx.struct}.${ctx.stack.join(".")}` : "Go value";
    ctx.saved = { error: `json: cannot unmarshal ${value} into ${where} of type ${type.name}`, at: ctx.at.join("") };
  }
  return current;
}

const INT_RANGE = { int32: 2 ** 31, int64: 2 ** 63 } as const;

/** Lone surrogates, which Go reads (and so writes) as U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `json` decoded into `current`, a value of `type` (Go decodes into what is already there). */
function decode(current: Value, json: JsonValue, type: GoType, ctx: Context): Value {
  switch (type.kind) {
    case "pointer":
      return json === null ? undefined : decode(current, json, typeOf(type.elem), ctx);
    case "slice": {
      if (json === null) return undefined;
      if (!Array.isArray(json)) return mismatch(ctx, jsonKind(json), type, current);
      const elem = typeOf(type.elem);
      const before = Array.isArray(current) ? current : [];
      return json.map((item, i) => {
        ctx.at.push(`[${i}]`);
        const v = decode(before[i], item, elem, ctx);
        ctx.at.pop();
        return v;
      });
    }
    case "map": {
      if (json === null) return undefined;
      if (!isMap(json)) return mismatch(ctx, jsonKind(json), type, current);
      const elem = typeOf(type.elem);
      const out: Fields = current instanceof Map ? current : new Map();
      for (const key of Object.keys(json).sort()) {
        const item = json[key];
        if (item === undefined || (item === null && ctx.dropNulls)) continue;
        ctx.at.push(`.${key}`);
        // Each entry read afresh into its zero value.
        out.set(key.replace(LONE_SURROGATE, "\ufffd"), decode(undefined, item, elem, ctx));
        ctx.at.pop();
      }
      return out;
    }
    case "struct": {
      if (json === null) return current;
      if (!isMap(json)) return mismatch(ctx, jsonKind(json), type, current);
      const out: Fields = current instanceof Map ? current : new Map();
      const struct = ctx.struct;
      for (const key of Object.keys(json).sort()) {
        const f = type.exact.get(key) ?? type.folded.get(fold(key));
        const item = json[key];
        if (f === undefined || item === undefined || (item === null && ctx.dropNulls)) continue;
        ctx.stack.push(f.path);
        ctx.struct = type.name.slice(type.name.indexOf(".") + 1);
        ctx.at.push(ctx.at.length > 0 ? `.${key}` : key);
        out.set(f.key, decode(out.get(f.key), item, typeOf(f.typeName), ctx));
        ctx.at.pop();
        ctx.stack.pop();
        ctx.struct = struct;
      }
      return out;
    }
    case "string":
      if (json === null) return current;
      if (typeof json !== "string") return mismatch(ctx, jsonKind(json), type, current);
      return json.replace(LONE_SURROGATE, "\ufffd");
    case "bool":
      if (json === null) return current;
      if (typeof json !== "boolean") return mismatch(ctx, jsonKind(json), type, current);
      return json;
    case "int32":
    case "int64": {
      if (json === null) return current;
      if (typeof json !== "number") return mismatch(ctx, jsonKind(json), type, current);
      const limit = INT_RANGE[type.kind];
      // Go reads the number's text (a float64's, as Go writes it: JavaScript's own spelling).
      if (!Number.isInteger(json) || json < -limit || json >= limit) {
        return mismatch(ctx, `number ${String(json)}`, type, current);
      }
      return json === 0 ? 0 : json;
    }
    case "quantity": {
      const q = goUnmarshalQuantity(json);
      if (!q.ok) throw fatal(ctx, q.error);
      return q.value;
    }
    case "time":
      return goUnmarshalTime(json, ctx);
    case "raw":
      // FieldsV1 keeps the JSON as it is (its pointer's null is nil, above).
      return new Raw(json);
  }
}

function fatal(ctx: Context, error: string): Fatal {
  return new Fatal(`Go struct field ${ctx.struct}.${ctx.stack.join(".")}: ${error}`, ctx.at.join(""));
}

// --- metav1.Time ------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days from 1970-01-01 to the date (proleptic Gregorian; Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** Seconds from 0001-01-01T00:00:00Z, Go's zero time. */
const ZERO_TIME = daysFromCivil(1, 1, 1) * 86400;

/**
 * metav1.Time.UnmarshalJSON: null is the zero time; a string is parsed as RFC 3339
 * (time.Parse), anything else fails; written back (MarshalJSON) in UTC to the second, the zero
 * time as null. Returns the written form, null for the zero time.
 */
function goUnmarshalTime(json: JsonValue, ctx: Context): string | null {
  if (json === null) return null;
  if (typeof json !== "string")
    throw fatal(ctx, `json: cannot unmarshal ${jsonKind(json)} into Go value of type string`);
  const m = RFC3339.exec(json);
  const n = (i: number): number => Number(m?.[i] ?? 0);
  const [year, month, day, hour, minute, second] = [n(1), n(2), n(3), n(4), n(5), n(6)];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = (DAYS_IN_MONTH[month - 1] ?? 0) + (month === 2 && leap ? 1 : 0);
  if (!m || day < 1 || day > days || hour > 23 || minute > 59 || second > 59 || n(9) > 23 || n(10) > 59) {
    throw fatal(ctx, `parsing time ${JSON.stringify(json)} as "2006-01-02T15:04:05Z07:00": it is no RFC 3339 time`);
  }
  const offset = (m[8] === "-" ? -1 : 1) * (n(9) * 3600 + n(10) * 60);
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  if (seconds === ZERO_TIME && !/[1-9]/.test(m[7] ?? "")) return null;
  const [y, mo, d] = civilFromDays(Math.floor(seconds / 86400));
  const s = ((seconds % 86400) + 86400) % 86400;
  const two = (v: number): string => String(v).padStart(2, "0");
  const yyyy = y < 0 ? `-${String(-y).padStart(4, "0")}` : String(y).padStart(4, "0");
  return `${yyyy}-${two(mo)}-${two(d)}T${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}Z`;
}

// --- Writing back -----------------------------------------------------------------------------

/** Whether encoding/json's omitempty leaves `v`, a value of `type`, out. */
function isEmpty(v: Value, type: GoType): boolean {
  switch (type.kind) {
    case "string":
    case "bool":
    case "int32":
    case "int64":
      return v === undefined || v === "" || v === false || v === 0;
    case "pointer":
      return v === undefined;
    case "slice":
      return !Array.isArray(v) || v.length === 0;
    case "map":
      return !(v instanceof Map) || v.size === 0;
    default:
      // A struct (a quantity and a time are structs) is never empty.
      return false;
  }
}

/** Whether omitzero leaves `v` out: its zero value (IsZero for a time). */
function isZero(v: Value, type: GoType): boolean {
  switch (type.kind) {
    case "quantity":
      return v === undefined || v === "0";
    case "time":
    case "pointer":
    case "slice":
    case "map":
    case "raw":
      return v === undefined || v === null;
    case "struct":
      return !(v instanceof Map) || type.fields.every((f) => isZero(v.get(f.key), typeOf(f.typeName)));
    default:
      return isEmpty(v, type);
  }
}

/** `v`, a value of `type`, as Go writes it (unset: its zero value). */
function marshal(v: Value, type: GoType): JsonValue {
  switch (type.kind) {
    case "string":
    case "quantity":
      return typeof v === "string" ? v : type.kind === "string" ? "" : "0";
    case "bool":
      return typeof v === "boolean" ? v : false;
    case "int32":
    case "int64":
      return typeof v === "number" ? v : 0;
    case "time":
      return typeof v === "string" ? v : null;
    case "raw":
      return v instanceof Raw ? v.json : null;
    case "pointer":
      return v === undefined ? null : marshal(v, typeOf(type.elem));
    case "slice": {
      if (!Array.isArray(v)) return null;
      const elem = typeOf(type.elem);
      return v.map((x) => marshal(x, elem));
    }
    case "map": {
      if (!(v instanceof Map)) return null;
      const elem = typeOf(type.elem);
      // Go writes a map's keys sorted; fromEntries makes even "__proto__" an own key.
      return Object.fromEntries([...v.keys()].sort().map((k) => [k, marshal(v.get(k), elem)]));
    }
    case "struct":
      return marshalStruct(v, type);
  }
}

function marshalStruct(v: Value, type: Extract<GoType, { kind: "struct" }>): { [k: string]: JsonValue } {
  const set: Fields = v instanceof Map ? v : new Map();
  const out: [string, JsonValue][] = [];
  for (const f of type.fields) {
    const value = set.get(f.key);
    const t = typeOf(f.typeName);
    if ((f.omitempty && isEmpty(value, t)) || (f.omitzero && isZero(value, t))) continue;
    out.push([f.key, marshal(value, t)]);
  }
  return Object.fromEntries(out);
}

export type GoDecoded =
  | { readonly ok: true; readonly value: { [k: string]: JsonValue } }
  | {
      readonly ok: false;
      /** Go's error, with the path Go writes from the root type. */
      readonly error: string;
      /** Where, as the value writes it ("readonly", "secret.items[0].mode"). */
      readonly at: string;
    };

/**
 * `json` read into the Go struct type `root` (a name of kube-schema.ts: "v1.Volume",
 * "v1.VolumeMount") and written back, as Istio's injector does (see the header); or Go's error.
 * `dropNullMembers`: the merge drops the null members first (see the header).
 */
export function goDecode(json: JsonValue, root: string, dropNullMembers = false): GoDecoded {
  const type = typeOf(root);
  if (type.kind !== "struct") throw new Error(`go-decode: ${root} is no struct`);
  const ctx: Context = { dropNulls: dropNullMembers, stack: [], struct: "", at: [], saved: undefined };
  let value: Value;
  try {
    value = decode(undefined, json, type, ctx);
  } catch (e) {
    if (!(e instanceof Fatal)) throw e;
    return { ok: false, error: e.message, at: e.at };
  }
  if (ctx.saved !== undefined) return { ok: false, ...ctx.saved };
  return { ok: true, value: marshalStruct(value, type) };
}
