// Traffic interception: the `istio-init` container that programs iptables (or, in CNI mode,
// `istio-validation` that checks the CNI plugin did it), its istio-iptables arguments from the
// config and the `traffic.sidecar.istio.io/*` annotations, and the annotations the CNI plugin
// reads.
import type { Container, JsonObject } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import { PORT, PROXY_ID } from "./istio.js";
import { ConfigMemo } from "./shared-parts.js";
import type { Params } from "./params.js";
import { readInQuotes } from "./validate.js";

/** The sidecar's ports iptables never redirects inbound: Envoy's Prometheus and readiness. */
export const INBOUND_ALWAYS_EXCLUDED = `${PORT.envoyPrometheus},${PORT.readiness}`;

/** The resolved interception settings, in the terms istio-iptables uses. */
export interface Interception {
  readonly mode: string;
  readonly proxyUid: string;
  readonly outboundPort: string;
  readonly inboundPort: string;
  readonly includeOutboundIPRanges: string;
  readonly excludeOutboundIPRanges: string;
  readonly includeInboundPorts: string;
  readonly excludeInboundPorts: string;
  readonly includeOutboundPorts?: string;
  readonly excludeOutboundPorts?: string;
  readonly rerouteInterfaces?: string;
  readonly excludeInterfaces?: string;
}

/** Adds the agent's status port to the excluded inbound ports unless it is there or 0. */
export function excludeInboundPort(statusPort: string, excluded: string): string {
  const port = statusPort.trim();
  if (port === "" || port === "0") return excluded;
  const out: string[] = [];
  for (const p of excluded.split(",")) {
    if (p === port) return excluded;
    const t = p.trim();
    if (t) out.push(t);
  }
  out.push(port);
  return out.join(",");
}

export function resolveInterception(p: Params): Interception {
  const a = p.annotations;
  const cfg = p.config.interception;
  const excluded = excludeInboundPort(p.statusPort, a[A.excludeInboundPorts] ?? cfg.excludeInboundPorts);
  const includeOut = a[A.includeOutboundPorts] ?? (cfg.includeOutboundPorts || undefined);
  const excludeOut = a[A.excludeOutboundPorts] ?? (cfg.excludeOutboundPorts || undefined);
  const reroute = a[A.rerouteVirtualInterfaces] ?? a[A.kubevirtInterfaces];
  // The optional settings set after: no object made and spread for each.
  const out: { -readonly [K in keyof Interception]: Interception[K] } = {
    mode: p.mode,
    proxyUid: String(p.tproxy ? PROXY_ID : p.config.proxy.uid),
    outboundPort: String(PORT.outbound),
    inboundPort: String(PORT.inbound),
    includeOutboundIPRanges: a[A.includeOutboundIPRanges] ?? cfg.includeOutboundIPRanges,
    excludeOutboundIPRanges: a[A.excludeOutboundIPRanges] ?? cfg.excludeOutboundIPRanges,
    includeInboundPorts: a[A.includeInboundPorts] ?? cfg.includeInboundPorts,
    excludeInboundPorts: excluded ? `${INBOUND_ALWAYS_EXCLUDED},${excluded}` : INBOUND_ALWAYS_EXCLUDED,
  };
  if (includeOut !== undefined) out.includeOutboundPorts = includeOut;
  if (excludeOut !== undefined) out.excludeOutboundPorts = excludeOut;
  if (reroute !== undefined) out.rerouteInterfaces = reroute;
  const excludeInterfaces = a[A.excludeInterfaces];
  if (excludeInterfaces !== undefined) out.excludeInterfaces = excludeInterfaces;
  return out;
}

/**
 * istio-iptables' flag for each setting, in the order the arguments are written; a setting
 * left undefined is not written. explain.ts reads the arguments back through the same table.
 */
export const IPTABLES_FLAGS = {
  outboundPort: "-p",
  inboundPort: "-z",
  proxyUid: "-u",
  mode: "-m",
  includeOutboundIPRanges: "-i",
  excludeOutboundIPRanges: "-x",
  includeInboundPorts: "-b",
  excludeInboundPorts: "-d",
  includeOutboundPorts: "-q",
  excludeOutboundPorts: "-o",
  rerouteInterfaces: "-k",
  excludeInterfaces: "-c",
} as const satisfies Record<keyof Interception, `-${string}`>;

type Setting = keyof typeof IPTABLES_FLAGS;
const isSetting = (k: string): k is Setting => Object.hasOwn(IPTABLES_FLAGS, k);
const SETTINGS: readonly Setting[] = Object.keys(IPTABLES_FLAGS).filter(isSetting);
const SETTING_OF_FLAG: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((k) => [IPTABLES_FLAGS[k], k]));

/** The istio-iptables program name, the first argument. */
export const IPTABLES_COMMAND = "istio-iptables";

const IPTABLES_ARGS = new ConfigMemo<string[]>();

/** istio-iptables' arguments for the settings (built once per config and settings). */
export function iptablesArgs(i: Interception, p: Params): string[] {
  return IPTABLES_ARGS.get(p.config, [p.agentLogLevel, ...SETTINGS.map((k) => i[k])], () => buildIptablesArgs(i, p));
}

/**
 * The annotation a setting's value comes from: what a refusal names when the value breaks the
 * template (a value from the config passed the same checks when the config was loaded).
 */
function annotationOf(k: Setting, p: Params): string {
  switch (k) {
    case "rerouteInterfaces":
      return p.annotations[A.rerouteVirtualInterfaces] !== undefined
        ? A.rerouteVirtualInterfaces
        : A.kubevirtInterfaces;
    case "includeOutboundIPRanges":
    case "excludeOutboundIPRanges":
    case "includeInboundPorts":
    case "excludeInboundPorts":
    case "includeOutboundPorts":
    case "excludeOutboundPorts":
    case "excludeInterfaces":
      return A[k];
    default:
      return A.interceptionMode;
  }
}

/**
 * The arguments as the template's YAML reads them: each value is written raw between double
 * quotes (yaml-quoted.ts: escapes decoded, line breaks folded). validate.ts refuses the
 * annotations that would break it; the excluded inbound ports are checked here, as written
 * (with the agent's port added, the annotation's own text is written only when it lists it).
 */
function buildIptablesArgs(i: Interception, p: Params): string[] {
  const args: string[] = [IPTABLES_COMMAND];
  for (const k of SETTINGS) {
    const v = i[k];
    if (v === undefined) continue;
    const key = annotationOf(k, p);
    args.push(IPTABLES_FLAGS[k], readInQuotes(key, p.annotations[key] ?? v, v));
  }
  args.push(`--log_output_level=${p.agentLogLevel}`);
  if (p.config.cni) args.push("--run-validation", "--skip-rule-apply");
  return args;
}

/**
 * The settings istio-iptables arguments carry (`args` without the program name), as written:
 * each single-letter flag of the table followed by its value.
 */
export function readIptablesArgs(args: readonly string[]): Partial<Record<Setting, string>> {
  const out: Partial<Record<Setting, string>> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (!/^-[a-z]$/.test(a)) continue;
    const k = SETTING_OF_FLAG.get(a);
    if (k !== undefined) out[k] = args[i + 1] ?? "";
  }
  return out;
}

const INIT_SECURITY: JsonObject = {
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
  readOnlyRootFilesystem: false,
  runAsGroup: 0,
  runAsNonRoot: false,
  runAsUser: 0,
};

/** The init container's security context: per config, and in CNI mode per TPROXY or not. */
const INIT_SECURITY_CONTEXTS = new ConfigMemo<JsonObject>(2);

function validationSecurity(p: Params): JsonObject {
  const id = p.tproxy ? PROXY_ID : p.config.proxy.uid;
  const gid = p.tproxy ? PROXY_ID : p.config.proxy.gid;
  return {
    allowPrivilegeEscalation: p.config.proxy.privileged,
    privileged: p.config.proxy.privileged,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
    runAsGroup: gid,
    runAsUser: id,
    runAsNonRoot: true,
  };
}

/** The init container, or undefined when interception is NONE. */
export function initContainer(p: Params, i: Interception, proxyMetadataEnv: Container["env"]): Container | undefined {
  if (p.mode === "NONE") return undefined;
  const c: Container = {
    name: p.config.cni ? CONTAINER.validation : CONTAINER.init,
    image: p.initImage,
    args: iptablesArgs(i, p),
  };
  if (p.config.proxy.imagePullPolicy) c.imagePullPolicy = p.config.proxy.imagePullPolicy;
  if (proxyMetadataEnv && proxyMetadataEnv.length > 0) c.env = proxyMetadataEnv;
  if (p.resources) c.resources = p.resources;
  c.securityContext = INIT_SECURITY_CONTEXTS.get(p.config, [p.tproxy], () =>
    p.config.cni
      ? validationSecurity(p)
      : {
          ...INIT_SECURITY,
          allowPrivilegeEscalation: p.config.proxy.privileged,
          privileged: p.config.proxy.privileged,
        },
  );
  return c;
}

/** In CNI mode the plugin reads the interception settings from the Pod's annotations. */
export function cniAnnotations(p: Params, i: Interception): Record<string, string> {
  if (!p.config.cni) return {};
  const a = p.annotations;
  const out: Record<string, string> = { [A.interceptionMode]: i.mode };
  if (i.includeOutboundIPRanges) out[A.includeOutboundIPRanges] = i.includeOutboundIPRanges;
  if (i.excludeOutboundIPRanges) out[A.excludeOutboundIPRanges] = i.excludeOutboundIPRanges;
  out[A.includeInboundPorts] = i.includeInboundPorts;
  out[A.excludeInboundPorts] = excludeInboundPort(
    p.statusPort,
    a[A.excludeInboundPorts] ?? p.config.interception.excludeInboundPorts,
  );
  if (i.includeOutboundPorts !== undefined) out[A.includeOutboundPorts] = i.includeOutboundPorts;
  if (i.excludeOutboundPorts !== undefined) out[A.excludeOutboundPorts] = i.excludeOutboundPorts;
  for (const k of [A.kubevirtInterfaces, A.rerouteVirtualInterfaces, A.excludeInterfaces]) {
    const v = a[k];
    if (v) out[k] = v;
  }
  // Written raw between double quotes, as in istio-validation's arguments (kubevirtInterfaces
  // too, where reroute-virtual-interfaces is set: the template writes both here).
  for (const [k, v] of Object.entries(out)) out[k] = readInQuotes(k, a[k] ?? v, v);
  return out;
}
