// Several templates over the Pod (`inject.istio.io/templates: a,b`): Istio merges one template
// after the other over the Pod (RunTemplate, each a strategic merge patch: merge.ts), not the
// templates merged together and then over the Pod. Strategic merge is not associative in the
// order it gives: where the Pod's own items share keys with a later template, the earlier
// template's new items come first. The Pod's [extra, workload-socket] volumes under
// grpc-simple's [grpc-io-proxyless-bootstrap], then under the sidecar's [workload-socket, …],
// give [grpc-io-proxyless-bootstrap, extra, workload-socket, …]; the templates merged first
// would put grpc-io-proxyless-bootstrap after the sidecar's volumes. So the Pod's volumes, pull
// secrets and container lists are merged with each template's in turn, and so are the keyed
// lists of a container the Pod declares too (mergeOverride's versions). With native sidecars, a
// Pod's istio-proxy among its containers goes to the end of its init containers before the
// first template that puts the proxy there is merged, as RunTemplate moves it.
import type { Container } from "../kube/types.js";
import { CONTAINER } from "./annotations.js";
import { mergeListStrategic } from "./merge.js";
import type { TemplateOutput } from "./template.js";

const isProxy = (c: Container): boolean => c.name === CONTAINER.proxy;

/** Each selected template's output, in order: one template, the output itself. */
function stepsOf(out: TemplateOutput): readonly TemplateOutput[] {
  return out.steps ?? [out];
}

/** `base` (a list of the Pod's) with each template's list merged over it in turn, by `key`. */
export function overTemplates<T>(
  base: readonly T[],
  out: TemplateOutput,
  pick: (t: TemplateOutput) => readonly T[],
  key: string,
): T[] {
  let list: T[] = [...base];
  for (const step of stepsOf(out)) list = mergeListStrategic(list, pick(step), key);
  return list;
}

/**
 * Each container the templates write, as each writes it (among its containers or its init
 * containers), in their order; undefined for one template. Indexed once, for a Pod of many
 * containers that a template writes one each for.
 */
export function containerVersions(out: TemplateOutput): (name: string) => readonly Container[] | undefined {
  if (out.steps === undefined) return () => undefined;
  const versions = new Map<string, Container[]>();
  for (const step of out.steps) {
    for (const c of [...step.containers, ...step.initContainers]) {
      const seen = versions.get(c.name);
      if (seen) seen.push(c);
      else versions.set(c.name, [c]);
    }
  }
  return (name) => versions.get(name);
}

/**
 * The Pod's containers and init containers with the templates' (`placed`: merged with the
 * Pod's own of their names) where several templates put them: the order of the Pod's lists
 * after each template was merged over them in turn. A Pod's container of a name the templates
 * place in the other list is left out; the Pod's other containers are its own objects.
 */
export function overlaidContainers(
  user: { readonly containers: readonly Container[]; readonly initContainers: readonly Container[] },
  placed: { readonly containers: readonly Container[]; readonly initContainers: readonly Container[] },
  out: TemplateOutput,
  native: boolean,
): { containers: Container[]; initContainers: Container[] } {
  let main: Container[] = [...user.containers];
  let init: Container[] = [...user.initContainers];
  let proxyInTemplateInit = false;
  for (const step of stepsOf(out)) {
    proxyInTemplateInit ||= step.initContainers.some(isProxy);
    const at = main.findIndex(isProxy);
    const proxy = main[at];
    if (native && proxyInTemplateInit && proxy !== undefined) {
      main = main.toSpliced(at, 1);
      init = [...init, proxy];
    }
    main = mergeListStrategic(main, step.containers, "name");
    init = mergeListStrategic(init, step.initContainers, "name");
  }
  const mainByName = byName(placed.containers);
  const initByName = byName(placed.initContainers);
  return {
    containers: withPlaced(main, mainByName, initByName),
    initContainers: withPlaced(init, initByName, mainByName),
  };
}

function byName(list: readonly Container[]): Map<string, Container> {
  const out = new Map<string, Container>();
  for (const c of list) if (!out.has(c.name)) out.set(c.name, c);
  return out;
}

/**
 * `merged`'s order with the placed containers in the places of their names (once each), the
 * Pod's containers of a name placed in the other list left out, any placed one not found
 * (none: each comes from a template's list) at the end.
 */
function withPlaced(
  merged: readonly Container[],
  own: Map<string, Container>,
  other: Map<string, Container>,
): Container[] {
  const out: Container[] = [];
  const done = new Set<string>();
  for (const c of merged) {
    const placed = own.get(c.name);
    if (placed === undefined) {
      if (!other.has(c.name)) out.push(c);
    } else if (!done.has(c.name)) {
      done.add(c.name);
      out.push(placed);
    }
  }
  for (const [name, c] of own) if (!done.has(name)) out.push(c);
  return out;
}
