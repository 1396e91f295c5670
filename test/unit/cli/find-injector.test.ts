// The built CLI finds the chart's injector by its label when no flag names it, whatever the
// release is called: `certs status` reads `<name>-ca` in the namespace of the Service the
// webhooks call, `inject --from-cluster` reads the ConfigMap of that configuration; two
// installed is exit 2 with both named and the flag that picks one; a flag always wins. The
// cluster is a plain HTTP server standing in for the API server, which filters the list by
// the label selector as the API server does (key=value and !key).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { runCli, type Ran } from "../../support/run.js";
import { sendJson, startStandInApi, type StandInApi } from "../../support/stand-in-api.js";

const dir = mkdtempSync(join(tmpdir(), "cli-find-injector-"));
let api: StandInApi;
/** Paths (without the query) the stand-in API server was asked, in order. */
const asked: string[] = [];
/** The MutatingWebhookConfigurations the cluster holds. */
let configs: { name: string; labels: Record<string, string>; namespace: string }[] = [];

const CHART = { "app.kubernetes.io/part-of": "sidecar-injector", "app.kubernetes.io/name": "sidecar-injector" };
const MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

function toObject(c: (typeof configs)[number]) {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: c.name, labels: c.labels, resourceVersion: "1" },
    webhooks: [
      {
        name: "rev.namespace.injector.sidecar-injector.dev",
        clientConfig: { service: { name: c.name, namespace: c.namespace, path: "/inject" } },
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
      },
    ],
  };
}

/** Whether labels match a selector of key=value and !key terms. */
function matches(labels: Record<string, string>, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(",").every((t) => {
    if (t.startsWith("!")) return !Object.hasOwn(labels, t.slice(1));
    const [k = "", v] = t.split("=");
    return labels[k] === v;
  });
}

before(async () => {
  api = await startStandInApi(dir, (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    asked.push(url.pathname);
    if (url.pathname === MWC) {
      sendJson(res, 200, {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfigurationList",
        metadata: {},
        items: configs.filter((c) => matches(c.labels, url.searchParams.get("labelSelector"))).map(toObject),
      });
      return true;
    }
    const found = configs.find((c) => url.pathname === `${MWC}/${c.name}`);
    if (found === undefined) return false;
    sendJson(res, 200, toObject(found));
    return true;
  });
});
after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  asked.length = 0;
});

function run(args: readonly string[]): Promise<Ran> {
  return runCli(args, { cwd: dir, env: { ...process.env, KUBECONFIG: api.kubeconfig, KUBERNETES_SERVICE_HOST: "" } });
}

describe("the injector found by the chart's label", () => {
  test("certs status: a release named mesh-inj in namespace mesh, its tag configuration and istiod beside it", async () => {
    configs = [
      { name: "mesh-inj", labels: CHART, namespace: "mesh" },
      { name: "mesh-inj-tag-prod", labels: { ...CHART, "istio.io/tag": "prod" }, namespace: "mesh" },
      { name: "istio-sidecar-injector", labels: { app: "sidecar-injector" }, namespace: "istio-system" },
    ];
    const r = await run(["certs", "status"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /CA Secret mesh\/mesh-inj-ca: not found/);
    assert.match(r.stdout, /MutatingWebhookConfiguration mesh-inj: 1 webhook\(s\)/);
    assert.ok(asked.includes("/api/v1/namespaces/mesh/secrets/mesh-inj-ca"), asked.join(" "));
    assert.equal(r.stderr, "");
  });

  test("inject --from-cluster: the ConfigMap of the configuration found", async () => {
    configs = [{ name: "mesh-inj", labels: CHART, namespace: "mesh" }];
    writeFileSync(
      join(dir, "pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: nginx}]}\n",
    );
    const r = await run(["inject", "-f", "pod.yaml", "--from-cluster"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /MutatingWebhookConfiguration mesh-inj cannot be found: configmap mesh\/mesh-inj does not exist/,
    );
    assert.ok(asked.includes("/api/v1/namespaces/mesh/configmaps/mesh-inj"), asked.join(" "));
  });

  test("two releases: exit 2 naming both and the flags that pick one; --namespace and --webhook-config pick", async () => {
    configs = [
      { name: "mesh-inj", labels: CHART, namespace: "mesh" },
      { name: "canary", labels: CHART, namespace: "canary-system" },
    ];
    const r = await run(["certs", "status"]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "error: 2 sidecar injectors are installed: mesh-inj (namespace mesh), canary (namespace canary-system); pick one with --webhook-config NAME or --namespace NS\n",
    );
    assert.equal(r.stdout, "");
    const byNamespace = await run(["certs", "status", "-n", "canary-system"]);
    assert.match(byNamespace.stdout, /CA Secret canary-system\/canary-ca: not found/);
    const byName = await run(["certs", "status", "--webhook-config", "mesh-inj", "--ca-secret", "own-ca"]);
    assert.match(byName.stdout, /CA Secret mesh\/own-ca: not found/);
    assert.match(byName.stdout, /MutatingWebhookConfiguration mesh-inj: 1 webhook\(s\)/);
  });

  test("none: the old default names, and a note saying what was looked for and which flag to pass", async () => {
    configs = [{ name: "istio-sidecar-injector", labels: { app: "sidecar-injector" }, namespace: "istio-system" }];
    const r = await run(["certs", "status"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /CA Secret sidecar-injector-system\/sidecar-injector-ca: not found/);
    assert.match(
      r.stderr,
      /^note: no MutatingWebhookConfiguration labelled app\.kubernetes\.io\/part-of=sidecar-injector \(the chart's\), so the default name sidecar-injector was used; name the injector's with --webhook-config NAME\n$/,
    );
  });
});
