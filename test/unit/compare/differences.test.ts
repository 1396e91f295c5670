// differences(): paths a reader finds in the Pod, lists by name, what changes nothing, bounds;
// storedForm(): what the API server does not keep.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { differences, storedForm } from "../../../src/compare/differences.js";

describe("differences", () => {
  test("equal values: none", () => {
    const pod = { metadata: { labels: { a: "1" } }, spec: { containers: [{ name: "a", image: "x" }] } };
    assert.deepEqual(differences(pod, structuredClone(pod)), { items: [], total: 0, essential: 0 });
  });

  test("maps key by key; a key on one side only has no value on the other", () => {
    const d = differences(
      { metadata: { labels: { a: "1", "app.kubernetes.io/name": "x" } } },
      { metadata: { labels: { a: "2", b: "3" } } },
    );
    assert.deepEqual(d.items, [
      { path: ".metadata.labels.a", ours: "1", istiod: "2" },
      { path: '.metadata.labels["app.kubernetes.io/name"]', ours: "x" },
      { path: ".metadata.labels.b", istiod: "3" },
    ]);
    assert.equal(d.essential, 3);
  });

  test("named lists by name: one extra env var is one difference; their order is one more", () => {
    const env = (names: string[]): { name: string; value: string }[] => names.map((name) => ({ name, value: name }));
    const a = { spec: { containers: [{ name: "istio-proxy", env: env(["A", "B", "C"]) }] } };
    const b = { spec: { containers: [{ name: "istio-proxy", env: env(["A", "X", "B", "C"]) }] } };
    assert.deepEqual(differences(a, b).items, [
      { path: ".spec.containers[name=istio-proxy].env[name=X]", istiod: { name: "X", value: "X" } },
    ]);
    const swapped = { spec: { containers: [{ name: "b" }, { name: "a" }] } };
    assert.deepEqual(differences({ spec: { containers: [{ name: "a" }, { name: "b" }] } }, swapped).items, [
      { path: ".spec.containers (order)", ours: ["a", "b"], istiod: ["b", "a"] },
    ]);
  });

  test("other lists index by index", () => {
    assert.deepEqual(differences({ args: ["a", "b"] }, { args: ["a", "c", "d"] }).items, [
      { path: ".args[1]", ours: "b", istiod: "c" },
      { path: ".args[2]", istiod: "d" },
    ]);
  });

  test("JSON texts compared inside; the same JSON written differently changes nothing", () => {
    const status = (init: string[]): string => JSON.stringify({ initContainers: init, containers: null });
    assert.deepEqual(
      differences(
        { a: { "sidecar.istio.io/status": status(["istio-init"]) } },
        { a: { "sidecar.istio.io/status": status(["istio-init", "istio-proxy"]) } },
      ).items,
      [{ path: '.a["sidecar.istio.io/status"] (JSON).initContainers[1]', istiod: "istio-proxy" }],
    );
    const d = differences({ v: '[\n  {"a":1},\n  {"b":2}\n]' }, { v: '[\n  {"a":1}\n  ,{"b":2}\n]' });
    assert.equal(d.total, 1);
    assert.equal(d.essential, 0);
    assert.equal(d.items[0]?.equivalent, "the same JSON value once read, written differently");
  });

  test("volumes in another order change nothing; containers in another order do", () => {
    const vols = (n: string[]): { spec: { volumes: { name: string }[] } } => ({
      spec: { volumes: n.map((name) => ({ name })) },
    });
    const d = differences(vols(["data", "istio-envoy"]), vols(["istio-envoy", "data"]));
    assert.deepEqual([d.total, d.essential], [1, 0]);
    assert.match(d.items[0]?.equivalent ?? "", /volumes are found by name/);
  });

  test("bounded: at most max kept, all counted", () => {
    const many = (v: string): Record<string, string> =>
      Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, v]));
    const d = differences(many("a"), many("b"), 10);
    assert.equal(d.items.length, 10);
    assert.equal(d.total, 500);
    assert.equal(d.essential, 500);
  });

  test("a type change is a difference", () => {
    assert.deepEqual(differences({ port: 80 }, { port: "80" }).items, [{ path: ".port", ours: 80, istiod: "80" }]);
  });
});

describe("storedForm", () => {
  test("drops nulls, a container's empty resources, an env var's empty value; keeps emptyDir: {}", () => {
    assert.deepEqual(
      storedForm({
        metadata: { creationTimestamp: null },
        spec: {
          initContainers: [{ name: "i", resources: {} }],
          containers: [
            {
              name: "c",
              resources: {},
              env: [
                { name: "E", value: "" },
                { name: "F", value: "f" },
              ],
            },
          ],
          volumes: [{ name: "v", emptyDir: {} }],
        },
      }),
      {
        metadata: {},
        spec: {
          initContainers: [{ name: "i" }],
          containers: [{ name: "c", env: [{ name: "E" }, { name: "F", value: "f" }] }],
          volumes: [{ name: "v", emptyDir: {} }],
        },
      },
    );
  });
});
