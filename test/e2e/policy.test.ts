// End-to-end: injection by a MutatingAdmissionPolicy, evaluated by a real kube-apiserver
// (v1.34 with the MutatingAdmissionPolicy feature gate and admissionregistration.k8s.io/v1beta1
// served). The API server is the only CEL evaluator that counts: what it stores is the proof.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Pod } from "../../src/kube/types.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { createAll, createPod, deleteAll, waitUntil } from "./policy-api.js";

const { cluster, skip } = await clusterForSuite("MutatingAdmissionPolicy end-to-end tests", {
  mutatingAdmissionPolicy: true,
  serviceAccountAdmission: true,
});

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const pod = (name: string): Pod => ({
  metadata: { name, labels: { app: name } },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});

describe("MutatingAdmissionPolicy against a real kube-apiserver", { skip }, () => {
  before(async () => {
    await kube().createNamespace("policy-loop");
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the API server serves MutatingAdmissionPolicy v1beta1 and applies a JSONPatch built from dyn() maps", async () => {
    const v = "admissionregistration.k8s.io/v1beta1";
    const objects = [
      {
        apiVersion: v,
        kind: "MutatingAdmissionPolicy",
        metadata: { name: "loop" },
        spec: {
          matchConstraints: {
            resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
          },
          failurePolicy: "Fail",
          reinvocationPolicy: "Never",
          mutations: [
            {
              patchType: "JSONPatch",
              jsonPatch: {
                expression:
                  '[JSONPatch{op: "add", path: "/spec/containers/-", value: {"name": dyn("side"), "image": dyn("example.com/side:1"), ' +
                  '"env": dyn([{"name": dyn("FIRST"), "value": dyn(object.spec.containers[0].name)}])}}]',
              },
            },
          ],
        },
      },
      {
        apiVersion: v,
        kind: "MutatingAdmissionPolicyBinding",
        metadata: { name: "loop" },
        spec: { policyName: "loop" },
      },
    ];
    await createAll(kube(), objects);
    await waitUntil(
      kube(),
      "policy-loop",
      pod("probe"),
      (s, p) => s === 201 && p.spec?.containers.length === 2,
      "policy in effect",
    );
    const created = await createPod(kube(), "policy-loop", pod("web"));
    assert.equal(created.status, 201, created.text);
    const stored = await kube().request<Pod>("GET", "/api/v1/namespaces/policy-loop/pods/web");
    assert.deepEqual(
      stored.json.spec?.containers.map((c) => [c.name, c.env?.map((e) => `${e.name}=${e.value ?? ""}`)]),
      [
        ["app", undefined],
        ["side", ["FIRST=app"]],
      ],
    );
    await deleteAll(kube(), objects);
    await waitUntil(
      kube(),
      "policy-loop",
      pod("probe"),
      (s, p) => s === 201 && p.spec?.containers.length === 1,
      "policy gone",
    );
  });
});
