// The injected Pod's labels and annotations (Istio's injectPod and postProcessPod): the Pod's
// own annotations with the templates' and the config's injectedAnnotations over them, the
// sidecar.istio.io/status record of what was injected, on first injection the overrides the
// Pod declared (proxy.istio.io/overrides), and the templates' labels with the network found
// for the proxy (topology.istio.io/network).
import { A, L } from "./annotations.js";
import { NETWORK_ENV } from "./cluster-info.js";
import { servedRevision } from "./istio.js";
import { jsonString } from "./json-text.js";
import { MapEdit } from "./map-edit.js";
import type { Params } from "./params.js";
import type { Overlaid } from "./patch.js";
import type { Placed } from "./placement.js";
import type { TemplateOutput } from "./template.js";

export interface PodMetadata {
  /**
   * The Pod's own labels with the templates' over them (a Pod can carry hundreds of thousands;
   * the patch reads the templates' few).
   */
  readonly labels: Overlaid;
  /**
   * The Pod's own annotations with the injection's set over them (map-edit.ts: a Pod can carry
   * hundreds; the patch reads the few set). The later steps set and delete keys.
   */
  readonly annotations: MapEdit;
}

/**
 * The names of a list's items as JSON (`null` for none), as JSON.stringify writes the list of
 * them: written by hand, the status record is a few short lists and one call per Pod to
 * JSON.stringify was a twentieth of the engine's time for a Pod of one container.
 */
export function namesJson(list: readonly { name?: unknown }[]): string {
  if (list.length === 0) return "null";
  let text = "[";
  for (let i = 0; i < list.length; i++) {
    const name = list[i]?.name;
    // A name that is not a string is written null, as JSON.stringify writes undefined in a list.
    text += `${i > 0 ? "," : ""}${typeof name === "string" ? jsonString(name) : "null"}`;
  }
  return `${text}]`;
}

export function podMetadata(p: Params, out: TemplateOutput, placed: Placed): PodMetadata {
  const annotations = new MapEdit(p.annotations);
  annotations.assign(out.annotations);
  annotations.assign(p.config.injectedAnnotations);
  const network = placed.clusterVars[NETWORK_ENV];
  const labels: Overlaid = {
    base: p.labels,
    overlay: network === undefined ? out.labels : { ...out.labels, [L.network]: network },
  };
  annotations.set(
    A.status,
    `{"initContainers":${namesJson(out.listedInitContainers ?? out.initContainers)},"containers":${namesJson(out.listedContainers ?? out.containers)},"volumes":${namesJson(out.volumes)},"imagePullSecrets":${namesJson(out.imagePullSecrets)},"revision":${jsonString(servedRevision(p.config.revision))}}`,
  );
  // As in Istio, the overrides are recorded on first injection only: a Pod that carries a
  // status annotation (even a stale or unreadable one) keeps whatever record it has.
  const firstInjection = !Object.hasOwn(p.annotations, A.status);
  if (firstInjection && (placed.overrides.containers || placed.overrides.initContainers))
    annotations.set(A.overrides, JSON.stringify(placed.overrides));
  return { labels, annotations };
}
