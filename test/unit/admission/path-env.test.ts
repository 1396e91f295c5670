import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePathEnv } from "../../../src/admission/review.js";

describe("parsePathEnv", () => {
  const cases: [string, Record<string, string>][] = [
    ["/inject", {}],
    ["/inject/", {}],
    ["/inject/cluster/c1", { ISTIO_META_CLUSTER_ID: "c1" }],
    ["/inject/net/n1", { ISTIO_META_NETWORK: "n1" }],
    ["/inject/cluster/c1/net/n1", { ISTIO_META_CLUSTER_ID: "c1", ISTIO_META_NETWORK: "n1" }],
    ["/inject/cluster/c1/net/n1/", { ISTIO_META_CLUSTER_ID: "c1", ISTIO_META_NETWORK: "n1" }],
    ["/inject/foo/bar", { FOO: "bar" }],
    ["/inject/my_key/v", { MY_KEY: "v" }],
    // An unpaired last key is ignored.
    ["/inject/cluster/c1/net", { ISTIO_META_CLUSTER_ID: "c1" }],
    ["/inject/lonely", {}],
    // --slash-- decodes to "/".
    [
      "/inject/cluster/a--slash--b/net/x--slash--y--slash--z",
      { ISTIO_META_CLUSTER_ID: "a/b", ISTIO_META_NETWORK: "x/y/z" },
    ],
    // Only in values: a key keeps it, upper-cased (Istio's webhook, checked against it).
    ["/inject/a--slash--b/v", { "A--SLASH--B": "v" }],
    // Keys upper-cased as Go's strings.ToUpper does, a character for a character.
    ["/inject/stra%C3%9Fe/x/%C3%A9t%C3%A9/y", { STRAßE: "x", ÉTÉ: "y" }],
    // A value may be empty; a later key wins.
    ["/inject/cluster//net/n1", { ISTIO_META_CLUSTER_ID: "", ISTIO_META_NETWORK: "n1" }],
    ["/inject/cluster/c1/cluster/c2", { ISTIO_META_CLUSTER_ID: "c2" }],
    // Deprecated :ENV: form: same key mapping, pairs without "=" or a name skipped, values as-is.
    ["/inject/:ENV:cluster=c1:ENV:net=n1", { ISTIO_META_CLUSTER_ID: "c1", ISTIO_META_NETWORK: "n1" }],
    ["/inject/:ENV:my_var=c1:ENV:EMPTY=:ENV:=nokey:ENV:novalue", { MY_VAR: "c1", EMPTY: "" }],
    ["/inject/:ENV:A=x=y", { A: "x=y" }],
    ["/inject/:ENV:A=x--slash--y", { A: "x--slash--y" }],
    // Percent-encoding is decoded like Go's URL.Path; the query string is not part of it.
    ["/inject/cluster/east%20one", { ISTIO_META_CLUSTER_ID: "east one" }],
    ["/inject/cluster/c1?x=y", { ISTIO_META_CLUSTER_ID: "c1" }],
    // Keys that happen to be Object.prototype members are ordinary keys.
    ["/inject/constructor/x/__proto__/y", { CONSTRUCTOR: "x", __PROTO__: "y" }],
  ];
  for (const [path, want] of cases) {
    it(`${path} -> ${JSON.stringify(want)}`, () => {
      const got = parsePathEnv(path);
      assert.deepEqual({ ...got }, want);
      assert.equal(Object.getPrototypeOf(got), Object.prototype);
    });
  }
});
