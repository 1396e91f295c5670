import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalResources, parseQuantity } from "../../../src/injection/quantity.js";

test("quantities are spelled as the API server stores them", () => {
  const cases: [string, string][] = [
    ["3000m", "3"], ["1000m", "1"], ["1500m", "1500m"], ["100m", "100m"], ["0.5", "500m"], ["2", "2"],
    ["1024Mi", "1Gi"], ["1536Mi", "1536Mi"], ["0.5Gi", "512Mi"], ["128Mi", "128Mi"], ["1000", "1k"],
    ["1e3", "1k"], ["0", "0"], ["1.5Gi", "1536Mi"], ["0.0000000001", "1n"],
  ];
  for (const [input, want] of cases) assert.equal(parseQuantity(input), want, input);
});

test("non-quantities are refused", () => {
  for (const bad of ["", "lots", "1.2.3", "10 Mi", "Mi", "1Q"]) assert.equal(parseQuantity(bad), undefined, bad);
});

test("canonicalResources rewrites requests and limits only", () => {
  assert.deepEqual(canonicalResources({ limits: { cpu: "3000m" }, requests: { memory: "1024Mi" }, claims: [{ name: "x" }] }), {
    limits: { cpu: "3" },
    requests: { memory: "1Gi" },
    claims: [{ name: "x" }],
  });
});
