// `check` over an in-memory cluster: two injectors for one namespace (an error, exit 1), an
// injected stored Pod said to be injected, a Pod a restart would inject, istio-injection=true,
// a Deployment's template, hostNetwork, objects and namespaces that are not there, -A, and the
// table, with nothing read but what is needed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { check, CheckNotFoundError, formatCheckTable, type CheckReport } from "../../../src/check/check.js";
import { buildConfig } from "../../../src/config/load.js";
import { FakeInspect, istiod, ours, pod } from "./fake-inspect.js";

const config = buildConfig({});

function cluster(): FakeInspect {
  const k = new FakeInspect();
  k.configs = [ours()];
  k.namespaces = [
    { name: "demo", labels: { "istio-injection": "enabled" } },
    { name: "typo", labels: { "istio-injection": "true" } },
    { name: "plain", labels: {} },
  ];
  k.objects = [
    pod("demo", "fresh"),
    pod(
      "demo",
      "injected",
      {},
      {
        annotations: { "sidecar.istio.io/status": '{"containers":["istio-proxy"]}', "istio.io/rev": "default" },
        containers: ["app", "istio-proxy"],
      },
    ),
    pod("demo", "host", {}, { hostNetwork: true }),
    pod("typo", "web"),
    pod("plain", "opted-in", { "sidecar.istio.io/inject": "true" }),
  ];
  return k;
}

const findings = (r: CheckReport, name: string): string[] =>
  r.objects.find((o) => o.name === name)?.findings.map((f) => `${f.severity}: ${f.message}`) ?? [];

describe("check", () => {
  test("one injector: a Pod created before injection was on would be injected now; an injected one is said to be", async () => {
    const k = cluster();
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.equal(r.errors, 0);
    assert.deepEqual(
      r.objects.map((o) => o.name),
      ["fresh", "injected", "host"],
    );
    assert.deepEqual(findings(r, "fresh"), [
      "warning: not injected, but would be now (created before injection was turned on?): restart it to get the sidecar",
    ]);
    // No ConfigMap for the injector in this cluster: its sidecar is not compared, and that is said.
    assert.deepEqual(findings(r, "injected"), [
      "info: already injected (revision default); its sidecar was not compared: the config of sidecar-injector is not known (configmap sidecar-injector-system/sidecar-injector does not exist): give it with --config",
    ]);
    assert.deepEqual(r.objects.find((o) => o.name === "injected")?.injected, { revision: "default" });
    assert.deepEqual(k.calls.sort(), [
      "listDeployments app.kubernetes.io/part-of=sidecar-injector",
      "listMutatingAdmissionPolicies",
      "listMutatingWebhookConfigurations",
      "listPods demo",
      "readConfigMap sidecar-injector-system/sidecar-injector",
      "readNamespace demo",
    ]);
  });

  test("hostNetwork: the webhook is called, but does not inject, and says why", async () => {
    const r = await check(cluster(), { config, targets: [{ kind: "Pod", name: "host" }], namespace: "demo" });
    const called = r.objects[0]?.webhooks.find((w) => w.called);
    assert.equal(called?.injects, false);
    assert.match(String(called?.reason), /called, but hostNetwork pods are never injected/);
    assert.deepEqual(r.objects[0]?.findings, []);
  });

  test("a second injector (istiod) selecting the same namespace: an error naming both, and exit 1", async () => {
    const k = cluster();
    k.configs = [ours(), istiod()];
    const r = await check(k, { config, targets: [{ kind: "Pod", name: "fresh" }], namespace: "demo" });
    assert.equal(r.errors, 2, "the namespace, and the Pod");
    assert.deepEqual(r.namespaces[0]?.findings, [
      {
        severity: "error",
        message:
          "2 injectors select namespace demo: sidecar-injector/namespace.injector.sidecar-injector.dev, istio-sidecar-injector/namespace.sidecar-injector.istio.io; each new Pod in it goes through each in turn, in the order of their configurations' names, and the last one re-injects what the others injected, so its config decides the sidecar: keep one, except while switching injectors (README: Switching a namespace from istiod)",
      },
    ]);
    assert.ok(
      findings(r, "fresh").includes(
        "error: 2 injectors would inject this Pod: sidecar-injector/namespace.injector.sidecar-injector.dev, istio-sidecar-injector/namespace.sidecar-injector.istio.io",
      ),
      findings(r, "fresh").join("\n"),
    );
    const text = formatCheckTable(r);
    assert.match(text, /^ {2}WEBHOOK +REVISION +INJECTED +REASON$/m);
    assert.match(
      text,
      /^ {2}sidecar-injector\/namespace\.injector\.sidecar-injector\.dev +default +yes +namespace label istio-injection=enabled$/m,
    );
    assert.match(
      text,
      /^ {2}istio-sidecar-injector\/namespace\.sidecar-injector\.istio\.io +default +yes +namespace label istio-injection=enabled$/m,
    );
    assert.match(text, /^ {2}error: 2 injectors would inject this Pod/m);
    // A canary istiod, on another revision, is no double injection.
    k.configs = [ours(), istiod("canary")];
    assert.equal((await check(k, { config, targets: [{ kind: "Pod", name: "fresh" }], namespace: "demo" })).errors, 0);
  });

  test("a namespace labelled for injection that no injector selects: a revision nobody serves, no injector at all", async () => {
    const k = cluster();
    k.namespaces.push({ name: "canary", labels: { "istio.io/rev": "canary" } });
    let r = await check(k, { config, targets: [], namespace: "canary" });
    assert.deepEqual(r.namespaces[0]?.findings, [
      {
        severity: "warning",
        message:
          "namespace canary has istio.io/rev=canary, but no injector webhook in the cluster would inject its Pods (no injector serves that revision?)",
      },
    ]);
    // Served once an injector of that revision is there; one injector is no error.
    k.configs = [ours(), istiod("canary")];
    r = await check(k, { config, targets: [], namespace: "canary" });
    assert.deepEqual(r.namespaces[0]?.findings, []);
    k.configs = [];
    r = await check(k, { config, targets: [], namespace: "demo" });
    assert.deepEqual(
      r.namespaces[0]?.findings.map((f) => f.message),
      ["namespace demo has istio-injection=enabled, but no injector webhook in the cluster would inject its Pods"],
    );
    // Both labels: istio-injection wins, and that is said; no injector then is said too.
    k.configs = [ours()];
    k.namespaces.push({ name: "both", labels: { "istio-injection": "enabled", "istio.io/rev": "canary" } });
    r = await check(k, { config, targets: [], namespace: "both" });
    assert.deepEqual(
      r.namespaces[0]?.findings.map((f) => `${f.severity}: ${f.message}`),
      ["info: namespace both has both istio-injection and istio.io/rev: istio-injection wins"],
    );
  });

  test("istio-injection=true: a warning on the namespace, and no webhook called for its Pods", async () => {
    const r = await check(cluster(), { config, targets: [], namespace: "typo" });
    assert.deepEqual(
      r.namespaces[0]?.findings.map((f) => f.severity),
      ["warning"],
    );
    assert.match(
      String(r.namespaces[0]?.findings[0]?.message),
      /istio-injection=true: only "enabled" and "disabled" mean anything/,
    );
    assert.ok(r.objects[0]?.webhooks.every((w) => !w.called));
    assert.match(formatCheckTable(r), /^namespace typo: istio-injection=true$/m);
  });

  test("a Deployment: its Pod template is checked", async () => {
    const k = cluster();
    const template = pod("demo", "", { app: "shop", "sidecar.istio.io/inject": "false" }).pod;
    k.objects.push({ kind: "Deployment", namespace: "demo", name: "shop", pod: template });
    const r = await check(k, { config, targets: [{ kind: "Deployment", name: "shop" }], namespace: "demo" });
    assert.equal(r.objects[0]?.kind, "Deployment");
    assert.ok(r.objects[0]?.webhooks.every((w) => !w.called));
    assert.match(formatCheckTable(r), /^deployment\/shop \(namespace demo\)$/m);
    assert.match(formatCheckTable(r), /objectSelector excludes sidecar\.istio\.io\/inject in \[false\]/);
  });

  test("an object or a namespace that is not there: CheckNotFoundError naming it", async () => {
    await assert.rejects(
      check(cluster(), { config, targets: [{ kind: "Pod", name: "nope" }], namespace: "demo" }),
      (e: unknown) => e instanceof CheckNotFoundError && e.message === "pod/nope not found in namespace demo",
    );
    await assert.rejects(
      check(cluster(), { config, targets: [], namespace: "gone" }),
      (e: unknown) => e instanceof CheckNotFoundError && /namespace gone not found/.test(e.message),
    );
  });

  test("-A: every Pod; the namespaces with Pods or an injection label, with their findings", async () => {
    const k = cluster();
    k.namespaces.push({ name: "empty", labels: {} });
    const r = await check(k, { config, targets: [], namespace: "default", allNamespaces: true });
    assert.equal(r.objects.length, 5);
    assert.deepEqual(
      r.namespaces.map((n) => n.name),
      ["demo", "plain", "typo"],
    );
    assert.match(
      String(r.namespaces.find((n) => n.name === "plain")?.findings[0]?.message),
      /no istio-injection or istio.io\/rev label/,
    );
    assert.deepEqual(findings(r, "opted-in"), [
      "warning: not injected, but would be now (created before injection was turned on?): restart it to get the sidecar",
    ]);
    assert.ok(k.calls.includes("listPods *") && k.calls.includes("listNamespaces"));
  });

  test("an injected Pod nothing would inject now, and no injector in the cluster at all", async () => {
    const k = cluster();
    k.namespaces[0] = { name: "demo", labels: {} };
    let r = await check(k, { config, targets: [{ kind: "Pod", name: "injected" }], namespace: "demo" });
    assert.ok(
      findings(r, "injected").includes(
        "warning: injected, but no injector would inject it now: recreated, it has no sidecar",
      ),
    );
    k.configs = [];
    r = await check(k, { config, targets: [{ kind: "Pod", name: "fresh" }], namespace: "demo" });
    assert.match(formatCheckTable(r), /no sidecar injector webhook in the cluster is called for Pods/);
  });
});
