// Kubernetes resource quantities ("100m", "1Gi", "12e6"): read the way the API server reads
// them (k8s.io/apimachinery/pkg/api/resource, v0.34: UnmarshalJSON, ParseQuantity, String),
// so that what we write (and the overrides we record) reads exactly as the API server will
// store it, and what the API server would refuse we refuse first.
//
// What the API server does, and so what this module does:
// - Leading and trailing white space is trimmed (Go's strings.TrimSpace, not String.trim).
// - Grammar: sign? digits ("." digits)? suffix, where the suffix is one of n u m "" k M G T P E
//   (DecimalSI), Ki Mi Gi Ti Pi Ei (BinarySI), or e/E followed by a signed integer
//   (DecimalExponent). Digits may be missing altogether ("k", "." and "+" read as 0).
// - The value is kept exactly down to the nano; a finer non-zero value is rounded away from
//   zero to the next nano ("1.5e-10" is "1e-9"). A BinarySI value is capped at 2^63-1.
//   A container's requests and limits are then rounded up to the milli by the Pod's defaulting
//   ("100u" is stored as "1m"): `precision: "milli"`, which canonicalResources uses.
// - The stored spelling keeps the format: DecimalExponent stays an exponent ("1e3" is "1e3",
//   "1.2e6" is "1200e3"), DecimalSI takes the largest suffix that keeps the number whole
//   ("3000m" is "3"), BinarySI the largest binary suffix ("1024Mi" is "1Gi") unless the value
//   is below 1024 or not whole, which is written as DecimalSI ("0.5Ki" is "512").
// - A value of at most 18 digits that is already "canonical enough" keeps the very string it
//   was given: "+100m", "1.500", "1E3", "01Ki" are stored as written.
//
// Where we refuse what the API server would take, because it would not keep the value or
// would spend unbounded time on it (each such refusal names its reason):
// - more than MAX_QUANTITY_LENGTH characters. The longest meaningful quantity is an int64
//   (19 digits) with nano precision (9 more), a sign, a point and an int32 exponent (11):
//   42 characters; 64 leaves room for padding zeros and costs nothing;
// - an exponent beyond ±MAX_QUANTITY_EXPONENT. Go truncates exponents to int32 ("1e4294967296"
//   is read as 1) and, for quantities of more than 18 digits, expands 10^exponent and strips
//   its zeros one division at a time: quadratic (1.8 s at e100000 on our build machine);
// - a DecimalSI value whose spelling would need a suffix above E (10^18): the API server drops
//   the exponent and stores another number ("1000E" and 10^21 written out are both stored as
//   "1").
// Each step below is linear in the (capped) length: the exponent is never expanded.
import { own } from "./own.js";

/** Longest quantity (after trimming) we read; see above. */
export const MAX_QUANTITY_LENGTH = 64;
/** Largest exponent magnitude (written after e/E) we read; see above. */
export const MAX_QUANTITY_EXPONENT = 1000;

type Format = "DecimalSI" | "BinarySI" | "DecimalExponent";

export type QuantityCheck =
  | { readonly ok: true; readonly canonical: string; readonly negative: boolean }
  | { readonly ok: false; readonly reason: string };

const DECIMAL_SUFFIX: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIX: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_BY_EXPONENT = new Map(Object.entries(DECIMAL_SUFFIX).map(([s, e]) => [e, s]));
const BINARY_BY_POWER = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"] as const;
/** The characters Go's scanner takes as the letters of a suffix. */
const SUFFIX_LETTERS = "eEinumkKMGTP";
const MAX_INT64 = (1n << 63n) - 1n;
const NOT_A_QUANTITY = "is not a Kubernetes quantity (for example 100m, 1Gi)";

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** unicode.IsSpace: ASCII white space, NEL, NBSP and the Unicode space separators (no BOM). */
function isGoSpace(c: number): boolean {
  return (
    (c >= 9 && c <= 13) ||
    c === 32 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isGoSpace(s.charCodeAt(start))) start++;
  while (end > start && isGoSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

interface Scanned {
  readonly negative: boolean;
  /** Integer digits with leading zeros removed ("0" when none are left). */
  readonly num: string;
  /** Fraction digits, as written. */
  readonly denom: string;
  readonly suffix: string;
  /** Whether the number part holds any digit at all (Go's slow path needs one). */
  readonly hasDigits: boolean;
}

/** Go's parseQuantityString: undefined where it answers ErrFormatWrong. */
function scan(s: string): Scanned | undefined {
  const end = s.length;
  let pos = 0;
  let negative = false;
  if (s[0] === "-" || s[0] === "+") {
    negative = s[0] === "-";
    pos = 1;
  }
  const zerosFrom = pos;
  while (pos < end && s[pos] === "0") pos++;
  if (pos === end) return { negative, num: "0", denom: "", suffix: "", hasDigits: true };
  let hasDigits = pos > zerosFrom;
  const numFrom = pos;
  while (pos < end && isDigit(s.charCodeAt(pos))) pos++;
  const num = pos > numFrom ? s.slice(numFrom, pos) : "0";
  hasDigits ||= pos > numFrom;
  let denom = "";
  if (pos < end && s[pos] === ".") {
    const denomFrom = ++pos;
    while (pos < end && isDigit(s.charCodeAt(pos))) pos++;
    denom = s.slice(denomFrom, pos);
    hasDigits ||= denom.length > 0;
  }
  const suffixFrom = pos;
  while (pos < end && SUFFIX_LETTERS.includes(s.charAt(pos))) pos++;
  if (pos < end && (s[pos] === "-" || s[pos] === "+")) pos++;
  while (pos < end && isDigit(s.charCodeAt(pos))) pos++;
  if (pos < end) return undefined;
  return { negative, num, denom, suffix: s.slice(suffixFrom), hasDigits };
}

interface Suffix {
  readonly base: 2 | 10;
  readonly exponent: number;
  readonly format: Format;
}

/** The suffixer's interpret, or a reason. */
function interpret(suffix: string): Suffix | string {
  const decimal = DECIMAL_SUFFIX[suffix];
  if (decimal !== undefined) return { base: 10, exponent: decimal, format: "DecimalSI" };
  const binary = BINARY_SUFFIX[suffix];
  if (binary !== undefined) return { base: 2, exponent: binary, format: "BinarySI" };
  if (suffix.length > 1 && (suffix[0] === "e" || suffix[0] === "E") && /^[+-]?\d+$/.test(suffix.slice(1))) {
    const exponent = Number(suffix.slice(1));
    if (Math.abs(exponent) > MAX_QUANTITY_EXPONENT) {
      return `has an exponent beyond ±${MAX_QUANTITY_EXPONENT}, which the API server cannot hold exactly`;
    }
    return { base: 10, exponent, format: "DecimalExponent" };
  }
  return `${NOT_A_QUANTITY}: unknown suffix ${JSON.stringify(suffix)}`;
}

/** An exact value: sign × digits × 10^exponent, digits with no leading zeros. */
interface Exact {
  negative: boolean;
  digits: bigint;
  exponent: number;
}

/** digits × 10^exponent rounded away from zero to a multiple of 10^scale (Go: RoundUp). */
function roundUp(v: Exact, scale: number): Exact {
  if (v.digits === 0n || v.exponent >= scale) return v;
  const drop = scale - v.exponent;
  // Every digit goes: the value is below one unit of the scale, and rounds up to it.
  if (drop > v.digits.toString().length) return { negative: v.negative, digits: 1n, exponent: scale };
  const divisor = 10n ** BigInt(drop);
  return { negative: v.negative, digits: (v.digits + divisor - 1n) / divisor, exponent: scale };
}

/** AsCanonicalBytes: no factor of ten left in the digits, then the exponent down to a multiple of 3. */
function canonicalDecimal(v: Exact, format: Format): string | { readonly storedAs: string } {
  let text = v.digits.toString();
  let exponent = v.exponent;
  let zeros = 0;
  while (zeros < text.length - 1 && text.charCodeAt(text.length - 1 - zeros) === 48) zeros++;
  text = text.slice(0, text.length - zeros);
  exponent += zeros;
  const pad = ((exponent % 3) + 3) % 3;
  text += "0".repeat(pad);
  exponent -= pad;
  const sign = v.negative ? "-" : "";
  if (format === "DecimalExponent") return `${sign}${text}${exponent === 0 ? "" : `e${exponent}`}`;
  const suffix = DECIMAL_BY_EXPONENT.get(exponent);
  // No suffix that large: Go writes the digits alone, a different number.
  if (suffix === undefined) return { storedAs: `${sign}${text}` };
  return `${sign}${text}${suffix}`;
}

/** CanonicalizeBytes for a value already rounded to the nano. */
function canonical(v: Exact, format: Format): string | { readonly storedAs: string } {
  if (v.digits === 0n) return "0";
  if (format !== "BinarySI") return canonicalDecimal(v, format);
  // Whole and at least 1024 in magnitude: the largest binary suffix that keeps it whole.
  if (v.exponent < 0) {
    const divisor = 10n ** BigInt(-v.exponent);
    if (v.digits % divisor !== 0n) return canonicalDecimal(v, "DecimalSI");
    v = { negative: v.negative, digits: v.digits / divisor, exponent: 0 };
  }
  let whole = v.digits * 10n ** BigInt(v.exponent);
  if (whole < 1024n) return canonicalDecimal(v, "DecimalSI");
  let power = 0;
  while (power < 6 && whole % 1024n === 0n) {
    whole /= 1024n;
    power += 1;
  }
  return `${v.negative ? "-" : ""}${whole}${BINARY_BY_POWER[power] ?? ""}`;
}

function tooLargeReason(stored: string): string {
  return `is too large for its suffix: the API server would store ${JSON.stringify(stored)} (write it with an exponent, for example 1e21)`;
}

/**
 * Where the value is rounded: "nano" for a bare Quantity; "milli" for a container's requests
 * and limits, which the API server's defaulting (SetDefaults_ResourceList) rounds up to the
 * milli ("100u" is stored as "1m", "1.5e-10" as "1e-3").
 */
export type QuantityPrecision = "nano" | "milli";

/**
 * The quantity as the API server stores it, or the reason it is refused. `negative` is for the
 * callers that also apply the Pod validation rule (requests and limits must not be negative).
 */
export function checkQuantity(input: string, precision: QuantityPrecision = "nano"): QuantityCheck {
  const scaleLimit = precision === "milli" ? -3 : -9;
  const s = goTrimSpace(input);
  if (s.length > MAX_QUANTITY_LENGTH) return { ok: false, reason: `is longer than ${MAX_QUANTITY_LENGTH} characters` };
  if (s === "") return { ok: false, reason: `${NOT_A_QUANTITY}: it is empty` };
  if (s === "0") return { ok: true, canonical: "0", negative: false };
  const scanned = scan(s);
  if (!scanned) return { ok: false, reason: NOT_A_QUANTITY };
  const suffix = interpret(scanned.suffix);
  if (typeof suffix === "string") return { ok: false, reason: suffix };
  const { negative, num, denom } = scanned;
  const shifted = num + denom;

  // Go's int64 fast path: at most 18 digits and no rounding. Its "already canonical" spellings
  // are stored as written.
  if (suffix.base === 10) {
    const scale = suffix.exponent - denom.length;
    if (shifted.length <= 18 && scale >= -9) {
      const digits = BigInt(shifted);
      if (scale < scaleLimit)
        return finish(
          roundUp({ negative: negative && digits !== 0n, digits, exponent: scale }, scaleLimit),
          suffix.format,
        );
      if (scale % 3 === 0 && !shifted.endsWith("000") && shifted[0] !== "0") {
        return { ok: true, canonical: s, negative: negative && digits !== 0n };
      }
      return finish({ negative: negative && digits !== 0n, digits, exponent: scale }, suffix.format);
    }
  } else if (denom.length === 0 && 14 - num.length - (3 * suffix.exponent) / 10 >= 0) {
    const value = BigInt(num);
    if ((value & 7n) !== 0n) return { ok: true, canonical: s, negative };
    return finish(
      { negative: negative && value !== 0n, digits: value << BigInt(suffix.exponent), exponent: 0 },
      "BinarySI",
    );
  }

  // Go's inf.Dec path: it needs a digit somewhere.
  if (!scanned.hasDigits) return { ok: false, reason: `${NOT_A_QUANTITY}: no digits` };
  const digits = BigInt(shifted);
  if (digits === 0n) return { ok: true, canonical: "0", negative: false };
  let value: Exact;
  let format = suffix.format;
  if (suffix.base === 10) {
    value = roundUp({ negative, digits, exponent: suffix.exponent - denom.length }, -9);
  } else {
    value = roundUp({ negative, digits: digits << BigInt(suffix.exponent), exponent: -denom.length }, -9);
    // The cap compares the magnitude (Go negates, caps, and negates back).
    const unit = 10n ** BigInt(-value.exponent);
    if (value.digits > MAX_INT64 * unit) value = { negative, digits: MAX_INT64, exponent: 0 };
    else if (value.digits < unit) format = "DecimalSI";
  }
  return finish(roundUp(value, scaleLimit), format);
}

function finish(value: Exact, format: Format): QuantityCheck {
  const out = canonical(value, format);
  if (typeof out !== "string") return { ok: false, reason: tooLargeReason(out.storedAs) };
  return { ok: true, canonical: out, negative: value.negative };
}

/**
 * Whether resource.ParseQuantity accepts `s` as written (it trims nothing): its grammar, a
 * known suffix, an exponent that fits an int64, and a digit where Go's slow path needs one.
 * Unlike checkQuantity, no bound of ours refuses: a Pod annotation Istio admits is admitted.
 */
export function goParsesQuantity(s: string): boolean {
  return goQuantityError(s) === undefined;
}

// resource.ParseQuantity's errors.
const ERR_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const ERR_NUMERIC = "unable to parse numeric part of quantity";
const ERR_SUFFIX = "unable to parse quantity's suffix";

/** resource.ParseQuantity's error for `s` (see goParsesQuantity), or undefined when it parses. */
export function goQuantityError(s: string): string | undefined {
  if (s === "") return ERR_FORMAT_WRONG;
  const scanned = scan(s);
  if (!scanned) return ERR_FORMAT_WRONG;
  const { suffix } = scanned;
  let base: 2 | 10 = 10;
  let exponent: number;
  const decimal = DECIMAL_SUFFIX[suffix];
  const binary = BINARY_SUFFIX[suffix];
  if (decimal !== undefined) exponent = decimal;
  else if (binary !== undefined) {
    base = 2;
    exponent = binary;
  } else if (/^[eE][+-]?[0-9]+$/.test(suffix)) {
    // strconv.ParseInt(…, 10, 64), kept from reading a long run of digits into a BigInt.
    if (suffix.slice(1).replace(/^[+-]?0*/, "").length > 19) return ERR_SUFFIX;
    const e = BigInt(suffix.slice(1));
    if (e < -(2n ** 63n) || e >= 2n ** 63n) return ERR_SUFFIX;
    exponent = Number(BigInt.asIntN(32, e));
  } else return ERR_SUFFIX;
  if (scanned.hasDigits) return undefined;
  // No digit at all: only Go's int64 fast path reads it (as 0).
  return (base === 10 ? exponent >= -9 : 13 - (3 * exponent) / 10 >= 0) ? undefined : ERR_NUMERIC;
}

/**
 * A JSON value in a resource.Quantity field, as Quantity.UnmarshalJSON reads it and MarshalJSON
 * writes it back: null is 0; any other value is parsed as its JSON text, a string's without
 * the quotes but with its escapes (Go writes control characters, `"`, `\`, `<`, `>`, `&`,
 * U+2028 and U+2029 escaped, which no quantity holds), trimmed (strings.TrimSpace). The
 * canonical spelling, or where our bounds stop (checkQuantity) the trimmed text; or Go's error.
 */
export function goUnmarshalQuantity(
  value: unknown,
): { readonly ok: true; readonly value: string } | { readonly ok: false; readonly error: string } {
  let text: string;
  if (value === null) return { ok: true, value: "0" };
  if (typeof value === "number") text = String(value);
  else if (typeof value === "string") {
    // Of the escaped characters, those TrimSpace would trim: anything else fails the grammar anyway.
    if (/[\t\n\v\f\r\u2028\u2029]/.test(value)) return { ok: false, error: ERR_FORMAT_WRONG };
    text = goTrimSpace(value);
  } else return { ok: false, error: ERR_FORMAT_WRONG };
  const error = goQuantityError(text);
  if (error !== undefined) return { ok: false, error };
  const q = checkQuantity(text);
  return { ok: true, value: q.ok ? q.canonical : text };
}

/** The spelling the API server stores, or undefined when it (or we, see above) refuse `s`. */
export function parseQuantity(s: string, precision: QuantityPrecision = "nano"): string | undefined {
  const r = checkQuantity(s, precision);
  return r.ok ? r.canonical : undefined;
}

/** Whether `v` is an object, read as the record of its own keys (a list's being its indexes). */
function isObject(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null;
}

/** A list of quantities (requests or limits), each canonical to the milli; other values as they are. */
function canonicalList(quantities: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const list: Record<string, unknown> = {};
  // Keys, then values: Object.entries is several times slower on a map of many keys.
  for (const r of Object.keys(quantities)) {
    const q = quantities[r];
    list[r] = typeof q === "string" || typeof q === "number" ? (parseQuantity(String(q), "milli") ?? String(q)) : q;
  }
  return list;
}

/** Canonicalises every quantity of a resources map ({requests, limits, claims...}), to the milli. */
export function canonicalResources<T>(resources: T): T {
  if (!isObject(resources)) return resources;
  const lists: Record<string, unknown> = {};
  for (const k of ["requests", "limits"]) {
    const v = own(resources, k);
    if (isObject(v)) lists[k] = canonicalList(v);
  }
  // A copy of the same keys in the same order, its lists replaced where they stand.
  return Object.assign({}, resources, lists);
}
