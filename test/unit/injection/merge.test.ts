import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeObject } from "../../../src/injection/merge.js";

test("strategic merge: keyed lists merge, other lists replace, maps recurse, input untouched", () => {
  const base = {
    name: "istio-proxy",
    args: ["proxy", "sidecar"],
    env: [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ],
    resources: { limits: { cpu: "2", memory: "1Gi" } },
  };
  const patch = {
    args: ["-c", "x"],
    env: [
      { name: "B", value: "3" },
      { name: "C", value: "4" },
    ],
    resources: { limits: { cpu: "3" } },
  };
  const frozen = structuredClone(base);
  const out = mergeObject(base, patch);
  assert.deepEqual(out, {
    name: "istio-proxy",
    args: ["-c", "x"],
    env: [
      { name: "A", value: "1" },
      { name: "B", value: "3" },
      { name: "C", value: "4" },
    ],
    resources: { limits: { cpu: "3", memory: "1Gi" } },
  });
  assert.deepEqual(base, frozen);
});
