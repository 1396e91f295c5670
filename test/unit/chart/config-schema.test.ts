// The chart refuses a bad `config` value through values.schema.json (generated from the
// injector's own config rules): `helm template` and `helm lint` stop, naming the key, where the
// injector would otherwise start and fail every Pod, or refuse to start.
//
// helm comes from HELM, else from scripts/test-bins.sh, as in chart.test.ts; without one the
// tests are skipped with a message, unless SIDECAR_INJECTOR_E2E_REQUIRED=1 makes that a failure.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { parseConfig } from "../../../src/config/load.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, helmGate, run, type ExecResult } from "../../support/helm.js";

const { lookup, skip } = await helmGate("the chart config schema tests");

describe("the chart's schema for config", { skip }, () => {
  let home = "";
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "sidecar-injector-config-schema-"));
    await writeFile(join(home, "kubeconfig"), "");
    env = {
      ...process.env,
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
      KUBECONFIG: join(home, "kubeconfig"),
    };
  });

  after(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  function helm(args: readonly string[]): Promise<ExecResult> {
    assert.ok(lookup.ok);
    return run(lookup.path, args, HELM_TIMEOUT_MS, env);
  }

  const template = (...args: string[]): Promise<ExecResult> =>
    helm(["template", "si", CHART, "--namespace", "mesh", "--kube-version", KUBE_VERSION, ...args]);

  test("helm template refuses a bad config, naming the key", async () => {
    const refused: [string[], RegExp][] = [
      [["--set-string", "config.proxy.resources.requests.cpu=100 m"], /config\/proxy\/resources\/requests\/cpu/],
      [["--set", "config.proxy.resources.limits.memory=-1"], /config\/proxy\/resources\/limits\/memory/],
      [["--set-string", "config.interception.includeInboundPorts=http"], /config\/interception\/includeInboundPorts/],
      [
        ["--set-string", "config.interception.excludeOutboundIPRanges=10.0.0.0/33"],
        /config\/interception\/excludeOutboundIPRanges/,
      ],
      [["--set", "config.interception.mode=redirect"], /config\/interception\/mode/],
      [["--set", "config.proxy.uid=0"], /config\/proxy\/uid/],
      [["--set", "config.proxy.image=Docker.io/Istio/proxyv2"], /config\/proxy\/image/],
      [["--set", "config.ignoredNamespaces[0]=Kube-System"], /config\/ignoredNamespaces\/0/],
      [
        [
          "--set",
          "config.neverInjectSelector[0].matchExpressions[0].key=tier,config.neverInjectSelector[0].matchExpressions[0].operator=In",
        ],
        /config\/neverInjectSelector\/0\/matchExpressions\/0/,
      ],
      [["--set", "config.polcy=enabled"], /polcy/],
      [["--set", "config.proxy.imagee=x"], /imagee/],
    ];
    for (const [args, re] of refused) {
      const r = await template(...args);
      assert.notEqual(r.code, 0, `${args.join(" ")} was accepted`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, `${args.join(" ")}: ${r.stderr}`);
    }
  });

  test("helm lint refuses a values file with a bad config, and passes a good one", async () => {
    const bad = join(home, "bad.yaml");
    await writeFile(
      bad,
      'config:\n  proxy:\n    resources:\n      requests: {cpu: "100 m"}\n  interception:\n    includeInboundPorts: http\n',
    );
    const r = await helm(["lint", CHART, "--kube-version", KUBE_VERSION, "-f", bad]);
    assert.notEqual(r.code, 0, r.stdout);
    const out = `${r.stdout}\n${r.stderr}`;
    assert.match(out, /config\/proxy\/resources\/requests\/cpu/);
    assert.match(out, /config\/interception\/includeInboundPorts/);

    const good = join(home, "good.yaml");
    await writeFile(
      good,
      "config:\n  proxy:\n    uid: 1337\n    resources: {requests: {cpu: 50m}, limits: {cpu: 1}}\n  interception: {mode: TPROXY, includeInboundPorts: '80,443', excludeOutboundIPRanges: '10.0.0.0/8,fd00::/8'}\n",
    );
    const ok = await helm(["lint", "--strict", CHART, "--kube-version", KUBE_VERSION, "-f", good]);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
  });

  test("a config the schema lets through is one the injector accepts", async () => {
    const r = await template(
      "--set",
      "config.proxy.resources.requests.cpu=1,config.proxy.resources.limits.cpu=2,config.nativeSidecars=true",
      "--set-string",
      "config.interception.excludeInboundPorts=15020\\,8080",
    );
    assert.equal(r.code, 0, r.stderr);
    const cm = parseAllDocuments(r.stdout)
      .map((d): unknown => d.toJS())
      .find(
        (o): o is { kind: string; data: Record<string, string> } =>
          typeof o === "object" && o !== null && "kind" in o && o.kind === "ConfigMap",
      );
    const text = cm?.data["config.yaml"];
    assert.ok(text !== undefined, "no ConfigMap with config.yaml");
    const config = parseConfig(text, "config.yaml");
    assert.deepEqual(config.proxy.resources, { requests: { cpu: "1" }, limits: { cpu: "2" } });
    assert.equal(config.interception.excludeInboundPorts, "15020,8080");
    assert.equal(config.nativeSidecars, "true");
  });

  test("what the schema cannot say, the injector still refuses: a request above its limit", async () => {
    const r = await template("--set", "config.proxy.resources.requests.cpu=3,config.proxy.resources.limits.cpu=2");
    assert.equal(r.code, 0, r.stderr);
    const cm = parseAllDocuments(r.stdout)
      .map((d): unknown => d.toJS())
      .find(
        (o): o is { kind: string; data: Record<string, string> } =>
          typeof o === "object" && o !== null && "kind" in o && o.kind === "ConfigMap",
      );
    assert.throws(
      () => parseConfig(cm?.data["config.yaml"] ?? "", "config.yaml"),
      /proxy\.resources\.requests\.cpu="3": must be at most the cpu limit/,
    );
  });
});
