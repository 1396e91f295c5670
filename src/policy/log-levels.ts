// The proxy's log levels from the Pod's sidecar.istio.io/logLevel, componentLogLevel and
// agentLogLevel annotations (the engine's template-parts.ts), in CEL over the admitted `object`:
// - each is one argument of one or more injected containers, `<flag>=<value>`, the value the
//   annotation's when the Pod has it, else the config's;
// - which containers and arguments, the flag and the config's value are read from the engine's
//   own output for a probe Pod without the annotation and with two values of it, not restated:
//   an annotation that changes anything else, or not as a flag's value, is left to the webhook;
// - the domain (domain.ts) admits only values of letters, digits and `:,._-` (the engine only
//   warns on a level Envoy does not know, and writes it as it is: so does the policy).
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A } from "../injection/annotations.js";
import { str } from "./cel.js";
import { containersOf, injectSample } from "./sample.js";

/** The annotations, each setting one flag's value. */
export const LOG_LEVEL_ANNOTATIONS: readonly string[] = [A.logLevel, A.componentLogLevel, A.agentLogLevel];

/** A value the policy writes: letters, digits and `:,._-` (RE2 and JavaScript read it alike). */
export const PLAIN_LOG_LEVEL = "^[A-Za-z0-9:,._-]{1,256}$";

/** One argument the annotation sets: the container, its index in args, the flag and the config's value. */
export interface ArgSlot {
  readonly annotation: string;
  readonly container: string;
  readonly index: number;
  /** What precedes the value, e.g. "--proxyLogLevel=". */
  readonly prefix: string;
  /** The value without the annotation. */
  readonly configured: string;
}

/** The Pod with the given arguments blanked and without annotations: what must not change. */
function rest(p: Pod, args: readonly ArgSlot[]): unknown {
  const blank = (c: Container): Container => ({
    ...c,
    args: c.args?.map((a, i) => (args.some((s) => s.container === c.name && s.index === i) ? "" : a)),
  });
  return {
    ...p,
    metadata: { ...p.metadata, annotations: undefined },
    spec: { ...p.spec, initContainers: p.spec?.initContainers?.map(blank), containers: p.spec?.containers.map(blank) },
  };
}

/** The arguments `annotation` sets, or undefined when it does more than set flags' values. */
function slotsOf(annotation: string, config: Config, native: boolean): ArgSlot[] | undefined {
  const plain = injectSample({}, config, native);
  const values = ["policy-probe-a", "x:y,z_1.2-3"];
  let found: ArgSlot[] | undefined;
  for (const value of values) {
    const out = injectSample({ [annotation]: value }, config, native);
    const slots: ArgSlot[] = [];
    const before = containersOf(plain);
    const after = containersOf(out);
    if (before.length !== after.length) return undefined;
    for (const [i, c] of after.entries()) {
      const was = before[i];
      if (!was || was.name !== c.name || (was.args?.length ?? 0) !== (c.args?.length ?? 0)) return undefined;
      for (const [j, arg] of (c.args ?? []).entries()) {
        const old = was.args?.[j] ?? "";
        if (arg === old) continue;
        if (!arg.endsWith(value)) return undefined;
        const prefix = arg.slice(0, arg.length - value.length);
        if (!prefix.endsWith("=") || !old.startsWith(prefix)) return undefined;
        slots.push({ annotation, container: c.name, index: j, prefix, configured: old.slice(prefix.length) });
      }
    }
    const annotationsOut = { ...out.metadata?.annotations };
    delete annotationsOut[annotation];
    if (!isDeepStrictEqual(rest(out, slots), rest(plain, slots))) return undefined;
    if (!isDeepStrictEqual(annotationsOut, plain.metadata?.annotations)) return undefined;
    if (slots.length === 0 || (found !== undefined && !isDeepStrictEqual(found, slots))) return undefined;
    found = slots;
  }
  return found;
}

/** The arguments the log-level annotations set, for those the policy honours under `config`. */
export function logLevelSlots(config: Config, nativeSidecarsSupported: boolean): ArgSlot[] {
  return LOG_LEVEL_ANNOTATIONS.flatMap((a) => slotsOf(a, config, nativeSidecarsSupported) ?? []);
}

/** CEL: the argument's value, the annotation's when the Pod has it. */
export function argExpression(s: ArgSlot): string {
  return `${str(s.prefix)} + variables.annotations[?${str(s.annotation)}].orValue(${str(s.configured)})`;
}
