// Plain (unquoted) YAML scalars as Istio's Go code reads them: go-yaml v2 resolves them by
// YAML 1.1 rules (its resolve.go), under sigs.k8s.io/yaml, which istioctl uses to decode
// manifests and istiod to read `proxy.istio.io/config`. Our parser reads YAML 1.2, which
// differs on exactly these: `yes`/`no`/`on`/`off` are booleans, `010` is octal, `1_000` is
// 1000, `1e6` is a float. Quoted and block scalars are strings in both.
//
// - resolveYaml11 gives the typed value (what YAMLToJSON writes into JSON);
// - yaml11Text gives what sigs.k8s.io/yaml writes into a Go string field (every annotation
//   value of a typed object): ints in decimal, floats with strconv.FormatFloat(f, 'g', -1, 32),
//   booleans as "true"/"false", null as "".

export type Yaml11Scalar =
  | { readonly tag: "bool"; readonly value: boolean }
  | { readonly tag: "null" }
  | { readonly tag: "int"; readonly value: bigint }
  | { readonly tag: "float"; readonly value: number }
  | { readonly tag: "str"; readonly value: string };

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map((s): [string, boolean] => [s, true]),
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map((s): [string, boolean] => [
    s,
    false,
  ]),
]);
const NULLS = new Set(["", "~", "null", "Null", "NULL"]);
const SPECIAL_FLOATS: ReadonlyMap<string, number> = new Map([
  ...[".nan", ".NaN", ".NAN"].map((s): [string, number] => [s, Number.NaN]),
  ...[".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"].map((s): [string, number] => [s, Number.POSITIVE_INFINITY]),
  ...["-.inf", "-.Inf", "-.INF"].map((s): [string, number] => [s, Number.NEGATIVE_INFINITY]),
]);
/** go-yaml's yamlStyleFloat. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** go-yaml's timestamp layouts: a timestamp read into a string or an interface stays as written. */
const TIMESTAMP =
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}(:?[0-9]{2})?)?)?$/;
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/** strconv.ParseInt(s, 0, 64), then ParseUint(s, 0, 64): the value, or undefined. */
function goInteger(s: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2] ?? "";
  const literal = /^0[0-7]/.test(body) ? `0o${body.slice(1)}` : body.replace(/^0[oO]/, "0o");
  const magnitude = BigInt(literal);
  const value = m[1] === "-" ? -magnitude : magnitude;
  return value >= MIN_INT64 && value <= MAX_UINT64 ? value : undefined;
}

/** go-yaml v2's resolve() for an untagged plain scalar. */
export function resolveYaml11(plain: string): Yaml11Scalar {
  const bool = BOOLEANS.get(plain);
  if (bool !== undefined) return { tag: "bool", value: bool };
  if (NULLS.has(plain)) return { tag: "null" };
  const special = SPECIAL_FLOATS.get(plain);
  if (special !== undefined) return { tag: "float", value: special };
  const first = plain[0] ?? "";
  if (first === ".")
    return YAML_STYLE_FLOAT.test(plain) ? { tag: "float", value: Number(plain) } : { tag: "str", value: plain };
  if (!/[-+0-9]/.test(first) || TIMESTAMP.test(plain)) return { tag: "str", value: plain };
  const noUnderscores = plain.replaceAll("_", "");
  const int = goInteger(noUnderscores);
  if (int !== undefined) return { tag: "int", value: int };
  if (YAML_STYLE_FLOAT.test(noUnderscores)) return { tag: "float", value: Number(noUnderscores) };
  return { tag: "str", value: plain };
}

/** strconv.FormatFloat(x, 'g', -1, 32): the shortest digits that read back as the same float32. */
export function formatFloat32(x: number): string {
  const f = Math.fround(x);
  if (Number.isNaN(f)) return "NaN";
  if (f === Infinity) return "+Inf";
  if (f === -Infinity) return "-Inf";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  const abs = Math.abs(f);
  let mantissa = "0";
  let exp = 0;
  for (let precision = 1; precision <= 9; precision++) {
    const e = abs.toExponential(precision - 1);
    if (Math.fround(Number(e)) !== abs) continue;
    const [m = "", x10 = "0"] = e.split("e");
    mantissa = m.replace(".", "").replace(/0+$/, "") || "0";
    exp = Number(x10);
    break;
  }
  const sign = f < 0 ? "-" : "";
  // %e when the exponent is below -4 or at least 6 (the shortest form's precision), else %f.
  if (exp < -4 || exp >= 6) {
    const frac = mantissa.length > 1 ? `.${mantissa.slice(1)}` : "";
    return `${sign}${mantissa[0] ?? "0"}${frac}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${mantissa}`;
  const whole = mantissa.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = mantissa.slice(exp + 1);
  return `${sign}${whole}${frac ? `.${frac}` : ""}`;
}

/** The string sigs.k8s.io/yaml puts in a Go string field for a plain scalar. */
export function yaml11Text(plain: string): string {
  const r = resolveYaml11(plain);
  switch (r.tag) {
    case "bool":
      return r.value ? "true" : "false";
    case "null":
      return "";
    case "int":
      return r.value.toString();
    case "float":
      return formatFloat32(r.value);
    case "str":
      return r.value;
  }
}
