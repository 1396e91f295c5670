// End-to-end: injection by a MutatingAdmissionPolicy, evaluated by a real kube-apiserver
// (v1.34 with the MutatingAdmissionPolicy feature gate and admissionregistration.k8s.io/v1beta1
// served). The API server is the only CEL evaluator that counts: what it stores is the proof.
// The cluster decides the apiVersion: `policy render --api-version auto` reads its discovery
// and picks v1beta1, and that List installs and injects; the chart, installed by helm (which
// reads the same discovery), writes a List rendered at v1 at v1beta1, and that installs too.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import type { Pod } from "../../src/kube/types.js";
import { runCli } from "../support/run.js";
import { CHART, OWN_NAMESPACE } from "./chart.js";
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

  test("policy render --api-version auto --native-sidecars auto: v1beta1 and no native sidecars, read from the cluster; the List installs and injects", async () => {
    const ns = "policy-auto";
    await kube().createNamespace(ns, { "istio-injection": "enabled" });
    const r = await runCli([
      "policy",
      "render",
      "--api-version",
      "auto",
      "--native-sidecars",
      "auto",
      "--kubeconfig",
      kube().kubeconfigPath,
      "--name",
      "auto",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      "policy render: --api-version auto: the cluster serves MutatingAdmissionPolicy at admissionregistration.k8s.io/v1beta1: admissionregistration.k8s.io/v1beta1\n" +
        "policy render: --native-sidecars auto: false (no nodes)\n",
    );
    const list = parse(r.stdout) as { items: Obj[] };
    assert.deepEqual([...new Set(list.items.map((i) => i.apiVersion))], ["admissionregistration.k8s.io/v1beta1"]);
    await createAll(kube(), list.items);
    await waitUntil(kube(), ns, pod("probe"), (s, p) => s === 201 && injected(p), "the policy injects");
    const created = await createPod(kube(), ns, pod("web"));
    assert.equal(created.status, 201, created.text);
    assert.ok(injected(created.pod), "stored with the status annotation the policy writes");
    assert.deepEqual(
      created.pod.spec?.containers.map((c) => c.name),
      ["app", "istio-proxy"],
    );
    await deleteAll(kube(), list.items);
    await waitUntil(kube(), ns, pod("probe"), (s, p) => s === 201 && !injected(p), "the policy gone");
  });

  test("helm install with a List rendered at v1: the chart installs it at v1beta1, the version the cluster serves", async () => {
    const ns = "policy-chart";
    await kube().createNamespace(ns, { "istio-injection": "enabled" });
    await kube().createNamespace(OWN_NAMESPACE);
    const r = await runCli([
      "policy",
      "render",
      "--api-version",
      "v1",
      "--native-sidecars",
      "false",
      "--name",
      "sidecar-injector",
      "-n",
      OWN_NAMESPACE,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const dir = mkdtempSync(join(tmpdir(), "policy-e2e-"));
    try {
      const file = join(dir, "policy.yaml");
      writeFileSync(file, r.stdout);
      const install = await kube().helm([
        "install",
        "sidecar-injector",
        CHART,
        "-n",
        OWN_NAMESPACE,
        "--set",
        "fullnameOverride=sidecar-injector",
        "--set",
        "policy.enabled=true",
        "--set-file",
        `policy.manifest=${file}`,
      ]);
      assert.equal(install.code, 0, install.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const stored = await kube().request<Obj>(
      "GET",
      "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies/sidecar-injector",
    );
    assert.equal(stored.status, 200, stored.text);
    const manifest = await kube().helm(["get", "manifest", "sidecar-injector", "-n", OWN_NAMESPACE]);
    assert.equal(manifest.code, 0, manifest.stderr);
    const installed = parseAllDocuments(manifest.stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => String(o?.kind).startsWith("MutatingAdmissionPolicy"));
    assert.equal(installed.length, 5, "the policy and one binding per webhook");
    assert.deepEqual([...new Set(installed.map((o) => o.apiVersion))], ["admissionregistration.k8s.io/v1beta1"]);
    // The webhooks leave covered Pods to the policy (no injector runs here): it injects them.
    await waitUntil(kube(), ns, pod("probe"), (s, p) => s === 201 && injected(p), "the chart's policy injects");
  });
});

type Obj = Record<string, unknown>;
const injected = (p: Pod): boolean => p.metadata?.annotations?.["sidecar.istio.io/status"] !== undefined;
