// Which injector a command means when no flag names it: the chart's configuration found by its
// label whatever the release is called, its Service's namespace and `<name>-ca`; flags winning;
// none (the old defaults, with a note), several (an error listing them, exit 2), a URL instead
// of a Service, a list the user may not make, and tag configurations left out.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CheckNotFoundError, findInjector, INJECTOR_SELECTOR } from "../../../src/check/find-injector.js";
import { exitStatusOf } from "../../../src/admission/errors.js";
import { KubeError } from "../../../src/kube/api.js";
import { FakeKube } from "../certs/fake-kube.js";

const CHART_LABELS = { "app.kubernetes.io/part-of": "sidecar-injector", "app.kubernetes.io/name": "sidecar-injector" };

function release(name: string, namespace: string | undefined, labels: Record<string, string> = CHART_LABELS) {
  return {
    name,
    labels,
    resourceVersion: 1,
    webhooks: [
      {
        name: "rev.namespace.injector.sidecar-injector.dev",
        clientConfig:
          namespace === undefined ? { url: "https://127.0.0.1:9443/inject" } : { service: { name, namespace } },
      },
    ],
  };
}

/** A cluster with these configurations and no unlabelled one. */
function cluster(...configs: ReturnType<typeof release>[]): FakeKube {
  const k = new FakeKube();
  k.webhook = undefined;
  k.others = configs;
  return k;
}

describe("findInjector", () => {
  test("one release under another name: its name, its Service's namespace, <name>-ca", async () => {
    const k = cluster(release("mesh-inj", "mesh"), release("istio-sidecar-injector", "istio-system", { app: "x" }));
    assert.deepEqual(await findInjector(k, {}), {
      webhookConfig: "mesh-inj",
      namespace: "mesh",
      caSecret: "mesh-inj-ca",
      found: "label",
    });
  });

  test("a tag configuration of the same release is not a second injector", async () => {
    const tag = release("mesh-inj-tag-prod", "mesh", { ...CHART_LABELS, "istio.io/tag": "prod" });
    const k = cluster(release("mesh-inj", "mesh"), tag);
    assert.equal((await findInjector(k, {})).webhookConfig, "mesh-inj");
    assert.match(INJECTOR_SELECTOR, /!istio\.io\/tag/);
  });

  test("flags win: --webhook-config (namespace from its Service), --namespace, --ca-secret", async () => {
    const k = cluster(release("mesh-inj", "mesh"), release("other", "elsewhere"));
    assert.deepEqual(await findInjector(k, { webhookConfig: "other" }), {
      webhookConfig: "other",
      namespace: "elsewhere",
      caSecret: "other-ca",
      found: "flag",
    });
    assert.deepEqual(await findInjector(k, { webhookConfig: "other", namespace: "x", caSecret: "my-ca" }), {
      webhookConfig: "other",
      namespace: "x",
      caSecret: "my-ca",
      found: "flag",
    });
    // A named configuration that is not there: the default namespace, for the report to say it is missing.
    assert.equal((await findInjector(k, { webhookConfig: "gone" })).namespace, "sidecar-injector-system");
  });

  test("several: an error naming each with its namespace and the flag that picks one; --namespace picks", async () => {
    const k = cluster(release("mesh-inj", "mesh"), release("canary", "canary-system"));
    await assert.rejects(findInjector(k, {}), (e: unknown) => {
      assert.ok(e instanceof CheckNotFoundError);
      assert.equal(
        e.message,
        "2 sidecar injectors are installed: mesh-inj (namespace mesh), canary (namespace canary-system); pick one with --webhook-config NAME or --namespace NS",
      );
      assert.equal(exitStatusOf(e.code), 2);
      return true;
    });
    assert.equal((await findInjector(k, { namespace: "canary-system" })).webhookConfig, "canary");
    await assert.rejects(
      findInjector(k, { namespace: "nowhere" }),
      /: no sidecar injector is installed in namespace nowhere; there are: mesh-inj \(namespace mesh\), canary \(namespace canary-system\); pick one with --webhook-config NAME$/,
    );
  });

  test("none labelled: the old default names, with a note saying what was looked for and which flag", async () => {
    const k = cluster(release("istiod", "istio-system", { app: "sidecar-injector" }));
    const found = await findInjector(k, { namespace: "sys" });
    assert.equal(found.found, "default");
    assert.deepEqual(
      [found.webhookConfig, found.namespace, found.caSecret],
      ["sidecar-injector", "sys", "sidecar-injector-ca"],
    );
    assert.match(found.note ?? "", /labelled app\.kubernetes\.io\/part-of=sidecar-injector.*--webhook-config NAME/);
  });

  test("a list refused (403) is none found, said; another failure is thrown", async () => {
    const k = cluster(release("mesh-inj", "mesh"));
    k.listWebhookConfigs = async () => {
      throw new KubeError("forbidden", 403);
    };
    assert.match((await findInjector(k, {})).note ?? "", /listing MutatingWebhookConfigurations was refused/);
    k.down = true;
    k.listWebhookConfigs = FakeKube.prototype.listWebhookConfigs;
    await assert.rejects(findInjector(k, {}), KubeError);
  });

  test("webhooks that call a URL: the name, no namespace", async () => {
    const found = await findInjector(cluster(release("dev", undefined)), {});
    assert.deepEqual([found.webhookConfig, found.namespace], ["dev", undefined]);
  });
});
