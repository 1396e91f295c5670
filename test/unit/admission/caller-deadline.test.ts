// The deadline of a request waiting for the review worker: the API server's `?timeout=<N>s`
// as it sends it, anything else ignored, and the server's request timeout as the bound.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { callerWaitsMs, MAX_TIMEOUT_PARAM_SECONDS, timeoutParamMs } from "../../../src/admission/caller-deadline.js";

describe("timeoutParamMs", () => {
  it("reads the API server's whole seconds, wherever the parameter is in the query", () => {
    assert.equal(timeoutParamMs("/inject?timeout=10s"), 10_000);
    assert.equal(timeoutParamMs("/inject?timeout=1s"), 1_000);
    assert.equal(timeoutParamMs(`/inject?timeout=${MAX_TIMEOUT_PARAM_SECONDS}s`), MAX_TIMEOUT_PARAM_SECONDS * 1000);
    assert.equal(timeoutParamMs("/inject/cluster/c1/net/n1?timeout=30s"), 30_000);
    assert.equal(timeoutParamMs("/inject?a=b&timeout=5s"), 5_000);
    assert.equal(timeoutParamMs("/inject?timeout=5s&a=b"), 5_000);
    assert.equal(timeoutParamMs("/inject?timeout=07s"), 7_000);
    // Given twice, the first counts.
    assert.equal(timeoutParamMs("/inject?timeout=3s&timeout=20s"), 3_000);
  });

  it("is undefined without the parameter, or for one only ending in its name", () => {
    for (const url of ["/inject", "/inject?", "/inject?x=1", "/inject?xtimeout=5s", "/inject?a=1&mytimeout=5s", ""])
      assert.equal(timeoutParamMs(url), undefined, url);
    assert.equal(timeoutParamMs("/inject?xtimeout=1s&timeout=4s"), 4_000);
    // In the path, not the query.
    assert.equal(timeoutParamMs("/inject/timeout=5s"), undefined);
  });

  it("ignores a value in another form: no unit, another unit, a fraction, a sign, Go's minutes, empty", () => {
    for (const value of ["10", "10ms", "1.5s", "+5s", "-5s", "1m0s", "5S", "s", "", " 5s", "5s ", "5%73", "0x5s"])
      assert.equal(timeoutParamMs(`/inject?timeout=${value}`), undefined, value);
  });

  it("ignores zero, and anything past the API server's most (huge included)", () => {
    for (const value of [
      "0s",
      "00s",
      `${MAX_TIMEOUT_PARAM_SECONDS + 1}s`,
      "3600s",
      "999999999s",
      "9999999999s",
      "99999999999999999999999s",
      `${"9".repeat(10_000)}s`,
    ])
      assert.equal(timeoutParamMs(`/inject?timeout=${value}`), undefined, value.slice(0, 30));
  });
});

describe("callerWaitsMs", () => {
  it("is the earlier of the request timeout and the API server's timeout", () => {
    assert.equal(callerWaitsMs("/inject?timeout=10s", 30_000), 10_000);
    assert.equal(callerWaitsMs("/inject?timeout=10s", 4_000), 4_000);
    assert.equal(callerWaitsMs("/inject", 30_000), 30_000);
    assert.equal(callerWaitsMs(undefined, 30_000), 30_000);
  });

  it("is the request timeout when the parameter is ignored", () => {
    assert.equal(callerWaitsMs("/inject?timeout=0s", 30_000), 30_000);
    assert.equal(callerWaitsMs("/inject?timeout=1m0s", 30_000), 30_000);
    assert.equal(callerWaitsMs("/inject?timeout=99999999999999999999s", 30_000), 30_000);
  });

  it("has no bound from a request timeout of 0 (none, as Node's)", () => {
    assert.equal(callerWaitsMs("/inject", 0), Infinity);
    assert.equal(callerWaitsMs("/inject?timeout=2s", 0), 2_000);
  });
});
