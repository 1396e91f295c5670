// Kubernetes resource quantities ("100m", "1Gi", "3000m"): parsing and the API server's
// canonical spelling, so that what we write (and the overrides we record) reads exactly as
// the API server will store it ("3000m" -> "3", "1024Mi" -> "1Gi").

const DECIMAL_SUFFIX: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Readonly<Record<string, number>> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL_BY_EXP = new Map(Object.entries(DECIMAL_SUFFIX).map(([s, e]) => [e, s]));
const BINARY_BY_POWER = new Map(Object.entries(BINARY_SUFFIX).map(([s, p]) => [p, s]));

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/;

interface Decimal {
  neg: boolean;
  m: bigint; // mantissa, no trailing zeros (unless zero)
  e: number; // power of ten
}

function normalise(d: Decimal): Decimal {
  let { m, e } = d;
  if (m === 0n) return { neg: false, m: 0n, e: 0 };
  while (m % 10n === 0n) {
    m /= 10n;
    e += 1;
  }
  return { neg: d.neg, m, e };
}

function decimalString(d: Decimal): string {
  if (d.m === 0n) return "0";
  // Largest exponent (a multiple of 3, within n..E) that keeps the mantissa whole.
  let x = Math.floor(d.e / 3) * 3;
  let m = d.m;
  if (x < -9) {
    // Finer than nano: round up to a whole nano, as the API server does.
    const drop = BigInt(10) ** BigInt(-9 - d.e);
    m = (m + drop - 1n) / drop;
    return normalisedToString({ neg: d.neg, m, e: -9 });
  }
  if (x > 18) x = 18;
  const digits = m * BigInt(10) ** BigInt(d.e - x);
  return `${d.neg ? "-" : ""}${digits}${DECIMAL_BY_EXP.get(x) ?? ""}`;
}

function normalisedToString(d: Decimal): string {
  return decimalString(normalise(d));
}

/** The canonical spelling of a quantity, or undefined when `s` is not one. */
export function parseQuantity(s: string): string | undefined {
  const match = QUANTITY.exec(s.trim());
  if (!match) return undefined;
  const [, sign, num = "", suffix = "", exp] = match;
  const [whole = "", frac = ""] = num.split(".");
  const base: Decimal = { neg: sign === "-", m: BigInt((whole || "0") + frac), e: -frac.length };
  const binary = BINARY_SUFFIX[suffix];
  if (binary !== undefined) {
    // value = m * 10^e * 1024^binary
    const scaled = base.m * 1024n ** BigInt(binary);
    const divisor = 10n ** BigInt(-base.e);
    if (scaled % divisor === 0n) {
      let bytes = scaled / divisor;
      if (bytes === 0n) return "0";
      let power = 0;
      while (power < 6 && bytes % 1024n === 0n) {
        bytes /= 1024n;
        power += 1;
      }
      return `${base.neg ? "-" : ""}${bytes}${BINARY_BY_POWER.get(power) ?? ""}`;
    }
    // Fractional bytes: the API server falls back to a decimal spelling.
    return normalisedToString({ neg: base.neg, m: scaled, e: base.e });
  }
  const e = exp !== undefined ? Number(exp) : (DECIMAL_SUFFIX[suffix] ?? 0);
  return normalisedToString({ neg: base.neg, m: base.m, e: base.e + e });
}

/** Canonicalises every quantity of a resources map ({requests, limits, claims...}). */
export function canonicalResources<T>(resources: T): T {
  if (typeof resources !== "object" || resources === null) return resources;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resources)) {
    if ((k === "requests" || k === "limits") && typeof v === "object" && v !== null) {
      const list: Record<string, unknown> = {};
      for (const [r, q] of Object.entries(v)) {
        list[r] = typeof q === "string" || typeof q === "number" ? (parseQuantity(String(q)) ?? String(q)) : q;
      }
      out[k] = list;
    } else out[k] = v;
  }
  return out as T;
}
