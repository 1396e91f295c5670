// Manifest text in, injected manifest text out: what `inject` prints (and what the preview
// will show). YAML documents (or JSON, which is YAML) are injected in order. The text is read
// within limits (MANIFEST_LIMITS by default, see injection/yaml-limits.ts).
import { isMap, isPair, isScalar, stringify, visit, type Document } from "yaml";
import type { Config } from "./config/types.js";
import { injectDocument, type InjectedTemplate } from "./injection/workloads.js";
import { MANIFEST_LIMITS, parseYamlDocuments, YamlLimitError, YamlSyntaxError, type YamlLimits } from "./injection/yaml-limits.js";

export class ManifestError extends Error {
  readonly code = "ERR_MANIFEST";
}

export const OUTPUT_FORMATS = ["yaml", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface InjectedManifest {
  readonly docs: readonly unknown[];
  readonly injected: readonly InjectedTemplate[];
}

// --- Annotation values as istioctl reads them ------------------------------------------
//
// istioctl kube-inject decodes a manifest with sigs.k8s.io/yaml into the typed object: the
// YAML is read by go-yaml v2 (YAML 1.1), and a scalar that lands in a string field (every
// annotation value) is turned into its text: `proxyCPU: 2` is "2", `inject: yes` is "true",
// `port: 0x1F` is "31", `cpu: 1e6` is "1e+06", `x: ~` is "". A quoted or block scalar is
// the string it spells. So unquoted annotation values are read here the same way, and the
// rest of the manifest as YAML 1.2 reads it.

const YAML11_BOOLEANS: ReadonlyMap<string, string> = new Map([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map((s): [string, string] => [s, "true"]),
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map((s): [string, string] => [s, "false"]),
]);
const YAML11_NULLS = new Set(["", "~", "null", "Null", "NULL"]);
const YAML11_FLOATS: ReadonlyMap<string, string> = new Map([
  ...[".nan", ".NaN", ".NAN"].map((s): [string, string] => [s, "NaN"]),
  ...[".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"].map((s): [string, string] => [s, "+Inf"]),
  ...["-.inf", "-.Inf", "-.INF"].map((s): [string, string] => [s, "-Inf"]),
]);
/** go-yaml's yamlStyleFloat. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** go-yaml's timestamp layouts (a timestamp read into a string field stays as written). */
const TIMESTAMP = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}(:?[0-9]{2})?)?)?$/;

/** strconv.ParseInt(s, 0, 64) then ParseUint(s, 0, 64): the value, or undefined. */
function goInteger(s: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2] ?? "";
  const digits = /^0[0-7]/.test(body) ? `0o${body.slice(1)}` : body.replace(/^0[oO]/, "0o");
  const magnitude = BigInt(digits);
  const value = m[1] === "-" ? -magnitude : magnitude;
  if (value >= -(2n ** 63n) && value < 2n ** 64n) return value;
  return undefined;
}

/** strconv.FormatFloat(x, 'g', -1, 32): the shortest digits that read back as the same float32. */
function formatFloat32(x: number): string {
  const f = Math.fround(x);
  if (Number.isNaN(f)) return "NaN";
  if (f === Infinity) return "+Inf";
  if (f === -Infinity) return "-Inf";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  let mantissa = "";
  let exp = 0;
  for (let precision = 1; precision <= 9; precision++) {
    const e = Math.abs(f).toExponential(precision - 1);
    if (Math.fround(Number(e)) !== Math.abs(f)) continue;
    const [m = "", x10 = "0"] = e.split("e");
    mantissa = m.replace(".", "").replace(/0+$/, "") || "0";
    exp = Number(x10);
    break;
  }
  const sign = f < 0 ? "-" : "";
  if (exp < -4 || exp >= 6) {
    const frac = mantissa.length > 1 ? `.${mantissa.slice(1)}` : "";
    return `${sign}${mantissa[0] ?? "0"}${frac}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${mantissa}`;
  const whole = mantissa.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = mantissa.slice(exp + 1);
  return `${sign}${whole}${frac ? `.${frac}` : ""}`;
}

/** The string go-yaml v2 and sigs.k8s.io/yaml make of a plain scalar read into a string field. */
export function istioctlAnnotationText(plain: string): string {
  const bool = YAML11_BOOLEANS.get(plain);
  if (bool !== undefined) return bool;
  if (YAML11_NULLS.has(plain)) return "";
  const special = YAML11_FLOATS.get(plain);
  if (special !== undefined) return special;
  const first = plain[0] ?? "";
  if (first === ".") {
    return YAML_STYLE_FLOAT.test(plain) ? formatFloat32(Number(plain)) : plain;
  }
  if (!/[-+0-9]/.test(first) || TIMESTAMP.test(plain)) return plain;
  const noUnderscores = plain.replaceAll("_", "");
  const int = goInteger(noUnderscores);
  if (int !== undefined) return int.toString();
  if (YAML_STYLE_FLOAT.test(noUnderscores)) return formatFloat32(Number(noUnderscores));
  return plain;
}

function keyIs(node: unknown, name: string): boolean {
  return isScalar(node) && node.value === name;
}

/** Every unquoted value under a `metadata.annotations` map, as istioctl reads it. */
function annotationsAsIstioctl(doc: Document.Parsed): void {
  visit(doc, {
    Pair(_, pair, path) {
      const map = path[path.length - 1];
      const annotations = path[path.length - 2];
      const metadata = path[path.length - 4];
      if (!isMap(map) || !isPair(annotations) || !keyIs(annotations.key, "annotations") || !isPair(metadata) || !keyIs(metadata.key, "metadata")) return;
      const v = pair.value;
      if (v === null) pair.value = doc.createNode("");
      else if (isScalar(v) && v.type === "PLAIN" && v.tag === undefined && typeof v.source === "string") v.value = istioctlAnnotationText(v.source);
      return visit.SKIP;
    },
  });
}

export function parseManifest(text: string, source: string, limits: YamlLimits = MANIFEST_LIMITS): unknown[] {
  try {
    return parseYamlDocuments(text, limits, annotationsAsIstioctl);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw new ManifestError(`${source}: document ${e.document} is not valid YAML: ${e.message}`);
    if (e instanceof YamlLimitError) throw new ManifestError(`${source}: ${e.message}`);
    throw e;
  }
}

export function injectManifest(text: string, source: string, namespace: string, config: Config): InjectedManifest {
  const injected: InjectedTemplate[] = [];
  const docs = parseManifest(text, source).map((d) => injectDocument(d, namespace, config, injected).doc);
  return { docs, injected };
}

export function formatManifest(docs: readonly unknown[], format: OutputFormat): string {
  if (format === "json") {
    return `${JSON.stringify(docs.length === 1 ? docs[0] : { apiVersion: "v1", kind: "List", items: docs }, null, 2)}\n`;
  }
  return docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}
