// /preview against a real API server. The injector runs as its own ServiceAccount with exactly
// the RBAC our chart renders (self-managed certificates, so it has cluster access), and reads
// a namespace's labels only for a caller whose token may get that namespace: a ServiceAccount
// bound to `get` on it sees them; another ServiceAccount, a forged token and no token do not,
// and cannot tell a labelled namespace from one that does not exist. Its patch is the one the
// API server applies when the Pod is really created. And `preview --server` sends the
// kubeconfig's token.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { Pod } from "../../src/kube/types.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector } from "./injector.js";
import { request } from "../support/https.js";
import { createAll, createPod, waitUntil } from "./policy-api.js";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { policyList, renderPolicy } from "../../src/policy/render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "cli.js");
const NS = "sidecar-injector-system";
/** Where the callers' ServiceAccounts live. */
const TEAM = "team";

// The MutatingAdmissionPolicy API served: preview's policyMode is checked against the policy itself.
const { cluster, skip } = await clusterForSuite("end-to-end preview tests", {
  serviceAccountAdmission: true,
  mutatingAdmissionPolicy: true,
});

interface Entry {
  decision: { inject: boolean; reasons: string[] };
  patch: unknown[];
  object: Pod;
  error?: { message: string };
  policyMode?: { injector: "policy" } | { injector: "webhook"; reason: string };
}

type Obj = { kind?: string; metadata?: { name?: string; namespace?: string } } & Record<string, unknown>;

/** Where each kind of the chart's objects we apply is created. */
const COLLECTIONS: Record<string, (ns: string) => string> = {
  ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
  RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
  ClusterRole: () => "/apis/rbac.authorization.k8s.io/v1/clusterroles",
  ClusterRoleBinding: () => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
  MutatingWebhookConfiguration: () => "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
};

describe("preview against a real kube-apiserver, for callers with and without the right", { skip }, () => {
  let injector: Injector;
  let ca = "";
  let caFile = "";
  const tokens = { viewer: "", stranger: "" };
  const c = (): Cluster => cluster as Cluster;

  async function create(path: string, body: unknown): Promise<void> {
    const r = await c().request("POST", path, body);
    assert.ok(r.status === 201 || r.status === 409, `POST ${path}: ${r.status} ${r.text}`);
  }

  async function tokenOf(ns: string, sa: string): Promise<string> {
    const r = await c().request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 3600 },
      },
    );
    assert.equal(r.status, 201, r.text);
    return r.json.status.token;
  }

  function kubeconfigWith(name: string, token: string): string {
    const path = join(c().tmpDir, `${name}.kubeconfig`);
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "e2e",
          cluster: { server: c().server, "certificate-authority-data": Buffer.from(c().caPem).toString("base64") },
        },
      ],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: "e2e", user: name } }],
      "current-context": name,
    };
    writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
    return path;
  }

  /** `get` on exactly these namespaces, for a ServiceAccount of TEAM: a Role in each, as a namespace admin would grant
   * it. */
  async function mayGet(sa: string, namespaces: readonly string[]): Promise<void> {
    for (const ns of namespaces) {
      await create(COLLECTIONS.Role!(ns), {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "read-namespace" },
        rules: [{ apiGroups: [""], resources: ["namespaces"], resourceNames: [ns], verbs: ["get"] }],
      });
      await create(COLLECTIONS.RoleBinding!(ns), {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: `read-namespace-${sa}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read-namespace" },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace: TEAM }],
      });
    }
  }

  before(async () => {
    await c().createNamespace(NS);
    await c().createNamespace(TEAM);
    await c().createNamespace("shop", { "istio-injection": "enabled" });
    await c().createNamespace("plain");
    await c().createNamespace("private", { "istio-injection": "enabled", team: "payments" });
    const port = await freePort();
    // The chart's ServiceAccount, RBAC and webhook configuration, as `helm install` creates them.
    const r = await c().helm([
      "template",
      "sidecar-injector",
      "charts/sidecar-injector",
      "--namespace",
      NS,
      "--set",
      `webhook.url=https://127.0.0.1:${port}/inject`,
      "--set",
      "fullnameOverride=sidecar-injector",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj | null);
    for (const o of objects) {
      const at = o?.kind ? COLLECTIONS[o.kind] : undefined;
      if (o && at) await create(at(o.metadata?.namespace ?? NS), o);
    }
    const injectorToken = await tokenOf(NS, "sidecar-injector");
    injector = new Injector(port, {
      args: ["--cert-mode", "kubernetes", "--namespace", NS, "--tls-san", "127.0.0.1", "--ca-bundle-propagation", "1s"],
      env: { ...process.env, ...c().env, KUBECONFIG: kubeconfigWith("injector", injectorToken) },
    });
    await injector.start();
    const secret = await c().request<{ data: Record<string, string> }>(
      "GET",
      `/api/v1/namespaces/${NS}/secrets/sidecar-injector-ca`,
    );
    ca = Buffer.from(secret.json.data["ca.crt"] ?? "", "base64").toString("utf8");
    caFile = join(c().tmpDir, "injector-ca.crt");
    writeFileSync(caFile, ca);

    for (const sa of ["viewer", "stranger"])
      await create(COLLECTIONS.ServiceAccount!(TEAM), {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: sa },
      });
    await mayGet("viewer", ["shop", "plain"]);
    tokens.viewer = await tokenOf(TEAM, "viewer");
    tokens.stranger = await tokenOf(TEAM, "stranger");
  });

  after(async () => {
    await injector?.dispose();
    await cluster?.stop();
  });

  const pod = (name: string, labels: Record<string, string> = {}): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: name, ...labels } },
    spec: {
      containers: [
        { name: "app", image: "example.com/app:1", readinessProbe: { httpGet: { path: "/ready", port: 8080 } } },
      ],
    },
  });

  function post(path: string, body: string, token?: string): Promise<{ status: number; body: string }> {
    return request(`${injector.url}${path}`, {
      ca,
      body,
      timeoutMs: 10_000,
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
    });
  }

  async function previewOf(ns: string, body: Pod, token?: string): Promise<Entry> {
    const r = await post(`/preview?namespace=${ns}`, JSON.stringify(body), token);
    assert.equal(r.status, 200, r.body);
    const items = (JSON.parse(r.body) as { items: Entry[] }).items;
    assert.equal(items.length, 1);
    return items[0] as Entry;
  }

  test("a ServiceAccount token with get on a namespace: its labels are read and decide", async () => {
    const on = await previewOf("shop", pod("web"), tokens.viewer);
    assert.equal(on.decision.inject, true);
    assert.equal(
      on.decision.reasons[0],
      "namespace shop has istio-injection=enabled: the API server calls the injector",
    );

    const off = await previewOf("plain", pod("web"), tokens.viewer);
    assert.equal(off.decision.inject, false);
    assert.match(
      off.decision.reasons[0] ?? "",
      /namespace plain has no istio-injection or istio\.io\/rev label.*does not call the injector/,
    );
    assert.deepEqual(off.patch, []);
  });

  test("the same token on a namespace it may not get: not known, as for one that does not exist", async () => {
    const forbidden = await previewOf("private", pod("web"), tokens.viewer);
    assert.equal(
      forbidden.decision.reasons[0],
      'labels of namespace "private" not known (the caller may not get this namespace): assuming the API server calls the injector',
    );
    const missing = await previewOf("nowhere", pod("web"), tokens.viewer);
    assert.equal(JSON.stringify(missing).replaceAll("nowhere", "private"), JSON.stringify(forbidden));
  });

  test("a token without get, a forged token, no token: nothing of the namespace is learnt", async () => {
    const stranger = await previewOf("shop", pod("web"), tokens.stranger);
    assert.match(
      stranger.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(the caller may not get this namespace\)/,
    );
    const forged = await previewOf("shop", pod("web"), `${tokens.viewer.slice(0, -4)}AAAA`);
    assert.match(
      forged.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(the bearer token presented is not authenticated/,
    );
    const anonymous = await previewOf("shop", pod("web"));
    assert.match(
      anonymous.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(no bearer token presented/,
    );
    for (const e of [stranger, forged, anonymous]) {
      assert.equal(e.decision.inject, true, "assumed called");
      const plain =
        e === anonymous
          ? await previewOf("plain", pod("web"))
          : await previewOf(
              "plain",
              pod("web"),
              e === stranger ? tokens.stranger : `${tokens.viewer.slice(0, -4)}AAAA`,
            );
      assert.equal(
        JSON.stringify(plain).replaceAll("plain", "shop"),
        JSON.stringify(e),
        "a labelled and an unlabelled namespace look alike",
      );
    }
  });

  test("an administrator's token: its own namespace excluded, a missing namespace said missing", async () => {
    const own = await previewOf(NS, pod("web"), c().token);
    assert.match(own.decision.reasons[0] ?? "", /excluded by the webhook's namespaceSelector/);
    const missing = await previewOf("does-not-exist", pod("web"), c().token);
    assert.match(
      missing.decision.reasons[0] ?? "",
      /^labels of namespace "does-not-exist" not known \(the namespace does not exist\)/,
    );
  });

  test("the preview's object is what the API server stores for the same Pod", async () => {
    const entry = await previewOf("shop", pod("stored"), tokens.viewer);
    assert.equal(entry.decision.inject, true);
    const created = await c().request<Pod>("POST", "/api/v1/namespaces/shop/pods", pod("stored"));
    assert.equal(created.status, 201, created.text);
    const stored = created.json;
    const predicted = entry.object;
    // The preview was made of the Pod as given; the API server added its defaults and the
    // ServiceAccount volume before calling the webhook, so compare what the injection decides.
    const names = (p: Pod): string[] =>
      [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((x) => x.name);
    assert.deepEqual(names(stored), names(predicted));
    assert.deepEqual(stored.metadata?.annotations, predicted.metadata?.annotations);
    const probe = (p: Pod): unknown => p.spec?.containers.find((x) => x.name === "app")?.readinessProbe?.httpGet;
    assert.deepEqual(probe(stored), { ...(probe(predicted) as object), scheme: "HTTP" });
  });

  test("preview --server sends the kubeconfig's token; --anonymous does not", async () => {
    const run = (extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((ok, fail) => {
        const child = spawn(
          process.execPath,
          [CLI, "preview", "-f", "-", "-n", "shop", "--server", injector.url, "--cacert", caFile, ...extra],
          {
            env: { ...process.env, KUBERNETES_SERVICE_HOST: "", KUBECONFIG: kubeconfigWith("viewer", tokens.viewer) },
            stdio: ["pipe", "pipe", "pipe"],
          },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
        child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
        child.on("error", fail);
        child.on("close", (code) => ok({ code, stdout, stderr }));
        child.stdin.end(JSON.stringify(pod("cli")));
      });
    const withToken = await run([]);
    assert.equal(withToken.code, 0, withToken.stderr);
    assert.equal(
      (JSON.parse(withToken.stdout) as { items: Entry[] }).items[0]?.decision.reasons[0],
      "namespace shop has istio-injection=enabled: the API server calls the injector",
    );
    const anonymous = await run(["--anonymous"]);
    assert.equal(anonymous.code, 0, anonymous.stderr);
    assert.match(
      (JSON.parse(anonymous.stdout) as { items: Entry[] }).items[0]?.decision.reasons[0] ?? "",
      /not known \(no bearer token presented/,
    );
  });
  // The policy `policy render` prints for the injector's config (the defaults), bound to one
  // namespace no webhook selects: what the API server does with each Pod is the policy's alone.
  test("policyMode agrees with the API server: the Pods it says the policy takes are injected by the policy alone", async () => {
    const list = policyList(
      renderPolicy(DEFAULT_CONFIG, {
        apiVersion: "v1beta1",
        name: "preview-e2e",
        namespace: NS,
        nativeSidecarsSupported: false,
        enableNamespacesByDefault: false,
      }),
    ) as { items: Obj[] };
    const policy = list.items.find((o) => o.kind === "MutatingAdmissionPolicy");
    assert.ok(policy);
    await c().createNamespace("policy-on", { "policy-e2e": "on" });
    await createAll(c(), [
      policy,
      {
        apiVersion: "admissionregistration.k8s.io/v1beta1",
        kind: "MutatingAdmissionPolicyBinding",
        metadata: { name: "preview-e2e" },
        spec: {
          policyName: "preview-e2e",
          matchResources: { namespaceSelector: { matchLabels: { "policy-e2e": "on" } } },
        },
      },
    ]);
    const plain = (name: string, annotations: Record<string, string> = {}): Pod => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, labels: { app: name }, annotations },
      spec: {
        containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080, name: "http" }] }],
      },
    });
    const proxies = (p: Pod): number =>
      [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].filter((x) => x.name === "istio-proxy").length;
    await waitUntil(c(), "policy-on", plain("probe"), (st, p) => st === 201 && proxies(p) === 1, "the policy injects");
    const pods = [
      plain("covered"),
      plain("tuned", { "sidecar.istio.io/proxyImage": "example.com/proxyv2:1.28.0" }),
      {
        ...plain("probed"),
        spec: {
          containers: [{ name: "app", image: "example.com/app:1", livenessProbe: { tcpSocket: { port: 8080 } } }],
        },
      },
      plain("scraped", { "prometheus.io/scrape": "true" }),
    ];
    const verdicts: string[] = [];
    for (const p of pods) {
      const entry = await previewOf("policy-on", p);
      const created = await createPod(c(), "policy-on", p);
      assert.equal(created.status, 201, created.text);
      assert.equal(
        proxies(created.pod),
        entry.policyMode?.injector === "policy" ? 1 : 0,
        `${p.metadata?.name ?? ""}: ${JSON.stringify(entry.policyMode)}`,
      );
      verdicts.push(entry.policyMode?.injector ?? "none");
    }
    // The probe is rewritten by the policy itself, and so is the Prometheus merge.
    assert.deepEqual(verdicts, ["policy", "webhook", "policy", "policy"]);
    // The summary says it in words.
    const summary = await post("/preview?namespace=policy-on&format=summary", JSON.stringify(pods[1]));
    assert.equal(summary.status, 200, summary.body);
    assert.match(
      summary.body,
      /^ {2}policy mode: falls to the webhook: the Pod has the annotation "sidecar\.istio\.io\/proxyImage", which only the webhook reads$/m,
    );
  });
});
