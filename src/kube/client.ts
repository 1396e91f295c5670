// The one place that talks to the API server (@kubernetes/client-node): the CA Secret, the
// caBundle of our MutatingWebhookConfiguration, node versions, and /preview's lookups.
// Everything above it depends on the small KubeApi interface of api.ts, so it can be tested
// with plain fakes, and a module that needs only the types never loads the client.
import {
  AdmissionregistrationV1Api,
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
  type AdmissionregistrationV1WebhookClientConfig,
} from "@kubernetes/client-node";

import { KubeError, type KubeApi, type SecretObject, type WebhookClientConfig, type WebhookConfigObject } from "./api.js";

export { KUBE_API_CALLS, KubeError } from "./api.js";
export type { KubeApi, KubeUser, SecretObject, WebhookClientConfig, WebhookConfigObject, WebhookEntry, WebhookTarget } from "./api.js";

function wrap(op: string, e: unknown): KubeError {
  if (e instanceof KubeError) return e;
  if (e instanceof ApiException) {
    const body = e.body as { message?: string } | string | undefined;
    const detail = typeof body === "object" && body?.message ? body.message : typeof body === "string" ? body.slice(0, 300) : e.message;
    return new KubeError(`${op}: ${detail}`, e.code);
  }
  return new KubeError(`${op}: ${e instanceof Error ? e.message : String(e)}`, undefined);
}

function toClientConfig(c: AdmissionregistrationV1WebhookClientConfig | undefined): WebhookClientConfig | undefined {
  if (!c || (!c.service && c.url === undefined)) return undefined;
  const svc = c.service;
  return {
    ...(svc ? { service: { name: svc.name, namespace: svc.namespace, ...(svc.port !== undefined ? { port: svc.port } : {}), ...(svc.path !== undefined ? { path: svc.path } : {}) } } : {}),
    ...(c.url !== undefined ? { url: c.url } : {}),
  };
}

function toWebhookConfig(o: V1MutatingWebhookConfiguration): WebhookConfigObject {
  return {
    name: o.metadata?.name ?? "",
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
    webhooks: (o.webhooks ?? []).map((w) => {
      const clientConfig = toClientConfig(w.clientConfig);
      return { name: w.name, ...(w.clientConfig?.caBundle ? { caBundle: w.clientConfig.caBundle } : {}), ...(clientConfig ? { clientConfig } : {}) };
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

export function createKubeApi(kc: KubeConfig = defaultKubeConfig()): KubeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const authentication = kc.makeApiClient(AuthenticationV1Api);
  const authorization = kc.makeApiClient(AuthorizationV1Api);
  const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
  /**
   * Watches the objects of a collection that a selector picks: one by name (fieldSelector
   * metadata.name, which is what RBAC by resourceNames needs) or several by labels.
   */
  async function watchOne<K, T>(path: string, selector: { fieldSelector: string } | { labelSelector: string }, convert: (raw: K) => T, onChange: (obj: T | undefined) => void, onEnd: (err?: unknown) => void): Promise<() => void> {
    const controller = await new Watch(kc).watch(
      path,
      { ...selector, allowWatchBookmarks: false },
      (phase: string, obj: K) => {
        if (phase === "DELETED") onChange(undefined);
        else if (phase === "ADDED" || phase === "MODIFIED") onChange(convert(obj));
      },
      (err: unknown) => onEnd(err),
    );
    return () => controller.abort();
  }
  return {
    async readSecret(namespace, name) {
      try {
        return toSecret(await core.readNamespacedSecret({ name, namespace }));
      } catch (e) {
        const err = wrap(`read Secret ${namespace}/${name}`, e);
        if (err.notFound) return undefined;
        throw err;
      }
    },
    async createSecret(namespace, secret) {
      try {
        return toSecret(await core.createNamespacedSecret({ namespace, body: secret as V1Secret }));
      } catch (e) {
        throw wrap(`create Secret ${namespace}/${secret.metadata.name}`, e);
      }
    },
    async replaceSecret(namespace, secret) {
      try {
        return toSecret(await core.replaceNamespacedSecret({ name: secret.metadata.name, namespace, body: secret as V1Secret }));
      } catch (e) {
        throw wrap(`update Secret ${namespace}/${secret.metadata.name}`, e);
      }
    },
    async readWebhookConfig(name) {
      try {
        return toWebhookConfig(await admission.readMutatingWebhookConfiguration({ name }));
      } catch (e) {
        const err = wrap(`read MutatingWebhookConfiguration ${name}`, e);
        if (err.notFound) return undefined;
        throw err;
      }
    },
    async patchCaBundles(name, resourceVersion, updates) {
      const ops: object[] = resourceVersion ? [{ op: "test", path: "/metadata/resourceVersion", value: resourceVersion }] : [];
      for (const u of updates) ops.push({ op: "add", path: `/webhooks/${u.index}/clientConfig/caBundle`, value: u.caBundle });
      try {
        return toWebhookConfig(await admission.patchMutatingWebhookConfiguration({ name, body: ops }, jsonPatch));
      } catch (e) {
        throw wrap(`update caBundle of MutatingWebhookConfiguration ${name}`, e);
      }
    },
    async listWebhookConfigs(labelSelector) {
      try {
        return (await admission.listMutatingWebhookConfiguration({ labelSelector })).items.map(toWebhookConfig);
      } catch (e) {
        throw wrap(`list MutatingWebhookConfigurations ${labelSelector}`, e);
      }
    },
    watchWebhookConfig(target, onChange, onEnd) {
      const selector = "name" in target ? { fieldSelector: `metadata.name=${target.name}` } : { labelSelector: target.labelSelector };
      return watchOne("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", selector, toWebhookConfig, onChange, onEnd);
    },
    watchSecret(namespace, name, onChange, onEnd) {
      return watchOne(`/api/v1/namespaces/${namespace}/secrets`, { fieldSelector: `metadata.name=${name}` }, toSecret, onChange, onEnd);
    },
    async readNamespaceLabels(name) {
      try {
        return (await core.readNamespace({ name })).metadata?.labels ?? {};
      } catch (e) {
        const err = wrap(`read Namespace ${name}`, e);
        if (err.notFound) return undefined;
        throw err;
      }
    },
    async listKubeletVersions() {
      try {
        const nodes = await core.listNode();
        return nodes.items.map((n) => n.status?.nodeInfo?.kubeletVersion ?? "").filter(Boolean);
      } catch (e) {
        throw wrap("list Nodes", e);
      }
    },
    async reviewToken(token) {
      try {
        // The token goes only into the review's spec; no message here ever carries it.
        const review = await authentication.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } } });
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
    async canGetNamespace(user, name) {
      const extra: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(user.extra ?? {})) extra[k] = [...v];
      try {
        const review = await authorization.createSubjectAccessReview({
          body: {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: {
              user: user.username,
              ...(user.uid ? { uid: user.uid } : {}),
              ...(user.groups ? { groups: [...user.groups] } : {}),
              ...(user.extra ? { extra } : {}),
              resourceAttributes: { verb: "get", group: "", version: "v1", resource: "namespaces", name, namespace: name },
            },
          },
        });
        return review.status?.allowed === true;
      } catch (e) {
        throw wrap(`create SubjectAccessReview for Namespace ${name}`, e);
      }
    },
  };
}

/** KUBECONFIG (or ~/.kube/config) when present, else the in-cluster service account. */
export function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (e) {
    const from = process.env.KUBECONFIG ? `KUBECONFIG=${process.env.KUBECONFIG}` : "~/.kube/config or the in-cluster service account";
    throw new KubeError(`cannot load Kubernetes credentials from ${from}: ${e instanceof Error ? e.message : String(e)}`, undefined);
  }
  return kc;
}
