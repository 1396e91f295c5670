// `serve --istio-config NS[/REV]`, the pure part: which ConfigMaps the argument names, the
// injector config they give (or why none), and what changed between two configs.
//
// - `NS` names the default revision's ConfigMaps in namespace NS: `istio-sidecar-injector`
//   and `istio`; `NS/REV` revision REV's: `istio-sidecar-injector-REV` and `istio-REV`
//   ("NS/default" is NS). NS and REV are DNS labels, as Kubernetes names them.
// - The config is what `config import` would write (import.ts), checked as a config file is
//   (buildConfig). It is refused (IstioConfigError, with the findings) when a finding is
//   `unsupported` and the caller did not allow it, or when our injector would refuse it: the
//   same rule as `config import`, which exits 1 or 2 where `serve` does not start.
// - A change is told by config path (`proxy.image`, `neverInjectSelector`), old → new, each
//   value quote()d, at most MAX_LISTED_CHANGES of them.
//
// Pure: no I/O, no clock.
import { buildConfig, ConfigError } from "../config/load.js";
import type { Config } from "../config/types.js";
import { quote } from "../injection/quote.js";
import { importIstioConfig, type Finding, type IstioConfigMaps } from "./import.js";

/** A refused start or change: what is wrong, in words, and the findings of the import, if any. */
export class IstioConfigError extends Error {
  readonly code = "ERR_ISTIO_CONFIG";
  constructor(
    message: string,
    readonly findings: readonly Finding[] = [],
  ) {
    super(message);
    this.name = "IstioConfigError";
  }
}

export interface IstioConfigSource {
  readonly namespace: string;
  /** "" is the default revision. */
  readonly revision: string;
  /** `istio-sidecar-injector[-REV]`. */
  readonly injector: string;
  /** `istio[-REV]`. */
  readonly mesh: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `NS` or `NS/REV`, as `--istio-config` takes it; throws IstioConfigError naming what is wrong. */
export function parseIstioConfigSource(arg: string): IstioConfigSource {
  const parts = arg.split("/");
  const [namespace = "", rev] = parts;
  if (parts.length > 2 || !DNS_LABEL.test(namespace) || (rev !== undefined && !DNS_LABEL.test(rev))) {
    throw new IstioConfigError(
      `--istio-config must be NAMESPACE or NAMESPACE/REVISION (each a DNS label, like istio-system/canary), not ${quote(arg)}`,
    );
  }
  const revision = rev === undefined || rev === "default" ? "" : rev;
  const suffix = revision === "" ? "" : `-${revision}`;
  return { namespace, revision, injector: `istio-sidecar-injector${suffix}`, mesh: `istio${suffix}` };
}

/** How logs, /preview and the README name the source: `istio-config istio-system/canary`. */
export function describeSource(s: IstioConfigSource): string {
  return `istio-config ${s.namespace}${s.revision === "" ? "" : `/${s.revision}`}`;
}

/** The two ConfigMaps' data as import.ts reads it (both present). */
export function configMapsOf(
  s: IstioConfigSource,
  injector: Readonly<Record<string, string>>,
  mesh: Readonly<Record<string, string>>,
): IstioConfigMaps {
  return {
    injector: {
      name: s.injector,
      ...(injector.values !== undefined ? { values: injector.values } : {}),
      ...(injector.config !== undefined ? { config: injector.config } : {}),
    },
    mesh: { name: s.mesh, ...(mesh.mesh !== undefined ? { mesh: mesh.mesh } : {}) },
  };
}

export interface IstioLoad {
  readonly config: Config;
  readonly findings: readonly Finding[];
}

/** The config Istio's ConfigMaps give; throws IstioConfigError when it cannot be served. */
/**
 * What selects this injector that Istio's ConfigMaps do not say: the revision tags pointing at
 * it and Istio's `auto` webhook, which the chart renders (its `revisionTags`,
 * `webhook.enableNamespacesByDefault`) and serve is told (`--revision-tag`,
 * `--enable-namespaces-by-default`), so that /preview's explanations know every selector.
 */
export interface IstioSelection {
  readonly revisionTags?: readonly string[];
  readonly enableNamespacesByDefault?: boolean;
}

export function configFromIstio(
  maps: IstioConfigMaps,
  allowUnsupported: boolean,
  selection: IstioSelection = {},
): IstioLoad {
  const { config: imported, findings } = importIstioConfig(maps);
  const document = {
    ...imported,
    ...(selection.revisionTags?.length ? { revisionTags: [...selection.revisionTags] } : {}),
    ...(selection.enableNamespacesByDefault === true ? { enableNamespacesByDefault: true } : {}),
  };
  const unsupported = findings.filter((f) => f.severity === "unsupported").length;
  if (unsupported > 0 && !allowUnsupported) {
    throw new IstioConfigError(
      `${unsupported} setting${unsupported === 1 ? "" : "s"} of Istio's ConfigMaps cannot be honoured (each logged with what to do instead); --allow-unsupported serves what can be`,
      findings,
    );
  }
  const names = [maps.injector?.name, maps.mesh?.name].filter((n) => n !== undefined).join(" and ");
  try {
    return { config: buildConfig(document, `the config imported from ${names}`), findings };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new IstioConfigError(
      `the settings of ${names} are not a config this injector can serve: ${e.message}`,
      findings,
    );
  }
}

/** A finding's identity, to tell the new ones of a change. */
export function findingKey(f: Finding): string {
  return `${f.severity}\u0000${f.path}\u0000${f.problem}`;
}

/** How many changes one log line lists; past it, one entry counts the rest. */
export const MAX_LISTED_CHANGES = 20;

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  if (v === undefined) return "(none)";
  if (typeof v === "string") return quote(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return quote(JSON.stringify(v) ?? String(v));
}

function collectChanges(a: unknown, b: unknown, path: string, out: string[]): void {
  if (isPlain(a) && isPlain(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) collectChanges(a[k], b[k], path === "" ? k : `${path}.${k}`, out);
    return;
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  out.push(`${path}: ${shown(a)} → ${shown(b)}`);
}

/**
 * What changed from one config to the next, by config path (`proxy.image: "a" → "b"`); lists
 * and maps that are not nested config (selectors, proxyMetadata's values) are shown whole.
 * Empty when they are the same. At most MAX_LISTED_CHANGES entries, the last counting the rest.
 */
export function configChanges(before: Config, after: Config): string[] {
  const all: string[] = [];
  collectChanges(before, after, "", all);
  if (all.length <= MAX_LISTED_CHANGES) return all;
  return [...all.slice(0, MAX_LISTED_CHANGES - 1), `and ${all.length - (MAX_LISTED_CHANGES - 1)} more`];
}
