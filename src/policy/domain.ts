// Which Pods the policy injects byte-identically to the webhook: the policy's domain. It is
// one list of rules, each stated twice side by side — as a check on a Pod (for preview and
// the tests) and as a CEL expression over the admitted `object` (the policy's matchConditions,
// and negated in the webhook's) — so the two cannot drift apart unnoticed: the end-to-end
// suite runs every corpus Pod through both. Outside the domain (each rule's reason says why):
// - annotations the engine reads (any key under an istio.io domain but sidecar.istio.io/inject,
//   and every spelling of a setting the Prometheus merge reads): overrides the policy
//   does not honour, and a previous injection (sidecar.istio.io/status), which the webhook
//   strips and redoes; of those it honours (the proxy's resources, resources.ts, log levels,
//   log-levels.ts, interception arguments, traffic.ts, the readiness probe, readiness.ts, the
//   merge's settings, prometheus.ts, and values that say what the config says,
//   no-op-annotations.ts), a value other than the plain ones it writes as the webhook does;
// - istio.io labels but the inject, revision, canonical and workload-name ones (e.g. the
//   network, which reaches the proxy's env, or a tlsMode the template keeps);
// - containers, volumes or pull secrets named as the injected ones (the webhook merges them);
// - when rewriteAppProbes is on, what the probe rewrite (probe-rewrite.ts) cannot write as the
//   engine does: a string of a probe's or hook's action (path, host, scheme, header, grpc
//   service) with a character JSON escapes (a quote, a backslash, a control character: the
//   probers' JSON is built by concatenation); when the Pod has probes to rewrite, a container
//   name repeated (the engine keeps one container's probers) or, for a container with such
//   probes, not printable ASCII, or with a "/", a quote or a backslash (its paths would not sort
//   as the engine sorts them, or would need escaping);
// - port names, protocols or host IPs that JSON would escape (ISTIO_META_POD_PORTS is built by
//   concatenation; the API server refuses such Pods anyway);
// - a Pod whose workload has no name, or whose controller reference has no apiVersion, a kind
//   that is not plain letters and digits, or a name that does not start with one;
// - more than MAX_CONTAINERS containers or init containers, more than MAX_PORTS ports in a
//   container or init container, or (when the probes are rewritten) a probe or hook with more
//   than MAX_HEADERS headers or MAX_PROBE_TEXT characters of strings: the bounds within which
//   the policy's CEL cost was measured.
import type { Config } from "../config/types.js";
import type { Container, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "../injection/annotations.js";
import { quote } from "../injection/quote.js";
import { str, strList } from "./cel.js";
import type { PolicyParts } from "./parts.js";
import { MERGE_KEY } from "./prometheus.js";
import { REWRITTEN_HOOKS, REWRITTEN_PROBES } from "./probe-rewrite.js";

/** The most containers (and, separately, init containers) a covered Pod may have. */
export const MAX_CONTAINERS = 32;
/** The most ports a covered Pod's container or init container may declare. */
export const MAX_PORTS = 32;
/** The most headers a covered Pod's probe or hook may send, when the probes are rewritten. */
export const MAX_HEADERS = 16;
/** The most characters of strings (path, host, scheme, headers, service) a probe or hook may have, likewise. */
export const MAX_PROBE_TEXT = 1024;

export interface DomainRule {
  /** The matchCondition's name. */
  readonly name: string;
  /** The CEL expression: true when the Pod is inside. */
  readonly expression: string;
  /** Undefined when the Pod is inside; else why it falls to the webhook. */
  readonly check: (pod: Pod) => string | undefined;
}

const ISTIO_KEY = /(^|[.])istio[.]io\//;
const ISTIO_KEY_CEL = "(^|[.])istio[.]io/";
const PLAIN = /^[-A-Za-z0-9.:]*$/;
const PLAIN_CEL = "^[-A-Za-z0-9.:]*$";
// Every spelling of the Prometheus settings the merge reads (prometheus.io/scrape,
// prometheus-io.scrape, ...; prometheus.ts).
const PROMETHEUS = new RegExp(MERGE_KEY, "u");
const PROMETHEUS_CEL = MERGE_KEY;
/** The istio.io labels the policy reads as the engine does; any other one leaves the domain. */
const POLICY_LABELS = [L.inject, L.rev, L.canonicalName, L.canonicalRevision, L.workloadName] as const;
const readLabel = (k: string): boolean => ISTIO_KEY.test(k) && !POLICY_LABELS.some((l) => l === k);
const PROBES = REWRITTEN_PROBES.map(([kind]) => kind);
const HOOKS = REWRITTEN_HOOKS.map(([kind]) => kind);
/** A string the probers' JSON carries as it is: no character JSON escapes. */
const JSON_PLAIN = '^[^"\\\\\\x00-\\x1f]*$';
/** A container name whose probers sort as the engine sorts them: printable ASCII, no "/", quote or backslash. */
const PROBE_NAME = "^[ !#-.0-\\[\\]-~]*$";
const ALL_CONTAINERS_CEL = "(object.spec.?initContainers.orValue([]) + object.spec.containers)";

const readAnnotation = (k: string): boolean => k !== A.inject && (ISTIO_KEY.test(k) || PROMETHEUS.test(k));
const allContainers = (pod: Pod): Container[] => [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];

function controllerOf(pod: Pod): { apiVersion: string; kind: string; name: string } | undefined {
  const meta = pod.metadata ?? {};
  if (!meta.generateName) return undefined;
  return (meta.ownerReferences ?? []).find((r) => r.controller === true);
}

/** An annotation the engine reads that the policy honours for the values matching `pattern` (RE2 and JS alike). */
export interface HonouredAnnotation {
  readonly key: string;
  readonly pattern: string;
  /** The values it takes, for a reason. */
  readonly what: string;
  /** The longest value it takes, checked before the pattern (CEL charges a match by the value's length). */
  readonly maxLength?: number;
}

/** CEL: whether the annotation `k`'s value is one the policy honours. */
const honouredCel = (h: HonouredAnnotation): string => {
  const value = "object.metadata.annotations[k]";
  const size = h.maxLength === undefined ? "" : `size(${value}) <= ${h.maxLength} && `;
  return `k == ${str(h.key)} && ${size}${value}.matches(${str(h.pattern)})`;
};

/**
 * The rules, for a config, what its injection adds, and the annotations the policy honours
 * (any other the engine reads leaves the domain).
 */
export function domainRules(
  config: Config,
  parts: PolicyParts,
  honoured: readonly HonouredAnnotation[] = [],
): DomainRule[] {
  const injected = (l: { before: readonly unknown[]; after: readonly unknown[] }): string[] =>
    [...l.before, ...l.after].flatMap((x) => {
      const n = typeof x === "object" && x !== null ? (x as { name?: unknown }).name : undefined;
      return typeof n === "string" ? [n] : [];
    });
  const containerNames = [
    ...new Set([...injected(parts.containers), ...injected(parts.initContainers), ...Object.values(CONTAINER)]),
  ];
  const volumeNames = injected(parts.volumes);
  const secretNames = injected(parts.imagePullSecrets);

  const rules: DomainRule[] = [
    {
      name: "policy-domain-annotations",
      expression:
        `!object.metadata.?annotations.orValue({}).exists(k, k != ${str(A.inject)} && ` +
        `(k.matches(${str(ISTIO_KEY_CEL)}) || k.matches(${str(PROMETHEUS_CEL)}))` +
        (honoured.length === 0 ? "" : ` && !(${honoured.map(honouredCel).join(" || ")})`) +
        ")",
      check: (pod) => {
        const annotations = pod.metadata?.annotations ?? {};
        for (const k of Object.keys(annotations).filter(readAnnotation)) {
          const h = honoured.find((x) => x.key === k);
          if (!h) return `the Pod has the annotation ${quote(k)}, which only the webhook reads`;
          const v = annotations[k] ?? "";
          if ((h.maxLength !== undefined && [...v].length > h.maxLength) || !new RegExp(h.pattern).test(v))
            return `the Pod's annotation ${quote(k)} has the value ${quote(v)}, which the policy does not write (it takes ${h.what})`;
        }
        return undefined;
      },
    },
    {
      name: "policy-domain-labels",
      expression:
        `!object.metadata.?labels.orValue({}).exists(k, k.matches(${str(ISTIO_KEY_CEL)}) && ` +
        `!(k in ${strList(POLICY_LABELS)}))`,
      check: (pod) => {
        const k = Object.keys(pod.metadata?.labels ?? {}).find(readLabel);
        return k === undefined ? undefined : `the Pod has the label ${quote(k)}, which only the webhook reads`;
      },
    },
    {
      name: "policy-domain-names",
      expression:
        `!object.spec.containers.exists(c, c.name in ${strList(containerNames)}) && ` +
        `!object.spec.?initContainers.orValue([]).exists(c, c.name in ${strList(containerNames)}) && ` +
        `!object.spec.?volumes.orValue([]).exists(v, v.name in ${strList(volumeNames)}) && ` +
        `!object.spec.?imagePullSecrets.orValue([]).exists(s, s.?name.orValue("") in ${strList(secretNames)})`,
      check: (pod) => {
        const c = allContainers(pod).find((x) => containerNames.includes(x.name));
        if (c) return `the Pod has a container named ${quote(c.name)}, which the webhook merges with the injected one`;
        const v = (pod.spec?.volumes ?? []).find((x) => volumeNames.includes(x.name));
        if (v) return `the Pod has a volume named ${quote(v.name)}, which the webhook merges with the injected one`;
        const s = (pod.spec?.imagePullSecrets ?? []).find((x) => secretNames.includes(x.name ?? ""));
        if (s)
          return `the Pod has the pull secret ${quote(s.name ?? "")}, which the webhook merges with the injected one`;
        return undefined;
      },
    },
    {
      name: "policy-domain-ports",
      expression:
        `object.spec.containers.all(c, c.?ports.orValue([]).all(p, ` +
        ["name", "protocol", "hostIP"].map((f) => `p.?${f}.orValue("").matches(${str(PLAIN_CEL)})`).join(" && ") +
        "))",
      check: (pod) => {
        for (const c of pod.spec?.containers ?? []) {
          for (const p of c.ports ?? []) {
            for (const v of [p.name, p.protocol, p.hostIP]) {
              if (v !== undefined && !PLAIN.test(v))
                return `container ${quote(c.name)} has a port field ${quote(v)} that is not plain letters, digits, "-", "." or ":"`;
            }
          }
        }
        return undefined;
      },
    },
    {
      name: "policy-domain-workload",
      expression:
        'object.metadata.?generateName.orValue("") != "" && ' +
        "object.metadata.?ownerReferences.orValue([]).exists(r, r.?controller.orValue(false)) ? " +
        "object.metadata.ownerReferences.filter(r, r.?controller.orValue(false)).all(r, " +
        'r.apiVersion != "" && r.kind.matches("^[A-Za-z0-9]+$") && r.name.matches("^[a-z0-9]")) : ' +
        'object.metadata.?name.orValue("") != ""',
      check: (pod) => {
        const ref = controllerOf(pod);
        if (!ref) return pod.metadata?.name ? undefined : "the Pod has no name and no controller to name its workload";
        if (ref.apiVersion && /^[A-Za-z0-9]+$/.test(ref.kind) && /^[a-z0-9]/.test(ref.name)) return undefined;
        return `the Pod's controller reference ${quote(`${ref.apiVersion} ${ref.kind} ${ref.name}`)} is not one the policy names`;
      },
    },
    {
      name: "policy-domain-size",
      expression:
        `size(object.spec.containers) >= 1 && size(object.spec.containers) <= ${MAX_CONTAINERS} && ` +
        `size(object.spec.?initContainers.orValue([])) <= ${MAX_CONTAINERS} && ` +
        `${ALL_CONTAINERS_CEL}.all(c, size(c.?ports.orValue([])) <= ${MAX_PORTS})`,
      check: (pod) => {
        const n = pod.spec?.containers.length ?? 0;
        if (n < 1 || n > MAX_CONTAINERS)
          return `the Pod has ${n} containers (the policy covers 1 to ${MAX_CONTAINERS})`;
        const i = pod.spec?.initContainers?.length ?? 0;
        if (i > MAX_CONTAINERS) return `the Pod has ${i} init containers (the policy covers up to ${MAX_CONTAINERS})`;
        const c = allContainers(pod).find((x) => (x.ports?.length ?? 0) > MAX_PORTS);
        return c ? `container ${quote(c.name)} has more than ${MAX_PORTS} ports (the policy's bound)` : undefined;
      },
    },
  ];
  if (config.rewriteAppProbes) rules.push(...probeRules());
  return rules;
}

type Handler = NonNullable<Container["livenessProbe"]> | NonNullable<NonNullable<Container["lifecycle"]>["preStop"]>;

/** The container's probes and hooks, each with whether it is a probe (a hook has no grpc). */
function handlers(c: Container): { handler: Handler; probe: boolean }[] {
  return [
    ...PROBES.flatMap((k) => (c[k] ? [{ handler: c[k], probe: true }] : [])),
    ...HOOKS.flatMap((k) => (c.lifecycle?.[k] ? [{ handler: c.lifecycle[k], probe: false }] : [])),
  ];
}

/** Whether the engine rewrites the handler: an httpGet, a tcpSocket, or a probe's grpc. */
const rewritten = (h: Handler, probe: boolean): boolean =>
  h.httpGet !== undefined || h.tcpSocket !== undefined || (probe && "grpc" in h && h.grpc !== undefined);

/**
 * The strings of the handler's action the probers' JSON carries, as the policy sees them: the
 * API server defaults an httpGet's empty path to "/" and its scheme to "HTTP".
 */
function actionStrings(h: Handler, probe: boolean): string[] {
  const g = h.httpGet;
  const grpc = probe && "grpc" in h ? h.grpc : undefined;
  return [
    g && (g.path || "/"),
    g?.host,
    g && (g.scheme || "HTTP"),
    ...(g?.httpHeaders ?? []).flatMap((x) => [x.name, x.value]),
    h.tcpSocket?.host,
    grpc?.service,
  ].filter((x): x is string => typeof x === "string");
}

/** CEL over `c`: the handler at `at`'s action strings, concatenated ("" when absent). */
function actionStringsCel(at: string, probe: boolean): string {
  const s = (path: string): string => `${at}.${path}.orValue("")`;
  return [
    s("httpGet.path"),
    s("httpGet.host"),
    s("httpGet.scheme"),
    `${at}.httpGet.httpHeaders.orValue([]).map(x, x.?name.orValue("") + x.?value.orValue("")).join("")`,
    s("tcpSocket.host"),
    ...(probe ? [s("grpc.service")] : []),
  ].join(" + ");
}

/** The rules for the probe rewrite (probe-rewrite.ts), which builds the probers' JSON by concatenation. */
function probeRules(): DomainRule[] {
  const handlersCel = [
    ...PROBES.map((k) => [`c.?${k}`, true] as const),
    ...HOOKS.map((k) => [`c.?lifecycle.${k}`, false] as const),
  ];
  const rewrittenCel = handlersCel
    .flatMap(([at, probe]) =>
      (probe ? ["httpGet", "tcpSocket", "grpc"] : ["httpGet", "tcpSocket"]).map((a) => `${at}.${a}.hasValue()`),
    )
    .join(" || ");
  const jsonPlain = new RegExp(JSON_PLAIN);
  const probeName = new RegExp(PROBE_NAME);
  return [
    {
      name: "policy-domain-probe-strings",
      expression:
        `${ALL_CONTAINERS_CEL}.all(c, ` +
        handlersCel.map(([at, probe]) => `(${actionStringsCel(at, probe)}).matches(${str(JSON_PLAIN)})`).join(" && ") +
        ")",
      check: (pod) => {
        for (const c of allContainers(pod)) {
          for (const { handler, probe } of handlers(c)) {
            const bad = actionStrings(handler, probe).find((x) => !jsonPlain.test(x));
            if (bad !== undefined)
              return `container ${quote(c.name)} has a probe or hook string ${quote(bad)} with a character JSON escapes (a quote, a backslash or a control character)`;
          }
        }
        return undefined;
      },
    },
    {
      name: "policy-domain-probe-size",
      expression:
        `${ALL_CONTAINERS_CEL}.all(c, ` +
        handlersCel
          .map(
            ([at, probe]) =>
              `size(${at}.httpGet.httpHeaders.orValue([])) <= ${MAX_HEADERS} && ` +
              `size(${actionStringsCel(at, probe)}) <= ${MAX_PROBE_TEXT}`,
          )
          .join(" && ") +
        ")",
      check: (pod) => {
        for (const c of allContainers(pod)) {
          for (const { handler, probe } of handlers(c)) {
            if ((handler.httpGet?.httpHeaders?.length ?? 0) > MAX_HEADERS)
              return `container ${quote(c.name)} has a probe or hook with more than ${MAX_HEADERS} headers (the policy's bound)`;
            // In code points, as CEL counts a string's size.
            if ([...actionStrings(handler, probe).join("")].length > MAX_PROBE_TEXT)
              return `container ${quote(c.name)} has a probe or hook of more than ${MAX_PROBE_TEXT} characters (the policy's bound)`;
          }
        }
        return undefined;
      },
    },
    {
      name: "policy-domain-probe-names",
      expression:
        `!${ALL_CONTAINERS_CEL}.exists(c, ${rewrittenCel}) || ` +
        `${ALL_CONTAINERS_CEL}.all(c, size(${ALL_CONTAINERS_CEL}.filter(d, d.name == c.name)) == 1 && ` +
        `(!(${rewrittenCel}) || c.name.matches(${str(PROBE_NAME)})))`,
      check: (pod) => {
        const all = allContainers(pod);
        const probed = all.filter((c) => handlers(c).some((x) => rewritten(x.handler, x.probe)));
        if (probed.length === 0) return undefined;
        const names = all.map((c) => c.name);
        const twice = names.find((n, i) => names.indexOf(n) !== i);
        if (twice !== undefined)
          return `two containers are named ${quote(twice)}, and the webhook hands the agent the probes of one`;
        const c = probed.find((x) => !probeName.test(x.name));
        return c
          ? `container ${quote(c.name)} has probes the webhook rewrites and a name that is not printable ASCII without "/", a quote or a backslash`
          : undefined;
      },
    },
  ];
}

/** Whether the Pod is in the domain: undefined when it is, else why it falls to the webhook. */
export function outsideDomain(rules: readonly DomainRule[], pod: Pod): string | undefined {
  for (const r of rules) {
    const why = r.check(pod);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** The whole domain as one CEL expression. */
export function domainExpression(rules: readonly DomainRule[]): string {
  return rules.map((r) => `(${r.expression})`).join(" && ");
}
