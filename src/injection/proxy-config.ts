// ProxyConfig: what pilot-agent bootstraps Envoy from. A Pod's ProxyConfig is merged as istiod's
// webhook merges it (EffectiveProxyConfig, mesh.MergeProxyConfig):
//   Istio's defaults <- the mesh's (discoveryAddress and proxy.statusPort when not their
//   defaults, then the config's `proxyConfig`, Istio's meshConfig.defaultConfig, over them)
//   <- the Pod's `proxy.istio.io/config` annotation (YAML or JSON).
// Each layer passes on what jsonpb writes of it (mergeWithPrecedence re-reads each as YAML), so a
// field at its zero value (an empty string, REDIRECT, a 0 that is no wrapper) leaves the one
// below; a field written replaces the one below whole (a nested message too; a oneof member
// clears the other); proxyMetadata maps are merged key by key (mergeMap); proxyHeaders keeps the
// forwardedClientCert, requestId, attemptCount, server and envoyDebugHeaders below that the
// layer above leaves unset (correctProxyHeaders). istioctl kube-inject applies the annotation as
// written instead; the two differ only where the annotation names a zero value over a mesh value.
// The merged ProxyConfig is PROXY_CONFIG (JSON), written as Istio writes it: re-serialised by
// jsonpb (JSON names, enums by name, durations in seconds, wrappers as their scalar, zero values
// and unknown fields dropped, proxy.proto's order), less what equals Istio's built-in defaults
// (its template's cleanProxyConfig). The engine also reads from it the hold, the interception
// mode, proxyMetadata (the proxy's env) and image.imageType. The mesh's layer is computed once
// per config (baseFor): a Pod without the annotation costs no more than before. The annotation
// is read within PROXY_CONFIG_LIMITS (yaml-limits.ts): past one, it is refused naming the limit;
// the config's proxyConfig is checked at load by the same rules (meshProxyConfigProblems).
//
// What Istio refuses in the annotation (validate.go's validateProxyConfig), and so we do:
// - YAML that sigs.k8s.io/yaml cannot turn into JSON. Plain scalars are read as go-yaml reads
//   them (YAML 1.1, yaml11.ts): `holdApplicationUntilProxyStarts: yes` is true; .inf and .nan
//   have no JSON and are refused;
// - a known field of the wrong JSON type (PROXY_CONFIG_FIELDS, from mesh/v1alpha1/proxy.proto,
//   read as golang/protobuf's jsonpb reads it: by its JSON or its proto name, null as unset,
//   int32 fields also as quoted numbers, enums by name or number, durations as Go's
//   time.ParseDuration reads them). Unknown fields are admitted (jsonpb is retried with
//   AllowUnknownFields); nested messages are read field by field the same way, from the
//   schema generated out of istio.io/api (proxy-config-schema.ts);
// - what agent.ValidateMeshConfigProxyConfig refuses once the annotation is applied over
//   Istio's built-in defaults (not the mesh's): empty configPath, binaryPath, serviceCluster or
//   discoveryAddress, a drain duration that is not whole seconds of at least 1 ms, an address
//   that is not host:port with a port from 1 to 65535, proxyAdminPort or statusPort outside
//   1-65535, a control plane auth policy other than NONE or MUTUAL_TLS; the tracer's address
//   (zipkin, datadog, lightstep with its access token) and TLS settings, a private key provider
//   without a non-zero pollDelay, connection settings out of range (negative timeouts or
//   buffer limits, non-positive stream or connection limits, HTTP/2 windows under 65535).
//
// What Istio admits and drops, unknown fields at any depth (`concurrenccy`, `tracing.zipkn`), is
// said back as warnings (the API server shows them to kubectl users): each names the field's
// path and the closest known field of the same message, by JSON or proto name (the edit
// distance of annotation-keys.ts). At most MAX_FIELD_WARNINGS are named, the rest counted, and
// paths are quoted bounded, so that each warning fits what the API server keeps of one.
import { isIP } from "node:net";
import { visit, type Document } from "yaml";
import { INTERCEPTION_MODES, type Config, type InterceptionMode } from "../config/types.js";
import { DEFAULT_CONFIG } from "../config/defaults.js";
import { A } from "./annotations.js";
import { InjectionError } from "./types.js";
import { ENUMS, MESSAGES, type SchemaKind } from "./proxy-config-schema.js";
import { closestName } from "./annotation-keys.js";
import { isMap, own } from "./own.js";
import { clip, quote } from "./quote.js";
import { resolveYaml11, yaml11Text } from "./yaml11.js";
import { parseYamlDocuments, PROXY_CONFIG_LIMITS, YamlLimitError, YamlSyntaxError } from "./yaml-limits.js";

/** A Pod's ProxyConfig (the mesh's with its annotation over it), as the engine reads it. */
export interface ProxyConfigOverlay {
  /** The PROXY_CONFIG env value (JSON plus a newline, as Istio writes it). */
  readonly json: string;
  /** The merged hold, when either layer sets it (the annotation's false replaces the mesh's true). */
  readonly holdApplicationUntilProxyStarts?: boolean;
  /** The merged mode, else the one proxyConfig names; undefined: interception.mode. */
  readonly interceptionMode?: InterceptionMode;
  /** The merged proxyMetadata (the mesh's, the annotation's over it key by key). */
  readonly proxyMetadata: Readonly<Record<string, string>>;
  /** The annotation's unknown fields, named (unknownFieldWarnings). */
  readonly warnings: readonly string[];
}

function bad(value: string, why: string): InjectionError {
  return new InjectionError(
    "ERR_INVALID_ANNOTATION",
    A.proxyConfig,
    `invalid annotation ${A.proxyConfig}=${quote(value)}: ${why}`,
  );
}

/**
 * The config's own non-default ProxyConfig fields, from keys other than `proxyConfig`:
 * discoveryAddress and proxy.statusPort (computed once per config).
 */
export function configProxyFields(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (config.discoveryAddress !== DEFAULT_CONFIG.discoveryAddress) out.discoveryAddress = config.discoveryAddress;
  if (config.proxy.statusPort !== DEFAULT_CONFIG.proxy.statusPort) out.statusPort = config.proxy.statusPort;
  return out;
}

/** The mesh's ProxyConfig of one config, as the engine reads it for every Pod. */
interface MeshProxyConfig {
  /** Its fields as jsonpb writes them, by JSON name: what a Pod's annotation is merged over. */
  readonly base: ReadonlyMap<string, unknown>;
  /** proxyConfig's interceptionMode, when it names one. */
  readonly mode: InterceptionMode | undefined;
  /** The overlay of a Pod without the annotation. */
  readonly empty: ProxyConfigOverlay;
}

const cache = new WeakMap<Config, MeshProxyConfig>();

/**
 * The mesh's ProxyConfig: discoveryAddress and proxy.statusPort (when not their defaults), with
 * `proxyConfig` (Istio's meshConfig.defaultConfig) over them, merged as istiod merges (mergeInto).
 * Computed once per config (a config is frozen), so a Pod without the annotation costs nothing more.
 */
function baseFor(config: Config): MeshProxyConfig {
  let entry = cache.get(config);
  if (!entry) {
    const base = mergeInto(written(configProxyFields(config)), written(config.proxyConfig));
    // proxyConfig's interceptionMode, named, is the mesh's mode even at REDIRECT (which jsonpb
    // does not write): it says the same as interception.mode, and wins over it.
    const named = field(config.proxyConfig, "interceptionMode", "interception_mode");
    const mode = INTERCEPTION_MODES.find(
      (m) => m === (typeof named === "number" ? INTERCEPTION_MODE_NAMES[named] : named),
    );
    entry = { base, mode, empty: overlayOf(base, mode, []) };
    cache.set(config, entry);
  }
  return entry;
}

// --- The fields of ProxyConfig (istio.io/api mesh/v1alpha1/proxy.proto) ------------------

/**
 * Enum values Istio's validation refuses though proto declares them (AuthenticationPolicy's
 * INHERIT, a mesh-wide placeholder, numbered 1000): a ProxyConfig may not name them.
 */
const REFUSED_ENUM_VALUES: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["AuthenticationPolicy", new Set(["INHERIT"])],
]);

/** An enum's accepted value names, by number (each accepted value's number is its index). */
function enumNames(name: string): readonly string[] {
  const refused = REFUSED_ENUM_VALUES.get(name);
  return [...(ENUMS.get(name) ?? new Map<string, number>())]
    .filter(([value]) => !refused?.has(value))
    .sort(([, a], [, b]) => a - b)
    .map(([value]) => value);
}

const INTERCEPTION_MODE_NAMES = enumNames("ProxyConfig_InboundInterceptionMode");
const TRACING_SERVICE_NAMES = enumNames("ProxyConfig_TracingServiceName");

/**
 * How jsonpb reads a field: a scalar kind, an enum's value names (by number: the index), or a
 * nested message. `int32?` and `bool?` are google.protobuf wrappers: read as their scalar, but
 * written even when zero.
 */
type FieldKind =
  | "string"
  | "int32"
  | "uint32"
  | "bool"
  | "int32?"
  | "bool?"
  | "duration"
  | "stringMap"
  | "stringList"
  | "message"
  | readonly string[];

/** The schema's scalar kinds, each read as its own kind. */
const SCALAR_KINDS: ReadonlyMap<string, FieldKind> = new Map<string, FieldKind>(
  (["string", "int32", "uint32", "bool", "int32?", "bool?", "duration"] as const).map((k) => [k, k]),
);

/** How jsonpb reads a top-level field of the schema's kind; undefined for a kind not read here. */
function fieldKind(kind: SchemaKind): FieldKind | undefined {
  if (typeof kind === "string") return SCALAR_KINDS.get(kind);
  if ("enum" in kind) return enumNames(kind.enum);
  if ("message" in kind) return "message";
  if ("list" in kind) return kind.list === "string" ? "stringList" : undefined;
  return kind.map === "string" ? "stringMap" : undefined;
}

/**
 * [JSON name, proto name, kind] of ProxyConfig's fields, from the generated schema in the order
 * of proxy.proto (which is the order jsonpb writes them in). A field not there
 * (`parentShutdownDuration` is gone from it) Istio admits and drops.
 */
export const PROXY_CONFIG_FIELDS: readonly (readonly [string, string, FieldKind])[] = (
  MESSAGES.get("ProxyConfig") ?? []
).flatMap(([json, proto, kind]) => {
  const read = fieldKind(kind);
  return read === undefined ? [] : [[json, proto, read] as const];
});

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;

/** encoding/json into an int32/uint32, after jsonpb's trimQuote: an integer literal in range. */
function jsonInteger(v: unknown, min: number, max: number): number | undefined {
  let n: number | undefined;
  if (typeof v === "number") n = Number.isInteger(v) ? v : undefined;
  else if (typeof v === "string" && /^[ \t\n\r]*-?(0|[1-9][0-9]*)[ \t\n\r]*$/.test(v)) n = Number(v);
  return n !== undefined && n >= min && n <= max ? n : undefined;
}

const DURATION_UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1000n],
  ["µs", 1000n],
  ["μs", 1000n],
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
]);
const MAX_DURATION = 2n ** 63n - 1n;

/** Go's time.ParseDuration, in nanoseconds (the fraction truncated), or undefined. */
export function goDuration(s: string): bigint | undefined {
  const m = /^([-+]?)(.*)$/s.exec(s);
  const body = m?.[2] ?? "";
  if (body === "0") return 0n;
  if (body === "") return undefined;
  let total = 0n;
  const part = /([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/y;
  let at = 0;
  while (at < body.length) {
    part.lastIndex = at;
    const p = part.exec(body);
    if (!p) return undefined;
    const [, whole = "", frac, unitName = ""] = p;
    if (whole === "" && (frac === undefined || frac === "")) return undefined;
    const unit = DURATION_UNITS.get(unitName);
    if (unit === undefined) return undefined;
    total += BigInt(whole || "0") * unit;
    if (frac) total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    if (total > MAX_DURATION) return undefined;
    at = part.lastIndex;
  }
  return m?.[1] === "-" ? -total : total;
}

/** Why jsonpb refuses `v` for a field of `kind`, or undefined. */
function fieldProblem(name: string, kind: FieldKind, v: unknown): string | undefined {
  if (typeof kind !== "string") {
    if (typeof v === "string") return kind.includes(v) ? undefined : `${name} must be one of ${kind.join(", ")}`;
    return jsonInteger(v, INT32_MIN, INT32_MAX) !== undefined && typeof v === "number"
      ? undefined
      : `${name} must be one of ${kind.join(", ")}`;
  }
  switch (kind) {
    case "string":
      return typeof v === "string" ? undefined : `${name} must be a string`;
    case "bool":
    case "bool?":
      return typeof v === "boolean" ? undefined : `${name} must be true or false`;
    case "int32":
    case "int32?":
      return jsonInteger(v, INT32_MIN, INT32_MAX) !== undefined
        ? undefined
        : `${name} must be a whole number (32 bits)`;
    case "uint32":
      return jsonInteger(v, 0, UINT32_MAX) !== undefined
        ? undefined
        : `${name} must be a whole number from 0 to ${UINT32_MAX}`;
    case "duration":
      return typeof v === "string" && goDuration(v) !== undefined
        ? undefined
        : `${name} must be a duration (for example 5s, 1m30s)`;
    case "stringMap":
      if (!isMap(v)) return `${name} must be a map of strings`;
      for (const [k, item] of Object.entries(v))
        if (typeof item !== "string" && item !== null) return `${name}.${quote(k, 40)} must be a string`;
      return undefined;
    case "stringList":
      if (!Array.isArray(v)) return `${name} must be a list of strings`;
      return v.every((item) => typeof item === "string" || item === null)
        ? undefined
        : `${name} must be a list of strings`;
    case "message":
      return nestedProblem(name, { message: topMessage(name) }, v);
  }
}

/** The message type of a top-level message field of ProxyConfig (proxy-config-schema.ts). */
function topMessage(json: string): string {
  const kind = MESSAGES.get("ProxyConfig")?.find((f) => f[0] === json)?.[2];
  return typeof kind === "object" && "message" in kind ? kind.message : "";
}

const INT64 = /^[ \t\n\r]*-?(0|[1-9][0-9]*)[ \t\n\r]*$/;

/** encoding/json into a float64 after jsonpb's trimQuote: a number, or a quoted one, or NaN/Infinity quoted. */
function jsonDouble(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return undefined;
  if (v === "NaN") return Number.NaN;
  if (v === "Infinity" || v === "-Infinity") return Number(v);
  return /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(v) ? Number(v) : undefined;
}

/**
 * Why jsonpb refuses `v` for a field of a nested message of `kind` (proxy-config-schema.ts),
 * field by field, or undefined. Unknown fields are admitted; null is unset.
 */
function nestedProblem(name: string, kind: SchemaKind, v: unknown): string | undefined {
  if (typeof kind === "object") {
    if ("enum" in kind) {
      const names = ENUMS.get(kind.enum) ?? new Map<string, number>();
      const ok =
        typeof v === "string"
          ? names.has(v)
          : typeof v === "number" && jsonInteger(v, INT32_MIN, INT32_MAX) !== undefined;
      return ok ? undefined : `${name} must be one of ${[...names.keys()].join(", ")}`;
    }
    if ("list" in kind) {
      if (!Array.isArray(v)) return `${name} must be a list`;
      for (const [i, item] of v.entries()) {
        const why = item === null ? undefined : nestedProblem(`${name}[${i}]`, kind.list, item);
        if (why) return why;
      }
      return undefined;
    }
    if ("map" in kind) {
      if (!isMap(v)) return `${name} must be a map`;
      for (const [k, item] of Object.entries(v)) {
        const why = item === null ? undefined : nestedProblem(`${name}.${quote(k, 40)}`, kind.map, item);
        if (why) return why;
      }
      return undefined;
    }
    if (!isMap(v)) return `${name} must be a map`;
    for (const [json, proto, fieldKind] of MESSAGES.get(kind.message) ?? []) {
      const item = field(v, json, proto);
      const why = item === undefined ? undefined : nestedProblem(`${name}.${json}`, fieldKind, item);
      if (why) return why;
    }
    return undefined;
  }
  switch (kind) {
    case "int64":
    case "int64?":
    case "uint64":
    case "uint64?": {
      const ok = (typeof v === "number" && Number.isInteger(v)) || (typeof v === "string" && INT64.test(v));
      return ok && !(kind.startsWith("u") && String(v).includes("-")) ? undefined : `${name} must be a whole number`;
    }
    case "double":
    case "double?":
    case "float":
      return jsonDouble(v) !== undefined ? undefined : `${name} must be a number`;
    case "bytes":
    case "string?":
      return typeof v === "string" ? undefined : `${name} must be a string`;
    case "struct":
      return isMap(v) ? undefined : `${name} must be a map`;
    case "uint32?":
      return fieldProblem(name, "uint32", v);
    default:
      return isProxyFieldKind(kind) ? fieldProblem(name, kind, v) : undefined;
  }
}

const PROXY_FIELD_KINDS: ReadonlySet<string> = new Set([
  "string",
  "int32",
  "uint32",
  "bool",
  "int32?",
  "bool?",
  "duration",
]);

function isProxyFieldKind(
  kind: string,
): kind is "string" | "int32" | "uint32" | "bool" | "int32?" | "bool?" | "duration" {
  return PROXY_FIELD_KINDS.has(kind);
}

/**
 * A nested value as jsonpb writes it, or undefined when it writes nothing (a scalar or an enum
 * at zero outside a oneof, an empty list or map); messages always, wrappers as their scalar.
 */
function nestedValue(kind: SchemaKind, v: unknown, always: boolean): unknown {
  if (typeof kind === "object") {
    if ("enum" in kind) {
      const names = ENUMS.get(kind.enum) ?? new Map<string, number>();
      const number = typeof v === "number" ? v : names.get(String(v));
      if (number === 0 && !always) return undefined;
      return [...names.entries()].find((e) => e[1] === number)?.[0] ?? number;
    }
    if ("list" in kind) {
      return Array.isArray(v) && v.length > 0
        ? v.map((item: unknown) => nestedValue(kind.list, item ?? zeroOf(kind.list), true))
        : undefined;
    }
    if ("map" in kind) {
      if (!isMap(v) || Object.keys(v).length === 0) return undefined;
      return Object.fromEntries(
        Object.entries(v).map(([k, item]) => [k, nestedValue(kind.map, item ?? zeroOf(kind.map), true)]),
      );
    }
    const out: Record<string, unknown> = {};
    if (!isMap(v)) return out;
    // jsonpb sets the fields in the message's order, and setting a oneof's member clears the
    // one set before: of `zipkin` and `datadog` both written, `datadog` (declared later) stays.
    let members: Map<string, string> | undefined;
    for (const [json, proto, fieldKind, oneof] of MESSAGES.get(kind.message) ?? []) {
      const item = field(v, json, proto);
      if (item === undefined) continue;
      const written = nestedValue(fieldKind, item, oneof !== undefined);
      if (written === undefined) continue;
      if (oneof !== undefined) {
        const before = (members ??= new Map()).get(oneof);
        if (before !== undefined) delete out[before];
        members.set(oneof, json);
      }
      out[json] = written;
    }
    return out;
  }
  switch (kind) {
    case "int64":
    case "uint64":
    case "int64?":
    case "uint64?": {
      const text = String(v).trim();
      return text === "0" && !kind.endsWith("?") && !always ? undefined : text;
    }
    case "double":
    case "float":
    case "double?": {
      const n = jsonDouble(v) ?? 0;
      if (n === 0 && kind !== "double?" && !always) return undefined;
      // NaN and the infinities as jsonpb writes them: "NaN", "Infinity", "-Infinity".
      return Number.isFinite(n) ? n : String(n);
    }
    case "uint32?":
      return jsonInteger(v, 0, UINT32_MAX);
    case "string?":
    case "struct":
      return v;
    case "bytes":
      return v === "" && !always ? undefined : v;
    default: {
      if (!isProxyFieldKind(kind)) return v;
      const written = protoValue(kind, v);
      if (written !== undefined || !always) return written;
      return kind === "string" ? "" : kind === "bool" ? false : kind === "duration" ? protoDuration(0n) : 0;
    }
  }
}

function zeroOf(kind: SchemaKind): unknown {
  if (typeof kind === "object") return "message" in kind ? {} : "enum" in kind ? 0 : undefined;
  return kind === "string" || kind === "bytes" ? "" : kind === "bool" ? false : 0;
}

/** jsonpb's Duration: whole seconds, then 3, 6 or 9 digits of fraction as needed, and "s". */
function protoDuration(ns: bigint): string {
  const sign = ns < 0n ? "-" : "";
  const abs = ns < 0n ? -ns : ns;
  let text = `${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n).padStart(9, "0")}`;
  for (const tail of ["000", "000", ".000"]) if (text.endsWith(tail)) text = text.slice(0, -tail.length);
  return `${sign}${text}s`;
}

/**
 * A top-level field's value as jsonpb writes it after reading it, or undefined when it writes
 * nothing (a proto3 scalar or enum at its zero value, an empty list or map).
 */
function protoValue(kind: FieldKind, v: unknown): unknown {
  if (typeof kind !== "string") {
    const name = typeof v === "number" ? (kind[v] ?? v) : v;
    return name === kind[0] || name === 0 ? undefined : name;
  }
  switch (kind) {
    case "string":
      return v === "" ? undefined : v;
    case "bool":
      return v === true ? true : undefined;
    case "bool?":
      return v;
    case "int32":
    case "uint32": {
      const n = jsonInteger(v, INT32_MIN, UINT32_MAX);
      return n === 0 ? undefined : n;
    }
    case "int32?":
      return jsonInteger(v, INT32_MIN, INT32_MAX);
    case "duration":
      return typeof v === "string" ? protoDuration(goDuration(v) ?? 0n) : v;
    case "stringMap":
      return isMap(v) && Object.keys(v).length > 0
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x ?? ""]))
        : undefined;
    case "stringList":
      return Array.isArray(v) && v.length > 0 ? v.map((x: unknown) => x ?? "") : undefined;
    case "message":
      return v;
  }
}

/** A top-level field's value as jsonpb writes it: protoValue, nested messages field by field. */
function topValue(json: string, kind: FieldKind, v: unknown): unknown {
  return kind === "message" ? nestedValue({ message: topMessage(json) }, v, true) : protoValue(kind, v);
}

/**
 * Istio's built-in ProxyConfig defaults (mesh.DefaultProxyConfig), which its template's
 * cleanProxyConfig drops from PROXY_CONFIG when the merged value equals them.
 */
const ISTIO_PROXY_DEFAULTS: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ["configPath", "./etc/istio/proxy"],
  ["binaryPath", "/usr/local/bin/envoy"],
  ["serviceCluster", "istio-proxy"],
  ["drainDuration", "45s"],
  ["terminationDrainDuration", "5s"],
  ["discoveryAddress", "istiod.istio-system.svc:15012"],
  ["proxyAdminPort", 15000],
  ["controlPlaneAuthPolicy", "MUTUAL_TLS"],
  ["statNameLength", 189],
  ["statusPort", 15020],
]);

/**
 * PROXY_CONFIG as Istio writes it: the merged ProxyConfig re-serialised by jsonpb (JSON field
 * names, enums by name, durations in seconds, wrappers as their scalar, zero values and
 * unknown fields dropped, proxy.proto's order), less what equals Istio's defaults.
 */
function protoJson(merged: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [json, proto, kind] of PROXY_CONFIG_FIELDS) {
    const v = field(merged, json, proto);
    if (v === undefined) continue;
    // serviceCluster and tracingServiceName are a oneof: the one set is written, even at zero.
    const oneof = json === "serviceCluster" || json === "tracingServiceName";
    const written = oneof ? (typeof v === "number" ? (TRACING_SERVICE_NAMES[v] ?? v) : v) : topValue(json, kind, v);
    if (written === undefined || written === ISTIO_PROXY_DEFAULTS.get(json)) continue;
    out[json] = written;
  }
  return JSON.stringify(out);
}

/** net.SplitHostPort, then a port from 1 to 65535 and a DNS name or an IP (ValidateProxyAddress). */
function addressProblem(name: string, value: string): string | undefined {
  let host: string;
  let port: string;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end < 0 || value[end + 1] !== ":") return `${name} must be <host>:<port>`;
    host = value.slice(1, end);
    port = value.slice(end + 2);
    if (host.includes("[")) return `${name} must be <host>:<port>`;
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) return `${name} must be <host>:<port>`;
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (host.includes(":") || host.includes("[") || host.includes("]")) return `${name} must be <host>:<port>`;
  }
  if (port.includes("[") || port.includes("]")) return `${name} must be <host>:<port>`;
  const n = /^[-+]?[0-9]+$/.test(port) ? Number(port) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) return `${name} must have a port from 1 to 65535`;
  return isFqdn(host) || isIP(host) !== 0 ? undefined : `${name} must have a DNS name or an IP address as its host`;
}

/** ValidateFQDN: at most 255 characters, DNS-1123 labels, a top-level label that is not all digits. */
function isFqdn(host: string): boolean {
  if (host.length === 0 || host.length > 255) return false;
  const labels = host.split(".");
  const top = labels[labels.length - 1] ?? "";
  if (/^[-+]?[0-9]+$/.test(top)) return false;
  return labels.every(
    (l, i) =>
      (i === labels.length - 1 && l === "") || (l.length <= 63 && /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(l)),
  );
}

/** The field's value by its JSON name, else its proto name (jsonpb takes the JSON name last). */
function field(parsed: Record<string, unknown>, json: string, proto: string): unknown {
  const v = Object.hasOwn(parsed, json) ? parsed[json] : Object.hasOwn(parsed, proto) ? parsed[proto] : undefined;
  return v === null ? undefined : v;
}

/**
 * Why Istio refuses this ProxyConfig map, or undefined: the annotation's checks (the header),
 * which are also the mesh ConfigMap's (agent.ValidateMeshConfig), so the config's proxyConfig
 * is checked by them too.
 */
export function proxyConfigProblem(parsed: Readonly<Record<string, unknown>>): string | undefined {
  const nonFinite = findNonFinite(parsed);
  if (nonFinite) return "has .inf or .nan, which JSON cannot hold";
  const values = new Map<string, unknown>();
  for (const [json, proto, kind] of PROXY_CONFIG_FIELDS) {
    const v = field(parsed, json, proto);
    if (v === undefined) continue;
    const why = fieldProblem(json, kind, v);
    if (why) return why;
    values.set(json, v);
  }
  const str = (k: string): string | undefined => {
    const v = values.get(k);
    return typeof v === "string" ? v : undefined;
  };
  if (str("configPath") === "") return "configPath must not be empty";
  if (str("binaryPath") === "") return "binaryPath must not be empty";
  if (str("serviceCluster") === "" && !values.has("tracingServiceName")) return "serviceCluster must not be empty";
  const drain = str("drainDuration");
  if (drain !== undefined) {
    const ns = goDuration(drain) ?? 0n;
    if (ns < 1_000_000n || ns % 1_000_000n !== 0n) return "drainDuration must be at least 1ms, in whole milliseconds";
    if (ns % 1_000_000_000n !== 0n) return "drainDuration must be whole seconds";
  }
  const discovery = str("discoveryAddress");
  if (discovery === "") return "discoveryAddress must not be empty";
  for (const k of ["discoveryAddress", "statsdUdpAddress", "envoyMetricsServiceAddress"]) {
    const a = str(k);
    const why = a ? addressProblem(k, a) : undefined;
    if (why) return why;
  }
  for (const k of ["envoyMetricsService", "envoyAccessLogService"]) {
    const service = values.get(k);
    const address = isMap(service) ? service.address : undefined;
    if (address !== undefined && address !== null && typeof address !== "string")
      return `${k}.address must be a string`;
    const why = address ? addressProblem(`${k}.address`, address) : undefined;
    if (why) return why;
  }
  for (const k of ["proxyAdminPort", "statusPort"]) {
    const port = values.has(k) ? jsonInteger(values.get(k), INT32_MIN, INT32_MAX) : undefined;
    if (port !== undefined && (port < 1 || port > 65535)) return `${k} must be a port from 1 to 65535`;
  }
  const auth = values.get("controlPlaneAuthPolicy");
  if (typeof auth === "number" && auth !== 0 && auth !== 1) return "controlPlaneAuthPolicy must be NONE or MUTUAL_TLS";
  const tracing = values.get("tracing");
  const privateKeyProvider = values.get("privateKeyProvider");
  const connectionSettings = values.get("connectionSettings");
  return (
    (isMap(tracing) ? tracingProblem(tracing) : undefined) ??
    (privateKeyProvider !== undefined ? privateKeyProviderProblem(privateKeyProvider) : undefined) ??
    (isMap(connectionSettings) ? connectionSettingsProblem(connectionSettings) : undefined)
  );
}

/**
 * The member of a oneof that jsonpb keeps: of those written (null is unset), the one declared
 * last (each set clears the one before); by its JSON name, with its value.
 */
function oneofMember(
  msg: Record<string, unknown>,
  members: readonly (readonly [json: string, proto: string])[],
): [string, unknown] | undefined {
  let kept: [string, unknown] | undefined;
  for (const [json, proto] of members) {
    const v = field(msg, json, proto);
    if (v !== undefined) kept = [json, v];
  }
  return kept;
}

const str = (msg: Record<string, unknown>, json: string, proto: string): string => {
  const v = field(msg, json, proto);
  return typeof v === "string" ? v : "";
};

/**
 * ValidateMeshConfigProxyConfig's tracing checks: the tracer's address (zipkin and datadog
 * with `$(HOST_IP)` read once as an IP; lightstep's also required, with its access token) and
 * the TLS settings (ValidateTLS without a namespace).
 */
function tracingProblem(tracing: Record<string, unknown>): string | undefined {
  const tracer = oneofMember(tracing, [
    ["zipkin", "zipkin"],
    ["lightstep", "lightstep"],
    ["datadog", "datadog"],
    ["stackdriver", "stackdriver"],
    ["openCensusAgent", "open_census_agent"],
  ]);
  if (tracer !== undefined && isMap(tracer[1])) {
    const [name, msg] = tracer;
    const address = str(msg, "address", "address");
    if (name === "lightstep") {
      if (address === "") return "tracing.lightstep.address is required";
      const why = addressProblem("tracing.lightstep.address", address);
      if (why) return why;
      if (str(msg, "accessToken", "access_token") === "") return "tracing.lightstep.accessToken is required";
    } else if (name === "zipkin" || name === "datadog") {
      const why = addressProblem(`tracing.${name}.address`, address.replace("$(HOST_IP)", "127.0.0.1"));
      if (why) return why;
    }
  }
  const tls = field(tracing, "tlsSettings", "tls_settings");
  if (isMap(tls)) {
    const why = tlsProblem(tls);
    if (why) return `tracing.tlsSettings: ${why}`;
  }
  // validateCustomTags refuses a nil tag, which jsonpb never makes: `customTags: {a: null}` is admitted.
  return undefined;
}

/** A field's proto name from its JSON name: `caCertificates` is `ca_certificates`. */
function protoName(json: string): string {
  return json.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The ClientTLSSettings modes by name and number: SIMPLE 1, MUTUAL 2. */
function tlsMode(v: unknown): number {
  if (typeof v === "number") return v;
  return v === "SIMPLE" ? 1 : v === "MUTUAL" ? 2 : v === "ISTIO_MUTUAL" ? 3 : 0;
}

/** ValidateTLS("", settings), as the agent's validation calls it for the tracer's TLS. */
function tlsProblem(tls: Record<string, unknown>): string | undefined {
  const mode = tlsMode(field(tls, "mode", "mode"));
  const credentialName = str(tls, "credentialName", "credential_name");
  const caCertificates = str(tls, "caCertificates", "ca_certificates");
  // An empty list is decoded as none (nil).
  const sansValue = field(tls, "subjectAltNames", "subject_alt_names");
  const sans = Array.isArray(sansValue) && sansValue.length === 0 ? undefined : sansValue;
  if (credentialName.startsWith("configmap://"))
    return "a configmap:// credentialName must be in the configuration's namespace, which a Pod's has none";
  const skip = field(tls, "insecureSkipVerify", "insecure_skip_verify");
  if (skip === true || skip === "true") {
    if (mode === 1 && (caCertificates !== "" || credentialName !== "" || sans !== undefined))
      return "insecureSkipVerify cannot be set with caCertificates, credentialName or subjectAltNames";
    if (mode === 2 && (caCertificates !== "" || sans !== undefined))
      return "insecureSkipVerify cannot be set with caCertificates or subjectAltNames";
  }
  if ((mode === 1 || mode === 2) && credentialName !== "") {
    const set = ["clientCertificate", "caCertificates", "privateKey", "caCrl"].some(
      (k) => str(tls, k, protoName(k)) !== "",
    );
    return set ? "credentialName cannot be set with client certificates, a CA certificate or a CA CRL" : undefined;
  }
  if (mode === 2) {
    if (str(tls, "clientCertificate", "client_certificate") === "") return "MUTUAL needs a clientCertificate";
    if (str(tls, "privateKey", "private_key") === "") return "MUTUAL needs a privateKey";
  }
  return undefined;
}

/** validatePrivateKeyProvider: cryptomb or qat, with a pollDelay that is not zero. */
function privateKeyProviderProblem(pkp: unknown): string | undefined {
  const provider = isMap(pkp)
    ? oneofMember(pkp, [
        ["cryptomb", "cryptomb"],
        ["qat", "qat"],
      ])
    : undefined;
  if (provider === undefined) return "privateKeyProvider needs cryptomb or qat";
  const [name, msg] = provider;
  const delay = isMap(msg) ? field(msg, "pollDelay", "poll_delay") : undefined;
  if (delay === undefined) return `privateKeyProvider.${name}.pollDelay is required`;
  if (typeof delay === "string" && goDuration(delay) === 0n)
    return `privateKeyProvider.${name}.pollDelay must not be zero`;
  return undefined;
}

/** validateConnectionSettings: limits and sizes in range, timeouts not negative. */
function connectionSettingsProblem(cs: Record<string, unknown>): string | undefined {
  const rules: [string, (n: number) => boolean, string][] = [
    ["listenerPerConnectionBufferLimitBytes", (n) => n >= 0, "must not be negative"],
    ["clusterPerConnectionBufferLimitBytes", (n) => n >= 0, "must not be negative"],
    ["httpMaxConcurrentStreams", (n) => n > 0, "must be positive"],
    ["http2InitialStreamWindowSize", (n) => n >= 65535, "must be at least 65535"],
    ["http2InitialConnectionWindowSize", (n) => n >= 65535, "must be at least 65535"],
    ["listenerConnectionLimit", (n) => n > 0, "must be positive"],
    ["globalDownstreamConnectionLimit", (n) => n > 0, "must be positive"],
  ];
  for (const [json, ok, why] of rules) {
    const v = field(cs, json, protoName(json));
    const n = v === undefined ? undefined : jsonInteger(v, INT32_MIN, INT32_MAX);
    if (n !== undefined && !ok(n)) return `connectionSettings.${json} ${why}`;
  }
  for (const json of [
    "httpIdleTimeout",
    "httpMaxConnectionDuration",
    "httpDrainTimeout",
    "httpRequestTimeout",
    "httpRequestHeadersTimeout",
    "httpStreamIdleTimeout",
    "httpMaxStreamDuration",
  ]) {
    const v = field(cs, json, protoName(json));
    if (typeof v === "string" && (goDuration(v) ?? 0n) < 0n) return `connectionSettings.${json} must not be negative`;
  }
  return undefined;
}

function findNonFinite(v: unknown): boolean {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === "number" && !Number.isFinite(x)) return true;
    // One at a time: a spread of a list's items overflows the call stack past ~100k of them.
    if (typeof x === "object" && x !== null) for (const y of Object.values(x)) stack.push(y);
  }
  return false;
}

/** Plain scalars as go-yaml reads them: values typed by YAML 1.1, keys as their text. */
function asGoYaml(doc: Document.Parsed): void {
  visit(doc, {
    Scalar(key, node) {
      if (node.type !== "PLAIN" || node.tag !== undefined || typeof node.source !== "string") return;
      if (key === "key") {
        node.value = yaml11Text(node.source);
        return;
      }
      const r = resolveYaml11(node.source);
      node.value = r.tag === "null" ? null : r.tag === "int" ? Number(r.value) : r.value;
    },
  });
}

/** The annotation's first YAML document, read as go-yaml reads it, within PROXY_CONFIG_LIMITS. */
function readAnnotation(annotation: string): unknown {
  // go-yaml reads the first document and ignores the rest.
  let documents = 0;
  const firstOnly = (doc: Document.Parsed): void => {
    if (documents++ > 0) doc.contents = null;
    else asGoYaml(doc);
  };
  return parseYamlDocuments(annotation, PROXY_CONFIG_LIMITS, firstOnly)[0];
}

/**
 * The Pod's ProxyConfig: the mesh's (baseFor) with the Pod's proxy.istio.io/config over it, as
 * istiod's webhook merges them (EffectiveProxyConfig). Throws an InjectionError naming the
 * annotation when Istio would refuse it.
 */
export function parseProxyConfig(annotation: string | undefined, config: Config): ProxyConfigOverlay {
  const { base, mode, empty } = baseFor(config);
  if (annotation === undefined || annotation.trim() === "") return empty;
  let parsed: unknown;
  try {
    parsed = readAnnotation(annotation);
  } catch (e) {
    if (e instanceof YamlLimitError) throw bad(annotation, `too large to read: it ${e.message}`);
    if (e instanceof YamlSyntaxError) throw bad(annotation, `not YAML or JSON: ${e.message}`);
    throw e;
  }
  if (parsed === null || parsed === undefined) return empty;
  if (!isMap(parsed))
    throw bad(annotation, 'must be a ProxyConfig map, e.g. {"holdApplicationUntilProxyStarts": true}');
  const why = proxyConfigProblem(parsed);
  if (why !== undefined) throw bad(annotation, why);
  const modeValue = field(parsed, "interceptionMode", "interception_mode");
  // An enum by number: 0, 1 and 2 are the modes; another number names no mode the proxy has.
  if (typeof modeValue === "number" && INTERCEPTION_MODE_NAMES[modeValue] === undefined)
    throw bad(annotation, `interceptionMode must be one of ${INTERCEPTION_MODE_NAMES.join(", ")}`);
  const warnings = unknownFieldWarnings(unknownProxyConfigFields(parsed), A.proxyConfig);
  return overlayOf(mergeInto(base, written(parsed)), mode, warnings);
}

/**
 * Why the config's proxyConfig (the mesh's ProxyConfig) is refused: what Istio refuses in the
 * annotation (proxyConfigProblem, an interceptionMode number that names no mode), and unknown
 * fields, each named with the closest known one (at most MAX_FIELD_WARNINGS, the rest counted).
 * istiod admits and drops an unknown field of its mesh ConfigMap; a config file names every key
 * it knows, so a misspelt field is refused here rather than dropped unseen (config import, which
 * reads Istio's ConfigMap, reports and leaves out what istiod would drop).
 */
export function meshProxyConfigProblems(parsed: Readonly<Record<string, unknown>>): { at: string; why: string }[] {
  const why = proxyConfigProblem(parsed);
  if (why !== undefined) return [{ at: "", why }];
  const mode = field(parsed, "interceptionMode", "interception_mode");
  if (typeof mode === "number" && INTERCEPTION_MODE_NAMES[mode] === undefined)
    return [{ at: "", why: `interceptionMode must be one of ${INTERCEPTION_MODE_NAMES.join(", ")}` }];
  const unknown = unknownProxyConfigFields(parsed);
  const out = unknown.named.map((f) => ({
    at: "",
    why: `unknown ProxyConfig field ${quote(f.path)}${f.closest === undefined ? "" : `; did you mean ${quote(f.closest)}?`}`,
  }));
  if (unknown.total > unknown.named.length)
    out.push({ at: "", why: `${unknown.total - unknown.named.length} more unknown ProxyConfig field(s)` });
  return out;
}

// --- Merging, as istiod does -----------------------------------------------------------------

/**
 * A ProxyConfig map's fields as jsonpb writes them (protoJson's values), by JSON name: what
 * istiod's mergeWithPrecedence passes from one layer to the next (protomarshal.ToYAML), so a
 * field at its zero value (an empty string, REDIRECT, a 0 that is no wrapper) is not passed on.
 */
function written(parsed: Readonly<Record<string, unknown>>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [json, proto, kind] of PROXY_CONFIG_FIELDS) {
    const v = field(parsed, json, proto);
    if (v === undefined) continue;
    const w = ONEOF.has(json) ? oneofValue(v) : topValue(json, kind, v);
    if (w !== undefined) out.set(json, w);
  }
  return out;
}

/** serviceCluster and tracingServiceName are a oneof (cluster_name): the one set is written, even at zero. */
const ONEOF: ReadonlySet<string> = new Set(["serviceCluster", "tracingServiceName"]);

function oneofValue(v: unknown): unknown {
  return typeof v === "number" ? (TRACING_SERVICE_NAMES[v] ?? v) : v;
}

/** The proxyHeaders fields correctProxyHeaders keeps from the layer below when the one above leaves them unset. */
const KEPT_PROXY_HEADERS = ["forwardedClientCert", "requestId", "attemptCount", "server", "envoyDebugHeaders"];

/**
 * `over` merged onto `under` as mesh.MergeProxyConfig does (jsonpb into the message below):
 * each field `over` writes replaces the one below (a oneof member clears the other); proxyMetadata
 * maps are merged key by key (mergeMap); proxyHeaders keeps the fields below that `over`'s leaves
 * unset (correctProxyHeaders). Neither map is changed.
 */
function mergeInto(under: ReadonlyMap<string, unknown>, over: ReadonlyMap<string, unknown>): Map<string, unknown> {
  const out = new Map(under);
  for (const [json, v] of over) {
    if (ONEOF.has(json)) for (const member of ONEOF) out.delete(member);
    const below = out.get(json);
    if (json === "proxyMetadata" && isMap(below) && isMap(v)) {
      out.set(json, { ...below, ...v });
    } else if (json === "proxyHeaders" && isMap(below) && isMap(v)) {
      const headers: Record<string, unknown> = { ...v };
      for (const k of KEPT_PROXY_HEADERS) if (headers[k] === undefined && below[k] !== undefined) headers[k] = below[k];
      out.set(json, headers);
    } else {
      out.set(json, v);
    }
  }
  return out;
}

/** What the engine reads of a merged ProxyConfig (its fields as written), and its PROXY_CONFIG. */
function overlayOf(
  merged: ReadonlyMap<string, unknown>,
  meshMode: InterceptionMode | undefined,
  warnings: readonly string[],
): ProxyConfigOverlay {
  const hold = merged.get("holdApplicationUntilProxyStarts");
  const mode = INTERCEPTION_MODES.find((m) => m === merged.get("interceptionMode")) ?? meshMode;
  const meta = merged.get("proxyMetadata");
  const proxyMetadata: Record<string, string> = {};
  if (isMap(meta)) for (const [k, v] of Object.entries(meta)) ownSet(proxyMetadata, k, typeof v === "string" ? v : "");
  return {
    json: `${protoJson(Object.fromEntries(merged))}\n`,
    ...(typeof hold === "boolean" ? { holdApplicationUntilProxyStarts: hold } : {}),
    ...(mode !== undefined ? { interceptionMode: mode } : {}),
    proxyMetadata,
    warnings,
  };
}

// --- Unknown fields: Istio admits and drops them, so they are warned about ----------------

/** Unknown fields named per ProxyConfig; the rest are counted in one more warning. */
export const MAX_FIELD_WARNINGS = 4;
/**
 * How much of a map key (a custom tag's name) a field path keeps: enough to name the tag, and
 * little enough that the quoted path (quote()'s 64 characters) still ends in the unknown field.
 * With it, a warning fits the 256 characters the API server keeps of one.
 */
const MAP_KEY_CHARS = 16;

/** Each message's fields (proxy-config-schema.ts) by JSON name and by proto name. */
const FIELDS_BY_NAME: ReadonlyMap<string, ReadonlyMap<string, SchemaKind>> = new Map(
  [...MESSAGES].map(([message, fields]) => [
    message,
    new Map(
      fields.flatMap(([json, proto, kind]): [string, SchemaKind][] => [
        [json, kind],
        [proto, kind],
      ]),
    ),
  ]),
);

/** An unknown field: its path as written (`tracing.zipkn`) and the closest known one's. */
export interface UnknownField {
  readonly path: string;
  readonly closest?: string;
}

export interface UnknownFields {
  /** The first MAX_FIELD_WARNINGS found, in document order. */
  readonly named: readonly UnknownField[];
  /** How many there are in all. */
  readonly total: number;
}

/**
 * The fields of a ProxyConfig map that its message in proxy.proto does not have, at any depth:
 * in nested messages, list items (`readinessProbe.httpGet.httpHeaders[0].nme`) and map values
 * (`tracing.customTags.<name>.literl`). A known field is matched as jsonpb matches it: by its
 * JSON or its proto name, letter case kept. A value of another type is not looked into (it is
 * refused, or admitted and dropped, elsewhere). One pass over what was parsed, within
 * PROXY_CONFIG_LIMITS; names compared only for the first MAX_FIELD_WARNINGS.
 */
export function unknownProxyConfigFields(parsed: unknown): UnknownFields {
  const named: UnknownField[] = [];
  let total = 0;
  const visit = (kind: SchemaKind, v: unknown, path: string): void => {
    if (typeof kind !== "object" || "enum" in kind) return;
    if ("list" in kind) {
      if (Array.isArray(v)) for (const [i, item] of v.entries()) visit(kind.list, item, `${path}[${i}]`);
      return;
    }
    if ("map" in kind) {
      if (isMap(v))
        for (const [k, item] of Object.entries(v)) visit(kind.map, item, `${path}.${clip(k, MAP_KEY_CHARS)}`);
      return;
    }
    if (!isMap(v)) return;
    const fields = FIELDS_BY_NAME.get(kind.message);
    for (const [k, item] of Object.entries(v)) {
      const at = path === "" ? k : `${path}.${k}`;
      const fieldKind = fields?.get(k);
      if (fieldKind !== undefined) {
        visit(fieldKind, item, at);
        continue;
      }
      total++;
      if (named.length >= MAX_FIELD_WARNINGS) continue;
      // The JSON or proto name closest to it, as annotation-keys.ts finds the closest annotation.
      const closest = closestName(k, fields?.keys() ?? []);
      named.push(
        closest === undefined ? { path: at } : { path: at, closest: path === "" ? closest : `${path}.${closest}` },
      );
    }
  };
  visit({ message: "ProxyConfig" }, parsed, "");
  return { named, total };
}

/**
 * A ProxyConfig map without its unknown fields (unknownProxyConfigFields), at any depth: what
 * istiod keeps of it (jsonpb with AllowUnknownFields). Values of another type are kept, for
 * proxyConfigProblem to refuse. Written in one order whatever the text's: each message's fields
 * in proxy.proto's, a map's keys sorted (as Go writes a map). Depth is the parsed document's,
 * which its reader bounds.
 */
export function knownProxyConfigFields(parsed: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const keep = (kind: SchemaKind, v: unknown): unknown => {
    if (typeof kind !== "object" || "enum" in kind) return v;
    if ("list" in kind) return Array.isArray(v) ? v.map((item: unknown) => keep(kind.list, item)) : v;
    if ("map" in kind) {
      if (!isMap(v)) return v;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) ownSet(out, k, keep(kind.map, v[k]));
      return out;
    }
    if (!isMap(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [json, proto, fieldKind] of MESSAGES.get(kind.message) ?? []) {
      for (const k of json === proto ? [json] : [json, proto])
        if (Object.hasOwn(v, k)) ownSet(out, k, keep(fieldKind, v[k]));
    }
    return out;
  };
  const kept = keep({ message: "ProxyConfig" }, parsed);
  return isMap(kept) ? kept : {};
}

/** Sets an own property, even one named __proto__. */
function ownSet(m: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Warnings naming the unknown fields of a ProxyConfig given `where` (the annotation, a config key). */
export function unknownFieldWarnings(found: UnknownFields, where: string): string[] {
  const out = found.named.map(
    (f) =>
      `unknown ProxyConfig field ${quote(f.path)} in ${where} is ignored${f.closest === undefined ? "" : `; did you mean ${quote(f.closest)}?`}`,
  );
  if (found.total > found.named.length)
    out.push(`${found.total - found.named.length} more unknown ProxyConfig field(s) in ${where} are ignored`);
  return out;
}

/**
 * Warnings for the unknown fields of a Pod's proxy.istio.io/config annotation. None when the
 * annotation cannot be read: parseProxyConfig refuses it then, saying why (a warning never
 * refuses, nor fails, a Pod).
 */
export function proxyConfigWarnings(annotations: Readonly<Record<string, string>> | undefined): string[] {
  const annotation = own(annotations, A.proxyConfig);
  if (annotation === undefined || annotation.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = readAnnotation(annotation);
  } catch {
    return [];
  }
  return unknownFieldWarnings(unknownProxyConfigFields(parsed), A.proxyConfig);
}
