// compareInjected sees the order of the lists the API server keeps in order (env, volume
// mounts, ports, volumes), apart from their items, and only over the keys both sides have.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareInjected } from "../../support/compare-injected.js";

const pod = (env: string[], mounts: string[] = ["/a", "/b"]): unknown[] => [
  {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p" },
    spec: {
      containers: [
        {
          name: "istio-proxy",
          env: env.map((name) => ({ name, value: "v" })),
          volumeMounts: mounts.map((mountPath) => ({ name: "m", mountPath })),
        },
      ],
    },
  },
];

test("a list in another order is a difference of its order alone", () => {
  const diffs = compareInjected(pod(["A", "B"], ["/b", "/a"]), pod(["B", "A"]));
  assert.deepEqual(
    diffs.map((d) => d.path),
    ["Pod/p.template.containers.istio-proxy.envOrder", "Pod/p.template.containers.istio-proxy.volumeMountOrder"],
  );
  assert.deepEqual(diffs[0]?.istio, ["B", "A"]);
  assert.deepEqual(diffs[0]?.ours, ["A", "B"]);
});

test("an item on one side only is its own difference, not one of the order", () => {
  const diffs = compareInjected(pod(["A", "C", "B"]), pod(["A", "B"]));
  assert.deepEqual(
    diffs.map((d) => d.path),
    ["Pod/p.template.containers.istio-proxy.env.C"],
  );
  assert.deepEqual(compareInjected(pod(["A", "B"]), pod(["A", "B"])), []);
});
