// yaml-quoted.ts: what go-yaml v2 reads from a value written raw between double quotes. Each
// expectation was checked against Istio's injector (the oracle of test/oracle) with the value as
// traffic.sidecar.istio.io/includeOutboundPorts, which it writes into istio-init that way.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { InjectionError } from "../../../src/injection/types.js";
import { readDoubleQuoted } from "../../../src/injection/yaml-quoted.js";
import type { Pod } from "../../../src/kube/types.js";

describe("readDoubleQuoted", () => {
  const reads: [string, string][] = [
    ["80,443", "80,443"],
    ["5432\t", "5432\t"],
    ["  a  b  ", "  a  b  "],
    ["\\t", "\t"],
    ["80\\x2C81", "80,81"],
    ["\\u0041", "A"],
    ["\\U0010FFFF", "\u{10FFFF}"],
    ['\\"', '"'],
    ["\\'", "'"],
    ["\\\\", "\\"],
    ["\\e\\0", "\x1b\0"],
    ["a\\N", "a\u0085"],
    ["80\\_", "80\u00a0"],
    // A single line break is a space; n breaks are n-1 newlines; blanks around them dropped.
    ["5432\n", "5432 "],
    ["5432\n\n81", "5432\n81"],
    ["5432 \n  81", "5432 81"],
    ["5432\r\n81", "5432 81"],
    ["5432\u0085", "5432 "],
    ["5432\u2028x", "5432\u2028x"],
    // An escaped break joins the lines.
    ["5432\\\n  81", "543281"],
    // A document marker only at a line's start and before a blank.
    ["80\n---x", "80 ---x"],
    ["---\n", "--- "],
  ];
  for (const [raw, value] of reads)
    test(`${JSON.stringify(raw)} reads ${JSON.stringify(value)}`, () =>
      assert.deepEqual(readDoubleQuoted(raw), { ok: true, value }));

  const fails: [string, RegExp][] = [
    ['a"b', /has a '"'/],
    ["\\/", /not a YAML escape/],
    ["\\q", /not a YAML escape/],
    ["80\\", /not a YAML escape/],
    ["80\\x4g", /not a YAML escape/],
    ["\\ud800x", /is no character/],
    ["5432\u000b", /U\+000B/],
    ["\ufeffx", /U\+FEFF/],
    ["80\n---\n", /starts a YAML document/],
    ["80\n... x", /starts a YAML document/],
  ];
  for (const [raw, why] of fails)
    test(`${JSON.stringify(raw)} fails the template`, () => {
      const r = readDoubleQuoted(raw);
      assert.equal(r.ok, false);
      assert.match(r.ok ? "" : r.why, why);
    });
});

describe("values written raw between double quotes, in a Pod", () => {
  const config = buildConfig({ nativeSidecars: "false" });
  const run = (annotations: Record<string, string>) => {
    const pod: Pod = { metadata: { name: "q", annotations }, spec: { containers: [{ name: "app", image: "a:1" }] } };
    return inject(pod, { namespace: "demo" }, config).pod.spec;
  };
  const argAfter = (flag: string, annotations: Record<string, string>): string | undefined => {
    const args = run(annotations)?.initContainers?.find((c) => c.name === "istio-init")?.args ?? [];
    return args[args.indexOf(flag) + 1];
  };

  test("istio-init gets the value YAML reads: escapes decoded, line breaks folded", () => {
    assert.equal(argAfter("-q", { "traffic.sidecar.istio.io/includeOutboundPorts": "80\\x2C81" }), "80,81");
    assert.equal(argAfter("-o", { "traffic.sidecar.istio.io/excludeOutboundPorts": "5432\n" }), "5432 ");
    assert.equal(argAfter("-b", { "traffic.sidecar.istio.io/includeInboundPorts": "8080\n" }), "8080 ");
  });

  test("a value validation admits (it trims) but YAML cannot hold is refused, naming the annotation", () => {
    for (const key of [
      "traffic.sidecar.istio.io/excludeOutboundPorts",
      "traffic.sidecar.istio.io/includeInboundPorts",
      "traffic.sidecar.istio.io/excludeInterfaces",
    ])
      assert.throws(
        () => run({ [key]: key.endsWith("Interfaces") ? "eth1\v" : "5432\v" }),
        (e: unknown) => e instanceof InjectionError && e.field === key && /U\+000B/.test(e.message),
        key,
      );
    // The excluded inbound ports are written trimmed and joined with the agent's, unless the
    // annotation already lists that port: then as written.
    assert.doesNotThrow(() => run({ "traffic.sidecar.istio.io/excludeInboundPorts": "5432\v" }));
    assert.throws(
      () => run({ "traffic.sidecar.istio.io/excludeInboundPorts": "15020,5432\v" }),
      (e: unknown) => e instanceof InjectionError && e.field === "traffic.sidecar.istio.io/excludeInboundPorts",
    );
    // Not written where istio-init is not rendered.
    assert.doesNotThrow(() =>
      run({ "traffic.sidecar.istio.io/excludeOutboundPorts": "5432\v", "sidecar.istio.io/interceptionMode": "NONE" }),
    );
  });

  test('the template compares proxyMetadata values with "true" as written, not as its YAML reads them', () => {
    const pod: Pod = {
      metadata: {
        name: "q",
        annotations: {
          "proxy.istio.io/config": JSON.stringify({
            proxyMetadata: { ISTIO_META_ENABLE_HBONE: "tru\\x65", IPTABLES_TRACE_LOGGING: "tru\\x65" },
          }),
        },
      },
      spec: { containers: [{ name: "app", image: "a:1" }] },
    };
    const r = inject(pod, { namespace: "demo" }, config).pod;
    assert.equal(r.metadata?.labels?.["networking.istio.io/tunnel"], undefined);
    const proxy = r.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.equal(proxy?.env?.find((e) => e.name === "ISTIO_META_ENABLE_HBONE")?.value, "true");
    assert.deepEqual(proxy?.securityContext?.capabilities, { drop: ["ALL"] });
  });

  test("proxyMetadata values: the env gets what YAML reads; one YAML cannot hold is refused naming the ProxyConfig", () => {
    const env = (value: string) =>
      run({ "proxy.istio.io/config": JSON.stringify({ proxyMetadata: { FOO: value } }) })
        ?.containers.find((c) => c.name === "istio-proxy")
        ?.env?.find((e) => e.name === "FOO")?.value;
    assert.equal(env("C:\\temp"), "C:\temp");
    assert.equal(env("line1\nline2\n"), "line1 line2 ");
    assert.equal(env("plain value"), "plain value");
    assert.throws(
      () => env('{"team":"a"}'),
      (e: unknown) =>
        e instanceof InjectionError && e.field === "proxy.istio.io/config" && /proxyMetadata "FOO"/.test(e.message),
    );
  });
});
