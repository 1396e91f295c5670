// `check` with revision tags: a namespace or Pod labelled istio.io/rev=<tag> resolves through the
// tag's configuration (REVISION `REV (tag T)`, the namespace said to resolve to REV), the tags
// listed, and a tag pointing at a revision nothing serves an error; the tag default beside a
// default revision is two injectors for istio-injection=enabled.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { check, checkTags, formatCheckTable } from "../../../src/check/check.js";
import { buildConfig } from "../../../src/config/load.js";
import { FakeInspect, istiod, ours, pod, tag } from "./fake-inspect.js";

const config = buildConfig({});

function cluster(): FakeInspect {
  const k = new FakeInspect();
  k.configs = [ours("canary"), tag("prod", "canary")];
  k.namespaces = [
    { name: "shop", labels: { "istio.io/rev": "prod" } },
    { name: "plain", labels: {} },
  ];
  k.objects = [pod("shop", "web"), pod("plain", "tagged", { "istio.io/rev": "prod" }), pod("plain", "other")];
  return k;
}

describe("check: revision tags", () => {
  test("istio.io/rev=<tag> on a namespace or a Pod: the tag's webhook injects, shown as REV (tag T)", async () => {
    const r = await check(cluster(), { config, targets: [], namespace: "", allNamespaces: true });
    assert.equal(r.errors, 0);
    const injecting = (name: string) =>
      r.objects
        .find((o) => o.name === name)
        ?.webhooks.filter((w) => w.injects)
        .map((w) => [w.webhook, w.revision, w.tag]);
    assert.deepEqual(injecting("web"), [
      ["sidecar-injector-tag-prod/rev.namespace.injector.sidecar-injector.dev", "canary", "prod"],
    ]);
    assert.deepEqual(injecting("tagged"), [
      ["sidecar-injector-tag-prod/rev.object.injector.sidecar-injector.dev", "canary", "prod"],
    ]);
    assert.deepEqual(injecting("other"), []);
    assert.deepEqual(r.tags, [
      { tag: "prod", revision: "canary", configuration: "sidecar-injector-tag-prod", findings: [] },
    ]);
    const shop = r.namespaces.find((n) => n.name === "shop");
    assert.ok(
      shop?.findings.some(
        (f) =>
          f.severity === "info" &&
          f.message ===
            "namespace shop has istio.io/rev=prod: revision tag prod → canary (configuration sidecar-injector-tag-prod)",
      ),
      JSON.stringify(shop?.findings),
    );
    assert.equal(
      shop?.findings.some((f) => /no injector webhook/.test(f.message)),
      false,
    );
    const table = formatCheckTable(r);
    assert.match(table, /^revision tag prod → canary \(configuration sidecar-injector-tag-prod\)$/m);
    assert.match(
      table,
      /sidecar-injector-tag-prod\/rev\.namespace\.injector\.sidecar-injector\.dev +canary \(tag prod\) +yes /,
    );
  });

  test("a tag pointing at a revision no injector serves: an error (exit 1); an istiod tag likewise", () => {
    const tags = checkTags([ours("canary"), tag("prod", "canary"), tag("old", "blue", "istiod"), istiod("green")]);
    assert.deepEqual(
      tags.map((t) => [t.tag, t.revision, t.configuration, t.findings.map((f) => f.severity)]),
      [
        ["old", "blue", "istio-revision-tag-old", ["error"]],
        ["prod", "canary", "sidecar-injector-tag-prod", []],
      ],
    );
    assert.match(
      tags[0]?.findings[0]?.message ?? "",
      /^revision tag old points at revision blue, which no injector configuration in the cluster serves/,
    );
  });

  test("the whole check counts a dangling tag as an error", async () => {
    const k = cluster();
    k.configs = [tag("prod", "canary")];
    const r = await check(k, { config, targets: [], namespace: "shop" });
    assert.equal(r.errors, 1);
    assert.match(formatCheckTable(r), /^ {2}error: revision tag prod points at revision canary/m);
  });

  test("the tag default pointing at canary beside a default revision: two injectors for istio-injection=enabled", async () => {
    const k = new FakeInspect();
    k.configs = [istiod("default"), tag("default", "canary")];
    k.namespaces = [{ name: "demo", labels: { "istio-injection": "enabled" } }];
    k.objects = [pod("demo", "web")];
    const r = await check(k, { config, targets: [], namespace: "demo" });
    const web = r.objects[0];
    assert.deepEqual(
      web?.webhooks.filter((w) => w.injects).map((w) => [w.configuration, w.revision, w.tag ?? ""]),
      [
        ["istio-sidecar-injector", "default", ""],
        ["sidecar-injector-tag-default", "canary", "default"],
      ],
    );
    assert.ok(r.errors >= 1);
  });
});
