// The proxy's readiness probe from the Pod's annotations, without a cluster: which fields the
// engine lets them set (checked against its output), the probe the model gives, which values the
// domain admits (never one the webhook refuses), and where the rendered policy computes it. That
// the API server stores what the webhook stores is the e2e suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import { validateAnnotations } from "../../../src/injection/validate.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { modelProbe, readinessProbe } from "../../../src/policy/readiness.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { annotatedPod, OPTIONS } from "./support.js";

const R = "readiness.status.sidecar.istio.io/";

describe("the proxy's readiness probe from the Pod's annotations", () => {
  test("the three set istio-proxy's readiness probe; a 0 leaves the field out", () => {
    const r = readinessProbe(DEFAULT_CONFIG, false);
    assert.ok(r);
    assert.equal(r.container, "istio-proxy");
    assert.deepEqual(
      r.fields.map((f) => f.field),
      ["initialDelaySeconds", "periodSeconds", "failureThreshold"],
    );
    assert.deepEqual(modelProbe(r, { [`${R}initialDelaySeconds`]: "5", [`${R}periodSeconds`]: "0" }), {
      httpGet: { path: "/healthz/ready", port: 15021 },
      initialDelaySeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 4,
    });
    assert.deepEqual(readinessProbe(DEFAULT_CONFIG, true)?.fields, r.fields);
  });

  test("without a status port there is no probe, and the annotations stay the webhook's", () => {
    const config = parseConfig("rewriteAppProbes: false\nproxy:\n  statusPort: 0\n");
    assert.equal(readinessProbe(config, false), undefined);
    const { rules } = renderPolicy(config, OPTIONS);
    assert.match(outsideDomain(rules, annotatedPod({ [`${R}periodSeconds`]: "5" })) ?? "", /only the webhook reads/);
  });

  test("plain whole numbers are inside, and the webhook admits each; others are outside, naming them", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const v of ["0", "1", "30", "999999999"]) {
      const a = { [`${R}failureThreshold`]: v };
      assert.equal(outsideDomain(rules, annotatedPod(a)), undefined, v);
      assert.doesNotThrow(() => validateAnnotations(a), v);
    }
    for (const v of ["", "01", "1000000000", "-1", "1.5", " 5", "2147483648", "5s"]) {
      const why = outsideDomain(rules, annotatedPod({ [`${R}periodSeconds`]: v })) ?? "";
      assert.match(
        why,
        /annotation "readiness\.status\.sidecar\.istio\.io\/periodSeconds" has the value .*whole numbers/,
        v,
      );
    }
  });

  test("the rendered policy computes the probe, the config's fields when the Pod names none", () => {
    const spec = renderPolicy(DEFAULT_CONFIG, OPTIONS).policy.spec as {
      variables: { name: string; expression: string }[];
    };
    const containers = spec.variables.find((v) => v.name === "injectedContainers")?.expression ?? "";
    assert.match(
      containers,
      /"readinessProbe": dyn\(\(\(\("readiness\.status\.sidecar\.istio\.io\/initialDelaySeconds" in variables\.annotations \? int\(/,
    );
    assert.match(containers, /: 15\) != 0 \?/);
  });
});
