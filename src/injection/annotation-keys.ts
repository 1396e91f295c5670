// Annotation keys in Istio's injection domains that nothing reads: most often a typo
// (`sidecar.istio.io/injet`, `sidecar.istio.io/proxyCpu`) that silently changes nothing. Said
// back as warnings (the API server shows an AdmissionResponse's warnings to kubectl users),
// each naming the key and the closest known one; a deprecated key is named with what replaces it.
//
// Known: every annotation Istio defines in these domains (istio.io/api, annotation/
// annotations.gen.go) and every one this injector reads (annotations.ts). Closest: a known key
// with the same name in another of the domains (`sidecar.istio.io/includeOutboundIPRanges` for
// `traffic.sidecar.istio.io/includeOutboundIPRanges`), else the smallest edit distance,
// letter case ignored, within a third of the name's length.
//
// Bounded for the webhook's hot path: keys outside the domains cost one prefix test; at most
// MAX_KEY_WARNINGS unknown keys are examined (the rest are counted in one more warning), a
// key longer than MAX_COMPARED_CHARS is not compared, and every key is quoted bounded.
// Pure: no I/O.

import { A } from "./annotations.js";
import { quote } from "./quote.js";

export const ISTIO_ANNOTATION_DOMAINS = [
  "sidecar.istio.io",
  "proxy.istio.io",
  "traffic.sidecar.istio.io",
  "status.sidecar.istio.io",
  "readiness.status.sidecar.istio.io",
  "inject.istio.io",
  "prometheus.istio.io",
] as const;

/** Istio's annotations in those domains, deprecated ones included (istio.io/api). */
const ISTIO_DEFINED = [
  "inject.istio.io/templates",
  "prometheus.istio.io/merge-metrics",
  "proxy.istio.io/config",
  "proxy.istio.io/overrides",
  "readiness.status.sidecar.istio.io/applicationPorts",
  "readiness.status.sidecar.istio.io/failureThreshold",
  "readiness.status.sidecar.istio.io/initialDelaySeconds",
  "readiness.status.sidecar.istio.io/periodSeconds",
  "sidecar.istio.io/agentLogLevel",
  "sidecar.istio.io/bootstrapOverride",
  "sidecar.istio.io/componentLogLevel",
  "sidecar.istio.io/discoveryAddress",
  "sidecar.istio.io/extraStatTags",
  "sidecar.istio.io/inject",
  "sidecar.istio.io/interceptionMode",
  "sidecar.istio.io/logLevel",
  "sidecar.istio.io/nativeSidecar",
  "sidecar.istio.io/proxyCPU",
  "sidecar.istio.io/proxyCPULimit",
  "sidecar.istio.io/proxyImage",
  "sidecar.istio.io/proxyImageType",
  "sidecar.istio.io/proxyMemory",
  "sidecar.istio.io/proxyMemoryLimit",
  "sidecar.istio.io/rewriteAppHTTPProbers",
  "sidecar.istio.io/statsCompression",
  "sidecar.istio.io/statsEvictionInterval",
  "sidecar.istio.io/statsFlushInterval",
  "sidecar.istio.io/statsHistogramBins",
  "sidecar.istio.io/statsHistogramBuckets",
  "sidecar.istio.io/statsInclusionPrefixes",
  "sidecar.istio.io/statsInclusionRegexps",
  "sidecar.istio.io/statsInclusionSuffixes",
  "sidecar.istio.io/status",
  "sidecar.istio.io/userVolume",
  "sidecar.istio.io/userVolumeMount",
  "status.sidecar.istio.io/port",
  "traffic.sidecar.istio.io/excludeInboundPorts",
  "traffic.sidecar.istio.io/excludeInterfaces",
  "traffic.sidecar.istio.io/excludeOutboundIPRanges",
  "traffic.sidecar.istio.io/excludeOutboundPorts",
  "traffic.sidecar.istio.io/includeInboundPorts",
  "traffic.sidecar.istio.io/includeOutboundIPRanges",
  "traffic.sidecar.istio.io/includeOutboundPorts",
  "traffic.sidecar.istio.io/kubevirtInterfaces",
  // Read by Istio's injection template and by prometheus merging, though not in the list above.
  "sidecar.istio.io/capNetBindService",
  "prometheus.istio.io/scrape-targets",
  "sidecar.istio.io/enableCoreDump",
] as const;

/** Deprecated keys Istio still reads, and what to use instead. */
const DEPRECATED: Readonly<Record<string, string>> = {
  "sidecar.istio.io/discoveryAddress": "ProxyConfig discoveryAddress (proxy.istio.io/config)",
  "sidecar.istio.io/extraStatTags": "the Telemetry API",
  "sidecar.istio.io/statsCompression": "ProxyConfig (proxy.istio.io/config)",
  "sidecar.istio.io/statsInclusionPrefixes": "ProxyConfig proxyStatsMatcher (proxy.istio.io/config)",
  "sidecar.istio.io/statsInclusionRegexps": "ProxyConfig proxyStatsMatcher (proxy.istio.io/config)",
  "sidecar.istio.io/statsInclusionSuffixes": "ProxyConfig proxyStatsMatcher (proxy.istio.io/config)",
  "traffic.sidecar.istio.io/kubevirtInterfaces": "istio.io/reroute-virtual-interfaces",
};

const KNOWN: readonly string[] = [
  ...new Set<string>([...ISTIO_DEFINED, ...Object.values(A).filter((k) => inDomain(k))]),
].sort();
const KNOWN_SET: ReadonlySet<string> = new Set(KNOWN);

/** Unknown keys examined (and warned about) per object; the rest are counted. */
export const MAX_KEY_WARNINGS = 4;
/** Longer keys are not compared with the known ones (a typo is short). */
const MAX_COMPARED_CHARS = 100;

function inDomain(key: string): boolean {
  const slash = key.indexOf("/");
  return slash > 0 && (ISTIO_ANNOTATION_DOMAINS as readonly string[]).includes(key.slice(0, slash));
}

/** Levenshtein distance, or limit + 1 when it exceeds `limit` (stopping early once every cell of a row does). */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  // Two rows, allocated once and swapped: the search calls this for every known name.
  let prev = new Uint32Array(b.length + 1);
  let row = new Uint32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    row[0] = i;
    let best = i;
    const c = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const cost = c === b.charCodeAt(j - 1) ? 0 : 1;
      const v = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      row[j] = v;
      if (v < best) best = v;
    }
    if (best > limit) return limit + 1;
    [prev, row] = [row, prev];
  }
  return Math.min(prev[b.length] ?? limit + 1, limit + 1);
}

/**
 * The candidate closest to `name`: the smallest edit distance, letter case ignored, at most
 * `limit` (by default a third of the name's length, at least 1); the first on a tie. Undefined
 * when none is that close, or when `name` is longer than MAX_COMPARED_CHARS. Also used for
 * ProxyConfig fields (proxy-config.ts) and config keys (config/load.ts).
 */
export function closestName(
  name: string,
  candidates: Iterable<string>,
  limit: number = Math.max(1, Math.floor(name.length / 3)),
): string | undefined {
  if (name.length > MAX_COMPARED_CHARS) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase(), Math.min(limit, bestDistance - 1));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
      if (d === 0) break;
    }
  }
  return best;
}

/** The known key closest to `key` (see the header), or undefined when none is close. */
export function closestKnownKey(key: string): string | undefined {
  if (key.length > MAX_COMPARED_CHARS) return undefined;
  const lower = key.toLowerCase();
  const name = lower.slice(lower.indexOf("/") + 1);
  const sameName = KNOWN.find((k) => k.toLowerCase().slice(k.indexOf("/") + 1) === name);
  if (sameName !== undefined) return sameName;
  return closestName(key, KNOWN, Math.max(1, Math.floor(name.length / 3)));
}

/** Warnings for the unknown and deprecated keys of `annotations` in Istio's injection domains. */
export function annotationKeyWarnings(annotations: Readonly<Record<string, string>> | undefined): string[] {
  const out: string[] = [];
  let unknown = 0;
  for (const key of Object.keys(annotations ?? {})) {
    if (!inDomain(key)) continue;
    const replacement = DEPRECATED[key];
    if (KNOWN_SET.has(key)) {
      if (replacement !== undefined && out.length < MAX_KEY_WARNINGS)
        out.push(`annotation ${key} is deprecated: use ${replacement}`);
      continue;
    }
    unknown++;
    if (out.length >= MAX_KEY_WARNINGS) continue;
    const closest = closestKnownKey(key);
    out.push(`unknown annotation ${quote(key)} is ignored${closest === undefined ? "" : `; did you mean ${closest}?`}`);
  }
  const said = out.filter((w) => w.startsWith("unknown")).length;
  if (unknown > said) out.push(`${unknown - said} more unknown annotation(s) in Istio's domains are ignored`);
  return out;
}
