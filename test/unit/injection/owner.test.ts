import assert from "node:assert/strict";
import { test } from "node:test";
import { workloadOf } from "../../../src/injection/owner.js";

const owned = (kind: string, name: string, labels: Record<string, string> = {}, apiVersion = "apps/v1") => ({
  metadata: { generateName: `${name}-`, labels, ownerReferences: [{ apiVersion, kind, name, controller: true }] },
  spec: { containers: [] },
});

test("a ReplicaSet named after its pod-template-hash is a Deployment", () => {
  assert.deepEqual(workloadOf(owned("ReplicaSet", "web-5d8f7c", { "pod-template-hash": "5d8f7c" }), "ns"), {
    name: "web",
    namespace: "ns",
    kind: "Deployment",
    apiVersion: "apps/v1",
  });
  assert.equal(workloadOf(owned("ReplicaSet", "plain-rs"), "ns").kind, "ReplicaSet");
});

test("a Job with a timestamp suffix is a CronJob; a DeploymentConfig's RC is the DeploymentConfig", () => {
  assert.deepEqual(workloadOf(owned("Job", "nightly-28930120", {}, "batch/v1"), "ns"), {
    name: "nightly",
    namespace: "ns",
    kind: "CronJob",
    apiVersion: "batch/v1",
  });
  const rc = workloadOf(owned("ReplicationController", "app-3", { deploymentconfig: "app" }, "v1"), "ns");
  assert.equal(rc.kind, "DeploymentConfig");
  assert.equal(rc.name, "app");
});

test("a named Pod without a controller is itself", () => {
  assert.deepEqual(workloadOf({ metadata: { name: "solo", namespace: "x" }, spec: { containers: [] } }, "ns"), {
    name: "solo",
    namespace: "x",
    kind: "Pod",
    apiVersion: "v1",
  });
});

test("an Argo Rollout's ReplicaSet is the Rollout, named and versioned as Istio names it", () => {
  assert.deepEqual(
    workloadOf(owned("ReplicaSet", "shop-6c9f8d7b5", { "rollouts-pod-template-hash": "6c9f8d7b5" }), "ns"),
    {
      name: "shop",
      namespace: "ns",
      kind: "Rollout",
      apiVersion: "v1alpha1",
    },
  );
  // pod-template-hash wins when both are set.
  assert.equal(
    workloadOf(
      owned("ReplicaSet", "shop-abc", { "pod-template-hash": "abc", "rollouts-pod-template-hash": "abc" }),
      "ns",
    ).kind,
    "Deployment",
  );
});

test("the hash is trimmed only with its dash; a name that merely ends with it is kept whole", () => {
  assert.deepEqual(workloadOf(owned("ReplicaSet", "webabc12", { "pod-template-hash": "abc12" }), "ns"), {
    name: "webabc12",
    namespace: "ns",
    kind: "Deployment",
    apiVersion: "apps/v1",
  });
});

test("a CronJob's Job has 8 to 10 digits: 11 is a plain Job, as in Istio", () => {
  assert.equal(workloadOf(owned("Job", "nightly-2893012", {}, "batch/v1"), "ns").kind, "Job");
  assert.equal(workloadOf(owned("Job", "nightly-2893012012", {}, "batch/v1"), "ns").name, "nightly");
  assert.deepEqual(workloadOf(owned("Job", "nightly-28930120123", {}, "batch/v1"), "ns"), {
    name: "nightly-28930120123",
    namespace: "ns",
    kind: "Job",
    apiVersion: "batch/v1",
  });
});

test("the CronJob name before the timestamp is any characters but a newline, as Go's `.` reads them", () => {
  for (const name of ["a\r", "a\u2028b", "a\u0085"])
    assert.deepEqual(workloadOf(owned("Job", `${name}-12345678`, {}, "batch/v1"), "ns"), {
      name,
      namespace: "ns",
      kind: "CronJob",
      apiVersion: "batch/v1",
    });
  assert.equal(workloadOf(owned("Job", "a\nb-12345678", {}, "batch/v1"), "ns").kind, "Job");
});
