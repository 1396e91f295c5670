// Application probe rewriting (Istio's app_probe.go). With mTLS the kubelet cannot reach the
// app's own probe endpoints, so every httpGet/tcpSocket/grpc probe (and httpGet/tcpSocket
// lifecycle hook) of a non-proxy container is pointed at the agent
// (`/app-health/<c>/{readyz,livez,startupz}`, `/app-lifecycle/<c>/{prestopz,poststartz}` on the
// rewrite port), and the originals, named ports resolved, are handed to the agent in
// ISTIO_KUBE_APP_PROBERS. As in Istio, every such probe is rewritten, but only those the agent
// can run are handed over: not one whose named port the container does not declare, nor one
// already on the agent's status port. `restoreProbes` undoes it, so re-injecting an injected
// Pod starts from the original probes.
import type { Container, HttpGetAction, LifecycleHandler, Probe } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import type { MapEdit } from "./map-edit.js";
import { copyOwn, isMap, jsonMap, own, setOwn } from "./own.js";
import { jsonScalar, jsonString } from "./json-text.js";
import { goBool, type Params } from "./params.js";
import { appendSidecarEnv, hasSidecar, type ContainerLists } from "./placement.js";

export const APP_PROBERS_ENV = "ISTIO_KUBE_APP_PROBERS";

type ProbeKind = "readinessProbe" | "livenessProbe" | "startupProbe";
type HookKind = "preStop" | "postStart";

const PROBES: readonly [ProbeKind, string][] = [
  ["readinessProbe", "readyz"],
  ["livenessProbe", "livez"],
  ["startupProbe", "startupz"],
];
const HOOKS: readonly [HookKind, string][] = [
  ["preStop", "prestopz"],
  ["postStart", "poststartz"],
];

export const probePath = (container: string, suffix: string): string => `/app-health/${container}/${suffix}`;
export const hookPath = (container: string, suffix: string): string => `/app-lifecycle/${container}/${suffix}`;

/**
 * The httpGet handed to the agent, as JSON: path, port, host, scheme and headers, those set, in
 * that order.
 */
function httpGetJson(h: HttpGetAction, port: number | string): string {
  let t = h.path ? `{"path":${jsonString(h.path)},"port":${jsonScalar(port)}` : `{"port":${jsonScalar(port)}`;
  if (h.host) t += `,"host":${jsonString(h.host)}`;
  if (h.scheme) t += `,"scheme":${jsonString(h.scheme)}`;
  if (h.httpHeaders?.length) t += `,"httpHeaders":${JSON.stringify(h.httpHeaders)}`;
  return `${t}}`;
}

/**
 * The original prober (named port resolved), as the JSON the agent is handed: its action
 * (`httpGet`, `tcpSocket` or `grpc`), then the probe's `timeoutSeconds` when it has one. Written
 * by hand (json-text.ts): a Pod may have a hundred thousand probes. Undefined when the agent
 * could not run it: no action, a port name the container does not declare (any string port is
 * a name), or the agent's status port or the rewrite port (already rewritten: Istio checks only
 * the former, and so hands the agent a probe of itself when a Pod with its own status port is
 * injected again).
 */
function toProber(
  handler: Probe | LifecycleHandler | undefined,
  ports: PortsByName,
  rewritePort: number,
  agentPort: number,
  withTimeout: boolean,
): string | undefined {
  if (!handler) return undefined;
  const timeout =
    withTimeout && "timeoutSeconds" in handler && typeof handler.timeoutSeconds === "number" && handler.timeoutSeconds
      ? `,"timeoutSeconds":${jsonScalar(handler.timeoutSeconds)}}`
      : "}";
  if ("grpc" in handler && handler.grpc && !handler.httpGet && !handler.tcpSocket) {
    return `{"grpc":${JSON.stringify(handler.grpc)}${timeout}`;
  }
  const action = handler.httpGet ?? handler.tcpSocket;
  if (!action) return undefined;
  let port = action.port;
  if (typeof port === "string") {
    const resolved = ports.get(port);
    if (resolved === undefined) return undefined;
    port = resolved;
  } else if (port === agentPort || port === rewritePort) {
    return undefined; // already rewritten
  }
  if (handler.httpGet) return `{"httpGet":${httpGetJson(handler.httpGet, port)}${timeout}`;
  const host = handler.tcpSocket?.host;
  return `{"tcpSocket":{"port":${jsonScalar(port)}${host ? `,"host":${jsonString(host)}` : ""}}${timeout}`;
}

/** Whether Istio rewrites this probe or hook: it has an httpGet, tcpSocket or (probes only) grpc action. */
function rewritable(handler: Probe | LifecycleHandler | undefined, hook: boolean): handler is Probe | LifecycleHandler {
  if (!handler) return false;
  if (handler.httpGet || handler.tcpSocket) return true;
  return !hook && "grpc" in handler && handler.grpc !== undefined && handler.grpc !== null;
}

/** A container's ports by name, read from the container only when a probe names one (it may declare many thousand). */
class PortsByName {
  #ports: Container["ports"];
  readonly #byName = new Map<string, number>();

  constructor(c: Container) {
    this.#ports = c.ports;
  }

  get(name: string): number | undefined {
    if (this.#ports !== undefined) {
      for (const p of this.#ports) if (p.name) this.#byName.set(p.name, p.containerPort);
      this.#ports = undefined;
    }
    return this.#byName.get(name);
  }
}

function portMap(c: Container): PortsByName {
  return new PortsByName(c);
}

/** A probe or a lifecycle handler with its action replaced: any of the two fits. */
type Rebuilt = Pick<Probe, "httpGet" | "tcpSocket" | "grpc"> & { [k: string]: unknown };

/**
 * The handler's fields but its action (a loop: object rest with excluded keys is several times
 * slower, and a Pod may have a hundred thousand probes).
 */
function withoutAction(handler: Probe | LifecycleHandler): Rebuilt {
  const out: Rebuilt = {};
  // A map of data, as the entry checked (shape.ts): read by key.
  if (isMap(handler))
    for (const k of Object.keys(handler))
      if (k !== "tcpSocket" && k !== "grpc" && k !== "httpGet") setOwn(out, k, handler[k]);
  return out;
}

/** The handler with its action replaced by the agent's httpGet on `path`. */
function rewritten(handler: Probe | LifecycleHandler, path: string, statusPort: number): Rebuilt {
  const out = withoutAction(handler);
  // copyOwn, not a spread: path is often a key the action did not have (see copyOwn).
  let get: HttpGetAction;
  if (handler.httpGet) {
    get = copyOwn(handler.httpGet);
    get.path = path;
    get.port = statusPort;
  } else get = { path, port: statusPort };
  if (get.scheme === "HTTPS") get.scheme = "HTTP";
  out.httpGet = get;
  return out;
}

export interface ProbeRewrite {
  /** The ISTIO_KUBE_APP_PROBERS value, "" when nothing was rewritten. */
  readonly probers: string;
  readonly initContainers: Container[];
  readonly containers: Container[];
}

/**
 * What one container hands the agent: its name, and the prober JSON of each probe (PROBES'
 * order) and hook (HOOKS' order) the agent can run, undefined for the others.
 */
interface Handed {
  readonly name: string;
  readonly probes: (string | undefined)[];
  readonly hooks: (string | undefined)[];
}

function rewriteList(list: Container[], rewritePort: number, agentPort: number, handed: Handed[]): Container[] {
  let changed = false;
  const result = list.map((c) => {
    if (c.name === CONTAINER.proxy) return c;
    const ports = portMap(c);
    let next: Container | undefined;
    let mine: Handed | undefined;
    for (let k = 0; k < PROBES.length; k++) {
      const entry = PROBES[k];
      if (entry === undefined) continue;
      const [kind, suffix] = entry;
      const probe = c[kind];
      if (!rewritable(probe, false)) continue;
      const path = probePath(c.name, suffix);
      const prober = toProber(probe, ports, rewritePort, agentPort, true);
      if (prober) (mine ??= handedBy(c.name, handed)).probes[k] = prober;
      // A spread, not copyOwn: only keys the container has are set (the probe's, and below
      // its lifecycle), and a spread copy keeps its shape: copied in one step, and its keys
      // read by the patch from the same cache (a third of the time per container).
      next ??= { ...c };
      next[kind] = rewritten(probe, path, rewritePort);
    }
    for (let k = 0; k < HOOKS.length; k++) {
      const entry = HOOKS[k];
      if (entry === undefined) continue;
      const [kind, suffix] = entry;
      const hook = c.lifecycle?.[kind];
      if (!rewritable(hook, true)) continue;
      const path = hookPath(c.name, suffix);
      const prober = toProber(hook, ports, rewritePort, agentPort, false);
      if (prober) (mine ??= handedBy(c.name, handed)).hooks[k] = prober;
      next ??= { ...c };
      next.lifecycle = { ...(next.lifecycle ?? {}), [kind]: rewritten(hook, path, rewritePort) };
    }
    if (next) changed = true;
    return next ?? c;
  });
  return changed ? result : list;
}

function handedBy(name: string, handed: Handed[]): Handed {
  const mine: Handed = { name, probes: [], hooks: [] };
  handed.push(mine);
  return mine;
}

/** PROBES' and HOOKS' indexes in the order of their paths' suffixes (livez, readyz, startupz; poststartz, prestopz). */
const PROBES_BY_SUFFIX = PROBES.map((_, k) => k).sort((a, b) => cmp(PROBES[a]?.[1], PROBES[b]?.[1]));
const HOOKS_BY_SUFFIX = HOOKS.map((_, k) => k).sort((a, b) => cmp(HOOKS[a]?.[1], HOOKS[b]?.[1]));

function cmp(a: string | undefined, b: string | undefined): number {
  return a === b ? 0 : (a ?? "") < (b ?? "") ? -1 : 1;
}

/**
 * Container names in the order of the paths they begin (`${name}/…`): by UTF-16 code units, as
 * the strings are sorted, where a name that begins another is followed by `/`. Only for names
 * without `/`, so the comparison never reaches past it.
 */
function byPathOrder(a: Handed, b: Handed): number {
  const x = a.name;
  const y = b.name;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x.charCodeAt(i) - y.charCodeAt(i);
    if (d !== 0) return d;
  }
  return (x.length > n ? x.charCodeAt(n) : 0x2f) - (y.length > n ? y.charCodeAt(n) : 0x2f);
}

/**
 * The JSON of the probers by path, its keys sorted (as Go writes a map): each path
 * `/app-health/<c>/<suffix>` or `/app-lifecycle/<c>/<suffix>`. Written entry by entry (the
 * keys are paths, never array indexes, so an object would keep this order too): an object of a
 * hundred keys is a dictionary, which Object.fromEntries builds and JSON.stringify reads several
 * times slower. When the names are distinct and have no `/`, the containers are sorted rather
 * than the paths (half as many, and no path is built to be hashed or compared); else the paths
 * are collected in a Map (a container named twice hands over its last probers) and sorted.
 */
function probersJson(handed: readonly Handed[]): string {
  const sorted = [...handed].sort(byPathOrder);
  let simple = true;
  let prev: Handed | undefined;
  for (const h of sorted) {
    if (h.name.includes("/") || (prev !== undefined && byPathOrder(prev, h) === 0)) {
      simple = false;
      break;
    }
    prev = h;
  }
  let text = "";
  if (simple) {
    const names = sorted.map((h) => jsonString(h.name).slice(1, -1));
    text = entriesText(sorted, names, "/app-health/", PROBES, PROBES_BY_SUFFIX, (h) => h.probes);
    const hooks = entriesText(sorted, names, "/app-lifecycle/", HOOKS, HOOKS_BY_SUFFIX, (h) => h.hooks);
    text = text === "" ? hooks : hooks === "" ? text : `${text},${hooks}`;
  } else {
    const out = new Map<string, string>();
    for (const h of handed) {
      PROBES.forEach(([, suffix], k) => {
        const prober = h.probes[k];
        if (prober !== undefined) out.set(probePath(h.name, suffix), prober);
      });
      HOOKS.forEach(([, suffix], k) => {
        const prober = h.hooks[k];
        if (prober !== undefined) out.set(hookPath(h.name, suffix), prober);
      });
    }
    for (const k of [...out.keys()].sort()) text += `${text === "" ? "" : ","}${jsonString(k)}:${out.get(k)}`;
  }
  return text === "" ? "" : `{${text}}`;
}

/** The `"<prefix><name>/<suffix>":<prober>` entries of the sorted containers, by suffix in `order`, comma-separated. */
function entriesText(
  sorted: readonly Handed[],
  names: readonly string[],
  prefix: string,
  kinds: readonly (readonly [string, string])[],
  order: readonly number[],
  probers: (h: Handed) => readonly (string | undefined)[],
): string {
  let text = "";
  sorted.forEach((h, i) => {
    const mine = probers(h);
    for (const k of order) {
      const prober = mine[k];
      if (prober !== undefined)
        text += `${text === "" ? "" : ","}"${prefix}${names[i] ?? ""}/${kinds[k]?.[1] ?? ""}":${prober}`;
    }
  });
  return text;
}

/**
 * Rewrites the probes of every container but istio-proxy to `rewritePort` (the Pod's
 * status.sidecar.istio.io/port, else the agent's); `agentPort` is the agent's status port in
 * the ProxyConfig, which a probe already rewritten points at.
 */
export function rewriteProbes(
  initContainers: Container[],
  containers: Container[],
  rewritePort: number,
  agentPort: number = rewritePort,
): ProbeRewrite {
  const handed: Handed[] = [];
  const init = rewriteList(initContainers, rewritePort, agentPort, handed);
  const main = rewriteList(containers, rewritePort, agentPort, handed);
  return { probers: probersJson(handed), initContainers: init, containers: main };
}

/** A prober as a previous injection handed it to the agent (read back from ISTIO_KUBE_APP_PROBERS). */
interface Prober {
  httpGet?: HttpGetAction;
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string };
  timeoutSeconds?: number;
}

/**
 * The port a handed-over prober is put back with. A prober on the agent's own port was handed
 * over only because the app named that port (a number there counts as already rewritten), so
 * the name the container declares for it is put back, and re-injecting hands it over again.
 */
function restoredPort(port: number | string, c: Container, agentPort: number | undefined): number | string {
  if (port !== agentPort) return port;
  return c.ports?.find((p) => p.containerPort === port && p.name)?.name ?? port;
}

function restoreHandler(
  handler: Probe | LifecycleHandler,
  prober: Prober,
  c: Container,
  agentPort: number | undefined,
): Rebuilt {
  const out = withoutAction(handler);
  if (prober.httpGet) out.httpGet = { ...prober.httpGet, port: restoredPort(prober.httpGet.port, c, agentPort) };
  if (prober.tcpSocket)
    out.tcpSocket = { ...prober.tcpSocket, port: restoredPort(prober.tcpSocket.port, c, agentPort) };
  if (prober.grpc) out.grpc = prober.grpc;
  return out;
}

/**
 * Puts back the probes a previous injection rewrote, from its ISTIO_KUBE_APP_PROBERS;
 * `agentPort` is that injection's agent status port.
 */
export function restoreProbes(list: Container[], probersJson: string | undefined, agentPort?: number): Container[] {
  const probers = probersJson ? jsonMap(probersJson) : undefined;
  if (!probers) return list;
  // Only what a rewrite writes is put back: an object with an httpGet, tcpSocket or grpc object.
  const proberAt = (path: string): Prober | undefined => {
    const p = own(probers, path);
    if (!isMap(p)) return undefined;
    const actions = [p.httpGet, p.tcpSocket, p.grpc].filter((a) => a !== undefined);
    return actions.length > 0 && actions.every(isMap) ? p : undefined;
  };
  return list.map((c) => {
    let next: Container | undefined;
    for (const [kind, suffix] of PROBES) {
      const prober = proberAt(probePath(c.name, suffix));
      const probe = c[kind];
      if (!prober || probe?.httpGet?.path !== probePath(c.name, suffix)) continue;
      next ??= copyOwn(c);
      next[kind] = restoreHandler(probe, prober, c, agentPort);
    }
    for (const [kind, suffix] of HOOKS) {
      const prober = proberAt(hookPath(c.name, suffix));
      const hook = c.lifecycle?.[kind];
      if (!prober || hook?.httpGet?.path !== hookPath(c.name, suffix)) continue;
      next ??= copyOwn(c);
      next.lifecycle = { ...(next.lifecycle ?? {}), [kind]: restoreHandler(hook, prober, c, agentPort) };
    }
    return next ?? c;
  });
}

/**
 * The probe rewrite applied to the injected Pod, when it has a sidecar and the Pod (else the
 * config) asks for it (Istio's ShouldRewriteAppHTTPProbers: the annotation when ParseBool
 * reads it). The rewrite port is the Pod's status port annotation, else the agent's. Unlike
 * Istio, a value with blanks around it is that port, and port 0 (no status server) rewrites
 * nothing. As in Istio, the probes are rewritten even when none is handed to the agent (each
 * on the agent's own port, or on a port name the container does not declare).
 */
export function applyProbeRewrite(lists: ContainerLists, annotations: MapEdit, p: Params): ContainerLists {
  const rewrite = goBool(annotations.get(A.rewriteProbes)) ?? p.config.rewriteAppProbes;
  const statusAnnotation = annotations.get(A.statusPort);
  const rewritePort = statusAnnotation !== undefined ? Number(statusAnnotation.trim()) : p.agentStatusPort;
  if (!hasSidecar(lists) || !rewrite || !(rewritePort > 0)) return lists;
  const r = rewriteProbes(lists.initContainers, lists.containers, rewritePort, p.agentStatusPort);
  const out: ContainerLists = { initContainers: r.initContainers, containers: r.containers };
  return r.probers ? appendSidecarEnv(out, { name: APP_PROBERS_ENV, value: r.probers }) : out;
}
