// The injection as a MutatingAdmissionPolicy and its bindings (admissionregistration.k8s.io
// v1beta1 for Kubernetes 1.34-1.35, v1 from 1.36: the same objects, only the apiVersion
// differs; api-version.ts picks one from the cluster's discovery), for one config:
// - matchConditions: the domain's rules (domain.ts), then the decision (decision.ts);
// - variables: the values that depend on the Pod (pod-values.ts), the probe rewrite
//   (probe-rewrite.ts) and the injected lists, whose sidecar env ends with the probers and whose
//   proxy resources, log levels, interception arguments and readiness probe come from the Pod's
//   annotations when it has them (resources.ts, log-levels.ts, traffic.ts, readiness.ts), and the
//   Prometheus merge (prometheus.ts), whose env comes before the probers and whose annotations
//   are written only when it applies;
// - one JSONPatch mutation: first the probe rewrite's ops, at the Pod's own container indexes;
//   then labels and annotations added key by key (the whole map when the Pod has none),
//   kubectl's default container only when the Pod names none, the injected containers inserted
//   before the user's (at 0, 1, ...) or appended, volumes and pull secrets appended. What is
//   added is the engine's own output for probe Pods (parts.ts);
// - one binding per webhook of the chart, the revision tags' included, with that webhook's
//   namespace and object selectors (webhooks.ts), so a Pod reaches the policy exactly when it
//   would reach a webhook; the policy says what they select (SELECTS_ANNOTATION), which the
//   chart compares with its own values;
// - the webhook's matchCondition: the Pod is outside the domain and not already injected by the
//   policy (the MutatingAdmissionPolicy plugin runs before the webhooks, which see its result).
import type { Config } from "../config/types.js";
import type { Container } from "../kube/types.js";
import { A, CONTAINER } from "../injection/annotations.js";
import { APP_PROBERS_ENV } from "../injection/probes.js";
import { jsonPatchOp, literal, pointerToken, slot, str } from "./cel.js";
import { decisionExpression } from "./decision.js";
import { domainExpression, domainRules, MAX_CONTAINERS, type DomainRule, type HonouredAnnotation } from "./domain.js";
import { PolicyRenderError } from "./errors.js";
import { policyParts, slotEnvName, type ListParts, type PolicyParts } from "./parts.js";
import {
  ANNOTATIONS_VAR,
  DEFAULT_CONTAINER_ANNOTATIONS,
  ENV_VALUE,
  FIRST_CONTAINER,
  LABEL_VALUE,
  POD_VARIABLES,
  type PolicyVariable,
} from "./pod-values.js";
import {
  APP_PROBERS_ENV_CEL,
  probeOpsExpression,
  probeOpVariables,
  probeRewritePort,
  probeVariables,
} from "./probe-rewrite.js";
import { argExpression, logLevelSlots, PLAIN_LOG_LEVEL, type ArgSlot } from "./log-levels.js";
import { PLAIN_QUANTITY, RESOURCE_ANNOTATION_KEYS, resourceContainers, resourcesExpression } from "./resources.js";
import {
  PROMETHEUS_ENV_CEL,
  prometheusHonoured,
  prometheusOps,
  prometheusParts,
  prometheusRule,
  prometheusVariables,
  type PrometheusParts,
} from "./prometheus.js";
import { noOpAnnotations } from "./no-op-annotations.js";
import { PLAIN_SECONDS, readinessExpression, readinessProbe, type ReadinessProbe } from "./readiness.js";
import { argsExpression, MAX_TRAFFIC_VALUE, TRAFFIC_ANNOTATIONS, trafficArgs, type TrafficArgs } from "./traffic.js";
import { chartWebhooks, selectorsKey } from "./webhooks.js";

export const POLICY_API_VERSIONS = ["v1", "v1beta1"] as const;
export type PolicyApiVersion = (typeof POLICY_API_VERSIONS)[number];

export interface PolicyOptions {
  readonly apiVersion: PolicyApiVersion;
  /** Name of the policy, and the prefix of its bindings' names. */
  readonly name: string;
  /** The injector's own namespace, which the chart's webhooks leave out. */
  readonly namespace: string;
  /** How `nativeSidecars: auto` is decided (the cluster's kubelets, as the injector decides it). */
  readonly nativeSidecarsSupported: boolean;
  /** The chart's webhook.enableNamespacesByDefault. */
  readonly enableNamespacesByDefault: boolean;
}

export type KubeObject = Record<string, unknown>;

export interface RenderedPolicy {
  readonly policy: KubeObject;
  readonly bindings: readonly KubeObject[];
  /** What the bindings select (webhooks.ts selectorsKey), for the chart to compare with its values. */
  readonly selects: string;
  /** For the webhook's matchConditions: true for the Pods the policy leaves to it. */
  readonly webhookMatchCondition: { readonly name: string; readonly expression: string };
  readonly rules: readonly DomainRule[];
  readonly parts: PolicyParts;
}

const v = (name: string): string => `variables.${name}`;

/** What the policy computes in a container beyond its env slots. */
interface Computed {
  /** The sidecar's env is followed by ISTIO_KUBE_APP_PROBERS (probe-rewrite.ts). */
  readonly probers: boolean;
  /** The containers whose resources the Pod's annotations may set (resources.ts). */
  readonly resources: readonly string[];
  /** The arguments the Pod's log-level annotations may set (log-levels.ts). */
  readonly args: readonly ArgSlot[];
  /** The sidecar's env is followed by ISTIO_PROMETHEUS_ANNOTATIONS (prometheus.ts), before the probers. */
  readonly prometheus: boolean;
  /** The interception container's arguments, which the Pod's traffic annotations may set (traffic.ts). */
  readonly traffic: TrafficArgs | undefined;
  /** The proxy's readiness probe, which the Pod's readiness annotations may set (readiness.ts). */
  readonly readiness: ReadinessProbe | undefined;
}

/** The container with its Pod-dependent values as slots (see Computed). */
function withSlots(c: Container, computed: Computed): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  if (computed.resources.includes(c.name)) out.resources = slot(resourcesExpression(c.resources));
  const args = computed.args.filter((a) => a.container === c.name);
  if (args.length > 0)
    out.args = c.args?.map((arg, i) => {
      const s = args.find((a) => a.index === i);
      return s ? slot(argExpression(s)) : arg;
    });
  if (computed.readiness?.container === c.name) out.readinessProbe = slot(readinessExpression(computed.readiness));
  const traffic = computed.traffic;
  if (traffic?.container === c.name) out.args = slot(argsExpression(traffic, Array.isArray(out.args) ? out.args : []));
  if (!c.env?.some((e) => slotEnvName(e.value) !== undefined)) return out;
  const env = c.env.map((e) => {
    const name = slotEnvName(e.value);
    return name === undefined ? e : { name: e.name, value: slot(ENV_VALUE[name]) };
  });
  out.env = env;
  if (c.name !== CONTAINER.proxy || (!computed.probers && !computed.prometheus)) return out;
  if (computed.probers && env.some((e) => e.name === APP_PROBERS_ENV))
    throw new PolicyRenderError(`the injected ${CONTAINER.proxy} container already has ${APP_PROBERS_ENV}`);
  const then = [
    ...(computed.prometheus ? [PROMETHEUS_ENV_CEL] : []),
    ...(computed.probers ? [APP_PROBERS_ENV_CEL] : []),
  ];
  out.env = slot([literal(env), ...then].join(" + "));
  return out;
}

/** Ops adding a map's entries: one per key when the map is there, else the whole map. */
function mapOps(path: string, present: string, entries: Record<string, string>, extra: readonly string[]): string {
  const keys = Object.keys(entries);
  if (keys.length === 0 && extra.length === 0) return "[]";
  const each = keys.map((k) => jsonPatchOp("add", `${path}/${pointerToken(k)}`, literal(entries[k])));
  return `(${present} ? [${each.join(", ")}]${extra.map((e) => ` + ${e}`).join("")} : [${jsonPatchOp("add", path, literal(entries))}])`;
}

/** Ops adding a list's injected items (variable `name`): before the user's, after them, or the whole list. */
function listOps(path: string, present: string, parts: ListParts<unknown>, name: string): string {
  const total = parts.before.length + parts.after.length;
  if (total === 0) return "[]";
  const each = [
    ...parts.before.map((_, i) => jsonPatchOp("add", `${path}/${i}`, `${v(name)}[${i}]`)),
    ...parts.after.map((_, j) => jsonPatchOp("add", `${path}/-`, `${v(name)}[${parts.before.length + j}]`)),
  ];
  return `(${present} ? [${each.join(", ")}] : [${jsonPatchOp("add", path, v(name))}])`;
}

/**
 * The JSONPatch expression and the variables it reads; `probePort` is the agent's port the
 * probes are rewritten to, undefined when they are not.
 */
function mutation(
  parts: PolicyParts,
  probePort: number | undefined,
  resources: readonly string[],
  args: readonly ArgSlot[],
  prometheus: PrometheusParts | undefined,
  traffic: TrafficArgs | undefined,
  readiness: ReadinessProbe | undefined,
): { variables: PolicyVariable[]; expression: string } {
  const computed: Computed = {
    probers: probePort !== undefined,
    resources,
    args,
    prometheus: prometheus !== undefined,
    traffic,
    readiness,
  };
  const slotted = (l: ListParts<Container>): Record<string, unknown>[] =>
    [...l.before, ...l.after].map((c) => withSlots(c, computed));
  const lists = {
    initContainers: { ...parts.initContainers, items: slotted(parts.initContainers) },
    containers: { ...parts.containers, items: slotted(parts.containers) },
    volumes: { ...parts.volumes, items: [...parts.volumes.before, ...parts.volumes.after] },
    imagePullSecrets: {
      ...parts.imagePullSecrets,
      items: [...parts.imagePullSecrets.before, ...parts.imagePullSecrets.after],
    },
  };
  const variables: PolicyVariable[] = [...POD_VARIABLES, ...(prometheus ? prometheusVariables(prometheus) : [])];
  const ops: string[] = [];
  if (probePort !== undefined) {
    variables.push(...probeVariables(probePort), ...probeOpVariables(probePort));
    // First: the ops address the Pod's containers at the indexes they have before any insertion.
    ops.push(probeOpsExpression(MAX_CONTAINERS));
  }
  const labels: Record<string, string> = { ...parts.labels };
  for (const [k, expr] of Object.entries(LABEL_VALUE)) labels[k] = slot(expr);
  ops.push(mapOps("/metadata/labels", "object.metadata.?labels.hasValue()", labels, []));
  const whenAbsent: Record<string, string> = { ...parts.annotations };
  const conditional: string[] = [];
  for (const k of DEFAULT_CONTAINER_ANNOTATIONS) {
    whenAbsent[k] = slot(FIRST_CONTAINER);
    conditional.push(
      `(${str(k)} in ${ANNOTATIONS_VAR} ? [] : [${jsonPatchOp("add", `/metadata/annotations/${pointerToken(k)}`, FIRST_CONTAINER)}])`,
    );
  }
  // The per-key branch must not write the defaults, nor the merge's, unconditionally: build it from the static ones.
  if (prometheus) conditional.push(prometheusOps(prometheus));
  const staticKeys = Object.keys(parts.annotations).filter(
    (k) => !prometheus || !Object.hasOwn(prometheus.annotations, k),
  );
  const eachStatic = staticKeys.map((k) =>
    jsonPatchOp("add", `/metadata/annotations/${pointerToken(k)}`, literal(parts.annotations[k])),
  );
  ops.push(
    `(object.metadata.?annotations.hasValue() ? [${eachStatic.join(", ")}]${conditional.map((c) => ` + ${c}`).join("")} : ` +
      `[${jsonPatchOp("add", "/metadata/annotations", literal(whenAbsent))}])`,
  );
  for (const [name, l] of Object.entries(lists)) {
    if (l.items.length === 0) continue;
    const varName = `injected${name[0]?.toUpperCase() ?? ""}${name.slice(1)}`;
    variables.push({ name: varName, expression: literal(l.items) });
    ops.push(listOps(`/spec/${name}`, `object.spec.?${name}.hasValue()`, l, varName));
  }
  return { variables, expression: ops.filter((o) => o !== "[]").join(" +\n") };
}

/**
 * What the policy for `config` adds (parts), the Pods it takes (rules: the domain, with the
 * annotations the policy honours) and what it computes per Pod: the one derivation the
 * renderer, preview and check share, so their verdicts are the policy's own. Runs the engine on
 * probe Pods: call it once per config.
 */
export function policyDomainOf(
  config: Config,
  nativeSidecarsSupported: boolean,
): {
  parts: PolicyParts;
  rules: DomainRule[];
  resources: readonly string[] | undefined;
  args: ArgSlot[];
  prometheus: PrometheusParts | undefined;
  traffic: TrafficArgs | undefined;
  readiness: ReadinessProbe | undefined;
} {
  const parts = policyParts(config, nativeSidecarsSupported);
  const resources = resourceContainers(config, nativeSidecarsSupported);
  const honoured: HonouredAnnotation[] = resources
    ? RESOURCE_ANNOTATION_KEYS.map((key) => ({
        key,
        pattern: PLAIN_QUANTITY,
        what: "plain quantities such as 100m, 0.5, 128Mi",
      }))
    : [];
  const args = logLevelSlots(config, nativeSidecarsSupported);
  for (const key of new Set(args.map((a) => a.annotation)))
    honoured.push({ key, pattern: PLAIN_LOG_LEVEL, what: "letters, digits and :,._- only" });
  const traffic = trafficArgs(config, nativeSidecarsSupported);
  for (const a of TRAFFIC_ANNOTATIONS.filter((x) => traffic?.annotations.includes(x.key)))
    honoured.push({ key: a.key, pattern: a.pattern, what: a.what, maxLength: MAX_TRAFFIC_VALUE });
  for (const a of noOpAnnotations(config, nativeSidecarsSupported))
    honoured.push({ key: a.key, pattern: a.pattern, what: `${a.values.join(", ")}: the config's own setting` });
  const readiness = readinessProbe(config, nativeSidecarsSupported);
  for (const { key } of readiness?.fields ?? [])
    honoured.push({ key, pattern: PLAIN_SECONDS, what: "whole numbers of up to 9 digits without a leading 0" });
  const prometheus = prometheusParts(config, nativeSidecarsSupported);
  if (prometheus) honoured.push(...prometheusHonoured());
  const rules = [...domainRules(config, parts, honoured), ...(prometheus ? [prometheusRule(prometheus)] : [])];
  return { parts, rules, resources, args, prometheus, traffic, readiness };
}

/** The policy, its bindings and the webhook's matchCondition for `config`. */
export function renderPolicy(config: Config, options: PolicyOptions): RenderedPolicy {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(options.name) || options.name.length > 200)
    throw new PolicyRenderError(
      `invalid policy name ${JSON.stringify(options.name.slice(0, 80))}: lowercase letters, digits, "-" and "."`,
    );
  const { parts, rules, resources, args, prometheus, traffic, readiness } = policyDomainOf(
    config,
    options.nativeSidecarsSupported,
  );
  const probePort = probeRewritePort(config, options.nativeSidecarsSupported);
  if ((probePort !== undefined) !== config.rewriteAppProbes)
    throw new PolicyRenderError("the injection's probe rewrite does not follow rewriteAppProbes");
  const { variables, expression } = mutation(parts, probePort, resources ?? [], args, prometheus, traffic, readiness);
  const apiVersion = `admissionregistration.k8s.io/${options.apiVersion}`;
  const status = parts.annotations[A.status];
  if (status === undefined) throw new PolicyRenderError(`the injection writes no ${A.status} annotation`);
  const policy: KubeObject = {
    apiVersion,
    kind: "MutatingAdmissionPolicy",
    metadata: { name: options.name },
    spec: {
      failurePolicy: "Fail",
      reinvocationPolicy: "Never",
      matchConstraints: {
        resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
      },
      matchConditions: [
        ...rules.map((r) => ({ name: r.name, expression: r.expression })),
        { name: "inject", expression: decisionExpression(config) },
      ],
      variables: variables.map((x) => ({ name: x.name, expression: x.expression })),
      mutations: [{ patchType: "JSONPatch", jsonPatch: { expression } }],
    },
  };
  const byDefault = options.enableNamespacesByDefault || config.enableNamespacesByDefault;
  const bindings = chartWebhooks(config.revision, options.namespace, byDefault, config.revisionTags).map(
    (w): KubeObject => ({
      apiVersion,
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name: `${options.name}-${w.name.replace(/^tag-([^.]*)\./, "tag-$1-")}` },
      spec: {
        policyName: options.name,
        matchResources: { namespaceSelector: w.namespaceSelector, objectSelector: w.objectSelector },
      },
    }),
  );
  const injectedByPolicy = `object.metadata.?annotations[?${str(A.status)}].orValue("") == ${str(status)}`;
  return {
    policy,
    bindings,
    selects: selectorsKey(config.revision, config.revisionTags, byDefault, options.namespace),
    webhookMatchCondition: {
      name: "not-injected-by-policy",
      expression: `!(${domainExpression(rules)}) && !(${injectedByPolicy})`,
    },
    rules,
    parts,
  };
}

/** The annotation on the policy carrying the webhook's matchCondition, for the chart to read. */
export const WEBHOOK_CONDITION_ANNOTATION = "sidecar-injector.dev/webhook-match-condition";
/** The annotation on the policy saying what its bindings select, for the chart to check. */
export const SELECTS_ANNOTATION = "sidecar-injector.dev/selects";

/**
 * The policy and its bindings as one List (what `policy render` prints and the chart embeds),
 * the policy annotated with the webhook's matchCondition expression.
 */
export function policyList(rendered: RenderedPolicy): KubeObject {
  const policy = rendered.policy;
  const meta = typeof policy.metadata === "object" && policy.metadata !== null ? policy.metadata : {};
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      {
        ...policy,
        metadata: {
          ...meta,
          annotations: {
            [WEBHOOK_CONDITION_ANNOTATION]: rendered.webhookMatchCondition.expression,
            [SELECTS_ANNOTATION]: rendered.selects,
          },
        },
      },
      ...rendered.bindings,
    ],
  };
}
