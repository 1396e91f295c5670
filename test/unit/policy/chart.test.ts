// The chart's policy mode, rendered with a real helm: policy.enabled embeds the List that
// `policy render` printed, gives every webhook the policy's matchCondition, and its bindings
// carry exactly the namespace and object selectors of the webhooks (src/policy/webhooks.ts
// against the chart's template); a missing or foreign manifest stops the install, naming it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parseAllDocuments, stringify } from "yaml";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { policyList, renderPolicy, WEBHOOK_CONDITION_ANNOTATION } from "../../../src/policy/render.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, locateHelm, run } from "../../support/helm.js";

const lookup = await locateHelm();
const skip = lookup.ok ? false : `no helm: ${lookup.reason}`;
const NAMESPACE = "mesh-injector";
const dir = mkdtempSync(join(tmpdir(), "policy-chart-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Obj = {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { matchResources?: unknown };
  webhooks?: { name: string; namespaceSelector: unknown; objectSelector: unknown; matchConditions?: unknown }[];
};

async function template(args: string[]): Promise<{ code: number; objects: Obj[]; stderr: string }> {
  if (!lookup.ok) throw new Error("no helm");
  const r = await run(
    lookup.path,
    ["template", "si", CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION, ...args],
    HELM_TIMEOUT_MS,
  );
  const objects = r.code === 0 ? parseAllDocuments(r.stdout).flatMap((d) => (d.toJS() as Obj | null) ?? []) : [];
  return { code: r.code, objects, stderr: r.stderr };
}

function manifestFile(enableNamespacesByDefault: boolean): string {
  const rendered = renderPolicy(DEFAULT_CONFIG, {
    apiVersion: "v1beta1",
    name: "si-sidecar-injector",
    namespace: NAMESPACE,
    nativeSidecarsSupported: false,
    enableNamespacesByDefault,
  });
  const file = join(dir, `policy-${String(enableNamespacesByDefault)}.yaml`);
  writeFileSync(file, stringify(policyList(rendered)));
  return file;
}

describe("the chart's policy mode", { skip }, () => {
  for (const byDefault of [false, true]) {
    test(`policy.enabled (enableNamespacesByDefault ${String(byDefault)}): policy, one binding per webhook with its selectors, the webhooks' matchCondition`, async () => {
      const r = await template([
        "--set",
        "policy.enabled=true",
        "--set-file",
        `policy.manifest=${manifestFile(byDefault)}`,
        "--set",
        `webhook.enableNamespacesByDefault=${String(byDefault)}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const policy = r.objects.find((o) => o.kind === "MutatingAdmissionPolicy");
      assert.ok(policy);
      const condition = policy.metadata.annotations?.[WEBHOOK_CONDITION_ANNOTATION];
      assert.ok(condition);
      const mwc = r.objects.find((o) => o.kind === "MutatingWebhookConfiguration");
      const webhooks = mwc?.webhooks ?? [];
      assert.equal(webhooks.length, byDefault ? 5 : 4);
      const bindings = r.objects.filter((o) => o.kind === "MutatingAdmissionPolicyBinding");
      assert.equal(bindings.length, webhooks.length);
      for (const w of webhooks) {
        assert.deepEqual(w.matchConditions, [{ name: "not-injected-by-policy", expression: condition }], w.name);
        const prefix = w.name.replace(/\.injector\.sidecar-injector\.dev$/, "");
        const b = bindings.find((x) => x.metadata.name === `si-sidecar-injector-${prefix}`);
        assert.ok(b, `a binding for ${w.name}`);
        assert.deepEqual(
          b.spec?.matchResources,
          { namespaceSelector: w.namespaceSelector, objectSelector: w.objectSelector },
          `${w.name}: the binding selects what the webhook selects`,
        );
      }
    });
  }

  test("policy off (the default): no policy, no matchConditions", async () => {
    const r = await template([]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.objects.filter((o) => o.kind.startsWith("MutatingAdmissionPolicy")).length, 0);
    const mwc = r.objects.find((o) => o.kind === "MutatingWebhookConfiguration");
    assert.ok(mwc?.webhooks?.every((w) => w.matchConditions === undefined));
  });

  test("policy.enabled without a manifest, or with something else, stops the install naming it", async () => {
    const none = await template(["--set", "policy.enabled=true"]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /policy\.enabled needs policy\.manifest: run `sidecar-injector policy render`/);
    const other = await template(["--set", "policy.enabled=true", "--set", "policy.manifest=kind: ConfigMap"]);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /policy\.manifest is not the List `sidecar-injector policy render` prints/);
  });
});
