// Revision tags on a real kube-apiserver: the chart installed as revision canary with
// `revisionTags: [prod]` (its own MutatingWebhookConfiguration and the tag's, in development
// mode calling the built injector, which runs with the chart's config.yaml); a namespace
// labelled istio.io/rev=prod gets Pods created with kubectl stored injected by revision canary,
// as do Pods labelled istio.io/rev=prod in an unlabelled namespace, while istio.io/rev=stable is
// left alone; `check` shows the tag and resolves the namespace through it; `preview` with the
// chart's config says "revision tag prod → canary". With tls.mode self (a second release, blue,
// tagged gold), the injector started with the chart's --webhook-config-selector publishes the
// caBundle of the tag's configuration as of its own, and the API server then calls it for gold.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { CheckReport } from "../../src/check/check.js";
import type { Pod } from "../../src/kube/types.js";
import { runCli } from "../support/run.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";
import { findKubectl, runKubectl } from "./kubectl.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHART = join(ROOT, "charts", "sidecar-injector");
const OWN_NAMESPACE = "mesh-system";

const { cluster, skip: noCluster } = await clusterForSuite("end-to-end revision tag tests", {
  serviceAccountAdmission: true,
});
const kubectlFound = findKubectl();
const skip = noCluster || ("missing" in kubectlFound ? kubectlFound.missing : false);

type Obj = { kind?: string; metadata?: { name?: string }; data?: Record<string, string> };

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const sidecarOf = (p: Pod) =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

const podYaml = (name: string, labels: Record<string, string> = {}) =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  labels: ${JSON.stringify({ app: name, ...labels })}\nspec:\n  containers: [{name: app, image: example.com/app:1}]\n`;

let certs: TestCerts;
let injector: Injector;
let configText = "";

function env(): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: kube().kubeconfigPath, KUBERNETES_SERVICE_HOST: "", HOME: kube().tmpDir };
}

async function kubectl(args: readonly string[]) {
  if (!("path" in kubectlFound)) throw new Error(kubectlFound.missing);
  return runKubectl(kubectlFound.path, args, env());
}

async function stored(ns: string, name: string): Promise<Pod> {
  const r = await kube().request<Pod>("GET", `/api/v1/namespaces/${ns}/pods/${name}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

describe("revision tags against a real kube-apiserver", { skip }, () => {
  before(async () => {
    certs = await testCertificates();
    const port = await freePort();
    const c = kube();
    const r = await c.helm([
      "template",
      "mesh",
      CHART,
      "--namespace",
      OWN_NAMESPACE,
      "--set",
      "tls.mode=secret",
      "--set",
      `webhook.url=https://127.0.0.1:${port}/inject`,
      "--set",
      `webhook.caBundle=${Buffer.from(certs.caPem).toString("base64")}`,
      "--set",
      "fullnameOverride=mesh",
      "--set",
      "revision=canary",
      "--set",
      "revisionTags={prod}",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((d): d is Obj => d !== null);
    configText = docs.find((d) => d.kind === "ConfigMap" && d.metadata?.name === "mesh")?.data?.["config.yaml"] ?? "";
    assert.match(configText, /^revisionTags:\n\s*- prod$/m);
    injector = new Injector(port, certs);
    await injector.start(configText);
    await c.createNamespace(OWN_NAMESPACE);
    await c.createNamespace("shop", { "istio.io/rev": "prod" });
    await c.createNamespace("plain");
    await c.createNamespace("stable", { "istio.io/rev": "stable" });
    const configs = docs.filter((d) => d.kind === "MutatingWebhookConfiguration");
    assert.deepEqual(
      configs.map((d) => d.metadata?.name),
      ["mesh", "mesh-tag-prod"],
    );
    for (const d of configs) {
      const created = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", d);
      assert.equal(created.status, 201, created.text);
    }
    // The API server picks up new webhook configurations asynchronously: wait until the tag's is called.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const probe = await c.request<Pod>("POST", "/api/v1/namespaces/shop/pods?dryRun=All", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `probe-${Date.now()}` },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      });
      if (probe.status === 201 && sidecarOf(probe.json)) break;
      assert.ok(Date.now() < deadline, `the tag's webhook was not called within 30 s: ${probe.text.slice(0, 300)}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }
  });

  after(async () => {
    await injector?.dispose();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    await cluster?.stop();
  });

  test("kubectl create in a namespace labelled istio.io/rev=prod: stored injected by revision canary", async () => {
    const file = join(kube().tmpDir, "web.yaml");
    writeFileSync(file, podYaml("web"));
    const r = await kubectl(["create", "-n", "shop", "-f", file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "pod/web created");
    const pod = await stored("shop", "web");
    assert.ok(sidecarOf(pod), "istio-proxy stored");
    assert.equal(pod.metadata?.annotations?.["istio.io/rev"], "canary");
    assert.match(pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "", /"revision":"canary"/);
  });

  test("a Pod labelled istio.io/rev=prod in an unlabelled namespace is injected; istio.io/rev=stable is not", async () => {
    const tagged = join(kube().tmpDir, "tagged.yaml");
    writeFileSync(tagged, podYaml("tagged", { "istio.io/rev": "prod" }));
    const plain = join(kube().tmpDir, "untagged.yaml");
    writeFileSync(plain, podYaml("untagged"));
    for (const [ns, file] of [
      ["plain", tagged],
      ["plain", plain],
      ["stable", plain],
    ] as const) {
      const r = await kubectl(["create", "-n", ns, "-f", file]);
      assert.equal(r.code, 0, `${ns}: ${r.stderr}`);
    }
    assert.ok(sidecarOf(await stored("plain", "tagged")));
    assert.equal(sidecarOf(await stored("plain", "untagged")), undefined);
    assert.equal(sidecarOf(await stored("stable", "untagged")), undefined);
  });

  test("check shows the tag and resolves the namespace through it", async () => {
    const json = await runCli(["check", "-n", "shop", "-o", "json", "--kubeconfig", kube().kubeconfigPath], {
      env: env(),
    });
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as CheckReport;
    assert.deepEqual(report.tags, [{ tag: "prod", revision: "canary", configuration: "mesh-tag-prod", findings: [] }]);
    const web = report.objects.find((o) => o.name === "web");
    assert.deepEqual(web?.injected, { revision: "canary" });
    assert.deepEqual(
      web?.webhooks.filter((w) => w.injects).map((w) => [w.webhook, w.revision, w.tag]),
      [["mesh-tag-prod/rev.namespace.injector.sidecar-injector.dev", "canary", "prod"]],
    );
    assert.ok(
      report.namespaces
        .find((n) => n.name === "shop")
        ?.findings.some((f) => f.message.includes("revision tag prod → canary (configuration mesh-tag-prod)")),
    );
    const table = await runCli(["check", "-n", "shop", "--kubeconfig", kube().kubeconfigPath], { env: env() });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^revision tag prod → canary \(configuration mesh-tag-prod\)$/m);
    assert.match(
      table.stdout,
      /mesh-tag-prod\/rev\.namespace\.injector\.sidecar-injector\.dev +canary \(tag prod\) +yes/,
    );
  });

  test("tls.mode self: the injector publishes the caBundle of the tag's configuration too (the chart's --webhook-config-selector)", async () => {
    const c = kube();
    const port = await freePort();
    const r = await c.helm([
      "template",
      "blue",
      CHART,
      "--namespace",
      "blue-system",
      "--set",
      `webhook.url=https://127.0.0.1:${port}/inject`,
      "--set",
      "fullnameOverride=blue",
      "--set",
      "revision=blue",
      "--set",
      "revisionTags={gold}",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as (Obj & { spec?: { template: { spec: { containers: { args: string[] }[] } } } }) | null)
      .filter((d): d is Obj => d !== null);
    const args =
      (
        docs.find((d) => d.kind === "Deployment") as {
          spec: { template: { spec: { containers: { args: string[] }[] } } };
        }
      ).spec.template.spec.containers[0]?.args ?? [];
    const selector = args[args.indexOf("--webhook-config-selector") + 1];
    assert.ok(selector, args.join(" "));
    const configs = docs.filter((d) => d.kind === "MutatingWebhookConfiguration");
    assert.deepEqual(
      configs.map((d) => d.metadata?.name),
      ["blue", "blue-tag-gold"],
    );
    await c.createNamespace("blue-system");
    await c.createNamespace("gold", { "istio.io/rev": "gold" });
    for (const d of configs) {
      const created = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", d);
      assert.equal(created.status, 201, created.text);
    }
    const self = new Injector(port, {
      args: [
        "--cert-mode",
        "kubernetes",
        "--namespace",
        "blue-system",
        "--webhook-config-selector",
        selector,
        "--ca-secret",
        "blue-ca",
        "--tls-san",
        "127.0.0.1",
      ],
      env: c.env,
      readyTimeoutMs: 30_000,
    });
    try {
      await self.start(docs.find((d) => d.kind === "ConfigMap")?.data?.["config.yaml"] ?? "{}\n");
      // Each webhook of both configurations carries the CA the injector keeps in its Secret.
      const secret = await c.request<{ data: Record<string, string> }>(
        "GET",
        "/api/v1/namespaces/blue-system/secrets/blue-ca",
      );
      assert.equal(secret.status, 200, secret.text);
      for (const name of ["blue", "blue-tag-gold"]) {
        const got = await c.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
          "GET",
          `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
        );
        assert.equal(got.json.webhooks.length, 2, name);
        for (const w of got.json.webhooks) assert.ok(w.clientConfig.caBundle, `${name}: caBundle published`);
      }
      // And the API server, trusting it, has the tag's Pods injected by revision blue.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await c.request<Pod>("POST", "/api/v1/namespaces/gold/pods", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `web-${Date.now()}` },
          spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
        });
        if (probe.status === 201 && sidecarOf(probe.json)) {
          assert.equal(probe.json.metadata?.annotations?.["istio.io/rev"], "blue");
          break;
        }
        assert.ok(Date.now() < deadline, `no injected Pod in gold within 30 s: ${probe.text.slice(0, 300)}`);
        await new Promise((ok) => setTimeout(ok, 300));
      }
    } finally {
      await self.dispose();
    }
  });

  test("preview with the chart's config explains the tag", async () => {
    const config = join(kube().tmpDir, "config.yaml");
    writeFileSync(config, configText);
    const file = join(kube().tmpDir, "preview.yaml");
    writeFileSync(file, podYaml("web"));
    const r = await runCli(
      [
        "preview",
        "-f",
        file,
        "--config",
        config,
        "-n",
        "shop",
        "--namespace-labels",
        "istio.io/rev=prod",
        "-o",
        "json",
      ],
      { env: env() },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /namespace shop has istio\.io\/rev=prod \(revision tag prod → canary\): the API server calls the injector/,
    );
  });
});
