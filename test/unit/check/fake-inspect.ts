// An in-memory cluster for `check`: namespaces, Pods, workloads and MutatingWebhookConfigurations,
// and the webhooks of this chart and of istiod as they are installed (selectors as in
// charts/sidecar-injector/templates/mutatingwebhookconfiguration.yaml and Istio's
// istio-discovery chart), to build clusters from.
import type {
  AdmissionPolicies,
  AdmissionWebhook,
  DeploymentObject,
  InspectApi,
  MutatingWebhookConfigurationObject,
  NamespaceObject,
  ServedVersion,
  StoredObject,
} from "../../../src/kube/api.js";
import type { Pod } from "../../../src/kube/types.js";

export class FakeInspect implements InspectApi {
  namespaces: NamespaceObject[] = [];
  objects: StoredObject[] = [];
  configs: MutatingWebhookConfigurationObject[] = [];
  /** ConfigMaps' data by "namespace/name"; an Error is thrown as the API server's refusal. */
  configMaps = new Map<string, Record<string, string> | Error>();
  /** The nodes' kubelet versions; an Error is thrown as the API server's refusal. */
  nodeVersions: string[] | Error = [];
  /** The MutatingAdmissionPolicies and bindings; undefined: the API is not served; an Error is thrown. */
  admissionPolicies: AdmissionPolicies | undefined | Error = undefined;
  /** Deployments (the injector's); an Error is thrown as the API server's refusal. */
  deployments: DeploymentObject[] | Error = [];
  /** Discovery: each group's served versions (absent: none); an Error is thrown as the API server's refusal. */
  servedVersions = new Map<string, ServedVersion[] | Error>();
  /** Calls made, by method name, to check what was read. */
  calls: string[] = [];

  async readNamespace(name: string): Promise<NamespaceObject | undefined> {
    this.calls.push(`readNamespace ${name}`);
    return this.namespaces.find((n) => n.name === name);
  }
  async listNamespaces(): Promise<NamespaceObject[]> {
    this.calls.push("listNamespaces");
    return [...this.namespaces];
  }
  async readObject(kind: StoredObject["kind"], namespace: string, name: string): Promise<StoredObject | undefined> {
    this.calls.push(`readObject ${kind} ${namespace}/${name}`);
    return this.objects.find((o) => o.kind === kind && o.namespace === namespace && o.name === name);
  }
  async listPods(namespace: string | undefined, labelSelector?: string): Promise<StoredObject[]> {
    this.calls.push(`listPods ${namespace ?? "*"} ${labelSelector ?? ""}`.trim());
    const want = (labelSelector ?? "")
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]);
    return this.objects.filter(
      (o) =>
        o.kind === "Pod" &&
        (namespace === undefined || o.namespace === namespace) &&
        want.every(([k, v]) => o.pod.metadata?.labels?.[k] === v),
    );
  }
  async listMutatingWebhookConfigurations(): Promise<MutatingWebhookConfigurationObject[]> {
    this.calls.push("listMutatingWebhookConfigurations");
    return [...this.configs];
  }
  async readConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    this.calls.push(`readConfigMap ${namespace}/${name}`);
    const found = this.configMaps.get(`${namespace}/${name}`);
    if (found instanceof Error) throw found;
    return found;
  }
  async listMutatingAdmissionPolicies(): Promise<AdmissionPolicies | undefined> {
    this.calls.push("listMutatingAdmissionPolicies");
    if (this.admissionPolicies instanceof Error) throw this.admissionPolicies;
    return this.admissionPolicies;
  }
  async listDeployments(labelSelector: string): Promise<DeploymentObject[]> {
    this.calls.push(`listDeployments ${labelSelector}`);
    if (this.deployments instanceof Error) throw this.deployments;
    return [...this.deployments];
  }
  async listServedVersions(group: string): Promise<ServedVersion[]> {
    this.calls.push(`listServedVersions ${group}`);
    const found = this.servedVersions.get(group) ?? [];
    if (found instanceof Error) throw found;
    return [...found];
  }
  async listNodeVersions(): Promise<string[]> {
    this.calls.push("listNodeVersions");
    if (this.nodeVersions instanceof Error) throw this.nodeVersions;
    return [...this.nodeVersions];
  }
}

export function pod(
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
  extra: { annotations?: Record<string, string>; hostNetwork?: boolean; containers?: string[] } = {},
): StoredObject {
  const p: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels, annotations: extra.annotations ?? {} },
    spec: {
      containers: (extra.containers ?? ["app"]).map((n) => ({ name: n, image: "nginx" })),
      ...(extra.hostNetwork ? { hostNetwork: true } : {}),
    },
  };
  return { kind: "Pod", namespace, name, pod: p };
}

const PODS_CREATE = [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }];
const EXCLUDED = (own: string) => ({
  key: "kubernetes.io/metadata.name",
  operator: "NotIn",
  values: [own, "kube-system"],
});
const NOT_OPTED_OUT = { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] };

/** The four webhooks of an Istio-style injector for `revision` (the namespace one only for default). */
export function istioStyleWebhooks(domain: string, revision: string, ownNamespace: string): AdmissionWebhook[] {
  const hook = (
    name: string,
    namespaceSelector: AdmissionWebhook["namespaceSelector"],
    objectSelector: AdmissionWebhook["objectSelector"],
  ): AdmissionWebhook => ({
    name: `${name}.${domain}`,
    rules: PODS_CREATE,
    ...(namespaceSelector ? { namespaceSelector } : {}),
    ...(objectSelector ? { objectSelector } : {}),
    matchConditions: [],
  });
  const hooks = [
    hook(
      "rev.namespace",
      {
        matchExpressions: [
          { key: "istio.io/rev", operator: "In", values: [revision] },
          { key: "istio-injection", operator: "DoesNotExist" },
          EXCLUDED(ownNamespace),
        ],
      },
      { matchExpressions: [NOT_OPTED_OUT] },
    ),
    hook(
      "rev.object",
      {
        matchExpressions: [
          { key: "istio.io/rev", operator: "DoesNotExist" },
          { key: "istio-injection", operator: "DoesNotExist" },
          EXCLUDED(ownNamespace),
        ],
      },
      { matchExpressions: [NOT_OPTED_OUT, { key: "istio.io/rev", operator: "In", values: [revision] }] },
    ),
  ];
  if (revision === "default") {
    hooks.push(
      hook(
        "namespace",
        { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }, EXCLUDED(ownNamespace)] },
        { matchExpressions: [NOT_OPTED_OUT] },
      ),
      hook(
        "object",
        {
          matchExpressions: [
            { key: "istio-injection", operator: "DoesNotExist" },
            { key: "istio.io/rev", operator: "DoesNotExist" },
            EXCLUDED(ownNamespace),
          ],
        },
        {
          matchExpressions: [
            { key: "sidecar.istio.io/inject", operator: "In", values: ["true"] },
            { key: "istio.io/rev", operator: "DoesNotExist" },
          ],
        },
      ),
    );
  }
  return hooks;
}

/** This chart's configuration: its webhooks call the Service sidecar-injector-system/sidecar-injector (its ConfigMap's
 * name too). */
export function ours(revision = "default"): MutatingWebhookConfigurationObject {
  const clientConfig = { service: { name: "sidecar-injector", namespace: "sidecar-injector-system", path: "/inject" } };
  return {
    name: "sidecar-injector",
    labels: { "app.kubernetes.io/name": "sidecar-injector" },
    webhooks: istioStyleWebhooks("injector.sidecar-injector.dev", revision, "sidecar-injector-system").map((w) => ({
      ...w,
      clientConfig,
    })),
  };
}

export function istiod(revision = "default"): MutatingWebhookConfigurationObject {
  return {
    name: revision === "default" ? "istio-sidecar-injector" : `istio-sidecar-injector-${revision}`,
    labels: { app: "sidecar-injector", "istio.io/rev": revision },
    webhooks: istioStyleWebhooks("sidecar-injector.istio.io", revision, "istio-system"),
  };
}

/**
 * A revision tag's configuration pointing at `revision`: this chart's (`<fullname>-tag-<tag>`,
 * calling its Service) or istiod's (`istio-revision-tag-<tag>`), labelled istio.io/tag and
 * istio.io/rev, with Istio's tag webhooks (the tag default: the default revision's too).
 */
export function tag(
  name: string,
  revision: string,
  by: "ours" | "istiod" = "ours",
): MutatingWebhookConfigurationObject {
  if (by === "istiod")
    return {
      name: `istio-revision-tag-${name}`,
      labels: { app: "sidecar-injector", "istio.io/tag": name, "istio.io/rev": revision },
      webhooks: istioStyleWebhooks("sidecar-injector.istio.io", name, "istio-system"),
    };
  const main = ours(name);
  return {
    name: `sidecar-injector-tag-${name}`,
    labels: { ...main.labels, "istio.io/tag": name, "istio.io/rev": revision },
    webhooks: main.webhooks,
  };
}
