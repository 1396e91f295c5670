// The scrape port Istio's metrics merge reads (webhook.go applyPrometheusMerge): strconv.Atoi,
// 1 to 65535, and not the agent's port or another of the sidecar's. Each row is what Istio's
// own injector (86c9f01, default settings) answered for the same Pod.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { InjectionError } from "../../../src/injection/types.js";

const config = buildConfig({});
const pod = (annotations: Record<string, string>): unknown => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", annotations },
  spec: { containers: [{ name: "app", image: "a" }] },
});
const ISTIO: [Record<string, string>, "ADMIT" | RegExp][] = [
  [{ "prometheus.io/port": "8080" }, "ADMIT"],
  [{ "prometheus.io/port": "+80" }, "ADMIT"],
  [{ "prometheus.io/port": "080" }, "ADMIT"],
  [{ "prometheus.io/port": "" }, "ADMIT"],
  [{ "prometheus.io/port": "15020" }, "ADMIT"],
  [{ "prometheus.io/port": "70000", "prometheus.io/scrape": "false" }, "ADMIT"],
  [{ "prometheus.io/port": "70000", "prometheus.istio.io/merge-metrics": "false" }, "ADMIT"],
  [{ "prometheus.io/port": "70000" }, /is not a port number \(1-65535\)/],
  [{ "prometheus-io/port": "70000" }, /is not a port number/],
  [{ "prometheus.io/port": "0" }, /is not a port number/],
  [{ "prometheus.io/port": "-0" }, /is not a port number/],
  [{ "prometheus.io/port": " 80" }, /is not a port number/],
  [{ "prometheus.io/port": "http" }, /is not a port number/],
  [{ "prometheus.io/port": "015020" }, /port 15020 is the sidecar.s status port/],
  [{ "prometheus.io/port": "15090" }, /port 15090 is reserved for the sidecar/],
  [{ "prometheus.io/port": "015090" }, /port 15090 is reserved for the sidecar/],
];

test("the scrape port is refused where Istio's metrics merge refuses it", () => {
  for (const [annotations, istio] of ISTIO) {
    const run = (): unknown => inject(pod(annotations), { namespace: "demo" }, config);
    if (istio === "ADMIT") assert.doesNotThrow(run, JSON.stringify(annotations));
    else
      assert.throws(
        run,
        (e: unknown) => e instanceof InjectionError && e.code === "ERR_INVALID_ANNOTATION" && istio.test(e.message),
        JSON.stringify(annotations),
      );
  }
});
