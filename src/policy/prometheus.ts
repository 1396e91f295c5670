// The Prometheus merge (the engine's prometheus.ts) in CEL, over the admitted `object`:
// - it applies unless prometheus.istio.io/merge-metrics reads as false (as true, it applies
//   under a config that merges nothing), prometheus.io/scrape reads as false (Go's booleans;
//   any other value still scrapes), or prometheus.io/port is already the agent's port;
// - when it applies, prometheus.io/port, path and scrape point at the agent, and when the Pod
//   set at least one of them to something, its own values go to the agent in
//   ISTIO_PROMETHEUS_ANNOTATIONS, appended to the sidecar's env before the probers, as
//   {"scrape":"...","path":"...","port":"..."} (each the Pod's value, or ""), built by
//   concatenation;
// - what the merge writes (the agent's port and path) is read from the engine's own output for
//   probe Pods, not restated, and the model above (prometheusModel) is checked against the
//   engine's output for probe Pods with those annotations: under a config where they differ,
//   every annotation the merge reads is left to the webhook;
// - the domain (domain.ts, with the rule below) takes only those spellings of the settings with
//   values the policy writes as the engine does: scrape and path of at most MAX_VALUE
//   characters JSON carries as they are (no quote, backslash or control character), a port of
//   digits in 1-65535 outside the sidecar's range 15000-15099 (the webhook refuses its ports
//   and the agent's), or the agent's port itself, or empty, and merge-metrics a Go boolean (the
//   webhook refuses any other). Every other spelling the merge reads (prometheus.io.scrape,
//   prometheus_io/port...: the engine reads them as Prometheus does, the first in key order
//   winning), prometheus.istio.io/scrape-targets and secure-port leave the domain.
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "../injection/annotations.js";
import { inject } from "../injection/inject.js";
import { PROMETHEUS_ENV } from "../injection/prometheus.js";
import { quote } from "../injection/quote.js";
import { jsonPatchOp, literal, pointerToken, str, strList } from "./cel.js";
import type { DomainRule, HonouredAnnotation } from "./domain.js";
import type { PolicyVariable } from "./pod-values.js";

/**
 * A key the merge reads in any spelling: prometheus.io/scrape, port and path,
 * prometheus.istio.io/scrape-targets and secure-port, each separator any character but a
 * letter or digit (RE2, and JavaScript with the u flag, read it alike, by code point).
 */
export const MERGE_KEY =
  "^prometheus[^a-zA-Z0-9](io[^a-zA-Z0-9](scrape|port|path)|" +
  "istio[^a-zA-Z0-9]io[^a-zA-Z0-9](scrape[^a-zA-Z0-9]targets|secure[^a-zA-Z0-9]port))$";

/** The most characters of prometheus.io/scrape or path the policy takes: the bound of its CEL cost's measure. */
export const MAX_VALUE = 256;

/** A value JSON carries as it is: no quote, backslash or control character. */
const JSON_PLAIN = '^[^"\\\\\\x00-\\x1f]*$';
const GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"] as const;
const GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"] as const;
const GO_BOOL = `^(${[...GO_TRUE, ...GO_FALSE].join("|")})$`;
const PORT_DIGITS = "^[0-9]{0,5}$";
/** The sidecar's range: its ports (which the webhook refuses to scrape) are all in it. */
const SIDECAR_PORTS = [15000, 15099] as const;
/** The settings the env carries, in the engine's key order, with their annotations. */
const SETTINGS = [
  ["scrape", A.promScrape],
  ["path", A.promPath],
  ["port", A.promPort],
] as const;

/** What the merge writes under a config, read from the engine. */
export interface PrometheusParts {
  /** The annotations it points at the agent (prometheus.io/port, path, scrape). */
  readonly annotations: Readonly<Record<string, string>>;
  /** The agent's port, where the merged metrics are served. */
  readonly target: string;
  /** Whether it applies to a Pod that says nothing. */
  readonly byDefault: boolean;
}

/** What the merge does to a Pod: whether it applies, and the env it hands the agent. */
export interface PrometheusEffect {
  readonly applies: boolean;
  readonly env?: string;
}

const goBool = (v: string | undefined): boolean | undefined =>
  GO_TRUE.some((x) => x === v) ? true : GO_FALSE.some((x) => x === v) ? false : undefined;

/** The merge on a Pod of the domain, as the policy computes it (the CEL below says the same). */
export function prometheusModel(annotations: Readonly<Record<string, string>>, m: PrometheusParts): PrometheusEffect {
  const own = (k: string): string | undefined => (Object.hasOwn(annotations, k) ? annotations[k] : undefined);
  const applies =
    (goBool(own(A.mergeMetrics)) ?? m.byDefault) && goBool(own(A.promScrape)) !== false && own(A.promPort) !== m.target;
  if (!applies) return { applies };
  const values = SETTINGS.map(([, k]) => own(k) ?? "");
  if (values.every((v) => v === "")) return { applies };
  return { applies, env: `{${SETTINGS.map(([name], i) => `"${name}":"${values[i] ?? ""}"`).join(",")}}` };
}

const PROBE: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "probe", namespace: "probe", labels: { [L.inject]: "true" } },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
};

function injected(annotations: Record<string, string>, config: Config, native: boolean): Pod {
  const pod: Pod = { ...PROBE, metadata: { ...PROBE.metadata, annotations } };
  return inject(pod, { namespace: "probe", nativeSidecarsSupported: native }, config).pod;
}

const sorted = (m: Readonly<Record<string, string>> | undefined): [string, string][] =>
  Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The Pod the model says the engine makes of `annotations`, from the one it makes without the merge. */
function expected(off: Pod, annotations: Record<string, string>, m: PrometheusParts): Pod {
  const effect = prometheusModel(annotations, m);
  const base = { ...off.metadata?.annotations };
  delete base[A.mergeMetrics];
  const env = (c: Container): Container =>
    c.name === CONTAINER.proxy && effect.env !== undefined
      ? { ...c, env: [...(c.env ?? []), { name: PROMETHEUS_ENV, value: effect.env }] }
      : c;
  return {
    ...off,
    metadata: { ...off.metadata, annotations: { ...base, ...annotations, ...(effect.applies ? m.annotations : {}) } },
    spec: off.spec && {
      ...off.spec,
      initContainers: off.spec.initContainers?.map(env),
      containers: off.spec.containers.map(env),
    },
  };
}

const comparable = (p: Pod): unknown => ({
  ...p,
  metadata: { ...p.metadata, annotations: sorted(p.metadata?.annotations) },
});

/**
 * What the merge writes under `config`, or undefined when the policy leaves it to the webhook:
 * it writes nothing, or the engine does not do what prometheusModel says for the probe Pods.
 */
export function prometheusParts(config: Config, nativeSidecarsSupported: boolean): PrometheusParts | undefined {
  const run = (a: Record<string, string>): Pod => injected(a, config, nativeSidecarsSupported);
  const plain = run({});
  const off = run({ [A.mergeMetrics]: "false" });
  const on = run({ [A.mergeMetrics]: "true" });
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(on.metadata?.annotations ?? {})) {
    if (k !== A.mergeMetrics && off.metadata?.annotations?.[k] !== v) annotations[k] = v;
  }
  const target = annotations[A.promPort];
  if (target === undefined || !/^[0-9]{1,5}$/.test(target)) return undefined;
  const writes = Object.entries(annotations);
  const byDefault = writes.every(([k, v]) => plain.metadata?.annotations?.[k] === v);
  const parts: PrometheusParts = { annotations, target, byDefault };
  const cases: Record<string, string>[] = [
    {},
    { [A.mergeMetrics]: "true" },
    { [A.promScrape]: "true" },
    { [A.promScrape]: "false", [A.promPort]: "8080" },
    { [A.promScrape]: "yes", [A.promPath]: "/m<&>é", [A.promPort]: "08080" },
    { [A.promPort]: "9090" },
    { [A.promPort]: target, [A.promScrape]: "true" },
    { [A.mergeMetrics]: "F", [A.promScrape]: "true", [A.promPort]: "9090" },
    { [A.mergeMetrics]: "1", [A.promScrape]: "", [A.promPath]: "", [A.promPort]: "" },
    { [A.mergeMetrics]: "True", [A.promScrape]: "T", [A.promPath]: "/metrics", "prometheus.io/scheme": "https" },
  ];
  for (const c of cases) {
    if (!isDeepStrictEqual(comparable(run(c)), comparable(expected(off, c, parts)))) return undefined;
  }
  return parts;
}

/** The annotations the policy honours, with the values it takes (the rule below narrows the port). */
export function prometheusHonoured(): HonouredAnnotation[] {
  const plain = "values without a quote, backslash or control character, which JSON would escape";
  return [
    { key: A.promScrape, pattern: JSON_PLAIN, what: plain },
    { key: A.promPath, pattern: JSON_PLAIN, what: plain },
    { key: A.promPort, pattern: PORT_DIGITS, what: "a port number" },
    { key: A.mergeMetrics, pattern: GO_BOOL, what: "a Go boolean: 1, t, T, TRUE, true, True or their false" },
  ];
}

/** CEL over `v`, a string: the port the policy takes (see the header). */
function portCel(target: string): string {
  const n = "int(v)";
  return (
    `v == "" || v == ${str(target)} || v.matches("^[0-9]{1,5}$") && ${n} >= 1 && ${n} <= 65535 && ` +
    `(${n} < ${SIDECAR_PORTS[0]} || ${n} > ${SIDECAR_PORTS[1]}) && ${n} != ${Number(target)}`
  );
}

function portOk(v: string, target: string): boolean {
  if (v === "" || v === target) return true;
  if (!/^[0-9]{1,5}$/.test(v)) return false;
  const n = Number(v);
  return n >= 1 && n <= 65535 && (n < SIDECAR_PORTS[0] || n > SIDECAR_PORTS[1]) && n !== Number(target);
}

/** The domain's rule for the merge's values beyond their patterns: the port's number, the values' sizes. */
export function prometheusRule(m: PrometheusParts): DomainRule {
  const get = (k: string): string => `object.metadata.?annotations[?${str(k)}].orValue("")`;
  return {
    name: "policy-domain-prometheus",
    expression:
      `[${get(A.promPort)}].all(v, ${portCel(m.target)}) && ` +
      `size(${get(A.promScrape)}) <= ${MAX_VALUE} && size(${get(A.promPath)}) <= ${MAX_VALUE}`,
    check: (pod) => {
      const a = pod.metadata?.annotations ?? {};
      const port = Object.hasOwn(a, A.promPort) ? (a[A.promPort] ?? "") : "";
      if (!portOk(port, m.target))
        return `the Pod's annotation ${quote(A.promPort)} has the value ${quote(port)}, which the policy does not take (a port in 1-65535 outside ${SIDECAR_PORTS.join("-")}, the sidecar's, or ${m.target} itself)`;
      for (const k of [A.promScrape, A.promPath]) {
        // In code points, as CEL counts a string's size.
        const v = Object.hasOwn(a, k) ? (a[k] ?? "") : "";
        if ([...v].length > MAX_VALUE)
          return `the Pod's annotation ${quote(k)} has more than ${MAX_VALUE} characters (the policy's bound)`;
      }
      return undefined;
    },
  };
}

const ANNOTATIONS = "variables.annotations";

/** The variables: whether the merge applies (prometheusMerge) and the env it appends (prometheusEnv). */
export function prometheusVariables(m: PrometheusParts): PolicyVariable[] {
  const get = (k: string): string => `${ANNOTATIONS}[?${str(k)}].orValue("")`;
  const has = (k: string): string => `${str(k)} in ${ANNOTATIONS}`;
  const merge = A.mergeMetrics;
  const enabled = `(${has(merge)} ? ${ANNOTATIONS}[${str(merge)}] in ${strList(GO_TRUE)} : ${m.byDefault ? "true" : "false"})`;
  const applies =
    `${enabled} && !(${get(A.promScrape)} in ${strList(GO_FALSE)}) && ` +
    `!(${has(A.promPort)} && ${ANNOTATIONS}[${str(A.promPort)}] == ${str(m.target)})`;
  const values = SETTINGS.map(([, k]) => get(k));
  const json = SETTINGS.map(([name], i) => `${str(`${i === 0 ? "{" : '",'}"${name}":"`)} + ${values[i] ?? ""}`).join(
    " + ",
  );
  return [
    { name: "prometheusMerge", expression: applies },
    {
      name: "prometheusEnv",
      expression:
        `variables.prometheusMerge && [${values.join(", ")}].exists(s, s != "") ? ` +
        `[dyn({"name": dyn(${str(PROMETHEUS_ENV)}), "value": dyn(${json} + ${str('"}')})})] : []`,
    },
  ];
}

/** CEL: the env the sidecar's is followed by. */
export const PROMETHEUS_ENV_CEL = "variables.prometheusEnv";

/** CEL: the ops pointing the annotations at the agent when the merge applies (the Pod has annotations). */
export function prometheusOps(m: PrometheusParts): string {
  const each = Object.entries(m.annotations).map(([k, v]) =>
    jsonPatchOp("add", `/metadata/annotations/${pointerToken(k)}`, literal(v)),
  );
  return `(variables.prometheusMerge ? [${each.join(", ")}] : [])`;
}
