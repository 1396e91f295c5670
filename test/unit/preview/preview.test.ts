// preview(): every input form, every output form, every reason a Pod is or is not injected,
// and agreement with the webhook (admit) and the CLI (injectManifest) on every golden case.
import { podReview } from "../../support/review.js";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { parse, stringify } from "yaml";
import { admit, type IncomingReview } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import type { Pod } from "../../../src/kube/types.js";
import { injectManifest, parseManifest } from "../../../src/manifest.js";
import {
  formatPreview,
  parsePreviewInput,
  preview,
  PreviewError,
  type NamespaceLabelsResult,
  type PreviewEntry,
  type PreviewOptions,
} from "../../../src/preview.js";
import { goldenCases, goldenConfig, goldenInput } from "../../golden/cases.js";
import { flatten, locatePods } from "../../support/pods.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures");
const config = buildConfig({});
const ASSUMED =
  /^labels of namespace "(\S+)" not known \(give them, or run the injector with cluster access\): assuming the API server calls the injector$/;

type Doc = Record<string, unknown>;
const isDoc = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function pod(
  name: string,
  meta: Partial<NonNullable<Pod["metadata"]>> = {},
  spec: Partial<NonNullable<Pod["spec"]>> = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: name }, ...meta },
    spec: { containers: [{ name: name, image: "nginx:1.27", ports: [{ containerPort: 80 }] }], ...spec },
  };
}

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: store
spec:
  replicas: 2
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop, version: v2}
    spec:
      containers:
      - name: shop
        image: example.com/shop:2
        ports: [{containerPort: 8080}]
`;

const CRONJOB = `apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: nightly}}
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: example.com/job:1}]
`;

function one(entries: readonly PreviewEntry[]): PreviewEntry {
  assert.equal(entries.length, 1);
  return entries[0] as PreviewEntry;
}

function containerNames(p: Pod | undefined): string[] {
  return [...(p?.spec?.initContainers ?? []), ...(p?.spec?.containers ?? [])].map((c) => c.name);
}

function templateOf(doc: unknown): Pod {
  assert.ok(isDoc(doc) && isDoc(doc.spec));
  const spec = doc.kind === "CronJob" ? ((doc.spec.jobTemplate as Doc).spec as Doc) : doc.spec;
  return spec.template as Pod;
}

function review(object: unknown, extra: Doc = {}): IncomingReview {
  return podReview({
    uid: "3f1c8a9e-0000-4000-8000-000000000001",
    namespace: "demo",
    object,
    request: extra,
  }) as IncomingReview;
}

/** The patch admit() answers, decoded, as its JSON text (empty list when it sends none). */
function webhookPatch(r: IncomingReview, cfg: Config = config): string {
  const res = admit(r, { config: cfg }).review.response;
  assert.ok(res);
  return res.patch === undefined ? "[]" : Buffer.from(res.patch, "base64").toString("utf8");
}

async function previewOf(docs: unknown[], opts: Partial<PreviewOptions> = {}): Promise<PreviewEntry[]> {
  return preview(docs, { config, ...opts });
}

describe("input forms", () => {
  test("a Pod in JSON: one entry, injected, with patch, object, interception and proxy", async () => {
    const p = pod("web");
    const e = one(await previewOf(parsePreviewInput(JSON.stringify(p), "json"), { namespace: "demo" }));
    assert.equal(e.kind, "Pod");
    assert.equal(e.name, "web");
    assert.equal(e.namespace, "demo");
    assert.equal(e.decision.inject, true);
    assert.equal(e.decision.reasons.length, 2);
    assert.match(e.decision.reasons[0] ?? "", ASSUMED);
    assert.equal(e.decision.reasons[1], "policy enabled: injected");
    assert.deepEqual(
      e.patch.map((o) => `${o.op} ${o.path}`),
      [
        "add /metadata/labels/security.istio.io~1tlsMode",
        "add /metadata/labels/service.istio.io~1canonical-name",
        "add /metadata/labels/service.istio.io~1canonical-revision",
        "add /metadata/annotations",
        "add /spec/initContainers",
        "add /spec/containers/1",
        "add /spec/volumes",
      ],
    );
    assert.deepEqual(containerNames(e.object as Pod), ["istio-init", "web", "istio-proxy"]);
    assert.deepEqual(e.warnings, []);
    assert.equal(e.interception.mode, "REDIRECT");
    assert.equal(e.proxy?.nodeId, "sidecar~<pod IP>~web.demo~demo.svc.cluster.local");
    assert.equal(e.proxy?.native, false);
    assert.equal(e.error, undefined);
    assert.equal(JSON.stringify(e.patch), webhookPatch(review(p)), "the webhook's patch, byte for byte");
  });

  test("a Deployment in YAML: its pod template is previewed, the object is the Deployment", async () => {
    const e = one(await previewOf(parsePreviewInput(DEPLOYMENT, "yaml")));
    assert.equal(e.kind, "Deployment");
    assert.equal(e.name, "shop");
    assert.equal(e.namespace, "store", "the manifest's own namespace");
    assert.equal(e.decision.inject, true);
    assert.ok(
      e.patch.some((o) => o.path === "/spec/containers/1"),
      "patch paths are the Pod's",
    );
    const obj = e.object as Doc;
    assert.equal(obj.kind, "Deployment");
    assert.equal((obj.spec as Doc).replicas, 2);
    assert.deepEqual(containerNames(templateOf(obj)), ["istio-init", "shop", "istio-proxy"]);
    const env = templateOf(obj).spec?.containers[1]?.env ?? [];
    assert.equal(
      env.find((v) => v.name === "ISTIO_META_OWNER")?.value,
      "kubernetes://apis/apps/v1/namespaces/store/deployments/shop",
    );
    assert.equal(e.proxy?.cluster, "shop.store");
    assert.equal(e.proxy?.nodeId, "sidecar~<pod IP>~<generated>.store~store.svc.cluster.local");
  });

  test("a CronJob: the job template's pod is previewed and put back there", async () => {
    const e = one(await previewOf(parsePreviewInput(CRONJOB, "yaml")));
    assert.equal(e.kind, "CronJob");
    assert.equal(e.name, "nightly");
    assert.equal(e.namespace, "default");
    const tpl = templateOf(e.object);
    assert.deepEqual(containerNames(tpl), ["istio-init", "job", "istio-proxy"]);
    assert.equal(tpl.spec?.restartPolicy, "OnFailure");
    assert.equal(
      tpl.spec?.containers[1]?.env?.find((v) => v.name === "ISTIO_META_OWNER")?.value,
      "kubernetes://apis/batch/v1/namespaces/default/cronjobs/nightly",
    );
  });

  test("a List: one entry per item, in order", async () => {
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [
        pod("a"),
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm" } },
        pod("b", { namespace: "other" }),
      ],
    };
    const entries = await previewOf(parsePreviewInput(JSON.stringify(list), "json"), { namespace: "demo" });
    assert.deepEqual(
      entries.map((e) => `${e.kind}/${e.name}@${e.namespace}`),
      ["Pod/a@demo", "Pod/b@other"],
    );
    assert.ok(entries.every((e) => e.decision.inject));
  });

  test("several YAML documents with a Service in between: the Service is no entry", async () => {
    const text = [
      stringify(pod("front")),
      "apiVersion: v1\nkind: Service\nmetadata: {name: front}\nspec: {ports: [{port: 80}]}\n",
      DEPLOYMENT,
    ].join("---\n");
    const entries = await previewOf(parsePreviewInput(text, "yaml"));
    assert.deepEqual(
      entries.map((e) => `${e.kind}/${e.name}`),
      ["Pod/front", "Deployment/shop"],
    );
    const diff = formatPreview(entries, "diff");
    assert.doesNotMatch(diff, /Service/);
    assert.match(diff, /^\+\+\+ Pod\/front \(default\) as stored$/m);
    assert.match(diff, /^\+\+\+ Deployment\/shop \(store\) as stored$/m);
  });

  test("an AdmissionReview recorded from a real API server: the webhook's patch, managedFields kept in the object", async () => {
    const r = JSON.parse(readFileSync(join(fixtures, "admission-review-pod.json"), "utf8")) as IncomingReview;
    const original = r.request.object as Pod;
    assert.ok(original.metadata?.managedFields, "the fixture carries managedFields");
    const e = one(await previewOf(parsePreviewInput(JSON.stringify(r), "json")));
    assert.equal(e.kind, "Pod");
    assert.equal(e.name, "fixture-pod");
    assert.equal(e.namespace, r.request.namespace);
    assert.equal(e.decision.inject, true);
    assert.equal(JSON.stringify(e.patch), webhookPatch(r));
    const applied = jsonpatch.applyPatch(
      structuredClone(original),
      json(e.patch) as jsonpatch.Operation[],
      true,
      false,
    ).newDocument;
    assert.deepEqual(json(e.object), json(applied));
    assert.deepEqual((e.object as Pod).metadata?.managedFields, original.metadata?.managedFields);
  });

  test("every recorded AdmissionReview: the same patch as the webhook, and an error where it refuses", async () => {
    for (const file of [
      "admission-review-annotation-opt-out.json",
      "admission-review-dry-run.json",
      "admission-review-invalid-annotation.json",
      "admission-review-object-opt-in.json",
      "admission-review-replicaset-pod.json",
      "admission-review-revision-namespace.json",
    ]) {
      const r = JSON.parse(readFileSync(join(fixtures, file), "utf8")) as IncomingReview;
      const e = one(await previewOf([r]));
      const res = admit(r, { config }).review.response;
      assert.equal(JSON.stringify(e.patch), webhookPatch(r), file);
      assert.equal(e.error !== undefined, res?.allowed === false, file);
      assert.equal(e.decision.inject, res?.patch !== undefined, file);
    }
  });

  test("an AdmissionReview that is no Pod CREATE is admitted unchanged, as the webhook does", async () => {
    const update = one(await previewOf([review(pod("web"), { operation: "UPDATE" })]));
    assert.deepEqual(update.decision, {
      inject: false,
      reasons: ["Pod UPDATE admitted unchanged: sidecars are injected on CREATE only"],
    });
    assert.deepEqual(update.patch, []);
    assert.equal(webhookPatch(review(pod("web"), { operation: "UPDATE" })), "[]");

    const deployment = parseManifest(DEPLOYMENT, "d")[0];
    const other = one(
      await previewOf([
        review(deployment, {
          kind: { group: "apps", version: "v1", kind: "Deployment" },
          resource: { group: "apps", version: "v1", resource: "deployments" },
        }),
      ]),
    );
    assert.equal(other.kind, "Deployment");
    assert.deepEqual(other.decision, {
      inject: false,
      reasons: ["Deployment admitted unchanged: only Pods are injected"],
    });
    assert.equal(other.error, undefined);
    assert.deepEqual(other.object, deployment);

    const binding = one(await previewOf([review(pod("web"), { subResource: "binding" })]));
    assert.match(binding.decision.reasons[0] ?? "", /^Pod\/binding admitted unchanged/);
  });

  test("an AdmissionReview of a Pod CREATE without the Pod is refused, as the webhook refuses it", async () => {
    const e = one(await previewOf([review(undefined)]));
    assert.deepEqual(e.error, {
      code: "ERR_INVALID_POD",
      field: "request.object",
      message: "request.object: must be the Pod being created",
    });
    assert.equal(e.decision.inject, false);
    assert.match(
      e.decision.reasons.at(-1) ?? "",
      /^refused: request\.object: must be the Pod being created; the API server would refuse/,
    );
    const res = admit(review(undefined), { config }).review.response;
    assert.equal(res?.allowed, false);
    assert.equal(res?.status?.message, `sidecar-injector: ${e.error?.message}`);
  });

  test("nothing to preview, or unreadable input: PreviewError", async () => {
    await assert.rejects(previewOf([{ apiVersion: "v1", kind: "Service", metadata: { name: "s" } }]), PreviewError);
    await assert.rejects(previewOf([]), PreviewError);
    assert.throws(
      () => parsePreviewInput("{not json", "json"),
      (e: unknown) => e instanceof PreviewError && /neither JSON nor YAML/.test(e.message),
    );
    assert.deepEqual(
      parsePreviewInput("kind: Pod\nmetadata: {name: web}\n", "json"),
      [{ kind: "Pod", metadata: { name: "web" } }],
      "YAML sent as JSON is read as YAML",
    );
    assert.throws(() => parsePreviewInput("a: [1, 2\nb: }", "yaml"), PreviewError);
    assert.deepEqual(parsePreviewInput("---\n# nothing\n---\n", "yaml"), []);
  });

  test("a Pod the injector cannot read is an entry with the error, not a failure of the whole preview", async () => {
    const entries = await previewOf([
      { apiVersion: "v1", kind: "Pod", metadata: { name: "broken" }, spec: { containers: "app" } },
      pod("fine"),
    ]);
    assert.equal(entries.length, 2);
    assert.equal(entries[0]?.error?.code, "ERR_INVALID_POD");
    assert.equal(entries[0]?.decision.inject, false);
    assert.equal(entries[1]?.decision.inject, true);
  });
});

describe("output forms", () => {
  test("json: {items: [...]}, what preview returned", async () => {
    const entries = await previewOf([pod("web")], { namespace: "demo" });
    const out = formatPreview(entries, "json");
    assert.ok(out.endsWith("\n"));
    assert.deepEqual(JSON.parse(out), { items: json(entries) });
  });

  test("yaml: the same document as json", async () => {
    const entries = await previewOf([pod("web"), ...parseManifest(DEPLOYMENT, "d")], { namespace: "demo" });
    const out = formatPreview(entries, "yaml");
    assert.doesNotMatch(out, /^\s*\{/);
    assert.deepEqual(parse(out), JSON.parse(formatPreview(entries, "json")));
  });

  test("diff: the YAML before and after, per object; an unchanged one says why", async () => {
    const entries = await previewOf([pod("web"), pod("host", {}, { hostNetwork: true })], { namespace: "demo" });
    const out = formatPreview(entries, "diff");
    const [first, second] = out.split(/(?=^--- )|(?=^# )/m);
    assert.match(first ?? "", /^--- Pod\/web \(demo\) as given\n\+\+\+ Pod\/web \(demo\) as stored\n@@ /);
    assert.match(first ?? "", /^\+ +- name: istio-proxy$/m);
    assert.match(first ?? "", /^\+ {4}security\.istio\.io\/tlsMode: istio$/m);
    assert.ok(
      !(first ?? "")
        .split("\n")
        .slice(2)
        .some((l) => l.startsWith("-")),
      "injection only adds lines to this Pod",
    );
    assert.equal(second, "# Pod/host (demo): unchanged (hostNetwork pods are never injected)\n");
  });

  test("diff of a workload: the original document against the injected one", async () => {
    const out = formatPreview(await previewOf(parseManifest(DEPLOYMENT, "d")), "diff");
    assert.match(out, /^--- Deployment\/shop \(store\) as given$/m);
    assert.match(out, /^@@ -13,9 \+13,\d+ @@$/m, "the template's lines, deep in the Deployment");
    assert.match(out, /^ {9}version: v2$/m, "context lines come from the Deployment's template");
    assert.match(out, /^\+ +- name: istio-proxy$/m);
  });
});

describe("reasons", () => {
  /** `labels` null: the namespace's labels are not known. */
  const demo = async (
    p: Pod,
    cfg: Config = config,
    labels: Record<string, string> | null = { "istio-injection": "enabled" },
    namespace = "demo",
  ): Promise<PreviewEntry> =>
    one(await previewOf([p], { config: cfg, namespace, ...(labels ? { givenLabels: labels } : {}) }));
  const CALLED = "namespace demo has istio-injection=enabled: the API server calls the injector";

  test("injected: the API server's selection first, then the webhook's rule", async () => {
    const e = await demo(pod("web"));
    assert.deepEqual(e.decision, { inject: true, reasons: [CALLED, "policy enabled: injected"] });
  });

  test("hostNetwork", async () => {
    const e = await demo(pod("web", {}, { hostNetwork: true }));
    assert.deepEqual(e.decision, { inject: false, reasons: [CALLED, "hostNetwork pods are never injected"] });
    assert.deepEqual(e.patch, []);
    assert.deepEqual(e.object, pod("web", {}, { hostNetwork: true }));
    assert.equal(e.proxy, undefined);
    assert.deepEqual(e.interception.summary, ["no sidecar: nothing is intercepted"]);
  });

  test("ignored namespace (the webhook's own list)", async () => {
    const e = await demo(pod("web"), config, { "istio-injection": "enabled" }, "kube-public");
    assert.equal(e.decision.inject, false);
    assert.deepEqual(e.decision.reasons.slice(1), ["namespace kube-public is in ignoredNamespaces: never injected"]);
  });

  test("kube-system: the webhook configuration does not even select it", async () => {
    const e = await demo(pod("web"), config, { "istio-injection": "enabled" }, "kube-system");
    assert.deepEqual(e.decision, {
      inject: false,
      reasons: [
        "namespace kube-system is excluded by the webhook's namespaceSelector: the API server does not call the injector",
      ],
    });
  });

  test("the injector's own namespace is not selected either", async () => {
    const e = one(
      await previewOf([pod("web")], {
        namespace: "mesh",
        ownNamespace: "mesh",
        givenLabels: { "istio-injection": "enabled" },
      }),
    );
    assert.equal(e.decision.inject, false);
    assert.match(e.decision.reasons[0] ?? "", /namespace mesh is excluded/);
  });

  test("pod label opt-out: the objectSelector keeps the Pod from the webhook", async () => {
    const e = await demo(pod("web", { labels: { app: "web", "sidecar.istio.io/inject": "false" } }));
    assert.deepEqual(e.decision, {
      inject: false,
      reasons: [
        "label sidecar.istio.io/inject=false on the pod: the webhook's objectSelector excludes it, the API server does not call the injector",
      ],
    });
    assert.deepEqual(e.warnings, []);
  });

  test("pod label opt-out with the namespace's labels unknown: the webhook's own rule says so", async () => {
    const e = await demo(pod("web", { labels: { app: "web", "sidecar.istio.io/inject": "false" } }), config, null);
    assert.match(e.decision.reasons[0] ?? "", ASSUMED);
    assert.equal(e.decision.reasons[1], "label sidecar.istio.io/inject=false on the pod: not injected");
  });

  test("pod annotation opt-out", async () => {
    const e = await demo(pod("web", { annotations: { "sidecar.istio.io/inject": "false" } }));
    assert.deepEqual(e.decision, {
      inject: false,
      reasons: [CALLED, "annotation sidecar.istio.io/inject=false on the pod: not injected"],
    });
  });

  test("an inject value that is neither true nor false is a warning and a reason", async () => {
    const e = await demo(pod("web", { annotations: { "sidecar.istio.io/inject": "yes" } }));
    assert.equal(e.decision.inject, true);
    assert.deepEqual(e.decision.reasons, [
      CALLED,
      'annotation sidecar.istio.io/inject="yes" is neither "true" nor "false": ignored',
      "policy enabled: injected",
    ]);
    assert.deepEqual(e.warnings, [
      "the sidecar.istio.io/inject annotation is deprecated: use the label, which the webhook's objectSelector also reads",
      'annotation sidecar.istio.io/inject="yes" is neither "true" nor "false": ignored',
    ]);
  });

  test("neverInjectSelector", async () => {
    const cfg = buildConfig({ neverInjectSelector: [{ matchLabels: { tier: "batch" } }] });
    const e = await demo(pod("web", { labels: { app: "web", tier: "batch" } }), cfg);
    assert.deepEqual(e.decision, {
      inject: false,
      reasons: [CALLED, "pod labels match neverInjectSelector {tier=batch}: not injected"],
    });
  });

  test("policy disabled, and an opt-in under it", async () => {
    const cfg = buildConfig({ policy: "disabled" });
    const silent = await demo(pod("web"), cfg);
    assert.deepEqual(silent.decision, {
      inject: false,
      reasons: [CALLED, "policy disabled and the pod does not opt in: not injected"],
    });
    const optIn = await demo(pod("web", { annotations: { "sidecar.istio.io/inject": "true" } }), cfg);
    assert.deepEqual(optIn.decision, {
      inject: true,
      reasons: [CALLED, "annotation sidecar.istio.io/inject=true on the pod: injected"],
    });
    // The patch is against the Pod as given (it has no sidecar yet).
    assert.ok(
      optIn.patch.every((o) => o.op === "add"),
      JSON.stringify(optIn.patch.map((o) => o.op)),
    );
    assert.equal(
      JSON.stringify(optIn.patch),
      webhookPatch(review(pod("web", { annotations: { "sidecar.istio.io/inject": "true" } })), cfg),
    );
  });

  test("namespace not selected: no patch, no warnings, and the webhook's own verdict is not given", async () => {
    const e = await demo(pod("web", { annotations: { "sidecar.istio.io/inject": "maybe" } }), config, {});
    assert.equal(e.decision.inject, false);
    assert.equal(e.decision.reasons.length, 1);
    assert.match(
      e.decision.reasons[0] ?? "",
      /^namespace demo has no istio-injection or istio.io\/rev label.*: the API server does not call the injector$/,
    );
    assert.deepEqual(e.patch, []);
    assert.deepEqual(e.warnings, []);
  });

  test("namespace on another revision", async () => {
    const e = await demo(pod("web"), config, { "istio.io/rev": "canary" });
    assert.deepEqual(e.decision, {
      inject: false,
      reasons: [
        "namespace demo has istio.io/rev=canary, this injector serves revision default: the API server does not call it",
      ],
    });
    const canary = await demo(pod("web"), buildConfig({ revision: "canary" }), { "istio.io/rev": "canary" });
    assert.equal(canary.decision.inject, true);
    assert.equal(
      canary.decision.reasons[0],
      "namespace demo has istio.io/rev=canary: the API server calls the injector",
    );
  });

  test("an invalid annotation: an entry with the error, not injected, the API server would refuse", async () => {
    const bad = pod("web", { annotations: { "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/33" } });
    const e = await demo(bad);
    assert.equal(e.decision.inject, false);
    assert.equal(e.error?.code, "ERR_INVALID_ANNOTATION");
    assert.equal(e.error?.field, "traffic.sidecar.istio.io/includeOutboundIPRanges");
    assert.match(e.error?.message ?? "", /10\.0\.0\.0\/33/);
    assert.equal(e.decision.reasons[0], CALLED);
    assert.match(
      e.decision.reasons[1] ?? "",
      /^refused: .*10\.0\.0\.0\/33.*; the API server would refuse to create the pod$/,
    );
    assert.deepEqual(e.patch, []);
    assert.deepEqual(e.object, bad);
    const res = admit(review(bad), { config }).review.response;
    assert.equal(res?.allowed, false, "the webhook refuses it");
    assert.ok(res?.status?.message?.includes(e.error?.message ?? "?"));
  });

  test("an invalid annotation in a namespace the API server does not send: no error", async () => {
    const e = await demo(
      pod("web", { annotations: { "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/33" } }),
      config,
      {},
    );
    assert.equal(e.error, undefined);
    assert.equal(e.decision.reasons.length, 1);
  });

  test("namespace labels unknown: the reason says the API server's call is assumed", async () => {
    const e = one(await previewOf([pod("web")], { namespace: "shop" }));
    assert.match(e.decision.reasons[0] ?? "", ASSUMED);
    assert.equal(ASSUMED.exec(e.decision.reasons[0] ?? "")?.[1], "shop");
    assert.equal(e.decision.inject, true);
    const lookedUp = one(await previewOf([pod("web")], { namespace: "shop", lookup: async () => new Map() }));
    assert.match(
      lookedUp.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(not read\): assuming the API server calls the injector$/,
    );
    const said = one(
      await previewOf([pod("web")], {
        namespace: "shop",
        lookup: async () => new Map([["shop", { unknown: "the caller may not get this namespace" }]]),
      }),
    );
    assert.match(
      said.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(the caller may not get this namespace\)/,
    );
    const anonymous = one(
      await previewOf([pod("web")], { namespace: "shop", notLookedUp: "no bearer token presented" }),
    );
    assert.match(
      anonymous.decision.reasons[0] ?? "",
      /^labels of namespace "shop" not known \(no bearer token presented\)/,
    );
  });

  test("namespace labels are looked up once per request, each namespace once, given ones not", async () => {
    const asked: string[][] = [];
    const entries = await previewOf(
      [pod("a"), pod("b"), pod("c", { namespace: "other" }), pod("d", { namespace: "third" })],
      {
        namespace: "demo",
        givenLabels: { "istio-injection": "enabled" },
        lookup: async (namespaces) => {
          asked.push([...namespaces]);
          const on: Record<string, string> = { "istio-injection": "enabled" };
          return new Map(
            namespaces.map((ns): [string, NamespaceLabelsResult] => [ns, { labels: ns === "other" ? on : {} }]),
          );
        },
      },
    );
    assert.deepEqual(asked, [["other", "third"]], "demo's labels were given");
    assert.deepEqual(
      entries.map((e) => e.decision.inject),
      [true, true, true, false],
    );
  });

  test("labels given without a namespace are those of every namespace: no lookup", async () => {
    let asked = 0;
    const entries = await previewOf([pod("a", { namespace: "x" }), pod("b", { namespace: "y" })], {
      givenLabels: { "istio-injection": "enabled" },
      lookup: async () => {
        asked++;
        return new Map();
      },
    });
    assert.equal(asked, 0);
    assert.deepEqual(
      entries.map((e) => e.decision.inject),
      [true, true],
    );
  });
});

describe("the object shown is the one the patch makes", () => {
  test("native sidecars: the workload's template has what the patch adds", async () => {
    const e = one(await previewOf(parseManifest(DEPLOYMENT, "d"), { nativeSidecarsSupported: true }));
    assert.equal(e.proxy?.native, true);
    const tpl = templateOf(e.object);
    assert.deepEqual(containerNames(tpl), ["istio-init", "istio-proxy", "shop"]);
    const original = templateOf(parseManifest(DEPLOYMENT, "d")[0]);
    const applied = jsonpatch.applyPatch(
      json({ metadata: original.metadata, spec: original.spec }),
      json(e.patch) as jsonpatch.Operation[],
      true,
      false,
    ).newDocument;
    assert.deepEqual(json({ metadata: tpl.metadata, spec: tpl.spec }), applied);
  });

  test("native sidecars: a Pod's object is its patch applied", async () => {
    const e = one(await previewOf([pod("web")], { nativeSidecarsSupported: true }));
    assert.deepEqual(containerNames(e.object as Pod), ["istio-init", "istio-proxy", "web"]);
    assert.equal(e.proxy?.native, true);
  });

  test("the input is not modified", async () => {
    const docs = parseManifest(DEPLOYMENT, "d");
    const before = structuredClone(docs);
    const p = pod("web");
    await previewOf([...docs, p]);
    assert.deepEqual(docs, before);
    assert.deepEqual(p, pod("web"));
  });
});

// ---- Agreement with the webhook and the CLI on every golden case.

describe("agreement with the webhook and the CLI on every golden case", () => {
  const cases = goldenCases();
  test("there are golden cases", () => assert.ok(cases.length >= 20, `${cases.length}`));

  for (const name of cases) {
    test(name, async () => {
      const cfg = goldenConfig(name);
      const input = goldenInput(name);
      const entries = await preview(parsePreviewInput(input, "yaml"), { config: cfg });
      const flat = flatten(parseManifest(input, name));
      const cli = flatten(injectManifest(input, name, "default", cfg).docs);
      assert.equal(cli.length, flat.length);
      const located = locatePods(flat);
      assert.equal(entries.length, located.length, "one entry per Pod and workload");
      for (const [i, item] of located.entries()) {
        const e = entries[i] as PreviewEntry;
        const what = `${name} ${item.kind}/${item.name}`;
        assert.equal(e.kind, item.kind, what);
        assert.equal(e.name, item.name, what);
        assert.equal(e.namespace, item.namespace, what);
        // The webhook, sent this Pod, answers this very patch.
        const want = webhookPatch(review(item.pod, { namespace: item.namespace }), cfg);
        assert.equal(JSON.stringify(e.patch), want, `${what}: the patch /inject answers`);
        assert.equal(e.decision.inject, want !== "[]", what);
        if (item.kind === "Pod") {
          const applied = jsonpatch.applyPatch(
            structuredClone(item.pod),
            JSON.parse(want) as jsonpatch.Operation[],
            true,
            false,
          ).newDocument;
          assert.deepEqual(json(e.object), json(applied), `${what}: object is the patch applied`);
        }
        // The injected object is what `inject` prints; except a CronJob's, whose metadata `inject`
        // reads and writes on the job template, as istioctl kube-inject does.
        if (item.kind !== "CronJob")
          assert.deepEqual(json(e.object), json(cli[item.index]), `${what}: the CLI's output`);
      }
    });
  }
});
