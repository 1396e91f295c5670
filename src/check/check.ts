// `sidecar-injector check`: for stored Pods and workloads (by name, by label, a namespace or
// all), which sidecar injectors the API server would call on their next CREATE (every
// MutatingWebhookConfiguration of the cluster, selection.ts), whether each would inject and
// why, and what is wrong around them. Reads only, through InspectApi, with the caller's
// credentials.
//
// Per object: a row per injector webhook (WEBHOOK, REVISION, INJECTED, REASON), like istioctl's
// `x check-inject`. A webhook that is called injects unless Istio's injection policy (hostNetwork,
// ignored namespaces, the pod's sidecar.istio.io/inject label or annotation, the selectors and
// the policy of the config given) says no. Findings, each with a severity:
// - error: more than one injector would inject the Pod, or selects a namespace: the API server
//   calls each in turn (by configuration name) and each re-injects what the earlier ones did,
//   so the last one's config decides the sidecar (measured with istiod's webhook and ours: one
//   istio-proxy per Pod); fine while switching, a mistake otherwise;
// - warning: an istio-injection value other than enabled/disabled (no Istio webhook selects
//   it); a namespace labelled for injection (istio-injection=enabled, or istio.io/rev alone)
// that no injector webhook selects (a revision nobody serves, no injector installed); a stored Pod that is not injected
// though it would be now, or injected though nothing
//   would inject it now (a restart changes it); an unknown or deprecated annotation key in
//   Istio's domains, with the closest known one (annotation-keys.ts);
// - warning: a stale sidecar: a stored injected Pod (or a template carrying a sidecar) whose
//   istio-proxy or istio-init differs from what the injector that would inject it now produces
//   with its current config (stale.ts), naming the fields (image, args, env...): a restart is due;
// - info: a namespace with both istio-injection and istio.io/rev (istio-injection wins); one
//   with neither (only Pods that opt in by label are injected); a
//   stored Pod that is already injected (which revision), instead of a diff of it; a namespace
//   whose istio.io/rev is a revision tag (which revision it resolves to).
// - Revision tags (configurations labelled istio.io/tag, selection.ts): each is listed with the
//   revision it points at, and its webhooks' REVISION reads `REV (tag T)`; error: a tag whose
//   revision no other injector configuration serves (nothing installed for it: its Pods go to
//   whatever its webhooks call, or nowhere).
//
// The current config of an injector: with --config, that file's for every injector; else, for
// this chart's injectors (configurations labelled app.kubernetes.io/name=sidecar-injector), the
// config.yaml of the ConfigMap named as the Service their webhooks call, in its namespace, as the
// chart installs it; else the defaults, for the policy only: a sidecar is compared only with a
// config that is known, and when none is, the report says so instead. `inject --from-cluster`
// reads a configuration's current config through the same lookup (clusterInjectorConfig).
// The exit status is 1 when there is an error finding, else 0.

import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import type { InspectApi, MutatingWebhookConfigurationObject, NamespaceObject, StoredObject } from "../kube/api.js";
import { annotationKeyWarnings } from "../injection/annotation-keys.js";
import { proxyConfigWarnings } from "../injection/proxy-config.js";
import { A, CONTAINER } from "../injection/annotations.js";
import { own } from "../injection/own.js";
import { decide } from "../injection/policy.js";
import { quoteName } from "../injection/quote.js";
import { parseConfig } from "../config/load.js";
import { KubeError } from "../kube/api.js";
import { NATIVE_SIDECAR_MIN_MINOR, nativeSidecarsSupported } from "../kube/nodes.js";
import { CheckNotFoundError } from "./find-injector.js";
import { checkIstioConfig, istioConfigArg, type CheckedInjector } from "./istio-config.js";
import {
  ourPolicies,
  policyMode,
  policyTake,
  type CheckedPolicy,
  type PolicyMode,
  type PolicyTake,
  takeText,
} from "./policy-mode.js";
import { WEBHOOK_CONDITION_ANNOTATION } from "../policy/render.js";
import { asCreatedAgain, domainVerdict } from "../policy/verdict.js";
import type { WorkloadRef } from "../injection/types.js";
import { InjectionError } from "../injection/types.js";
import {
  coversPodCreate,
  isInjector,
  revisionLabel,
  revisionOf,
  tagOf,
  webhookVerdicts,
  type DecidedCondition,
  type WebhookVerdict,
} from "./selection.js";
import { compareSidecar, formatDrift, type SidecarDrift } from "./stale.js";

export type Severity = "error" | "warning" | "info";

export interface Finding {
  readonly severity: Severity;
  readonly message: string;
}

export interface CheckedWebhook extends WebhookVerdict {
  /** Called, and the injection policy lets it inject. */
  readonly injects: boolean;
}

export interface CheckedObject {
  readonly kind: StoredObject["kind"];
  readonly namespace: string;
  readonly name: string;
  /** A stored Pod (or a template) already carrying a sidecar: the revision it names, else "". */
  readonly injected?: { readonly revision: string };
  /** For an injected one: its sidecar compared with what would be injected now, and against which config. */
  readonly sidecar?: SidecarCheck;
  readonly webhooks: readonly CheckedWebhook[];
  /** With this chart's MutatingAdmissionPolicy in the cluster: which injector takes its next CREATE, and why. */
  readonly policy?: PolicyTake;
  readonly findings: readonly Finding[];
}

export type SidecarCheck =
  | { readonly compared: true; readonly config: string; readonly drift: readonly SidecarDrift[] }
  | { readonly compared: false; readonly reason: string };

/** The config an injector is checked with, and where it comes from ("--config FILE", "configmap ns/name"). */
export interface InjectorConfig {
  readonly config: Config;
  readonly source: string;
}

export interface CheckedNamespace {
  readonly name: string;
  /** Its istio-injection and istio.io/rev labels, where set. */
  readonly labels: Readonly<Record<string, string>>;
  readonly findings: readonly Finding[];
}

/** A revision tag's configuration: the tag, the revision it points at, and what is wrong with it. */
export interface CheckedTag {
  readonly tag: string;
  readonly revision: string;
  readonly configuration: string;
  readonly findings: readonly Finding[];
}

export interface CheckReport {
  /** About the cluster as a whole (what could not be read); none: the key is left out. */
  readonly findings?: readonly Finding[];
  /** This chart's MutatingAdmissionPolicies (the policy mode); none: the key is left out. */
  readonly policies?: readonly CheckedPolicy[];
  /** The injector Deployments that follow Istio's ConfigMaps (--istio-config); none: the key is left out. */
  readonly injectors?: readonly CheckedInjector[];
  readonly namespaces: readonly CheckedNamespace[];
  /** The revision tags of the cluster (none: the key is left out). */
  readonly tags?: readonly CheckedTag[];
  readonly objects: readonly CheckedObject[];
  /** How many error findings: the exit status is 1 when there are any. */
  readonly errors: number;
}

export type CheckTarget = { readonly kind: StoredObject["kind"]; readonly name: string };

export interface CheckOptions {
  readonly config: Config;
  /**
   * Whether `config` was given (--config): then it is every injector's current config; else it
   * stands for the policy of injectors whose own config cannot be read (see the header).
   */
  readonly configGiven?: boolean;
  /** Named objects (in `namespace`); none: every Pod of `namespace`, or of all with allNamespaces. */
  readonly targets: readonly CheckTarget[];
  readonly namespace: string;
  readonly allNamespaces?: boolean;
  readonly labelSelector?: string;
}

export { CheckNotFoundError };

const INJECTION_LABELS = ["istio-injection", "istio.io/rev"] as const;

/** A Pod that says nothing (no label, no annotation): what a namespace's selection applies to. */
const PLAIN_POD: Pod = { apiVersion: "v1", kind: "Pod", metadata: {}, spec: { containers: [{ name: "app" }] } };

function namespaceFindings(
  ns: NamespaceObject,
  configs: readonly MutatingWebhookConfigurationObject[],
  config: Config,
  configOf: ConfigLookup,
): Finding[] {
  const findings: Finding[] = [];
  const selecting = injectingWebhooks(PLAIN_POD, ns, configs, config, configOf).filter((w) => w.injects);
  if (selecting.length > 1) {
    findings.push({
      severity: "error",
      message: `${selecting.length} injectors select namespace ${quoteName(ns.name)}: ${selecting.map((w) => w.webhook).join(", ")}; each new Pod in it goes through each in turn, in the order of their configurations' names, and the last one re-injects what the others injected, so its config decides the sidecar: keep one, except while switching injectors (README: Switching a namespace from istiod)`,
    });
  }
  const injection = own(ns.labels, "istio-injection");
  const rev = own(ns.labels, "istio.io/rev");
  if (injection !== undefined && injection !== "enabled" && injection !== "disabled") {
    findings.push({
      severity: "warning",
      message: `namespace ${quoteName(ns.name)} has istio-injection=${quoteName(injection)}: only "enabled" and "disabled" mean anything; no Istio webhook selects this value, so nothing is injected by it`,
    });
  }
  if (injection !== undefined && rev !== undefined) {
    findings.push({
      severity: "info",
      message: `namespace ${quoteName(ns.name)} has both istio-injection and istio.io/rev: istio-injection wins`,
    });
  }
  const tag = rev === undefined ? undefined : tagTarget(configs, rev);
  if (rev !== undefined && tag !== undefined) {
    findings.push({
      severity: "info",
      message: `namespace ${quoteName(ns.name)} has istio.io/rev=${quoteName(rev)}: revision tag ${quoteName(rev)} → ${quoteName(tag.revision)} (configuration ${quoteName(tag.configuration)})`,
    });
  }
  const asksForInjection = injection === "enabled" || (injection === undefined && rev !== undefined);
  if (asksForInjection && selecting.length === 0) {
    const label = injection === "enabled" ? "istio-injection=enabled" : `istio.io/rev=${quoteName(rev ?? "")}`;
    findings.push({
      severity: "warning",
      message: `namespace ${quoteName(ns.name)} has ${label}, but no injector webhook in the cluster would inject its Pods${injection === undefined ? " (no injector serves that revision?)" : ""}`,
    });
  }
  if (injection === undefined && rev === undefined) {
    findings.push({
      severity: "info",
      message: `namespace ${quoteName(ns.name)} has no istio-injection or istio.io/rev label: only Pods that opt in by label are injected`,
    });
  }
  return findings;
}

/** The configuration of revision tag `tag` and the revision it points at, if the cluster has one. */
function tagTarget(
  configs: readonly MutatingWebhookConfigurationObject[],
  tag: string,
): { configuration: string; revision: string } | undefined {
  for (const c of configs) {
    if (tagOf(c) !== tag) continue;
    const hook = c.webhooks.find((w) => coversPodCreate(w.rules) && isInjector(c, w));
    if (hook !== undefined) return { configuration: c.name, revision: revisionOf(c, hook) };
  }
  return undefined;
}

/**
 * Every revision tag's configuration, with the revision it points at; an error when no other
 * injector configuration serves that revision (see the header).
 */
export function checkTags(configs: readonly MutatingWebhookConfigurationObject[]): CheckedTag[] {
  const served = new Set<string>();
  for (const c of configs) {
    if (tagOf(c) !== undefined) continue;
    for (const w of c.webhooks) if (coversPodCreate(w.rules) && isInjector(c, w)) served.add(revisionOf(c, w));
  }
  const tags: CheckedTag[] = [];
  for (const c of configs) {
    const tag = tagOf(c);
    if (tag === undefined) continue;
    const hook = c.webhooks.find((w) => coversPodCreate(w.rules) && isInjector(c, w));
    if (hook === undefined) continue;
    const revision = revisionOf(c, hook);
    const findings: Finding[] =
      served.has(revision) || revision.split(",").some((r) => served.has(r))
        ? []
        : [
            {
              severity: "error",
              message: `revision tag ${quoteName(tag)} points at revision ${quoteName(revision)}, which no injector configuration in the cluster serves: Pods labelled istio.io/rev=${quoteName(tag)} (or in namespaces so labelled) are sent to what its webhooks call, which is not installed as that revision; install the revision or move the tag`,
            },
          ];
    tags.push({ tag, revision, configuration: c.name, findings });
  }
  return tags.sort((a, b) => a.tag.localeCompare(b.tag) || a.configuration.localeCompare(b.configuration));
}

/** The revision an injected Pod names, or undefined when it carries no sidecar. */
function injectedRevision(obj: StoredObject): string | undefined {
  const annotations = obj.pod.metadata?.annotations ?? {};
  const hasProxy = [...(obj.pod.spec?.containers ?? []), ...(obj.pod.spec?.initContainers ?? [])].some(
    (c) => c.name === CONTAINER.proxy,
  );
  if (own(annotations, A.status) === undefined && !hasProxy) return undefined;
  return own(annotations, A.rev) ?? "";
}

/** The current config of an injector configuration, by name; else why it is not known (see the header). */
export type ConfigLookup = (configuration: string) => InjectorConfig | string | undefined;

/** The workload a template's Pods are created for: for the policy's domain and the sidecar compared. */
function workloadOf(obj: StoredObject, namespace: string): WorkloadRef | undefined {
  if (obj.kind === "Pod") return undefined;
  const apiVersion = obj.kind === "Job" || obj.kind === "CronJob" ? "batch/v1" : "apps/v1";
  return { name: obj.name, namespace, kind: obj.kind, apiVersion };
}

/**
 * Which injector the policy mode gives the object's next CREATE (the first policy whose binding
 * selects it), and the webhooks' not-injected-by-policy conditions decided by the same domain.
 */
function policyModeOf(
  obj: StoredObject,
  ns: NamespaceObject,
  modes: readonly PolicyMode[],
  injected: boolean,
): { take?: PolicyTake; decided: DecidedCondition } {
  if (modes.length === 0) return { decided: () => undefined };
  const workload = workloadOf(obj, ns.name);
  const created = (m: PolicyMode): Pod => {
    if (!injected) return obj.pod;
    try {
      return asCreatedAgain(m.domain, obj.stored ?? obj.pod, m.config);
    } catch (e) {
      if (e instanceof InjectionError) return obj.pod;
      throw e;
    }
  };
  const takes = modes.map((m) => policyTake(m, created(m), ns, workload));
  const take = takes.find((t) => t.injector !== "none") ?? takes[0];
  const decided: DecidedCondition = (c) => {
    const m = modes.find((x) => own(x.policy.annotations, WEBHOOK_CONDITION_ANNOTATION) === c.expression);
    if (m === undefined) return undefined;
    const v = domainVerdict(m.domain, created(m), workload);
    const policy = `MutatingAdmissionPolicy ${quoteName(m.policy.name)}`;
    return v.injector === "webhook"
      ? { value: true, why: `outside the domain of ${policy}` }
      : { value: false, why: `inside the domain of ${policy}, which takes it` };
  };
  return { ...(take ? { take } : {}), decided };
}

export function checkObject(
  obj: StoredObject,
  ns: NamespaceObject,
  configs: readonly MutatingWebhookConfigurationObject[],
  config: Config,
  configOf: ConfigLookup = () => undefined,
  modes: readonly PolicyMode[] = [],
): CheckedObject {
  const revision = injectedRevision(obj);
  const { take, decided } = policyModeOf(obj, ns, modes, revision !== undefined);
  const webhooks = injectingWebhooks(obj.pod, ns, configs, config, configOf, obj.stored ?? obj.pod, decided);
  const findings: Finding[] = [];
  const injecting = webhooks.filter((w) => w.injects);
  // Every injector that would inject it: the webhooks, and the policy.
  const injectors = [
    ...injecting.map((w) => w.webhook),
    ...(take?.injects ? [`MutatingAdmissionPolicy ${quoteName(take.policy)}`] : []),
  ];
  if (injectors.length > 1) {
    findings.push({
      severity: "error",
      message: `${injectors.length} injectors would inject this Pod: ${injectors.join(", ")}`,
    });
  }
  for (const w of annotationKeyWarnings(obj.pod.metadata?.annotations))
    findings.push({ severity: "warning", message: w });
  for (const w of proxyConfigWarnings(obj.pod.metadata?.annotations))
    findings.push({ severity: "warning", message: w });
  const injected = revision === undefined ? undefined : { revision };
  // Injected by the policy alone: compared with the config its domain is said for (see check()).
  const configurations = injecting.map((w) => w.configuration);
  const sidecar =
    injected && injectors.length > 0 ? sidecarCheck(obj, ns.name, configurations, configOf, modes, take) : undefined;
  if (obj.kind === "Pod") {
    if (injected) {
      findings.push({
        severity: "info",
        message: `already injected${revision ? ` (revision ${quoteName(revision)})` : ""}${sidecar?.compared === false ? `; its sidecar was not compared: ${sidecar.reason}` : ""}`,
      });
      if (injectors.length === 0)
        findings.push({
          severity: "warning",
          message: "injected, but no injector would inject it now: recreated, it has no sidecar",
        });
    } else if (injectors.length > 0) {
      findings.push({
        severity: "warning",
        message:
          "not injected, but would be now (created before injection was turned on?): restart it to get the sidecar",
      });
    }
  } else if (injected) {
    findings.push({
      severity: "info",
      message: "the Pod template already carries a sidecar (istioctl kube-inject or inject output?)",
    });
  }
  if (sidecar?.compared === true && sidecar.drift.length > 0) {
    const restart =
      obj.kind === "Pod"
        ? "restart the workload to get the current one"
        : "inject the template again with the current config";
    findings.push({
      severity: "warning",
      message: `stale sidecar (against ${sidecar.config}): ${formatDrift(sidecar.drift)}; ${restart}`,
    });
  }
  return {
    kind: obj.kind,
    namespace: obj.namespace,
    name: obj.name,
    ...(injected ? { injected } : {}),
    ...(sidecar ? { sidecar } : {}),
    webhooks,
    ...(take ? { policy: take } : {}),
    findings,
  };
}

/** Each injector webhook: whether it is called for `pod` in `ns`, and whether its config's policy then injects. */
function injectingWebhooks(
  pod: Pod,
  ns: NamespaceObject,
  configs: readonly MutatingWebhookConfigurationObject[],
  config: Config,
  configOf: ConfigLookup,
  object: unknown = pod,
  decided?: DecidedCondition,
): CheckedWebhook[] {
  return webhookVerdicts(configs, ns, pod, object, decided).map((v) => {
    if (!v.called) return { ...v, injects: false };
    const current = configOf(v.configuration);
    const policy = decide(pod, ns.name, typeof current === "object" ? current.config : config).decision;
    return policy.inject
      ? { ...v, injects: true }
      : { ...v, injects: false, reason: `${v.reason}; called, but ${policy.reasons.at(-1) ?? "the policy says no"}` };
  });
}

/** The stored sidecar compared with what the first injecting webhook whose config is known would inject now. */
function sidecarCheck(
  obj: StoredObject,
  namespace: string,
  configurations: readonly string[],
  configOf: ConfigLookup,
  modes: readonly PolicyMode[] = [],
  take?: PolicyTake,
): SidecarCheck {
  const looked = configurations.map((name) => ({ name, config: configOf(name) }));
  // Injected by the policy, whose injector's config is not known here: the one its domain was said for.
  const policyConfig = take?.injects ? modes.find((m) => m.policy.name === take.policy)?.config : undefined;
  const known =
    looked.map((l) => l.config).find((c) => typeof c === "object") ??
    (policyConfig
      ? { config: policyConfig, source: `the config of MutatingAdmissionPolicy ${quoteName(take?.policy ?? "")}` }
      : undefined);
  if (known === undefined) {
    const why = looked.find((l) => typeof l.config === "string");
    const detail = why ? ` (${typeof why.config === "string" ? why.config : ""})` : "";
    return {
      compared: false,
      reason: `the config of ${why?.name ?? looked[0]?.name ?? "the injector"} is not known${detail}: give it with --config`,
    };
  }
  const result = compareSidecar(obj.stored ?? obj.pod, namespace, known.config, workloadOf(obj, namespace));
  return result.compared
    ? { compared: true, config: known.source, drift: result.drift }
    : { compared: false, reason: result.reason };
}

/** Whether a webhook configuration is this chart's (its config then is in a ConfigMap beside its Service). */
function isOurs(config: MutatingWebhookConfigurationObject): boolean {
  return own(config.labels, "app.kubernetes.io/name") === "sidecar-injector";
}

/** The key of the chart's ConfigMap that holds the injector's config. */
const CONFIG_KEY = "config.yaml";

/**
 * The current config of one configuration, as the chart installs it: the config.yaml of the
 * ConfigMap named as the Service its webhooks call, in that Service's namespace. Throws
 * CheckNotFoundError when there is none (its webhooks call a URL, no such ConfigMap, no
 * config.yaml in it), KubeError when it cannot be read, ConfigError when it is not a valid config.
 */
export async function readInjectorConfig(
  api: InspectApi,
  configuration: MutatingWebhookConfigurationObject,
): Promise<InjectorConfig> {
  const service = configuration.webhooks.find((w) => w.clientConfig?.service !== undefined)?.clientConfig?.service;
  if (service === undefined)
    throw new CheckNotFoundError("its webhooks call a URL, not a Service, so its ConfigMap is unknown");
  const source = `configmap ${service.namespace}/${service.name}`;
  const data = await api.readConfigMap(service.namespace, service.name);
  const text = data === undefined ? undefined : own(data, CONFIG_KEY);
  if (text === undefined)
    throw new CheckNotFoundError(`${source} ${data === undefined ? "does not exist" : `has no ${CONFIG_KEY}`}`);
  return { config: parseConfig(text, `${source} ${CONFIG_KEY}`), source };
}

/**
 * The current config of each of this chart's configurations, read from the cluster; a reason
 * instead where it cannot be read (not there, not allowed, not a valid config).
 */
async function clusterConfigs(
  api: InspectApi,
  configs: readonly MutatingWebhookConfigurationObject[],
): Promise<Map<string, InjectorConfig | string>> {
  const found = new Map<string, InjectorConfig | string>();
  for (const c of configs) {
    if (!isOurs(c)) continue;
    try {
      found.set(c.name, await readInjectorConfig(api, c));
    } catch (e) {
      // Reading it is optional (a user may read Pods but not the injector's ConfigMaps): say why.
      if (
        e instanceof CheckNotFoundError ||
        e instanceof KubeError ||
        (e instanceof Error && "code" in e && e.code === "ERR_CONFIG")
      )
        found.set(c.name, e.message);
      else throw e;
    }
  }
  return found;
}

/** The config `inject --from-cluster` injects with: a configuration's current one, `nativeSidecars: auto` resolved. */
export interface ClusterInjectorConfig extends InjectorConfig {
  /** With `nativeSidecars: auto`: how many nodes were read, and whether every kubelet runs native sidecars. */
  readonly nodes?: { readonly count: number; readonly native: boolean };
  /** One line: which config was used, and whether sidecars are native and why. */
  readonly summary: string;
}

/**
 * What the injector behind the MutatingWebhookConfiguration `name` injects with: its current
 * config (readInjectorConfig), and `nativeSidecars: auto` decided by the nodes' kubelet
 * versions as the injector decides it (kube/nodes.ts). Throws CheckNotFoundError naming what
 * is missing, KubeError when a read is refused, ConfigError when the config is not valid.
 */
export async function clusterInjectorConfig(api: InspectApi, name: string): Promise<ClusterInjectorConfig> {
  const configuration = (await api.listMutatingWebhookConfigurations()).find((c) => c.name === name);
  if (configuration === undefined)
    throw new CheckNotFoundError(
      `MutatingWebhookConfiguration ${quoteName(name)} not found (name the injector's with --webhook-config)`,
    );
  let current: InjectorConfig;
  try {
    current = await readInjectorConfig(api, configuration);
  } catch (e) {
    if (!(e instanceof CheckNotFoundError)) throw e;
    const chart = isOurs(configuration)
      ? ""
      : " (it is not this chart's: no app.kubernetes.io/name=sidecar-injector label)";
    throw new CheckNotFoundError(
      `the config of MutatingWebhookConfiguration ${quoteName(name)} cannot be found: ${e.message}${chart}`,
    );
  }
  const from = `config: ${current.source} (webhook configuration ${quoteName(name)})`;
  if (current.config.nativeSidecars !== "auto") {
    return {
      ...current,
      summary: `${from}; native sidecars: ${current.config.nativeSidecars === "true" ? "yes" : "no"} (nativeSidecars: ${current.config.nativeSidecars})`,
    };
  }
  const versions = await api.listNodeVersions();
  const native = nativeSidecarsSupported(versions);
  const why =
    versions.length === 0
      ? "no nodes"
      : `${versions.length} node${versions.length === 1 ? "" : "s"}${native ? "" : `, not every kubelet v1.${NATIVE_SIDECAR_MIN_MINOR} or later`}`;
  return {
    config: { ...current.config, nativeSidecars: native ? "true" : "false" },
    source: current.source,
    nodes: { count: versions.length, native },
    summary: `${from}; native sidecars: ${native ? "yes" : "no"} (${why})`,
  };
}

/** The chart's label on its Deployment (and every object it installs). */
export const INJECTOR_DEPLOYMENT_SELECTOR = "app.kubernetes.io/part-of=sidecar-injector";

/** An optional read: its result, or why it was not made (refused, not served), for a finding. */
async function optional<T>(what: string, read: () => Promise<T>): Promise<{ value: T } | { finding: Finding }> {
  try {
    return { value: await read() };
  } catch (e) {
    if (!(e instanceof KubeError) || (e.status !== 403 && e.status !== 404)) throw e;
    return { finding: { severity: "info", message: `${what} cannot be checked: ${e.message}` } };
  }
}

/** The namespace of the Service a configuration's webhooks call. */
function serviceNamespaceOf(c: MutatingWebhookConfigurationObject): string | undefined {
  return c.webhooks.find((w) => w.clientConfig?.service !== undefined)?.clientConfig?.service?.namespace;
}

export async function check(api: InspectApi, opts: CheckOptions): Promise<CheckReport> {
  const [configs, objects, policyRead, deploymentRead] = await Promise.all([
    api.listMutatingWebhookConfigurations(),
    readTargets(api, opts),
    optional("the chart's policy mode (listing MutatingAdmissionPolicies)", () => api.listMutatingAdmissionPolicies()),
    optional("the injector's --istio-config (listing its Deployments)", () =>
      api.listDeployments(INJECTOR_DEPLOYMENT_SELECTOR),
    ),
  ]);
  const clusterFindings = [policyRead, deploymentRead].flatMap((r) => ("finding" in r ? [r.finding] : []));
  const names = [...new Set(objects.map((o) => o.namespace))];
  if (opts.targets.length === 0 && !opts.allNamespaces && !names.includes(opts.namespace)) names.push(opts.namespace);
  const namespaces = new Map<string, NamespaceObject>();
  if (opts.allNamespaces) {
    for (const ns of await api.listNamespaces()) namespaces.set(ns.name, ns);
  } else {
    for (const name of names) {
      const ns = await api.readNamespace(name);
      if (ns === undefined) throw new CheckNotFoundError(`namespace ${quoteName(name)} not found`);
      namespaces.set(name, ns);
    }
  }
  const given: InjectorConfig = { config: opts.config, source: "--config" };
  const live = opts.configGiven ? new Map<string, InjectorConfig | string>() : await clusterConfigs(api, configs);
  // An injector that follows Istio's ConfigMaps serves their config, not its chart ConfigMap's.
  const injectors: CheckedInjector[] = [];
  for (const d of "value" in deploymentRead ? deploymentRead.value : []) {
    const arg = istioConfigArg(d);
    if (arg === undefined) continue;
    const r = await checkIstioConfig(api, d, arg);
    injectors.push(r.checked);
    if (r.config === undefined || opts.configGiven) continue;
    for (const c of configs) if (isOurs(c) && serviceNamespaceOf(c) === d.namespace) live.set(c.name, r.config);
  }
  const configOf: ConfigLookup = (name) => {
    if (opts.configGiven) return given;
    return live.get(name);
  };
  const policies: CheckedPolicy[] = [];
  const modes: PolicyMode[] = [];
  const found = "value" in policyRead ? policyRead.value : undefined;
  for (const p of found ? ourPolicies(found) : []) {
    const ours = configs.filter((c) => isOurs(c) && tagOf(c) === undefined);
    const configuration = ours.find((c) => c.name === p.name) ?? ours[0];
    const current = configuration === undefined ? undefined : configOf(configuration.name);
    const why =
      typeof current === "string"
        ? current
        : configuration === undefined
          ? "no MutatingWebhookConfiguration of this chart"
          : undefined;
    const { mode, checked } = policyMode(
      found ?? { apiVersion: "", policies: [], bindings: [] },
      p,
      typeof current === "object" ? current.config : opts.config,
      typeof current === "object"
        ? { name: current.source, known: true }
        : { name: "the defaults", known: false, ...(why ? { why } : {}) },
    );
    policies.push(checked);
    modes.push(mode);
  }
  const checked = objects.map((o) =>
    checkObject(
      o,
      namespaces.get(o.namespace) ?? { name: o.namespace, labels: {} },
      configs,
      opts.config,
      configOf,
      modes,
    ),
  );
  const nsReports = [...namespaces.values()]
    .filter(
      (ns) =>
        opts.allNamespaces !== true ||
        objects.some((o) => o.namespace === ns.name) ||
        INJECTION_LABELS.some((l) => own(ns.labels, l) !== undefined),
    )
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((ns) => ({
      name: ns.name,
      labels: Object.fromEntries(
        INJECTION_LABELS.flatMap((l) => (own(ns.labels, l) === undefined ? [] : [[l, own(ns.labels, l) ?? ""]])),
      ),
      findings: namespaceFindings(ns, configs, opts.config, configOf),
    }));
  const tags = checkTags(configs);
  const errors = [{ findings: clusterFindings }, ...policies, ...injectors, ...nsReports, ...tags, ...checked].reduce(
    (n, r) => n + r.findings.filter((f) => f.severity === "error").length,
    0,
  );
  return {
    ...(clusterFindings.length > 0 ? { findings: clusterFindings } : {}),
    ...(policies.length > 0 ? { policies } : {}),
    ...(injectors.length > 0 ? { injectors } : {}),
    namespaces: nsReports,
    ...(tags.length > 0 ? { tags } : {}),
    objects: checked,
    errors,
  };
}

async function readTargets(api: InspectApi, opts: CheckOptions): Promise<StoredObject[]> {
  if (opts.targets.length === 0)
    return api.listPods(opts.allNamespaces ? undefined : opts.namespace, opts.labelSelector);
  const found: StoredObject[] = [];
  for (const t of opts.targets) {
    const obj = await api.readObject(t.kind, opts.namespace, t.name);
    if (obj === undefined)
      throw new CheckNotFoundError(
        `${t.kind.toLowerCase()}/${quoteName(t.name)} not found in namespace ${quoteName(opts.namespace)}`,
      );
    found.push(obj);
  }
  return found;
}

// --- output ---------------------------------------------------------------------------------

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

function findingLines(findings: readonly Finding[], indent: string): string {
  return findings.map((f) => `${indent}${f.severity}: ${f.message}\n`).join("");
}

/** kubectl-like text: namespaces, then each object with its webhook table and findings. */
export function formatCheckTable(report: CheckReport): string {
  let out = findingLines(report.findings ?? [], "");
  for (const p of report.policies ?? []) {
    const bindings = p.bindings.length > 0 ? p.bindings.map(quoteName).join(", ") : "none";
    out += `MutatingAdmissionPolicy ${quoteName(p.name)} (${p.apiVersion}; bindings: ${bindings}; domain of ${p.config})\n${findingLines(p.findings, "  ")}`;
  }
  for (const i of report.injectors ?? []) {
    const allow = i.allowUnsupported ? " --allow-unsupported" : "";
    out += `injector deployment ${quoteName(i.namespace)}/${quoteName(i.name)}: serve --istio-config ${quoteName(i.istioConfig)}${allow}\n${findingLines(i.findings, "  ")}`;
  }
  for (const ns of report.namespaces) {
    const labels = Object.entries(ns.labels).map(([k, v]) => `${k}=${quoteName(v)}`);
    out += `namespace ${ns.name}: ${labels.length > 0 ? labels.join(", ") : "no injection label"}\n${findingLines(ns.findings, "  ")}`;
  }
  for (const t of report.tags ?? []) {
    out += `revision tag ${quoteName(t.tag)} → ${quoteName(t.revision)} (configuration ${quoteName(t.configuration)})\n${findingLines(t.findings, "  ")}`;
  }
  for (const obj of report.objects) {
    out += `\n${obj.kind.toLowerCase()}/${obj.name} (namespace ${obj.namespace})\n`;
    if (obj.webhooks.length === 0) out += "  no sidecar injector webhook in the cluster is called for Pods\n";
    else
      out += table([
        ["WEBHOOK", "REVISION", "INJECTED", "REASON"],
        ...obj.webhooks.map((w) => [w.webhook, revisionLabel(w), w.injects ? "yes" : "no", w.reason]),
      ]).replace(/^(?=.)/gm, "  ");
    if (obj.policy) out += `  policy mode: ${takeText(obj.policy)}\n`;
    out += findingLines(obj.findings, "  ");
  }
  if (report.objects.length === 0) out += "\nno Pods found\n";
  return out;
}
