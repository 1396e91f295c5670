// check with an injector that follows Istio's ConfigMaps (serve --istio-config NS[/REV]): each
// setting it cannot honour reported by path with what to do instead, as the injector would
// import it; the imported config is the one the injector's Pods are judged with.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { check, formatCheckTable } from "../../../src/check/check.js";
import { istioConfigArg } from "../../../src/check/istio-config.js";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import type { DeploymentObject } from "../../../src/kube/api.js";
import { KubeError } from "../../../src/kube/api.js";
import { FakeInspect, ours, pod } from "./fake-inspect.js";

const config = DEFAULT_CONFIG;
const OWN = "sidecar-injector-system";

function deployment(args: string[]): DeploymentObject {
  return { namespace: OWN, name: "sidecar-injector", containers: [{ name: "sidecar-injector", args }] };
}

const LIFECYCLE = JSON.stringify({
  global: { proxy: { lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } } } },
});

function cluster(args = ["serve", "--istio-config", "istio-system"]): FakeInspect {
  const k = new FakeInspect();
  k.configs = [ours()];
  k.deployments = [deployment(args)];
  k.namespaces = [{ name: "demo", labels: { "istio-injection": "enabled" } }];
  k.objects = [pod("demo", "web", { app: "web" })];
  k.configMaps.set("istio-system/istio-sidecar-injector", { values: LIFECYCLE, config: "policy: enabled\n" });
  k.configMaps.set("istio-system/istio", { mesh: "proxyListenPort: 15002\n" });
  // The chart's own ConfigMap, which an injector with --istio-config does not serve.
  k.configMaps.set(`${OWN}/sidecar-injector`, { "config.yaml": "policy: disabled\n" });
  return k;
}

describe("check: an injector with --istio-config", () => {
  test("each unsupported setting by path, with what to do instead: errors without --allow-unsupported", async () => {
    const k = cluster();
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.equal(r.injectors?.length, 1);
    const [i] = r.injectors ?? [];
    assert.equal(i?.istioConfig, "istio-system");
    assert.deepEqual(
      i?.findings.map((f) => f.severity),
      ["error", "error"],
    );
    assert.match(
      i?.findings[0]?.message ?? "",
      /^istio-sidecar-injector\.values\.global\.proxy\.lifecycle: cannot be honoured: the injector refuses this config .*; instead: our config has no counterpart/,
    );
    assert.match(
      i?.findings[1]?.message ?? "",
      /^istio\.mesh\.proxyListenPort: .*15001.*; instead: leave it at its default/,
    );
    assert.equal(r.errors, 2);
    assert.ok(k.calls.includes("readConfigMap istio-system/istio-sidecar-injector"), k.calls.join(", "));
    const text = formatCheckTable(r);
    assert.match(
      text,
      /^injector deployment sidecar-injector-system\/sidecar-injector: serve --istio-config istio-system$/m,
    );
    assert.match(text, /^ {2}error: istio-sidecar-injector\.values\.global\.proxy\.lifecycle: /m);
  });

  test("with --allow-unsupported: warnings (it serves the rest); the imported config is the injector's", async () => {
    const r = await check(cluster(["serve", "--istio-config=istio-system", "--allow-unsupported"]), {
      config,
      targets: [],
      namespace: "demo",
    });
    assert.deepEqual(
      r.injectors?.[0]?.findings.map((f) => f.severity),
      ["warning", "warning"],
    );
    assert.equal(r.errors, 0);
    // Istio's policy (enabled) decides, not the chart ConfigMap's (disabled), which the injector does not read.
    const web = r.objects.find((o) => o.name === "web");
    assert.ok(
      web?.webhooks.some((w) => w.injects),
      JSON.stringify(web?.webhooks),
    );
  });

  test("a ConfigMap that is not there: an error naming it; one the caller may not read: info", async () => {
    const k = cluster(["serve", "--istio-config", "istio-system/canary"]);
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.deepEqual(
      r.injectors?.[0]?.findings.map((f) => f.severity),
      ["error"],
    );
    assert.match(
      r.injectors?.[0]?.findings[0]?.message ?? "",
      /has no ConfigMap istio-sidecar-injector-canary or istio-canary: the injector does not start/,
    );
    k.configMaps.set("istio-system/istio-sidecar-injector-canary", new KubeError("read ConfigMap: forbidden", 403));
    k.configMaps.set("istio-system/istio-canary", {});
    const refused = await check(k, { config, targets: [], namespace: "demo" });
    assert.deepEqual(
      refused.injectors?.[0]?.findings.map((f) => f.severity),
      ["info"],
    );
    assert.match(
      refused.injectors?.[0]?.findings[0]?.message ?? "",
      /cannot be read here \(read ConfigMap: forbidden\)/,
    );
  });

  test("an argument that is not NS[/REV]: an error; a Deployment without it: nothing", async () => {
    const bad = await check(cluster(["serve", "--istio-config", "Not/A/Source"]), {
      config,
      targets: [],
      namespace: "demo",
    });
    assert.match(
      bad.injectors?.[0]?.findings[0]?.message ?? "",
      /--istio-config must be NAMESPACE or NAMESPACE\/REVISION/,
    );
    const plain = await check(cluster(["serve", "--config", "/etc/sidecar-injector/config.yaml"]), {
      config,
      targets: [],
      namespace: "demo",
    });
    assert.equal(plain.injectors, undefined);
    assert.equal(istioConfigArg(deployment(["node", "dist/cli.js", "serve"])), undefined);
  });

  test("listing Deployments refused: said once, not an error", async () => {
    const k = cluster();
    k.deployments = new KubeError("list Deployments: forbidden", 403);
    const r = await check(k, { config, targets: [], namespace: "demo" });
    assert.equal(r.injectors, undefined);
    assert.deepEqual(
      r.findings?.map((f) => f.severity),
      ["info"],
    );
    assert.equal(r.errors, 0);
  });
});
