// The proxy's resources from the Pod's sidecar.istio.io/proxyCPU, proxyMemory, proxyCPULimit
// and proxyMemoryLimit annotations (the engine's params.ts), in CEL over the admitted `object`:
// - with any of the four, the containers the engine gives the proxy's resources (istio-proxy and
//   istio-init under the default templates) get exactly what they name instead of the config's:
//   requests with cpu and/or memory when either request is annotated, limits likewise;
// - the values are written as the Pod states them; the domain (domain.ts) admits only plain
//   quantities (digits with an optional suffix, or a decimal of at most three places), which the
//   engine accepts without a warning and the API server stores in the same canonical form as the
//   engine's;
// - which containers, and that nothing else changes, is read from the engine's own output for a
//   probe Pod with and without the annotations, not restated; a config whose containers have no
//   resources of their own leaves the annotations to the webhook (the policy writes a container's
//   resources as one value).
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import { A } from "../injection/annotations.js";
import { literal, str } from "./cel.js";
import { containersOf, injectSample } from "./sample.js";

/** The annotations, as [annotation, list, resource]. */
const RESOURCE_ANNOTATIONS = [
  [A.proxyCPU, "requests", "cpu"],
  [A.proxyMemory, "requests", "memory"],
  [A.proxyCPULimit, "limits", "cpu"],
  [A.proxyMemoryLimit, "limits", "memory"],
] as const;

/** The annotation keys the policy honours for the resources. */
export const RESOURCE_ANNOTATION_KEYS: readonly string[] = RESOURCE_ANNOTATIONS.map(([k]) => k);

/** A plain quantity (RE2 and JavaScript read it alike). */
export const PLAIN_QUANTITY = "^([0-9]{1,6}(m|k|M|G|Ki|Mi|Gi)?|[0-9]{1,6}[.][0-9]{1,3})$";

const ANNOTATIONS = "variables.annotations";

interface Entry {
  readonly key: string;
  /** CEL: whether the entry is there. */
  readonly when: string;
  readonly value: string;
}

/**
 * CEL: the map of `a` and `b` that are there (one at least is). Written as ternaries, not with
 * optional entries ({?k: v}): kube-apiserver 1.34's CEL (cel-go 0.26) panics type-checking such
 * a literal in a policy.
 */
function oneOrBoth(a: Entry, b: Entry): string {
  const map = (xs: readonly Entry[]): string => `{${xs.map((e) => `${str(e.key)}: ${e.value}`).join(", ")}}`;
  return `(${a.when}) ? ((${b.when}) ? ${map([a, b])} : ${map([a])}) : ${map([b])}`;
}

/** CEL: the resources the annotations name (only the lists and resources annotated). */
function annotated(): string {
  const has = (k: string): string => `${str(k)} in ${ANNOTATIONS}`;
  const entry = ([k, , r]: (typeof RESOURCE_ANNOTATIONS)[number]): Entry => ({
    key: r,
    when: has(k),
    value: `${ANNOTATIONS}[${str(k)}]`,
  });
  const [cpu, memory, cpuLimit, memoryLimit] = RESOURCE_ANNOTATIONS;
  const requests = {
    key: "requests",
    when: `${has(cpu[0])} || ${has(memory[0])}`,
    value: oneOrBoth(entry(cpu), entry(memory)),
  };
  const limits = {
    key: "limits",
    when: `${has(cpuLimit[0])} || ${has(memoryLimit[0])}`,
    value: oneOrBoth(entry(cpuLimit), entry(memoryLimit)),
  };
  return oneOrBoth(requests, limits);
}

/** CEL: a container's resources, `configured` (a JSON value) unless the Pod annotates them. */
export function resourcesExpression(configured: unknown): string {
  const any = RESOURCE_ANNOTATION_KEYS.map((k) => `${str(k)} in ${ANNOTATIONS}`).join(" || ");
  return `(${any}) ? dyn(${annotated()}) : dyn(${literal(configured)})`;
}

/**
 * The containers whose resources the annotations set, by name, or undefined when the policy
 * leaves the annotations to the webhook: the engine does not set exactly what they name (and
 * nothing else) in containers that have resources of their own under the config.
 */
export function resourceContainers(config: Config, nativeSidecarsSupported: boolean): string[] | undefined {
  const plain = injectSample({}, config, nativeSidecarsSupported);
  const all: Record<string, string> = {
    [A.proxyCPU]: "1",
    [A.proxyMemory]: "2Mi",
    [A.proxyCPULimit]: "3",
    [A.proxyMemoryLimit]: "4Mi",
  };
  const cpuOnly: Record<string, string> = { [A.proxyCPU]: "5" };
  const cases: [Record<string, string>, unknown][] = [
    [all, { requests: { cpu: "1", memory: "2Mi" }, limits: { cpu: "3", memory: "4Mi" } }],
    [cpuOnly, { requests: { cpu: "5" } }],
  ];
  let names: string[] | undefined;
  for (const [annotations, resources] of cases) {
    const out = injectSample(annotations, config, nativeSidecarsSupported);
    const changed = containersOf(out).filter((c, i) => !isDeepStrictEqual(c, containersOf(plain)[i]));
    const these = changed.map((c) => c.name);
    if (names !== undefined && !isDeepStrictEqual(names, these)) return undefined;
    names = these;
    if (changed.length === 0 || changed.some((c) => !isDeepStrictEqual(c.resources, resources))) return undefined;
    if (containersOf(plain).some((c) => these.includes(c.name) && c.resources === undefined)) return undefined;
    // Nothing else: the same Pod once the annotations and those containers' resources are set aside.
    const strip = (p: Pod): unknown => ({
      ...p,
      metadata: { ...p.metadata, annotations: undefined },
      spec: {
        ...p.spec,
        initContainers: p.spec?.initContainers?.map((c) => ({ ...c, resources: undefined })),
        containers: p.spec?.containers.map((c) => ({ ...c, resources: undefined })),
      },
    });
    const annotationsOut = { ...out.metadata?.annotations };
    for (const k of Object.keys(annotations)) delete annotationsOut[k];
    if (!isDeepStrictEqual(strip(out), strip(plain)) || !isDeepStrictEqual(annotationsOut, plain.metadata?.annotations))
      return undefined;
  }
  return names;
}
