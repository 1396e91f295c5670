// preview's policyMode: which injector takes each Pod once the chart's policy mode is on, the
// same verdict as `policy check` (the domain of the policy `policy render` prints), in the JSON
// entry and as a line of the summary; a precomputed domain is used as given.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import type { Pod } from "../../../src/kube/types.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { policyDomain, verdict, type PolicyDomain } from "../../../src/policy/verdict.js";
import { formatPreview, preview, type PreviewEntry } from "../../../src/preview.js";
import { formatPreviewSummary } from "../../../src/preview-summary.js";
import { podReview } from "../../support/review.js";

const config = buildConfig({});
const enabled = { "istio-injection": "enabled" };

function pod(name: string, annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: name }, annotations },
    spec: { containers: [{ name: "app", image: "nginx:1.27", ports: [{ containerPort: 80, name: "http" }] }] },
  };
}

const DEPLOYMENT = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "shop", namespace: "store" },
  spec: {
    selector: { matchLabels: { app: "shop" } },
    template: { metadata: { labels: { app: "shop" } }, spec: { containers: [{ name: "shop", image: "shop:1" }] } },
  },
};

async function entries(docs: unknown[], domain?: PolicyDomain): Promise<PreviewEntry[]> {
  return preview(docs, { config, givenLabels: enabled, ...(domain ? { policyDomain: domain } : {}) });
}

describe("preview: policyMode", () => {
  test("a plain Pod is the policy's; one with an annotation only the webhook reads falls to it, naming it", async () => {
    const [covered, annotated] = await entries([
      pod("web"),
      pod("tuned", { "sidecar.istio.io/proxyImage": "example.com/proxyv2:1.28.0" }),
    ]);
    assert.deepEqual(covered?.policyMode, { injector: "policy" });
    assert.deepEqual(annotated?.policyMode, {
      injector: "webhook",
      reason: 'the Pod has the annotation "sidecar.istio.io/proxyImage", which only the webhook reads',
    });
  });

  test("the same verdict as `policy check`: the rules of the policy render prints", async () => {
    const rendered = renderPolicy(config, {
      apiVersion: "v1beta1",
      name: "sidecar-injector",
      namespace: "sidecar-injector-system",
      nativeSidecarsSupported: false,
      enableNamespacesByDefault: false,
    });
    const pods = [
      pod("a"),
      pod("b", { "prometheus.io.scrape": "true" }),
      { ...pod("c"), spec: { containers: [{ name: "istio-proxy", image: "mine" }] } },
      // A probe the policy rewrites itself; one whose path JSON would escape is the webhook's.
      {
        ...pod("d"),
        spec: { containers: [{ name: "d", image: "d", readinessProbe: { httpGet: { path: "/", port: 80 } } }] },
      },
      {
        ...pod("e"),
        spec: { containers: [{ name: "e", image: "e", readinessProbe: { httpGet: { path: '/"q"', port: 80 } } }] },
      },
      // An annotation the policy honours (a plain quantity) is the policy's, as it renders it.
      pod("f", { "sidecar.istio.io/proxyCPU": "200m" }),
    ];
    const got = await entries(pods);
    assert.deepEqual(
      got.map((e) => e.policyMode),
      pods.map((p) => verdict(rendered.rules, p)),
    );
    assert.deepEqual(
      got.map((e) => e.policyMode?.injector),
      ["policy", "webhook", "webhook", "policy", "webhook", "policy"],
    );
  });

  test("a workload is judged as the Pods its controller creates (generateName, controller reference)", async () => {
    const [e] = await entries([DEPLOYMENT]);
    assert.deepEqual(e?.policyMode, { injector: "policy" });
    // A Pod with neither name nor controller has no workload name for the policy to write.
    const [nameless] = await entries([{ ...pod("x"), metadata: { labels: { app: "x" } } }]);
    assert.equal(nameless?.policyMode?.injector, "webhook");
  });

  test("a Pod the injector refuses still says which injector would take it", async () => {
    const [e] = await entries([pod("bad", { "sidecar.istio.io/proxyCPU": "lots" })]);
    assert.ok(e?.error, "refused");
    assert.equal(e.policyMode?.injector, "webhook");
  });

  test("a Pod the engine cannot read has none; the next one still has its own", async () => {
    const [broken, fine] = await entries([
      { apiVersion: "v1", kind: "Pod", metadata: { name: "broken" }, spec: { containers: "app" } },
      pod("fine"),
    ]);
    assert.equal(broken?.error?.code, "ERR_INVALID_POD");
    assert.equal(broken?.policyMode, undefined);
    assert.deepEqual(fine?.policyMode, { injector: "policy" });
  });

  test("an AdmissionReview that is no Pod CREATE has none: no injector takes it", async () => {
    const review = podReview({ operation: "UPDATE", object: pod("web") });
    const [e] = await entries([review]);
    assert.equal(e?.decision.inject, false);
    assert.equal(e?.policyMode, undefined);
  });

  test("a domain given is used as given, not built again", async () => {
    const domain: PolicyDomain = {
      rules: [{ name: "test", expression: "false", check: (p) => `rule saw ${p.metadata?.name ?? ""}` }],
    };
    const [e] = await entries([pod("web")], domain);
    assert.deepEqual(e?.policyMode, { injector: "webhook", reason: "rule saw web" });
  });

  test("a config the policy cannot express: every Pod falls to the webhook, with the renderer's reason", async () => {
    // The renderer's probe Pods opt in by label; a config that ignores their namespaces cannot be rendered.
    const domain = policyDomain(buildConfig({ ignoredNamespaces: ["probe-zero", "probe-one"] }), false);
    assert.ok("unavailable" in domain);
    const [e] = await entries([pod("web")], domain);
    assert.equal(e?.policyMode?.injector, "webhook");
    assert.match(
      e?.policyMode?.injector === "webhook" ? e.policyMode.reason : "",
      /^the config cannot be rendered as a MutatingAdmissionPolicy \(the config does not inject a Pod labelled to be injected\)$/,
    );
  });

  test("JSON carries it as policyMode; the summary says it in one line", async () => {
    const got = await entries([
      pod("web"),
      pod("tuned", { "sidecar.istio.io/proxyImage": "example.com/proxyv2:1.28.0" }),
    ]);
    const json = JSON.parse(formatPreview(got, "json")) as { items: { policyMode?: unknown }[] };
    assert.deepEqual(json.items[0]?.policyMode, { injector: "policy" });
    assert.equal((json.items[1]?.policyMode as { injector?: string } | undefined)?.injector, "webhook");
    const lines = formatPreviewSummary(got).split("\n");
    assert.ok(lines.includes("  policy mode: handled by the MutatingAdmissionPolicy"), lines.join("\n"));
    assert.ok(
      lines.includes(
        '  policy mode: falls to the webhook: the Pod has the annotation "sidecar.istio.io/proxyImage", which only the webhook reads',
      ),
      lines.join("\n"),
    );
  });

  test("an answer without policyMode (an older server's) is summarised without the line", async () => {
    const [e] = await entries([pod("web")]);
    assert.ok(e);
    const { policyMode: _, ...old } = e;
    assert.ok(!formatPreviewSummary([old]).includes("policy mode"));
  });
});
