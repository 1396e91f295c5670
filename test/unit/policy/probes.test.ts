// The policy's probe rewrite without a cluster: the domain's probe rules (what the probers'
// JSON cannot carry as it is, the names that would not sort alike, the cost bounds), the agent's
// port read from the engine, and where the rendered policy puts the rewrite. That the API
// server's CEL writes what the engine writes is the e2e suite's (policy-proof, policy-modes).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import type { Container, Pod } from "../../../src/kube/types.js";
import { MAX_HEADERS, MAX_PROBE_TEXT, outsideDomain } from "../../../src/policy/domain.js";
import { probeOpsExpression, probeRewritePort } from "../../../src/policy/probe-rewrite.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { OPTIONS } from "./support.js";

const rendered = renderPolicy(DEFAULT_CONFIG, OPTIONS);
const outside = (...containers: Container[]): string | undefined =>
  outsideDomain(rendered.rules, { metadata: { name: "p" }, spec: { containers } } satisfies Pod);
const web = (extra: Partial<Container>): Container => ({ name: "web", image: "example.com/web:1", ...extra });

describe("the domain's probe rules", () => {
  test("every kind of probe and hook is inside, with escapes JSON leaves alone", () => {
    assert.equal(
      outside(
        web({
          ports: [{ name: "http", containerPort: 8080 }],
          readinessProbe: {
            httpGet: {
              path: "/r?a=<b>&c=é",
              port: "http",
              scheme: "HTTPS",
              httpHeaders: [{ name: "X-A", value: "<>&ü 'x'" }],
            },
          },
          livenessProbe: { tcpSocket: { port: 80, host: "h" } },
          startupProbe: { grpc: { port: 9000, service: "s.v1" } },
          lifecycle: { preStop: { httpGet: { port: 80 } }, postStart: { tcpSocket: { port: 81 } } },
        }),
      ),
      undefined,
    );
  });

  test("a quote, a backslash or a control character in any string the probers carry is outside, naming it", () => {
    const cases: [Partial<Container>, string][] = [
      [{ readinessProbe: { httpGet: { path: '/"', port: 80 } } }, '"/\\""'],
      [{ livenessProbe: { httpGet: { port: 80, httpHeaders: [{ name: "X", value: "a\\b" }] } } }, '"a\\\\b"'],
      [{ startupProbe: { grpc: { port: 1, service: "a\nb" } } }, '"a\\nb"'],
      [{ lifecycle: { preStop: { tcpSocket: { port: 1, host: "a\u0001" } } } }, '"a\\u0001"'],
    ];
    for (const [extra, quoted] of cases) {
      const why = outside(web(extra)) ?? "";
      assert.ok(why.includes(`string ${quoted} with a character JSON escapes`), why);
    }
  });

  test("a repeated container name is outside only when the Pod has probes to rewrite", () => {
    const probed = web({ readinessProbe: { tcpSocket: { port: 80 } } });
    assert.match(outside(probed, web({})) ?? "", /two containers are named "web"/);
    assert.equal(outside(web({}), web({})), undefined);
    assert.equal(outside(web({ readinessProbe: { exec: { command: ["true"] } } }), web({})), undefined);
  });

  test("a container with probes to rewrite and a name with '/' or beyond ASCII is outside; others may have any", () => {
    const probe = { readinessProbe: { tcpSocket: { port: 80 } } };
    assert.match(outside({ name: "a/b", ...probe }) ?? "", /container "a\/b" has probes the webhook rewrites/);
    assert.match(outside({ name: "wé", ...probe }) ?? "", /name that is not printable ASCII/);
    assert.equal(outside({ name: "a/b" }, { name: "x", ...probe }), undefined);
  });

  test("the bounds: headers and characters per probe or hook, counting what the API server defaults", () => {
    const headers = (n: number): { name: string; value: string }[] =>
      Array.from({ length: n }, (_, i) => ({ name: `X-${i}`, value: "" }));
    assert.equal(
      outside(web({ readinessProbe: { httpGet: { port: 1, httpHeaders: headers(MAX_HEADERS) } } })),
      undefined,
    );
    assert.match(
      outside(web({ readinessProbe: { httpGet: { port: 1, httpHeaders: headers(MAX_HEADERS + 1) } } })) ?? "",
      new RegExp(`more than ${MAX_HEADERS} headers`),
    );
    // The path and the scheme the API server writes ("HTTP") count: MAX_PROBE_TEXT in all.
    const path = `/${"p".repeat(MAX_PROBE_TEXT - 1 - "HTTP".length)}`;
    assert.equal(outside(web({ readinessProbe: { httpGet: { port: 1, path } } })), undefined);
    assert.match(
      outside(web({ readinessProbe: { httpGet: { port: 1, path: `${path}p` } } })) ?? "",
      new RegExp(`more than ${MAX_PROBE_TEXT} characters`),
    );
    // Code points, as CEL counts: a character beyond the BMP is one.
    const wide = `/${"😀".repeat(MAX_PROBE_TEXT - 1 - "HTTP".length)}`;
    assert.equal(outside(web({ readinessProbe: { httpGet: { port: 1, path: wide } } })), undefined);
  });

  test("without rewriteAppProbes none of these rules applies", () => {
    const r = renderPolicy(parseConfig("rewriteAppProbes: false\n"), OPTIONS);
    const pod: Pod = {
      metadata: { name: "p" },
      spec: { containers: [web({ readinessProbe: { httpGet: { path: '"', port: 1 } } }), web({})] },
    };
    assert.equal(outsideDomain(r.rules, pod), undefined);
  });
});

describe("the rewrite in the rendered policy", () => {
  test("the agent's port is read from the engine: the config's status port, none without rewriteAppProbes", () => {
    assert.equal(probeRewritePort(DEFAULT_CONFIG, false), DEFAULT_CONFIG.proxy.statusPort);
    assert.equal(probeRewritePort(DEFAULT_CONFIG, true), DEFAULT_CONFIG.proxy.statusPort);
    assert.equal(probeRewritePort(parseConfig("rewriteAppProbes: false\n"), false), undefined);
    assert.equal(probeRewritePort(parseConfig("proxy: {statusPort: 15999}\n"), false), 15999);
  });

  test("the ops come first, the probers follow the sidecar's env, the variables are declared", () => {
    const spec = rendered.policy.spec as {
      variables: { name: string; expression: string }[];
      mutations: { jsonPatch: { expression: string } }[];
    };
    const names = spec.variables.map((v) => v.name);
    for (const n of ["proberEntries", "proberRanks", "appProbers", "initContainersProbeOps", "containersProbeOps"])
      assert.ok(names.includes(n), n);
    const expression = spec.mutations[0]?.jsonPatch.expression ?? "";
    assert.ok(expression.startsWith("((size(variables.initContainersProbeOps) > 0 ?"), expression.slice(0, 80));
    const containers = spec.variables.find((v) => v.name === "injectedContainers")?.expression ?? "";
    assert.match(containers, /"ISTIO_KUBE_APP_PROBERS"\), "value": dyn\(variables\.appProbers\)/);
    const off = renderPolicy(parseConfig("rewriteAppProbes: false\n"), OPTIONS).policy;
    assert.doesNotMatch(JSON.stringify(off), /appProbers|ProbeOps|app-health/);
  });

  test("the ops of each list are concatenated index by index up to the bound", () => {
    const e = probeOpsExpression(2);
    assert.equal(e.match(/size\(variables\.(init)?[cC]ontainersProbeOps\) > \d/g)?.length, 4);
    assert.match(e, /variables\.containersProbeOps\[1\] : \[\]\)\)\.map\(o, /);
  });
});
