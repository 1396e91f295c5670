import assert from "node:assert/strict";
import { test } from "node:test";
import { validateAnnotations } from "../../../src/injection/validate.js";
import { InjectionError } from "../../../src/injection/types.js";

const refuses = (key: string, value: string): void => {
  assert.throws(
    () => validateAnnotations({ [key]: value }),
    (e: unknown) => e instanceof InjectionError && e.field === key && e.message.includes(key) && e.message.includes(JSON.stringify(value)),
    `${key}=${value}`,
  );
};
const accepts = (key: string, value: string): void => assert.doesNotThrow(() => validateAnnotations({ [key]: value }), `${key}=${value}`);

test("CIDR lists", () => {
  accepts("traffic.sidecar.istio.io/includeOutboundIPRanges", "*");
  accepts("traffic.sidecar.istio.io/includeOutboundIPRanges", "");
  accepts("traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/8, fd00::/8");
  refuses("traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0");
  refuses("traffic.sidecar.istio.io/excludeOutboundIPRanges", "*");
  refuses("traffic.sidecar.istio.io/excludeOutboundIPRanges", "300.0.0.0/8");
});

test("port lists", () => {
  accepts("traffic.sidecar.istio.io/includeInboundPorts", "*");
  accepts("traffic.sidecar.istio.io/excludeInboundPorts", "1, 65535");
  refuses("traffic.sidecar.istio.io/excludeInboundPorts", "0");
  refuses("traffic.sidecar.istio.io/includeOutboundPorts", "65536");
  refuses("traffic.sidecar.istio.io/excludeOutboundPorts", "*");
});

test("other checked annotations", () => {
  accepts("status.sidecar.istio.io/port", "0");
  refuses("status.sidecar.istio.io/port", "-1");
  refuses("readiness.status.sidecar.istio.io/periodSeconds", "1.5");
  refuses("sidecar.istio.io/interceptionMode", "redirect");
  refuses("sidecar.istio.io/rewriteAppHTTPProbers", "sometimes");
  refuses("sidecar.istio.io/logLevel", "loud");
  accepts("sidecar.istio.io/componentLogLevel", "misc:error,upstream:debug");
  refuses("sidecar.istio.io/componentLogLevel", "misc");
  refuses("sidecar.istio.io/proxyCPU", "fast");
  refuses("sidecar.istio.io/userVolume", "[1]");
  accepts("example.com/anything", "goes");
});
