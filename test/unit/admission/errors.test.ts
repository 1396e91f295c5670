import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionError, ERRORS, errorBody, isErrorCode } from "../../../src/admission/errors.js";
import { INJECTION_ERROR_CODES } from "../../../src/injection/types.js";

describe("error registry", () => {
  it("maps the transport errors to their HTTP statuses", () => {
    const want: Record<string, number> = {
      ERR_UNSUPPORTED_MEDIA_TYPE: 415,
      ERR_BODY_TOO_LARGE: 413,
      ERR_EMPTY_BODY: 400,
      ERR_MALFORMED_JSON: 400,
      ERR_NOT_ADMISSION_REVIEW: 400,
      ERR_REQUEST_TIMEOUT: 408,
      ERR_NOT_FOUND: 404,
      ERR_METHOD_NOT_ALLOWED: 405,
      ERR_NOT_READY: 503,
    };
    for (const [code, status] of Object.entries(want)) {
      assert.ok(isErrorCode(code), code);
      assert.equal(ERRORS[code].status, status, code);
      assert.equal(ERRORS[code].answer, "http", code);
    }
  });

  it("has a review-level entry for every code the engine throws", () => {
    for (const code of INJECTION_ERROR_CODES) {
      assert.ok(isErrorCode(code), code);
      assert.equal(ERRORS[code].answer, "review");
      assert.equal(ERRORS[code].status, 400);
      assert.equal(ERRORS[code].reason, "BadRequest");
    }
  });

  it("uses ERR_ codes, messages and Kubernetes reasons throughout", () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      assert.match(code, /^ERR_[A-Z_]+$/);
      assert.ok(spec.message.length > 0);
      assert.match(spec.reason, /^[A-Z][A-Za-z]+$/);
    }
  });

  it("renders {error:{code,message}}", () => {
    assert.deepEqual(errorBody("ERR_EMPTY_BODY"), { error: { code: "ERR_EMPTY_BODY", message: "no body found" } });
    const e = new AdmissionError("ERR_BODY_TOO_LARGE", "too big: 10 > 5");
    assert.equal(e.status, 413);
    assert.deepEqual(e.toBody(), { error: { code: "ERR_BODY_TOO_LARGE", message: "too big: 10 > 5" } });
  });

  it("rejects names that are not codes, including inherited ones", () => {
    assert.equal(isErrorCode("ERR_NOPE"), false);
    assert.equal(isErrorCode("toString"), false);
    assert.equal(isErrorCode(415), false);
  });
});
