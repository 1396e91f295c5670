// The policy renderer without a cluster: CEL literals, the domain's checks and reasons, what
// the policy adds (the engine's own output), v1 against v1beta1, and the CLI's `policy render`.
// Whether the API server evaluates it as the webhook injects is the e2e suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import type { Pod } from "../../../src/kube/types.js";
import { literal, pointerToken, slot, str } from "../../../src/policy/cel.js";
import { decisionExpression, selectorExpression } from "../../../src/policy/decision.js";
import { domainRules, outsideDomain } from "../../../src/policy/domain.js";
import { policyList, renderPolicy, WEBHOOK_CONDITION_ANNOTATION } from "../../../src/policy/render.js";
import { runCli } from "../../support/run.js";
import { OPTIONS } from "./support.js";

const pod = (patch: Partial<Pod["metadata"]> = {}, spec: Partial<NonNullable<Pod["spec"]>> = {}): Pod => ({
  metadata: { name: "web", labels: { app: "web" }, ...patch },
  spec: { containers: [{ name: "web", image: "example.com/web:1", ports: [{ containerPort: 80 }] }], ...spec },
});

describe("CEL literals", () => {
  test("strings escape quotes, backslashes and control characters", () => {
    assert.equal(str('a"b\\c\nd\u0001'), '"a\\"b\\\\c\\nd\\u0001"');
  });
  test("maps and lists wrap every value in dyn(), slots are written as their expressions", () => {
    assert.equal(
      literal({ name: "x", port: 15090, on: true, env: [{ value: slot("variables.v") }] }),
      '{"name": dyn("x"), "port": dyn(15090), "on": dyn(true), "env": dyn([dyn({"value": dyn((variables.v))})])}',
    );
    assert.throws(() => literal(1.5), /not an integer/);
  });
  test("JSON pointer tokens escape ~ and /", () => {
    assert.equal(pointerToken("sidecar.istio.io/status~x"), "sidecar.istio.io~1status~0x");
  });
});

describe("the decision as CEL", () => {
  test("selectors: matchLabels and each operator", () => {
    assert.equal(selectorExpression({}), "true");
    const e = selectorExpression({
      matchLabels: { a: "1" },
      matchExpressions: [
        { key: "b", operator: "In", values: ["x"] },
        { key: "c", operator: "DoesNotExist" },
      ],
    });
    assert.match(e, /"a" in object\.metadata\.labels\) && object\.metadata\.labels\["a"\] == "1"/);
    assert.match(e, /object\.metadata\.labels\["b"\] in \["x"\]/);
    assert.match(e, /!\(has\(object\.metadata\.labels\) && "c" in object\.metadata\.labels\)/);
  });
  test("policy disabled: only the label, the annotation or an always selector injects", () => {
    const e = decisionExpression(
      parseConfig("policy: disabled\nalwaysInjectSelector: [{matchLabels: {mesh: 'on'}}]\n"),
    );
    assert.match(
      e,
      /: \(false \|\| \(\(\(has\(object\.metadata\.labels\) && "mesh" in object\.metadata\.labels\) && object\.metadata\.labels\["mesh"\] == "on"\)\)\)\)$/,
    );
  });
});

describe("the domain", () => {
  const rendered = renderPolicy(DEFAULT_CONFIG, OPTIONS);
  const outside = (p: Pod): string | undefined => outsideDomain(rendered.rules, p);

  test("a plain Pod is inside; each rule names why another falls to the webhook", () => {
    assert.equal(outside(pod()), undefined);
    assert.match(
      outside(pod({ annotations: { "sidecar.istio.io/proxyImage": "x" } })) ?? "",
      /annotation "sidecar\.istio\.io\/proxyImage"/,
    );
    assert.match(outside(pod({ annotations: { "prometheus-io/port": "9" } })) ?? "", /prometheus-io\/port/);
    assert.equal(outside(pod({ annotations: { "sidecar.istio.io/inject": "true" } })), undefined);
    assert.match(outside(pod({ labels: { "topology.istio.io/network": "n" } })) ?? "", /label "topology/);
    assert.equal(
      outside(pod({ labels: { "istio.io/rev": "default", "service.istio.io/canonical-name": "x" } })),
      undefined,
    );
    assert.match(
      outside(pod({}, { volumes: [{ name: "istio-envoy", emptyDir: {} }] })) ?? "",
      /volume named "istio-envoy"/,
    );
    assert.equal(
      outside(pod({}, { containers: [{ name: "web", readinessProbe: { httpGet: { port: 80 } } }] })),
      undefined,
    );
    assert.match(
      outside(pod({}, { containers: [{ name: "web", readinessProbe: { httpGet: { path: '/a"b', port: 80 } } }] })) ??
        "",
      /probe or hook string "\/a\\"b" with a character JSON escapes/,
    );
    assert.equal(
      outside(pod({}, { containers: [{ name: "web", readinessProbe: { exec: { command: ["true"] } } }] })),
      undefined,
    );
    assert.match(
      outside(pod({}, { containers: [{ name: "web", ports: [{ name: 'a"b', containerPort: 1 }] }] })) ?? "",
      /port field/,
    );
    assert.match(outside(pod({ name: "", generateName: "web-" })) ?? "", /no name and no controller/);
    const many = Array.from({ length: 33 }, (_, i) => ({ name: `c${i}` }));
    assert.match(outside(pod({}, { containers: many })) ?? "", /33 containers/);
  });

  test("without rewriteAppProbes, probes stay in the domain", () => {
    const config = parseConfig("rewriteAppProbes: false\n");
    const r = renderPolicy(config, OPTIONS);
    assert.equal(
      r.rules.some((x) => x.name.startsWith("policy-domain-probe")),
      false,
    );
    assert.equal(
      outsideDomain(
        r.rules,
        pod({}, { containers: [{ name: "w", livenessProbe: { httpGet: { path: "\\", port: 1 } } }] }),
      ),
      undefined,
    );
    assert.doesNotMatch(JSON.stringify(r.policy), /ISTIO_KUBE_APP_PROBERS|app-health/);
  });

  test("rule names are unique, and every rule is in the webhook's negated condition", () => {
    const names = domainRules(DEFAULT_CONFIG, rendered.parts).map((r) => r.name);
    assert.equal(new Set(names).size, names.length);
    for (const r of rendered.rules) assert.ok(rendered.webhookMatchCondition.expression.includes(r.expression), r.name);
  });
});

describe("the policy", () => {
  test("v1 and v1beta1 differ only in apiVersion", () => {
    const beta = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    const ga = renderPolicy(DEFAULT_CONFIG, { ...OPTIONS, apiVersion: "v1" });
    const strip = (o: object): string =>
      JSON.stringify(o)
        .replaceAll("admissionregistration.k8s.io/v1beta1", "X")
        .replaceAll("admissionregistration.k8s.io/v1", "X");
    assert.equal(strip(policyList(beta)), strip(policyList(ga)));
    assert.equal(ga.policy.apiVersion, "admissionregistration.k8s.io/v1");
  });

  test("what it adds is the engine's: classic placement appends, native placement goes first", () => {
    const classic = renderPolicy(DEFAULT_CONFIG, OPTIONS).parts;
    assert.deepEqual(
      classic.containers.after.map((c) => c.name),
      ["istio-proxy"],
    );
    assert.deepEqual(
      classic.initContainers.after.map((c) => c.name),
      ["istio-init"],
    );
    const native = renderPolicy(DEFAULT_CONFIG, { ...OPTIONS, nativeSidecarsSupported: true }).parts;
    assert.deepEqual(
      native.initContainers.before.map((c) => c.name),
      ["istio-init", "istio-proxy"],
    );
    assert.equal(native.containers.after.length, 0);
  });

  test("one binding per webhook of the chart; a non-default revision has only the revision's two", () => {
    assert.deepEqual(
      renderPolicy(DEFAULT_CONFIG, OPTIONS).bindings.map((b) => (b.metadata as { name: string }).name),
      [
        "sidecar-injector-rev.namespace",
        "sidecar-injector-rev.object",
        "sidecar-injector-namespace",
        "sidecar-injector-object",
      ],
    );
    assert.equal(renderPolicy(parseConfig("revision: canary\n"), OPTIONS).bindings.length, 2);
  });

  test("an invalid name is refused, naming it", () => {
    assert.throws(
      () => renderPolicy(DEFAULT_CONFIG, { ...OPTIONS, name: "Bad_Name" }),
      /invalid policy name "Bad_Name"/,
    );
  });
});

describe("sidecar-injector policy render", () => {
  test("prints a List: the policy annotated with the webhook's condition, then its bindings", async () => {
    const r = await runCli(["policy", "render", "--native-sidecars", "false", "--api-version", "v1"]);
    assert.equal(r.code, 0, r.stderr);
    const [doc] = parseAllDocuments(r.stdout).map(
      (d) =>
        d.toJS() as {
          kind: string;
          items: { kind: string; apiVersion: string; metadata: { annotations?: Record<string, string> } }[];
        },
    );
    assert.equal(doc?.kind, "List");
    assert.deepEqual(
      doc.items.map((i) => i.kind),
      ["MutatingAdmissionPolicy", ...Array(4).fill("MutatingAdmissionPolicyBinding")],
    );
    assert.ok(doc.items.every((i) => i.apiVersion === "admissionregistration.k8s.io/v1"));
    assert.match(doc.items[0]?.metadata.annotations?.[WEBHOOK_CONDITION_ANNOTATION] ?? "", /^!\(/);
  });
  test("nativeSidecars: auto without --native-sidecars, and a bad --api-version, exit 2 naming them", async () => {
    const auto = await runCli(["policy", "render"]);
    assert.equal(auto.code, 2);
    assert.match(auto.stderr, /nativeSidecars: auto.*--native-sidecars true\|false/);
    const bad = await runCli(["policy", "render", "--native-sidecars", "false", "--api-version", "v2"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--api-version is v1, v1beta1 or auto, not "v2"/);
  });
  test("policy check says which injector each Pod and workload gets, and why", async () => {
    const r = await runCli([
      "policy",
      "check",
      "--native-sidecars",
      "false",
      "-f",
      "test/golden/basic-deployment.yaml",
      "-f",
      "test/golden/probes.yaml",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "Deployment/reviews (test/golden/basic-deployment.yaml, document 1): handled by the MutatingAdmissionPolicy",
      "Pod/probes (test/golden/probes.yaml, document 1): handled by the MutatingAdmissionPolicy",
    ]);
  });
});
