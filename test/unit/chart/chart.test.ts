// The Helm chart (charts/sidecar-injector), rendered with a real helm: lint, the objects and
// the properties that matter (Istio's webhook selectors, restricted security context,
// least-privilege RBAC, TLS modes), and the values the schema refuses.
//
// helm comes from HELM, else from scripts/test-bins.sh (which may build it with Go). When
// neither works the tests are skipped with a loud message, unless
// SIDECAR_INJECTOR_E2E_REQUIRED=1, which makes that a failure.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { parseConfig } from "../../../src/config/load.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, helmGate, run, type ExecResult } from "../../support/helm.js";
import { KUBE_API_CALLS } from "../../../src/kube/client.js";
import { runCli } from "../../support/run.js";

const RELEASE = "si";
const NAMESPACE = "mesh-injector";
const FULLNAME = "si-sidecar-injector";
const WEBHOOK_DOMAIN = "injector.sidecar-injector.dev";

// ---------------------------------------------------------------------------
// Running helm

const { lookup, skip } = await helmGate("the Helm chart tests");

// ---------------------------------------------------------------------------
// Rendered objects, as far as these tests look into them

interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
}

interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

interface Webhook {
  name: string;
  clientConfig: {
    url?: string;
    caBundle?: string;
    service?: { name: string; namespace: string; path?: string; port?: number };
  };
  rules: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }[];
  sideEffects: string;
  admissionReviewVersions: string[];
  failurePolicy: string;
  timeoutSeconds: number;
  reinvocationPolicy: string;
  matchPolicy: string;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
}

interface WebhookConfiguration extends KubeObject {
  webhooks: Webhook[];
}

interface Probe {
  httpGet: { path: string; port: string | number; scheme: string };
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args: string[];
  env?: { name: string; valueFrom?: unknown; value?: string }[];
  ports: { name: string; containerPort: number; protocol?: string }[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  securityContext: Record<string, unknown>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  secret?: { secretName: string };
  configMap?: { name: string };
}

interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Volume[];
  terminationGracePeriodSeconds: number;
  priorityClassName?: string;
  imagePullSecrets?: { name: string }[];
  topologySpreadConstraints?: {
    maxSkew: number;
    topologyKey: string;
    whenUnsatisfiable: string;
    labelSelector: LabelSelector;
  }[];
  affinity?: {
    podAntiAffinity?: {
      preferredDuringSchedulingIgnoredDuringExecution?: {
        weight: number;
        podAffinityTerm: { topologyKey: string; labelSelector: LabelSelector };
      }[];
    };
  };
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
}

interface Deployment extends KubeObject {
  spec: { replicas: number; selector: LabelSelector; template: { metadata: Metadata; spec: PodSpec } };
}

interface Service extends KubeObject {
  spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] };
}

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface Role extends KubeObject {
  rules: PolicyRule[];
}

interface Binding extends KubeObject {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
}

interface ConfigMap extends KubeObject {
  data: Record<string, string>;
}

interface PodDisruptionBudget extends KubeObject {
  spec: { minAvailable: number | string; selector: LabelSelector };
}

interface Certificate extends KubeObject {
  spec: { secretName: string; dnsNames: string[]; ipAddresses?: string[]; issuerRef: { name: string; kind: string } };
}

class Rendered {
  constructor(readonly objects: KubeObject[]) {}

  kinds(): string[] {
    return [...new Set(this.objects.map((o) => o.kind))].sort();
  }

  all(kind: string): KubeObject[] {
    return this.objects.filter((o) => o.kind === kind);
  }

  /** The one object of this kind; fails when there is none or several. */
  one<T extends KubeObject>(kind: string): T {
    const found = this.all(kind);
    assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
    return found[0] as T;
  }
}

let helmEnv: NodeJS.ProcessEnv = process.env;
let helmHome = "";

function helmPath(): string {
  assert.ok(lookup.ok, "helm is not available");
  return lookup.path;
}

function helm(args: readonly string[]): Promise<ExecResult> {
  return run(helmPath(), args, HELM_TIMEOUT_MS, helmEnv);
}

async function template(set: readonly string[] = [], extra: readonly string[] = []): Promise<Rendered> {
  const args = ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION, ...extra];
  if (set.length > 0) args.push("--set", set.join(","));
  const r = await helm(args);
  assert.equal(r.code, 0, `helm ${args.join(" ")} failed:\n${r.stderr}`);
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    assert.deepEqual(doc.errors, [], "helm template printed invalid YAML");
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    assert.ok(
      typeof value === "object" && "kind" in value && "metadata" in value,
      `not a Kubernetes object: ${String(doc)}`,
    );
    objects.push(value as KubeObject);
  }
  return new Rendered(objects);
}

// ---------------------------------------------------------------------------
// What the webhooks must select: Istio's table (istio-reference.md, section 1), in the order
// of Istio's template, plus the exclusion of our own namespace and kube-system.

const exclusion: LabelSelectorRequirement = {
  key: "kubernetes.io/metadata.name",
  operator: "NotIn",
  values: [NAMESPACE, "kube-system"],
};
const notOptedOut: LabelSelectorRequirement = { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] };
const dne = (key: string): LabelSelectorRequirement => ({ key, operator: "DoesNotExist" });
const isIn = (key: string, value: string): LabelSelectorRequirement => ({ key, operator: "In", values: [value] });

interface Selectors {
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
}

function expectedSelectors(revision: string, enableNamespacesByDefault = false): Map<string, Selectors> {
  const hooks = new Map<string, Selectors>();
  hooks.set(`rev.namespace.${WEBHOOK_DOMAIN}`, {
    namespaceSelector: { matchExpressions: [isIn("istio.io/rev", revision), dne("istio-injection"), exclusion] },
    objectSelector: { matchExpressions: [notOptedOut] },
  });
  hooks.set(`rev.object.${WEBHOOK_DOMAIN}`, {
    namespaceSelector: { matchExpressions: [dne("istio.io/rev"), dne("istio-injection"), exclusion] },
    objectSelector: { matchExpressions: [notOptedOut, isIn("istio.io/rev", revision)] },
  });
  if (revision !== "default") return hooks;
  hooks.set(`namespace.${WEBHOOK_DOMAIN}`, {
    namespaceSelector: { matchExpressions: [isIn("istio-injection", "enabled"), exclusion] },
    objectSelector: { matchExpressions: [notOptedOut] },
  });
  hooks.set(`object.${WEBHOOK_DOMAIN}`, {
    namespaceSelector: { matchExpressions: [dne("istio-injection"), dne("istio.io/rev"), exclusion] },
    objectSelector: { matchExpressions: [isIn("sidecar.istio.io/inject", "true"), dne("istio.io/rev")] },
  });
  if (enableNamespacesByDefault) {
    hooks.set(`auto.${WEBHOOK_DOMAIN}`, {
      namespaceSelector: {
        matchExpressions: [
          dne("istio-injection"),
          dne("istio.io/rev"),
          {
            key: "kubernetes.io/metadata.name",
            operator: "NotIn",
            values: ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"],
          },
          exclusion,
        ],
      },
      objectSelector: { matchExpressions: [dne("sidecar.istio.io/inject"), dne("istio.io/rev")] },
    });
  }
  return hooks;
}

function assertSelectors(config: WebhookConfiguration, expected: Map<string, Selectors>): void {
  assert.deepEqual(
    config.webhooks.map((w) => w.name),
    [...expected.keys()],
  );
  for (const hook of config.webhooks) {
    const want = expected.get(hook.name);
    assert.ok(want);
    assert.deepEqual(hook.namespaceSelector, want.namespaceSelector, `${hook.name}: namespaceSelector`);
    assert.deepEqual(hook.objectSelector, want.objectSelector, `${hook.name}: objectSelector`);
  }
}

function injectorConfig(rendered: Rendered): Record<string, unknown> {
  const cm = rendered.one<ConfigMap>("ConfigMap");
  const text = cm.data["config.yaml"];
  assert.equal(typeof text, "string", "ConfigMap has no config.yaml");
  const parsed: unknown = parse(text!);
  assert.ok(parsed !== null && typeof parsed === "object" && !Array.isArray(parsed), "config.yaml is not a map");
  // The injector itself must accept what the chart writes.
  parseConfig(text!, "config.yaml");
  return parsed as Record<string, unknown>;
}

// ---------------------------------------------------------------------------

/** `group/resource/verb` of every rule granted to the injector's own ServiceAccount. */
function grantedCalls(r: Rendered): string[] {
  const roles = [
    ...r.all("Role").filter((x) => !x.metadata.name.endsWith("-preview")),
    ...r.all("ClusterRole"),
  ] as Role[];
  const out = new Set<string>();
  for (const role of roles)
    for (const rule of role.rules)
      for (const g of rule.apiGroups)
        for (const res of rule.resources) for (const v of rule.verbs) out.add(`${g}/${res}/${v}`);
  return [...out].sort();
}

function expectedCalls(when: readonly string[]): string[] {
  return [
    ...new Set(KUBE_API_CALLS.filter((c) => when.includes(c.when)).map((c) => `${c.apiGroup}/${c.resource}/${c.verb}`)),
  ].sort();
}

describe("Helm chart charts/sidecar-injector", { skip }, () => {
  before(async () => {
    // helm's own config, cache and data in a temporary folder; no cluster is ever contacted.
    helmHome = await mkdtemp(join(tmpdir(), "sidecar-injector-chart-"));
    const kubeconfig = join(helmHome, "kubeconfig");
    await writeFile(kubeconfig, "");
    helmEnv = {
      ...process.env,
      HELM_CACHE_HOME: join(helmHome, "cache"),
      HELM_CONFIG_HOME: join(helmHome, "config"),
      HELM_DATA_HOME: join(helmHome, "data"),
      KUBECONFIG: kubeconfig,
    };
  });

  after(async () => {
    if (helmHome) await rm(helmHome, { recursive: true, force: true });
  });

  test("helm lint passes, also with --strict and with non-default values", async () => {
    for (const args of [
      ["lint", CHART],
      ["lint", "--strict", CHART],
      [
        "lint",
        "--strict",
        CHART,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "revision=canary,tls.mode=certManager,webhook.url=https://127.0.0.1:9443/inject,webhook.enableNamespacesByDefault=false",
      ],
      [
        "lint",
        "--strict",
        CHART,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "webhook.enableNamespacesByDefault=true,replicaCount=1,podAntiAffinity=hard",
      ],
    ]) {
      const r = await helm(args);
      assert.equal(r.code, 0, `helm ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  describe("default values", () => {
    let rendered: Rendered;
    before(async () => {
      rendered = await template();
    });

    test("renders exactly the expected kinds, once each", () => {
      const expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "MutatingWebhookConfiguration",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ];
      assert.deepEqual(rendered.kinds(), expected);
      for (const kind of expected) if (kind !== "Role") rendered.one(kind);
      // Two Roles: the injector's own, and the one for calling /preview through the API server.
      assert.deepEqual(
        rendered
          .all("Role")
          .map((r) => r.metadata.name)
          .sort(),
        [FULLNAME, `${FULLNAME}-preview`],
      );
      for (const o of rendered.objects) {
        assert.equal(o.metadata.labels?.["app.kubernetes.io/name"], "sidecar-injector", `${o.kind} labels`);
        assert.equal(o.metadata.labels?.["app.kubernetes.io/instance"], RELEASE, `${o.kind} labels`);
        assert.equal(o.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm", `${o.kind} labels`);
        const clusterScoped = ["ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"].includes(o.kind);
        assert.equal(o.metadata.namespace, clusterScoped ? undefined : NAMESPACE, `${o.kind} namespace`);
      }
    });

    test("Deployment: 2 replicas, the serve command, probes, resources, volumes", () => {
      const d = rendered.one<Deployment>("Deployment");
      assert.equal(d.metadata.name, FULLNAME);
      assert.equal(d.spec.replicas, 2);
      const pod = d.spec.template;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels ?? {})) assert.equal(pod.metadata.labels?.[k], v);
      assert.equal(pod.metadata.labels?.["sidecar.istio.io/inject"], "false");
      assert.match(pod.metadata.annotations?.["checksum/config"] ?? "", /^[0-9a-f]{64}$/);
      assert.equal(pod.spec.serviceAccountName, rendered.one("ServiceAccount").metadata.name);
      assert.equal(pod.spec.terminationGracePeriodSeconds, 30);
      assert.equal(pod.spec.priorityClassName, undefined);
      assert.equal(pod.spec.imagePullSecrets, undefined);

      assert.equal(pod.spec.containers.length, 1);
      const c = pod.spec.containers[0]!;
      assert.equal(c.image, "ghcr.io/sidecar-injector/sidecar-injector:0.1.0");
      // The image's ENTRYPOINT is `node dist/cli.js`: the chart passes arguments only.
      assert.equal(c.command, undefined);
      assert.deepEqual(c.args, [
        "serve",
        "--config",
        "/etc/sidecar-injector/config.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        "9443",
        "--admin-port",
        "9444",
        // tls.mode self (the default): the injector manages its own certificates.
        "--cert-mode",
        "kubernetes",
        "--service",
        FULLNAME,
        "--webhook-config",
        FULLNAME,
        "--ca-secret",
        `${FULLNAME}-ca`,
        "--ca-validity",
        "5y",
        "--serving-validity",
        "7d",
        "--ca-bundle-propagation",
        "10s",
        "--ca-renew-when-left",
        "1/3",
        "--serving-renew-after",
        "2/3",
        "--log-level",
        "info",
        // Not ready until warm (serve --warm-up).
        "--warm-up",
        "5s",
        // One serving process per CPU of the limit (1 by default).
        "--workers",
        "1",
      ]);
      assert.deepEqual(c.env, [
        { name: "NODE_OPTIONS", value: "--max-old-space-size=192 --max-semi-space-size=8" },
        { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      ]);
      assert.deepEqual(c.ports, [
        { name: "https", containerPort: 9443, protocol: "TCP" },
        { name: "admin", containerPort: 9444, protocol: "TCP" },
      ]);
      assert.deepEqual(c.livenessProbe.httpGet, { path: "/healthz", port: "https", scheme: "HTTPS" });
      assert.deepEqual(c.readinessProbe.httpGet, { path: "/readyz", port: "https", scheme: "HTTPS" });
      assert.deepEqual(c.resources, {
        requests: { cpu: "100m", memory: "160Mi" },
        limits: { cpu: "1", memory: "384Mi" },
      });

      const mounts = new Map(c.volumeMounts.map((m) => [m.mountPath, m]));
      const volumes = new Map(pod.spec.volumes.map((v) => [v.name, v]));
      const volumeAt = (path: string): Volume => {
        const mount = mounts.get(path);
        assert.ok(mount, `nothing mounted at ${path}`);
        const volume = volumes.get(mount.name);
        assert.ok(volume, `no volume ${mount.name}`);
        return volume;
      };
      assert.ok(volumeAt("/tmp").emptyDir, "/tmp is an emptyDir");
      assert.equal(mounts.get("/etc/sidecar-injector/tls"), undefined, "no certificate files in self mode");
      assert.equal(
        volumeAt("/etc/sidecar-injector/config.yaml").configMap?.name,
        rendered.one("ConfigMap").metadata.name,
      );
      assert.equal(mounts.get("/etc/sidecar-injector/config.yaml")?.subPath, "config.yaml");
    });

    test("Deployment: restricted security context", () => {
      const pod = rendered.one<Deployment>("Deployment").spec.template.spec;
      assert.deepEqual(pod.securityContext, {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: "RuntimeDefault" },
      });
      const sc = pod.containers[0]!.securityContext;
      assert.equal(sc.allowPrivilegeEscalation, false);
      assert.equal(sc.readOnlyRootFilesystem, true);
      assert.deepEqual(sc.capabilities, { drop: ["ALL"] });
      assert.notEqual(sc.privileged, true);
    });

    test("Deployment: spread across nodes, softly", () => {
      const d = rendered.one<Deployment>("Deployment");
      const pod = d.spec.template.spec;
      const selector = d.spec.selector.matchLabels;
      assert.deepEqual(pod.topologySpreadConstraints, [
        {
          maxSkew: 1,
          topologyKey: "kubernetes.io/hostname",
          whenUnsatisfiable: "ScheduleAnyway",
          labelSelector: { matchLabels: selector },
        },
      ]);
      const preferred = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
      assert.ok(preferred && preferred.length === 1, "one preferred podAntiAffinity term");
      assert.equal(preferred[0]!.podAffinityTerm.topologyKey, "kubernetes.io/hostname");
      assert.deepEqual(preferred[0]!.podAffinityTerm.labelSelector, { matchLabels: selector });
      assert.equal(pod.nodeSelector, undefined);
      assert.equal(pod.tolerations, undefined);
    });

    test("Service 443 -> https and 8443 -> admin; PodDisruptionBudget minAvailable 1; all select the Pods", () => {
      const d = rendered.one<Deployment>("Deployment");
      const svc = rendered.one<Service>("Service");
      assert.equal(svc.metadata.name, FULLNAME);
      assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
      assert.deepEqual(
        svc.spec.ports.map((p) => [p.port, p.targetPort]),
        [
          [443, "https"],
          [8443, "admin"],
        ],
      );
      const pdb = rendered.one<PodDisruptionBudget>("PodDisruptionBudget");
      assert.equal(pdb.spec.minAvailable, 1);
      assert.deepEqual(pdb.spec.selector, d.spec.selector);
    });

    test("RBAC: exactly the calls the code makes (KUBE_API_CALLS), Secrets and our webhook configuration by name", () => {
      assert.deepEqual(grantedCalls(rendered), expectedCalls(["always", "self-managed"]));
      const sa = rendered.one("ServiceAccount").metadata.name;
      const role = rendered.all("Role").find((r) => r.metadata.name === FULLNAME) as Role;
      const named = role.rules.filter((r) => r.resourceNames !== undefined);
      assert.deepEqual(
        named.map((r) => r.resourceNames),
        [[`${FULLNAME}-ca`]],
      );
      assert.deepEqual(
        role.rules.filter((r) => r.resourceNames === undefined).map((r) => r.verbs),
        [["create"]],
        "only create is granted without resourceNames",
      );

      const clusterRole = rendered.one<Role>("ClusterRole");
      const mwc = clusterRole.rules.find((r) => r.resources.includes("mutatingwebhookconfigurations"));
      assert.deepEqual(mwc?.resourceNames, [rendered.one("MutatingWebhookConfiguration").metadata.name]);
      for (const r of clusterRole.rules)
        if (!r.resources.includes("mutatingwebhookconfigurations")) assert.equal(r.resourceNames, undefined);

      const binding = rendered.one<Binding>("RoleBinding");
      assert.deepEqual(binding.roleRef, {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: role.metadata.name,
      });
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
      const clusterBinding = rendered.one<Binding>("ClusterRoleBinding");
      assert.deepEqual(clusterBinding.roleRef, {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: clusterRole.metadata.name,
      });
      assert.deepEqual(clusterBinding.subjects, [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);
    });

    test("NetworkPolicy: the webhook port open, the admin port closed; preStop sleep inside the grace period", () => {
      const np = rendered.one<
        KubeObject & {
          spec: {
            podSelector: { matchLabels: Record<string, string> };
            ingress: { from?: unknown[]; ports: { port: string }[] }[];
          };
        }
      >("NetworkPolicy");
      const d = rendered.one<Deployment>("Deployment");
      assert.deepEqual(np.spec.podSelector.matchLabels, d.spec.selector.matchLabels);
      assert.deepEqual(np.spec.ingress, [{ ports: [{ port: "https", protocol: "TCP" }] }]);
      const pod = d.spec.template.spec as unknown as {
        terminationGracePeriodSeconds: number;
        containers: { lifecycle?: { preStop?: { sleep?: { seconds: number } } } }[];
      };
      const sleep = pod.containers[0]?.lifecycle?.preStop?.sleep?.seconds;
      assert.equal(sleep, 5);
      // preStop, then the drain (at most 15 s), then the exit.
      assert.ok(pod.terminationGracePeriodSeconds >= sleep + 15 + 5, `grace ${pod.terminationGracePeriodSeconds}`);
    });

    test("ConfigMap: config.yaml is a config the injector accepts, with the revision", () => {
      assert.deepEqual(injectorConfig(rendered), { revision: "default" });
    });

    test("MutatingWebhookConfiguration: Istio's webhooks and selectors, plus our exclusions", () => {
      const mwc = rendered.one<WebhookConfiguration>("MutatingWebhookConfiguration");
      assert.equal(mwc.metadata.name, FULLNAME);
      assert.equal(mwc.metadata.annotations?.["cert-manager.io/inject-ca-from"], undefined);
      assertSelectors(mwc, expectedSelectors("default"));
      for (const hook of mwc.webhooks) {
        assert.deepEqual(
          hook.rules,
          [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          hook.name,
        );
        assert.equal(hook.sideEffects, "None");
        assert.deepEqual(hook.admissionReviewVersions, ["v1"]);
        assert.equal(hook.failurePolicy, "Fail");
        assert.equal(hook.timeoutSeconds, 10);
        assert.equal(hook.reinvocationPolicy, "Never");
        assert.equal(hook.matchPolicy, "Equivalent");
        assert.deepEqual(
          hook.clientConfig,
          { service: { name: FULLNAME, namespace: NAMESPACE, path: "/inject", port: 443 } },
          hook.name,
        );
      }
    });
  });

  describe("non-default values", () => {
    const set = [
      "webhook.url=https://127.0.0.1:9443/inject",
      "webhook.failurePolicy=Ignore",
      "revision=canary",
      "webhook.timeoutSeconds=5",
      "webhook.reinvocationPolicy=IfNeeded",
      "tls.mode=certManager",
    ];
    let rendered: Rendered;
    before(async () => {
      rendered = await template(set);
    });

    test("webhooks call the URL, not the Service, with the values' policies", () => {
      const mwc = rendered.one<WebhookConfiguration>("MutatingWebhookConfiguration");
      for (const hook of mwc.webhooks) {
        assert.deepEqual(hook.clientConfig, { url: "https://127.0.0.1:9443/inject" }, hook.name);
        assert.equal(hook.failurePolicy, "Ignore");
        assert.equal(hook.timeoutSeconds, 5);
        assert.equal(hook.reinvocationPolicy, "IfNeeded");
      }
    });

    test("a revision other than default gets the revision webhooks only, selecting canary", () => {
      assertSelectors(rendered.one<WebhookConfiguration>("MutatingWebhookConfiguration"), expectedSelectors("canary"));
      assert.deepEqual(injectorConfig(rendered), { revision: "canary" });
    });

    test("tls.mode=certManager: Issuers, Certificates, and the caBundle injected from the serving one", () => {
      assert.ok(rendered.all("Issuer").length >= 1, "an Issuer");
      const certs = rendered.all("Certificate") as Certificate[];
      const deployment = rendered.one<Deployment>("Deployment");
      const tlsVolume = deployment.spec.template.spec.volumes.find((v) => v.name === "tls");
      const serving = certs.find((c) => c.spec.secretName === tlsVolume?.secret?.secretName);
      assert.ok(serving, "a Certificate issues the Secret the Deployment mounts");
      assert.deepEqual(serving.spec.dnsNames.slice(0, 3), [
        FULLNAME,
        `${FULLNAME}.${NAMESPACE}`,
        `${FULLNAME}.${NAMESPACE}.svc`,
      ]);
      assert.deepEqual(serving.spec.ipAddresses, ["127.0.0.1"], "the URL's host is in the certificate");
      const issuers = new Set(rendered.all("Issuer").map((i) => i.metadata.name));
      assert.ok(issuers.has(serving.spec.issuerRef.name), "the serving Certificate's issuer is rendered");
      const mwc = rendered.one<WebhookConfiguration>("MutatingWebhookConfiguration");
      assert.equal(
        mwc.metadata.annotations?.["cert-manager.io/inject-ca-from"],
        `${NAMESPACE}/${serving.metadata.name}`,
      );
      for (const hook of mwc.webhooks) assert.equal(hook.clientConfig.caBundle, undefined);
    });
  });

  test("enableNamespacesByDefault adds Istio's auto webhook", async () => {
    const rendered = await template(["webhook.enableNamespacesByDefault=true"]);
    assertSelectors(
      rendered.one<WebhookConfiguration>("MutatingWebhookConfiguration"),
      expectedSelectors("default", true),
    );
  });

  test("caBundle (tls.mode secret): PEM is base64-encoded, base64 is kept", async () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const dir = await mkdtemp(join(tmpdir(), "sidecar-injector-ca-"));
    try {
      const file = join(dir, "ca.crt");
      await writeFile(file, pem);
      const fromPem = await template(["tls.mode=secret"], ["--set-file", `webhook.caBundle=${file}`]);
      for (const hook of fromPem.one<WebhookConfiguration>("MutatingWebhookConfiguration").webhooks) {
        assert.equal(Buffer.from(hook.clientConfig.caBundle ?? "", "base64").toString("utf8"), pem.trim());
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const b64 = Buffer.from(pem).toString("base64");
    const fromB64 = await template(["tls.mode=secret", `webhook.caBundle=${b64}`]);
    for (const hook of fromB64.one<WebhookConfiguration>("MutatingWebhookConfiguration").webhooks) {
      assert.equal(hook.clientConfig.caBundle, b64);
    }
  });

  test("a config change changes the Pods' checksum, so they roll", async () => {
    const checksum = async (set: string[]): Promise<string | undefined> =>
      (await template(set)).one<Deployment>("Deployment").spec.template.metadata.annotations?.["checksum/config"];
    const before = await checksum([]);
    const after = await checksum(["config.policy=disabled"]);
    assert.ok(before && after);
    assert.notEqual(before, after);
  });

  test("PodDisruptionBudget: any budget that leaves one replica to evict is rendered", async () => {
    for (const [set, minAvailable] of [
      [["podDisruptionBudget.minAvailable=50%"], "50%"],
      [["podDisruptionBudget.minAvailable=0"], 0],
      [["replicaCount=4", "podDisruptionBudget.minAvailable=3"], 3],
      [["replicaCount=4", "podDisruptionBudget.minAvailable=75%"], "75%"],
    ] as const) {
      const pdb = (await template([...set])).one<PodDisruptionBudget>("PodDisruptionBudget");
      assert.equal(pdb.spec.minAvailable, minAvailable, set.join(","));
    }
    // A single replica gets no budget at all, whatever minAvailable says.
    const single = await template(["replicaCount=1", "podDisruptionBudget.minAvailable=5"]);
    assert.equal(single.all("PodDisruptionBudget").length, 0);
  });

  test("other values: webhook off, one replica, scheduling and image settings", async () => {
    const rendered = await template([
      "webhook.enabled=false",
      "replicaCount=1",
      "priorityClassName=system-cluster-critical",
      "imagePullSecrets[0].name=regcred",
      "nodeSelector.kubernetes\\.io/os=linux",
      "image.tag=9.9.9",
      "podAntiAffinity=none",
      "topologySpread.enabled=false",
    ]);
    assert.equal(rendered.all("MutatingWebhookConfiguration").length, 0);
    assert.equal(rendered.all("PodDisruptionBudget").length, 0, "no budget on a single replica: it would block drains");
    const d = rendered.one<Deployment>("Deployment");
    const pod = d.spec.template.spec;
    assert.equal(d.spec.replicas, 1);
    assert.equal(pod.priorityClassName, "system-cluster-critical");
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.deepEqual(pod.nodeSelector, { "kubernetes.io/os": "linux" });
    assert.equal(pod.containers[0]!.image, "ghcr.io/sidecar-injector/sidecar-injector:9.9.9");
    assert.equal(pod.affinity, undefined);
    assert.equal(pod.topologySpreadConstraints, undefined);
  });

  test("values the schema refuses stop helm template with a message naming the value", async () => {
    const refused: [string, RegExp][] = [
      ["webhook.failurePolicy=Sometimes", /webhook\/failurePolicy/],
      ["webhook.url=http://x", /webhook\/url/],
      ["webhook.reinvocationPolicy=Always", /webhook\/reinvocationPolicy/],
      ["webhook.timeoutSeconds=31", /webhook\/timeoutSeconds/],
      ["tls.mode=files", /tls\/mode/],
      ["tls.self.servingValidity=soon", /tls\/self\/servingValidity/],
      ["replicaCount=-1", /replicaCount/],
      ["revision=Not_A_Label", /revision/],
      ["webhok.enabled=true", /webhok/],
      ["workers=0", /workers/],
      ["workers=-2", /workers/],
      ["workers=many", /workers/],
      ["workers=65", /workers/],
      // What the API server would refuse: int32 fields, a liveness probe's successThreshold
      // other than 1, a budget above 100%.
      ["replicaCount=2147483648", /replicaCount/],
      ["livenessProbe.successThreshold=2", /livenessProbe\/successThreshold/],
      ["readinessProbe.periodSeconds=3000000000", /readinessProbe\/periodSeconds/],
      ["topologySpread.maxSkew=2147483648", /topologySpread\/maxSkew/],
      ["podDisruptionBudget.minAvailable=101%", /podDisruptionBudget\/minAvailable/],
      ["podDisruptionBudget.minAvailable=1000%", /podDisruptionBudget\/minAvailable/],
    ];
    for (const [value, re] of refused) {
      const r = await helm([
        "template",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        value,
      ]);
      assert.notEqual(r.code, 0, `--set ${value} was accepted`);
      assert.match(r.stderr, re, `--set ${value}`);
    }
    // Their neighbours are accepted: a readiness probe may need several successes.
    const d = (
      await template([
        "replicaCount=2147483647",
        "livenessProbe.successThreshold=1",
        "readinessProbe.successThreshold=2",
        "podDisruptionBudget.minAvailable=050%",
      ])
    ).one<Deployment>("Deployment");
    assert.equal(d.spec.replicas, 2147483647);
  });

  test("heap limits well under the memory limit are rendered; a limit not read is left alone", async () => {
    const nodeOptions = async (set: string[]): Promise<string | undefined> =>
      (await template(set))
        .one<Deployment>("Deployment")
        .spec.template.spec.containers[0]!.env?.find((e) => e.name === "NODE_OPTIONS")?.value;
    for (const set of [
      ["maxHeapMiB=200"],
      ["resources.limits.memory=376Mi"],
      // Fractions are read as such (0.6Gi is 614Mi, not 0).
      ["resources.limits.memory=0.6Gi"],
      ["resources.limits.memory=0.4G"],
      ["workers=2", "resources.limits.memory=0.7Gi"],
      ["maxSemiSpaceMiB=16", "resources.limits.memory=400Mi"],
      ["maxHeapMiB=1024", "resources.limits.memory=2Gi"],
      ["workers=2", "resources.limits.memory=608Mi"],
      ["resources.limits.memory=null"],
      ["resources.limits.memory=1e9"],
    ])
      assert.match(
        (await nodeOptions(set)) ?? "",
        /^--max-old-space-size=\d+ --max-semi-space-size=\d+$/,
        set.join(","),
      );
  });

  test("--workers: the CPU limit rounded down, at least 1, unless workers is set", async () => {
    const workers = async (set: string[]): Promise<string | undefined> => {
      const args = (await template(set)).one<Deployment>("Deployment").spec.template.spec.containers[0]!.args;
      const at = args.indexOf("--workers");
      assert.ok(at >= 0, "--workers passed");
      assert.equal(args.lastIndexOf("--workers"), at, "--workers passed once");
      return args[at + 1];
    };
    // Memory for up to 3 workers (160Mi + 224Mi each), checked below.
    const mem = "resources.limits.memory=1120Mi";
    const cases: [string[], string][] = [
      [["resources.limits.cpu=2", mem], "2"],
      [["resources.limits.cpu=2500m", mem], "2"],
      [["resources.limits.cpu=3.9", mem], "3"],
      [["resources.limits.cpu=500m"], "1"],
      [["resources.limits.cpu=0.5"], "1"],
      [["resources.limits.cpu=null"], "1"],
      [["resources.limits.cpu=4", "workers=2", "resources.limits.memory=1Gi"], "2"],
      [["workers=3", mem], "3"],
    ];
    for (const [set, expected] of cases) assert.equal(await workers(set), expected, set.join(","));
  });

  test("istioConfig: --istio-config instead of --config, and a Role for Istio's two ConfigMaps by name there", async () => {
    for (const [value, names, revision] of [
      ["istio-system", ["istio-sidecar-injector", "istio"], "default"],
      ["istio-system/default", ["istio-sidecar-injector", "istio"], "default"],
      ["mesh/canary", ["istio-sidecar-injector-canary", "istio-canary"], "canary"],
    ] as const) {
      const rendered = await template([`istioConfig=${value}`, `revision=${revision}`]);
      const args = rendered.one<Deployment>("Deployment").spec.template.spec.containers[0]!.args;
      assert.equal(args[args.indexOf("--istio-config") + 1], value);
      assert.ok(!args.includes("--config"), "the config file is not read as well");
      // Exactly the calls the code makes, the istio-config ones included.
      assert.deepEqual(grantedCalls(rendered), expectedCalls(["always", "self-managed", "istio-config"]));
      const name = `${FULLNAME}-istio-config`;
      const role = rendered.all("Role").find((r) => r.metadata.name === name) as Role;
      assert.equal(role.metadata.namespace, value.split("/")[0]);
      assert.deepEqual(role.rules, [
        { apiGroups: [""], resources: ["configmaps"], resourceNames: [...names], verbs: ["get", "watch"] },
      ]);
      const binding = rendered.all("RoleBinding").find((b) => b.metadata.name === name) as Binding;
      assert.equal(binding.metadata.namespace, value.split("/")[0]);
      assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name });
      assert.deepEqual(binding.subjects, [
        { kind: "ServiceAccount", name: rendered.one("ServiceAccount").metadata.name, namespace: NAMESPACE },
      ]);
    }
    const off = await template();
    assert.equal(
      off.all("Role").filter((r) => r.metadata.name.endsWith("-istio-config")).length,
      0,
      "no Role without istioConfig",
    );
    const bad = await helm(["template", RELEASE, CHART, "--set", "istioConfig=Istio System"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /istioConfig/);
  });

  test("the arguments the chart gives serve are ones serve takes, in every mode", async () => {
    // Each run ends at the first thing that needs the cluster (or the files of a mounted
    // Secret), never at a usage error; on 127.0.0.1 and free ports, not the Pod's.
    const dir = await mkdtemp(join(tmpdir(), "chart-args-"));
    after(() => rm(dir, { recursive: true, force: true }));
    const none = join(dir, "kubeconfig");
    await writeFile(
      none,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n" +
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    );
    for (const set of [
      [],
      ["revisionTags={prod}"],
      ["istioConfig=istio-system", "revisionTags={prod,stable}", "webhook.enableNamespacesByDefault=true"],
      ["tls.mode=certManager", "preStopSleepSeconds=0"],
      ["workers=2", "resources.limits.memory=1Gi", "logLevel=debug"],
    ]) {
      for (const kube of [KUBE_VERSION, "1.29.0"]) {
        const args = [
          ...(await template(set, ["--kube-version", kube])).one<Deployment>("Deployment").spec.template.spec
            .containers[0]!.args,
        ];
        args[args.indexOf("--host") + 1] = "127.0.0.1";
        args[args.indexOf("--port") + 1] = "0";
        args[args.indexOf("--admin-port") + 1] = "0";
        const r = await runCli(args, { env: { ...process.env, KUBECONFIG: none, KUBERNETES_SERVICE_HOST: "" } });
        const what = `${set.join(",") || "defaults"} (Kubernetes ${kube}): ${r.stderr.slice(0, 300)}`;
        assert.equal(r.code, 2, what);
        assert.doesNotMatch(r.stderr, /help serve|unknown option|Unknown option/i, what);
      }
    }
  });

  test("istioConfig: revision tags and the auto webhook, which Istio's ConfigMaps do not say, are passed to serve", async () => {
    const argsOf = async (set: string[]): Promise<string[]> =>
      (await template(set)).one<Deployment>("Deployment").spec.template.spec.containers[0]!.args;
    const args = await argsOf([
      "istioConfig=istio-system",
      "revisionTags={prod,stable}",
      "webhook.enableNamespacesByDefault=true",
    ]);
    const after = args.slice(args.indexOf("--istio-config"));
    assert.deepEqual(after.slice(0, 7), [
      "--istio-config",
      "istio-system",
      "--revision-tag",
      "prod",
      "--revision-tag",
      "stable",
      "--enable-namespaces-by-default",
    ]);
    const plain = await argsOf(["istioConfig=istio-system"]);
    assert.ok(!plain.includes("--revision-tag") && !plain.includes("--enable-namespaces-by-default"));
    // With config.yaml, which carries both, neither is given.
    const file = await argsOf(["revisionTags={prod}", "webhook.enableNamespacesByDefault=true"]);
    assert.ok(!file.includes("--revision-tag") && !file.includes("--enable-namespaces-by-default"));
  });

  test("istioConfig names the revision the webhooks select, and takes no config beside it", async () => {
    // The injector writes the revision of Istio's ConfigMaps into Pods; the webhooks select
    // `revision`: a difference would inject Pods with a revision no webhook of this release selects.
    const refused: [string[], RegExp][] = [
      [
        ["istioConfig=istio-system/canary"],
        /istioConfig istio-system\/canary follows the ConfigMaps of Istio's revision canary.* but revision is default, .*set revision=canary too \(or istioConfig=istio-system\/default\)/,
      ],
      [
        ["istioConfig=istio-system", "revision=canary"],
        /Istio's revision default.* but revision is canary, .*set revision=default too \(or istioConfig=istio-system\/canary\)/,
      ],
      [["istioConfig=mesh/blue", "revision=green"], /revision blue.*set revision=blue too/],
      [["istioConfig=istio-system", "config.policy=disabled"], /config is set with istioConfig: .*never reads config/],
    ];
    for (const [set, re] of refused) {
      const args = ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION];
      const r = await helm([...args, "--set", set.join(",")]);
      assert.notEqual(r.code, 0, `--set ${set.join(",")} was accepted`);
      assert.match(r.stderr, re, set.join(","));
    }
    // `--set config=null`, as the message says, clears it (also under --reuse-values).
    await template(["istioConfig=istio-system", "config=null"]);
    await template(["config=null"]);
  });

  test("preview RBAC: only the service proxy path of /preview, bound to the subjects given", async () => {
    const rendered = await template([
      "preview.rbac.subjects[0].kind=Group",
      "preview.rbac.subjects[0].name=platform",
      "preview.rbac.subjects[0].apiGroup=rbac.authorization.k8s.io",
    ]);
    const role = rendered.all("Role").find((r) => r.metadata.name === `${FULLNAME}-preview`) as Role;
    assert.deepEqual(role.rules, [
      {
        apiGroups: [""],
        resources: ["services/proxy"],
        resourceNames: [`https:${FULLNAME}:admin`, FULLNAME],
        verbs: ["create", "get"],
      },
    ]);
    const binding = rendered.all("RoleBinding").find((b) => b.metadata.name === `${FULLNAME}-preview`) as Binding;
    assert.deepEqual(binding.subjects, [{ kind: "Group", name: "platform", apiGroup: "rbac.authorization.k8s.io" }]);
    const off = await template(["preview.rbac.create=false"]);
    assert.equal(off.all("Role").length, 1);
  });

  test("tls.mode=secret: the serving certificate files come from the mounted Secret", async () => {
    const rendered = await template(["tls.mode=secret"]);
    const pod = rendered.one<Deployment>("Deployment").spec.template.spec;
    const c = pod.containers[0]!;
    const at = c.args.indexOf("--tls-cert");
    assert.deepEqual(c.args.slice(at, at + 4), [
      "--tls-cert",
      "/etc/sidecar-injector/tls/tls.crt",
      "--tls-key",
      "/etc/sidecar-injector/tls/tls.key",
    ]);
    assert.ok(!c.args.includes("--cert-mode"));
    const mount = c.volumeMounts.find((m) => m.mountPath === "/etc/sidecar-injector/tls");
    assert.equal(pod.volumes.find((v) => v.name === mount?.name)?.secret?.secretName, `${FULLNAME}-tls`);
  });

  test("NODE_OPTIONS: the heap and the young generation from maxHeapMiB and maxSemiSpaceMiB; the schema bounds both", async () => {
    const nodeOptions = (await template(["maxHeapMiB=256", "maxSemiSpaceMiB=16", "resources.limits.memory=512Mi"]))
      .one<Deployment>("Deployment")
      .spec.template.spec.containers[0]!.env?.find((e) => e.name === "NODE_OPTIONS");
    assert.equal(nodeOptions?.value, "--max-old-space-size=256 --max-semi-space-size=16");
    for (const value of ["maxSemiSpaceMiB=0", "maxSemiSpaceMiB=128", "maxHeapMiB=32"]) {
      const r = await helm([
        "template",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        value,
      ]);
      assert.notEqual(r.code, 0, `--set ${value} was accepted`);
      assert.match(r.stderr, /max(SemiSpace|Heap)MiB/, value);
    }
  });

  test("rollout strategy: a surge Pod first, but in place under required anti-affinity with 2 or more replicas", async () => {
    const strategy = async (set: string[]): Promise<unknown> =>
      ((await template(set)).one<Deployment>("Deployment").spec as unknown as { strategy: unknown }).strategy;
    const surge = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
    const inPlace = { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } };
    assert.deepEqual(await strategy([]), surge);
    assert.deepEqual(await strategy(["podAntiAffinity=none", "replicaCount=5"]), surge);
    // One replica per node: once every schedulable node runs one, a surge Pod is never scheduled.
    assert.deepEqual(await strategy(["podAntiAffinity=hard"]), inPlace);
    assert.deepEqual(await strategy(["podAntiAffinity=hard", "replicaCount=7"]), inPlace);
    // A single replica stopped first would leave no injector for the whole rollout.
    assert.deepEqual(await strategy(["podAntiAffinity=hard", "replicaCount=1"]), surge);
    // Required terms of one's own weigh as hard does; preferred ones do not.
    const own =
      "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey=topology.kubernetes.io/zone";
    assert.deepEqual(await strategy([own, "podAntiAffinity=soft"]), inPlace);
    assert.deepEqual(
      await strategy([
        "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
        "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=zone",
        "podAntiAffinity=hard",
      ]),
      surge,
    );
  });

  test("a fullname that cannot name the Service (a DNS-1035 label) is refused, naming fullnameOverride", async () => {
    for (const release of ["1st", "a.b", "9-sidecar-injector"]) {
      const r = await helm(["template", release, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]);
      assert.notEqual(r.code, 0, `release ${release} was accepted`);
      assert.match(r.stderr, /the Service would be named \S+ .*not a DNS-1035 label.*set fullnameOverride/, release);
      const fixed = await helm([
        ...["template", release, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION],
        ...["--set", "fullnameOverride=injector"],
      ]);
      assert.equal(fixed.code, 0, fixed.stderr);
    }
    const r = await helm([
      ...["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION],
      ...["--set", "fullnameOverride=1injector"],
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fullnameOverride/);
  });

  test("a preStop sleep (or, before 1.30, a shutdown delay) not under the grace period is refused", async () => {
    // The API server refuses a preStop sleep longer than terminationGracePeriodSeconds; one as
    // long leaves no time to drain. Before Kubernetes 1.30 the injector waits itself
    // (--shutdown-delay), with the same need.
    const refused: [string, string[], RegExp][] = [
      [
        "1.34.0",
        ["preStopSleepSeconds=300"],
        /preStopSleepSeconds \(300\) must be less than terminationGracePeriodSeconds \(30\): the preStop sleep .*raise terminationGracePeriodSeconds to 316 or more/,
      ],
      [
        "1.34.0",
        ["preStopSleepSeconds=30"],
        /preStopSleepSeconds \(30\) must be less than terminationGracePeriodSeconds \(30\)/,
      ],
      [
        "1.34.0",
        ["terminationGracePeriodSeconds=0"],
        /preStopSleepSeconds \(5\) must be less than terminationGracePeriodSeconds \(0\)/,
      ],
      [
        "1.29.0",
        ["terminationGracePeriodSeconds=5"],
        /preStopSleepSeconds \(5\) must be less than terminationGracePeriodSeconds \(5\): --shutdown-delay/,
      ],
      // With several workers the drain may take 5 s more.
      [
        "1.34.0",
        ["preStopSleepSeconds=40", "workers=2", "resources.limits.memory=1Gi"],
        /drain after SIGTERM needs up to 20 s more; raise terminationGracePeriodSeconds to 61 or more/,
      ],
    ];
    for (const [kube, set, re] of refused) {
      const args = ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", kube];
      const r = await helm([...args, "--set", set.join(",")]);
      assert.notEqual(r.code, 0, `${kube}: --set ${set.join(",")} was accepted`);
      assert.match(r.stderr, re, `${kube}: --set ${set.join(",")}`);
    }
    // Shorter than the grace period, or no preStop at all: rendered.
    const container = async (set: string[], kube = KUBE_VERSION): Promise<Record<string, unknown>> =>
      (await template(set, ["--kube-version", kube])).one<Deployment>("Deployment").spec.template.spec
        .containers[0] as unknown as Record<string, unknown>;
    assert.deepEqual((await container(["preStopSleepSeconds=29"])).lifecycle, { preStop: { sleep: { seconds: 29 } } });
    assert.equal((await container(["preStopSleepSeconds=0", "terminationGracePeriodSeconds=0"])).lifecycle, undefined);
    const args = (await container(["preStopSleepSeconds=10", "terminationGracePeriodSeconds=11"], "1.29.0"))
      .args as string[];
    assert.equal(args[args.indexOf("--shutdown-delay") + 1], "10s");
  });

  test("warmUpSeconds: passed as --warm-up, left out at 0, refused past a minute", async () => {
    const args = async (set: string[]): Promise<string[]> =>
      (
        (await template(set)).one<Deployment>("Deployment").spec.template.spec.containers[0] as unknown as {
          args: string[];
        }
      ).args;
    const twelve = await args(["warmUpSeconds=12"]);
    assert.equal(twelve[twelve.indexOf("--warm-up") + 1], "12s");
    assert.ok(!(await args(["warmUpSeconds=0"])).includes("--warm-up"));
    const r = await helm([
      ...["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION],
      ...["--set", "warmUpSeconds=61"],
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /warmUpSeconds/);
  });

  test("contradictory values are refused with a message saying why", async () => {
    const refused: [string, RegExp][] = [
      ["tls.mode=certManager,webhook.caBundle=Zm9v", /webhook\.caBundle is set but tls\.mode is certManager/],
      ["webhook.caBundle=Zm9v", /webhook\.caBundle is set but tls\.mode is self/],
      [
        "revision=canary,webhook.enableNamespacesByDefault=true",
        /enableNamespacesByDefault needs revision default or the revision tag default \(revision is canary\)/,
      ],
      [
        "config.enableNamespacesByDefault=true",
        /config\.enableNamespacesByDefault differs from webhook\.enableNamespacesByDefault/,
      ],
      ["config.revision=other", /config\.revision \(other\) differs from revision \(default\)/],
      // A budget that keeps every replica blocks every node drain, as one on a single replica would.
      [
        "podDisruptionBudget.minAvailable=2",
        /podDisruptionBudget\.minAvailable \(2\) keeps 2 of the 2 replicas \(replicaCount\) available: .*every node drain would block/,
      ],
      ["podDisruptionBudget.minAvailable=100%", /minAvailable \(100%\) keeps 2 of the 2 replicas/],
      [
        "podDisruptionBudget.minAvailable=51%",
        /minAvailable \(51%\) keeps 2 of the 2 replicas \(replicaCount; a percentage is rounded up\)/,
      ],
      ["replicaCount=4,podDisruptionBudget.minAvailable=9", /minAvailable \(9\) keeps 9 of the 4 replicas/],
      ["replicaCount=4,podDisruptionBudget.minAvailable=76%", /minAvailable \(76%\) keeps 4 of the 4 replicas/],
      // One Service, two ports: the API server refuses a number twice ("Duplicate value").
      ["service.adminPort=443", /service\.port and service\.adminPort are both 443/],
      ["service.port=9000,service.adminPort=9000", /service\.port and service\.adminPort are both 9000/],
      // Two workers from the CPU limit, with the one-process memory limit of the defaults.
      ["resources.limits.cpu=2", /resources\.limits\.memory \(384Mi\) is too small for 2 workers: .*608Mi in all/],
      [
        "workers=3,resources.limits.memory=800M",
        /resources\.limits\.memory \(800M\) is too small for 3 workers: .*832Mi in all/,
      ],
      // V8's heap limits must stay 160 MiB under the memory limit (code, TLS buffers and request
      // bodies live outside the heap), whatever form the limit takes.
      [
        "maxHeapMiB=256",
        /maxHeapMiB \(256\) and the young generation \(3 x maxSemiSpaceMiB = 24\) leave less than 160Mi of resources\.limits\.memory \(384Mi\).*raise resources\.limits\.memory to 440Mi or more, or lower maxHeapMiB to 200 or less/,
      ],
      [
        "maxSemiSpaceMiB=16",
        /young generation \(3 x maxSemiSpaceMiB = 48\) .*to 400Mi or more, or lower maxHeapMiB to 176 or less/,
      ],
      ["resources.limits.memory=0.25Gi", /\(0\.25Gi\) .*to 376Mi or more, or lower maxHeapMiB to 72 or less/],
      ["resources.limits.memory=300000Ki", /\(300000Ki\) .*to 376Mi or more/],
      ["resources.limits.memory=250M", /\(250M\) .*to 376Mi or more/],
      ["resources.limits.memory=262144000", /\(262144000\) .*to 376Mi or more/],
      // No room even for the smallest heap: only raising the limit is said.
      ["resources.limits.memory=200Mi", /\(200Mi\) .*to 376Mi or more, or lower maxHeapMiB\n/],
      [
        "workers=2,resources.limits.memory=608Mi,maxHeapMiB=256",
        /maxHeapMiB \(256\) and the young generation \(3 x maxSemiSpaceMiB = 24\) in each of the 2 workers .*\(608Mi\).*to 720Mi or more, or lower maxHeapMiB to 200 or less/,
      ],
    ];
    for (const [value, re] of refused) {
      const r = await helm([
        "template",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        value,
      ]);
      assert.notEqual(r.code, 0, `--set ${value} was accepted`);
      assert.match(r.stderr, re, `--set ${value}`);
    }
  });
});
