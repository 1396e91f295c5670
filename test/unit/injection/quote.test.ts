import { test } from "node:test";
import assert from "node:assert/strict";
import { quote, QUOTE_MAX_CHARS } from "../../../src/injection/quote.js";

test("short values are quoted whole, as JSON", () => {
  assert.equal(quote("100m"), '"100m"');
  assert.equal(quote('a"b\n'), '"a\\"b\\n"');
});

test("long values are cut to a bounded prefix with their length", () => {
  const long = "x".repeat(200_000);
  const q = quote(long);
  assert.ok(q.length < QUOTE_MAX_CHARS + 40, `quoted length ${q.length}`);
  assert.match(q, /^"x+…" \(200000 characters\)$/);
});

test("a cut never splits a surrogate pair", () => {
  const value = `${"a".repeat(QUOTE_MAX_CHARS - 1)}😀${"b".repeat(10)}`;
  const q = quote(value);
  assert.doesNotMatch(JSON.parse(q.slice(0, q.indexOf(" ("))), /[\ud800-\udbff](?![\udc00-\udfff])/);
});

test("quoteName: a name as is, anything else quoted and bounded", async () => {
  const { quoteName } = await import("../../../src/injection/quote.js");
  for (const name of ["demo", "kube-system", "v1.2_3", "a"]) assert.equal(quoteName(name), name);
  assert.equal(quoteName(""), '""');
  assert.equal(quoteName("has space"), '"has space"');
  assert.equal(quoteName("-lead"), '"-lead"');
  assert.equal(quoteName("x".repeat(64)), quote("x".repeat(64)), "longer than a label value");
  assert.ok(quoteName("n".repeat(1_000_000)).length < QUOTE_MAX_CHARS + 40);
});

test("clip: a log field's value as is when short, its bounded prefix with the length when long", async () => {
  const { clip } = await import("../../../src/injection/quote.js");
  assert.equal(clip("web-1"), "web-1");
  assert.equal(clip(""), "");
  const c = clip("p".repeat(10_000_000));
  assert.ok(c.length < QUOTE_MAX_CHARS + 40, `clipped length ${c.length}`);
  assert.match(c, /^p+… \(10000000 characters\)$/);
});

test("every engine message quotes a user value to a bounded prefix", async () => {
  const { validateAnnotations } = await import("../../../src/injection/validate.js");
  const { selectTemplates } = await import("../../../src/injection/template.js");
  const { apiServerSelection } = await import("../../../src/injection/explain.js");
  const huge = "9".repeat(300_000);
  const messageOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  const messages = [
    messageOf(() => validateAnnotations({ "traffic.sidecar.istio.io/excludeOutboundPorts": `80,${huge}` })),
    messageOf(() => validateAnnotations({ "traffic.sidecar.istio.io/excludeOutboundIPRanges": `10.0.0.0/8,${huge}` })),
    messageOf(() => validateAnnotations({ "traffic.sidecar.istio.io/excludeInterfaces": `eth0,${huge}` })),
    messageOf(() => validateAnnotations({ "traffic.sidecar.istio.io/includeOutboundPorts": `80,${huge}"` })),
    messageOf(() => validateAnnotations({ "sidecar.istio.io/proxyCPU": ` ${huge}` })),
    messageOf(() => validateAnnotations({ "sidecar.istio.io/userVolume": `{"${huge}": 1}` })),
    messageOf(() => selectTemplates({ "inject.istio.io/templates": `sidecar,${huge}` })),
    apiServerSelection(huge, { "istio-injection": huge }, {}, "default").reason,
    apiServerSelection("demo", { "istio.io/rev": huge }, {}, "default").reason,
    apiServerSelection("demo", {}, { "istio.io/rev": huge }, "default").reason,
  ];
  for (const m of messages) {
    assert.ok(m.length > 0 && m.length < 400, `message of ${m.length} characters: ${m.slice(0, 300)}`);
    assert.match(m, /\(\d+ characters\)/);
  }
});
