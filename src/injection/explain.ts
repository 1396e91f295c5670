// Explanations for people: whether the API server calls the injector at all (the
// MutatingWebhookConfiguration's selectors, Istio's table), what the init container will
// capture (read back from the istio-iptables arguments it gets), and what pilot-agent will
// bootstrap Envoy with (read back from the istio-proxy container).
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { IPTABLES_COMMAND, readIptablesArgs } from "./interception.js";
import { DEFAULT_REVISION, PORT, PROXY_ID, servedRevision } from "./istio.js";
import { own } from "./own.js";
import { quoteName } from "./quote.js";

export interface Selection {
  /** Whether the API server sends this Pod to the injector. */
  readonly called: boolean;
  readonly reason: string;
}

/** A Pod labelled sidecar.istio.io/inject=false, which every webhook's objectSelector leaves out. */
const OPTED_OUT: Selection = Object.freeze({
  called: false,
  reason: `label ${L.inject}=false on the pod: the webhook's objectSelector excludes it, the API server does not call the injector`,
});

const EXCLUDED_NAMESPACES = ["kube-system"];
/** The namespaces Istio's `auto` webhook (enableNamespacesByDefault) leaves out by name. */
const SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

/**
 * Which webhook of the configuration (Istio's webhooks and selectors, as the chart installs
 * them) would match, for a namespace with `namespaceLabels` and a Pod with `podLabels`.
 * `tags` are the revision tags that point at this injector (the config's revisionTags): the
 * chart installs one configuration per tag with Istio's tag webhooks (istioctl's
 * `tag set T --revision R`), which select istio.io/rev=T as the injector's own select
 * istio.io/rev=R, and the tag `default` also what the default revision selects
 * (istio-injection=enabled, and sidecar.istio.io/inject=true in unlabelled namespaces).
 * `namespacesByDefault` (the config's enableNamespacesByDefault) adds Istio's `auto` webhook
 * for the default revision (its own, or the tag default's): unlabelled namespaces but the
 * system ones, for Pods with neither sidecar.istio.io/inject nor istio.io/rev.
 */
export function apiServerSelection(
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
  podLabels: Readonly<Record<string, string>>,
  revision: string,
  ownNamespace?: string,
  tags: readonly string[] = [],
  namespacesByDefault = false,
): Selection {
  const rev = servedRevision(revision);
  /** Whether istio.io/rev=`value` selects this injector: "" (its revision), " (revision tag T → R)", or undefined. */
  const through = (value: string): string | undefined =>
    value === rev ? "" : tags.includes(value) ? ` (revision tag ${quoteName(value)} → ${rev})` : undefined;
  // What the default revision selects: this injector's when it is the default one or the tag default points at it.
  const asDefault = through(DEFAULT_REVISION);
  // User values in the reasons: names as they are, anything else quoted and bounded.
  const ns = quoteName(namespace);
  const inject = own(podLabels, L.inject);
  if (EXCLUDED_NAMESPACES.includes(namespace) || namespace === ownNamespace) {
    return {
      called: false,
      reason: `namespace ${ns} is excluded by the webhook's namespaceSelector: the API server does not call the injector`,
    };
  }
  const nsInjection = own(namespaceLabels, "istio-injection");
  const nsRev = own(namespaceLabels, L.rev);
  const optOut = inject === "false";
  if (nsInjection !== undefined) {
    if (nsInjection !== "enabled") {
      return {
        called: false,
        reason: `namespace ${ns} has istio-injection=${quoteName(nsInjection)}: no webhook matches, the API server does not call the injector`,
      };
    }
    if (asDefault === undefined) {
      return {
        called: false,
        reason: `namespace ${ns} has istio-injection=enabled, which selects the default revision, not ${rev}: the API server does not call this injector`,
      };
    }
    if (optOut) return OPTED_OUT;
    return {
      called: true,
      reason: `namespace ${ns} has istio-injection=enabled${asDefault}: the API server calls the injector`,
    };
  }
  if (nsRev !== undefined) {
    const nsThrough = through(nsRev);
    if (nsThrough === undefined) {
      return {
        called: false,
        reason: `namespace ${ns} has istio.io/rev=${quoteName(nsRev)}, this injector serves revision ${rev}${tagList(tags)}: the API server does not call it`,
      };
    }
    if (optOut) return OPTED_OUT;
    return {
      called: true,
      reason: `namespace ${ns} has istio.io/rev=${quoteName(nsRev)}${nsThrough}: the API server calls the injector`,
    };
  }
  const podRev = own(podLabels, L.rev);
  if (podRev !== undefined && !optOut) {
    const podThrough = through(podRev);
    if (podThrough !== undefined)
      return {
        called: true,
        reason: `namespace ${ns} has no injection label, but the pod has label istio.io/rev=${quoteName(podRev)}${podThrough}: the API server calls the injector`,
      };
    return {
      called: false,
      reason: `pod label istio.io/rev=${quoteName(podRev)} selects another revision than ${rev}${tagList(tags)}: the API server does not call this injector`,
    };
  }
  if (inject === "true" && asDefault !== undefined) {
    return {
      called: true,
      reason: `namespace ${ns} has no injection label, but the pod has label ${L.inject}=true${asDefault}: the API server calls the injector`,
    };
  }
  // Istio's `auto` webhook: unlabelled namespaces but the system ones, Pods with neither label.
  if (namespacesByDefault && asDefault !== undefined && inject === undefined && podRev === undefined) {
    if (SYSTEM_NAMESPACES.includes(namespace))
      return {
        called: false,
        reason: `namespace ${ns} is a system namespace, which enableNamespacesByDefault leaves out: the API server does not call the injector`,
      };
    return {
      called: true,
      reason: `namespace ${ns} has no injection label and the injector takes such namespaces by default (enableNamespacesByDefault)${asDefault}: the API server calls the injector`,
    };
  }
  return {
    called: false,
    reason: `namespace ${ns} has no istio-injection or istio.io/rev label (and the pod no ${L.inject}=true label): the API server does not call the injector`,
  };
}

/** " or its revision tags a, b" when it has any. */
function tagList(tags: readonly string[]): string {
  return tags.length === 0
    ? ""
    : ` or its revision tag${tags.length === 1 ? "" : "s"} ${tags.map(quoteName).join(", ")}`;
}

export interface InterceptionSummary {
  readonly mode: string;
  readonly container?: string;
  readonly proxyUid?: string;
  readonly inbound?: { readonly redirectTo: string; readonly ports: string; readonly excludedPorts: readonly string[] };
  readonly outbound?: {
    readonly redirectTo: string;
    readonly ipRanges: string;
    readonly excludedIpRanges: readonly string[];
    readonly ports?: readonly string[];
    readonly excludedPorts: readonly string[];
  };
  readonly rerouteInterfaces?: readonly string[];
  readonly excludedInterfaces?: readonly string[];
  /** The same, in sentences. */
  readonly summary: readonly string[];
}

const list = (s: string | undefined): string[] =>
  s
    ? s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean)
    : [];

function allContainers(pod: Pod): Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

/** What the init container will capture, read back from the arguments it gets. */
export function interceptionSummary(pod: Pod): InterceptionSummary {
  const init = allContainers(pod).find((c) => c.name === CONTAINER.init || c.name === CONTAINER.validation);
  const proxy = allContainers(pod).find((c) => c.name === CONTAINER.proxy);
  if (!init?.args || init.args[0] !== IPTABLES_COMMAND) {
    const mode = proxy?.env?.find((e) => e.name === "ISTIO_META_INTERCEPTION_MODE")?.value ?? "NONE";
    return {
      mode,
      summary: proxy
        ? ["no traffic is redirected to the proxy (interception mode NONE): applications must use it explicitly"]
        : ["no sidecar: nothing is intercepted"],
    };
  }
  const args = readIptablesArgs(init.args.slice(1));
  const mode = args.mode ?? "REDIRECT";
  const inPorts = args.includeInboundPorts ?? "*";
  const exIn = list(args.excludeInboundPorts);
  const inIps = args.includeOutboundIPRanges ?? "*";
  const exIps = list(args.excludeOutboundIPRanges);
  const outPorts = args.includeOutboundPorts !== undefined ? list(args.includeOutboundPorts) : undefined;
  const exOut = list(args.excludeOutboundPorts);
  const reroute = list(args.rerouteInterfaces);
  const exIf = list(args.excludeInterfaces);
  const uid = args.proxyUid ?? String(PROXY_ID);
  const inboundPort = args.inboundPort ?? String(PORT.inbound);
  const outboundPort = args.outboundPort ?? String(PORT.outbound);
  const summary: string[] = [];
  const validating = init.name === CONTAINER.validation;
  summary.push(
    validating
      ? `the CNI plugin sets up ${mode} interception; ${init.name} only checks it`
      : `${init.name} sets up ${mode} interception with iptables before the app starts`,
  );
  if (inPorts === "") summary.push("inbound: nothing is redirected");
  else
    summary.push(
      `inbound: ${inPorts === "*" ? "all ports" : `ports ${inPorts}`} redirected to the proxy on ${inboundPort}${exIn.length ? `, except ${exIn.join(", ")}` : ""}`,
    );
  if (inIps === "" && !outPorts) summary.push("outbound: nothing is redirected");
  else {
    const to = inIps === "*" ? "all destinations" : inIps === "" ? "no IP range" : `destinations in ${inIps}`;
    summary.push(
      `outbound: ${to}${outPorts ? ` (and ports ${outPorts.join(", ")} to any destination)` : ""} redirected to the proxy on ${outboundPort}${exIps.length ? `, except ${exIps.join(", ")}` : ""}${exOut.length ? `; ports ${exOut.join(", ")} are never redirected` : ""}`,
    );
  }
  summary.push(`traffic of uid ${uid} (the proxy itself) is never redirected`);
  if (reroute.length) summary.push(`traffic from interfaces ${reroute.join(", ")} is also redirected`);
  if (exIf.length) summary.push(`interfaces ${exIf.join(", ")} are left alone`);
  return {
    mode,
    container: init.name,
    proxyUid: uid,
    inbound: { redirectTo: inboundPort, ports: inPorts, excludedPorts: exIn },
    outbound: {
      redirectTo: outboundPort,
      ipRanges: inIps,
      excludedIpRanges: exIps,
      ...(outPorts ? { ports: outPorts } : {}),
      excludedPorts: exOut,
    },
    ...(reroute.length ? { rerouteInterfaces: reroute } : {}),
    ...(exIf.length ? { excludedInterfaces: exIf } : {}),
    summary,
  };
}

export interface ProxySummary {
  readonly image: string;
  readonly native: boolean;
  readonly nodeId: string;
  readonly cluster: string;
  readonly discoveryAddress: string;
  readonly caAddress: string;
  readonly clusterId: string;
  readonly meshId: string;
  readonly trustDomain: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly resources: unknown;
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly proxyConfig: unknown;
}

/** What pilot-agent will bootstrap Envoy with, read back from the istio-proxy container. */
export function proxySummary(pod: Pod, namespace: string, config: Config): ProxySummary | undefined {
  const init = pod.spec?.initContainers ?? [];
  const proxy = allContainers(pod).find((c) => c.name === CONTAINER.proxy);
  if (!proxy) return undefined;
  const env = new Map((proxy.env ?? []).map((e) => [e.name, e.value]));
  const domain =
    (proxy.args ?? []).find((a) => a.startsWith("$(POD_NAMESPACE).svc."))?.replace("$(POD_NAMESPACE)", namespace) ??
    `${namespace}.svc.${config.clusterDomain}`;
  const name = pod.metadata?.name || `${pod.metadata?.generateName ?? ""}<generated>`;
  let proxyConfig: unknown;
  try {
    proxyConfig = JSON.parse(env.get("PROXY_CONFIG") ?? "{}");
  } catch {
    proxyConfig = env.get("PROXY_CONFIG");
  }
  // parse boundary: the PROXY_CONFIG the injector wrote; each field read is checked where used.
  const pc = (proxyConfig ?? {}) as { discoveryAddress?: string; holdApplicationUntilProxyStarts?: boolean };
  const app = own(pod.metadata?.labels, "app");
  const workload = env.get("ISTIO_META_WORKLOAD_NAME");
  // The agent port is the annotation's (what the injector rendered the probes and the init
  // container's exclusions from), in classic mode too, where no preStop names it.
  const debugPort = (proxy.lifecycle?.preStop?.exec?.command ?? [])
    .find((a) => a.startsWith("--debug-port="))
    ?.split("=")[1];
  const status = Number(own(pod.metadata?.annotations, A.statusPort) ?? debugPort ?? config.proxy.statusPort);
  const native = init.some((c) => c.name === CONTAINER.proxy) && proxy.restartPolicy === "Always";
  return {
    image: proxy.image ?? "",
    native,
    nodeId: `sidecar~<pod IP>~${name}.${namespace}~${domain}`,
    cluster: `${app || workload || "istio-proxy"}.${namespace}`,
    discoveryAddress: pc.discoveryAddress ?? config.discoveryAddress,
    caAddress: env.get("CA_ADDR") ?? config.caAddress,
    clusterId: env.get("ISTIO_META_CLUSTER_ID") ?? config.clusterId,
    meshId: env.get("ISTIO_META_MESH_ID") ?? config.meshId,
    trustDomain: env.get("TRUST_DOMAIN") ?? config.trustDomain,
    ports: {
      admin: PORT.admin,
      outbound: PORT.outbound,
      inbound: PORT.inbound,
      agent: Number.isFinite(status) ? status : config.proxy.statusPort,
      readiness: PORT.readiness,
      envoyPrometheus: PORT.envoyPrometheus,
    },
    resources: proxy.resources ?? {},
    // A native sidecar ignores the setting (the injector renders no postStart wait for it).
    holdApplicationUntilProxyStarts:
      !native &&
      ((pod.spec?.containers[0]?.name === CONTAINER.proxy && proxy.lifecycle?.postStart !== undefined) ||
        pc.holdApplicationUntilProxyStarts === true),
    proxyConfig,
  };
}
