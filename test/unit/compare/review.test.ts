// The review sent to istiod (the Pod as its controller creates it and the API server writes
// it) and how an answer is read: every way an answer can fail to be one is a CompareError
// naming who answered.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CompareError, podAsCreated, podCreateReview, readAnswer } from "../../../src/compare/review.js";

const UID = "11111111-2222-3333-4444-555555555555";
const WHERE = "https://istiod.example/inject";

function answer(response: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: UID, ...response },
  });
}

function patch(ops: unknown): string {
  return Buffer.from(JSON.stringify(ops)).toString("base64");
}

describe("podAsCreated", () => {
  const template = { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx" }] } };

  test("a Deployment's Pod: its ReplicaSet's generateName, ownerReference and pod-template-hash; resources: {}", () => {
    const pod = podAsCreated("Deployment", "web", "shop", template);
    assert.deepEqual(pod.metadata, {
      labels: { app: "web", "pod-template-hash": "5f6b7c8d9" },
      namespace: "shop",
      generateName: "web-5f6b7c8d9-",
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "web-5f6b7c8d9",
          uid: "00000000-0000-0000-0000-000000000000",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    assert.deepEqual(pod.spec?.containers, [{ name: "web", image: "nginx", resources: {} }]);
    assert.deepEqual(template.spec.containers[0], { name: "web", image: "nginx" }, "the input is not changed");
  });

  test("a CronJob's Pod is its Job's; a Pod is itself, namespace filled in, managedFields dropped", () => {
    assert.equal(podAsCreated("CronJob", "nightly", "ns", template).metadata?.generateName, "nightly-29012345-");
    const pod = podAsCreated("Pod", "p", "ns", {
      metadata: { name: "p", managedFields: [{}] },
      spec: { containers: [{ name: "a", image: "a", resources: { limits: { cpu: "1" } } }] },
    });
    assert.deepEqual(pod.metadata, { name: "p", namespace: "ns" });
    assert.deepEqual(pod.spec?.containers[0]?.resources, { limits: { cpu: "1" } });
  });

  test("the review: a Pod CREATE, dry run, a fresh uid each time", () => {
    const pod = podAsCreated("Pod", "p", "ns", { metadata: { name: "p" }, spec: { containers: [] } });
    const a = podCreateReview(pod, "ns");
    const b = podCreateReview(pod, "ns");
    assert.notEqual(a.request.uid, b.request.uid);
    assert.equal(a.request.operation, "CREATE");
    assert.equal(a.request.dryRun, true);
    assert.equal(a.request.name, "p");
    assert.deepEqual(a.request.resource, { group: "", version: "v1", resource: "pods" });
  });
});

describe("readAnswer", () => {
  test("a patch, an answer without one, a refusal (with warnings)", () => {
    const ops = [{ op: "add", path: "/metadata/labels", value: { a: "b" } }];
    assert.deepEqual(
      readAnswer(answer({ allowed: true, patchType: "JSONPatch", patch: patch(ops), warnings: ["w"] }), UID, WHERE),
      {
        answer: "patched",
        patch: ops,
        warnings: ["w"],
      },
    );
    assert.deepEqual(readAnswer(answer({ allowed: true }), UID, WHERE), { answer: "unchanged", warnings: [] });
    assert.deepEqual(readAnswer(answer({ allowed: true, patchType: "JSONPatch", patch: patch([]) }), UID, WHERE), {
      answer: "unchanged",
      warnings: [],
    });
    assert.deepEqual(readAnswer(answer({ allowed: false, status: { message: "no" } }), UID, WHERE), {
      answer: "refused",
      message: "no",
      warnings: [],
    });
    assert.deepEqual(readAnswer(answer({ allowed: false }), UID, WHERE), {
      answer: "refused",
      message: "(no message)",
      warnings: [],
    });
  });

  const bad: [string, string, RegExp][] = [
    ["empty", "", /the answer is not JSON \(it is empty\)/],
    ["not JSON", "<html>", /the answer is not JSON \(it starts "<html>"\)/],
    ["a long non-JSON text is quoted bounded", "x".repeat(10_000), /it starts "x{40}"\)$/],
    ["not an AdmissionReview", JSON.stringify({ kind: "Status" }), /not an AdmissionReview/],
    ["no response", JSON.stringify({ kind: "AdmissionReview" }), /has no response/],
    ["another uid", answer({ uid: "other", allowed: true }), /uid "other" is not the request's/],
    ["allowed missing", answer({}), /response\.allowed is not true or false/],
    [
      "patchType other",
      answer({ allowed: true, patch: patch([]), patchType: "Merge" }),
      /patchType is "Merge", not JSONPatch/,
    ],
    ["patch not base64", answer({ allowed: true, patchType: "JSONPatch", patch: "!!" }), /not base64/],
    [
      "patch not JSON",
      answer({ allowed: true, patchType: "JSONPatch", patch: Buffer.from("{").toString("base64") }),
      /not base64 of JSON/,
    ],
    ["patch not a list", answer({ allowed: true, patchType: "JSONPatch", patch: patch({}) }), /not a JSON array/],
    [
      "operation not an object",
      answer({ allowed: true, patchType: "JSONPatch", patch: patch([1]) }),
      /\[0\] is not an operation/,
    ],
    [
      "unknown op",
      answer({ allowed: true, patchType: "JSONPatch", patch: patch([{ op: "x", path: "/a" }]) }),
      /\.op: "x"/,
    ],
    [
      "path not a pointer",
      answer({ allowed: true, patchType: "JSONPatch", patch: patch([{ op: "remove", path: "a" }]) }),
      /\.path: must be a JSON Pointer/,
    ],
    [
      "add without value",
      answer({ allowed: true, patchType: "JSONPatch", patch: patch([{ op: "add", path: "/a" }]) }),
      /add without a value/,
    ],
    [
      "move without from",
      answer({ allowed: true, patchType: "JSONPatch", patch: patch([{ op: "move", path: "/a" }]) }),
      /\.from: must be/,
    ],
    ["nested past a Pod's depth", "[".repeat(1_000_000), /the answer: .*(depth|deep|nest)/i],
    [
      "a patch value nested past a Pod's depth",
      answer({
        allowed: true,
        patchType: "JSONPatch",
        patch: Buffer.from(`[{"op":"add","path":"/a","value":${"[".repeat(5000)}${"]".repeat(5000)}}]`).toString(
          "base64",
        ),
      }),
      /response\.patch: .*(depth|deep|nest)/i,
    ],
    [
      "too many operations",
      answer({
        allowed: true,
        patchType: "JSONPatch",
        patch: patch(Array.from({ length: 10_001 }, () => ({ op: "remove", path: "/a" }))),
      }),
      /10001 operations, more than the 10000/,
    ],
  ];
  for (const [what, text, message] of bad) {
    test(`refused: ${what}`, () => {
      assert.throws(
        () => readAnswer(text, UID, WHERE),
        (e: unknown) =>
          e instanceof CompareError &&
          e.code === "ERR_COMPARE" &&
          e.message.startsWith(`${WHERE}: `) &&
          message.test(e.message),
      );
    });
  }
});
