// The chart's policy mode, rendered with a real helm: policy.enabled embeds the List that
// `policy render` printed, gives every webhook the policy's matchCondition, and its bindings
// carry exactly the namespace and object selectors of the webhooks (src/policy/webhooks.ts
// against the chart's template); a missing or foreign manifest stops the install, naming it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse, parseAllDocuments, stringify } from "yaml";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import {
  policyList,
  renderPolicy,
  WEBHOOK_CONDITION_ANNOTATION,
  type PolicyApiVersion,
} from "../../../src/policy/render.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, locateHelm, run } from "../../support/helm.js";

const lookup = await locateHelm();
const skip = lookup.ok ? false : `no helm: ${lookup.reason}`;
const NAMESPACE = "mesh-injector";
const dir = mkdtempSync(join(tmpdir(), "policy-chart-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
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

function manifestFile(
  enableNamespacesByDefault: boolean,
  selects: { revision: string; revisionTags: string[] } = { revision: "default", revisionTags: [] },
  apiVersion: PolicyApiVersion = "v1beta1",
  namespace: string = NAMESPACE,
): string {
  const rendered = renderPolicy(
    { ...DEFAULT_CONFIG, ...selects },
    {
      apiVersion,
      name: "si-sidecar-injector",
      namespace,
      nativeSidecarsSupported: false,
      enableNamespacesByDefault,
    },
  );
  const file = join(
    dir,
    `policy-${String(enableNamespacesByDefault)}-${selects.revision}-${selects.revisionTags.join("_")}-${apiVersion}-${namespace}.yaml`,
  );
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

  test("revision tags: every webhook of every configuration, the tags' included, has a binding with its selectors; the policy's objects carry the release's labels", async () => {
    const selects = { revision: "canary", revisionTags: ["prod", "default"] };
    const r = await template([
      "--set",
      "policy.enabled=true",
      "--set-file",
      `policy.manifest=${manifestFile(true, selects)}`,
      "--set",
      "revision=canary",
      "--set",
      "revisionTags={prod,default}",
      "--set",
      "webhook.enableNamespacesByDefault=true",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const bindings = r.objects.filter((o) => o.kind === "MutatingAdmissionPolicyBinding");
    const configs = r.objects.filter((o) => o.kind === "MutatingWebhookConfiguration");
    assert.deepEqual(
      configs.map((c) => c.metadata.name),
      ["si-sidecar-injector", "si-sidecar-injector-tag-prod", "si-sidecar-injector-tag-default"],
    );
    let webhooks = 0;
    for (const c of configs) {
      const tag = c.metadata.name.replace(/^si-sidecar-injector(-tag-)?/, "");
      for (const w of c.webhooks ?? []) {
        webhooks++;
        const prefix = w.name.replace(/\.injector\.sidecar-injector\.dev$/, "");
        const name = `si-sidecar-injector-${tag === "" ? "" : `tag-${tag}-`}${prefix}`;
        const b = bindings.find((x) => x.metadata.name === name);
        assert.ok(b, `a binding for ${c.metadata.name}/${w.name}`);
        assert.deepEqual(
          b.spec?.matchResources,
          { namespaceSelector: w.namespaceSelector, objectSelector: w.objectSelector },
          `${c.metadata.name}/${w.name}: the binding selects what the webhook selects`,
        );
        assert.ok(w.matchConditions, `${c.metadata.name}/${w.name} leaves the policy's Pods to it`);
      }
    }
    // canary: rev.namespace, rev.object; prod: the same; default: those, namespace, object, auto.
    assert.equal(webhooks, 9);
    assert.equal(bindings.length, webhooks);
    for (const o of r.objects.filter((x) => x.kind.startsWith("MutatingAdmissionPolicy"))) {
      assert.equal(o.metadata.labels?.["app.kubernetes.io/part-of"], "sidecar-injector", o.metadata.name);
      assert.equal(o.metadata.labels?.["app.kubernetes.io/instance"], "si", o.metadata.name);
      assert.equal(o.metadata.labels?.["app.kubernetes.io/component"], "admission-policy", o.metadata.name);
    }
  });

  test("a policy rendered for other selectors (revision, tags, enableNamespacesByDefault) or another namespace stops the install, naming both", async () => {
    const cases: [string, string[]][] = [
      [manifestFile(false), ["revision=canary"]],
      [manifestFile(false, { revision: "canary", revisionTags: [] }), ["revision=canary", "revisionTags={prod}"]],
      [manifestFile(false), ["webhook.enableNamespacesByDefault=true"]],
      [manifestFile(false, undefined, undefined, "sidecar-injector-system"), []],
    ];
    for (const [file, set] of cases) {
      const r = await template([
        "--set",
        "policy.enabled=true",
        "--set-file",
        `policy.manifest=${file}`,
        ...set.flatMap((x) => ["--set", x]),
      ]);
      assert.notEqual(r.code, 0, set.join(" ") || file);
      assert.match(
        r.stderr,
        /policy\.manifest's bindings select revision=\S+;revisionTags=\S*;enableNamespacesByDefault=\S+;namespace=\S+, this release's webhooks revision=\S+;namespace=\S+/,
        set.join(" ") || file,
      );
    }
  });

  describe("the apiVersion it is installed at", () => {
    const MAP = "admissionregistration.k8s.io";
    /** What Helm knows of a cluster serving the policies at these versions (as discovery lists them: kinds too). */
    const cluster = (...versions: string[]): string[] =>
      [
        "v1/Pod",
        ...versions.flatMap((v) => [
          `${MAP}/${v}/MutatingAdmissionPolicy`,
          `${MAP}/${v}/MutatingAdmissionPolicyBinding`,
        ]),
      ].flatMap((a) => ["--api-versions", a]);
    const policyObjects = (objects: Obj[]) => objects.filter((o) => o.kind.startsWith("MutatingAdmissionPolicy"));
    const installedAt = async (rendered: PolicyApiVersion, caps: string[]): Promise<string[]> => {
      const r = await template([
        "--set",
        "policy.enabled=true",
        "--set-file",
        `policy.manifest=${manifestFile(false, undefined, rendered)}`,
        ...caps,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const objects = policyObjects(r.objects);
      assert.equal(objects.length, 5);
      return [...new Set(objects.map((o) => o.apiVersion))];
    };

    test("helm template (no cluster's kinds known): as rendered, v1 or v1beta1", async () => {
      assert.deepEqual(await installedAt("v1beta1", []), [`${MAP}/v1beta1`]);
      assert.deepEqual(await installedAt("v1", []), [`${MAP}/v1`]);
    });

    test("a cluster serving the policies: its version, v1 preferred, whatever the List was rendered at", async () => {
      const cases: [PolicyApiVersion, string[], string][] = [
        ["v1", ["v1beta1"], "v1beta1"], // 1.34-1.35 with the feature gate
        ["v1beta1", ["v1beta1"], "v1beta1"],
        ["v1beta1", ["v1"], "v1"], // 1.36
        ["v1beta1", ["v1", "v1beta1"], "v1"], // 1.36 still serving the beta
        ["v1", ["v1", "v1beta1"], "v1"],
        ["v1", ["v1beta1", "v1alpha1"], "v1beta1"],
      ];
      for (const [rendered, served, want] of cases)
        assert.deepEqual(
          await installedAt(rendered, cluster(...served)),
          [`${MAP}/${want}`],
          `${rendered} on ${served.join(",")}`,
        );
    });

    test("a cluster serving no policy at v1 or v1beta1: the install stops saying what it serves and what is needed", async () => {
      for (const served of [[], ["v1alpha1"]]) {
        const r = await template([
          "--set",
          "policy.enabled=true",
          "--set-file",
          `policy.manifest=${manifestFile(false)}`,
          ...cluster(...served),
        ]);
        assert.notEqual(r.code, 0, served.join(","));
        assert.match(
          r.stderr,
          /policy\.enabled: the cluster serves no MutatingAdmissionPolicy at v1 or v1beta1: it serves admissionregistration\.k8s\.io v1 \(without MutatingAdmissionPolicy\), v1beta1 \(without MutatingAdmissionPolicy\), v1alpha1 \((with|without) MutatingAdmissionPolicy\)\. Kubernetes 1\.36 and later serve v1; 1\.34 and 1\.35 serve v1beta1 only with the kube-apiserver flags --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration\.k8s\.io\/v1beta1=true/,
        );
        assert.match(r.stderr, served.length === 0 ? /v1alpha1 \(without/ : /v1alpha1 \(with /);
      }
    });

    test("a List at another apiVersion, or at two, stops the install naming it", async () => {
      const list = parse(readFileSync(manifestFile(false), "utf8")) as { items: { apiVersion: string }[] };
      const write = (name: string, edit: (items: { apiVersion: string }[]) => void): string => {
        const copy = structuredClone(list);
        edit(copy.items);
        const file = join(dir, name);
        writeFileSync(file, stringify(copy));
        return file;
      };
      const alpha = write("alpha.yaml", (items) => items.forEach((i) => (i.apiVersion = `${MAP}/v1alpha1`)));
      const mixed = write("mixed.yaml", (items) => {
        const last = items.at(-1);
        if (last) last.apiVersion = `${MAP}/v1`;
      });
      for (const [file, message] of [
        [
          alpha,
          /policy\.manifest's MutatingAdmissionPolicy si-sidecar-injector is at apiVersion "admissionregistration\.k8s\.io\/v1alpha1": render it with `sidecar-injector policy render --api-version v1\|v1beta1\|auto`/,
        ],
        [
          mixed,
          /policy\.manifest mixes apiVersions \(admissionregistration\.k8s\.io\/v1beta1, admissionregistration\.k8s\.io\/v1\)/,
        ],
      ] as const) {
        const r = await template(["--set", "policy.enabled=true", "--set-file", `policy.manifest=${file}`]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, message);
      }
    });
  });
});
