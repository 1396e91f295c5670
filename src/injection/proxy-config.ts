// ProxyConfig: what pilot-agent bootstraps Envoy from. The injector passes the fields that
// differ from the mesh defaults in PROXY_CONFIG (JSON); the `proxy.istio.io/config`
// annotation (YAML or JSON) is layered over the config's values. The annotation is read within
// PROXY_CONFIG_LIMITS (yaml-limits.ts): past one, it is refused naming the limit.
import type { Config, InterceptionMode } from "../config/types.js";
import { DEFAULT_CONFIG } from "../config/defaults.js";
import { A } from "./annotations.js";
import { InjectionError } from "./types.js";
import { quote } from "./quote.js";
import { parseYamlDocuments, PROXY_CONFIG_LIMITS, YamlLimitError, YamlSyntaxError } from "./yaml-limits.js";

export interface ProxyConfigOverlay {
  /** The PROXY_CONFIG env value (JSON plus a newline, as Istio writes it). */
  readonly json: string;
  readonly holdApplicationUntilProxyStarts?: boolean;
  readonly interceptionMode?: InterceptionMode;
  readonly proxyMetadata: Readonly<Record<string, string>>;
}

function bad(value: string, why: string): InjectionError {
  return new InjectionError("ERR_INVALID_ANNOTATION", A.proxyConfig, `invalid annotation ${A.proxyConfig}=${quote(value)}: ${why}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The config's own non-default ProxyConfig fields (computed once per config). */
export function configProxyFields(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (config.discoveryAddress !== DEFAULT_CONFIG.discoveryAddress) out.discoveryAddress = config.discoveryAddress;
  if (config.proxy.statusPort !== DEFAULT_CONFIG.proxy.statusPort) out.statusPort = config.proxy.statusPort;
  return out;
}

const EMPTY: ProxyConfigOverlay = { json: "{}\n", proxyMetadata: {} };
const cache = new WeakMap<Config, { base: Record<string, unknown>; empty: ProxyConfigOverlay }>();

function baseFor(config: Config): { base: Record<string, unknown>; empty: ProxyConfigOverlay } {
  let entry = cache.get(config);
  if (!entry) {
    const base = configProxyFields(config);
    const empty = Object.keys(base).length === 0 ? EMPTY : { json: `${JSON.stringify(base)}\n`, proxyMetadata: {} };
    entry = { base, empty };
    cache.set(config, entry);
  }
  return entry;
}

export function parseProxyConfig(annotation: string | undefined, config: Config): ProxyConfigOverlay {
  const { base, empty } = baseFor(config);
  if (annotation === undefined || annotation.trim() === "") return empty;
  let parsed: unknown;
  try {
    parsed = parseYamlDocuments(annotation, PROXY_CONFIG_LIMITS)[0];
  } catch (e) {
    if (e instanceof YamlLimitError && e.limit === "documents") throw bad(annotation, "must be one ProxyConfig map, not several YAML documents");
    if (e instanceof YamlLimitError) throw bad(annotation, `too large to read: it ${e.message}`);
    if (e instanceof YamlSyntaxError) throw bad(annotation, `not YAML or JSON: ${e.message}`);
    throw e;
  }
  if (parsed === null || parsed === undefined) return empty;
  if (!isMap(parsed)) throw bad(annotation, "must be a ProxyConfig map, e.g. {\"holdApplicationUntilProxyStarts\": true}");
  const hold = parsed.holdApplicationUntilProxyStarts;
  if (hold !== undefined && typeof hold !== "boolean") throw bad(annotation, "holdApplicationUntilProxyStarts must be true or false");
  const mode = parsed.interceptionMode;
  if (mode !== undefined && mode !== "REDIRECT" && mode !== "TPROXY" && mode !== "NONE") {
    throw bad(annotation, "interceptionMode must be REDIRECT, TPROXY or NONE");
  }
  const meta = parsed.proxyMetadata;
  const proxyMetadata: Record<string, string> = {};
  if (meta !== undefined) {
    if (!isMap(meta)) throw bad(annotation, "proxyMetadata must be a map of strings");
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== "string") throw bad(annotation, `proxyMetadata.${k} must be a string`);
      proxyMetadata[k] = v;
    }
  }
  const merged = { ...base, ...parsed };
  return {
    json: `${JSON.stringify(merged)}\n`,
    ...(hold !== undefined ? { holdApplicationUntilProxyStarts: hold } : {}),
    ...(mode !== undefined ? { interceptionMode: mode as InterceptionMode } : {}),
    proxyMetadata,
  };
}
