// The AdmissionReviews a real kube-apiserver sent (recorded by the end-to-end suite into
// test/fixtures), answered by the review handler the webhook uses.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { decodeAdmissionReview, admit } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures");
const config = buildConfig({});

function answer(name: string): {
  object: Pod;
  response: NonNullable<ReturnType<typeof admit>["review"]["response"]>;
  patched?: Pod;
} {
  const body = readFileSync(join(dir, `admission-review-${name}.json`));
  const review = decodeAdmissionReview(body);
  const { review: out } = admit(review, { config });
  assert.equal(out.apiVersion, review.apiVersion);
  const response = out.response;
  assert.ok(response);
  assert.equal(response.uid, review.request.uid);
  const object = review.request.object as Pod;
  if (!response.patch) return { object, response };
  const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as jsonpatch.Operation[];
  assert.ok(
    ops.every((o) => !o.path.startsWith("/metadata/managedFields")),
    "managedFields untouched",
  );
  const patched = jsonpatch.applyPatch(structuredClone(object), ops, true, false).newDocument;
  return { object, response, patched };
}

const proxy = (p: Pod | undefined): Container | undefined =>
  [...(p?.spec?.initContainers ?? []), ...(p?.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

for (const name of ["pod", "revision-namespace", "object-opt-in", "dry-run"]) {
  test(`recorded ${name}: injected, and the patch applies to what the API server sent`, () => {
    const { response, patched } = answer(name);
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, "JSONPatch");
    assert.ok(proxy(patched), "istio-proxy added");
    assert.ok(patched?.metadata?.managedFields, "managedFields kept as sent");
  });
}

test("recorded replicaset-pod: the owner is the Deployment and the probe is rewritten", () => {
  const { patched } = answer("replicaset-pod");
  const env = proxy(patched)?.env ?? [];
  assert.equal(
    env.find((e) => e.name === "ISTIO_META_OWNER")?.value,
    "kubernetes://apis/apps/v1/namespaces/e2e-on/deployments/shop",
  );
  const app = patched?.spec?.containers.find((c) => c.name === "shop");
  assert.equal(app?.readinessProbe?.httpGet?.path, "/app-health/shop/readyz");
});

test("recorded annotation-opt-out: allowed without a patch, with the reason", () => {
  const { response } = answer("annotation-opt-out");
  assert.equal(response.allowed, true);
  assert.equal(response.patch, undefined);
  assert.match(response.auditAnnotations?.reason ?? "", /sidecar\.istio\.io\/inject=false/);
});

test("recorded invalid-annotation: refused, naming the annotation", () => {
  const { response } = answer("invalid-annotation");
  assert.equal(response.allowed, false);
  assert.match(response.status?.message ?? "", /traffic\.sidecar\.istio\.io\/includeInboundPorts/);
});
