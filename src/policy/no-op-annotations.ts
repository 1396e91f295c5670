// Annotations the engine reads as a setting the config already has: sidecar.istio.io/
// interceptionMode naming the config's mode, sidecar.istio.io/rewriteAppHTTPProbers saying what
// rewriteAppProbes says ("true" or "false": Go's other spellings of a bool, which the webhook
// reads alike, stay the webhook's: each candidate costs an injection when the domain is built),
// sidecar.istio.io/nativeSidecar
// saying what nativeSidecars decides. The engine resolves each to one setting (params.ts,
// placement.ts; probes.ts; params.ts), the annotation over the config, and the domain leaves out
// everything else that could set it (proxy.istio.io/config): such a value changes nothing, so
// the policy takes the Pod and injects it as if the annotation were not there.
// - which values change nothing is read from the engine's own output, not restated: a probe Pod
//   (with an httpGet and a tcpSocket probe, and a port) injected with each candidate value and
//   without the annotation must come out the same, but for the annotation itself;
// - any other value (a mode or rewrite other than the config's, an unknown spelling) is the
//   webhook's, which refuses what Istio refuses.
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import { A } from "../injection/annotations.js";
import { injectSample, samplePod } from "./sample.js";

/** The annotations, each with the values that may change nothing (plain letters and digits). */
const CANDIDATES: readonly { readonly key: string; readonly values: readonly string[] }[] = [
  { key: A.interceptionMode, values: ["REDIRECT", "TPROXY", "NONE"] },
  { key: A.rewriteProbes, values: ["true", "false"] },
  { key: A.nativeSidecar, values: ["true", "false"] },
];

/** An annotation with the values that change nothing under a config. */
export interface NoOpAnnotation {
  readonly key: string;
  readonly values: readonly string[];
  /** The values as one pattern (RE2 and JavaScript alike). */
  readonly pattern: string;
}

/** The sample Pod the values are checked on: a container with probes the engine may rewrite. */
const PROBED_POD = samplePod({
  ports: [{ name: "http", containerPort: 8080 }],
  readinessProbe: { httpGet: { path: "/ready", port: "http" } },
  livenessProbe: { tcpSocket: { port: 8080 } },
});

/** The Pod without the annotation `key`. */
function without(p: Pod, key: string): Pod {
  const annotations = { ...p.metadata?.annotations };
  delete annotations[key];
  return { ...p, metadata: { ...p.metadata, annotations } };
}

/** The annotations with values that change nothing under `config`, each with those values. */
export function noOpAnnotations(served: Config, nativeSidecarsSupported: boolean): NoOpAnnotation[] {
  // On a copy: the engine memoises its parts per config object, a bounded few per config, and
  // the served config's are for real Pods' values, not these samples.
  const config: Config = { ...served };
  const plain = injectSample({}, config, nativeSidecarsSupported, PROBED_POD);
  return CANDIDATES.flatMap(({ key, values }) => {
    const same = values.filter((v) =>
      isDeepStrictEqual(
        without(injectSample({ [key]: v }, config, nativeSidecarsSupported, PROBED_POD), key),
        without(plain, key),
      ),
    );
    return same.length === 0 ? [] : [{ key, values: same, pattern: `^(${same.join("|")})$` }];
  });
}
