// How two annotations Istio admits whatever their value are read, as Istio reads them:
// sidecar.istio.io/rewriteAppHTTPProbers through strconv.ParseBool, falling back to the
// config's setting when it does not parse (ShouldRewriteAppHTTPProbers); and
// sidecar.istio.io/capNetBindService compared with "true" as text by the template.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Container, Pod } from "../../../src/kube/types.js";

const pod = (annotations: Record<string, string>): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "demo", annotations },
  spec: {
    containers: [
      { name: "app", image: "example.com/app:1", readinessProbe: { httpGet: { path: "/ready", port: 8080 } } },
    ],
  },
});
const app = (p: Pod): Container | undefined => p.spec?.containers?.find((c) => c.name === "app");
const proxy = (p: Pod): Container | undefined =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

function rewritten(annotations: Record<string, string>, rewriteAppProbes: boolean): boolean {
  const r = inject(pod(annotations), { namespace: "demo" }, buildConfig({ rewriteAppProbes }));
  const path = app(r.pod)?.readinessProbe?.httpGet?.path;
  assert.ok(path === "/ready" || path === "/app-health/app/readyz", `unexpected probe path ${String(path)}`);
  return path === "/app-health/app/readyz";
}

test("rewriteAppHTTPProbers: what ParseBool reads decides, anything else leaves the config's setting", () => {
  const key = "sidecar.istio.io/rewriteAppHTTPProbers";
  for (const config of [true, false]) {
    assert.equal(rewritten({}, config), config, "no annotation: the config");
    for (const v of ["true", "True", "TRUE", "t", "T", "1"])
      assert.equal(rewritten({ [key]: v }, config), true, `${v}, config ${config}`);
    for (const v of ["false", "False", "FALSE", "f", "F", "0"])
      assert.equal(rewritten({ [key]: v }, config), false, `${v}, config ${config}`);
    for (const v of ["yes", "no", "", " true", "off", "tRUE"])
      assert.equal(rewritten({ [key]: v }, config), config, `${JSON.stringify(v)} is unreadable: config ${config}`);
  }
});

test("an unreadable rewriteAppHTTPProbers is said to be ignored", () => {
  const r = inject(pod({ "sidecar.istio.io/rewriteAppHTTPProbers": "yes" }), { namespace: "demo" }, buildConfig({}));
  assert.ok(
    r.warnings.some((w) => w.includes("sidecar.istio.io/rewriteAppHTTPProbers") && w.includes("ignored")),
    r.warnings.join("\n"),
  );
});

test('capNetBindService: only the text "true" adds NET_BIND_SERVICE', () => {
  const caps = (annotations: Record<string, string>): readonly string[] => {
    const sc = JSON.parse(
      JSON.stringify(
        proxy(inject(pod(annotations), { namespace: "demo" }, buildConfig({})).pod)?.securityContext ?? {},
      ),
    ) as {
      capabilities?: { add?: string[] };
    };
    return sc.capabilities?.add ?? [];
  };
  const key = "sidecar.istio.io/capNetBindService";
  assert.ok(caps({ [key]: "true" }).includes("NET_BIND_SERVICE"));
  for (const v of ["True", "TRUE", "t", "1", "yes", "false", "", " true"]) {
    assert.ok(!caps({ [key]: v }).includes("NET_BIND_SERVICE"), `${JSON.stringify(v)} is not "true"`);
  }
  assert.ok(!caps({}).includes("NET_BIND_SERVICE"));
});
