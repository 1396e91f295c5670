// The Prometheus merge (the engine's prometheus.ts) in CEL, over the admitted `object`:
// - it applies unless prometheus.istio.io/merge-metrics reads as false (as true, it applies
//   under a config that merges nothing), prometheus.io/scrape reads as false (Go's booleans;
//   any other value still scrapes), or prometheus.io/port is already the agent's port;
// - when it applies, prometheus.io/port, path and scrape point at the agent,
//   prometheus.istio.io/scrape-targets is removed, and when the Pod set at least one of them to
//   something, its own values go to the agent in ISTIO_PROMETHEUS_ANNOTATIONS, appended to the
//   sidecar's env before the probers, as {"scrape":"...","path":"...","port":"..."} (each the
//   Pod's value, or ""; with targets, path and port are the first target's, followed by
//   "targets":[{"port":"...","path":"..."},...], a target without a path "/metrics"), built by
//   concatenation;
// - what the merge writes (the agent's port and path) is read from the engine's own output for
//   probe Pods, not restated, and the model above (prometheusModel) is checked against the
//   engine's output for probe Pods with those annotations: under a config where they differ,
//   every annotation the merge reads is left to the webhook;
// - the domain (domain.ts, with the rule below) takes only those spellings of the settings with
//   values the policy writes as the engine does: scrape and path of at most MAX_VALUE
//   characters JSON carries as they are (no quote, backslash or control character), a port of
//   digits in 1-65535 outside the sidecar's range 15000-15099 (the webhook refuses its ports
//   and the agent's), or the agent's port itself, or empty, scrape-targets of at most MAX_VALUE
//   characters of such ports (not the agent's) each with an optional ":path", in printable
//   ASCII without blanks (the engine trims them), quotes or backslashes, and merge-metrics a Go
//   boolean (the webhook refuses any other). Every other spelling the merge reads
//   (prometheus.io.scrape, prometheus_io/port...: the engine reads them as Prometheus does, the
//   first in key order winning) and prometheus.istio.io/secure-port leave the domain.
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A, CONTAINER } from "../injection/annotations.js";
import { PROMETHEUS_ENV, SCRAPE_TARGETS } from "../injection/prometheus.js";
import { quote } from "../injection/quote.js";
import { jsonPatchOp, literal, pointerToken, str, strList } from "./cel.js";
import type { DomainRule, HonouredAnnotation } from "./domain.js";
import type { PolicyVariable } from "./pod-values.js";
import { injectSample } from "./sample.js";

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
/** A scrape target's path: printable ASCII but a blank, comma, quote or backslash (nothing to trim or escape). */
const TARGET_PATH = "[!#-+\\x2d-\\x5b\\x5d-~]*";
/** Scrape targets "port[:path]" joined by commas, none empty. */
const TARGETS = `^[0-9]{1,5}(:${TARGET_PATH})?(,[0-9]{1,5}(:${TARGET_PATH})?)*$`;
/** A target's path when it names none. */
const DEFAULT_TARGET_PATH = "/metrics";
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

/** A target's port and path ("/metrics" when it names none): the first ":" ends the port. */
function target(entry: string): [string, string] {
  const colon = entry.indexOf(":");
  return colon < 0
    ? [entry, DEFAULT_TARGET_PATH]
    : [entry.slice(0, colon), entry.slice(colon + 1) || DEFAULT_TARGET_PATH];
}

/** The merge on a Pod of the domain, as the policy computes it (the CEL below says the same). */
export function prometheusModel(annotations: Readonly<Record<string, string>>, m: PrometheusParts): PrometheusEffect {
  const own = (k: string): string | undefined => (Object.hasOwn(annotations, k) ? annotations[k] : undefined);
  const applies =
    (goBool(own(A.mergeMetrics)) ?? m.byDefault) && goBool(own(A.promScrape)) !== false && own(A.promPort) !== m.target;
  if (!applies) return { applies };
  const values = SETTINGS.map(([, k]) => own(k) ?? "");
  const raw = own(SCRAPE_TARGETS);
  const targets = raw === undefined ? [] : raw.split(",").map(target);
  const [first] = targets;
  // With targets, the path and port are the first target's.
  if (first) [values[1], values[2]] = [first[1], first[0]];
  if (values.every((v) => v === "") && !first) return { applies };
  const list = targets.map(([port, path]) => `{"port":"${port}","path":"${path}"}`).join(",");
  return {
    applies,
    env: `{${SETTINGS.map(([name], i) => `"${name}":"${values[i] ?? ""}"`).join(",")}${first ? `,"targets":[${list}]` : ""}}`,
  };
}

const sorted = (m: Readonly<Record<string, string>> | undefined): [string, string][] =>
  Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The Pod the model says the engine makes of `annotations`, from the one it makes without the merge. */
function expected(off: Pod, annotations: Record<string, string>, m: PrometheusParts): Pod {
  const effect = prometheusModel(annotations, m);
  const base = { ...off.metadata?.annotations };
  delete base[A.mergeMetrics];
  const merged = { ...base, ...annotations, ...(effect.applies ? m.annotations : {}) };
  const env = (c: Container): Container =>
    c.name === CONTAINER.proxy && effect.env !== undefined
      ? { ...c, env: [...(c.env ?? []), { name: PROMETHEUS_ENV, value: effect.env }] }
      : c;
  return {
    ...off,
    metadata: { ...off.metadata, annotations: effect.applies ? withoutTargets(merged) : merged },
    spec: off.spec && {
      ...off.spec,
      initContainers: off.spec.initContainers?.map(env),
      containers: off.spec.containers.map(env),
    },
  };
}

/** The annotations without scrape-targets, which the merge removes (handing them to the agent). */
function withoutTargets(a: Record<string, string>): Record<string, string> {
  const out = { ...a };
  delete out[SCRAPE_TARGETS];
  return out;
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
  const run = (a: Record<string, string>): Pod => injectSample(a, config, nativeSidecarsSupported);
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
    { [SCRAPE_TARGETS]: "8080:/m,9090,7070:", [A.promPort]: "6060", [A.promPath]: "/p" },
    { [SCRAPE_TARGETS]: "8080:/a:b<&>?x=1", [A.promScrape]: "false" },
    { [SCRAPE_TARGETS]: "1", [A.mergeMetrics]: "false" },
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
    {
      key: SCRAPE_TARGETS,
      pattern: TARGETS,
      what: 'ports with an optional ":path", joined by commas, in printable ASCII without blanks, quotes or backslashes',
    },
  ];
}

/** CEL over `v`, a string: a port the merge scrapes (not the sidecar's, not the agent's). */
function scrapedCel(target: string): string {
  const n = "int(v)";
  return (
    `v.matches("^[0-9]{1,5}$") && ${n} >= 1 && ${n} <= 65535 && ` +
    `(${n} < ${SIDECAR_PORTS[0]} || ${n} > ${SIDECAR_PORTS[1]}) && ${n} != ${Number(target)}`
  );
}

/** CEL over `v`: the prometheus.io/port the policy takes (see the header). */
const portCel = (target: string): string => `v == "" || v == ${str(target)} || ${scrapedCel(target)}`;

function portOk(v: string, target: string): boolean {
  return v === "" || v === target || scraped(v, target);
}

function scraped(v: string, target: string): boolean {
  if (!/^[0-9]{1,5}$/.test(v)) return false;
  const n = Number(v);
  return n >= 1 && n <= 65535 && (n < SIDECAR_PORTS[0] || n > SIDECAR_PORTS[1]) && n !== Number(target);
}

/** The domain's rule for the merge's values beyond their patterns: the ports' numbers, the values' sizes. */
export function prometheusRule(m: PrometheusParts): DomainRule {
  const get = (k: string): string => `object.metadata.?annotations[?${str(k)}].orValue("")`;
  return {
    name: "policy-domain-prometheus",
    expression:
      `[${get(A.promPort)}].all(v, ${portCel(m.target)}) && ` +
      `${get(SCRAPE_TARGETS)}.split(",").all(e, [e.split(":")[0]].all(v, v == "" || ${scrapedCel(m.target)})) && ` +
      [A.promScrape, A.promPath, SCRAPE_TARGETS].map((k) => `size(${get(k)}) <= ${MAX_VALUE}`).join(" && "),
    check: (pod) => {
      const a = pod.metadata?.annotations ?? {};
      const port = Object.hasOwn(a, A.promPort) ? (a[A.promPort] ?? "") : "";
      if (!portOk(port, m.target))
        return `the Pod's annotation ${quote(A.promPort)} has the value ${quote(port)}, which the policy does not take (a port in 1-65535 outside ${SIDECAR_PORTS.join("-")}, the sidecar's, or ${m.target} itself)`;
      const targets = Object.hasOwn(a, SCRAPE_TARGETS) ? (a[SCRAPE_TARGETS] ?? "") : "";
      const bad = targets
        .split(",")
        .map((e) => e.split(":")[0] ?? "")
        .find((v) => v !== "" && !scraped(v, m.target));
      if (bad !== undefined)
        return `the Pod's annotation ${quote(SCRAPE_TARGETS)} names the port ${quote(bad)}, which the policy does not take (a port in 1-65535 outside ${SIDECAR_PORTS.join("-")}, the sidecar's, and not ${m.target})`;
      for (const k of [A.promScrape, A.promPath, SCRAPE_TARGETS]) {
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
  const targets = "variables.prometheusTargets";
  const any = `size(${targets}) > 0`;
  // With targets, the path and port are the first target's.
  const values = SETTINGS.map(([name, k]) =>
    name === "scrape" ? get(k) : `(${any} ? ${targets}[0][${name === "port" ? 0 : 1}] : ${get(k)})`,
  );
  const json = SETTINGS.map(([name], i) => `${str(`${i === 0 ? "{" : '",'}"${name}":"`)} + ${values[i] ?? ""}`).join(
    " + ",
  );
  const list =
    `(${any} ? ${str(',"targets":[')} + ${targets}.map(t, ${str('{"port":"')} + t[0] + ${str('","path":"')} + t[1] + ` +
    `${str('"}')}).join(",") + "]" : "")`;
  return [
    { name: "prometheusMerge", expression: applies },
    {
      name: "prometheusTargets",
      expression:
        `${has(SCRAPE_TARGETS)} ? ${ANNOTATIONS}[${str(SCRAPE_TARGETS)}].split(",").map(e, e.contains(":") ? ` +
        `[e.substring(0, e.indexOf(":")), e.substring(e.indexOf(":") + 1)] : [e, ""])` +
        `.map(t, [t[0], t[1] == "" ? ${str(DEFAULT_TARGET_PATH)} : t[1]]) : []`,
    },
    {
      name: "prometheusEnv",
      expression:
        `variables.prometheusMerge && ([${values.join(", ")}].exists(s, s != "") || ${any}) ? ` +
        `[dyn({"name": dyn(${str(PROMETHEUS_ENV)}), "value": dyn(${json} + ${str('"')} + ${list} + "}")})] : []`,
    },
  ];
}

/** CEL: the env the sidecar's is followed by. */
export const PROMETHEUS_ENV_CEL = "variables.prometheusEnv";

/**
 * CEL: the ops pointing the annotations at the agent when the merge applies (the Pod has
 * annotations), and removing scrape-targets, which the agent is handed instead.
 */
export function prometheusOps(m: PrometheusParts): string {
  const each = Object.entries(m.annotations).map(([k, v]) =>
    jsonPatchOp("add", `/metadata/annotations/${pointerToken(k)}`, literal(v)),
  );
  const remove = `JSONPatch{op: "remove", path: ${str(`/metadata/annotations/${pointerToken(SCRAPE_TARGETS)}`)}}`;
  return (
    `(variables.prometheusMerge ? [${each.join(", ")}] + ` +
    `(${str(SCRAPE_TARGETS)} in ${ANNOTATIONS} ? [${remove}] : []) : [])`
  );
}
