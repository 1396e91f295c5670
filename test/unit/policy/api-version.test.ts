// `policy render --api-version auto` and `--native-sidecars auto`: the cluster decides. The
// choice from discovery (v1, else v1beta1, else an error naming what is served), then the built
// CLI against a plain HTTP server standing in for the API server (discovery, the nodes): the
// List it prints is the one rendered for the versions chosen, what was read and decided is said
// on standard error, and a cluster without the policies or a refused read is exit 2, naming it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { parse } from "yaml";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { chooseApiVersion, POLICY_RESOURCES, type ServedVersion } from "../../../src/policy/api-version.js";
import { PolicyRenderError } from "../../../src/policy/errors.js";
import { policyList, renderPolicy, type PolicyApiVersion } from "../../../src/policy/render.js";
import { runCli, type Ran } from "../../support/run.js";
import { sendJson, startStandInApi, type StandInApi } from "../../support/stand-in-api.js";
import { OPTIONS } from "./support.js";

const GROUP = "admissionregistration.k8s.io";
const WEBHOOKS = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"];
const WITH_POLICIES = [...WEBHOOKS, "validatingadmissionpolicies", ...POLICY_RESOURCES];
const served = (version: string, resources: readonly string[]): ServedVersion => ({ version, resources });

describe("the apiVersion the cluster decides", () => {
  test("v1 when v1 holds the policies (1.36), whatever else is served and in whichever order", () => {
    for (const list of [
      [served("v1", WITH_POLICIES), served("v1beta1", WITH_POLICIES)],
      [served("v1beta1", WITH_POLICIES), served("v1", WITH_POLICIES)],
      [served("v1", WITH_POLICIES)],
    ]) {
      const choice = chooseApiVersion(list);
      assert.equal(choice.apiVersion, "v1");
      assert.match(choice.reason, /: admissionregistration\.k8s\.io\/v1$/);
    }
  });

  test("v1beta1 when only v1beta1 holds them (1.34-1.35 with the feature gate), v1alpha1 beside it or not", () => {
    const choice = chooseApiVersion([
      served("v1", WEBHOOKS),
      served("v1beta1", WITH_POLICIES),
      served("v1alpha1", WITH_POLICIES),
    ]);
    assert.equal(choice.apiVersion, "v1beta1");
    assert.equal(
      choice.reason,
      "the cluster serves MutatingAdmissionPolicy at admissionregistration.k8s.io/v1beta1, admissionregistration.k8s.io/v1alpha1: admissionregistration.k8s.io/v1beta1",
    );
  });

  test("a version with the policies but not their bindings is not chosen", () => {
    assert.equal(
      chooseApiVersion([served("v1", ["mutatingadmissionpolicies"]), served("v1beta1", WITH_POLICIES)]).apiVersion,
      "v1beta1",
    );
  });

  test("none: an error naming what the cluster serves of the group, and the flags 1.34-1.35 need", () => {
    const cases: [ServedVersion[], RegExp][] = [
      [[], /it serves no version of admissionregistration\.k8s\.io\./],
      [
        // 1.34 without the feature gate: v1beta1 served (runtime-config) but without the policies.
        [served("v1", WEBHOOKS), served("v1beta1", ["validatingadmissionpolicies"])],
        /it serves admissionregistration\.k8s\.io v1 \(without MutatingAdmissionPolicy\), v1beta1 \(without MutatingAdmissionPolicy\)\./,
      ],
      // 1.32-1.33 alpha: named, never chosen.
      [
        [served("v1", WEBHOOKS), served("v1alpha1", WITH_POLICIES)],
        /v1 \(without MutatingAdmissionPolicy\), v1alpha1 \(with MutatingAdmissionPolicy\)\./,
      ],
      // A version name from the cluster is quoted when it does not read as a name.
      [[served('v1"; x', WITH_POLICIES)], /it serves admissionregistration\.k8s\.io "v1\\"; x" \(with/],
    ];
    for (const [list, message] of cases) {
      assert.throws(
        () => chooseApiVersion(list),
        (e: unknown) => {
          assert.ok(e instanceof PolicyRenderError);
          assert.match(e.message, /^the cluster serves no MutatingAdmissionPolicy at v1 or v1beta1: /);
          assert.match(e.message, message);
          assert.match(
            e.message,
            /--feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration\.k8s\.io\/v1beta1=true$/,
          );
          return true;
        },
      );
    }
  });
});

// --- the built CLI against a stand-in API server -------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "policy-auto-"));
let api: StandInApi;
/** The stand-in cluster: the group's versions (preferred first) and resources, the kubelets; a number: that status. */
let cluster: { versions: ServedVersion[] | number; kubelets: string[] | number };
const asked: string[] = [];

function refusal(res: Parameters<typeof sendJson>[0], code: number): true {
  sendJson(res, code, { kind: "Status", apiVersion: "v1", status: "Failure", code, message: `refused with ${code}` });
  return true;
}

before(async () => {
  api = await startStandInApi(dir, (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    asked.push(path);
    const { versions, kubelets } = cluster;
    if (path === "/apis") {
      if (typeof versions === "number") return refusal(res, versions);
      const gv = (v: ServedVersion) => ({ groupVersion: `${GROUP}/${v.version}`, version: v.version });
      const first = versions[0];
      sendJson(res, 200, {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: [
          { name: "apps", versions: [{ groupVersion: "apps/v1", version: "v1" }] },
          ...(first ? [{ name: GROUP, versions: versions.map(gv), preferredVersion: gv(first) }] : []),
        ],
      });
      return true;
    }
    const version =
      typeof versions === "number" ? undefined : versions.find((v) => path === `/apis/${GROUP}/${v.version}`);
    if (version !== undefined) {
      sendJson(res, 200, {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: `${GROUP}/${version.version}`,
        resources: version.resources.flatMap((name) => [
          { name, singularName: "", namespaced: false, kind: "K", verbs: ["get", "list"] },
          { name: `${name}/status`, singularName: "", namespaced: false, kind: "K", verbs: ["get"] },
        ]),
      });
      return true;
    }
    if (path === "/api/v1/nodes") {
      if (typeof kubelets === "number") return refusal(res, kubelets);
      sendJson(res, 200, {
        kind: "NodeList",
        apiVersion: "v1",
        metadata: {},
        items: kubelets.map((v, i) => ({
          metadata: { name: `node-${i}` },
          status: { nodeInfo: { kubeletVersion: v } },
        })),
      });
      return true;
    }
    return false;
  });
});
after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  asked.length = 0;
});

function render(args: readonly string[]): Promise<Ran> {
  return runCli(["policy", "render", ...args], {
    cwd: dir,
    env: { ...process.env, KUBECONFIG: api.kubeconfig, KUBERNETES_SERVICE_HOST: "" },
  });
}

/** The List `policy render` prints for these choices, without a cluster. */
function expected(apiVersion: PolicyApiVersion, nativeSidecarsSupported: boolean): unknown {
  return JSON.parse(
    JSON.stringify(policyList(renderPolicy(DEFAULT_CONFIG, { ...OPTIONS, apiVersion, nativeSidecarsSupported }))),
  );
}

const V134 = [served("v1", WEBHOOKS), served("v1beta1", WITH_POLICIES)];
const V136 = [served("v1", WITH_POLICIES), served("v1beta1", WITH_POLICIES)];

describe("policy render with the cluster deciding", () => {
  test("--api-version auto on a 1.34 cluster with the feature gate: v1beta1, said on stderr, read by discovery", async () => {
    cluster = { versions: V134, kubelets: [] };
    const r = await render(["--api-version", "auto", "--native-sidecars", "false"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parse(r.stdout), expected("v1beta1", false));
    assert.equal(
      r.stderr,
      "policy render: --api-version auto: the cluster serves MutatingAdmissionPolicy at admissionregistration.k8s.io/v1beta1: admissionregistration.k8s.io/v1beta1\n",
    );
    assert.deepEqual(asked, ["/apis", `/apis/${GROUP}/v1`, `/apis/${GROUP}/v1beta1`]);
  });

  test("--api-version auto on a 1.36 cluster: v1", async () => {
    cluster = { versions: V136, kubelets: [] };
    const r = await render(["--api-version", "auto", "--native-sidecars", "false"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parse(r.stdout), expected("v1", false));
  });

  test("--native-sidecars auto: the nodes' kubelets decide, as serve decides nativeSidecars: auto", async () => {
    const cases: [string[], boolean, string][] = [
      [["v1.33.0", "v1.34.4"], true, "true (2 nodes, every kubelet v1.33 or later)"],
      [["v1.34.4", "v1.32.9"], false, "false (2 nodes, not every kubelet v1.33 or later)"],
      [[], false, "false (no nodes)"],
    ];
    for (const [kubelets, native, said] of cases) {
      cluster = { versions: V134, kubelets };
      const r = await render(["--api-version", "v1beta1", "--native-sidecars", "auto"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(parse(r.stdout), expected("v1beta1", native), kubelets.join(" "));
      assert.equal(r.stderr, `policy render: --native-sidecars auto: ${said}\n`);
      assert.deepEqual(asked.splice(0), ["/api/v1/nodes"], "only the nodes are read");
    }
  });

  test("nothing is read when nothing is auto, nor the nodes when the config says what they run", async () => {
    cluster = { versions: V134, kubelets: ["v1.34.4"] };
    const r = await render(["--native-sidecars", "false"]);
    assert.equal(r.code, 0, r.stderr);
    writeConfig('nativeSidecars: "false"\n');
    const fixed = await render(["--config", "config.yaml", "--native-sidecars", "auto"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal(fixed.stderr, "");
    writeFileSync(
      join(dir, "pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: nginx}]}\n",
    );
    // policy check: the apiVersion changes no verdict, so auto reads nothing there.
    const check = await runCli(
      ["policy", "check", "-f", "pod.yaml", "--api-version", "auto", "--native-sidecars", "false"],
      {
        cwd: dir,
        env: { ...process.env, KUBECONFIG: api.kubeconfig, KUBERNETES_SERVICE_HOST: "" },
      },
    );
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stdout, "Pod/web (pod.yaml, document 1): handled by the MutatingAdmissionPolicy\n");
    assert.deepEqual(asked, []);
  });

  test("a cluster without the policies (1.34 without the feature gate): exit 2 naming what it serves, nothing printed", async () => {
    cluster = { versions: [served("v1", WEBHOOKS)], kubelets: [] };
    const r = await render(["--api-version", "auto", "--native-sidecars", "false"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^error: the cluster serves no MutatingAdmissionPolicy at v1 or v1beta1: it serves admissionregistration\.k8s\.io v1 \(without MutatingAdmissionPolicy\)\. .*--feature-gates=MutatingAdmissionPolicy=true/,
    );
  });

  test("refused reads: exit 2 naming the read and the API server's message", async () => {
    cluster = { versions: 403, kubelets: [] };
    const discovery = await render(["--api-version", "auto", "--native-sidecars", "false"]);
    assert.equal(discovery.code, 2);
    assert.match(discovery.stderr, /^error: discover API groups: refused with 403\n$/);
    cluster = { versions: V134, kubelets: 403 };
    const nodes = await render(["--native-sidecars", "auto"]);
    assert.equal(nodes.code, 2);
    assert.match(nodes.stderr, /^error: list Nodes: refused with 403\n$/);
    assert.equal(nodes.stdout, "");
  });

  test("--kubeconfig and --context: only with an auto; a context the kubeconfig lacks is named", async () => {
    cluster = { versions: V134, kubelets: [] };
    const stray = await render(["--native-sidecars", "false", "--context", "here"]);
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /--kubeconfig and --context go with --api-version auto or --native-sidecars auto/);
    const missing = await render([
      "--api-version",
      "auto",
      "--native-sidecars",
      "false",
      "--kubeconfig",
      api.kubeconfig,
      "--context",
      "elsewhere",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no context "elsewhere" in --kubeconfig .* \(contexts: here\)/);
    const chosen = await render(["--api-version", "auto", "--native-sidecars", "false", "--context", "here"]);
    assert.equal(chosen.code, 0, chosen.stderr);
    assert.deepEqual(parse(chosen.stdout), expected("v1beta1", false));
  });
});

function writeConfig(text: string): void {
  writeFileSync(join(dir, "config.yaml"), text);
}
