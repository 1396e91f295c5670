import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { interleave, mergeListStrategic, mergeObject, mergeOverride } from "../../../src/injection/merge.js";

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

describe("mergeListStrategic: the API server's strategic-merge order (mergeSlice, normalizeElementOrder)", () => {
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
  // The lists with no key in common and none repeated take a shorter way (the patch's items, then
  // the base's): around its edges the result is Kubernetes' (each expectation is what
  // k8s.io/apimachinery's strategicpatch gives; test/strategic-merge has the general table).
  test("edges of the shorter way for lists with no key in common", () => {
    const cases: [unknown[], unknown[], unknown[]][] = [
      // A key the patch repeats: merged into its first item.
      [
        [{ name: "p" }],
        [
          { name: "a", v: 1 },
          { name: "a", v: 2 },
        ],
        [{ name: "a", v: 2 }, { name: "p" }],
      ],
      // A key the base repeats: its items end up together.
      [
        [{ name: "p" }, { name: "q" }, { name: "p", y: 1 }],
        [{ name: "a" }],
        [{ name: "a" }, { name: "p" }, { name: "p", y: 1 }, { name: "q" }],
      ],
      // An item without its key has the key's zero value, "" (a key like any other).
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
  test("the patch's order wins over the base's for the items both have", () => {
    const got = mergeListStrategic(
      [{ name: "p" }, { name: "q" }],
      [{ name: "q" }, { name: "a" }, { name: "p" }],
      "name",
    );
    assert.deepEqual(names(got), ["q", "a", "p"]);
  });
  // With no key in common, merging the templates first gives the order of one after another; with
  // keys in common it may not, so the Pod's lists are merged with each template in turn (overlay.ts).
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

describe("mergeOverride: the templates over a Pod's own container, then it over them again", () => {
  const names = (list: unknown): unknown[] => (Array.isArray(list) ? list.map((x: { name?: unknown }) => x.name) : []);
  const env = (...list: string[]): { name: string; value: string }[] => list.map((name) => ({ name, value: name }));

  test("the Pod's env among the template's, before the ones it came before in its own list", () => {
    const tpl = { name: "istio-proxy", image: "proxyv2", env: env("PILOT_CERT_PROVIDER", "CA_ADDR", "POD_NAME") };
    const own = { name: "istio-proxy", env: [...env("ISTIO_META_X"), { name: "CA_ADDR", value: "ca:15012" }] };
    const got = mergeOverride(tpl, own);
    assert.deepEqual(got.env, [
      { name: "PILOT_CERT_PROVIDER", value: "PILOT_CERT_PROVIDER" },
      { name: "ISTIO_META_X", value: "ISTIO_META_X" },
      { name: "CA_ADDR", value: "ca:15012" },
      { name: "POD_NAME", value: "POD_NAME" },
    ]);
    assert.deepEqual(Object.keys(got), ["name", "image", "env"], "the template's field order");
  });

  test("several templates: merged over the Pod's in turn, not merged first", () => {
    // grpc-simple writes an entry for the Pod's istio-proxy, then the sidecar template its own.
    const grpc = { name: "istio-proxy", env: env("GRPC_XDS_BOOTSTRAP") };
    const sidecar = { name: "istio-proxy", env: env("PILOT_CERT_PROVIDER", "CA_ADDR") };
    const own = { name: "istio-proxy", env: env("ISTIO_META_X", "CA_ADDR") };
    const combined = mergeObject(grpc, sidecar);
    assert.deepEqual(names(mergeOverride(combined, own, [grpc, sidecar]).env), [
      "PILOT_CERT_PROVIDER",
      "GRPC_XDS_BOOTSTRAP",
      "ISTIO_META_X",
      "CA_ADDR",
    ]);
    assert.deepEqual(names(mergeOverride(combined, own).env), [
      "PILOT_CERT_PROVIDER",
      "ISTIO_META_X",
      "CA_ADDR",
      "GRPC_XDS_BOOTSTRAP",
    ]);
  });

  test("a list only the Pod has: merged over itself, a repeated key's items together, each kept", () => {
    const ports = [
      { containerPort: 53, protocol: "TCP", name: "dns-tcp" },
      { containerPort: 8080, name: "http" },
      { containerPort: 53, protocol: "UDP", name: "dns" },
    ];
    const got: Record<string, unknown> = mergeOverride(
      { name: "dns", env: env("GRPC_XDS_BOOTSTRAP") },
      { name: "dns", ports },
    );
    assert.deepEqual(got.ports, [ports[0], ports[2], ports[1]]);
  });
});
