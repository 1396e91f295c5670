// Prometheus metrics merge: the agent serves the app's metrics merged with Envoy's on the
// status port, so the Pod's prometheus.io/* annotations are pointed there and the originals
// handed to the agent in ISTIO_PROMETHEUS_ANNOTATIONS.
import type { Config } from "../config/types.js";
import { A } from "./annotations.js";
import { own } from "./own.js";
import { quote } from "./quote.js";
import { InjectionError } from "./types.js";

export const PROMETHEUS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS";
export const MERGED_METRICS_PATH = "/stats/prometheus";
const RESERVED_PORTS = new Set(["15000", "15001", "15004", "15006", "15008", "15009", "15020", "15021", "15053", "15090"]);

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

const SCRAPE = labelName(A.promScrape);
const PORT = labelName(A.promPort);
const PATH = labelName(A.promPath);

/** The value of a scrape setting under any of its spellings. */
function setting(annotations: Readonly<Record<string, string>>, name: string): string | undefined {
  for (const [k, v] of Object.entries(annotations)) if (labelName(k) === name) return v;
  return undefined;
}

export interface PrometheusMerge {
  /** Every spelling of the app's scrape settings, removed before ours are written. */
  readonly remove: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
  /** The ISTIO_PROMETHEUS_ANNOTATIONS value, when the app had its own scrape settings. */
  readonly env?: string;
}

/** What the merge changes, or undefined when it does not apply to this Pod. */
export function prometheusMerge(annotations: Readonly<Record<string, string>>, config: Config): PrometheusMerge | undefined {
  const enabled = parseBool(annotations[A.mergeMetrics]) ?? config.prometheusMerge;
  if (!enabled) return undefined;
  const target = String(config.proxy.statusPort);
  if (target === "0") return undefined;
  const scrape = setting(annotations, SCRAPE);
  const path = setting(annotations, PATH);
  const port = setting(annotations, PORT);
  if (port === target) return undefined; // already merged
  if (parseBool(scrape) === false) return undefined;
  if (port !== undefined && port !== "") {
    // Istio reads the port with strconv.Atoi and compares its decimal form.
    const n = /^[+-]?[0-9]+$/.test(port) ? Number(port) : Number.NaN;
    const refuse = (why: string): InjectionError => new InjectionError("ERR_INVALID_ANNOTATION", A.promPort, `invalid annotation ${A.promPort}=${quote(port)}: ${why}`);
    if (!(n >= 1 && n <= 65535)) throw refuse("must be a port number (1-65535)");
    if (String(n) === target || RESERVED_PORTS.has(String(n))) {
      throw refuse(`port ${n} is reserved for the sidecar; set ${A.mergeMetrics}: "false" to scrape it directly`);
    }
  }
  const original: Record<string, string> = {};
  if (scrape !== undefined) original.scrape = scrape;
  if (path !== undefined) original.path = path;
  if (port !== undefined) original.port = port;
  const names = new Set([SCRAPE, PORT, PATH]);
  const ours = new Set<string>([A.promPort, A.promPath, A.promScrape]);
  return {
    // Other spellings go; ours are overwritten in place.
    remove: Object.keys(annotations).filter((k) => names.has(labelName(k)) && !ours.has(k)),
    annotations: { [A.promPort]: target, [A.promPath]: MERGED_METRICS_PATH, [A.promScrape]: "true" },
    ...(Object.keys(original).length ? { env: JSON.stringify(original) } : {}),
  };
}

/** The app's own prometheus.io/* annotations back, from a previous injection's env. */
export function restorePrometheus(annotations: Record<string, string>, envValue: string | undefined, config: Config): void {
  if (envValue === undefined) {
    // The app had no scrape settings of its own: drop the ones the merge wrote.
    if (annotations[A.promPort] === String(config.proxy.statusPort) && annotations[A.promPath] === MERGED_METRICS_PATH) {
      delete annotations[A.promPort];
      delete annotations[A.promPath];
      delete annotations[A.promScrape];
    }
    return;
  }
  let original: unknown;
  try {
    original = JSON.parse(envValue);
  } catch {
    return;
  }
  // Not what the merge writes (a map of strings): nothing to restore from.
  if (typeof original !== "object" || original === null || Array.isArray(original)) return;
  for (const [key, name] of [[A.promScrape, "scrape"], [A.promPath, "path"], [A.promPort, "port"]] as const) {
    const v = own(original as Record<string, unknown>, name);
    if (typeof v === "string") annotations[key] = v;
    else delete annotations[key];
  }
}
