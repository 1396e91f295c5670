// Everything the templates need for one Pod, resolved once from the config, the Pod's
// annotations and labels, and the injection context. Templates read only this.
import type { Config, InterceptionMode, Resources } from "../config/types.js";
import type { Container, JsonObject, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { parseProxyConfig, type ProxyConfigOverlay } from "./proxy-config.js";
import { canonicalResources } from "./quantity.js";
import type { InjectContext, WorkloadRef } from "./types.js";
import { workloadOf } from "./owner.js";

export interface Params {
  readonly config: Config;
  readonly pod: Pod;
  readonly annotations: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly namespace: string;
  readonly workload: WorkloadRef;
  readonly proxyConfig: ProxyConfigOverlay;
  readonly mode: InterceptionMode;
  readonly tproxy: boolean;
  readonly native: boolean;
  readonly hold: boolean;
  readonly statusPort: string;
  readonly proxyImage: string;
  readonly initImage: string;
  readonly resources: Resources | undefined;
  readonly agentLogLevel: string;
  readonly capNetBindService: boolean;
  /** Names of the Pod's containers other than istio-proxy, in order. */
  readonly appContainers: readonly string[];
  readonly pathEnv: Readonly<Record<string, string>>;
}

function annotationResources(a: Readonly<Record<string, string>>): Resources | undefined {
  const cpu = a[A.proxyCPU];
  const memory = a[A.proxyMemory];
  const cpuLimit = a[A.proxyCPULimit];
  const memoryLimit = a[A.proxyMemoryLimit];
  if (cpu === undefined && memory === undefined && cpuLimit === undefined && memoryLimit === undefined) return undefined;
  const out: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  if (cpu !== undefined || memory !== undefined) {
    out.requests = {};
    if (cpu !== undefined) out.requests.cpu = cpu;
    if (memory !== undefined) out.requests.memory = memory;
  }
  if (cpuLimit !== undefined || memoryLimit !== undefined) {
    out.limits = {};
    if (cpuLimit !== undefined) out.limits.cpu = cpuLimit;
    if (memoryLimit !== undefined) out.limits.memory = memoryLimit;
  }
  return canonicalResources(out);
}

/** Istio's rule for a proxy image annotation: a value with a "/" is a full image name. */
function imageFrom(annotation: string | undefined, configured: string): string {
  if (annotation !== undefined && annotation.includes("/")) return annotation;
  return configured;
}

export function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(1|t|T|TRUE|true|True)$/.test(v);
}

/** strconv.ParseBool: true, false, or undefined for a value it does not read (or no value). */
export function goBool(v: string | undefined): boolean | undefined {
  if (v === undefined || !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(v)) return undefined;
  return isTrue(v);
}

export function resolveNative(config: Config, ctx: InjectContext): boolean {
  if (config.nativeSidecars === "auto") return ctx.nativeSidecarsSupported === true;
  return config.nativeSidecars === "true";
}

export function buildParams(pod: Pod, ctx: InjectContext, config: Config, configResources: Resources | undefined): Params {
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const proxyConfig = parseProxyConfig(annotations[A.proxyConfig], config);
  const mode = (annotations[A.interceptionMode] as InterceptionMode | undefined) ?? proxyConfig.interceptionMode ?? config.interception.mode;
  const nativeAnn = annotations[A.nativeSidecar];
  const native = nativeAnn !== undefined ? nativeAnn !== "false" : resolveNative(config, ctx);
  const hold = !native && (proxyConfig.holdApplicationUntilProxyStarts ?? config.proxy.holdApplicationUntilProxyStarts);
  const proxyImage = imageFrom(annotations[A.proxyImage], config.proxy.image);
  const initImage = imageFrom(annotations[A.proxyImage], config.proxyInit.image || config.proxy.image);
  const containers: readonly Container[] = pod.spec?.containers ?? [];
  return {
    config,
    pod,
    annotations,
    labels,
    namespace: ctx.namespace,
    workload: ctx.workload ?? workloadOf(pod, ctx.namespace),
    proxyConfig,
    mode,
    tproxy: mode === "TPROXY",
    native,
    hold,
    statusPort: annotations[A.statusPort] ?? String(config.proxy.statusPort),
    proxyImage,
    initImage,
    resources: annotationResources(annotations) ?? configResources,
    agentLogLevel: annotations[A.agentLogLevel] ?? config.proxy.agentLogLevel,
    // The template compares the annotation's text with "true", exactly.
    capNetBindService: annotations[A.capNetBindService] === "true",
    appContainers: containers.filter((c) => c.name !== CONTAINER.proxy).map((c) => c.name),
    pathEnv: ctx.pathEnv ?? {},
  };
}

export function labelOr(p: Params, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = p.labels[k];
    if (v) return v;
  }
  return undefined;
}

export function workloadName(p: Params): string {
  return p.labels[L.workloadName] || p.workload.name;
}

export type { JsonObject };
