// The engine's own output for small sample Pods. The policy's modules learn from it what the
// engine writes under a config (the agent's port, the arguments, the probe it sets...) and
// check their CEL's model against it when the policy is rendered, instead of restating the
// engine: a config where the two differ leaves the annotations concerned to the webhook.
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import { L } from "../injection/annotations.js";
import { inject } from "../injection/inject.js";
import type { Container, Pod } from "../kube/types.js";

/** A Pod with the inject label and one container, `app`, with `extra` (ports, probes...). */
export function samplePod(extra: Omit<Partial<Container>, "name" | "image"> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "probe", namespace: "probe", labels: { [L.inject]: "true" } },
    spec: { containers: [{ name: "app", image: "example.com/app:1", ...extra }] },
  };
}

/** The plain sample Pod (samplePod with nothing more). */
export const SAMPLE_POD: Pod = samplePod();

/** The Pod's init containers, then its containers. */
export const containersOf = (p: Pod): Container[] => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];

/** What the engine stores for `pod` annotated with `annotations`, under `config`. */
export function injectSample(
  annotations: Record<string, string>,
  config: Config,
  native: boolean,
  pod: Pod = SAMPLE_POD,
): Pod {
  const annotated: Pod = { ...pod, metadata: { ...pod.metadata, annotations } };
  return inject(annotated, { namespace: "probe", nativeSidecarsSupported: native }, config).pod;
}

/**
 * Whether `out` (the sample injected with `annotations`) is `plain` (injected without them) but
 * for the annotations themselves and `container`'s `field`, which is `expected`: the annotations
 * change that field alone, as the model says.
 */
export function onlyFieldDiffers(
  out: Pod,
  plain: Pod,
  annotations: Record<string, string>,
  container: string,
  field: keyof Container,
  expected: unknown,
): boolean {
  const before = containersOf(plain);
  const after = containersOf(out);
  if (before.length !== after.length) return false;
  for (const [i, c] of after.entries()) {
    const was = before[i];
    if (!was || was.name !== c.name) return false;
    if (c.name !== container) {
      if (!isDeepStrictEqual(c, was)) return false;
      continue;
    }
    if (!isDeepStrictEqual({ ...c, [field]: undefined }, { ...was, [field]: undefined })) return false;
    if (!isDeepStrictEqual(c[field], expected)) return false;
  }
  const strip = (p: Pod): unknown => ({
    ...p,
    metadata: { ...p.metadata, annotations: undefined },
    spec: { ...p.spec, initContainers: undefined, containers: undefined },
  });
  const annotationsOut = { ...out.metadata?.annotations };
  for (const k of Object.keys(annotations)) delete annotationsOut[k];
  return isDeepStrictEqual(strip(out), strip(plain)) && isDeepStrictEqual(annotationsOut, plain.metadata?.annotations);
}
