// The injection templates a Pod can select with `inject.istio.io/templates`, and how several
// selected templates combine (each merged over the ones before, as Istio does).
import type { Container, JsonObject, Volume } from "../kube/types.js";
import { A, CONTAINER } from "./annotations.js";
import { mergeListStrategic, mergeObject } from "./merge.js";
import type { Params } from "./params.js";
import { gatewayTemplate, grpcAgentTemplate, grpcSimpleTemplate } from "./templates-extra.js";
import { sidecarTemplate } from "./sidecar.js";
import { quote } from "./quote.js";
import { InjectionError } from "./types.js";
import { goTrimSpace } from "./validate.js";
import { templateWorkOver } from "./inline-cost.js";

export interface TemplateOutput {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly initContainers: readonly Container[];
  readonly containers: readonly Container[];
  readonly volumes: readonly Volume[];
  readonly imagePullSecrets: readonly { name: string }[];
  readonly podSecurityContext?: JsonObject;
  /**
   * The containers and init containers as Istio's template Pod lists them, where that differs
   * from `containers` and `initContainers`: with the proxy moved for native sidecars (see
   * proxyMovedForNative, oneProxy), which the status annotation names where the templates put it.
   */
  readonly listedContainers?: readonly Container[];
  readonly listedInitContainers?: readonly Container[];
  /**
   * Where several templates are selected, each one's output, in their order: Istio merges one
   * after the other over the Pod, which orders the Pod's keyed lists otherwise than these
   * merged first (overlay.ts).
   */
  readonly steps?: readonly TemplateOutput[];
}

// By name, in a Map: the names come from the Pod's annotation, and `constructor` is no template.
export const TEMPLATES: ReadonlyMap<string, (p: Params) => TemplateOutput> = new Map([
  ["sidecar", sidecarTemplate],
  ["gateway", gatewayTemplate],
  ["grpc-simple", grpcSimpleTemplate],
  ["grpc-agent", grpcAgentTemplate],
]);

export const DEFAULT_TEMPLATES = ["sidecar"] as const;

export function selectTemplates(annotations: Readonly<Record<string, string>>): string[] {
  const raw = annotations[A.templates];
  if (raw === undefined || raw.trim() === "") return [...DEFAULT_TEMPLATES];
  const names: string[] = [];
  for (const part of raw.split(",")) {
    const name = goTrimSpace(part);
    if (!name) continue;
    if (!TEMPLATES.has(name)) {
      throw new InjectionError(
        "ERR_INVALID_ANNOTATION",
        A.templates,
        `invalid annotation ${A.templates}=${quote(raw)}: unknown template ${quote(name)} (known: ${[...TEMPLATES.keys()].join(", ")})`,
      );
    }
    // A name given twice is applied twice, as Istio does: `grpc-agent,sidecar,grpc-agent`
    // merges grpc-agent's proxy over the sidecar's again.
    names.push(name);
  }
  return names.length ? names : [...DEFAULT_TEMPLATES];
}

/** The templates the Pod selects (inject.istio.io/templates, else `sidecar`), rendered and combined. */
export function applyTemplates(p: Params): TemplateOutput {
  const names = selectTemplates(p.annotations);
  const over = templateWorkOver(names.length, p.templateContainers.length + (p.pod.spec?.initContainers?.length ?? 0));
  if (over !== undefined) {
    const why = `${over} (Istio's injector takes longer than the API server waits, 30 s at most, for far less)`;
    // Without the annotation, the Pod's containers are what is too much for the default template.
    throw p.annotations[A.templates] === undefined
      ? new InjectionError("ERR_INVALID_POD", "spec.containers", `too many containers for the sidecar template: ${why}`)
      : new InjectionError("ERR_INVALID_ANNOTATION", A.templates, `invalid annotation ${A.templates}: ${why}`);
  }
  return renderTemplates(names, p);
}

export function renderTemplates(names: readonly string[], p: Params): TemplateOutput {
  let out: TemplateOutput | undefined;
  const rendered: TemplateOutput[] = [];
  for (const name of names) {
    const render = TEMPLATES.get(name);
    if (!render) continue;
    const next = render(p);
    rendered.push(next);
    out = out ? combine(p.native ? proxyMovedForNative(out, next) : out, next) : next;
  }
  if (!out) throw new InjectionError("ERR_INVALID_ANNOTATION", A.templates, "no injection template selected");
  if (rendered.length > 1) out = { ...out, steps: rendered };
  return initOnly(p.native ? oneProxy(out) : out);
}

/**
 * No istio-init or istio-validation among the containers where a template puts it among the
 * init containers: grpc-simple writes an entry for each of the Pod's containers, and a Pod's own
 * istio-init declared among its containers is one of them (`sidecar,grpc-simple`). The Pod's
 * declaration is merged over the init container (placement.ts); Istio also leaves it among the
 * containers, two containers of one name, which the API server refuses (README). The status
 * record names both, as Istio's does.
 */
function initOnly(out: TemplateOutput): TemplateOutput {
  const both = out.containers.filter((c) => INIT_ONLY.has(c.name) && out.initContainers.some((i) => i.name === c.name));
  if (both.length === 0) return out;
  return {
    ...out,
    containers: out.containers.filter((c) => !both.includes(c)),
    listedContainers: out.listedContainers ?? out.containers,
    listedInitContainers: out.listedInitContainers ?? out.initContainers,
  };
}

const INIT_ONLY: ReadonlySet<string> = new Set([CONTAINER.init, CONTAINER.validation]);

/**
 * `a` with its istio-proxy moved from the containers to the end of the init containers when
 * `b` (a native-sidecar template) puts the proxy there: as Istio's RunTemplate does before each
 * template, so that `grpc-agent,sidecar` gives one proxy, a native sidecar with grpc-agent's
 * settings, not one in each list (which the API server refuses).
 */
function proxyMovedForNative(a: TemplateOutput, b: TemplateOutput): TemplateOutput {
  const proxy = a.containers.find(isProxy);
  if (proxy === undefined || !b.initContainers.some(isProxy)) return a;
  return proxyReplaced(a, [...a.initContainers, proxy]);
}

/**
 * One istio-proxy where a later template put the proxy among the containers after a native
 * sidecar template put it among the init containers (`sidecar,grpc-agent`): that one is merged
 * into the native sidecar, the later template's fields over it. Istio leaves one in each list,
 * which the API server refuses (a deliberate difference, README); the status record names both,
 * as Istio's does.
 */
function oneProxy(out: TemplateOutput): TemplateOutput {
  const later = out.containers.find(isProxy);
  const at = out.initContainers.findIndex(isProxy);
  const native = out.initContainers[at];
  if (later === undefined || native === undefined) return out;
  const initContainers = [...out.initContainers];
  initContainers[at] = mergeObject(native, later);
  return proxyReplaced(out, initContainers);
}

/**
 * `out` with no proxy among its containers and `initContainers` in place of its own: the
 * template Pod's lists, as the status record names them, kept from before the first move.
 */
function proxyReplaced(out: TemplateOutput, initContainers: Container[]): TemplateOutput {
  return {
    ...out,
    containers: out.containers.filter((c) => !isProxy(c)),
    initContainers,
    listedContainers: out.listedContainers ?? out.containers,
    listedInitContainers: out.listedInitContainers ?? out.initContainers,
  };
}

const isProxy = (c: Container): boolean => c.name === CONTAINER.proxy;

function combine(a: TemplateOutput, b: TemplateOutput): TemplateOutput {
  const sc =
    a.podSecurityContext && b.podSecurityContext
      ? mergeObject(a.podSecurityContext, b.podSecurityContext)
      : (b.podSecurityContext ?? a.podSecurityContext);
  return {
    labels: { ...a.labels, ...b.labels },
    annotations: { ...a.annotations, ...b.annotations },
    initContainers: mergeListStrategic(a.initContainers, b.initContainers, "name"),
    containers: mergeListStrategic(a.containers, b.containers, "name"),
    volumes: mergeListStrategic(a.volumes, b.volumes, "name"),
    imagePullSecrets: mergeListStrategic(a.imagePullSecrets, b.imagePullSecrets, "name"),
    ...(sc ? { podSecurityContext: sc } : {}),
    ...(a.listedContainers ? { listedContainers: mergeListStrategic(a.listedContainers, b.containers, "name") } : {}),
    ...(a.listedInitContainers
      ? { listedInitContainers: mergeListStrategic(a.listedInitContainers, b.initContainers, "name") }
      : {}),
  };
}
