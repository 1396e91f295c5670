// Which webhooks the API server calls for a Pod CREATE: rules, label selector semantics (each
// operator, absent keys), the namespace's kubernetes.io/metadata.name, the reasons given, the
// revision of each webhook, and which webhooks count as sidecar injectors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  coversPodCreate,
  isInjector,
  revisionOf,
  selectorMismatch,
  webhookVerdicts,
} from "../../../src/check/selection.js";
import { istiod, ours, pod } from "./fake-inspect.js";

describe("coversPodCreate", () => {
  const rule = (
    over: Partial<{
      operations: string[];
      apiGroups: string[];
      apiVersions: string[];
      resources: string[];
      scope: string;
    }>,
  ) => ({ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], ...over });
  test("pods, *, */* on CREATE or * in the core group, v1 or *", () => {
    for (const r of [
      rule({}),
      rule({ resources: ["*"] }),
      rule({ resources: ["*/*"] }),
      rule({ operations: ["*"] }),
      rule({ apiGroups: ["*"], apiVersions: ["*"] }),
      rule({ scope: "Namespaced" }),
    ]) {
      assert.equal(coversPodCreate([r]), true, JSON.stringify(r));
    }
  });
  test("not: subresources only, UPDATE only, another group or version, cluster scope, no rules", () => {
    for (const r of [
      rule({ resources: ["pods/*"] }),
      rule({ resources: ["pods/status"] }),
      rule({ operations: ["UPDATE"] }),
      rule({ apiGroups: ["apps"] }),
      rule({ apiVersions: ["v1beta1"] }),
      rule({ scope: "Cluster" }),
    ]) {
      assert.equal(coversPodCreate([r]), false, JSON.stringify(r));
    }
    assert.equal(coversPodCreate([]), false);
  });
});

describe("selectorMismatch", () => {
  const labels = { "istio-injection": "enabled", team: "a" };
  test("an absent selector, and an empty one, match everything", () => {
    assert.equal(selectorMismatch(undefined, {}, "pod"), undefined);
    assert.equal(selectorMismatch({}, {}, "pod"), undefined);
  });
  test("matchLabels: the value must be equal", () => {
    assert.equal(selectorMismatch({ matchLabels: { team: "a" } }, labels, "ns"), undefined);
    assert.equal(selectorMismatch({ matchLabels: { team: "b" } }, labels, "ns"), "needs team=b; ns has team=a");
    assert.equal(selectorMismatch({ matchLabels: { env: "x" } }, labels, "ns"), "needs env=x; ns has no label env");
  });
  test("In needs the key; NotIn holds without it; Exists; DoesNotExist", () => {
    assert.equal(
      selectorMismatch(
        { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
        labels,
        "ns",
      ),
      undefined,
    );
    assert.equal(
      selectorMismatch(
        { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
        {},
        "ns",
      ),
      "needs istio-injection in [enabled]; ns has no label istio-injection",
    );
    assert.equal(
      selectorMismatch({ matchExpressions: [{ key: "x", operator: "NotIn", values: ["false"] }] }, {}, "pod"),
      undefined,
    );
    assert.equal(
      selectorMismatch(
        { matchExpressions: [{ key: "x", operator: "NotIn", values: ["false"] }] },
        { x: "false" },
        "pod",
      ),
      "excludes x in [false]; pod has x=false",
    );
    assert.equal(
      selectorMismatch({ matchExpressions: [{ key: "team", operator: "Exists" }] }, labels, "ns"),
      undefined,
    );
    assert.equal(
      selectorMismatch({ matchExpressions: [{ key: "env", operator: "Exists" }] }, labels, "ns"),
      "needs label env; ns has no label env",
    );
    assert.equal(
      selectorMismatch({ matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }, labels, "ns"),
      "needs no label team; ns has team=a",
    );
    assert.equal(
      selectorMismatch({ matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, labels, "ns"),
      undefined,
    );
  });
  test("every requirement must hold; an unknown operator never matches; a hostile value is quoted and bounded", () => {
    assert.match(
      String(
        selectorMismatch(
          { matchLabels: { team: "a" }, matchExpressions: [{ key: "env", operator: "Exists" }] },
          labels,
          "ns",
        ),
      ),
      /needs label env/,
    );
    assert.match(
      String(selectorMismatch({ matchExpressions: [{ key: "team", operator: "Gt", values: ["1"] }] }, labels, "ns")),
      /operator "Gt"/,
    );
    const long = "x".repeat(5000);
    const said = String(selectorMismatch({ matchLabels: { team: "b" } }, { team: long }, "ns"));
    assert.ok(said.length < 200, said);
    assert.match(said, /\(5000 characters\)/);
  });
});

describe("webhookVerdicts, on this chart's and istiod's webhooks", () => {
  const enabled = { name: "demo", labels: { "istio-injection": "enabled" } };
  test("istio-injection=enabled: the namespace webhook of each is called, the others say why not", () => {
    const v = webhookVerdicts([ours(), istiod()], enabled, pod("demo", "web").pod);
    assert.deepEqual(
      v.filter((w) => w.called).map((w) => [w.webhook, w.revision, w.reason]),
      [
        [
          "sidecar-injector/namespace.injector.sidecar-injector.dev",
          "default",
          "namespace label istio-injection=enabled",
        ],
        [
          "istio-sidecar-injector/namespace.sidecar-injector.istio.io",
          "default",
          "namespace label istio-injection=enabled",
        ],
      ],
    );
    const revNs = v.find((w) => w.webhook === "sidecar-injector/rev.namespace.injector.sidecar-injector.dev");
    assert.equal(revNs?.called, false);
    assert.equal(
      revNs?.reason,
      "namespaceSelector needs istio.io/rev in [default]; namespace demo has no label istio.io/rev",
    );
  });
  test("the Pod's opt-out label: excluded by the objectSelector, named", () => {
    const v = webhookVerdicts([ours()], enabled, pod("demo", "web", { "sidecar.istio.io/inject": "false" }).pod);
    assert.ok(v.every((w) => !w.called));
    assert.equal(
      v.find((w) => w.webhook.endsWith("/namespace.injector.sidecar-injector.dev"))?.reason,
      "objectSelector excludes sidecar.istio.io/inject in [false]; the pod has sidecar.istio.io/inject=false",
    );
  });
  test("kube-system, by the kubernetes.io/metadata.name the API server sets, even when labelled", () => {
    const v = webhookVerdicts(
      [ours()],
      { name: "kube-system", labels: { "istio-injection": "enabled" } },
      pod("kube-system", "x").pod,
    );
    assert.ok(v.every((w) => !w.called));
    assert.match(
      String(v.find((w) => w.webhook.endsWith("/namespace.injector.sidecar-injector.dev"))?.reason),
      /excludes kubernetes\.io\/metadata\.name in \[sidecar-injector-system, kube-system\]/,
    );
  });
  test("a Pod in an unlabelled namespace opting in by label: the object webhook; by revision label: that revision's", () => {
    const none = { name: "plain", labels: {} };
    assert.deepEqual(
      webhookVerdicts([ours(), istiod("canary")], none, pod("plain", "a", { "sidecar.istio.io/inject": "true" }).pod)
        .filter((w) => w.called)
        .map((w) => w.webhook),
      ["sidecar-injector/object.injector.sidecar-injector.dev"],
    );
    assert.deepEqual(
      webhookVerdicts([ours(), istiod("canary")], none, pod("plain", "b", { "istio.io/rev": "canary" }).pod)
        .filter((w) => w.called)
        .map((w) => [w.webhook, w.revision]),
      [["istio-sidecar-injector-canary/rev.object.sidecar-injector.istio.io", "canary"]],
    );
  });
  test("matchConditions: evaluated for the stored Pod; false, an error (by failurePolicy) and outside the subset each said", () => {
    const cfg = ours();
    const withConditions = (expression: string, failurePolicy?: string) => ({
      ...cfg,
      webhooks: cfg.webhooks.map((w) => ({
        ...w,
        ...(failurePolicy ? { failurePolicy } : {}),
        matchConditions: [{ name: "not-gateways", expression }],
      })),
    });
    const verdict = (expression: string, labels: Record<string, string> = {}, failurePolicy?: string) =>
      webhookVerdicts([withConditions(expression, failurePolicy)], enabled, pod("demo", "web", labels).pod).find((w) =>
        w.webhook.endsWith("/namespace.injector.sidecar-injector.dev"),
      );
    const holds = verdict("!has(object.metadata.labels) || !('gw' in object.metadata.labels)");
    assert.equal(holds?.called, true);
    assert.equal(holds?.reason, "namespace label istio-injection=enabled; its matchCondition holds");
    const gateway = verdict("!has(object.metadata.labels) || !('gw' in object.metadata.labels)", { gw: "yes" });
    assert.deepEqual(
      [gateway?.called, gateway?.reason],
      [false, "namespace label istio-injection=enabled; matchCondition not-gateways is false"],
    );
    const errors = verdict("object.metadata.labels.gw == 'yes'");
    assert.equal(errors?.called, false);
    assert.match(
      String(errors?.reason),
      /matchCondition not-gateways errors \(no such key: "gw"\): with failurePolicy Fail the Pod is refused/,
    );
    assert.match(
      String(verdict("object.metadata.labels.gw == 'yes'", {}, "Ignore")?.reason),
      /with failurePolicy Ignore the webhook is skipped/,
    );
    const unknown = verdict("object.metadata.name.startsWith('gw-')");
    assert.equal(unknown?.called, true, "outside the subset: taken as called");
    assert.match(
      String(unknown?.reason),
      /matchCondition not-gateways not evaluated \(the function "startsWith" is outside the subset\): "object\.metadata\.name\.startsWith\('gw-'\)"/,
    );
    // request.namespace is the namespace's name.
    assert.equal(verdict("request.namespace == 'demo'")?.called, true);
    assert.equal(verdict("request.namespace != 'demo'")?.called, false);
  });
  test("webhooks that are not sidecar injectors, or not called for pods, are left out", () => {
    const other = {
      name: "cert-manager-webhook",
      labels: {},
      webhooks: [
        {
          name: "webhook.cert-manager.io",
          rules: [
            {
              operations: ["CREATE"],
              apiGroups: ["cert-manager.io"],
              apiVersions: ["v1"],
              resources: ["certificates"],
            },
          ],
          matchConditions: [],
        },
      ],
    };
    const podMutator = {
      name: "vpa",
      labels: {},
      webhooks: [
        {
          name: "vpa.k8s.io",
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          matchConditions: [],
        },
      ],
    };
    assert.deepEqual(webhookVerdicts([other, podMutator], enabled, pod("demo", "web").pod), []);
    assert.equal(isInjector(podMutator, podMutator.webhooks[0]!), false);
  });
});

describe("revisionOf", () => {
  test("the configuration's istio.io/rev label, else the selectors' revision, else default for istio-injection=enabled", () => {
    const canary = ours("canary");
    assert.equal(revisionOf(canary, canary.webhooks[0]!), "canary", "from istio.io/rev In [canary]");
    assert.equal(revisionOf(istiod("blue"), istiod("blue").webhooks[0]!), "blue");
    const def = ours();
    assert.equal(
      revisionOf(
        def,
        def.webhooks.find((w) => w.name.startsWith("namespace."))!,
      ),
      "default",
    );
    assert.equal(
      revisionOf({ name: "x", labels: {}, webhooks: [] }, { name: "x.inject.example", rules: [], matchConditions: [] }),
      "-",
    );
  });
});
