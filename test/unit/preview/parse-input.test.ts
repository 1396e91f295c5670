// The limits on what the CLI (inject -f, preview -f) and POST /preview parse.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MANIFEST_LIMITS, PREVIEW_JSON_LIMITS, PREVIEW_YAML_LIMITS } from "../../../src/injection/yaml-limits.js";
import { ManifestError, parseManifest } from "../../../src/manifest.js";
import { parsePreviewInput, PreviewError } from "../../../src/preview.js";

const POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: app, image: nginx}]\n";
const keys = (n: number): string => Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join("\n");

function previewRefused(body: string, format: "json" | "yaml", why: RegExp): void {
  assert.throws(
    () => parsePreviewInput(body, format),
    (e: unknown) => e instanceof PreviewError && why.test(e.message),
  );
}

test("manifests: documents read in order, each limit refused with the source named", () => {
  assert.deepEqual(parseManifest(`${POD}---\n${POD}`, "app.yaml").length, 2);
  const small = { ...MANIFEST_LIMITS, maxDocuments: 2, maxDepth: 4, maxNodes: 50, maxAliases: 1, maxBytes: 4096 };
  const refused = (text: string, why: RegExp): void =>
    assert.throws(
      () => parseManifest(text, "app.yaml", small),
      (e: unknown) => e instanceof ManifestError && e.message.startsWith("app.yaml: ") && why.test(e.message),
    );
  refused(`${POD}---\n${POD}---\n${POD}`, /more than 2 documents \(limit: documents\)/);
  refused("a: [[[[[1]]]]]", /deeper than 4 levels \(limit: depth\)/);
  refused(keys(51), /more than 50 keys and items \(limit: nodes\)/);
  refused("a: &x 1\nb: *x\nc: *x\n", /more than 1 aliases \(limit: aliases\)/);
  refused(`a: "${"x".repeat(4096)}"`, /longer than 4096 characters \(limit: bytes\)/);
  assert.throws(() => parseManifest("a: [1\n", "app.yaml"), /^Error: app\.yaml: document 1 is not valid YAML/);
  // The default limits are those of a local file: a few MiB of manifest is fine.
  const big = Array.from({ length: 3000 }, () => POD).join("---\n");
  assert.ok(big.length > 200_000);
  assert.equal(parseManifest(big, "big.yaml").length, 3000);
});

test("/preview YAML bodies: held to the server's limits", () => {
  assert.equal(parsePreviewInput(POD, "yaml").length, 1);
  previewRefused(keys(PREVIEW_YAML_LIMITS.maxNodes + 1), "yaml", /limit: nodes/);
  previewRefused(`a: "${"x".repeat(PREVIEW_YAML_LIMITS.maxBytes)}"`, "yaml", /limit: bytes/);
  previewRefused("- ".repeat(PREVIEW_YAML_LIMITS.maxDepth + 1) + "1", "yaml", /limit: depth/);
  previewRefused(
    Array.from({ length: PREVIEW_YAML_LIMITS.maxDocuments + 1 }, () => "a: 1").join("\n---\n"),
    "yaml",
    /limit: documents/,
  );
  // The offline preview command passes the file limits instead.
  assert.equal(parsePreviewInput(keys(PREVIEW_YAML_LIMITS.maxNodes + 1), "yaml", MANIFEST_LIMITS).length, 1);
});

test("/preview JSON bodies: JSON.parse after a linear depth and size scan; YAML sent as JSON still read", () => {
  assert.deepEqual(parsePreviewInput('{"kind": "Pod"}', "json"), [{ kind: "Pod" }]);
  assert.deepEqual(parsePreviewInput(POD, "json")[0], {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web" },
    spec: { containers: [{ name: "app", image: "nginx" }] },
  });
  // A YAML body that is JSON goes the fast way, with the same answer.
  assert.deepEqual(parsePreviewInput('{"kind": "Pod"}', "yaml"), [{ kind: "Pod" }]);
  previewRefused("[".repeat(3_000_000) + "]".repeat(3_000_000), "json", /limit: depth/);
  previewRefused(`[${"1,".repeat(PREVIEW_JSON_LIMITS.maxNodes)}1]`, "json", /limit: nodes/);
  previewRefused("{not json: [", "json", /neither JSON nor YAML/);
});
