// What a Pod will cost the engine, read from its decoded object before anything else is, to
// choose where it is answered: on the event loop (every other review and the health checks
// wait for it) or on the review worker (admission/review-pool.ts); the server's /preview,
// which reads Pods on its event loop, refuses the Pods this sends to the worker. The engine's
// work is linear in what it reads, but some annotations cost by their length far more than a
// review's bytes say, and each template named is rendered and merged over every container.
import { A } from "./annotations.js";

/**
 * `proxy.istio.io/config` longer than this goes to the worker: its YAML costs 10-20 µs a key or
 * item to read (yaml-limits.ts PROXY_CONFIG_LIMITS), where a whole review of the usual kind
 * costs tens of microseconds. Real annotations are a few hundred characters.
 */
export const INLINE_PROXY_CONFIG_CHARS = 1024;
/**
 * `inject.istio.io/templates` longer than this: each name in it is a template rendered and
 * merged over the Pod (a name given twice is applied twice, as Istio applies it). Real lists
 * name one to three templates, under 40 characters.
 */
export const INLINE_TEMPLATES_CHARS = 256;
/**
 * `sidecar.istio.io/userVolume` or `userVolumeMount` longer than this: each entry is a volume
 * or mount decoded as Go decodes it, checked and merged, about 0.5 µs a character (a 64 KiB
 * one, 30 ms). Real ones name a few volumes, a few hundred characters.
 */
export const INLINE_USER_VOLUME_CHARS = 4096;

/**
 * `proxy.istio.io/overrides` longer than this: the record of a Pod's own containers, decoded as
 * Go decodes it (as userVolume), and each container it records and the Pod lacks is one more
 * the templates write for (RECORDED_CONTAINER_CHARS). Real records hold one or two containers.
 */
export const INLINE_OVERRIDES_CHARS = 4096;

/** The annotations whose length alone sends a Pod to the worker, and the length each may have inline. */
export const INLINE_ANNOTATION_CHARS: Readonly<Record<string, number>> = {
  [A.proxyConfig]: INLINE_PROXY_CONFIG_CHARS,
  [A.templates]: INLINE_TEMPLATES_CHARS,
  [A.userVolume]: INLINE_USER_VOLUME_CHARS,
  [A.userVolumeMount]: INLINE_USER_VOLUME_CHARS,
  [A.overrides]: INLINE_OVERRIDES_CHARS,
};

/** INLINE_ANNOTATION_CHARS' entries, made once: read for every review. */
const ANNOTATION_LIMITS: readonly (readonly [string, number])[] = Object.entries(INLINE_ANNOTATION_CHARS);

/**
 * The fewest characters a container takes in an overrides record (`{"name":"x"},`): the record's
 * length over this is as many containers as it can add to the templates' (params.ts
 * withRecorded), counted before it is read.
 */
export const RECORDED_CONTAINER_CHARS = 12;

/**
 * A template's own work, in containers' worth: rendering and merging the sidecar template over
 * a one-container Pod costs about what merging grpc-agent's entry for 16 more containers does
 * (0.1-0.3 ms against 8-20 µs a container).
 */
export const TEMPLATE_OWN_UNITS = 16;
/**
 * The templates' work on a Pod answered inline at most, in units of one template over one
 * container (8-20 µs): templates named × (containers + init containers + TEMPLATE_OWN_UNITS).
 * A Pod of one template is answered inline up to 1,008 containers (7-40 ms, grpc-agent the
 * costliest); one naming 23 templates over 3,800 containers (a 64 KB review) held the event
 * loop for seconds.
 */
export const INLINE_TEMPLATE_UNITS = 1024;

/**
 * The templates' work on a Pod at most, in the same units, wherever it is answered: past it
 * the Pod is refused (a deliberate difference, README). Istio's injector, whose time grows
 * with the templates × the containers (about 0.7 ms each), with the square of the templates
 * (1,000 over one container took it 32 s) and, for grpc-agent, with the square of the
 * containers (300 took it 5.7 s), takes about 46 s for this much on the development VM, past
 * the API server's longest webhook timeout (30 s). Ours takes 0.7-2.1 s for it, on the worker,
 * and at most 150 MB of RSS under the chart's heap settings (what it holds grows with the work).
 */
export const MAX_TEMPLATE_UNITS = 65_536;

/**
 * Why `names` templates over `containers` (the templates' containers, the recorded ones among
 * them, and the init containers) are more work than MAX_TEMPLATE_UNITS; undefined when not.
 */
export function templateWorkOver(names: number, containers: number): string | undefined {
  return workOver(names, containers, MAX_TEMPLATE_UNITS);
}

/** Why `names` templates over `containers` are more work than `max` units; undefined when not. */
function workOver(names: number, containers: number, max: number): string | undefined {
  const units = names * (containers + TEMPLATE_OWN_UNITS);
  if (units <= max) return undefined;
  return `its ${names} template${names === 1 ? "" : "s"} and ${containers} container${containers === 1 ? "" : "s"} (init containers and those its overrides record counted) are ${units} units of work (templates × (containers + ${TEMPLATE_OWN_UNITS})), more than the ${max}`;
}

const field = (object: unknown, key: string): unknown =>
  typeof object === "object" && object !== null && Object.hasOwn(object, key) ? Reflect.get(object, key) : undefined;

const lengthOf = (list: unknown): number => (Array.isArray(list) ? list.length : 0);

/**
 * Why `pod` (a Pod as decoded, unchecked) costs more than is answered inline, as
 * "its <what> is <n> …, more than the <max>"; undefined when it does not.
 */
export function inlineCostOver(pod: unknown): string | undefined {
  const annotations = field(field(pod, "metadata"), "annotations");
  for (const [key, max] of ANNOTATION_LIMITS) {
    const value = field(annotations, key);
    if (typeof value === "string" && value.length > max)
      return `its ${key} is ${value.length} characters, more than the ${max}`;
  }
  const templates = field(annotations, A.templates);
  // Within INLINE_TEMPLATES_CHARS: counted in a few hundred characters at most.
  const names = typeof templates === "string" ? Math.max(1, templates.split(",").length) : 1;
  const spec = field(pod, "spec");
  const overrides = field(annotations, A.overrides);
  // At most as many recorded containers as the record's length allows (within INLINE_OVERRIDES_CHARS).
  const recorded = typeof overrides === "string" ? Math.floor(overrides.length / RECORDED_CONTAINER_CHARS) : 0;
  const containers = lengthOf(field(spec, "containers")) + lengthOf(field(spec, "initContainers")) + recorded;
  return workOver(names, containers, INLINE_TEMPLATE_UNITS);
}
