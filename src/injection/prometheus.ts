// Prometheus metrics merge (Istio's applyPrometheusMerge): the agent serves the app's metrics
// merged with Envoy's on the status port, so the Pod's prometheus.io/* annotations (and
// prometheus.istio.io/scrape-targets) are pointed there and the originals handed to the agent
// in ISTIO_PROMETHEUS_ANNOTATIONS, as {"scrape","path","port"[,"targets"]}, written only when
// the app set at least one of them to something: an env of empty values would have the agent
// scrape the app at port "". With scrape-targets, port and path are the first target's, for
// agents that read only those. Every port the agent would scrape is checked: a number in
// 1..65535, not the status port itself, not one of the sidecar's own ports.
// Independently of the merge, an istio-proxy with ENVOY_SECURE_MERGED_METRICS_PORT set
// announces it in prometheus.istio.io/secure-port, unless the Pod says it already.
import type { Config } from "../config/types.js";
import { A } from "./annotations.js";
import { PORT as ISTIO_PORT } from "./istio.js";
import { isMap, jsonMap, own } from "./own.js";
import type { MapEdit } from "./map-edit.js";
import { proxyConfigFields, type Params } from "./params.js";
import { appendSidecarEnv, hasSidecar, sidecarEnv, type ContainerLists } from "./placement.js";
import { quote } from "./quote.js";
import { InjectionError } from "./types.js";

export const PROMETHEUS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS";
export const MERGED_METRICS_PATH = "/stats/prometheus";
export const SCRAPE_TARGETS = "prometheus.istio.io/scrape-targets";
export const SECURE_PORT = "prometheus.istio.io/secure-port";
export const SECURE_PORT_ENV = "ENVOY_SECURE_MERGED_METRICS_PORT";

/** The sidecar's own ports (Istio's istioReservedPorts), with why: none is the app's metrics. */
const RESERVED_PORTS: ReadonlyMap<string, string> = new Map([
  [String(ISTIO_PORT.admin), "Envoy admin"],
  [String(ISTIO_PORT.outbound), "outbound traffic capture"],
  ["15004", "pilot debug"],
  [String(ISTIO_PORT.inbound), "inbound traffic capture"],
  ["15008", "HBONE tunnel"],
  [String(ISTIO_PORT.agentStatus), "pilot-agent status / merged Prometheus"],
  [String(ISTIO_PORT.readiness), "Envoy health"],
  ["15053", "DNS proxy"],
  [String(ISTIO_PORT.envoyPrometheus), "Envoy Prometheus (already merged)"],
]);

function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (/^(1|t|T|TRUE|true|True)$/.test(v)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(v)) return false;
  return undefined;
}

/**
 * Prometheus reads annotations as label names, every character outside [a-zA-Z0-9_] turned
 * into "_": prometheus.io/scrape, prometheus.io.scrape and prometheus-io/scrape are one
 * setting, and each spelling counts.
 */
function labelName(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, "_");
}

/**
 * Whether `key` is a spelling of the setting `name` (one of those below, all beginning with
 * "prometheus", which labelName keeps as is): tested on length and prefix before the
 * rewrite, since a Pod may carry thousands of annotations and few are Prometheus'.
 */
function spells(key: string, name: string): boolean {
  return key.length === name.length && key.startsWith("prometheus") && labelName(key) === name;
}

/** The label name of a key that may spell one of the settings below, else undefined (without rewriting it). */
function settingName(key: string): string | undefined {
  return key.startsWith("prometheus") ? labelName(key) : undefined;
}

const SCRAPE = labelName(A.promScrape);
const PORT = labelName(A.promPort);
const PATH = labelName(A.promPath);
const TARGETS = labelName(SCRAPE_TARGETS);
const SECURE = labelName(SECURE_PORT);

/**
 * The keys that may spell one of the settings (all begin with "prometheus"), in the map's order:
 * the merge reads them several times, and a Pod may carry thousands of annotations.
 */
function settingKeys(all: readonly string[]): string[] {
  const keys: string[] = [];
  for (const k of all) if (k.startsWith("prometheus")) keys.push(k);
  return keys;
}

/** An annotation's value by key (the Pod's map, or the injected Pod's edit of it). */
type Read = (key: string) => string | undefined;

/** A map's own values by key. */
const reader =
  (annotations: Readonly<Record<string, string>>): Read =>
  (key) =>
    own(annotations, key);

/** The value of a scrape setting under any of its spellings, among `keys` (settingKeys). */
function setting(get: Read, name: string, keys: readonly string[]): string | undefined {
  for (const k of keys) if (spells(k, name)) return get(k);
  return undefined;
}

/** Whether to scrape: the first spelling of prometheus.io/scrape that reads as a boolean; else yes. */
function scrapeWanted(get: Read, keys: readonly string[]): boolean {
  for (const k of keys) {
    if (!spells(k, SCRAPE)) continue;
    const b = parseBool(get(k));
    if (b !== undefined) return b;
  }
  return true;
}

export interface ScrapeTarget {
  readonly port: string;
  readonly path: string;
}

/**
 * prometheus.istio.io/scrape-targets: "port:path" entries separated by commas, blanks
 * trimmed, empty entries skipped, a missing path "/metrics". An entry without a port makes the
 * whole value unreadable (undefined), which the merge then ignores, as the agent would.
 */
export function parseScrapeTargets(raw: string): ScrapeTarget[] | undefined {
  const targets: ScrapeTarget[] = [];
  for (const part of raw.split(",")) {
    const entry = part.trim();
    if (!entry) continue;
    const colon = entry.indexOf(":");
    const port = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    if (!port) return undefined;
    const path = colon < 0 ? "" : entry.slice(colon + 1).trim();
    targets.push({ port, path: path || "/metrics" });
  }
  return targets;
}

/** Go's strconv.Atoi: optional sign, decimal digits, nothing else. */
function atoi(v: string): number | undefined {
  return /^[+-]?\d+$/.test(v) ? Number(v) : undefined;
}

function checkPort(port: string, target: string, field: string, value: string): void {
  const n = atoi(port);
  const bad = (why: string): InjectionError =>
    new InjectionError(
      "ERR_INVALID_ANNOTATION",
      field,
      `invalid annotation ${field}=${quote(value)}: ${why}; set ${A.mergeMetrics}: "false" to scrape it directly`,
    );
  if (n === undefined || n < 1 || n > 65535) throw bad(`port ${quote(port)} is not a port number (1-65535)`);
  const canon = String(n);
  if (canon === target) throw bad(`port ${canon} is the sidecar's status port, where the merged metrics are served`);
  const reason = RESERVED_PORTS.get(canon);
  if (reason !== undefined) throw bad(`port ${canon} is reserved for the sidecar (${reason})`);
}

export interface PrometheusMerge {
  /** Every spelling of the app's scrape settings, removed before ours are written. */
  readonly remove: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
  /** The ISTIO_PROMETHEUS_ANNOTATIONS value, when the app had scrape settings of its own. */
  readonly env?: string;
  /** Settings that were ignored. */
  readonly warnings: readonly string[];
}

/**
 * What the merge changes, or undefined when it does not apply to this Pod. `statusPort` is
 * the agent's (the mesh's, or the Pod's ProxyConfig's), where the merged metrics are served.
 */
export function prometheusMerge(
  annotations: Readonly<Record<string, string>>,
  config: Config,
  statusPort: number,
): PrometheusMerge | undefined {
  return mergeOf(reader(annotations), settingKeys(Object.keys(annotations)), config, statusPort);
}

/** prometheusMerge, given the annotations' settingKeys. */
function mergeOf(get: Read, keys: readonly string[], config: Config, statusPort: number): PrometheusMerge | undefined {
  const enabled = parseBool(get(A.mergeMetrics)) ?? config.prometheusMerge;
  if (!enabled || !scrapeWanted(get, keys)) return undefined;
  const target = String(statusPort);
  if (setting(get, PORT, keys) === target) return undefined; // already merged
  const warnings: string[] = [];
  let scrape = "";
  let path = "";
  let port = "";
  let targets: ScrapeTarget[] = [];
  let targetsRaw = "";
  for (const k of keys) {
    const name = settingName(k);
    if (name === undefined) continue;
    const v = get(k) ?? "";
    if (name === SCRAPE) scrape = v;
    else if (name === PATH) path = v;
    else if (name === PORT) port = v;
    else if (name === TARGETS) {
      const parsed = parseScrapeTargets(v);
      if (parsed) {
        targets = parsed;
        targetsRaw = v;
      } else warnings.push(`annotation ${k}=${quote(v)} ignored: an entry has no port`);
    }
  }
  const first = targets[0];
  if (first) {
    for (const t of targets) checkPort(t.port, target, SCRAPE_TARGETS, targetsRaw);
    port = first.port;
    path = first.path;
  } else if (port !== "") {
    checkPort(port, target, A.promPort, port);
  }
  const empty = scrape === "" && path === "" && port === "" && targets.length === 0;
  const names = new Set([SCRAPE, PORT, PATH, TARGETS]);
  const ours = new Set<string>([A.promPort, A.promPath, A.promScrape]);
  return {
    // Other spellings go; ours are overwritten in place.
    remove: keys.filter((k) => {
      const name = settingName(k);
      return name !== undefined && names.has(name) && !ours.has(k);
    }),
    annotations: { [A.promPort]: target, [A.promPath]: MERGED_METRICS_PATH, [A.promScrape]: "true" },
    ...(empty ? {} : { env: JSON.stringify({ scrape, path, port, ...(targets.length ? { targets } : {}) }) }),
    warnings,
  };
}

/**
 * prometheus.istio.io/secure-port for an istio-proxy whose env sets a secure merged-metrics
 * port (not empty, not "0"), unless the Pod has the annotation under any spelling.
 */
export function securePortAnnotation(
  annotations: Readonly<Record<string, string>>,
  proxyEnv: readonly { name: string; value?: string }[] | undefined,
): string | undefined {
  return securePort(settingKeys(Object.keys(annotations)), proxyEnv);
}

/** securePortAnnotation, given the annotations' settingKeys. */
function securePort(
  keys: readonly string[],
  proxyEnv: readonly { name: string; value?: string }[] | undefined,
): string | undefined {
  if (keys.some((k) => spells(k, SECURE))) return undefined;
  const v = proxyEnv?.find((e) => e.name === SECURE_PORT_ENV)?.value;
  return v && v !== "0" ? v : undefined;
}

/** The port a previous merge pointed the annotations at: its PROXY_CONFIG's statusPort, else the config's. */
export function mergedPort(proxyConfigJson: string | undefined, configured: number): number {
  if (proxyConfigJson === undefined) return configured;
  try {
    return proxyConfigFields(proxyConfigJson).statusPort ?? configured;
  } catch {
    return configured; // not JSON, so not what an injector writes
  }
}

/**
 * The app's own scrape annotations back, from a previous injection's env: each non-empty value
 * under its prometheus.io/* name, and the targets as prometheus.istio.io/scrape-targets (port
 * and path were then the first target's, not the app's own). Only while the annotations still
 * point at the merge (`port`): ones changed since are the app's current settings, which the
 * merge then reads, as Istio does.
 */
export function restorePrometheus(
  annotations: Record<string, string>,
  envValue: string | undefined,
  port: number,
): void {
  // The app had no scrape settings of its own (or only empty ones): the merge's annotations
  // stay where they are, and the merge takes them as already written.
  if (envValue === undefined) return;
  if (setting(reader(annotations), PORT, settingKeys(Object.keys(annotations))) !== String(port)) return;
  const saved = jsonMap(envValue);
  // Not what the merge writes (a map of strings): nothing to restore from.
  if (!saved) return;
  const targets = own(saved, "targets");
  const restored: ScrapeTarget[] = Array.isArray(targets)
    ? targets.flatMap((t: unknown) => {
        const port = isMap(t) ? own(t, "port") : undefined;
        const path = isMap(t) ? own(t, "path") : undefined;
        return typeof port === "string" && typeof path === "string" ? [{ port, path }] : [];
      })
    : [];
  for (const [key, name] of [
    [A.promScrape, "scrape"],
    [A.promPath, "path"],
    [A.promPort, "port"],
  ] as const) {
    const v = restored.length && name !== "scrape" ? undefined : own(saved, name);
    // In place, so that the annotations keep their order.
    if (typeof v === "string" && v !== "") annotations[key] = v;
    else delete annotations[key];
  }
  if (restored.length) annotations[SCRAPE_TARGETS] = restored.map((t) => `${t.port}:${t.path}`).join(",");
}

/**
 * The merge applied to the injected Pod: `annotations` pointed at the agent, the app's settings
 * handed to the sidecar's env, and the secure metrics port announced. As in Istio, the
 * annotations are pointed at the agent's port whether or not a template injected a proxy
 * (grpc-simple does not); the env goes to istio-proxy, when there is one.
 */
export function applyPrometheusMerge(
  lists: ContainerLists,
  annotations: MapEdit,
  p: Params,
  warnings: string[],
): ContainerLists {
  let out = lists;
  // The keys are read once: the merge removes only spellings of scrape, port, path and targets
  // and writes prometheus.io/{port,path,scrape}, so the spellings of the secure port, read
  // after it, are the same before and after.
  const keys = settingKeys(annotations.keys());
  const prom =
    p.agentStatusPort > 0 ? mergeOf((k) => annotations.get(k), keys, p.config, p.agentStatusPort) : undefined;
  if (prom) {
    warnings.push(...prom.warnings);
    if (prom.env !== undefined) out = appendSidecarEnv(out, { name: PROMETHEUS_ENV, value: prom.env });
    for (const k of prom.remove) annotations.delete(k);
    annotations.assign(prom.annotations);
  }
  const secure = hasSidecar(out) ? securePort(keys, sidecarEnv(out)) : undefined;
  if (secure !== undefined) annotations.set(SECURE_PORT, secure);
  return out;
}
