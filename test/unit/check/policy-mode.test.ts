// check with the chart's policy mode installed: which injector takes each Pod and why, the
// webhooks' not-injected-by-policy condition decided by the same domain, a policy rendered for
// another config, and a cluster that does not serve or lets the caller list the policies.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { check, formatCheckTable, type CheckReport } from "../../../src/check/check.js";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import { inject } from "../../../src/injection/inject.js";
import type { AdmissionPolicies, StoredObject } from "../../../src/kube/api.js";
import { KubeError } from "../../../src/kube/api.js";
import { policyList, renderPolicy, WEBHOOK_CONDITION_ANNOTATION } from "../../../src/policy/render.js";
import { FakeInspect, ours, pod } from "./fake-inspect.js";

const OWN = "sidecar-injector-system";
const config = DEFAULT_CONFIG;

type Item = { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec: Obj };
type Obj = Record<string, unknown>;

/** The policy and bindings `policy render` prints for `rendered`, as the cluster lists them. */
function installed(rendered: Config): AdmissionPolicies {
  const list = policyList(
    renderPolicy(rendered, {
      apiVersion: "v1beta1",
      name: "sidecar-injector",
      namespace: OWN,
      nativeSidecarsSupported: false,
      enableNamespacesByDefault: false,
    }),
  ) as { items: Item[] };
  const [policy, ...bindings] = list.items;
  assert.ok(policy);
  return {
    apiVersion: "admissionregistration.k8s.io/v1beta1",
    policies: [
      {
        name: policy.metadata.name,
        labels: {},
        annotations: policy.metadata.annotations ?? {},
        matchConditions: policy.spec.matchConditions as { name: string; expression: string }[],
      },
    ],
    bindings: bindings.map((b) => {
      const match = b.spec.matchResources as Obj;
      return {
        name: b.metadata.name,
        policyName: String(b.spec.policyName),
        namespaceSelector: match.namespaceSelector as never,
        objectSelector: match.objectSelector as never,
      };
    }),
  };
}

/** A cluster with the chart in policy mode: its webhooks carry the policy's matchCondition. */
function cluster(policyConfig: Config = config, configYaml = "{}\n"): FakeInspect {
  const k = new FakeInspect();
  const policies = installed(policyConfig);
  k.admissionPolicies = policies;
  const condition = policies.policies[0]?.annotations[WEBHOOK_CONDITION_ANNOTATION] ?? "";
  const mwc = ours();
  k.configs = [
    {
      ...mwc,
      labels: { ...mwc.labels, "app.kubernetes.io/part-of": "sidecar-injector" },
      webhooks: mwc.webhooks.map((w) => ({
        ...w,
        matchConditions: [{ name: "not-injected-by-policy", expression: condition }],
      })),
    },
  ];
  k.configMaps.set(`${OWN}/sidecar-injector`, { "config.yaml": configYaml });
  k.namespaces = [{ name: "demo", labels: { "istio-injection": "enabled" } }];
  k.objects = [
    pod("demo", "plain", { app: "plain" }),
    pod(
      "demo",
      "tuned",
      { app: "tuned" },
      { annotations: { "sidecar.istio.io/proxyImage": "example.com/proxyv2:1.28.0" } },
    ),
    pod("demo", "optout", { app: "optout" }, { annotations: { "sidecar.istio.io/inject": "false" } }),
  ];
  return k;
}

const objectOf = (r: CheckReport, name: string) => {
  const o = r.objects.find((x) => x.name === name);
  assert.ok(o, name);
  return o;
};

describe("check: the chart's policy mode", () => {
  test("a Pod inside the domain is the policy's; the webhook is not called for it, and says why", async () => {
    const r = await check(cluster(), { config, targets: [], namespace: "demo" });
    assert.deepEqual(r.policies?.[0]?.name, "sidecar-injector");
    assert.deepEqual(r.policies?.[0]?.findings, []);
    assert.equal(r.policies?.[0]?.config, `configmap ${OWN}/sidecar-injector`);
    const plain = objectOf(r, "plain");
    assert.deepEqual(plain.policy, {
      policy: "sidecar-injector",
      injector: "policy",
      injects: true,
      reason: "MutatingAdmissionPolicy sidecar-injector (binding sidecar-injector-namespace): injects it",
    });
    const called = plain.webhooks.filter((w) => w.called);
    assert.equal(called.length, 0, JSON.stringify(plain.webhooks));
    const nsHook = plain.webhooks.find((w) => w.webhook.endsWith("/namespace.injector.sidecar-injector.dev"));
    assert.match(
      nsHook?.reason ?? "",
      /matchCondition not-injected-by-policy is false \(inside the domain of MutatingAdmissionPolicy sidecar-injector, which takes it\)$/,
    );
    // Not injected, and an injector (the policy) would inject it now: the usual warning, no error.
    assert.deepEqual(
      plain.findings.map((f) => f.severity),
      ["warning"],
    );
    assert.equal(r.errors, 0);
  });

  test("a Pod outside the domain falls to the webhook, with the domain's reason; the webhook injects it", async () => {
    const r = await check(cluster(), { config, targets: [], namespace: "demo" });
    const tuned = objectOf(r, "tuned");
    assert.deepEqual(tuned.policy, {
      policy: "sidecar-injector",
      injector: "webhook",
      injects: false,
      reason: 'the Pod has the annotation "sidecar.istio.io/proxyImage", which only the webhook reads',
    });
    const injecting = tuned.webhooks.filter((w) => w.injects);
    assert.deepEqual(
      injecting.map((w) => w.webhook),
      ["sidecar-injector/namespace.injector.sidecar-injector.dev"],
    );
    assert.match(injecting[0]?.reason ?? "", /its matchCondition holds/);
  });

  test("a Pod its binding leaves out: no binding selects it, and no webhook is called", async () => {
    const k = cluster();
    k.objects = [pod("demo", "labelled-out", { app: "x", "sidecar.istio.io/inject": "false" })];
    const r = await check(k, { config, targets: [], namespace: "demo" });
    const o = objectOf(r, "labelled-out");
    assert.equal(o.policy?.injector, "none");
    assert.equal(o.policy?.reason, "no binding of MutatingAdmissionPolicy sidecar-injector selects it");
    assert.ok(o.webhooks.every((w) => !w.called));
  });

  test("inside the domain, but the decision says no: the policy takes it and does not inject it", async () => {
    const r = await check(cluster(), { config, targets: [], namespace: "demo" });
    const o = objectOf(r, "optout");
    assert.equal(o.policy?.injector, "policy");
    assert.equal(o.policy?.injects, false);
    assert.match(o.policy?.reason ?? "", /: does not inject it: .*sidecar\.istio\.io\/inject/);
    assert.deepEqual(o.findings, []);
  });

  test("a Pod the policy injected is judged as created again: the policy's, and no 'no injector' warning", async () => {
    const k = cluster();
    const given = pod("demo", "done", { app: "done" });
    const result = inject(given.pod, { namespace: "demo", nativeSidecarsSupported: false }, config);
    assert.ok(result.decision.inject);
    const stored: StoredObject = { kind: "Pod", namespace: "demo", name: "done", pod: result.pod, stored: result.pod };
    k.objects = [stored];
    const r = await check(k, { config, targets: [], namespace: "demo" });
    const o = objectOf(r, "done");
    assert.equal(o.policy?.injector, "policy", o.policy?.reason);
    assert.equal(o.policy?.injects, true);
    assert.ok(!o.findings.some((f) => /no injector would inject it now/.test(f.message)), JSON.stringify(o.findings));
    assert.equal(o.sidecar?.compared, true);
  });

  test("a workload's template is judged as the Pods its controller creates", async () => {
    const k = cluster();
    const template = pod("demo", "", { app: "shop" }).pod;
    k.objects = [
      {
        kind: "Deployment",
        namespace: "demo",
        name: "shop",
        pod: { ...template, metadata: { labels: { app: "shop" } } },
      },
    ];
    const r = await check(k, { config, targets: [{ kind: "Deployment", name: "shop" }], namespace: "demo" });
    assert.equal(objectOf(r, "shop").policy?.injector, "policy");
  });

  test("the text: the policy with its bindings, and a 'policy mode:' line per object", async () => {
    const text = formatCheckTable(await check(cluster(), { config, targets: [], namespace: "demo" }));
    assert.match(
      text,
      /^MutatingAdmissionPolicy sidecar-injector \(admissionregistration\.k8s\.io\/v1beta1; bindings: sidecar-injector-rev\.namespace, .*; domain of configmap sidecar-injector-system\/sidecar-injector\)$/m,
    );
    assert.match(
      text,
      /^ {2}policy mode: handled by the MutatingAdmissionPolicy sidecar-injector \(binding sidecar-injector-namespace\): injects it$/m,
    );
    assert.match(
      text,
      /^ {2}policy mode: falls to the webhook: the Pod has the annotation "sidecar\.istio\.io\/proxyImage", which only the webhook reads$/m,
    );
  });

  test("a policy rendered for another config than the injector's: a warning that says to render it again", async () => {
    const k = cluster(config, stringify({ rewriteAppProbes: false }));
    const r = await check(k, { config, targets: [], namespace: "demo" });
    const findings = r.policies?.[0]?.findings ?? [];
    assert.equal(findings.length, 1);
    assert.equal(findings[0]?.severity, "warning");
    assert.match(findings[0]?.message ?? "", /was rendered for another config than configmap .*: render it again/);
    // The same policy against the config it was rendered for: nothing to say.
    const same = await check(cluster(parseConfig("rewriteAppProbes: false\n"), "rewriteAppProbes: false\n"), {
      config,
      targets: [],
      namespace: "demo",
    });
    assert.deepEqual(same.policies?.[0]?.findings, []);
  });

  test("the injector's config not known: the defaults' domain, said as info", async () => {
    const k = cluster();
    k.configMaps.clear();
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.equal(r.policies?.[0]?.config, "the defaults");
    assert.match(
      r.policies?.[0]?.findings[0]?.message ?? "",
      /^the injector's config is not known \(configmap .* does not exist\)/,
    );
    assert.equal(objectOf(r, "plain").policy?.injector, "policy");
  });

  test("no policy mode: no policies key, no policy line; not served or refused is said, never an error", async () => {
    const k = cluster();
    k.admissionPolicies = undefined;
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.equal(r.policies, undefined);
    assert.equal(objectOf(r, "plain").policy, undefined);
    assert.ok(!formatCheckTable(r).includes("policy mode"));
    k.admissionPolicies = new KubeError("list mutatingadmissionpolicies: forbidden", 403);
    const refused = await check(k, { config, targets: [], namespace: "demo" });
    assert.deepEqual(refused.findings, [
      {
        severity: "info",
        message:
          "the chart's policy mode (listing MutatingAdmissionPolicies) cannot be checked: list mutatingadmissionpolicies: forbidden",
      },
    ]);
    assert.equal(refused.errors, 0);
    // Another error of the API server is not hidden.
    k.admissionPolicies = new KubeError("list mutatingadmissionpolicies: etcd is down", 500);
    await assert.rejects(check(k, { config, targets: [], namespace: "demo" }), /etcd is down/);
  });
});
