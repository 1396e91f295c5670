// Containers the user declares under an injected name (istio-proxy, istio-init, or an app
// container a template also writes) are overrides: merged over what the template injects, and
// recorded in `proxy.istio.io/overrides` so that re-injection applies them again.
import type { Container } from "../kube/types.js";
import { A } from "./annotations.js";
import { own } from "./own.js";
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
  "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
  "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
  "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
];
const KNOWN_FIELDS: ReadonlySet<string> = new Set(FIELD_ORDER);

/** The container as recorded: canonical quantities, `resources` always present, no "auto" image. */
export function recordedContainer(c: Container): Container {
  const src: Record<string, unknown> = { ...c, resources: canonicalResources(c.resources ?? {}) };
  if (src.image === AUTO_IMAGE) delete src.image;
  // Built from entries, so that a field named `__proto__` stays a field (keys are data).
  const entries: [string, unknown][] = [];
  for (const k of FIELD_ORDER) {
    const v = own(src, k);
    if (v !== undefined) entries.push([k, v]);
  }
  for (const [k, v] of Object.entries(src)) if (!KNOWN_FIELDS.has(k) && v !== undefined) entries.push([k, v]);
  return Object.fromEntries(entries) as Container;
}

function badOverrides(why: string): InjectionError {
  return new InjectionError("ERR_INVALID_ANNOTATION", A.overrides, `invalid annotation ${A.overrides}: not the JSON this injector writes: ${why}`);
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
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw badOverrides("must be a JSON object");
  try {
    const containers = readContainers(own(parsed as Record<string, unknown>, "containers"), "containers");
    const initContainers = readContainers(own(parsed as Record<string, unknown>, "initContainers"), "initContainers");
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
export function overrideFinder(existing: Overrides | undefined, userContainers: readonly Container[]): (name: string) => Container | undefined {
  const byName = new Map<string, Container>();
  for (const list of [existing?.containers ?? [], existing?.initContainers ?? [], userContainers]) {
    for (const c of list) if (!byName.has(c.name)) byName.set(c.name, c);
  }
  return (name) => byName.get(name);
}
