// The Pod annotations whose values the injector checks, in one table (ROWS): for each, what
// Istio's injector refuses, and what it accepts but we know is ignored or breaks the proxy.
//
// The rule: we refuse exactly what Istio's injector (istio/istio 86c9f01) refuses, and nothing
// it admits. A refusal comes from one of two places in Istio:
// - its validation table (pkg/kube/inject/validate.go, AnnotationValidation), each row of which
//   is matched here check for check: Go's strconv.ParseUint/ParseBool, netip.ParsePrefix,
//   strings.TrimSpace only where Istio trims, net.ValidateInterfaceNames;
// - rendering its template, which fails where an annotation's value makes the template's YAML
//   invalid (a value placed raw inside "…", or a userVolume that is not a JSON map or list,
//   where a template ranges over it), names a template that does not exist (template.ts names
//   the unknown ones), or makes its code fail (a sidecar.istio.io/status whose container lists
//   are not lists of names); or decoding the Pod it renders (a userVolume entry Go cannot read
//   into a Volume). The user volumes are checked where a template writes them
//   (template-parts.ts): gateway and grpc-simple never read them.
// Istio runs the first for every annotation before the second, so a Pod wrong both ways is
// refused naming what its validation table refuses (Row.refuse, then Row.refuseRendering).
// Everything else Istio admits, so we do too; where we know the value is ignored or keeps the
// proxy from starting, the Pod gets a warning instead (under 120 characters each).
//
// A proxy resource the API server will refuse (negative) or store as another value is
// admitted, as Istio admits it, with a warning.
import { isIP } from "node:net";
import { A } from "./annotations.js";
import { InjectionError } from "./types.js";
import { checkQuantity, goParsesQuantity } from "./quantity.js";
import { quote, QUOTE_MAX_CHARS } from "./quote.js";
import { isMap, jsonMap, own } from "./own.js";
import { quotedProblem, readDoubleQuoted } from "./yaml-quoted.js";

type Annotations = Readonly<Record<string, string>>;

const NOT_A_QUANTITY = "is not a Kubernetes quantity (for example 100m, 1Gi)";

type Check = (value: string, get: (key: string) => string | undefined) => string | undefined;

interface Row {
  /**
   * Why Istio's validation table refuses `value` (the reason alone), or undefined when it
   * admits it. `get` reads another annotation of the Pod.
   */
  readonly refuse?: Check;
  /**
   * Why rendering Istio's template with `value` fails, or decoding the Pod it renders; checked
   * only once every annotation has passed `refuse`: Istio validates them all before it renders,
   * so when both kinds are wrong it names the validation's.
   */
  readonly refuseRendering?: Check;
  /**
   * refuseRendering applies only where the sidecar template writes the value (istio-init's
   * arguments, CNI's annotations): checked there for a Pod (interception.ts).
   */
  readonly initOnly?: true;
  /**
   * refuseRendering applies only where a template writes the value: the user volumes, which
   * the sidecar and grpc-agent templates range over and gateway and grpc-simple never read.
   * Checked there for a Pod (template-parts.ts, userEntries).
   */
  readonly whereWritten?: true;
  /** What to tell the user about a value Istio admits but ignores, or undefined. */
  readonly warn?: (key: string, value: string, all: Annotations) => string | undefined;
}

// --- Go's readings ---------------------------------------------------------------------

/** Go's unicode.IsSpace set, which strings.TrimSpace trims (String.trim also trims the BOM, not NEL). */
const GO_SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const GO_TRIM = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, "gu");

export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** strconv.ParseUint(s, 10, bits): ASCII digits only (no sign, no space), within range. */
function isUint(s: string, bits: 16 | 32): boolean {
  if (!/^[0-9]+$/.test(s)) return false;
  const digits = s.replace(/^0+(?=.)/, "");
  return digits.length <= 10 && Number(digits) <= 2 ** bits - 1;
}

/** strconv.ParseBool. */
const GO_BOOL = /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;

/** netip.ParsePrefix: an address without a zone, "/", and a prefix length without leading zeros. */
function isPrefix(s: string): boolean {
  const slash = s.lastIndexOf("/");
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  const family = ip.includes("%") ? 0 : isIP(ip);
  if (family === 0 || !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

// --- Istio's validation table (validate.go) --------------------------------------------

/** validateCIDRList: every comma-separated part a prefix, exactly (no spaces, no empty part). */
function cidrList(value: string): string | undefined {
  if (value === "") return undefined;
  for (const part of value.split(",")) {
    if (!isPrefix(part)) return `${quote(part)} is not a CIDR (for example 10.0.0.0/8)`;
  }
  return undefined;
}

/** parsePorts: the whole trimmed, then each comma-separated part trimmed, each 0 to 65535. */
function portList(value: string): string | undefined {
  const v = goTrimSpace(value);
  if (v === "") return undefined;
  for (const part of v.split(",")) {
    if (!isUint(goTrimSpace(part), 16)) return `${quote(part)} is not a port number (0-65535)`;
  }
  return undefined;
}

/** net.ValidateInterfaceNames. */
function interfaceNames(value: string): string | undefined {
  if (value === "") return undefined;
  for (const part of value.split(",")) {
    const name = goTrimSpace(part);
    if (name === "") return "has an empty interface name";
    if (name.length > 15) return `interface name ${quote(name)} is longer than 15 characters`;
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(name)) {
      return `${quote(name)} is not an interface name (a letter, then letters, digits, '_', '.' or '-')`;
    }
  }
  return undefined;
}

function uint32(value: string): string | undefined {
  return isUint(value, 32) ? undefined : "must be a whole number from 0 to 4294967295";
}

function goBool(value: string): string | undefined {
  return GO_BOOL.test(value) ? undefined : `must be "true" or "false"`;
}

/** validateResourceQuantity: no control character, and resource.ParseQuantity, which trims nothing. */
function quantity(value: string): string | undefined {
  if (goParsesQuantity(value)) return undefined;
  if (goTrimSpace(value) !== value) return "is not a Kubernetes quantity: it has white space around it";
  const q = checkQuantity(value, "milli");
  return !q.ok && q.reason.startsWith(NOT_A_QUANTITY) ? q.reason : NOT_A_QUANTITY;
}

/**
 * A quantity Istio admits but the API server refuses in a container (a negative one), or does
 * not store as written (past the bounds quantity.ts reads within: it is written as given).
 */
function quantityWarning(key: string, value: string): string | undefined {
  if (!goParsesQuantity(value)) return undefined;
  const q = checkQuantity(value, "milli");
  if (!q.ok) return said(key, value, " is written as given: the API server may store another value");
  return q.negative ? said(key, value, " is negative: the API server will refuse the Pod") : undefined;
}

// --- What makes Istio's template fail --------------------------------------------------

/**
 * The template ranges over the JSON (fromJSON): a map (each key a name) or a list (each index
 * a name), or null (nothing); anything else, or text that is not JSON, fails the template.
 * Each entry is written under its name as a YAML map, so each must be a non-empty JSON object.
 */
export function userEntriesProblem(value: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    // V8's message quotes a few characters of the value at most.
    return `is not JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (parsed === null) return undefined;
  if (typeof parsed !== "object") return "must be a JSON object of name to definition (or a list of definitions)";
  for (const [name, entry] of Object.entries(parsed)) {
    // An empty one is written as "{}" under its name, which is no YAML map entry.
    if (!isMap(entry) || Object.keys(entry).length === 0)
      return `${quote(name)} must be a non-empty JSON object (its definition)`;
  }
  return undefined;
}

/**
 * A previous injection's status: Istio reads its containers and initContainers as lists of
 * names and fails (a panic, so the Pod is refused) on anything else; text that is not a JSON
 * object, and its other fields, it ignores.
 */
function injectionStatus(value: string): string | undefined {
  const parsed = jsonMap(value);
  if (!parsed) return undefined;
  for (const key of ["containers", "initContainers"]) {
    const names = parsed[key];
    if (names !== undefined && names !== null && !(Array.isArray(names) && names.every((n) => typeof n === "string"))) {
      return `${key} must be a list of container names`;
    }
  }
  return undefined;
}

/** selectTemplates: every comma-separated name, trimmed, must name a template; "" names none. */
function templateNames(value: string): string | undefined {
  return value.split(",").some((n) => goTrimSpace(n) === "") ? "has an empty template name" : undefined;
}

// --- Values Istio admits and we warn about ---------------------------------------------

const WARNING_MAX_CHARS = 120;

/**
 * `<key>="<value>"<rest>`, the value quoted to as much as keeps the warning within 120
 * characters (a cut value costs `…" (N characters)`, 22 characters at most).
 */
function said(key: string, value: string, rest: string): string {
  const room = WARNING_MAX_CHARS - key.length - rest.length - 1;
  // Escapes ("\n", "\u0001") make a quoted value longer than its characters: halve until it fits.
  for (let chars = Math.min(room - 2, QUOTE_MAX_CHARS); chars > 4; chars = Math.floor(chars / 2)) {
    const q = quote(value, chars);
    if (q.length <= room) return `${key}=${q}${rest}`;
  }
  return `${key}${rest}`;
}

/** Envoy's log levels (its -l and --component-log-level), which pilot-agent passes on. */
export const ENVOY_LOG_LEVELS = ["trace", "debug", "info", "warning", "warn", "error", "critical", "off"] as const;
/** pilot-agent's own levels (--log_output_level, [scope:]level,…). */
export const AGENT_LOG_LEVELS = ["debug", "info", "warn", "error", "fatal", "none"] as const;

const ENVOY_LEVELS: ReadonlySet<string> = new Set(ENVOY_LOG_LEVELS);
const AGENT_LEVELS: ReadonlySet<string> = new Set(AGENT_LOG_LEVELS);

function envoyLevel(key: string, value: string): string | undefined {
  return ENVOY_LEVELS.has(value) ? undefined : said(key, value, " is no Envoy log level: the proxy may not start");
}

function envoyComponentLevels(key: string, value: string): string | undefined {
  const ok = value.split(",").every((part) => {
    const [scope, level, ...rest] = part.split(":");
    return scope !== undefined && scope !== "" && level !== undefined && rest.length === 0 && ENVOY_LEVELS.has(level);
  });
  return ok ? undefined : said(key, value, " is not <component>:<level>,…: Envoy may not start");
}

function agentLevels(key: string, value: string): string | undefined {
  const ok = value.split(",").every((part) => {
    const pieces = part.split(":");
    const level = pieces.length === 1 ? pieces[0] : pieces.length === 2 ? pieces[1] : undefined;
    return level !== undefined && AGENT_LEVELS.has(level);
  });
  return ok ? undefined : said(key, value, " is not [<scope>:]<level>,…: pilot-agent may not start");
}

/** A value written between double quotes into istio-init alone. */
const IN_INIT = { refuseRendering: quotedProblem, initOnly: true } as const;

// A Map, not an object: annotation names are user data, and `__proto__` or `constructor` must
// find no row rather than Object.prototype's members.
const ROWS: ReadonlyMap<string, Row> = new Map<string, Row>([
  // validate.go's table.
  [
    A.interceptionMode,
    {
      refuse: (v) =>
        v === "REDIRECT" || v === "TPROXY" || v === "NONE" ? undefined : "must be REDIRECT, TPROXY or NONE",
    },
  ],
  [A.statusPort, { refuse: (v) => (isUint(goTrimSpace(v), 16) ? undefined : "must be a port number (0-65535)") }],
  // Past int32, where a template writes them into a probe: template-parts.ts, probeSeconds.
  [A.readinessInitialDelay, { refuse: uint32 }],
  [A.readinessPeriod, { refuse: uint32 }],
  [A.readinessFailureThreshold, { refuse: uint32 }],
  // Those written into istio-init between double quotes also fail its YAML where they cannot be
  // held there (validation trims some of them): for a Pod, checked where written
  // (interception.ts), the excluded inbound ports too, as written.
  [A.includeOutboundIPRanges, { refuse: (v) => (v === "*" ? undefined : cidrList(v)), ...IN_INIT }],
  [A.excludeOutboundIPRanges, { refuse: cidrList, ...IN_INIT }],
  [A.includeInboundPorts, { refuse: (v) => (v === "*" ? undefined : portList(v)), ...IN_INIT }],
  [A.excludeInboundPorts, { refuse: portList }],
  [A.excludeOutboundPorts, { refuse: portList, ...IN_INIT }],
  [A.excludeInterfaces, { refuse: interfaceNames, ...IN_INIT }],
  [
    A.kubevirtInterfaces,
    {
      refuse: interfaceNames,
      // Written only when istio.io/reroute-virtual-interfaces is not.
      refuseRendering: (v, get) => (get(A.rerouteVirtualInterfaces) !== undefined ? undefined : quotedProblem(v)),
      initOnly: true,
      warn: (k, _v, all) =>
        all[A.rerouteVirtualInterfaces] !== undefined
          ? `${k} ignored: ${A.rerouteVirtualInterfaces} is set`
          : `${k} is deprecated: use ${A.rerouteVirtualInterfaces}`,
    },
  ],
  [A.rerouteVirtualInterfaces, { refuse: interfaceNames, ...IN_INIT }],
  [A.mergeMetrics, { refuse: goBool }],
  [A.proxyCPU, { refuse: quantity, warn: quantityWarning }],
  [A.proxyMemory, { refuse: quantity, warn: quantityWarning }],
  [A.proxyCPULimit, { refuse: quantity, warn: quantityWarning }],
  [A.proxyMemoryLimit, { refuse: quantity, warn: quantityWarning }],
  // proxy.istio.io/config is the table's last row: proxy-config.ts reads and checks it.

  // The template.
  [
    A.includeOutboundPorts,
    {
      ...IN_INIT,
      warn: (k, v) => (portList(v) === undefined ? undefined : said(k, v, " is not a port list: istio-init may fail")),
    },
  ],
  [
    A.proxyImageType,
    { refuseRendering: (v, get) => (get(A.proxyImage)?.includes("/") ? undefined : quotedProblem(v)) },
  ],
  [A.userVolume, { refuseRendering: userEntriesProblem, whereWritten: true }],
  [A.userVolumeMount, { refuseRendering: userEntriesProblem, whereWritten: true }],
  [A.status, { refuseRendering: injectionStatus }],
  [A.templates, { refuseRendering: templateNames }],

  // Admitted, with what we know of the value.
  [A.rewriteProbes, { warn: (k, v) => (GO_BOOL.test(v) ? undefined : said(k, v, " is not true or false: ignored")) }],
  [
    A.nativeSidecar,
    {
      warn: (k, v) =>
        v === "true" || v === "false"
          ? undefined
          : v === ""
            ? `${k} is empty: ignored`
            : said(k, v, ` reads as "true": only "false" turns it off`),
    },
  ],
  [
    A.capNetBindService,
    { warn: (k, v) => (v === "true" || v === "false" ? undefined : said(k, v, ` is not "true": ignored`)) },
  ],
  [A.logLevel, { warn: envoyLevel }],
  [A.componentLogLevel, { warn: envoyComponentLevels }],
  [A.agentLogLevel, { warn: agentLevels }],
  [A.readinessApplicationPorts, { warn: (k) => `${k} has no effect any more: ignored` }],
  [A.proxyImage, { warn: (k, v) => (v.includes("/") ? undefined : said(k, v, " is not a full image name: ignored")) }],
]);

/** The rows that warn, in the table's order, listed once (not an entry array per row per review). */
const WARN_ROWS: readonly { readonly key: string; readonly warn: NonNullable<Row["warn"]> }[] = [...ROWS].flatMap(
  ([key, row]) => (row.warn === undefined ? [] : [{ key, warn: row.warn }]),
);

/** The refusal of annotation `key`'s `value`, for `why` (the reason alone). */
export function invalidAnnotation(key: string, value: string, why: string): InjectionError {
  return new InjectionError("ERR_INVALID_ANNOTATION", key, `invalid annotation ${key}=${quote(value)}: ${why}`);
}

/**
 * `value` as the template's YAML reads it, written raw between double quotes (yaml-quoted.ts);
 * where that fails, the refusal of annotation `key` (shown as `shown`), its reason after `what`.
 */
export function readInQuotes(key: string, shown: string, value: string, what = ""): string {
  const read = readDoubleQuoted(value);
  if (!read.ok) throw invalidAnnotation(key, shown, `${what}${read.why}`);
  return read.value;
}

/**
 * Throws an InjectionError for the first annotation whose value Istio would refuse. The checks
 * of values written into istio-init alone (initOnly) are left, with `deferInitOnly`, to where
 * the engine writes them (interception.ts: only the sidecar template renders istio-init, and
 * only when the interception mode is not NONE, or CNI's annotations); without it (a value
 * checked alone, the config's) they are made unless the Pod's own interception-mode annotation
 * is NONE. So are those of the user volumes (whereWritten), to the templates that write them.
 */
export function validateAnnotations(annotations: Annotations | undefined, deferInitOnly = false): void {
  if (!annotations) return;
  // Read where a check needs another annotation: no copy of the Pod's annotations (which may be
  // hundreds, 256 KiB) for the one or two keys a check reads.
  const get = (key: string): string | undefined => own(annotations, key);
  // The rendering checks after every validation, as Istio runs them: the few annotations that
  // have one (the table's keys, each once) are kept for then, not read again.
  const rendering: [key: string, value: string, check: Check][] = [];
  for (const key of Object.keys(annotations)) {
    const row = ROWS.get(key);
    if (row === undefined) continue;
    const value = annotations[key];
    if (value === undefined) continue;
    const why = row.refuse?.(value, get);
    if (why !== undefined) throw invalidAnnotation(key, value, why);
    if (row.refuseRendering === undefined) continue;
    if (row.initOnly === true && (deferInitOnly || get(A.interceptionMode) === "NONE")) continue;
    if (row.whereWritten === true && deferInitOnly) continue;
    rendering.push([key, value, row.refuseRendering]);
  }
  for (const [key, value, check] of rendering) {
    const why = check(value, get);
    if (why !== undefined) throw invalidAnnotation(key, value, why);
  }
}

/**
 * Values that are accepted but deprecated, ignored or without effect, said back to the user
 * (as AdmissionReview warnings, which kubectl prints; each under 120 characters).
 */
export function annotationWarnings(annotations: Annotations, native: boolean, holdRequested: boolean): string[] {
  const out: string[] = [];
  for (const { key, warn } of WARN_ROWS) {
    const value = annotations[key];
    if (value === undefined) continue;
    const w = warn(key, value, annotations);
    if (w !== undefined) out.push(w);
  }
  if (native && holdRequested)
    out.push("holdApplicationUntilProxyStarts has no effect with native sidecars: the proxy starts first anyway");
  return out;
}

/**
 * Why Istio's check for annotation `key` refuses `value` (the reason alone, without the
 * annotation and the value), or undefined when it admits it or does not check that key.
 * The config loader runs the same checks on the config keys that set the same things.
 */
export function annotationValueProblem(key: string, value: string): string | undefined {
  const row = ROWS.get(key);
  return row?.refuse?.(value, () => undefined) ?? row?.refuseRendering?.(value, () => undefined);
}
