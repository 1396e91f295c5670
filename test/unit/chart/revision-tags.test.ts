// The chart's revision tags (`revisionTags`), rendered with a real helm: one
// MutatingWebhookConfiguration per tag with Istio's tag selectors (revision-tags-mwc.yaml),
// calling the release's Service; what the API server would call for every namespace x Pod
// labelling (selection.ts over the rendered configurations) agreeing with what the injector
// explains (apiServerSelection with the config's revisionTags); the caBundle kept by the
// injector through the release's labels (--webhook-config-selector, and RBAC for it); values
// that cannot work refused.
//
// helm comes from HELM, else from scripts/test-bins.sh, as in chart.test.ts; without one the
// tests are skipped with a message, unless SIDECAR_INJECTOR_E2E_REQUIRED=1 makes that a failure.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { webhookVerdicts } from "../../../src/check/selection.js";
import { parseConfig } from "../../../src/config/load.js";
import { apiServerSelection } from "../../../src/injection/explain.js";
import type { MutatingWebhookConfigurationObject } from "../../../src/kube/api.js";
import { KUBE_API_CALLS } from "../../../src/kube/client.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, locateHelm, run } from "../../support/helm.js";

const lookup = await locateHelm();
const skip = lookup.ok
  ? false
  : process.env.SIDECAR_INJECTOR_E2E_REQUIRED === "1"
    ? false
    : `no helm: ${lookup.reason}`;

const NAMESPACE = "mesh-system";

interface Doc {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface Webhook {
  name: string;
  clientConfig: { service?: { name: string; namespace: string }; caBundle?: string };
  rules: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }[];
  namespaceSelector?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  objectSelector?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] };
}

async function render(
  set: readonly string[],
  release = "mesh",
): Promise<{ code: number | null; docs: Doc[]; stderr: string }> {
  if (!lookup.ok) throw new Error(lookup.reason);
  const args = ["template", release, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION];
  for (const s of set) args.push("--set", s);
  const r = await run(lookup.path, args, HELM_TIMEOUT_MS);
  const docs =
    r.code === 0
      ? parseAllDocuments(r.stdout)
          .map((d) => d.toJS() as Doc | null)
          .filter((d): d is Doc => d !== null)
      : [];
  return { code: r.code, docs, stderr: r.stderr };
}

async function rendered(set: readonly string[], release = "mesh"): Promise<Doc[]> {
  const r = await render(set, release);
  assert.equal(r.code, 0, r.stderr);
  return r.docs;
}

const configurations = (docs: readonly Doc[]): Doc[] => docs.filter((d) => d.kind === "MutatingWebhookConfiguration");
const webhooksOf = (d: Doc): Webhook[] => d.webhooks as Webhook[];

/** A rendered configuration as `check` reads one from the API server. */
function asInspected(d: Doc): MutatingWebhookConfigurationObject {
  return {
    name: d.metadata.name,
    labels: d.metadata.labels ?? {},
    webhooks: webhooksOf(d).map((w) => ({ ...w, matchConditions: [] })),
  };
}

/** Whether a label selector string (k=v,...) matches labels. */
function selects(selector: string, labels: Record<string, string>): boolean {
  return selector.split(",").every((t) => {
    const [k = "", v] = t.split("=");
    return labels[k] === v;
  });
}

describe("chart: revisionTags", { skip }, () => {
  test("one configuration per tag: Istio's tag selectors, labelled istio.io/tag and istio.io/rev, calling the Service", async () => {
    const docs = await rendered(["revision=canary", "revisionTags={prod,default}"]);
    const [main, prod, dflt, ...rest] = configurations(docs);
    assert.deepEqual(rest, []);
    assert.ok(main && prod && dflt);
    assert.deepEqual(
      [main.metadata.name, prod.metadata.name, dflt.metadata.name],
      ["mesh-sidecar-injector", "mesh-sidecar-injector-tag-prod", "mesh-sidecar-injector-tag-default"],
    );
    for (const [doc, tag] of [
      [prod, "prod"],
      [dflt, "default"],
    ] as const) {
      assert.equal(doc.metadata.labels?.["istio.io/tag"], tag);
      assert.equal(doc.metadata.labels?.["istio.io/rev"], "canary");
      assert.equal(doc.metadata.labels?.["app.kubernetes.io/instance"], "mesh");
      for (const w of webhooksOf(doc))
        assert.deepEqual(w.clientConfig.service, webhooksOf(main)[0]?.clientConfig.service, w.name);
    }
    assert.deepEqual(
      webhooksOf(prod).map((w) => w.name),
      ["rev.namespace.injector.sidecar-injector.dev", "rev.object.injector.sidecar-injector.dev"],
    );
    // The tag default also answers what the default revision selects (Istio: `if eq $tagName "default"`).
    assert.deepEqual(
      webhooksOf(dflt).map((w) => w.name.split(".")[0] + (w.name.startsWith("rev.") ? `.${w.name.split(".")[1]}` : "")),
      ["rev.namespace", "rev.object", "namespace", "object"],
    );
    const [ns, obj] = webhooksOf(prod);
    assert.deepEqual(ns?.namespaceSelector?.matchExpressions?.slice(0, 2), [
      { key: "istio.io/rev", operator: "In", values: ["prod"] },
      { key: "istio-injection", operator: "DoesNotExist" },
    ]);
    assert.deepEqual(obj?.objectSelector?.matchExpressions, [
      { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] },
      { key: "istio.io/rev", operator: "In", values: ["prod"] },
    ]);
    // Without tags: no tag configuration.
    assert.equal(configurations(await rendered([])).length, 1);
  });

  for (const set of [
    ["revision=canary", "revisionTags={prod,default}"],
    ["revision=canary", "revisionTags={prod,default}", "webhook.enableNamespacesByDefault=true"],
    ["webhook.enableNamespacesByDefault=true"],
  ]) {
    test(`what the API server calls (the rendered selectors) is what the injector explains: ${set.join(" ")}`, async () => {
      const docs = await rendered(set);
      const configs = configurations(docs).map(asInspected);
      const configMap = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === "mesh-sidecar-injector");
      const config = parseConfig((configMap?.data as Record<string, string>)["config.yaml"] ?? "");
      const byDefault = set.includes("webhook.enableNamespacesByDefault=true");
      assert.deepEqual(config.revisionTags, set.includes("revision=canary") ? ["prod", "default"] : []);
      assert.equal(config.enableNamespacesByDefault, byDefault, "the chart copies enableNamespacesByDefault");
      // Istio's auto webhook, in the default revision's configuration or the tag default's.
      const autos = configurations(docs).flatMap((c) =>
        webhooksOf(c)
          .filter((w) => w.name.startsWith("auto."))
          .map(() => c.metadata.name),
      );
      assert.deepEqual(
        autos,
        byDefault
          ? [set.includes("revision=canary") ? "mesh-sidecar-injector-tag-default" : "mesh-sidecar-injector"]
          : [],
      );
      const nsLabelSets: Record<string, string>[] = [
        {},
        { "istio-injection": "enabled" },
        { "istio-injection": "disabled" },
        { "istio.io/rev": "prod" },
        { "istio.io/rev": "default" },
        { "istio.io/rev": "canary" },
        { "istio.io/rev": "stable" },
        { "istio-injection": "enabled", "istio.io/rev": "prod" },
      ];
      const podLabelSets: Record<string, string>[] = [
        {},
        { "sidecar.istio.io/inject": "true" },
        { "sidecar.istio.io/inject": "false" },
        { "istio.io/rev": "prod" },
        { "istio.io/rev": "stable" },
        { "istio.io/rev": "canary", "sidecar.istio.io/inject": "false" },
      ];
      let called = 0;
      let cases = 0;
      for (const namespace of ["demo", "kube-public", "local-path-storage"]) {
        for (const nsLabels of nsLabelSets) {
          for (const podLabels of podLabelSets) {
            const pod = {
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "p", labels: podLabels },
              spec: { containers: [] },
            };
            const byApiServer = webhookVerdicts(configs, { name: namespace, labels: nsLabels }, pod).some(
              (v) => v.called,
            );
            const explained = apiServerSelection(
              namespace,
              nsLabels,
              podLabels,
              config.revision,
              NAMESPACE,
              config.revisionTags,
              config.enableNamespacesByDefault,
            );
            assert.equal(
              explained.called,
              byApiServer,
              `namespace ${namespace} ${JSON.stringify(nsLabels)}, pod ${JSON.stringify(podLabels)}: ${explained.reason}`,
            );
            cases++;
            if (byApiServer) called++;
          }
        }
      }
      assert.ok(called >= 10 && called <= cases / 2, `${called} of ${cases} called`);
      // An unlabelled namespace's unlabelled Pod: called only with enableNamespacesByDefault.
      assert.equal(
        webhookVerdicts(
          configs,
          { name: "demo", labels: {} },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "p" },
            spec: { containers: [] },
          },
        ).some((v) => v.called),
        byDefault,
      );
    });
  }

  test("the injector keeps every caBundle: the release's labels as --webhook-config-selector, RBAC for exactly that", async () => {
    const docs = await rendered(["revisionTags={prod}"]);
    const deployment = docs.find((d) => d.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    assert.equal(args.includes("--webhook-config"), false);
    const selector = args[args.indexOf("--webhook-config-selector") + 1] ?? "";
    for (const c of configurations(docs)) assert.ok(selects(selector, c.metadata.labels ?? {}), c.metadata.name);
    // Another release's configurations are not picked.
    for (const c of configurations(await rendered(["revisionTags={prod}"], "other")))
      assert.equal(selects(selector, c.metadata.labels ?? {}), false, c.metadata.name);

    const clusterRole = docs.find((d) => d.kind === "ClusterRole" && d.metadata.name === "mesh-sidecar-injector") as
      | (Doc & { rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[] })
      | undefined;
    const mwcRules = clusterRole?.rules.filter((r) => r.resources.includes("mutatingwebhookconfigurations")) ?? [];
    assert.deepEqual(
      mwcRules.map((r) => [r.verbs, r.resourceNames]),
      [
        [
          ["get", "patch"],
          ["mesh-sidecar-injector", "mesh-sidecar-injector-tag-prod"],
        ],
        [["list", "watch"], undefined],
      ],
    );
    const granted = new Set(mwcRules.flatMap((r) => r.verbs));
    const used = new Set(
      KUBE_API_CALLS.filter(
        (c) => c.resource === "mutatingwebhookconfigurations" && ["self-managed", "webhook-selector"].includes(c.when),
      ).map((c) => c.verb),
    );
    assert.deepEqual([...granted].sort(), [...used].sort());
  });

  test("tls.mode secret and certManager: the tag configurations carry the caBundle or cainjector's annotation", async () => {
    const b64 = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").toString("base64");
    const secret = configurations(
      await rendered(["tls.mode=secret", `webhook.caBundle=${b64}`, "revisionTags={prod}"]),
    );
    for (const c of secret) for (const w of webhooksOf(c)) assert.equal(w.clientConfig.caBundle, b64, c.metadata.name);
    const certManager = configurations(await rendered(["tls.mode=certManager", "revisionTags={prod}"]));
    assert.equal(certManager.length, 2);
    for (const c of certManager)
      assert.equal(
        c.metadata.annotations?.["cert-manager.io/inject-ca-from"],
        `${NAMESPACE}/mesh-sidecar-injector-serving`,
      );
  });

  test("refused: a tag that is the revision, a tag that is no label value, a tag twice, config.revisionTags set apart", async () => {
    for (const [set, said] of [
      [["revisionTags={default}"], /revisionTags: default is the revision itself/],
      [["revision=canary", "revisionTags={canary}"], /revisionTags: canary is the revision itself/],
      [["revisionTags={Prod_1}"], /revisionTags\/0.*does not match pattern/],
      [["revisionTags={prod,prod}"], /revisionTags.*items at 0 and 1 are equal/],
      [["revisionTags={prod}", "config.revisionTags={stable}"], /config\.revisionTags differs from revisionTags/],
    ] as const) {
      const r = await render(set);
      assert.notEqual(r.code, 0, set.join(" "));
      assert.match(r.stderr, said, set.join(" "));
    }
  });
});
