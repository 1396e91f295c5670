import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RateLimiter, createTlsFailureReporter, tlsFailureReason } from "../../../src/admission/tls-failures.js";
import { TLS_HANDSHAKE_FAILURE_REASONS, createMetrics } from "../../../src/telemetry/metrics.js";

describe("tlsFailureReason", () => {
  it("maps OpenSSL and Node codes to a bounded reason", () => {
    const cases: Record<string, string> = {
      ERR_SSL_NO_SHARED_CIPHER: "cipher",
      ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS: "cipher",
      ERR_SSL_NO_SUITABLE_KEY_SHARE: "cipher",
      ERR_SSL_UNSUPPORTED_PROTOCOL: "protocol",
      ERR_SSL_WRONG_VERSION_NUMBER: "protocol",
      ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: "protocol",
      ERR_SSL_HTTP_REQUEST: "plain_http",
      ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "unknown_ca",
      ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "bad_certificate",
      ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "bad_certificate",
      ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: "bad_certificate",
      ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: "bad_certificate",
      ERR_TLS_HANDSHAKE_TIMEOUT: "timeout",
      ECONNRESET: "reset",
      EPIPE: "reset",
      ERR_TLS_RENEGOTIATION_DISABLED: "renegotiation",
      ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: "other",
      ERR_SOMETHING_NEW: "other",
      "": "other",
    };
    for (const [code, reason] of Object.entries(cases)) assert.equal(tlsFailureReason({ code }), reason, code);
    assert.equal(tlsFailureReason({}), "other");
    const bounded = new Set<string>(Object.values(TLS_HANDSHAKE_FAILURE_REASONS));
    for (const reason of Object.values(cases)) assert.ok(bounded.has(reason), reason);
  });
});

describe("RateLimiter", () => {
  it("lets one through per key per interval and counts the rest", () => {
    let t = 1_000;
    const limiter = new RateLimiter(10_000, () => t);
    assert.deepEqual(limiter.take("a"), { suppressed: 0 });
    assert.equal(limiter.take("a"), undefined);
    assert.equal(limiter.take("a"), undefined);
    assert.deepEqual(limiter.take("b"), { suppressed: 0 }, "keys are limited apart");
    t += 9_999;
    assert.equal(limiter.take("a"), undefined);
    t += 1;
    assert.deepEqual(limiter.take("a"), { suppressed: 3 });
    assert.equal(limiter.take("a"), undefined);
    t += 10_000;
    assert.deepEqual(limiter.take("a"), { suppressed: 1 });
    assert.deepEqual(limiter.take("b"), { suppressed: 0 });
  });
});

describe("createTlsFailureReporter", () => {
  it("counts every failure and logs one line per reason per interval, with what it left out", async () => {
    let t = 0;
    const metrics = createMetrics();
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const reporter = createTlsFailureReporter({
      counter: metrics.tlsHandshakeFailures,
      log: { warn: (fields, message) => lines.push({ fields, message }) },
      intervalMs: 10_000,
      now: () => t,
    });
    const cipher = Object.assign(new Error("...:no shared cipher:..."), {
      code: "ERR_SSL_NO_SHARED_CIPHER",
      reason: "no shared cipher",
    });
    for (let i = 0; i < 100; i++) reporter.report(cipher, "10.0.0.1");
    reporter.report(
      Object.assign(new Error("TLS handshake timeout"), { code: "ERR_TLS_HANDSHAKE_TIMEOUT" }),
      undefined,
    );
    t = 10_000;
    reporter.report(cipher, "10.0.0.2");

    assert.equal(lines.length, 3);
    assert.deepEqual(lines[0], {
      fields: {
        reason: "cipher",
        code: "ERR_SSL_NO_SHARED_CIPHER",
        detail: "no shared cipher",
        remoteAddress: "10.0.0.1",
      },
      message: "TLS handshake failed",
    });
    assert.deepEqual(lines[1]?.fields, {
      reason: "timeout",
      code: "ERR_TLS_HANDSHAKE_TIMEOUT",
      detail: "TLS handshake timeout",
      remoteAddress: undefined,
    });
    assert.equal(lines[2]?.fields.suppressed, 99);
    const text = await metrics.registry.metrics();
    assert.match(text, /^sidecar_injector_tls_handshake_failures_total\{reason="cipher"\} 101$/m);
    assert.match(text, /^sidecar_injector_tls_handshake_failures_total\{reason="timeout"\} 1$/m);
    assert.match(
      text,
      /^sidecar_injector_tls_handshake_failures_total\{reason="unknown_ca"\} 0$/m,
      "every reason is published from the start",
    );
  });
});
