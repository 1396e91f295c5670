// The proxy's readiness probe from the Pod's readiness.status.sidecar.istio.io/
// initialDelaySeconds, periodSeconds and failureThreshold annotations (the engine's
// template-parts.ts), in CEL over the admitted `object`:
// - each sets one field of one injected container's readinessProbe, as a number, instead of
//   the config's; a 0 leaves the field out (the API server then defaults it, for both);
// - which container and field, and the probe without the annotations, are read from the
//   engine's own output for a probe Pod with sample values, not restated: an annotation that
//   changes anything else, or not as the model says, is left to the webhook;
// - the domain (domain.ts) admits only plain values (0, or 1 to 9 digits without a leading 0):
//   numbers the webhook admits and writes as they are;
// - the probe is written as one map whose optional fields are chosen by nested ternaries, not
//   optional entries ({?k: v}), which kube-apiserver 1.34's CEL cannot type-check in a policy.
import type { Config } from "../config/types.js";
import type { Probe } from "../kube/types.js";
import { A } from "../injection/annotations.js";
import { literal, str } from "./cel.js";
import { SAMPLE_POD, containersOf, injectSample, onlyFieldDiffers } from "./sample.js";

/** The annotations, each with the probe field it sets. */
export const READINESS_ANNOTATIONS = [
  { key: A.readinessInitialDelay, field: "initialDelaySeconds" },
  { key: A.readinessPeriod, field: "periodSeconds" },
  { key: A.readinessFailureThreshold, field: "failureThreshold" },
] as const;

/** A value the policy writes (RE2 and JavaScript alike). */
export const PLAIN_SECONDS = "^(0|[1-9][0-9]{0,8})$";

type Field = (typeof READINESS_ANNOTATIONS)[number]["field"];

/** The readiness probe the annotations set. */
export interface ReadinessProbe {
  readonly container: string;
  /** The probe without the annotations. */
  readonly configured: Probe;
  /** The annotations honoured, with their fields. */
  readonly fields: readonly { readonly key: string; readonly field: Field }[];
}

/** The probe the model gives for `annotations` (the TypeScript twin of readinessExpression). */
export function modelProbe(r: ReadinessProbe, annotations: Readonly<Record<string, string>>): Probe {
  const out: Probe = { ...r.configured };
  for (const { key, field } of r.fields) {
    const v = annotations[key];
    if (v === undefined) continue;
    if (Number(v) === 0) delete out[field];
    else out[field] = Number(v);
  }
  return out;
}

const ANNOTATIONS = "variables.annotations";

/** CEL: the probe, its honoured fields from the annotations. */
export function readinessExpression(r: ReadinessProbe): string {
  const base: Record<string, unknown> = { ...r.configured };
  for (const { field } of r.fields) delete base[field];
  const value = (key: string, field: Field): string =>
    `(${str(key)} in ${ANNOTATIONS} ? int(${ANNOTATIONS}[${str(key)}]) : ${r.configured[field] ?? 0})`;
  // Every combination of the fields present, by nested ternaries.
  const build = (i: number, present: Record<string, string>): string => {
    const f = r.fields[i];
    if (f === undefined) {
      const entries = Object.entries(base).map(([k, v]) => `${str(k)}: dyn(${literal(v)})`);
      for (const [k, v] of Object.entries(present)) entries.push(`${str(k)}: dyn(${v})`);
      return `{${entries.join(", ")}}`;
    }
    const v = value(f.key, f.field);
    return `(${v} != 0 ? ${build(i + 1, { ...present, [f.field]: v })} : ${build(i + 1, present)})`;
  };
  return build(0, {});
}

const SAMPLES = ["7", "0", "123456789"];

/**
 * The readiness probe and the annotations the policy honours under `config`, or undefined when
 * it honours none (no injected container with a readiness probe the annotations set as modelled).
 */
export function readinessProbe(served: Config, nativeSidecarsSupported: boolean): ReadinessProbe | undefined {
  // On a copy: the engine memoises its parts per config object, a bounded few per config, and
  // the served config's are for real Pods' values, not these samples.
  const config: Config = { ...served };
  const plain = injectSample({}, config, nativeSidecarsSupported);
  const probed = containersOf(plain).filter(
    (c) => c.readinessProbe !== undefined && c.name !== SAMPLE_POD.spec?.containers[0]?.name,
  );
  const [c] = probed;
  if (probed.length !== 1 || c?.readinessProbe === undefined) return undefined;
  const model = (fields: ReadinessProbe["fields"]): ReadinessProbe => ({
    container: c.name,
    configured: c.readinessProbe ?? {},
    fields,
  });
  const check = (r: ReadinessProbe, annotations: Record<string, string>): boolean =>
    onlyFieldDiffers(
      injectSample(annotations, config, nativeSidecarsSupported),
      plain,
      annotations,
      r.container,
      "readinessProbe",
      modelProbe(r, annotations),
    );
  // First the three at once, each sample in turn; when one disagrees, each alone, to find which.
  const fields = SAMPLES.every((v) =>
    check(model(READINESS_ANNOTATIONS), Object.fromEntries(READINESS_ANNOTATIONS.map((a) => [a.key, v]))),
  )
    ? READINESS_ANNOTATIONS
    : READINESS_ANNOTATIONS.filter((a) => SAMPLES.every((v) => check(model([a]), { [a.key]: v })));
  if (fields.length === 0) return undefined;
  const all = model(fields);
  const together = Object.fromEntries(fields.map((f, i) => [f.key, SAMPLES[i % SAMPLES.length] ?? "1"]));
  return onlyFieldDiffers(
    injectSample(together, config, nativeSidecarsSupported),
    plain,
    together,
    all.container,
    "readinessProbe",
    modelProbe(all, together),
  )
    ? all
    : undefined;
}
