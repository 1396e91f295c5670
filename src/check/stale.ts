// Whether a stored injected Pod (or a Pod template carrying a sidecar) has the sidecar the
// current config would inject now: the stored Pod is injected again by the engine (inject()
// strips the previous injection first, strip.ts), and the istio-proxy and istio-init
// containers it stores are compared with the ones produced, field by field:
// - where each is (containers or initContainers, restartPolicy: native sidecars) and whether
//   it is there at all (istio-init goes with cni: true);
// - image, imagePullPolicy (an empty one is the API server's default: Always for :latest, with
//   or without a digest, or neither tag nor digest, else IfNotPresent), command, args (which
//   were added, which dropped);
// - env by name (value, or fieldRef/resourceFieldRef path; the apiVersion the API server adds
//   to a fieldRef is not compared); ISTIO_META_POD_PORTS and ISTIO_KUBE_APP_PROBERS, which
//   the engine writes from the app containers as it finds them, compared with the API server's
//   defaults filled in on both sides (a port's protocol TCP; a prober's timeoutSeconds 1 and
//   httpGet.scheme HTTP), since the stored app containers carry them and the first ones did not;
// - resources (quantities canonical, "1000m" is "1"; a limit without a request is the request
//   too, as the API server defaults a Pod's containers), ports (protocol TCP by default),
//   volumeMounts, securityContext, and the readiness and startup probes with the API server's
//   defaults filled in (timeoutSeconds 1, periodSeconds 10, successThreshold 1,
//   failureThreshold 3, httpGet.scheme HTTP).
// What the API server adds on storing (terminationMessagePath and the like) is not compared,
// nor what its admission plugins add to the injected containers after the injector answered
// (the ServiceAccount token mount, LimitRanger's default resources, AlwaysPullImages' pull
// policy): admitted.ts.
// The native-sidecar choice of `nativeSidecars: auto` depends on the nodes, which check does not
// read: the stored Pod's own choice is taken as what the nodes support.
//
// Pure: no I/O; the Pod and the config come from the caller.

import type { Config } from "../config/types.js";
import type { Container } from "../kube/types.js";
import { CONTAINER } from "../injection/annotations.js";
import { inject } from "../injection/inject.js";
import { own } from "../injection/own.js";
import { canonicalResources } from "../injection/quantity.js";
import { quote } from "../injection/quote.js";
import { readPod, type CheckedPod } from "../injection/shape.js";
import type { WorkloadRef } from "../injection/types.js";
import { admittedBy } from "./admitted.js";

/** One field of one injected container that differs between the stored Pod and now. */
export interface SidecarDrift {
  readonly container: string;
  readonly field: string;
  /** What is stored and what would be injected now, said for people (quoted, bounded). */
  readonly stored: string;
  readonly now: string;
}

export type SidecarComparison =
  | { readonly compared: true; readonly drift: readonly SidecarDrift[] }
  | { readonly compared: false; readonly reason: string };

const COMPARED = [CONTAINER.proxy, CONTAINER.init] as const;

/** How many added or dropped args, or env names, a drift lists before "and N more". */
const LISTED = 3;

interface Located {
  readonly container: Container;
  readonly where: "containers" | "initContainers";
}

function locate(pod: CheckedPod, name: string): Located | undefined {
  const init = pod.spec.initContainers?.find((c) => c.name === name);
  if (init) return { container: init, where: "initContainers" };
  const main = pod.spec.containers.find((c) => c.name === name);
  return main ? { container: main, where: "containers" } : undefined;
}

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A JSON text with object keys sorted, so that two equal values compare equal. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (isRecord(value)) {
    const rec = value;
    return `{${Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(rec[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function listed(items: readonly string[]): string {
  const shown = items
    .slice(0, LISTED)
    .map((s) => quote(s))
    .join(", ");
  return items.length > LISTED ? `${shown} and ${items.length - LISTED} more` : shown;
}

/**
 * The container's imagePullPolicy, or the API server's default for its image: Always when its
 * tag is latest, or when it has neither tag nor digest; else IfNotPresent (SetDefaults_Container:
 * `x:latest@sha256:…` is Always, `x@sha256:…` IfNotPresent).
 */
function pullPolicy(c: Container): string {
  if (c.imagePullPolicy) return c.imagePullPolicy;
  const image = c.image ?? "";
  const at = image.indexOf("@");
  const name = at < 0 ? image : image.slice(0, at);
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  const colon = lastPart.lastIndexOf(":");
  if (colon < 0) return at < 0 ? "Always" : "IfNotPresent";
  return lastPart.slice(colon + 1) === "latest" ? "Always" : "IfNotPresent";
}

function envValue(e: NonNullable<Container["env"]>[number]): string {
  if (e.value !== undefined || e.valueFrom === undefined) return quote(e.value ?? "");
  const from = e.valueFrom;
  const field = own(from, "fieldRef");
  if (typeof field === "object" && field !== null && !Array.isArray(field))
    return `fieldRef ${quote(String(own(field, "fieldPath") ?? ""))}`;
  const resource = own(from, "resourceFieldRef");
  if (typeof resource === "object" && resource !== null && !Array.isArray(resource))
    return `resourceFieldRef ${quote(String(own(resource, "resource") ?? ""))}`;
  return quote(stable(from));
}

/** The env values written from the app containers, with the API server's defaults filled in (see the header). */
const FROM_APP_CONTAINERS: Readonly<Record<string, (parsed: unknown) => unknown>> = {
  ISTIO_META_POD_PORTS: (ports) =>
    Array.isArray(ports) ? ports.map((p) => (isRecord(p) ? { protocol: "TCP", ...p } : p)) : ports,
  ISTIO_KUBE_APP_PROBERS: (probers) =>
    isRecord(probers)
      ? Object.fromEntries(
          Object.entries(probers).map(([k, p]) => [
            k,
            isRecord(p)
              ? {
                  timeoutSeconds: 1,
                  ...p,
                  ...(isRecord(p.httpGet) ? { httpGet: { scheme: "HTTP", ...p.httpGet } } : {}),
                }
              : p,
          ]),
        )
      : probers,
};

function envMap(c: Container): Map<string, string> {
  return new Map(
    (c.env ?? []).map((e) => {
      const fill = own(FROM_APP_CONTAINERS, e.name);
      if (fill && e.value !== undefined) {
        try {
          return [e.name, quote(stable(fill(JSON.parse(e.value))))];
        } catch {
          // Not JSON: compared as written.
        }
      }
      return [e.name, envValue(e)];
    }),
  );
}

const PROBE_DEFAULTS = { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 };

function probe(p: Container["readinessProbe"]): string {
  if (p === undefined) return "none";
  const filled: Record<string, unknown> = { ...PROBE_DEFAULTS, ...p };
  const get = own(p, "httpGet");
  if (typeof get === "object" && get !== null) filled.httpGet = { scheme: "HTTP", ...get };
  return stable(filled);
}

function ports(c: Container): string {
  return (
    (c.ports ?? [])
      .map(
        (p) =>
          `${p.containerPort}/${typeof p.protocol === "string" ? p.protocol : "TCP"}${p.name ? ` (${p.name})` : ""}`,
      )
      .join(", ") || "none"
  );
}

function mounts(c: Container): string {
  return (
    (c.volumeMounts ?? [])
      .map((m) => `${String(m.name)}:${String(m.mountPath)}${m.readOnly === true ? ":ro" : ""}`)
      .join(", ") || "none"
  );
}

/**
 * A container's requests and limits, quantities canonical, with the request the API server's
 * defaulting gives a Pod's container for each limit it has no request for: the limit
 * (SetDefaults_Pod). A template is not defaulted so, but the Pods made from it are.
 */
function effectiveResources(c: Container): { requests: Record<string, unknown>; limits: Record<string, unknown> } {
  const r = canonicalResources(c.resources ?? {});
  const requests = own(r, "requests");
  const limits = own(r, "limits");
  const l = isRecord(limits) ? limits : {};
  return { requests: { ...l, ...(isRecord(requests) ? requests : {}) }, limits: l };
}

function resourceDrift(container: string, stored: Container, now: Container): SidecarDrift[] {
  const a = effectiveResources(stored);
  const b = effectiveResources(now);
  const drift: SidecarDrift[] = [];
  for (const list of ["requests", "limits"] as const) {
    const sa = a[list];
    const sb = b[list];
    for (const key of [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort()) {
      const x = own(sa, key);
      const y = own(sb, key);
      if (stable(x) !== stable(y))
        drift.push({
          container,
          field: `resources.${list}.${key}`,
          stored: x === undefined ? "none" : quote(String(x)),
          now: y === undefined ? "none" : quote(String(y)),
        });
    }
  }
  return drift;
}

/** What differs between a stored injected container and the one the engine produces now. */
export function containerDrift(name: string, stored: Located, now: Located): SidecarDrift[] {
  const a = stored.container;
  const b = now.container;
  const drift: SidecarDrift[] = [];
  const push = (field: string, x: string, y: string): void => {
    if (x !== y) drift.push({ container: name, field, stored: x, now: y });
  };
  push(
    "place",
    `${stored.where}${a.restartPolicy ? ` (restartPolicy ${a.restartPolicy})` : ""}`,
    `${now.where}${b.restartPolicy ? ` (restartPolicy ${b.restartPolicy})` : ""}`,
  );
  push("image", quote(a.image ?? ""), quote(b.image ?? ""));
  push("imagePullPolicy", pullPolicy(a), pullPolicy(b));
  push("command", quote((a.command ?? []).join(" ")), quote((b.command ?? []).join(" ")));
  const argsA = a.args ?? [];
  const argsB = b.args ?? [];
  if (stable(argsA) !== stable(argsB)) {
    const added = argsB.filter((x) => !argsA.includes(x));
    const dropped = argsA.filter((x) => !argsB.includes(x));
    const said =
      [
        ...(added.length ? [`adds ${listed(added)}`] : []),
        ...(dropped.length ? [`drops ${listed(dropped)}`] : []),
      ].join(", ") || "same args, in another order";
    drift.push({ container: name, field: "args", stored: `${argsA.length} args`, now: said });
  }
  const envA = envMap(a);
  const envB = envMap(b);
  for (const key of [...new Set([...envA.keys(), ...envB.keys()])]) {
    push(`env ${key}`, envA.get(key) ?? "unset", envB.get(key) ?? "unset");
  }
  drift.push(...resourceDrift(name, a, b));
  push("ports", ports(a), ports(b));
  push("volumeMounts", mounts(a), mounts(b));
  push("securityContext", stable(a.securityContext ?? {}), stable(b.securityContext ?? {}));
  push("readinessProbe", probe(a.readinessProbe), probe(b.readinessProbe));
  push("startupProbe", probe(a.startupProbe), probe(b.startupProbe));
  return drift;
}

/**
 * Compares the sidecar of a stored injected Pod (`stored`, the Pod or template as read: any
 * JSON) with what `config` injects into it now, in `namespace`. `workload`: the workload whose
 * template it is (as `inject` names it for a workload's template); a Pod names its own.
 */
export function compareSidecar(
  stored: unknown,
  namespace: string,
  config: Config,
  workload?: WorkloadRef,
): SidecarComparison {
  let pod: CheckedPod;
  let now: CheckedPod;
  try {
    pod = readPod(stored);
    const proxy = locate(pod, CONTAINER.proxy);
    const result = inject(
      pod,
      { namespace, nativeSidecarsSupported: proxy?.where === "initContainers", ...(workload ? { workload } : {}) },
      config,
    );
    if (!result.decision.inject) return { compared: false, reason: "the config would not inject it now" };
    now = readPod(result.pod);
  } catch (e) {
    return { compared: false, reason: `the engine refuses it: ${e instanceof Error ? e.message : String(e)}` };
  }
  const drift: SidecarDrift[] = [];
  const unadmit = admittedBy(pod);
  for (const name of COMPARED) {
    const a = locate(pod, name);
    const b = locate(now, name);
    if (a && b) drift.push(...containerDrift(name, { ...a, container: unadmit(a.container, b.container) }, b));
    else if (a || b)
      drift.push({
        container: name,
        field: "presence",
        stored: a ? "present" : "absent",
        now: b ? "present" : "absent",
      });
  }
  return { compared: true, drift };
}

/** `docker.io/istio/proxyv2:1.27.0 → 1.28.0`: the new image said by its tag when only that changed. */
function shortNow(d: SidecarDrift): string {
  if (d.field !== "image") return d.now;
  const repo = (s: string): string => s.replace(/:[^:/"]*"( \(\d+ characters\))?$/, "");
  const tag = /:([^:/"]*)"$/.exec(d.now);
  return tag && repo(d.stored) === repo(d.now) ? quote(tag[1] ?? "") : d.now;
}

/** The drift said in one line: `istio-proxy image "…:1.27.0" → "1.28.0"; istio-proxy env X …`, at most `max` fields. */
export function formatDrift(drift: readonly SidecarDrift[], max = 4): string {
  const parts = drift.slice(0, max).map((d) => `${d.container} ${d.field} ${d.stored} → ${shortNow(d)}`);
  return drift.length > max ? `${parts.join("; ")}; and ${drift.length - max} more` : parts.join("; ");
}
