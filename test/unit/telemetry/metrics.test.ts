import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { register as globalRegistry } from "prom-client";
import { SKIP_REASONS, createMetrics } from "../../../src/telemetry/metrics.js";

describe("createMetrics", () => {
  it("registers the injector metrics and process metrics on its own registry", async () => {
    const m = createMetrics();
    assert.notEqual(m.registry, globalRegistry);
    const text = await m.registry.metrics();
    for (const name of [
      "sidecar_injection_requests_total counter",
      "sidecar_injection_success_total counter",
      "sidecar_injection_skip_total counter",
      "sidecar_injection_failure_total counter",
      "sidecar_injection_duration_seconds histogram",
      "process_cpu_user_seconds_total counter",
      "nodejs_eventloop_lag_seconds gauge",
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name}$`, "m"), `${name} missing`);
    }
    assert.equal(globalRegistry.getSingleMetric("sidecar_injection_requests_total"), undefined);
  });

  it("keeps counts per registry", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.requests.inc();
    a.requests.inc();
    a.failure.inc({ reason: "ERR_EMPTY_BODY" });
    assert.match(await a.registry.metrics(), /^sidecar_injection_requests_total 2$/m);
    assert.match(await a.registry.metrics(), /^sidecar_injection_failure_total\{reason="ERR_EMPTY_BODY"\} 1$/m);
    assert.match(await b.registry.metrics(), /^sidecar_injection_requests_total 0$/m);
  });

  it("publishes every skip reason at zero from the start", async () => {
    const text = await createMetrics().registry.metrics();
    for (const reason of Object.values(SKIP_REASONS)) {
      assert.match(text, new RegExp(`^sidecar_injection_skip_total\\{reason="${reason}"\\} 0$`, "m"));
    }
  });

  it("observes durations into the histogram", async () => {
    const m = createMetrics();
    m.duration.observe(0.0003);
    const text = await m.registry.metrics();
    assert.match(text, /^sidecar_injection_duration_seconds_bucket\{le="0.0005"\} 1$/m);
    assert.match(text, /^sidecar_injection_duration_seconds_count 1$/m);
  });
});
