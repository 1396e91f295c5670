// Everything the templates need for one Pod, resolved once from the config, the Pod's
// annotations and labels, and the injection context. Templates read only this.
import { INTERCEPTION_MODES, type Config, type InterceptionMode, type Resources } from "../config/types.js";
import type { Container, JsonObject, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "./annotations.js";
import { parseProxyConfig, type ProxyConfigOverlay } from "./proxy-config.js";
import { canonicalResources } from "./quantity.js";
import type { InjectContext, WorkloadRef } from "./types.js";
import { parseOverrides } from "./overrides.js";
import { workloadOf } from "./owner.js";
import { isMap, own } from "./own.js";
import { quote } from "./quote.js";
import { InjectionError } from "./types.js";

export interface Params {
  readonly config: Config;
  readonly pod: Pod;
  readonly annotations: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly namespace: string;
  readonly workload: WorkloadRef;
  readonly proxyConfig: ProxyConfigOverlay;
  readonly mode: InterceptionMode;
  readonly tproxy: boolean;
  readonly native: boolean;
  /** The sidecar template's hold: the proxy's postStart wait (never with native sidecars). */
  readonly hold: boolean;
  /**
   * reorderPod's hold: istio-proxy first among the containers, with every template (native
   * sidecars aside, which are init containers and not moved by it).
   */
  readonly proxyFirst: boolean;
  readonly statusPort: string;
  /**
   * The agent's status port in the ProxyConfig (the Pod's proxy.istio.io/config over the
   * config): where merged metrics are served, and where rewritten probes go unless the Pod's
   * status.sidecar.istio.io/port says otherwise.
   */
  readonly agentStatusPort: number;
  readonly proxyImage: string;
  readonly initImage: string;
  readonly resources: ProxyResources | undefined;
  readonly agentLogLevel: string;
  readonly capNetBindService: boolean;
  /**
   * The Pod's containers as the templates read them: those of the Pod, then each container
   * recorded in proxy.istio.io/overrides that the Pod lacks (re-injection strips the previous
   * injection's istio-proxy; Istio's reinsertOverrides puts the recorded one back for the
   * templates, so its ports are among ISTIO_META_POD_PORTS again and grpc-simple writes its
   * entry again).
   */
  readonly templateContainers: readonly Container[];
  /** Names of the templates' containers (templateContainers) other than istio-proxy, in order. */
  readonly appContainers: readonly string[];
  /** Names of all the Pod's containers, istio-proxy too, in order (what grpc-simple ranges over). */
  readonly containerNames: readonly string[];
  readonly pathEnv: Readonly<Record<string, string>>;
  /** What reading the settings found that Istio admits but will not work (an image type's tag). */
  readonly warnings: readonly string[];
}

/**
 * The proxy's resources, as the templates write them into a container: a type rather than the
 * config's interface, so that it is a JSON object.
 */
export type ProxyResources = { readonly requests?: Quantities; readonly limits?: Quantities };
type Quantities = { readonly cpu?: string; readonly memory?: string; readonly "ephemeral-storage"?: string };

/** The interception mode an annotation names; undefined when absent (validate.ts refuses any other value). */
function interceptionMode(v: string | undefined): InterceptionMode | undefined {
  return INTERCEPTION_MODES.find((m) => m === v);
}

function annotationResources(a: Readonly<Record<string, string>>): Resources | undefined {
  const cpu = a[A.proxyCPU];
  const memory = a[A.proxyMemory];
  const cpuLimit = a[A.proxyCPULimit];
  const memoryLimit = a[A.proxyMemoryLimit];
  if (cpu === undefined && memory === undefined && cpuLimit === undefined && memoryLimit === undefined)
    return undefined;
  const out: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  if (cpu !== undefined || memory !== undefined) {
    out.requests = {};
    if (cpu !== undefined) out.requests.cpu = cpu;
    if (memory !== undefined) out.requests.memory = memory;
  }
  if (cpuLimit !== undefined || memoryLimit !== undefined) {
    out.limits = {};
    if (cpuLimit !== undefined) out.limits.cpu = cpuLimit;
    if (memoryLimit !== undefined) out.limits.memory = memoryLimit;
  }
  return canonicalResources(out);
}

/** Istio's rule for a proxy image annotation: a value with a "/" is a full image name. */
function imageFrom(annotation: string | undefined, configured: string): string {
  if (annotation !== undefined && annotation.includes("/")) return annotation;
  return configured;
}

/** The image type to write into a configured image: none where the config says it takes none. */
function typedOnly(image: { readonly imageTyped: boolean }, imageType: string | undefined): string | undefined {
  return image.imageTyped ? imageType : undefined;
}

/** The image types Istio publishes, as tag suffixes ("1.27.0-distroless"); "default" is none. */
export const KNOWN_IMAGE_TYPES = ["distroless", "debug"] as const;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Istio's updateImageTypeIfPresent, on the configured image's tag: a known type suffix is
 * replaced by `imageType` ("default": no suffix). An image named by digest, or without a tag,
 * is one image and stays as configured. A type that makes an invalid tag is refused; for a
 * Pod's setting (`warnings` given) it is written as Istio writes it, with a warning (the
 * image will not pull, but Istio admits the Pod), unless the image would then begin or end
 * with a blank, which the API server refuses.
 */
export function withImageType(
  image: string,
  imageType: string | undefined,
  annotation: string,
  setting: string = annotation,
  warnings?: string[],
): string {
  if (imageType === undefined || imageType === "" || image.includes("@")) return image;
  const colon = image.lastIndexOf(":");
  if (colon < 0 || colon < image.lastIndexOf("/")) return image;
  let tag = image.slice(colon + 1);
  for (const t of KNOWN_IMAGE_TYPES) {
    if (tag.endsWith(`-${t}`)) {
      tag = tag.slice(0, tag.length - t.length - 1);
      break;
    }
  }
  if (imageType !== "default") tag = `${tag}-${imageType}`;
  const written = `${image.slice(0, colon)}:${tag}`;
  if (!TAG.test(tag) && warnings !== undefined && written.trim() === written) {
    warnings.push(
      `${setting}=${quote(imageType)} makes the image tag ${quote(tag)}, not a valid tag: it will not pull`,
    );
    return written;
  }
  if (!TAG.test(tag)) {
    throw new InjectionError(
      "ERR_INVALID_ANNOTATION",
      annotation,
      `invalid annotation ${setting}=${quote(imageType)}: the image tag would be ${quote(tag)}, not a valid tag`,
    );
  }
  return written;
}

/**
 * The ProxyConfig fields the engine reads itself, from the merged PROXY_CONFIG it writes (a
 * previous injection's, when stripping it). Throws on text that is not JSON.
 */
export function proxyConfigFields(json: string): { statusPort?: number; imageType?: string } {
  const pc: unknown = JSON.parse(json);
  if (!isMap(pc)) return {};
  const out: { statusPort?: number; imageType?: string } = {};
  const port = own(pc, "statusPort");
  // ProxyConfig's statusPort is an int32; its JSON form also takes the number as a string.
  const n =
    typeof port === "number" ? port : typeof port === "string" && /^\d{1,5}$/.test(port) ? Number(port) : undefined;
  if (n !== undefined && Number.isInteger(n) && n >= 0 && n <= 65535) out.statusPort = n;
  const image = own(pc, "image");
  if (isMap(image)) {
    const t = own(image, "imageType");
    if (typeof t === "string") out.imageType = t;
  }
  return out;
}

/**
 * proxyConfigFields of a ProxyConfig the engine merged: read once per overlay (the one of a Pod
 * without the annotation is its config's, the same for every such Pod), shared.
 */
const OVERLAY_FIELDS = new WeakMap<ProxyConfigOverlay, Readonly<{ statusPort?: number; imageType?: string }>>();

function overlayFields(overlay: ProxyConfigOverlay): Readonly<{ statusPort?: number; imageType?: string }> {
  let fields = OVERLAY_FIELDS.get(overlay);
  if (fields === undefined) {
    fields = Object.freeze(proxyConfigFields(overlay.json));
    OVERLAY_FIELDS.set(overlay, fields);
  }
  return fields;
}

export function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(1|t|T|TRUE|true|True)$/.test(v);
}

/** strconv.ParseBool: true, false, or undefined for a value it does not read (or no value). */
export function goBool(v: string | undefined): boolean | undefined {
  if (v === undefined || !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(v)) return undefined;
  return isTrue(v);
}

export function resolveNative(config: Config, ctx: InjectContext): boolean {
  if (config.nativeSidecars === "auto") return ctx.nativeSidecarsSupported === true;
  return config.nativeSidecars === "true";
}

/** `containers` and after them each of `recorded` of a name they lack (Istio's reinsertOverrides). */
function withRecorded(
  containers: readonly Container[],
  recorded: readonly Container[] | undefined,
): readonly Container[] {
  if (recorded === undefined || recorded.length === 0) return containers;
  const names = new Set(containers.map((c) => c.name));
  const missing: Container[] = [];
  for (const c of recorded) {
    if (names.has(c.name)) continue;
    names.add(c.name);
    missing.push(c);
  }
  return missing.length === 0 ? containers : [...containers, ...missing];
}

export function buildParams(
  pod: Pod,
  ctx: InjectContext,
  config: Config,
  configResources: Resources | undefined,
): Params {
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const proxyConfig = parseProxyConfig(annotations[A.proxyConfig], config);
  const mode =
    interceptionMode(annotations[A.interceptionMode]) ?? proxyConfig.interceptionMode ?? config.interception.mode;
  const nativeAnn = annotations[A.nativeSidecar];
  // The template's `… | default (printf "%t" .NativeSidecars)`: an empty value is no value.
  const native = nativeAnn !== undefined && nativeAnn !== "" ? nativeAnn !== "false" : resolveNative(config, ctx);
  // Istio's `(or .ProxyConfig.HoldApplicationUntilProxyStarts .Values.global.proxy.holdApplicationUntilProxyStarts)`:
  // the Pod's ProxyConfig (its annotation over the mesh's) or the config's proxy setting; an
  // annotation saying false does not undo the latter.
  const proxyFirst =
    proxyConfig.holdApplicationUntilProxyStarts === true || config.proxy.holdApplicationUntilProxyStarts;
  const hold = !native && proxyFirst;
  const fields = overlayFields(proxyConfig);
  // The image type (Istio's proxyImageURL): the Pod's annotation when it has one, empty or not
  // (empty: none); else, for the proxy, the ProxyConfig's image.imageType; else the variant.
  // An image the config marks untyped (Istio's full-name global.proxy.image) takes none.
  const typeAnn = own(annotations, A.proxyImageType);
  const warnings: string[] = [];
  const proxy = config.proxy;
  const proxyType =
    typeAnn !== undefined
      ? withImageType(proxy.image, typedOnly(proxy, typeAnn), A.proxyImageType, A.proxyImageType, warnings)
      : fields.imageType
        ? withImageType(
            proxy.image,
            typedOnly(proxy, fields.imageType),
            A.proxyConfig,
            `${A.proxyConfig} image.imageType`,
            warnings,
          )
        : withImageType(proxy.image, typedOnly(proxy, config.variant), "variant");
  const proxyImage = imageFrom(annotations[A.proxyImage], proxyType);
  const init = config.proxyInit.image ? config.proxyInit : proxy;
  // One warning for the two images the annotation's type is written into.
  const initImage = imageFrom(
    annotations[A.proxyImage],
    withImageType(init.image, typedOnly(init, typeAnn ?? config.variant), A.proxyImageType, A.proxyImageType, []),
  );
  const containers = withRecorded(pod.spec?.containers ?? [], parseOverrides(annotations)?.containers);
  const containerNames = containers.map((c) => c.name);
  return {
    config,
    pod,
    annotations,
    labels,
    namespace: ctx.namespace,
    workload: ctx.workload ?? workloadOf(pod, ctx.namespace),
    proxyConfig,
    mode,
    tproxy: mode === "TPROXY",
    native,
    hold,
    proxyFirst,
    statusPort: annotations[A.statusPort] ?? String(config.proxy.statusPort),
    agentStatusPort: fields.statusPort ?? config.proxy.statusPort,
    proxyImage,
    initImage,
    resources: annotationResources(annotations) ?? configResources,
    agentLogLevel: annotations[A.agentLogLevel] ?? config.proxy.agentLogLevel,
    // The template compares the annotation's text with "true", exactly.
    capNetBindService: annotations[A.capNetBindService] === "true",
    templateContainers: containers,
    appContainers: containerNames.filter((name) => name !== CONTAINER.proxy),
    containerNames,
    pathEnv: ctx.pathEnv ?? {},
    warnings,
  };
}

export function labelOr(p: Params, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = p.labels[k];
    if (v) return v;
  }
  return undefined;
}

export function workloadName(p: Params): string {
  return p.labels[L.workloadName] || p.workload.name;
}

export type { JsonObject };
