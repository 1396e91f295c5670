// The one place that talks to the API server (@kubernetes/client-node): the CA Secret, the
// caBundle of our MutatingWebhookConfiguration, node versions, and /preview's lookups.
// The calls made for a request read a bounded answer (capped-http.ts). Everything above it
// depends on the small KubeApi interface of api.ts, so it can be tested with plain fakes, and
// a module that needs only the types never loads the client.
import {
  AdmissionregistrationV1Api,
  ApiException,
  ApisApi,
  AppsV1Api,
  BatchV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1ConfigMap,
  type V1Container,
  type V1LabelSelector,
  type V1MutatingWebhookConfiguration,
  type V1Namespace,
  type V1Node,
  type V1NodeList,
  type V1ObjectMeta,
  type V1PodSpec,
  type V1Secret,
  type AdmissionregistrationV1WebhookClientConfig,
} from "@kubernetes/client-node";

import {
  KubeError,
  type AdmissionPolicies,
  type AdmissionPolicyBindingObject,
  type AdmissionPolicyObject,
  type ConfigMapObject,
  type InspectApi,
  type KubeApi,
  type LabelSelectorObject,
  type MutatingWebhookConfigurationObject,
  type NamespaceObject,
  type SecretObject,
  type ServedVersion,
  type StoredObject,
  type WebhookClientConfig,
  type WebhookConfigObject,
} from "./api.js";
import type { Container, Pod } from "./types.js";
import { quote } from "../injection/quote.js";
import { cappedHttpLibrary } from "./capped-http.js";
import { noAnswer, resumingWatch, WATCH_LIMITS } from "./watch.js";

export { KUBE_API_CALLS, KubeError } from "./api.js";
export type {
  ConfigMapObject,
  InspectApi,
  KubeApi,
  KubeUser,
  SecretObject,
  WebhookClientConfig,
  WebhookConfigObject,
  WebhookEntry,
  WebhookTarget,
} from "./api.js";

function wrap(op: string, e: unknown): KubeError {
  if (e instanceof KubeError) return e;
  if (e instanceof ApiException) {
    const body = e.body as { message?: string } | string | undefined;
    // Some calls hand back the Status unparsed: its message is what the API server said.
    const status = typeof body === "string" ? statusMessage(body) : undefined;
    const detail =
      typeof body === "object" && body?.message
        ? body.message
        : status !== undefined
          ? status
          : typeof body === "string"
            ? body.slice(0, 300)
            : e.message;
    return new KubeError(`${op}: ${detail}`, e.code);
  }
  return new KubeError(`${op}: ${e instanceof Error ? e.message : String(e)}`, undefined);
}

/** The message of a Kubernetes Status given as JSON text; undefined when it is not one. */
function statusMessage(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const message = typeof parsed === "object" && parsed !== null && "message" in parsed ? parsed.message : undefined;
    return typeof message === "string" && message !== "" ? message.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}

/** The field selector of one object by name: what RBAC by resourceNames lets a watch ask for. */
const byName = (name: string): { fieldSelector: string } => ({ fieldSelector: `metadata.name=${name}` });

/** What `read` returns; undefined when the API server answers 404; any other failure as a KubeError naming `op`. */
async function orUndefined<T>(op: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    const err = wrap(op, e);
    if (err.notFound) return undefined;
    throw err;
  }
}

function toClientConfig(c: AdmissionregistrationV1WebhookClientConfig | undefined): WebhookClientConfig | undefined {
  if (!c || (!c.service && c.url === undefined)) return undefined;
  const svc = c.service;
  return {
    ...(svc
      ? {
          service: {
            name: svc.name,
            namespace: svc.namespace,
            ...(svc.port !== undefined ? { port: svc.port } : {}),
            ...(svc.path !== undefined ? { path: svc.path } : {}),
          },
        }
      : {}),
    ...(c.url !== undefined ? { url: c.url } : {}),
  };
}

function toWebhookConfig(o: V1MutatingWebhookConfiguration): WebhookConfigObject {
  return {
    name: o.metadata?.name ?? "",
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
    webhooks: (o.webhooks ?? []).map((w) => {
      const clientConfig = toClientConfig(w.clientConfig);
      return {
        name: w.name,
        ...(w.clientConfig?.caBundle ? { caBundle: w.clientConfig.caBundle } : {}),
        ...(clientConfig ? { clientConfig } : {}),
      };
    }),
  };
}

function toSecret(s: V1Secret): SecretObject {
  return {
    metadata: {
      name: s.metadata?.name ?? "",
      ...(s.metadata?.namespace ? { namespace: s.metadata.namespace } : {}),
      ...(s.metadata?.resourceVersion ? { resourceVersion: s.metadata.resourceVersion } : {}),
      ...(s.metadata?.labels ? { labels: s.metadata.labels } : {}),
    },
    ...(s.type ? { type: s.type } : {}),
    ...(s.data ? { data: s.data } : {}),
  };
}

function toConfigMap(c: V1ConfigMap): ConfigMapObject {
  return {
    name: c.metadata?.name ?? "",
    ...(c.metadata?.namespace ? { namespace: c.metadata.namespace } : {}),
    ...(c.metadata?.resourceVersion ? { resourceVersion: c.metadata.resourceVersion } : {}),
    data: c.data ?? {},
  };
}

function toSelector(s: V1LabelSelector | undefined): LabelSelectorObject | undefined {
  if (!s) return undefined;
  return {
    ...(s.matchLabels ? { matchLabels: s.matchLabels } : {}),
    ...(s.matchExpressions
      ? {
          matchExpressions: s.matchExpressions.map((e) => ({
            key: e.key,
            operator: e.operator,
            ...(e.values ? { values: e.values } : {}),
          })),
        }
      : {}),
  };
}

function toFullWebhookConfig(o: V1MutatingWebhookConfiguration): MutatingWebhookConfigurationObject {
  return {
    name: o.metadata?.name ?? "",
    labels: o.metadata?.labels ?? {},
    webhooks: (o.webhooks ?? []).map((w) => {
      const clientConfig = toClientConfig(w.clientConfig);
      const namespaceSelector = toSelector(w.namespaceSelector);
      const objectSelector = toSelector(w.objectSelector);
      return {
        name: w.name,
        rules: (w.rules ?? []).map((r) => ({
          operations: r.operations ?? [],
          apiGroups: r.apiGroups ?? [],
          apiVersions: r.apiVersions ?? [],
          resources: r.resources ?? [],
          ...(r.scope ? { scope: r.scope } : {}),
        })),
        ...(namespaceSelector ? { namespaceSelector } : {}),
        ...(objectSelector ? { objectSelector } : {}),
        matchConditions: (w.matchConditions ?? []).map((c) => ({ name: c.name, expression: c.expression })),
        ...(w.failurePolicy ? { failurePolicy: w.failurePolicy } : {}),
        ...(clientConfig ? { clientConfig } : {}),
      };
    }),
  };
}

function toNamespace(n: V1Namespace): NamespaceObject {
  return { name: n.metadata?.name ?? "", labels: n.metadata?.labels ?? {} };
}

/** What `check` reads of a container: its name and image. */
function toContainer(c: V1Container): Container {
  return { name: c.name, ...(c.image !== undefined ? { image: c.image } : {}) };
}

/** The part of a Pod (or Pod template) `check` reads: metadata's names, labels and annotations; the containers. */
function toPod(meta: V1ObjectMeta | undefined, spec: V1PodSpec | undefined): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...(meta?.name !== undefined ? { name: meta.name } : {}),
      ...(meta?.generateName !== undefined ? { generateName: meta.generateName } : {}),
      ...(meta?.namespace !== undefined ? { namespace: meta.namespace } : {}),
      labels: meta?.labels ?? {},
      annotations: meta?.annotations ?? {},
    },
    spec: {
      containers: (spec?.containers ?? []).map(toContainer),
      ...(spec?.initContainers ? { initContainers: spec.initContainers.map(toContainer) } : {}),
      ...(spec?.hostNetwork !== undefined ? { hostNetwork: spec.hostNetwork } : {}),
    },
  };
}

/**
 * A stored Pod or template as plain JSON (what the API server sent: the client's objects carry
 * the same field names), for `check` to inject again; its status is not read.
 */
function storedJson(meta: V1ObjectMeta | undefined, spec: V1PodSpec | undefined): unknown {
  return JSON.parse(
    JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: meta ?? {}, spec: spec ?? { containers: [] } }),
  );
}

/** A Pod, or a workload's Pod template: the metadata and spec `check` reads. */
interface PodTemplate {
  readonly metadata?: V1ObjectMeta | undefined;
  readonly spec?: V1PodSpec | undefined;
}

/** A stored object as `check` reads it: its own metadata and the Pod it stands for. */
interface Read {
  readonly metadata: V1ObjectMeta | undefined;
  readonly template: PodTemplate | undefined;
}

/** A workload as `check` reads it: its metadata and its spec's Pod template. */
async function workload(read: Promise<{ metadata?: V1ObjectMeta; spec?: { template?: PodTemplate } }>): Promise<Read> {
  const o = await read;
  return { metadata: o.metadata, template: o.spec?.template };
}

interface Named {
  readonly name: string;
  readonly namespace: string;
}

/** The Pod a Pod or template stands for, as `check` reads it and as stored. */
function podOf(t: PodTemplate | undefined): Pick<StoredObject, "pod" | "stored"> {
  return { pod: toPod(t?.metadata, t?.spec), stored: storedJson(t?.metadata, t?.spec) };
}

/**
 * The kubelet version of each node that reports one, read a page at a time, each page under a
 * deadline of `ms`: only the versions outlive their page.
 */
async function kubeletVersions(
  ms: number,
  call: (page: PageStart, o: ConfigurationOptions) => Promise<V1NodeList>,
): Promise<string[]> {
  const versions = await allPages(
    "list Nodes",
    "nodes",
    ms,
    MAX_NODE_PAGES,
    call,
    (n: V1Node) => n.status?.nodeInfo?.kubeletVersion,
  );
  return versions.filter((v): v is string => v !== undefined && v !== "");
}

type Json = Record<string, unknown>;
const jsonMap = (v: unknown): Json => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {});
const jsonList = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const stringMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(jsonMap(v)).filter((e): e is [string, string] => typeof e[1] === "string"));
const text = (v: unknown): string => (typeof v === "string" ? v : "");

/** A selector read from JSON (the admission policy APIs are read untyped, at whichever version is served). */
function jsonSelector(v: unknown): LabelSelectorObject | undefined {
  if (v === undefined || v === null) return undefined;
  const o = jsonMap(v);
  return {
    ...(o.matchLabels !== undefined ? { matchLabels: stringMap(o.matchLabels) } : {}),
    ...(o.matchExpressions !== undefined
      ? {
          matchExpressions: jsonList(o.matchExpressions).map((r) => {
            const e = jsonMap(r);
            return {
              key: text(e.key),
              operator: text(e.operator),
              ...(e.values !== undefined ? { values: jsonList(e.values).map(text) } : {}),
            };
          }),
        }
      : {}),
  };
}

function toAdmissionPolicy(v: unknown): AdmissionPolicyObject {
  const meta = jsonMap(jsonMap(v).metadata);
  return {
    name: text(meta.name),
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    matchConditions: jsonList(jsonMap(jsonMap(v).spec).matchConditions).map((c) => ({
      name: text(jsonMap(c).name),
      expression: text(jsonMap(c).expression),
    })),
  };
}

function toAdmissionPolicyBinding(v: unknown): AdmissionPolicyBindingObject {
  const spec = jsonMap(jsonMap(v).spec);
  const match = jsonMap(spec.matchResources);
  const ns = jsonSelector(match.namespaceSelector);
  const obj = jsonSelector(match.objectSelector);
  return {
    name: text(jsonMap(jsonMap(v).metadata).name),
    policyName: text(spec.policyName),
    ...(ns ? { namespaceSelector: ns } : {}),
    ...(obj ? { objectSelector: obj } : {}),
  };
}

/** The versions of MutatingAdmissionPolicy `check` reads, newest first. */
const ADMISSION_POLICY_VERSIONS = ["v1", "v1beta1"] as const;

/**
 * The read-only calls of `check` (and of the command line's reads of a cluster), made with the
 * caller's kubeconfig: each under the calls' deadline (API_CALL_TIMEOUT_MS), lists a page at a
 * time (allPages).
 */
export function createInspectApi(kc: KubeConfig = defaultKubeConfig(), options: KubeApiOptions = {}): InspectApi {
  const ms = options.callTimeoutMs ?? API_CALL_TIMEOUT_MS;
  const read = <T>(op: string, call: Call<T>): Promise<T | undefined> => readWithin(op, ms, call);
  const list = <T, R>(
    op: string,
    what: string,
    call: (page: PageStart, o: ConfigurationOptions) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
    keep: (item: T) => R,
  ): Promise<R[]> => allPages(op, what, ms, MAX_LIST_PAGES, call, keep);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const apis = kc.makeApiClient(ApisApi);
  /** Each kind `check` reads: the object's metadata and the Pod (or Pod template) it stands for. */
  const readers: Readonly<Record<StoredObject["kind"], (at: Named, o: ConfigurationOptions) => Promise<Read>>> = {
    Pod: async (at, o) => {
      const pod = await core.readNamespacedPod(at, o);
      return { metadata: pod.metadata, template: pod };
    },
    Deployment: (at, o) => workload(apps.readNamespacedDeployment(at, o)),
    StatefulSet: (at, o) => workload(apps.readNamespacedStatefulSet(at, o)),
    DaemonSet: (at, o) => workload(apps.readNamespacedDaemonSet(at, o)),
    ReplicaSet: (at, o) => workload(apps.readNamespacedReplicaSet(at, o)),
    Job: (at, o) => workload(batch.readNamespacedJob(at, o)),
    CronJob: async (at, o) => {
      const job = await batch.readNamespacedCronJob(at, o);
      return { metadata: job.metadata, template: job.spec?.jobTemplate.spec?.template };
    },
  };
  return {
    readNamespace: (name) =>
      read(`read Namespace ${name}`, async (o) => toNamespace(await core.readNamespace({ name }, o))),
    listNamespaces: () => list("list Namespaces", "namespaces", (page, o) => core.listNamespace(page, o), toNamespace),
    readObject(kind, namespace, name) {
      const at = { name, namespace };
      return read(`read ${kind} ${namespace}/${name}`, async (o): Promise<StoredObject> => {
        const { metadata, template } = await readers[kind](at, o);
        return { kind, namespace, name: metadata?.name ?? name, ...podOf(template) };
      });
    },
    listPods(namespace, labelSelector) {
      const selector = labelSelector ? { labelSelector } : {};
      return list(
        `list Pods${namespace === undefined ? "" : ` in ${namespace}`}`,
        "Pods",
        (page, o) =>
          namespace === undefined
            ? core.listPodForAllNamespaces({ ...selector, ...page }, o)
            : core.listNamespacedPod({ namespace, ...selector, ...page }, o),
        (p): StoredObject => ({
          kind: "Pod",
          namespace: p.metadata?.namespace ?? namespace ?? "",
          name: p.metadata?.name ?? "",
          ...podOf(p),
        }),
      );
    },
    listMutatingWebhookConfigurations: () =>
      list(
        "list MutatingWebhookConfigurations",
        "MutatingWebhookConfigurations",
        (page, o) => admission.listMutatingWebhookConfiguration(page, o),
        toFullWebhookConfig,
      ),
    readConfigMap: (namespace, name) =>
      read(
        `read ConfigMap ${namespace}/${name}`,
        async (o) => (await core.readNamespacedConfigMap({ namespace, name }, o)).data ?? {},
      ),
    listNodeVersions: () => kubeletVersions(ms, (page, o) => core.listNode(page, o)),
    async listMutatingAdmissionPolicies(): Promise<AdmissionPolicies | undefined> {
      const group = "admissionregistration.k8s.io";
      for (const version of ADMISSION_POLICY_VERSIONS) {
        const listOf = (plural: string): Promise<unknown[] | undefined> =>
          read(`list ${plural} (${group}/${version})`, async (o) =>
            jsonList(jsonMap(await custom.listClusterCustomObject({ group, version, plural }, o)).items),
          );
        const policies = await listOf("mutatingadmissionpolicies");
        if (policies === undefined) continue;
        const bindings = (await listOf("mutatingadmissionpolicybindings")) ?? [];
        return {
          apiVersion: `${group}/${version}`,
          policies: policies.map(toAdmissionPolicy),
          bindings: bindings.map(toAdmissionPolicyBinding),
        };
      }
      return undefined;
    },
    async listServedVersions(group): Promise<ServedVersion[]> {
      const found = (await withinDeadline("discover API groups", ms, (o) => apis.getAPIVersions({}, o))).groups.find(
        (g) => g.name === group,
      );
      if (found === undefined) return [];
      const preferred = found.preferredVersion?.version;
      const versions = found.versions
        .map((v) => v.version)
        .sort((a, b) => Number(b === preferred) - Number(a === preferred));
      const served: ServedVersion[] = [];
      for (const version of versions) {
        // A version listed but gone by now (404) is not served.
        const resources = await read(`discover ${group}/${version}`, (o) =>
          custom.getAPIResources({ group, version }, o),
        );
        if (resources === undefined) continue;
        served.push({ version, resources: resources.resources.map((r) => r.name).filter((n) => !n.includes("/")) });
      }
      return served;
    },
    listDeployments: (labelSelector) =>
      list(
        "list Deployments",
        "Deployments",
        (page, o) => apps.listDeploymentForAllNamespaces({ labelSelector, ...page }, o),
        (d) => ({
          namespace: d.metadata?.namespace ?? "",
          name: d.metadata?.name ?? "",
          containers: (d.spec?.template.spec?.containers ?? []).map((c) => ({
            name: c.name,
            args: [...(c.command ?? []), ...(c.args ?? [])],
          })),
        }),
      ),
  };
}

/** The HTTP library of the calls made for a request: an answer's length is bounded. */
const CAPPED_HTTP = cappedHttpLibrary();

/** The middleware that gives a call `signal`: the call is aborted, its connection closed, when it fires. */
function abortOn(signal: AbortSignal): ObservableMiddleware {
  return {
    pre: (request: RequestContext) => {
      request.setSignal(signal);
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
}

/**
 * The options of a call made for a request (/preview's lookups): it reads at most
 * MAX_ANSWER_BYTES of the answer (capped-http.ts), and it is aborted, its connection closed,
 * when `signal` fires.
 */
function requestCall(signal: AbortSignal | undefined): ConfigurationOptions {
  if (signal === undefined) return { httpApi: CAPPED_HTTP };
  return { middleware: [abortOn(signal)], middlewareMergeStrategy: "append", httpApi: CAPPED_HTTP };
}

/**
 * How long a call the injector makes on its own account (its CA Secret, the webhooks'
 * caBundle, the nodes' versions, Istio's ConfigMaps) waits for the API server's answer, body
 * included. The client sets no limit: an API server that takes the connection and never
 * answers (overloaded, or a connection gone dead without a reset) held such a call for ever,
 * and with it the certificate manager, whose later passes wait for the one running: no retry,
 * no renewal, the serving certificate left to expire. A call past this fails, saying so, and
 * its caller retries as after any failure. A watch's request must be answered within it too;
 * the rest of a watch's life has bounds of its own (watch.ts).
 */
export const API_CALL_TIMEOUT_MS = 30_000;

/** Objects a call of a list reads (a page): kubectl's default --chunk-size. */
const LIST_PAGE = 500;
/** Pages of Nodes read at most: 50,000 nodes, ten times the largest cluster Kubernetes supports. */
const MAX_NODE_PAGES = 100;
/** Pages of any other list read at most (`check`): 500,000 objects, Pods included. */
const MAX_LIST_PAGES = 1000;

/** A call of the client, given its options (the deadline's middleware). */
type Call<T> = (options: ConfigurationOptions) => Promise<T>;

/**
 * `call` under a deadline of `ms`: one without an answer by then is aborted, its connection
 * closed, and fails with an error that says so; any other failure as a KubeError naming `op`.
 */
async function withinDeadline<T>(op: string, ms: number, call: Call<T>): Promise<T> {
  // It runs from when the request goes out: the middleware runs after the client has the
  // credentials, which an exec plugin may take long to give (a person logging in), and that
  // is not the API server's time.
  let deadline: AbortSignal | undefined;
  const startsOnSend: ObservableMiddleware = {
    pre: (request: RequestContext) => {
      deadline = AbortSignal.timeout(ms);
      request.setSignal(deadline);
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  try {
    return await call({ middleware: [startsOnSend], middlewareMergeStrategy: "append" });
  } catch (e) {
    // The call's own abort, not an answer (a 404, a conflict) that came as the deadline passed.
    if (deadline?.aborted === true && e instanceof Error && e.name === "AbortError")
      throw new KubeError(`${op}: ${noAnswer(ms)}`, undefined);
    throw wrap(op, e);
  }
}

/** A read under a deadline of `ms` (withinDeadline): an object that is not there is undefined. */
const readWithin = <T>(op: string, ms: number, call: Call<T>): Promise<T | undefined> =>
  orUndefined(op, () => withinDeadline(op, ms, call));

/** Where a list's page starts: the first page, or the continue token of the one before. */
interface PageStart {
  readonly limit: number;
  readonly _continue?: string;
}

/**
 * Every item of a list, read LIST_PAGE at a time (as kubectl reads with its --chunk-size), each
 * page a call under a deadline of `ms`, and `keep` of each item taken as its page comes: a
 * large cluster's Pods or Nodes are never one answer, to hold at once or to read within one
 * deadline. A list that does not end within `maxPages`
 * fails, saying so. A continue token that expires between pages (410) fails the read.
 */
async function allPages<T, R>(
  op: string,
  what: string,
  ms: number,
  maxPages: number,
  call: (page: PageStart, options: ConfigurationOptions) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
  keep: (item: T) => R,
): Promise<R[]> {
  const items: R[] = [];
  let next: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const start = next;
    const list = await withinDeadline(op, ms, (o) =>
      call({ limit: LIST_PAGE, ...(start === undefined ? {} : { _continue: start }) }, o),
    );
    // Only what is kept of each item outlives its page.
    for (const item of list.items) items.push(keep(item));
    next = list.metadata?._continue || undefined;
    if (next === undefined) return items;
  }
  throw new KubeError(`${op}: more than ${maxPages * LIST_PAGE} ${what}`, undefined);
}

export interface KubeApiOptions {
  /** See API_CALL_TIMEOUT_MS. */
  readonly callTimeoutMs?: number;
  /** The least time a watch asks the API server to keep it open (resumingWatch); default WATCH_LIMITS'. */
  readonly watchTimeoutSeconds?: number;
}

export function createKubeApi(kc: KubeConfig = defaultKubeConfig(), options: KubeApiOptions = {}): KubeApi {
  const callTimeoutMs = options.callTimeoutMs ?? API_CALL_TIMEOUT_MS;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? WATCH_LIMITS.timeoutSeconds;
  const own = <T>(op: string, call: Call<T>): Promise<T> => withinDeadline(op, callTimeoutMs, call);
  const ownRead = <T>(op: string, call: Call<T>): Promise<T | undefined> => readWithin(op, callTimeoutMs, call);
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const authentication = kc.makeApiClient(AuthenticationV1Api);
  const authorization = kc.makeApiClient(AuthorizationV1Api);
  /** A JSON Patch's Content-Type, added to a call's options (its deadline's middleware kept). */
  const jsonPatch = (o: ConfigurationOptions): ConfigurationOptions =>
    setHeaderOptions("Content-Type", PatchStrategy.JsonPatch, o);
  /**
   * Watches the objects of a collection that a selector picks: one by name (fieldSelector
   * metadata.name, which is what RBAC by resourceNames needs) or several by labels.
   */
  async function watchOne<K, T>(
    path: string,
    selector: { fieldSelector: string } | { labelSelector: string },
    convert: (raw: K) => T,
    onChange: (obj: T | undefined) => void,
    onEnd: (err?: unknown) => void,
  ): Promise<() => void> {
    const which = "fieldSelector" in selector ? selector.fieldSelector : selector.labelSelector;
    return resumingWatch(
      kc,
      `watch ${path} (${which})`,
      path,
      selector,
      { ...WATCH_LIMITS, startTimeoutMs: callTimeoutMs, timeoutSeconds: watchTimeoutSeconds },
      (type, obj) => {
        if (type === "DELETED") onChange(undefined);
        else if (type === "ADDED" || type === "MODIFIED") onChange(convert(obj as K));
      },
      onEnd,
    );
  }
  /** Watches the one object of a namespace's `plural` (secrets, configmaps) that has a name. */
  const watchNamed =
    <K, T>(plural: string, convert: (raw: K) => T) =>
    (
      namespace: string,
      name: string,
      onChange: (obj: T | undefined) => void,
      onEnd: (err?: unknown) => void,
    ): Promise<() => void> =>
      watchOne(`/api/v1/namespaces/${namespace}/${plural}`, byName(name), convert, onChange, onEnd);
  return {
    readSecret: (namespace, name) =>
      ownRead(`read Secret ${namespace}/${name}`, async (o) =>
        toSecret(await core.readNamespacedSecret({ name, namespace }, o)),
      ),
    createSecret: (namespace, secret) =>
      own(`create Secret ${namespace}/${secret.metadata.name}`, async (o) =>
        toSecret(await core.createNamespacedSecret({ namespace, body: secret as V1Secret }, o)),
      ),
    replaceSecret: (namespace, secret) =>
      own(`update Secret ${namespace}/${secret.metadata.name}`, async (o) =>
        toSecret(
          await core.replaceNamespacedSecret({ name: secret.metadata.name, namespace, body: secret as V1Secret }, o),
        ),
      ),
    readWebhookConfig: (name) =>
      ownRead(`read MutatingWebhookConfiguration ${name}`, async (o) =>
        toWebhookConfig(await admission.readMutatingWebhookConfiguration({ name }, o)),
      ),
    patchCaBundles(name, resourceVersion, updates) {
      const ops: object[] = resourceVersion
        ? [{ op: "test", path: "/metadata/resourceVersion", value: resourceVersion }]
        : [];
      for (const u of updates)
        ops.push({ op: "add", path: `/webhooks/${u.index}/clientConfig/caBundle`, value: u.caBundle });
      return own(`update caBundle of MutatingWebhookConfiguration ${name}`, async (o) =>
        toWebhookConfig(await admission.patchMutatingWebhookConfiguration({ name, body: ops }, jsonPatch(o))),
      );
    },
    listWebhookConfigs: (labelSelector) =>
      own(`list MutatingWebhookConfigurations ${labelSelector}`, async (o) =>
        (await admission.listMutatingWebhookConfiguration({ labelSelector }, o)).items.map(toWebhookConfig),
      ),
    watchWebhookConfig(target, onChange, onEnd) {
      const selector = "name" in target ? byName(target.name) : { labelSelector: target.labelSelector };
      return watchOne(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        selector,
        toWebhookConfig,
        onChange,
        onEnd,
      );
    },
    watchSecret: watchNamed("secrets", toSecret),
    readNamespaceLabels: (name, signal) =>
      orUndefined(`read Namespace ${name}`, async () => {
        const ns: unknown = await core.readNamespace({ name }, requestCall(signal));
        // An answer that is not a Namespace (an HTML page, `{}`, no metadata) says nothing of its
        // labels: a failure to read them, not a namespace without any.
        const metadata = typeof ns === "object" && ns !== null ? Reflect.get(ns, "metadata") : undefined;
        if (typeof metadata !== "object" || metadata === null || Reflect.get(metadata, "name") !== name)
          throw new KubeError(`read Namespace ${name}: the API server's answer is not that Namespace`, undefined);
        const labels: unknown = Reflect.get(metadata, "labels");
        return typeof labels === "object" && labels !== null ? (labels as Record<string, string>) : {};
      }),
    listKubeletVersions: () => kubeletVersions(callTimeoutMs, (page, o) => core.listNode(page, o)),
    async reviewToken(token, signal) {
      try {
        // The token goes only into the review's spec; no message here ever carries it.
        const review = await authentication.createTokenReview(
          { body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } } },
          requestCall(signal),
        );
        const status = review.status;
        const user = status?.user;
        if (status?.authenticated !== true || !user?.username) return undefined;
        return {
          username: user.username,
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.groups ? { groups: [...user.groups] } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
        };
      } catch (e) {
        throw wrap("create TokenReview", e);
      }
    },
    async canGetNamespace(user, name, signal) {
      const extra: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(user.extra ?? {})) extra[k] = [...v];
      try {
        const review = await authorization.createSubjectAccessReview(
          {
            body: {
              apiVersion: "authorization.k8s.io/v1",
              kind: "SubjectAccessReview",
              spec: {
                user: user.username,
                ...(user.uid ? { uid: user.uid } : {}),
                ...(user.groups ? { groups: [...user.groups] } : {}),
                ...(user.extra ? { extra } : {}),
                resourceAttributes: {
                  verb: "get",
                  group: "",
                  version: "v1",
                  resource: "namespaces",
                  name,
                  namespace: name,
                },
              },
            },
          },
          requestCall(signal),
        );
        return review.status?.allowed === true;
      } catch (e) {
        throw wrap(`create SubjectAccessReview for Namespace ${name}`, e);
      }
    },
    readConfigMap: (namespace, name) =>
      ownRead(`read ConfigMap ${namespace}/${name}`, async (o) =>
        toConfigMap(await core.readNamespacedConfigMap({ namespace, name }, o)),
      ),
    watchConfigMap: watchNamed("configmaps", toConfigMap),
  };
}

/** The server @kubernetes/client-node's loadFromDefault falls back to when it finds no credentials. */
const NO_CONFIG_SERVER = "http://localhost:8080";

/** Where the CLI's commands take their credentials from (kubectl's --kubeconfig and --context). */
export interface KubeConfigChoice {
  /** A kubeconfig file instead of KUBECONFIG or ~/.kube/config. */
  readonly kubeconfig?: string;
  /** A context of it instead of its current-context. */
  readonly context?: string;
  /** The command has no --kubeconfig (serve): a missing config is told to set KUBECONFIG. */
  readonly environmentOnly?: boolean;
}

/**
 * KUBECONFIG (or ~/.kube/config) when present, else the in-cluster service account; or the
 * file and context chosen. The namespace of the context is `kc.getContextObject(...)?.namespace`.
 */
export function defaultKubeConfig(choice: KubeConfigChoice = {}): KubeConfig {
  const kc = new KubeConfig();
  const from = choice.kubeconfig
    ? `--kubeconfig ${choice.kubeconfig}`
    : process.env.KUBECONFIG
      ? `KUBECONFIG=${process.env.KUBECONFIG}`
      : "~/.kube/config or the in-cluster service account";
  try {
    if (choice.kubeconfig) kc.loadFromFile(choice.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new KubeError(
      `cannot load Kubernetes credentials from ${from}: ${e instanceof Error ? e.message : String(e)}`,
      undefined,
    );
  }
  // With none of those, the client falls back to an unauthenticated http://localhost:8080,
  // whose first call fails with a message about TLS settings: say what is missing instead.
  const cluster = kc.getCurrentCluster();
  if (
    !choice.kubeconfig &&
    !process.env.KUBECONFIG &&
    cluster?.name === "cluster" &&
    cluster.server === NO_CONFIG_SERVER
  )
    throw new KubeError(
      `no Kubernetes credentials: KUBECONFIG is not set, ~/.kube/config does not exist, and this is not a Pod with a service account; ${choice.environmentOnly === true ? "set KUBECONFIG" : "give --kubeconfig FILE"}`,
      undefined,
    );
  if (choice.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === choice.context)) {
      throw new KubeError(
        `no context ${quote(choice.context)} in ${from} (contexts: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
        undefined,
      );
    }
    kc.setCurrentContext(choice.context);
  }
  return kc;
}

/** The namespace of the kubeconfig's current context (kubectl's default for -n), if it names one. */
export function contextNamespace(kc: KubeConfig): string | undefined {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || undefined;
}
