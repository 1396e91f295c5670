// The one use case the webhook, the preview and the CLI share, as Istio's pipeline: check the
// Pod's shape, decide (policy.ts), validate the annotations, strip a previous injection, read
// the Pod's settings, then
//   apply the templates (template.ts) -> place their containers (placement.ts) -> the Pod's
//   metadata and status record (metadata.ts) -> the Prometheus merge (prometheus.ts) -> the
//   probe rewrite (probes.ts) -> order the containers (ordering.ts) -> the Pod's spec
//   (placement.ts) -> the patch (patch.ts).
// The Prometheus merge comes before the probe rewrite, as in Istio's postProcessPod: each
// appends its env to the sidecar, in that order. Each step runs under a name: a failure that
// is no refusal (a bug) is reported as an EngineFailure naming it.
import type { Config } from "../config/types.js";
import type { PodSpec } from "../kube/types.js";
import { annotationKeyWarnings } from "./annotation-keys.js";
import { podMetadata, type PodMetadata } from "./metadata.js";
import { orderContainers } from "./ordering.js";
import { buildParams, type Params } from "./params.js";
import { overlaid, podPatch } from "./patch.js";
import { placeContainers, podSpec, type ContainerLists } from "./placement.js";
import { decide } from "./policy.js";
import { applyProbeRewrite } from "./probes.js";
import { applyPrometheusMerge } from "./prometheus.js";
import { readPod, type CheckedPod } from "./shape.js";
import { stripInjected } from "./strip.js";
import { configParts } from "./template-parts.js";
import { applyTemplates } from "./template.js";
import { EngineFailure, InjectionError, type InjectContext, type InjectResult } from "./types.js";
import { annotationWarnings, validateAnnotations } from "./validate.js";

/**
 * What the injection makes of the Pod. The labels stay the Pod's own map with the template's
 * over it (a Pod can carry hundreds of thousands; the webhook needs only the patch, which
 * reads the template's few): `injectedPod` copies them into the Pod, for the callers that
 * want the Pod itself.
 */
interface Rendered extends PodMetadata {
  readonly pod: CheckedPod;
  readonly spec: PodSpec;
}

function injectedPod(r: Rendered): CheckedPod {
  const labels = overlaid(r.labels);
  // As the patch has it (mapPatch): a Pod without labels is given none unless a template adds some.
  const withLabels = r.pod.metadata?.labels !== undefined || Object.keys(labels).length > 0;
  return {
    ...r.pod,
    metadata: { ...r.pod.metadata, ...(withLabels ? { labels } : {}), annotations: r.annotations.toObject() },
    spec: r.spec,
  };
}

/** Istio's injection of one Pod, step by step (see the header). */
function render(pod: CheckedPod, p: Params, warnings: string[]): Rendered {
  const out = applyTemplates(p);
  const placed = placeContainers(pod.spec, out, p, warnings);
  const { labels, annotations } = podMetadata(p, out, placed);
  let lists: ContainerLists = applyPrometheusMerge(placed, annotations, p, warnings);
  lists = applyProbeRewrite(lists, annotations, p);
  lists = orderContainers(lists.initContainers, lists.containers, p.proxyFirst);
  return { pod, labels, annotations, spec: podSpec(pod.spec, lists, out) };
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

  step("checking the annotations", () => validateAnnotations(pod.metadata?.annotations, true));
  const stripped = step("removing a previous injection", () => stripInjected(pod, config));
  const params = step("reading the Pod's settings", () => {
    const p = buildParams(stripped, ctx, config, configParts(config).resources);
    warnings.push(
      ...annotationWarnings(p.annotations, p.native, p.proxyFirst),
      ...p.proxyConfig.warnings,
      ...p.warnings,
    );
    return p;
  });
  const rendered = step("rendering the sidecar", () => render(stripped, params, warnings));
  const patch = step("building the patch", () => podPatch(pod, rendered));
  return new Injected(policy.decision, patch, rendered, warnings);
}

/**
 * An injection's result. The injected Pod is put together when asked for: the webhook answers
 * with the patch alone. A class, not an object literal with a getter: such a literal gets a
 * hidden class (map) of its own per call, which V8 keeps in the old generation, so every
 * scavenge took it as a root and promoted all the review's objects its getter's closure reached
 * (about 4 KB per review, collected only by mark-compacts: the webhook's tail). The getter on the
 * prototype shares one map (test/unit/admission/server-retention.test.ts measures it).
 */
class Injected implements InjectResult {
  #pod: CheckedPod | undefined;
  readonly #rendered: Rendered;
  constructor(
    readonly decision: InjectResult["decision"],
    readonly patch: InjectResult["patch"],
    rendered: Rendered,
    readonly warnings: string[],
  ) {
    this.#rendered = rendered;
  }
  get pod(): CheckedPod {
    return (this.#pod ??= injectedPod(this.#rendered));
  }
}
