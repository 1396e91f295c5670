// Validation of the annotations whose values Istio's injector checks (its validate.go):
// an invalid value refuses the Pod, with a message naming the annotation and the value.
import { isIP } from "node:net";
import { A } from "./annotations.js";
import { InjectionError } from "./types.js";
import { checkQuantity } from "./quantity.js";
import { quote } from "./quote.js";

function invalid(key: string, value: string, why: string): InjectionError {
  return new InjectionError(
    "ERR_INVALID_ANNOTATION",
    key,
    `invalid annotation ${key}=${quote(value)}: ${why}`,
  );
}

function isCidr(s: string): boolean {
  const slash = s.indexOf("/");
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

function cidrList(key: string, value: string, wildcard: boolean): void {
  if (value === "" || (wildcard && value === "*")) return;
  for (const part of value.split(",")) {
    const c = part.trim();
    if (!isCidr(c)) throw invalid(key, value, `${quote(c)} is not a CIDR (for example 10.0.0.0/8)`);
  }
}

function portList(key: string, value: string, wildcard: boolean): void {
  const v = value.trim();
  if (v === "" || (wildcard && v === "*")) return;
  for (const part of v.split(",")) {
    const p = part.trim();
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
      throw invalid(key, value, `${quote(p)} is not a port number (1-65535)`);
    }
  }
}

function uint(key: string, value: string, max = 0xffffffff): void {
  if (!/^\d+$/.test(value.trim()) || Number(value) > max) {
    throw invalid(key, value, `must be a whole number from 0 to ${max}`);
  }
}

function bool(key: string, value: string): void {
  if (!/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(value)) {
    throw invalid(key, value, `must be "true" or "false"`);
  }
}

function interfaces(key: string, value: string): void {
  for (const part of value.split(",")) {
    const name = part.trim();
    if (name !== "" && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(name)) {
      throw invalid(key, value, `${quote(name)} is not a network interface name`);
    }
  }
}

const LOG_LEVELS = new Set(["trace", "debug", "info", "warning", "warn", "error", "critical", "off"]);

function logLevel(key: string, value: string): void {
  if (!LOG_LEVELS.has(value)) throw invalid(key, value, `must be one of ${[...LOG_LEVELS].join(", ")}`);
}

function scopedLevels(key: string, value: string): void {
  for (const part of value.split(",")) {
    const [scope, level, ...rest] = part.split(":");
    if (!scope || !level || rest.length > 0 || !LOG_LEVELS.has(level)) {
      throw invalid(key, value, `${quote(part)} is not <scope>:<level> with a level of ${[...LOG_LEVELS].join(", ")}`);
    }
  }
}

function quantity(key: string, value: string): void {
  const q = checkQuantity(value, "milli");
  if (!q.ok) throw invalid(key, value, q.reason);
  // The API server's Pod validation: requests and limits must be greater than or equal to 0.
  if (q.negative) throw invalid(key, value, "must not be negative");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function jsonMap(key: string, value: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    // V8's message quotes a few characters of the value at most.
    throw invalid(key, value, `is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(parsed)) throw invalid(key, value, "must be a JSON object of name to definition");
  for (const name of Object.keys(parsed)) {
    if (!isObject(parsed[name])) throw invalid(key, value, `${quote(name)} must be a JSON object (its definition)`);
  }
}

// A Map, not an object: annotation names are user data, and `__proto__` or `constructor` must
// find no check rather than Object.prototype's members.
const CHECKS: ReadonlyMap<string, (key: string, value: string) => void> = new Map(Object.entries({
  [A.includeOutboundIPRanges]: (k, v) => cidrList(k, v, true),
  [A.excludeOutboundIPRanges]: (k, v) => cidrList(k, v, false),
  [A.includeInboundPorts]: (k, v) => portList(k, v, true),
  [A.excludeInboundPorts]: (k, v) => portList(k, v, false),
  [A.includeOutboundPorts]: (k, v) => portList(k, v, false),
  [A.excludeOutboundPorts]: (k, v) => portList(k, v, false),
  [A.excludeInterfaces]: interfaces,
  [A.kubevirtInterfaces]: interfaces,
  [A.rerouteVirtualInterfaces]: interfaces,
  [A.statusPort]: (k, v) => uint(k, v, 65535),
  [A.readinessInitialDelay]: (k, v) => uint(k, v),
  [A.readinessPeriod]: (k, v) => uint(k, v),
  [A.readinessFailureThreshold]: (k, v) => uint(k, v),
  [A.readinessApplicationPorts]: (k, v) => portList(k, v, true),
  [A.interceptionMode]: (k, v) => {
    if (v !== "REDIRECT" && v !== "TPROXY" && v !== "NONE") throw invalid(k, v, "must be REDIRECT, TPROXY or NONE");
  },
  [A.rewriteProbes]: bool,
  [A.nativeSidecar]: bool,
  [A.mergeMetrics]: bool,
  [A.capNetBindService]: bool,
  [A.logLevel]: logLevel,
  [A.componentLogLevel]: scopedLevels,
  [A.agentLogLevel]: scopedLevels,
  [A.proxyCPU]: quantity,
  [A.proxyMemory]: quantity,
  [A.proxyCPULimit]: quantity,
  [A.proxyMemoryLimit]: quantity,
  [A.userVolume]: jsonMap,
  [A.userVolumeMount]: jsonMap,
}));

/** Throws an InjectionError for the first annotation whose value Istio would refuse. */
export function validateAnnotations(annotations: Readonly<Record<string, string>> | undefined): void {
  if (!annotations) return;
  for (const key of Object.keys(annotations)) {
    const check = CHECKS.get(key);
    const value = annotations[key];
    if (check && value !== undefined) check(key, value);
  }
}

/**
 * Values that are accepted but deprecated or without effect, said back to the user (as
 * AdmissionReview warnings, which kubectl prints; each well under 120 characters).
 */
export function annotationWarnings(annotations: Readonly<Record<string, string>>, native: boolean, holdRequested: boolean): string[] {
  const out: string[] = [];
  if (annotations[A.kubevirtInterfaces] !== undefined) {
    out.push(
      annotations[A.rerouteVirtualInterfaces] !== undefined
        ? `${A.kubevirtInterfaces} ignored: ${A.rerouteVirtualInterfaces} is set`
        : `${A.kubevirtInterfaces} is deprecated: use ${A.rerouteVirtualInterfaces}`,
    );
  }
  if (annotations[A.readinessApplicationPorts] !== undefined) out.push(`${A.readinessApplicationPorts} has no effect any more: ignored`);
  const image = annotations[A.proxyImage];
  if (image !== undefined && !image.includes("/")) out.push(`${A.proxyImage}=${quote(image, 40)} is not a full image name: ignored`);
  if (native && holdRequested) out.push("holdApplicationUntilProxyStarts has no effect with native sidecars: the proxy starts first anyway");
  return out;
}

/**
 * Why Istio's check for annotation `key` refuses `value` (the reason alone, without the
 * annotation and the value), or undefined when it accepts it or does not check that key.
 * The config loader runs the same checks on the config keys that set the same things.
 */
export function annotationValueProblem(key: string, value: string): string | undefined {
  const check = CHECKS.get(key);
  if (check === undefined) return undefined;
  try {
    check(key, value);
    return undefined;
  } catch (e) {
    if (!(e instanceof InjectionError)) throw e;
    const prefix = `invalid annotation ${key}=${quote(value)}: `;
    return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  }
}
