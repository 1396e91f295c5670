// Annotations that say what the config already says, without a cluster: which values the
// engine shows to change nothing, under which configs, and that the domain admits those and
// leaves every other value to the webhook. That the API server stores what the webhook stores
// is the e2e suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { noOpAnnotations } from "../../../src/policy/no-op-annotations.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { annotatedPod, OPTIONS } from "./support.js";

const MODE = "sidecar.istio.io/interceptionMode";
const REWRITE = "sidecar.istio.io/rewriteAppHTTPProbers";
const NATIVE = "sidecar.istio.io/nativeSidecar";

const valuesOf = (yaml: string): Record<string, readonly string[]> =>
  Object.fromEntries(noOpAnnotations(parseConfig(yaml), false).map((a) => [a.key, a.values]));

describe("annotations saying what the config says", () => {
  test("the config's own mode, its rewrite and its native sidecars change nothing", () => {
    assert.deepEqual(valuesOf("{}\n"), {
      [MODE]: ["REDIRECT"],
      [REWRITE]: ["true"],
      [NATIVE]: ["false"],
    });
    assert.deepEqual(valuesOf("interception:\n  mode: TPROXY\n")[MODE], ["TPROXY"]);
    assert.deepEqual(valuesOf("rewriteAppProbes: false\n")[REWRITE], ["false"]);
    assert.deepEqual(
      noOpAnnotations(DEFAULT_CONFIG, true).map((a) => a.pattern),
      ["^(REDIRECT)$", "^(true)$", "^(true)$"],
    );
    assert.deepEqual(valuesOf('nativeSidecars: "true"\n')[NATIVE], ["true"]);
  });

  test("those values are inside; any other is the webhook's, naming the values the policy takes", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    const inside: Record<string, string>[] = [
      { [MODE]: "REDIRECT" },
      { [REWRITE]: "true" },
      { [REWRITE]: "true", [MODE]: "REDIRECT" },
    ];
    for (const a of inside) assert.equal(outsideDomain(rules, annotatedPod(a)), undefined, JSON.stringify(a));
    for (const [k, v] of [
      [MODE, "TPROXY"],
      [MODE, "NONE"],
      [MODE, "redirect"],
      [MODE, ""],
      [REWRITE, "false"],
      [REWRITE, "yes"],
      [REWRITE, " true"],
      [REWRITE, "1"],
      [NATIVE, "true"],
    ] as const) {
      const why = outsideDomain(rules, annotatedPod({ [k]: v })) ?? "";
      assert.match(why, /has the value .* the config's own setting/, `${k}=${v}`);
    }
  });

  test("with rewriteAppProbes off, only the values saying false are inside", () => {
    const { rules } = renderPolicy(parseConfig("rewriteAppProbes: false\n"), OPTIONS);
    assert.equal(outsideDomain(rules, annotatedPod({ [REWRITE]: "false" })), undefined);
    assert.match(outsideDomain(rules, annotatedPod({ [REWRITE]: "true" })) ?? "", /it takes false: the config/);
  });
});
