// Containers the user declares under an injected name (istio-proxy, istio-init, or an app
// container a template also writes) are overrides: merged over what the template injects, and
// recorded in `proxy.istio.io/overrides` so that re-injection applies them again.
import type { Container } from "../kube/types.js";
import { A } from "./annotations.js";
import { canonicalResources } from "./quantity.js";
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

/** The container as recorded: canonical quantities, `resources` always present, no "auto" image. */
export function recordedContainer(c: Container): Container {
  const src: Record<string, unknown> = { ...c, resources: canonicalResources(c.resources ?? {}) };
  if (src.image === AUTO_IMAGE) delete src.image;
  const out: Record<string, unknown> = {};
  for (const k of FIELD_ORDER) if (src[k] !== undefined) out[k] = src[k];
  for (const [k, v] of Object.entries(src)) if (!(k in out) && v !== undefined) out[k] = v;
  return out as Container;
}

export function parseOverrides(annotations: Readonly<Record<string, string>>): Overrides | undefined {
  const raw = annotations[A.overrides];
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as Overrides;
    if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
    return parsed;
  } catch (e) {
    throw new InjectionError("ERR_INVALID_ANNOTATION", A.overrides, `invalid annotation ${A.overrides}: not the JSON this injector writes (${(e as Error).message})`);
  }
}

export function findOverride(name: string, existing: Overrides | undefined, userContainers: readonly Container[]): Container | undefined {
  return (
    existing?.containers?.find((c) => c.name === name) ??
    existing?.initContainers?.find((c) => c.name === name) ??
    userContainers.find((c) => c.name === name)
  );
}
