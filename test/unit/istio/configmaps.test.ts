import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigMapChoiceError, pickIstioConfigMaps, revisionsIn } from "../../../src/istio/configmaps.js";

function cm(name: string, data: Record<string, string>): unknown {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "istio-system" }, data };
}

const INJECTOR = cm("istio-sidecar-injector", { values: "{}", config: "policy: enabled" });
const MESH = cm("istio", { mesh: "trustDomain: a", meshNetworks: "networks: {}" });
const CANARY_INJECTOR = cm("istio-sidecar-injector-canary", { values: '{"revision":"canary"}', config: "" });
const CANARY_MESH = cm("istio-canary", { mesh: "trustDomain: b" });

describe("pickIstioConfigMaps", () => {
  const cases: readonly {
    name: string;
    docs: unknown[];
    revision?: string;
    injector?: string;
    mesh?: string;
    error?: RegExp;
  }[] = [
    {
      name: "helm template output: the two among other objects",
      docs: [
        { kind: "ServiceAccount", metadata: { name: "istiod" } },
        cm("values", { "original-values": "{}" }),
        MESH,
        INJECTOR,
        cm("istio-ca-root-cert", {}),
      ],
      injector: "istio-sidecar-injector",
      mesh: "istio",
    },
    {
      name: "kubectl get -o yaml of both: a List",
      docs: [{ apiVersion: "v1", kind: "List", items: [INJECTOR, MESH] }],
      injector: "istio-sidecar-injector",
      mesh: "istio",
    },
    {
      name: "one revision only is taken without asking",
      docs: [CANARY_INJECTOR, CANARY_MESH],
      injector: "istio-sidecar-injector-canary",
      mesh: "istio-canary",
    },
    {
      name: "several revisions need a choice",
      docs: [INJECTOR, MESH, CANARY_INJECTOR, CANARY_MESH],
      error: /several revisions \(default, canary\).*--revision/,
    },
    {
      name: "the choice picks one",
      docs: [INJECTOR, MESH, CANARY_INJECTOR, CANARY_MESH],
      revision: "canary",
      injector: "istio-sidecar-injector-canary",
      mesh: "istio-canary",
    },
    {
      name: "default is the unsuffixed revision",
      docs: [INJECTOR, MESH, CANARY_INJECTOR],
      revision: "default",
      injector: "istio-sidecar-injector",
      mesh: "istio",
    },
    {
      name: "a revision not in the input",
      docs: [INJECTOR, MESH],
      revision: "blue",
      error: /no ConfigMap of revision "blue" in the input \(it has default\)/,
    },
    { name: "the same ConfigMap twice", docs: [INJECTOR, INJECTOR, MESH], error: /istio-sidecar-injector 2 times/ },
    {
      name: "no ConfigMap at all",
      docs: [{ kind: "Deployment", metadata: { name: "x" } }, null, "text", 3],
      error: /no istio-sidecar-injector\[-REV\] or istio\[-REV\] ConfigMap/,
    },
    { name: "the mesh alone is given (the import names what is missing)", docs: [MESH], mesh: "istio" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      if (c.error) {
        assert.throws(
          () => pickIstioConfigMaps(c.docs, c.revision),
          (e: unknown) => e instanceof ConfigMapChoiceError && c.error?.test(e.message) === true,
        );
        return;
      }
      const m = pickIstioConfigMaps(c.docs, c.revision);
      assert.equal(m.injector?.name, c.injector);
      assert.equal(m.mesh?.name, c.mesh);
    });
  }

  test("the data keys are carried as text", () => {
    const m = pickIstioConfigMaps([INJECTOR, MESH]);
    assert.deepEqual(m, {
      injector: { name: "istio-sidecar-injector", values: "{}", config: "policy: enabled" },
      mesh: { name: "istio", mesh: "trustDomain: a" },
    });
  });

  test("a hostile revision name is quoted, bounded", () => {
    const name = `istio-sidecar-injector-${"r".repeat(10_000)}`;
    assert.throws(
      () => pickIstioConfigMaps([INJECTOR, cm(name, {})]),
      (e: unknown) => e instanceof Error && e.message.length < 300 && /characters/.test(e.message),
    );
  });

  test("revisionsIn lists each revision once", () => {
    assert.deepEqual(revisionsIn([INJECTOR, MESH, CANARY_INJECTOR, CANARY_MESH]), ["", "canary"]);
  });
});
