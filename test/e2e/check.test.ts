// `sidecar-injector check` (the built CLI) against a real kube-apiserver with two injectors
// installed: this chart, and a second release of it in istio-system standing in for istiod
// (same selectors, so both select istio-injection=enabled namespaces). The Pods are stored
// before the webhooks exist, so nothing calls an injector here; check reads what is stored.
// One Pod is stored as the engine injects it with the chart's config (what the webhook would
// have stored: the API server runs the ServiceAccount admission plugin, and LimitRanger for a
// LimitRange in its namespace, on every container, as after a webhook); the first release's
// webhooks call its Service, so check reads its config from the ConfigMap beside it, and a
// config change there (what `helm upgrade --set config.proxy.image=...` writes) makes that
// Pod's sidecar stale. `inject --from-cluster` reads
// that same ConfigMap, and the nodes for nativeSidecars: auto.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, type Ran } from "../support/run.js";
import { parse, parseAllDocuments } from "yaml";
import type { CheckReport } from "../../src/check/check.js";
import type { Pod } from "../../src/kube/types.js";
import { parseConfig } from "../../src/config/load.js";
import { inject } from "../../src/injection/inject.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { createAll } from "./policy-api.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHART = join(ROOT, "charts", "sidecar-injector");

// The MutatingAdmissionPolicy API served, for the chart's policy mode (the last tests); the
// ServiceAccount admission plugin on, as in a real cluster, so that Pods are stored with the token
// volume mounted into every container, the injected ones included (each namespace gets its
// `default` ServiceAccount from createNamespace: there is no controller-manager).
const { cluster, skip } = await clusterForSuite("end-to-end check tests", {
  mutatingAdmissionPolicy: true,
  serviceAccountAdmission: true,
});

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

function run(args: readonly string[]): Promise<Ran> {
  // Only --kubeconfig says where the cluster is: KUBECONFIG is not passed on.
  const env = { ...process.env, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "", HOME: kube().tmpDir };
  return runCli(["check", "--kubeconfig", kube().kubeconfigPath, ...args], { env });
}

async function create(path: string, body: object): Promise<void> {
  const r = await kube().request("POST", path, body);
  assert.equal(r.status, 201, `${path}: ${r.text.slice(0, 500)}`);
}

const pod = (
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string>; sidecar?: boolean } = {},
) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name, ...extra.labels }, annotations: extra.annotations ?? {} },
  spec: {
    containers: [
      { name: "app", image: "example.com/app:1" },
      ...(extra.sidecar ? [{ name: "istio-proxy", image: "docker.io/istio/proxyv2:1.28.0" }] : []),
    ],
  },
});

const PROXY_IMAGE = "docker.io/istio/proxyv2:1.28.0";
const UPGRADED_IMAGE = "docker.io/istio/proxyv2:1.29.0";

interface Rendered {
  readonly webhookConfig: object;
  readonly configMap: { readonly metadata: { readonly name: string }; readonly data: Record<string, string> };
}

/**
 * The chart's MutatingWebhookConfiguration and ConfigMap as `helm template` renders them. With
 * `url`, the webhooks call that URL; else the release's Service (nothing serves it here).
 */
async function renderChart(
  release: string,
  namespace: string,
  opts: { url?: string; set?: readonly string[]; extra?: readonly string[] } = {},
): Promise<Rendered & { readonly docs: readonly Obj[] }> {
  const r = await kube().helm([
    "template",
    release,
    CHART,
    "--namespace",
    namespace,
    "--set",
    "tls.mode=secret",
    ...(opts.url ? ["--set", `webhook.url=${opts.url}`] : []),
    "--set",
    `webhook.caBundle=${Buffer.from("unused").toString("base64")}`,
    "--set",
    `fullnameOverride=${release}`,
    ...(opts.set ?? []).flatMap((s) => ["--set", s]),
    ...(opts.extra ?? []),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const docs = parseAllDocuments(r.stdout).flatMap((d): Obj[] => {
    const o: unknown = d.toJS();
    return o !== null && typeof o === "object" && !Array.isArray(o) ? [o as Obj] : [];
  });
  const webhookConfig = docs.find((d) => d.kind === "MutatingWebhookConfiguration");
  const configMap = docs.find((d) => d.kind === "ConfigMap") as Rendered["configMap"] | undefined;
  assert.ok(webhookConfig && configMap);
  return { webhookConfig, configMap, docs };
}

type Obj = Record<string, unknown>;

describe("check against a real kube-apiserver with two injectors", { skip }, () => {
  before(async () => {
    const c = kube();
    for (const ns of ["shop", "typo", "plain", "edge", "sidecar-injector-system", "istio-system"])
      await c.createNamespace(ns);
    // A default for a resource the injector gives its containers none of: LimitRanger sets it on them.
    await create("/api/v1/namespaces/shop/limitranges", {
      apiVersion: "v1",
      kind: "LimitRange",
      metadata: { name: "defaults" },
      spec: { limits: [{ type: "Container", default: { "ephemeral-storage": "1Gi" } }] },
    });
    await create("/api/v1/namespaces/edge/pods", pod("gw", { labels: { "istio.io/gateway-name": "ingress" } }));
    await create("/api/v1/namespaces/edge/pods", pod("api"));
    await create("/api/v1/namespaces/shop/pods", pod("web"));
    await create("/api/v1/namespaces/shop/pods", pod("opted-out", { labels: { "sidecar.istio.io/inject": "false" } }));
    await create(
      "/api/v1/namespaces/shop/pods",
      pod("old", {
        annotations: { "sidecar.istio.io/status": '{"containers":["istio-proxy"]}', "istio.io/rev": "default" },
        sidecar: true,
      }),
    );
    await create("/api/v1/namespaces/typo/pods", pod("web"));
    await create(
      "/api/v1/namespaces/plain/pods",
      pod("injected-once", { annotations: { "sidecar.istio.io/status": "{}" }, sidecar: true }),
    );
    // Injected by the engine with the first release's config, as its webhook would have stored it.
    const ours = await renderChart("sidecar-injector", "sidecar-injector-system", {
      set: [`config.proxy.image=${PROXY_IMAGE}`],
    });
    // A serviceAccountName, as the API server's ServiceAccount admission sets before the webhook (the sidecar's token
    // volume needs one). Stored, the Pod's containers, the injected ones too, get that admission's token mount and
    // LimitRanger's default, as when the API server runs its plugins again after the webhook.
    const plainPod = pod("fresh-sidecar");
    const injected = inject(
      { ...plainPod, spec: { ...plainPod.spec, serviceAccountName: "default" } },
      { namespace: "shop" },
      parseConfig(ours.configMap.data["config.yaml"] ?? ""),
    );
    assert.equal(injected.decision.inject, true);
    await create("/api/v1/namespaces/shop/pods", injected.pod);
    await create("/apis/apps/v1/namespaces/shop/deployments", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "cart" },
      spec: {
        selector: { matchLabels: { app: "cart" } },
        template: {
          metadata: { labels: { app: "cart" } },
          spec: { containers: [{ name: "app", image: "example.com/cart:1" }] },
        },
      },
    });
    for (const [ns, labels] of [
      ["shop", { "istio-injection": "enabled" }],
      ["typo", { "istio-injection": "true" }],
    ] as const) {
      const r = await c.request(
        "PATCH",
        `/api/v1/namespaces/${ns}`,
        { metadata: { labels } },
        { contentType: "application/merge-patch+json" },
      );
      assert.equal(r.status, 200, r.text);
    }
    await create("/api/v1/namespaces/sidecar-injector-system/configmaps", ours.configMap);
    await create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", ours.webhookConfig);
    const second = await renderChart("istio-sidecar-injector", "istio-system", { url: "https://127.0.0.1:1/inject" });
    await create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", second.webhookConfig);
    // A third injector, for namespace edge only, with matchConditions the API server accepts as CEL.
    await create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: "edge-injector", labels: { app: "sidecar-injector" } },
      webhooks: [
        {
          name: "edge.injector.example.com",
          clientConfig: { url: "https://127.0.0.1:1/inject" },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "edge" } },
          matchConditions: [
            {
              name: "not-gateways",
              expression: "!has(object.metadata.labels) || !('istio.io/gateway-name' in object.metadata.labels)",
            },
            { name: "not-admins", expression: "request.userInfo.username != 'admin'" },
          ],
          failurePolicy: "Ignore",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("-A: every namespace and Pod, the double injection an error (exit 1)", async () => {
    const r = await run(["-A", "-o", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as CheckReport;
    const byName = new Map(report.objects.map((o) => [`${o.namespace}/${o.name}`, o]));
    assert.deepEqual([...byName.keys()].sort(), [
      "edge/api",
      "edge/gw",
      "plain/injected-once",
      "shop/fresh-sidecar",
      "shop/old",
      "shop/opted-out",
      "shop/web",
      "typo/web",
    ]);
    // matchConditions, evaluated: the gateway is excluded; who creates the Pod is not known, so that one is quoted.
    const edge = (name: string) =>
      byName.get(`edge/${name}`)?.webhooks.find((w) => w.webhook === "edge-injector/edge.injector.example.com");
    assert.deepEqual(
      [edge("gw")?.called, edge("gw")?.reason],
      [false, "selectors match every pod; matchCondition not-gateways is false"],
    );
    assert.equal(edge("api")?.injects, true);
    assert.equal(
      edge("api")?.reason,
      `selectors match every pod; matchCondition not-admins not evaluated (request.userInfo is not known for a stored object): "request.userInfo.username != 'admin'"`,
    );
    const web = byName.get("shop/web");
    assert.deepEqual(
      web?.webhooks
        .filter((w) => w.injects)
        .map((w) => w.webhook)
        .sort(),
      [
        "istio-sidecar-injector/namespace.injector.sidecar-injector.dev",
        "sidecar-injector/namespace.injector.sidecar-injector.dev",
      ],
    );
    assert.ok(
      web?.findings.some((f) => f.severity === "error" && /^2 injectors would inject this Pod/.test(f.message)),
    );
    assert.deepEqual(byName.get("shop/opted-out")?.findings, [], "opted out: no injector, no finding");
    assert.ok(byName.get("shop/old")?.findings.some((f) => f.message === "already injected (revision default)"));
    assert.ok(byName.get("typo/web")?.webhooks.every((w) => !w.called));
    assert.ok(
      byName
        .get("plain/injected-once")
        ?.findings.some((f) => /injected, but no injector would inject it now/.test(f.message)),
    );
    assert.equal(
      report.errors,
      4,
      "namespace shop is selected by both; shop/web, shop/old and shop/fresh-sidecar would each go through both",
    );
    const shopFinding = String(report.namespaces.find((n) => n.name === "shop")?.findings[0]?.message);
    assert.match(shopFinding, /^2 injectors select namespace shop: /);
    for (const w of [
      "sidecar-injector/namespace.injector.sidecar-injector.dev",
      "istio-sidecar-injector/namespace.injector.sidecar-injector.dev",
    ])
      assert.ok(shopFinding.includes(w), shopFinding);
    // Stored as the engine injected it, with the config in the ConfigMap: nothing differs, though
    // the API server added its defaults, the ServiceAccount token mount and LimitRanger's default
    // to every container.
    const fresh = (await kube().request<Pod>("GET", "/api/v1/namespaces/shop/pods/fresh-sidecar")).json;
    const proxy = fresh.spec?.containers.find((x) => x.name === "istio-proxy");
    assert.equal(
      proxy?.volumeMounts?.find((m) => String(m.name).startsWith("kube-api-access-"))?.mountPath,
      "/var/run/secrets/kubernetes.io/serviceaccount",
    );
    assert.match(
      fresh.metadata?.annotations?.["kubernetes.io/limit-ranger"] ?? "",
      /ephemeral-storage request for container istio-proxy/,
    );
    assert.deepEqual(byName.get("shop/fresh-sidecar")?.sidecar, {
      compared: true,
      config: "configmap sidecar-injector-system/sidecar-injector",
      drift: [],
    });
    // A hand-made sidecar is not what the injector makes: stale, and said so.
    assert.ok(
      byName
        .get("shop/old")
        ?.findings.some(
          (f) =>
            f.severity === "warning" &&
            /^stale sidecar \(against configmap sidecar-injector-system\/sidecar-injector\): /.test(f.message),
        ),
    );
    const typo = report.namespaces.find((n) => n.name === "typo");
    assert.match(String(typo?.findings[0]?.message), /istio-injection=true: only "enabled" and "disabled"/);
    // kube-system and the injectors' own namespaces are excluded by every webhook's namespaceSelector.
    assert.ok(!report.namespaces.some((n) => n.name === "sidecar-injector-system"), "no Pods, no label: not listed");
  });

  test("a Deployment by name: its template, in a table", async () => {
    const r = await run(["deployment/cart", "-n", "shop"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^deployment\/cart \(namespace shop\)$/m);
    assert.match(r.stdout, /^ {2}WEBHOOK +REVISION +INJECTED +REASON$/m);
    assert.match(
      r.stdout,
      /^ {2}sidecar-injector\/namespace\.injector\.sidecar-injector\.dev +default +yes +namespace label istio-injection=enabled$/m,
    );
    assert.match(r.stdout, /^ {2}error: 2 injectors would inject this Pod/m);
  });

  test("a Pod in istio-injection=true: a warning, exit 0", async () => {
    const r = await run(["web", "-n", "typo"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /warning: namespace typo has istio-injection=true/);
    assert.doesNotMatch(r.stdout, / yes /);
  });

  test("a config change (a new proxy image in the ConfigMap): the injected Pod's sidecar is stale, the image named", async () => {
    // Before the change it is not stale: the -A test found no drift.
    const upgraded = await renderChart("sidecar-injector", "sidecar-injector-system", {
      set: [`config.proxy.image=${UPGRADED_IMAGE}`],
    });
    const r = await kube().request(
      "PATCH",
      `/api/v1/namespaces/sidecar-injector-system/configmaps/${upgraded.configMap.metadata.name}`,
      { data: upgraded.configMap.data },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(r.status, 200, r.text);
    const after = await run(["pod/fresh-sidecar", "-n", "shop"]);
    assert.equal(after.code, 1, after.stderr);
    assert.match(
      after.stdout,
      /^ {2}warning: stale sidecar \(against configmap sidecar-injector-system\/sidecar-injector\): istio-proxy image "docker\.io\/istio\/proxyv2:1\.28\.0" → "1\.29\.0"; istio-init image "docker\.io\/istio\/proxyv2:1\.28\.0" → "1\.29\.0"; restart the workload to get the current one$/m,
    );
    // --config wins over the ConfigMap: the old image is current again (the report as data, in YAML).
    const file = join(kube().tmpDir, "old-config.yaml");
    writeFileSync(file, `proxy:\n  image: ${PROXY_IMAGE}\n`);
    const given = await run(["pod/fresh-sidecar", "-n", "shop", "--config", file, "-o", "yaml"]);
    assert.equal(given.code, 1, given.stderr);
    assert.deepEqual((parse(given.stdout) as CheckReport).objects[0]?.sidecar, {
      compared: true,
      config: "--config",
      drift: [],
    });
  });

  test("inject --from-cluster: the ConfigMap's config, native sidecars decided by the nodes", async () => {
    const image = "registry.example.com/istio/proxyv2:from-cluster";
    const current = await renderChart("sidecar-injector", "sidecar-injector-system", {
      set: [`config.proxy.image=${image}`],
    });
    const patched = await kube().request(
      "PATCH",
      `/api/v1/namespaces/sidecar-injector-system/configmaps/${current.configMap.metadata.name}`,
      { data: current.configMap.data },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(patched.status, 200, patched.text);
    // A node as its kubelet registers it: v1.33, so nativeSidecars: auto (the chart's default) means native.
    await create("/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-a" },
      status: { nodeInfo: { kubeletVersion: "v1.33.2" } },
    });
    const file = join(kube().tmpDir, "from-cluster.yaml");
    writeFileSync(
      file,
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: app, image: example.com/app:1}]}\n",
    );
    const env = { ...process.env, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "", HOME: kube().tmpDir };
    // Two releases of the chart are installed here: the one meant is named.
    const r = await runCli(
      [
        "inject",
        "--from-cluster",
        "--webhook-config",
        "sidecar-injector",
        "--kubeconfig",
        kube().kubeconfigPath,
        "-f",
        file,
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      "config: configmap sidecar-injector-system/sidecar-injector (webhook configuration sidecar-injector); native sidecars: yes (1 node)\n" +
        `Pod/web (${file}, document 1): injected\n`,
    );
    const injected = parse(r.stdout) as {
      spec: {
        containers: { name: string }[];
        initContainers?: { name: string; image?: string; restartPolicy?: string }[];
      };
    };
    const proxy = injected.spec.initContainers?.find((c) => c.name === "istio-proxy");
    assert.deepEqual(
      [proxy?.image, proxy?.restartPolicy],
      [image, "Always"],
      "the cluster's image, as a native sidecar",
    );
    assert.deepEqual(
      injected.spec.containers.map((c) => c.name),
      ["app"],
    );
  });

  test("not there: exit 2 naming it; an unknown context: exit 2 naming it", async () => {
    const missing = await run(["pod/nope", "-n", "shop"]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, "error: pod/nope not found in namespace shop\n");
    const context = await run(["-n", "shop", "--context", "nosuch"]);
    assert.equal(context.code, 2);
    assert.match(context.stderr, /no context "nosuch"/);
  });

  // Last: it removes the two releases' configurations.
  test("certs status and inject --from-cluster without flags: several releases an error naming each, one under another name found by its label", async () => {
    const env = { ...process.env, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "", HOME: kube().tmpDir };
    const cli = (args: readonly string[]) => runCli([...args, "--kubeconfig", kube().kubeconfigPath], { env });
    const several = await cli(["certs", "status"]);
    assert.equal(several.code, 2, several.stderr);
    assert.equal(
      several.stderr,
      "error: 2 sidecar injectors are installed: istio-sidecar-injector (calls a URL), sidecar-injector (namespace sidecar-injector-system); pick one with --webhook-config NAME or --namespace NS\n",
    );
    assert.equal(several.stdout, "");
    // A release installed as `helm install mesh-inj ... -n mesh` (its resources named mesh-inj).
    await kube().createNamespace("mesh");
    const meshInj = await renderChart("mesh-inj", "mesh", { set: [`config.proxy.image=${UPGRADED_IMAGE}`] });
    await create("/api/v1/namespaces/mesh/configmaps", meshInj.configMap);
    await create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", meshInj.webhookConfig);
    for (const name of ["sidecar-injector", "istio-sidecar-injector"]) {
      const r = await kube().request(
        "DELETE",
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
      );
      assert.equal(r.status, 200, r.text);
    }
    const status = await cli(["certs", "status"]);
    assert.equal(status.code, 1, status.stderr);
    assert.match(status.stdout, /^CA Secret mesh\/mesh-inj-ca: not found$/m);
    assert.match(status.stdout, /^MutatingWebhookConfiguration mesh-inj: 4 webhook\(s\)$/m);
    assert.equal(status.stderr, "");
    const file = join(kube().tmpDir, "mesh-pod.yaml");
    writeFileSync(
      file,
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: example.com/app:1}]}\n",
    );
    const injected = await cli(["inject", "--from-cluster", "-f", file]);
    assert.equal(injected.code, 0, injected.stderr);
    assert.match(injected.stderr, /^config: configmap mesh\/mesh-inj \(webhook configuration mesh-inj\); /);
    assert.match(injected.stdout, new RegExp(`image: ${UPGRADED_IMAGE.replace(/[.]/g, "\\.")}`));
  });
  // After the releases above are gone: this chart installed in policy mode (the policy rendered by
  // `policy render` from the release's ConfigMap, passed with --set-file policy.manifest).
  test("policy mode installed: check says, per Pod, whether the policy or the webhook takes it, and why", async () => {
    const c = kube();
    await c.createNamespace("policy-mode");
    await create("/api/v1/namespaces/policy-mode/pods", pod("covered"));
    await create(
      "/api/v1/namespaces/policy-mode/pods",
      pod("tuned", { annotations: { "sidecar.istio.io/proxyImage": "example.com/proxyv2:1.28.0" } }),
    );
    const cm = await c.request("GET", "/api/v1/namespaces/sidecar-injector-system/configmaps/sidecar-injector");
    assert.equal(cm.status, 200, cm.text);
    const configFile = join(c.tmpDir, "policy-mode-config.yaml");
    writeFileSync(configFile, (JSON.parse(cm.text) as { data: Record<string, string> }).data["config.yaml"] ?? "");
    const rendered = await runCli(["policy", "render", "--config", configFile, "--native-sidecars", "false"]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const manifest = join(c.tmpDir, "policy-mode.yaml");
    writeFileSync(manifest, rendered.stdout);
    const release = await renderChart("sidecar-injector", "sidecar-injector-system", {
      extra: ["--set", "policy.enabled=true", "--set-file", `policy.manifest=${manifest}`],
    });
    await createAll(
      c,
      release.docs.filter((d) => String(d.kind).startsWith("MutatingAdmissionPolicy")),
    );
    const mwcs = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    assert.equal((await c.request("DELETE", `${mwcs}/mesh-inj`)).status, 200);
    await create(mwcs, release.webhookConfig);
    const r = await c.request(
      "PATCH",
      "/api/v1/namespaces/policy-mode",
      { metadata: { labels: { "istio-injection": "enabled" } } },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(r.status, 200, r.text);

    const json = await run(["-n", "policy-mode", "-o", "json"]);
    assert.equal(json.code, 0, json.stderr + json.stdout);
    const report = JSON.parse(json.stdout) as CheckReport;
    assert.equal(report.policies?.length, 1);
    const [policy] = report.policies ?? [];
    assert.equal(policy?.name, "sidecar-injector");
    assert.equal(policy?.apiVersion, "admissionregistration.k8s.io/v1beta1");
    assert.equal(policy?.bindings.length, 4);
    assert.equal(policy?.config, "configmap sidecar-injector-system/sidecar-injector");
    assert.deepEqual(policy?.findings, [], "rendered for the injector's current config");
    const covered = report.objects.find((o) => o.name === "covered");
    assert.equal(covered?.policy?.injector, "policy");
    assert.equal(covered?.policy?.injects, true);
    assert.ok(
      covered?.webhooks.every((w) => !w.injects),
      "the webhook's matchCondition leaves it to the policy",
    );
    assert.ok(!covered?.findings.some((f) => f.severity === "error"), JSON.stringify(covered?.findings));
    const tuned = report.objects.find((o) => o.name === "tuned");
    assert.deepEqual(tuned?.policy, {
      policy: "sidecar-injector",
      injector: "webhook",
      injects: false,
      reason: 'the Pod has the annotation "sidecar.istio.io/proxyImage", which only the webhook reads',
    });
    const injecting = tuned?.webhooks.filter((w) => w.injects) ?? [];
    assert.equal(injecting.length, 1, JSON.stringify(tuned?.webhooks));
    assert.match(injecting[0]?.webhook ?? "", /^sidecar-injector\//);
    assert.match(injecting[0]?.reason ?? "", /its matchCondition holds/);

    const table = await run(["-n", "policy-mode"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      /^MutatingAdmissionPolicy sidecar-injector \(admissionregistration\.k8s\.io\/v1beta1; bindings: .*\)$/m,
    );
    assert.match(
      table.stdout,
      /^ {2}policy mode: handled by the MutatingAdmissionPolicy sidecar-injector \(binding sidecar-injector-namespace\): injects it$/m,
    );
    assert.match(
      table.stdout,
      /^ {2}policy mode: falls to the webhook: the Pod has the annotation "sidecar\.istio\.io\/proxyImage", which only the webhook reads$/m,
    );
  });

  test("its injector with --istio-config (the chart's istioConfig): each setting it cannot honour, by path, an error", async () => {
    await create("/api/v1/namespaces/istio-system/configmaps", {
      metadata: { name: "istio-sidecar-injector" },
      data: {
        values: JSON.stringify({
          global: { proxy: { lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } } } },
        }),
        config: "policy: enabled\n",
      },
    });
    await create("/api/v1/namespaces/istio-system/configmaps", {
      metadata: { name: "istio" },
      data: { mesh: "proxyListenPort: 15002\n" },
    });
    const release = await renderChart("sidecar-injector", "sidecar-injector-system", {
      set: ["istioConfig=istio-system"],
    });
    const deployment = release.docs.find((d) => d.kind === "Deployment");
    assert.ok(deployment, "the chart renders a Deployment");
    await create("/apis/apps/v1/namespaces/sidecar-injector-system/deployments", deployment);

    const json = await run(["-n", "policy-mode", "-o", "json"]);
    assert.equal(json.code, 1, "the injector refuses this config: errors");
    const report = JSON.parse(json.stdout) as CheckReport;
    assert.equal(report.injectors?.length, 1);
    const [injector] = report.injectors ?? [];
    assert.equal(injector?.istioConfig, "istio-system");
    assert.deepEqual(
      injector?.findings.map((f) => f.message.split(":")[0]),
      ["istio-sidecar-injector.values.global.proxy.lifecycle", "istio.mesh.proxyListenPort"],
    );
    assert.ok(injector?.findings.every((f) => f.severity === "error" && / instead: /.test(f.message)));
    // The injector serves what it imports from Istio's ConfigMaps: the policy's domain is said for that config.
    assert.equal(report.policies?.[0]?.config, "istio-config istio-system");
    const table = await run(["-n", "policy-mode"]);
    assert.match(
      table.stdout,
      /^injector deployment sidecar-injector-system\/sidecar-injector: serve --istio-config istio-system$/m,
    );
    assert.match(table.stdout, /^ {2}error: istio\.mesh\.proxyListenPort: cannot be honoured: /m);
  });
});
