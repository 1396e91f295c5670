// Containers the user declares under an injected name (istio-proxy, istio-init, or an app
// container a template also writes) are overrides: merged over what the template injects, and
// recorded in `proxy.istio.io/overrides` so that re-injection applies them again.
import type { Container } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import { IPTABLES_FLAGS } from "./interception.js";
import { isMap, own, setOwn } from "./own.js";
import { goMarshalledFields } from "./go-zero.js";
import { canonicalResources } from "./quantity.js";
import { readContainers } from "./shape.js";
import { InjectionError } from "./types.js";

export const AUTO_IMAGE = "auto";

export interface Overrides {
  containers?: Container[];
  initContainers?: Container[];
}

// corev1.Container's field order, so the annotation reads as the API server would write it.
const FIELD_ORDER = [
  "name",
  "image",
  "command",
  "args",
  "workingDir",
  "ports",
  "envFrom",
  "env",
  "resources",
  "resizePolicy",
  "restartPolicy",
  "volumeMounts",
  "volumeDevices",
  "livenessProbe",
  "readinessProbe",
  "startupProbe",
  "lifecycle",
  "terminationMessagePath",
  "terminationMessagePolicy",
  "imagePullPolicy",
  "securityContext",
  "stdin",
  "stdinOnce",
  "tty",
];
const KNOWN_FIELDS: ReadonlySet<string> = new Set(FIELD_ORDER);

// corev1.ResourceRequirements' field order.
const RESOURCES_ORDER = ["limits", "requests", "claims"];
const KNOWN_RESOURCES: ReadonlySet<string> = new Set(RESOURCES_ORDER);

/**
 * Resources as Go's encoding/json writes them: limits, requests, claims, then anything else;
 * the quantities of a list (a map) sorted by resource name.
 */
function recordedResources(resources: unknown): unknown {
  if (!isMap(resources)) return resources;
  const src = resources;
  const sorted = (list: unknown): unknown =>
    isMap(list) ? Object.fromEntries(Object.entries(list).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : list;
  const entries: [string, unknown][] = [];
  for (const k of RESOURCES_ORDER) {
    const v = own(src, k);
    if (v !== undefined) entries.push([k, k === "claims" ? v : sorted(v)]);
  }
  for (const [k, v] of Object.entries(src)) if (!KNOWN_RESOURCES.has(k) && v !== undefined) entries.push([k, v]);
  return Object.fromEntries(entries);
}

/**
 * The container as recorded: as Go writes it (go-zero.ts: a field at its zero value left out,
 * so that it does not blank the template's), canonical quantities, `resources` always present,
 * no "auto" image; fields in the order Istio's json.Marshal writes them, so the annotation is
 * the same string.
 */
export function recordedContainer(c: Container): Container {
  const fields = goMarshalledFields(c);
  const src: Record<string, unknown> = {
    ...fields,
    resources: recordedResources(canonicalResources(own(fields, "resources") ?? {})),
  };
  if (src.image === AUTO_IMAGE) delete src.image;
  // Set key by key, so that a field named `__proto__` stays a field (keys are data); name first.
  const out: Container = { name: c.name };
  for (const k of FIELD_ORDER) {
    const v = own(src, k);
    if (v !== undefined) setOwn(out, k, v);
  }
  for (const [k, v] of Object.entries(src)) if (!KNOWN_FIELDS.has(k) && v !== undefined) setOwn(out, k, v);
  return out;
}

function badOverrides(why: string): InjectionError {
  return new InjectionError(
    "ERR_INVALID_ANNOTATION",
    A.overrides,
    `invalid annotation ${A.overrides}: not the JSON this injector writes: ${why}`,
  );
}

/**
 * The value Go's encoding/json reads into the struct field of JSON name `name`: of the keys that
 * name it exactly or case-insensitively (Go folds ASCII letters, and U+017F ſ to s, U+212A K
 * to k), the last one written.
 */
function goField(obj: Record<string, unknown>, name: string): unknown {
  const want = name.toLowerCase();
  let value: unknown;
  for (const [k, v] of Object.entries(obj))
    if (k === name || k.replaceAll("\u017f", "s").replaceAll("\u212a", "k").toLowerCase() === want) value = v;
  return value;
}

/** The recorded overrides, their containers checked as the Pod's are. */
export function parseOverrides(annotations: Readonly<Record<string, string>>): Overrides | undefined {
  const raw = own(annotations, A.overrides);
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badOverrides("not JSON");
  }
  // Go's json.Unmarshal of `null` into Istio's struct leaves it empty: no overrides recorded.
  if (parsed === null) return undefined;
  if (!isMap(parsed)) throw badOverrides("must be a JSON object");
  try {
    const containers = readContainers(goField(parsed, "containers"), "containers");
    const initContainers = readContainers(goField(parsed, "initContainers"), "initContainers");
    return { ...(containers ? { containers } : {}), ...(initContainers ? { initContainers } : {}) };
  } catch (e) {
    if (e instanceof InjectionError) throw badOverrides(e.message);
    throw e;
  }
}

/**
 * Finds the override of a template container by name: recorded in the annotation (containers,
 * then init containers), else declared in the Pod; the first of each name. Indexed once, so
 * that a template writing one container per app container stays linear.
 */
export function overrideFinder(
  existing: Overrides | undefined,
  userContainers: readonly Container[],
): (name: string) => Container | undefined {
  const byName = new Map<string, Container>();
  for (const list of [existing?.containers ?? [], existing?.initContainers ?? [], userContainers]) {
    for (const c of list) if (!byName.has(c.name)) byName.set(c.name, c);
  }
  return (name) => byName.get(name);
}

function securityId(
  sc: Readonly<Record<string, unknown>> | undefined,
  key: "runAsUser" | "runAsGroup",
): number | undefined {
  const v = own(sc, key);
  return typeof v === "number" && Number.isInteger(v) ? v : undefined;
}

/**
 * Istio's adjustInitContainerUser: an `istio-proxy` the Pod declares with its own
 * securityContext.runAsUser/runAsGroup runs under those ids, so traffic interception must
 * exempt that uid instead of the configured one:
 * - the `-u` argument of istio-init (or istio-validation) becomes the declared runAsUser,
 *   unless it is 0 (iptables' --uid-owner must not be root);
 * - istio-validation (CNI) runs as the declared user and group, except in TPROXY mode;
 * - in TPROXY mode the proxy itself must run as root: a declared runAsUser is reset to 0.
 */
export function adjustInitUser(
  initContainers: Container[],
  containers: Container[],
  userProxy: Container | undefined,
  tproxy: boolean,
): { initContainers: Container[]; containers: Container[] } {
  const sc = userProxy?.securityContext;
  const uid = securityId(sc, "runAsUser");
  const gid = securityId(sc, "runAsGroup");
  // A list is copied only where a container in it changes (replaceFirst); else it is returned as given.
  let init = initContainers;
  let main = containers;
  if (uid === undefined && gid === undefined) return { initContainers: init, containers: main };
  const target = init.find((c) => c.name === CONTAINER.init) ?? init.find((c) => c.name === CONTAINER.validation);
  if (!target) return { initContainers: init, containers: main };

  if (tproxy && uid !== undefined) {
    const reset = (c: Container): Container =>
      c.name === CONTAINER.proxy ? { ...c, securityContext: { ...(c.securityContext ?? {}), runAsUser: 0 } } : c;
    // The first istio-proxy, as Istio finds it: containers first, then init containers.
    if (main.some((c) => c.name === CONTAINER.proxy)) main = replaceFirst(main, CONTAINER.proxy, reset);
    else init = replaceFirst(init, CONTAINER.proxy, reset);
  }
  const adjust = (c: Container): Container => {
    let next = c;
    if (!tproxy && c.name === CONTAINER.validation) {
      next = {
        ...next,
        securityContext: {
          ...(next.securityContext ?? {}),
          ...(uid !== undefined ? { runAsUser: uid } : {}),
          ...(gid !== undefined ? { runAsGroup: gid } : {}),
        },
      };
    }
    const at = next.args?.indexOf(IPTABLES_FLAGS.proxyUid) ?? -1;
    if (uid !== undefined && uid !== 0 && next.args && at >= 0 && at + 1 < next.args.length) {
      const args = [...next.args];
      args[at + 1] = String(uid);
      next = { ...next, args };
    }
    return next;
  };
  init = replaceFirst(init, target.name, adjust);
  return { initContainers: init, containers: main };
}

function replaceFirst(list: Container[], name: string, f: (c: Container) => Container): Container[] {
  const i = list.findIndex((c) => c.name === name);
  const c = list[i];
  return c === undefined ? list : list.with(i, f(c));
}
