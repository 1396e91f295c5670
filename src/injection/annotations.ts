// The Pod annotations and labels the injector reads or writes, named once.
import { own } from "./own.js";

export const A = {
  inject: "sidecar.istio.io/inject",
  status: "sidecar.istio.io/status",
  overrides: "proxy.istio.io/overrides",
  proxyConfig: "proxy.istio.io/config",
  templates: "inject.istio.io/templates",
  rev: "istio.io/rev",
  interceptionMode: "sidecar.istio.io/interceptionMode",
  includeOutboundIPRanges: "traffic.sidecar.istio.io/includeOutboundIPRanges",
  excludeOutboundIPRanges: "traffic.sidecar.istio.io/excludeOutboundIPRanges",
  includeInboundPorts: "traffic.sidecar.istio.io/includeInboundPorts",
  excludeInboundPorts: "traffic.sidecar.istio.io/excludeInboundPorts",
  includeOutboundPorts: "traffic.sidecar.istio.io/includeOutboundPorts",
  excludeOutboundPorts: "traffic.sidecar.istio.io/excludeOutboundPorts",
  excludeInterfaces: "traffic.sidecar.istio.io/excludeInterfaces",
  kubevirtInterfaces: "traffic.sidecar.istio.io/kubevirtInterfaces",
  rerouteVirtualInterfaces: "istio.io/reroute-virtual-interfaces",
  statusPort: "status.sidecar.istio.io/port",
  readinessInitialDelay: "readiness.status.sidecar.istio.io/initialDelaySeconds",
  readinessPeriod: "readiness.status.sidecar.istio.io/periodSeconds",
  readinessFailureThreshold: "readiness.status.sidecar.istio.io/failureThreshold",
  readinessApplicationPorts: "readiness.status.sidecar.istio.io/applicationPorts",
  rewriteProbes: "sidecar.istio.io/rewriteAppHTTPProbers",
  nativeSidecar: "sidecar.istio.io/nativeSidecar",
  proxyImage: "sidecar.istio.io/proxyImage",
  proxyImageType: "sidecar.istio.io/proxyImageType",
  logLevel: "sidecar.istio.io/logLevel",
  componentLogLevel: "sidecar.istio.io/componentLogLevel",
  agentLogLevel: "sidecar.istio.io/agentLogLevel",
  bootstrapOverride: "sidecar.istio.io/bootstrapOverride",
  userVolume: "sidecar.istio.io/userVolume",
  userVolumeMount: "sidecar.istio.io/userVolumeMount",
  capNetBindService: "sidecar.istio.io/capNetBindService",
  proxyCPU: "sidecar.istio.io/proxyCPU",
  proxyMemory: "sidecar.istio.io/proxyMemory",
  proxyCPULimit: "sidecar.istio.io/proxyCPULimit",
  proxyMemoryLimit: "sidecar.istio.io/proxyMemoryLimit",
  mergeMetrics: "prometheus.istio.io/merge-metrics",
  defaultContainer: "kubectl.kubernetes.io/default-container",
  defaultLogsContainer: "kubectl.kubernetes.io/default-logs-container",
  multusNetworks: "k8s.v1.cni.cncf.io/networks",
  promScrape: "prometheus.io/scrape",
  promPort: "prometheus.io/port",
  promPath: "prometheus.io/path",
} as const;

export const L = {
  inject: "sidecar.istio.io/inject",
  rev: "istio.io/rev",
  tlsMode: "security.istio.io/tlsMode",
  canonicalName: "service.istio.io/canonical-name",
  canonicalRevision: "service.istio.io/canonical-revision",
  workloadName: "service.istio.io/workload-name",
  network: "topology.istio.io/network",
  tunnel: "networking.istio.io/tunnel",
  podTemplateHash: "pod-template-hash",
  deploymentConfig: "deploymentconfig",
} as const;

export const CONTAINER = {
  proxy: "istio-proxy",
  init: "istio-init",
  validation: "istio-validation",
  coreDump: "enable-core-dump",
} as const;

/** Reads an annotation, `undefined` when absent. */
export function ann(annotations: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  return own(annotations, key);
}
