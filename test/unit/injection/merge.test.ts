import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { interleave, mergeListStrategic, mergeObject } from "../../../src/injection/merge.js";

test("strategic merge: keyed lists merge, other lists replace, maps recurse, input untouched", () => {
  const base = {
    name: "istio-proxy",
    args: ["proxy", "sidecar"],
    env: [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ],
    resources: { limits: { cpu: "2", memory: "1Gi" } },
  };
  const patch = {
    args: ["-c", "x"],
    env: [
      { name: "B", value: "3" },
      { name: "C", value: "4" },
    ],
    resources: { limits: { cpu: "3" } },
  };
  const frozen = structuredClone(base);
  const out = mergeObject(base, patch);
  assert.deepEqual(out, {
    name: "istio-proxy",
    args: ["-c", "x"],
    env: [
      { name: "A", value: "1" },
      { name: "B", value: "3" },
      { name: "C", value: "4" },
    ],
    resources: { limits: { cpu: "3", memory: "1Gi" } },
  });
  assert.deepEqual(base, frozen);
});

describe("mergeListStrategic: the API server's strategic-merge order (normalizeElementOrder)", () => {
  const names = (list: { name?: string }[]): (string | undefined)[] => list.map((x) => x.name);
  const cases: { title: string; base: string[]; patch: string[]; want: string[] }[] = [
    { title: "new patch items before the base's own", base: ["p"], patch: ["a", "b"], want: ["a", "b", "p"] },
    { title: "no base", base: [], patch: ["a", "b"], want: ["a", "b"] },
    { title: "no patch", base: ["p", "q"], patch: [], want: ["p", "q"] },
    {
      title: "items in both keep the base's order around them",
      base: ["a", "p", "b"],
      patch: ["a", "b"],
      want: ["a", "p", "b"],
    },
    {
      title: "a base item after a shared one stays after it",
      base: ["p", "a", "q"],
      patch: ["a", "c"],
      want: ["p", "a", "c", "q"],
    },
    // Istio applies one template after another: Pod [p], then [a], then [c] gives [c, a, p].
    { title: "a second template's new item first", base: ["a", "p"], patch: ["c"], want: ["c", "a", "p"] },
  ];
  for (const c of cases) {
    test(c.title, () => {
      const got = mergeListStrategic(
        c.base.map((name) => ({ name, from: "base" })),
        c.patch.map((name) => ({ name, from: "patch" })),
        "name",
      );
      assert.deepEqual(names(got), c.want);
    });
  }
  test("shared items are merged, the patch's fields winning", () => {
    const got = mergeListStrategic([{ name: "a", x: 1, y: 1 }], [{ name: "a", y: 2 }], "name");
    assert.deepEqual(got, [{ name: "a", x: 1, y: 2 }]);
  });
  // The lists with no key in common take a shorter way (the patch's items, then the base's):
  // around its edges the result is the one the general way gives.
  test("edges of the shorter way for lists with no key in common", () => {
    const cases: [unknown[], unknown[], unknown[]][] = [
      [
        [{ name: "p" }],
        [
          { name: "a", v: 1 },
          { name: "a", v: 2 },
        ],
        [{ name: "a", v: 2 }, { name: "p" }],
      ],
      [
        [{ name: "p" }, { x: 1 }],
        [{ v: 3 }, { name: "a" }],
        [{ name: "a" }, { name: "p" }, { x: 1 }, { v: 3 }],
      ],
      [
        [{ x: 1 }, { name: "p" }],
        [{ name: "a" }, { name: "b" }],
        [{ name: "a" }, { name: "b" }, { x: 1 }, { name: "p" }],
      ],
      [[{ name: "p" }, { name: "p", y: 1 }], [{ name: "a" }], [{ name: "a" }, { name: "p" }, { name: "p", y: 1 }]],
    ];
    for (const [base, patch, want] of cases) {
      const frozen = structuredClone([base, patch]);
      assert.deepEqual(mergeListStrategic(base, patch, "name"), want);
      assert.deepEqual([base, patch], frozen);
    }
  });
  test("templates merged first, then over the Pod, give the order of one template after another", () => {
    const pod = [{ name: "p" }];
    const t1 = [{ name: "a" }];
    const t2 = [{ name: "c" }];
    const stepwise = mergeListStrategic(mergeListStrategic(pod, t1, "name"), t2, "name");
    const combined = mergeListStrategic(pod, mergeListStrategic(t1, t2, "name"), "name");
    assert.deepEqual(names(combined), names(stepwise));
  });
});

describe("interleave (apimachinery's mergeSortedSlice)", () => {
  const base = ["a", "b", "c", "d"];
  const at = (x: string): number | undefined => (base.includes(x) ? base.indexOf(x) : undefined);

  test("a patch item not in the base goes before the base's remaining items", () => {
    assert.deepEqual(interleave(["a", "b"], ["new", "c"], at), ["new", "a", "b", "c"]);
  });

  test("a base item goes first only when the patch item is in the base too and comes later there", () => {
    assert.deepEqual(interleave(["a", "c"], ["b", "d"], at), ["a", "b", "c", "d"]);
    assert.deepEqual(interleave(["c"], ["b"], at), ["b", "c"]);
  });

  test("each side keeps its order, and either may be empty", () => {
    assert.deepEqual(interleave(["d", "a"], ["c", "b"], at), ["c", "b", "d", "a"]);
    assert.deepEqual(interleave([], ["x", "y"], at), ["x", "y"]);
    assert.deepEqual(interleave(["b", "a"], [], at), ["b", "a"]);
  });
});

test("a Pod's securityContext.sysctls is replaced, not merged by name: the API makes it atomic", () => {
  // The gateway template's sysctls over a Pod's own: Istio's result (at 86c9f01) holds the
  // template's alone (found by a differential run).
  const pod = { runAsUser: 1000, sysctls: [{ name: "net.ipv4.ip_local_port_range", value: "1024 65535" }] };
  const tpl = { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] };
  assert.deepEqual(mergeObject(pod, tpl), {
    runAsUser: 1000,
    sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
  });
});
