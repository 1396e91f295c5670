// The one use case the webhook, the preview and the CLI share: decide, render, merge, post-
// process (order, probe rewrite, Prometheus merge, metadata) and express the result as a patch.
import type { Config } from "../config/types.js";
import type { Container, EnvVar, JsonObject, PodSpec, Volume } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { clusterEnv, NETWORK_ENV, writeClusterEnv } from "./cluster-info.js";
import { servedRevision } from "./istio.js";
import { mergeList, mergeObject } from "./merge.js";
import { orderContainers } from "./ordering.js";
import { assignOwn, copyOwn } from "./own.js";
import { adjustInitUser, overrideFinder, parseOverrides, recordedContainer, type Overrides } from "./overrides.js";
import { buildParams, goBool, type Params } from "./params.js";
import { listPatch, mapPatch, overlaid, overlayPatch, valuePatch, type Overlaid } from "./patch.js";
import { decide } from "./policy.js";
import { APP_PROBERS_ENV, rewriteProbes } from "./probes.js";
import { PROMETHEUS_ENV, prometheusMerge, SECURE_PORT, securePortAnnotation } from "./prometheus.js";
import { readPod, type CheckedPod } from "./shape.js";
import { stripInjected } from "./strip.js";
import { configParts } from "./template-parts.js";
import { renderTemplates, selectTemplates, type TemplateOutput } from "./template.js";
import { EngineFailure, InjectionError, type InjectContext, type InjectResult, type PatchOperation } from "./types.js";
import { annotationWarnings, validateAnnotations } from "./validate.js";
import { annotationKeyWarnings } from "./annotation-keys.js";

function names(list: readonly { name: string }[]): string[] | null {
  return list.length ? list.map((x) => x.name) : null;
}

/**
 * Kubernetes' strategic merge order for a list merged by name (mergeSortedSlice): the user's
 * items the template does not name are interleaved with the template's items, each list keeping
 * its order; a user's item goes first only when the template's item is also the user's and
 * comes later in the user's list. So a container only the template has goes before the user's
 * remaining ones: grpc-simple's grpc-bootstrap-init before the user's init containers.
 */
function strategicOrder(user: readonly Container[], tpl: readonly Container[], own: Set<string>, other: Set<string>): Container[] {
  const at = new Map<string, number>();
  user.forEach((c, i) => {
    if (!at.has(c.name)) at.set(c.name, i);
  });
  const left = user.filter((c) => !own.has(c.name) && !other.has(c.name));
  const out: Container[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < tpl.length) {
    const l = left[i];
    const r = tpl[j];
    if (l === undefined) {
      out.push(r as Container);
      j++;
    } else if (r === undefined) {
      out.push(l);
      i++;
    } else {
      const ri = at.get(r.name);
      if (ri !== undefined && (at.get(l.name) as number) < ri) {
        out.push(l);
        i++;
      } else {
        out.push(r);
        j++;
      }
    }
  }
  return out;
}

/** Puts each template container where the template says, merged with the user's override. */
function placeContainers(
  spec: PodSpec,
  out: TemplateOutput,
  existing: Overrides | undefined,
  warnings: string[],
): { initContainers: Container[]; containers: Container[]; overrides: Overrides } {
  const userInit = spec.initContainers ?? [];
  const userMain = spec.containers;
  // Only the containers named as a template's can override one: the others are not indexed
  // (a Pod may declare a hundred thousand).
  const templateNames = new Set<string>();
  for (const c of out.containers) templateNames.add(c.name);
  for (const c of out.initContainers) templateNames.add(c.name);
  const user: Container[] = [];
  for (const c of userInit) if (templateNames.has(c.name)) user.push(c);
  for (const c of userMain) if (templateNames.has(c.name)) user.push(c);
  const overrides: Overrides = {};
  const findOverride = overrideFinder(existing, user);

  const place = (tpl: Container, list: "containers" | "initContainers"): Container => {
    const ov = findOverride(tpl.name);
    if (!ov) return tpl;
    const recorded = recordedContainer(ov);
    (overrides[list] ??= []).push(recorded);
    if (tpl.name === CONTAINER.proxy || tpl.name === CONTAINER.init || tpl.name === CONTAINER.validation) {
      warnings.push(`container ${tpl.name} declared in the pod overrides the injected one`);
    }
    // "image: auto" (dropped from the record) keeps the injected image.
    const merged = mergeObject(tpl, recorded);
    if (merged.image === undefined) merged.image = tpl.image;
    return merged;
  };

  const tplMain = out.containers.map((c) => place(c, "containers"));
  const tplInit = out.initContainers.map((c) => place(c, "initContainers"));

  // The template's items merged into the user's lists as a strategic merge patch orders them;
  // a user's item the template moves to the other list is dropped.
  const mainNames = new Set(tplMain.map((c) => c.name));
  const initNames = new Set(tplInit.map((c) => c.name));
  const containers = strategicOrder(userMain, tplMain, mainNames, initNames);
  const initContainers = strategicOrder(userInit, tplInit, initNames, mainNames);
  return { initContainers, containers, overrides };
}

/** Istio judges TPROXY for the proxy's ids on the annotation or the ProxyConfig, either one. */
function tproxyAnywhere(p: Params): boolean {
  return p.tproxy || p.annotations[A.interceptionMode] === "TPROXY" || (p.proxyConfig.interceptionMode ?? p.config.interception.mode) === "TPROXY";
}

/**
 * Appends `env` to the sidecar as Istio's FindSidecar finds it: the first istio-proxy of the
 * containers, else the first of the init containers (templates such as `sidecar,grpc-agent`
 * leave one in each list).
 */
function appendSidecarEnv(initContainers: Container[], containers: Container[], env: EnvVar): { initContainers: Container[]; containers: Container[] } {
  const add = (list: Container[]): Container[] | undefined => {
    const i = list.findIndex((c) => c.name === CONTAINER.proxy);
    if (i < 0) return undefined;
    const c = list[i]!;
    const next = copyOwn(c);
    next.env = [...(c.env ?? []), env];
    return list.with(i, next);
  };
  const main = add(containers);
  if (main) return { initContainers, containers: main };
  return { initContainers: add(initContainers) ?? initContainers, containers };
}

/**
 * What the injection makes of the Pod. The labels stay the Pod's own map with the template's
 * over it (a Pod can carry hundreds of thousands; the webhook needs only the patch, which
 * reads the template's few): `injectedPod` copies them into the Pod, for the callers that
 * want the Pod itself.
 */
interface Rendered {
  readonly pod: CheckedPod;
  readonly labels: Overlaid;
  readonly annotations: Record<string, string>;
  readonly spec: PodSpec;
}

function injectedPod(r: Rendered): CheckedPod {
  return { ...r.pod, metadata: { ...r.pod.metadata, labels: overlaid(r.labels), annotations: r.annotations }, spec: r.spec };
}

const isProxy = (c: Container): boolean => c.name === CONTAINER.proxy;

function render(pod: CheckedPod, p: Params, warnings: string[]): Rendered {
  const templates = selectTemplates(p.annotations);
  const out = renderTemplates(templates, p);
  const spec = pod.spec;
  const existing = parseOverrides(p.annotations);
  const placed = placeContainers(spec, out, existing, warnings);
  const vars = clusterEnv(p);
  const withEnv = writeClusterEnv(placed.initContainers, placed.containers, vars);
  const userProxy = placed.overrides.containers?.find(isProxy) ?? placed.overrides.initContainers?.find(isProxy);
  let { initContainers, containers } = adjustInitUser(withEnv.initContainers, withEnv.containers, userProxy, tproxyAnywhere(p));

  // Built key by key (copyOwn, setOwn): keys are added to it below.
  const annotations: Record<string, string> = copyOwn(p.annotations);
  assignOwn(annotations, out.annotations);
  assignOwn(annotations, p.config.injectedAnnotations);
  const network = vars[NETWORK_ENV];
  const labels: Overlaid = { base: p.labels, overlay: network === undefined ? out.labels : { ...out.labels, [L.network]: network } };
  annotations[A.status] = JSON.stringify({
    initContainers: names(out.initContainers),
    containers: names(out.containers),
    volumes: names(out.volumes),
    imagePullSecrets: names(out.imagePullSecrets),
    revision: servedRevision(p.config.revision),
  });
  // As in Istio, the overrides are recorded on first injection only: a Pod that carries a
  // status annotation (even a stale or unreadable one) keeps whatever record it has.
  const firstInjection = !Object.hasOwn(p.annotations, A.status);
  if (firstInjection && (placed.overrides.containers || placed.overrides.initContainers)) annotations[A.overrides] = JSON.stringify(placed.overrides);

  const hasProxy = initContainers.some(isProxy) || containers.some(isProxy);
  // Istio's ShouldRewriteAppHTTPProbers: the annotation when ParseBool reads it, else the config's.
  const rewrite = goBool(annotations[A.rewriteProbes]) ?? p.config.rewriteAppProbes;
  // Istio's order: metrics merge, secure metrics port, probe rewrite.
  // As in Istio, the annotations are pointed at the agent's port whether or not the template
  // injected a proxy (grpc-simple does not); the env goes to istio-proxy, when there is one.
  const prom = p.agentStatusPort > 0 ? prometheusMerge(annotations, p.config, p.agentStatusPort) : undefined;
  if (prom) {
    warnings.push(...prom.warnings);
    if (prom.env !== undefined) {
      ({ initContainers, containers } = appendSidecarEnv(initContainers, containers, { name: PROMETHEUS_ENV, value: prom.env }));
    }
    for (const k of prom.remove) delete annotations[k];
    Object.assign(annotations, prom.annotations);
  }

  const proxyEnv = (containers.find(isProxy) ?? initContainers.find(isProxy))?.env;
  const securePort = hasProxy ? securePortAnnotation(annotations, proxyEnv) : undefined;
  if (securePort !== undefined) annotations[SECURE_PORT] = securePort;
  // The Pod's status port annotation, else the agent's. Unlike Istio, a value with blanks
  // around it is that port, and port 0 (no status server) rewrites nothing.
  const statusAnnotation = annotations[A.statusPort];
  const rewritePort = statusAnnotation !== undefined ? Number(statusAnnotation.trim()) : p.agentStatusPort;
  if (hasProxy && rewrite && rewritePort > 0) {
    // As in Istio, the probes are rewritten even when none is handed to the agent (each on the
    // agent's own port, or on a port name the container does not declare).
    const r = rewriteProbes(initContainers, containers, rewritePort, p.agentStatusPort);
    initContainers = r.initContainers as Container[];
    containers = r.containers as Container[];
    if (r.probers) ({ initContainers, containers } = appendSidecarEnv(initContainers, containers, { name: APP_PROBERS_ENV, value: r.probers }));
  }

  ({ initContainers, containers } = orderContainers(initContainers, containers, p.hold));
  const nextSpec: PodSpec = copyOwn(spec);
  nextSpec.containers = containers;
  if (initContainers.length > 0 || spec.initContainers) nextSpec.initContainers = initContainers;
  const volumes = mergeList(spec.volumes ?? [], out.volumes, "name") as Volume[];
  if (volumes.length > 0 || spec.volumes) nextSpec.volumes = volumes;
  const secrets = mergeList(spec.imagePullSecrets ?? [], out.imagePullSecrets, "name") as { name: string }[];
  if (secrets.length > 0 || spec.imagePullSecrets) nextSpec.imagePullSecrets = secrets;
  if (out.podSecurityContext) nextSpec.securityContext = mergeObject((spec.securityContext ?? {}) as JsonObject, out.podSecurityContext);
  return { pod, labels, annotations, spec: nextSpec };
}

function podPatch(before: CheckedPod, after: Rendered): PatchOperation[] {
  const ops: PatchOperation[] = [];
  if (!before.metadata) {
    ops.push({ op: "add", path: "/metadata", value: { labels: overlaid(after.labels), annotations: after.annotations } });
  } else {
    overlayPatch("/metadata/labels", before.metadata.labels, after.labels, ops);
    mapPatch("/metadata/annotations", before.metadata.annotations, after.annotations, ops);
  }
  const b = before.spec;
  const a = after.spec;
  listPatch("/spec/initContainers", b.initContainers, a.initContainers, ops);
  listPatch("/spec/containers", b.containers, a.containers, ops);
  listPatch("/spec/volumes", b.volumes, a.volumes, ops);
  listPatch("/spec/imagePullSecrets", b.imagePullSecrets, a.imagePullSecrets, ops);
  valuePatch("/spec/securityContext", b.securityContext, a.securityContext, ops);
  return ops;
}

/** Runs one step: refusals pass as they are; anything else is an EngineFailure naming the step. */
function step<T>(name: string, run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof InjectionError) throw e;
    throw new EngineFailure(name, e);
  }
}

/**
 * Injects one Pod. `input` is whatever the caller was given: its shape is checked first
 * (shape.ts), so that every later step reads a Pod of the declared types.
 */
export function inject(input: unknown, ctx: InjectContext, config: Config): InjectResult {
  const pod = step("checking the shape of the Pod", () => readPod(input));
  const policy = step("deciding whether to inject", () => decide(pod, ctx.namespace, config));
  const warnings = [...policy.warnings, ...annotationKeyWarnings(pod.metadata?.annotations)];
  if (!policy.decision.inject) return { decision: policy.decision, patch: [], pod, warnings };

  step("checking the annotations", () => validateAnnotations(pod.metadata?.annotations, config.proxy.statusPort));
  const stripped = step("removing a previous injection", () => stripInjected(pod, config));
  const params = step("reading the Pod's settings", () => {
    const p = buildParams(stripped, ctx, config, configParts(config).resources);
    warnings.push(...annotationWarnings(p.annotations, p.native, p.proxyConfig.holdApplicationUntilProxyStarts === true || p.config.proxy.holdApplicationUntilProxyStarts));
    return p;
  });
  const rendered = step("rendering the sidecar", () => render(stripped, params, warnings));
  const patch = step("building the patch", () => podPatch(pod, rendered));
  // The injected Pod is put together when asked for: the webhook answers with the patch alone.
  let injected: CheckedPod | undefined;
  return {
    decision: policy.decision,
    patch,
    get pod(): CheckedPod {
      return (injected ??= injectedPod(rendered));
    },
    warnings,
  };
}
