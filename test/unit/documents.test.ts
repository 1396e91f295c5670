import assert from "node:assert/strict";
import { test } from "node:test";
import { AdmissionError } from "../../src/admission/errors.js";
import { findDocuments, MAX_DOCUMENT_DEPTH, tooDeep } from "../../src/documents.js";

const pod = (name: string, namespace?: string): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, ...(namespace ? { namespace } : {}) },
  spec: { containers: [{ name: "app", image: "nginx" }] },
});

const review = (operation: string, object?: unknown): Record<string, unknown> => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "u1",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace: "from-review",
    operation,
    ...(object === undefined ? {} : { object }),
  },
});

test("findDocuments: Lists opened in place, Pods and workloads located, other documents passed over", () => {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop" },
    spec: { template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web" }] } } },
  };
  const docs = [
    pod("first"),
    { kind: "List", items: [pod("second", "ns2"), { kind: "List", items: [deployment] }, { kind: "ConfigMap" }] },
    "text",
    pod("last"),
  ];
  const found = findDocuments(docs, "dflt");
  assert.deepEqual(
    found.map((f) => ("located" in f ? `${f.located.kind}/${f.located.namespace}/${f.located.name}` : "review")),
    ["Pod/dflt/first", "Pod/ns2/second", "Deployment/shop/web", "Pod/dflt/last"],
  );
});

test("findDocuments: an AdmissionReview carries the gate's verdict and its Pod's namespace", () => {
  const [created, updated, empty] = findDocuments(
    [review("CREATE", pod("p")), review("UPDATE", pod("p")), review("CREATE")],
    "dflt",
  );
  assert.ok(created && !("located" in created) && created.verdict.pass);
  assert.equal(created.namespace, "from-review");
  assert.ok(updated && !("located" in updated) && "unchanged" in updated.verdict);
  assert.equal(updated.verdict.unchanged, "not_create");
  assert.ok(empty && !("located" in empty) && "refused" in empty.verdict);
  assert.equal(empty.verdict.refused.code, "ERR_INVALID_POD");
});

test("findDocuments: an AdmissionReview /inject would refuse is refused with the gate's error", () => {
  assert.throws(
    () => findDocuments([{ kind: "AdmissionReview", apiVersion: "bogus/v0", request: { uid: "u" } }], "dflt"),
    (e: unknown) => e instanceof AdmissionError && e.code === "ERR_NOT_ADMISSION_REVIEW",
  );
});

test("tooDeep names the first document nested past the limit", () => {
  let deep: unknown = "leaf";
  for (let i = 0; i < MAX_DOCUMENT_DEPTH + 5; i++) deep = { a: deep };
  assert.equal(tooDeep([pod("ok"), pod("ok too")]), undefined);
  assert.match(
    tooDeep([pod("ok"), deep]) ?? "",
    new RegExp(`^document 2: a(\\.a)+: nests deeper than ${MAX_DOCUMENT_DEPTH} levels$`),
  );
});
