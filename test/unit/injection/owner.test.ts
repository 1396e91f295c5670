import assert from "node:assert/strict";
import { test } from "node:test";
import { workloadOf } from "../../../src/injection/owner.js";

const owned = (kind: string, name: string, labels: Record<string, string> = {}, apiVersion = "apps/v1") => ({
  metadata: { generateName: `${name}-`, labels, ownerReferences: [{ apiVersion, kind, name, controller: true }] },
  spec: { containers: [] },
});

test("a ReplicaSet named after its pod-template-hash is a Deployment", () => {
  assert.deepEqual(workloadOf(owned("ReplicaSet", "web-5d8f7c", { "pod-template-hash": "5d8f7c" }), "ns"), {
    name: "web", namespace: "ns", kind: "Deployment", apiVersion: "apps/v1",
  });
  assert.equal(workloadOf(owned("ReplicaSet", "plain-rs"), "ns").kind, "ReplicaSet");
});

test("a Job with a timestamp suffix is a CronJob; a DeploymentConfig's RC is the DeploymentConfig", () => {
  assert.deepEqual(workloadOf(owned("Job", "nightly-28930120", {}, "batch/v1"), "ns"), {
    name: "nightly", namespace: "ns", kind: "CronJob", apiVersion: "batch/v1",
  });
  const rc = workloadOf(owned("ReplicationController", "app-3", { deploymentconfig: "app" }, "v1"), "ns");
  assert.equal(rc.kind, "DeploymentConfig");
  assert.equal(rc.name, "app");
});

test("a named Pod without a controller is itself", () => {
  assert.deepEqual(workloadOf({ metadata: { name: "solo", namespace: "x" }, spec: { containers: [] } }, "ns"), {
    name: "solo", namespace: "x", kind: "Pod", apiVersion: "v1",
  });
});
