// Where the templates' containers go in the Pod (Istio's injectPod, the strategic merge of
// the rendered template over the Pod, then overwriteClusterInfo and adjustInitContainerUser):
// each template container merged with the user's container of the same name (recorded as an
// override), the lists interleaved as a strategic merge orders them, the cluster's env written
// on the sidecar, and the interception's uid set to the user's proxy's. Then, once the later
// steps are done, the Pod's spec with the templates' volumes, pull secrets and security context.
import type { Container, EnvVar, PodSpec } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import { clusterEnv, writeClusterEnv } from "./cluster-info.js";
import { interleave, mergeObject, mergeOverride } from "./merge.js";
import { containerVersions, overlaidContainers, overTemplates } from "./overlay.js";
import { adjustInitUser, overrideFinder, parseOverrides, recordedContainer, type Overrides } from "./overrides.js";
import { copyOwn } from "./own.js";
import type { Params } from "./params.js";
import type { TemplateOutput } from "./template.js";

/** The Pod's two container lists, as each step leaves them. */
export interface ContainerLists {
  readonly initContainers: Container[];
  readonly containers: Container[];
}

export const isProxy = (c: Container): boolean => c.name === CONTAINER.proxy;

/**
 * Kubernetes' strategic merge order for a list merged by name (mergeSortedSlice): the user's
 * items the template does not name are interleaved with the template's items, each list keeping
 * its order; a user's item goes first only when the template's item is also the user's and
 * comes later in the user's list. So a container only the template has goes before the user's
 * remaining ones: grpc-simple's grpc-bootstrap-init before the user's init containers.
 */
function strategicOrder(
  user: readonly Container[],
  tpl: readonly Container[],
  own: Set<string>,
  other: Set<string>,
): Container[] {
  const at = new Map<string, number>();
  user.forEach((c, i) => {
    if (!at.has(c.name)) at.set(c.name, i);
  });
  const left = user.filter((c) => !own.has(c.name) && !other.has(c.name));
  return interleave(left, tpl, (c) => at.get(c.name));
}

/** The template containers merged with the user's overrides, where the template puts them. */
function mergeContainers(
  spec: PodSpec,
  out: TemplateOutput,
  existing: Overrides | undefined,
  warnings: string[],
  native: boolean,
): { initContainers: Container[]; containers: Container[]; overrides: Overrides } {
  const userInit = spec.initContainers ?? [];
  const userMain = spec.containers;
  // Only the containers named as a template's can override one: the others are not indexed
  // (a Pod may declare a hundred thousand).
  const templateNames = new Set<string>();
  for (const c of out.containers) templateNames.add(c.name);
  for (const c of out.initContainers) templateNames.add(c.name);
  const user: Container[] = [];
  // The list each override was declared (or recorded) in, by identity.
  const declaredIn = new Map<Container, "containers" | "initContainers">();
  for (const c of existing?.initContainers ?? []) declaredIn.set(c, "initContainers");
  for (const c of existing?.containers ?? []) declaredIn.set(c, "containers");
  for (const c of userInit) {
    if (!templateNames.has(c.name)) continue;
    user.push(c);
    declaredIn.set(c, "initContainers");
  }
  for (const c of userMain) {
    if (!templateNames.has(c.name)) continue;
    user.push(c);
    declaredIn.set(c, "containers");
  }
  const overrides: Overrides = {};
  const findOverride = overrideFinder(existing, user);
  const versionsOf = containerVersions(out);

  const place = (tpl: Container, list: "containers" | "initContainers"): Container => {
    const found = findOverride(tpl.name);
    if (!found) return tpl;
    const ov = declaredIn.get(found) === list ? found : withoutRestartPolicy(found);
    const recorded = recordedContainer(ov);
    (overrides[list] ??= []).push(recorded);
    if (tpl.name === CONTAINER.proxy || tpl.name === CONTAINER.init || tpl.name === CONTAINER.validation) {
      warnings.push(`container ${tpl.name} declared in the pod overrides the injected one`);
    }
    // "image: auto" (dropped from the record) keeps the injected image; where the template sets
    // none (grpc-simple's entry for a Pod's own istio-proxy), the Pod's "auto" stays, as the
    // template merged over the Pod leaves it in Istio.
    const merged = mergeOverride(tpl, recorded, versionsOf(tpl.name));
    // Neither has one (a recorded container without an image the Pod lacks): none, not an
    // `image` key holding undefined, which a JSON patch cannot carry.
    const image = merged.image ?? tpl.image ?? ov.image;
    if (image !== undefined) merged.image = image;
    return merged;
  };

  const tplMain = out.containers.map((c) => place(c, "containers"));
  const tplInit = out.initContainers.map((c) => place(c, "initContainers"));

  // Several templates: merged over the user's lists one after the other (overlay.ts).
  if (out.steps) {
    const user = { containers: userMain, initContainers: userInit };
    const placed = { containers: tplMain, initContainers: tplInit };
    return { ...overlaidContainers(user, placed, out, native), overrides };
  }
  // The template's items merged into the user's lists as a strategic merge patch orders them;
  // a user's item the template moves to the other list is dropped.
  const mainNames = new Set(tplMain.map((c) => c.name));
  const initNames = new Set(tplInit.map((c) => c.name));
  const containers = strategicOrder(userMain, tplMain, mainNames, initNames);
  const initContainers = strategicOrder(userInit, tplInit, initNames, mainNames);
  return { initContainers, containers, overrides };
}

/**
 * A container declared in the other list than the one the template puts it in, without its
 * restartPolicy: the field says what the container is in its own list (among the init
 * containers, `Always` makes a native sidecar) and the template's list decides that. A Pod's
 * own native-sidecar istio-proxy injected with native sidecars off is the classic proxy, among
 * the containers, where a restartPolicy is refused by the API server before Kubernetes 1.34 and
 * dropped by 1.34 (Istio keeps the Pod's beside the injected one: two istio-proxy, refused).
 */
function withoutRestartPolicy(c: Container): Container {
  if (!Object.hasOwn(c, "restartPolicy")) return c;
  const out = copyOwn(c);
  delete out.restartPolicy;
  return out;
}

/** Istio judges TPROXY for the proxy's ids on the annotation or the ProxyConfig, either one. */
function tproxyAnywhere(p: Params): boolean {
  return (
    p.tproxy ||
    p.annotations[A.interceptionMode] === "TPROXY" ||
    (p.proxyConfig.interceptionMode ?? p.config.interception.mode) === "TPROXY"
  );
}

export interface Placed extends ContainerLists {
  /** The user's containers that override a template's, as recorded. */
  readonly overrides: Overrides;
  /** The variables written on the sidecar after the templates ran (cluster-info.ts), by name. */
  readonly clusterVars: Readonly<Record<string, string>>;
}

/**
 * Places the templates' containers in the Pod: merged with the user's overrides, the cluster's
 * env written on the sidecar, the interception's uid the user's proxy's.
 */
export function placeContainers(spec: PodSpec, out: TemplateOutput, p: Params, warnings: string[]): Placed {
  const placed = mergeContainers(spec, out, parseOverrides(p.annotations), warnings, p.native);
  const clusterVars = clusterEnv(p);
  const withEnv = writeClusterEnv(placed.initContainers, placed.containers, clusterVars);
  const userProxy = placed.overrides.containers?.find(isProxy) ?? placed.overrides.initContainers?.find(isProxy);
  const lists = adjustInitUser(withEnv.initContainers, withEnv.containers, userProxy, tproxyAnywhere(p));
  // One object literal: a spread followed by new keys is slow to build in V8.
  return {
    initContainers: lists.initContainers,
    containers: lists.containers,
    overrides: placed.overrides,
    clusterVars,
  };
}

/**
 * Appends `env` to the sidecar as Istio's FindSidecar finds it: the first istio-proxy of the
 * containers, else the first of the init containers (where Istio would leave one in each list,
 * the templates here leave one: template.ts, oneProxy).
 */
export function appendSidecarEnv({ initContainers, containers }: ContainerLists, env: EnvVar): ContainerLists {
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

/** The sidecar's env, as Istio's FindSidecar finds it; undefined when there is no sidecar. */
export function sidecarEnv(lists: ContainerLists): readonly EnvVar[] | undefined {
  return (lists.containers.find(isProxy) ?? lists.initContainers.find(isProxy))?.env;
}

/** Whether either list holds an istio-proxy. */
export function hasSidecar(lists: ContainerLists): boolean {
  return lists.initContainers.some(isProxy) || lists.containers.some(isProxy);
}

/**
 * The Pod's spec with its containers as the steps left them and the templates' volumes, pull
 * secrets and Pod security context merged in; a list stays absent when it was and is empty.
 */
export function podSpec(spec: PodSpec, lists: ContainerLists, out: TemplateOutput): PodSpec {
  const next: PodSpec = copyOwn(spec);
  next.containers = lists.containers;
  if (lists.initContainers.length > 0 || spec.initContainers) next.initContainers = lists.initContainers;
  const volumes = overTemplates(spec.volumes ?? [], out, (t) => t.volumes, "name");
  if (volumes.length > 0 || spec.volumes) next.volumes = volumes;
  const secrets = overTemplates<{ name?: string }>(spec.imagePullSecrets ?? [], out, (t) => t.imagePullSecrets, "name");
  if (secrets.length > 0 || spec.imagePullSecrets) next.imagePullSecrets = secrets;
  if (out.podSecurityContext) next.securityContext = mergeObject(spec.securityContext ?? {}, out.podSecurityContext);
  return next;
}
