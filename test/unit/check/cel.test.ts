// The matchConditions subset of CEL, as a table: the forms injectors write, CEL's error and
// absorption rules, what is outside the subset, and hostile input (deep nesting, huge strings,
// unclosed strings): each gives a result, none throws, and the work stays bounded.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { evaluateCondition, MAX_DEPTH, MAX_EXPRESSION_LENGTH, type CelResult } from "../../../src/check/cel.js";

const pod = (labels?: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web-1", ...(labels ? { labels } : {}), annotations: { "sidecar.istio.io/inject": "true" } },
  spec: { containers: [{ name: "app", image: "x", ports: [{ containerPort: 80 }] }] },
});
const request = {
  namespace: "shop",
  name: "web-1",
  operation: "CREATE",
  kind: { group: "", version: "v1", kind: "Pod" },
};

const value = (v: boolean): CelResult => ({ kind: "value", value: v });

const TABLE: readonly (readonly [string, Record<string, string> | undefined, CelResult | "error" | "unsupported"])[] = [
  // Istio's own condition shapes.
  ["!has(object.metadata.labels) || !('gw' in object.metadata.labels)", undefined, value(true)],
  ["!has(object.metadata.labels) || !('gw' in object.metadata.labels)", { app: "web" }, value(true)],
  ["!has(object.metadata.labels) || !('gw' in object.metadata.labels)", { gw: "1" }, value(false)],
  ["'k' in object.metadata.labels && object.metadata.labels['k'] == 'v'", { k: "v" }, value(true)],
  ["'k' in object.metadata.labels && object.metadata.labels['k'] == 'v'", { k: "w" }, value(false)],
  ["'k' in object.metadata.labels && object.metadata.labels['k'] == 'v'", {}, value(false)],
  ["object.metadata.annotations['sidecar.istio.io/inject'] != \"false\"", undefined, value(true)],
  ["request.namespace == 'shop'", undefined, value(true)],
  ["request.namespace in ['kube-system', 'istio-system']", undefined, value(false)],
  ["request.operation == 'CREATE' && request.kind.kind == 'Pod'", undefined, value(true)],
  ["object.metadata.name == 'web-1'", undefined, value(true)],
  ["(true)", undefined, value(true)],
  ["!(false || false)", undefined, value(true)],
  ["has(object.spec.containers)", undefined, value(true)],
  ["object.metadata.labels == null", undefined, "error"],
  ["oldObject == null", undefined, value(true)],
  ["'a\\'b' == \"a'b\"", undefined, value(true)],
  // CEL errors: a missing key, a non-bool where a bool is needed, in on a string.
  ["object.metadata.labels['k'] == 'v'", {}, "error"],
  ["object.metadata.labels['k'] == 'v'", undefined, "error"],
  ["object.metadata.name", undefined, "error"],
  ["!object.metadata.name", undefined, "error"],
  ["'a' in object.metadata.name", undefined, "error"],
  // Commutative && and ||: the deciding side absorbs an error on the other, in either order.
  ["object.metadata.labels['k'] == 'v' && false", {}, value(false)],
  ["false && object.metadata.labels['k'] == 'v'", {}, value(false)],
  ["object.metadata.labels['k'] == 'v' || true", {}, value(true)],
  ["object.metadata.labels['k'] == 'v' && true", {}, "error"],
  // == of different types is false.
  ["object.metadata.name == true", undefined, value(false)],
  // Outside the subset.
  ["object.metadata.name.startsWith('web')", undefined, "unsupported"],
  ["size(object.spec.containers) > 0", undefined, "unsupported"],
  ["object.spec.containers[0].name == 'app'", undefined, "unsupported"],
  ["object.spec.containers[0]", undefined, "unsupported"],
  ["object.metadata.?labels", undefined, "unsupported"],
  ["request.userInfo.username == 'admin'", undefined, "unsupported"],
  ["has(request.userInfo)", undefined, "unsupported"],
  ["object.spec.containers.exists(c, c.name == 'x')", undefined, "unsupported"],
  ["'''x''' == 'x'", undefined, "unsupported"],
  ["params.x == 'y'", undefined, "unsupported"],
  ["'\\u0041' == 'A'", undefined, "unsupported"],
  // Not CEL at all, or cut short.
  ["", undefined, "unsupported"],
  ["object.", undefined, "unsupported"],
  ["'unclosed", undefined, "unsupported"],
  ["(true", undefined, "unsupported"],
  ["true true", undefined, "unsupported"],
  ["a == ", undefined, "unsupported"],
  ["has(object)", undefined, "unsupported"],
  ["€", undefined, "unsupported"],
];

describe("evaluateCondition", () => {
  for (const [expression, labels, want] of TABLE) {
    test(`${JSON.stringify(expression)}${labels ? ` with labels ${JSON.stringify(labels)}` : " without labels"}`, () => {
      const got = evaluateCondition(expression, { object: pod(labels), request });
      if (typeof want === "string") assert.equal(got.kind, want, JSON.stringify(got));
      else assert.deepEqual(got, want);
    });
  }

  test("error and unsupported results say what: the key, the function", () => {
    assert.deepEqual(evaluateCondition("object.metadata.labels['k'] == 'v'", { object: pod({}), request }), {
      kind: "error",
      message: 'no such key: "k"',
    });
    assert.deepEqual(evaluateCondition("object.metadata.name.matches('x')", { object: pod(), request }), {
      kind: "unsupported",
      message: 'the function "matches" is outside the subset',
    });
  });

  test("hostile input: deep nesting, long chains and huge strings give a result, bounded", () => {
    const deep = `${"(".repeat(2000)}true${")".repeat(2000)}`;
    assert.deepEqual(evaluateCondition(deep, { object: pod(), request }), {
      kind: "unsupported",
      message: `nested deeper than ${MAX_DEPTH} levels`,
    });
    assert.equal(evaluateCondition(`${"!".repeat(MAX_DEPTH + 1)}true`, { object: pod(), request }).kind, "unsupported");
    assert.deepEqual(evaluateCondition(`${"!".repeat(MAX_DEPTH - 2)}true`, { object: pod(), request }), value(true));
    assert.equal(evaluateCondition(`${"[".repeat(1000)}`, { object: pod(), request }).kind, "unsupported");
    // Within the depth: a long flat chain is a loop, not recursion.
    const chain = Array.from({ length: 1000 }, () => "true").join(" && ");
    assert.ok(chain.length < MAX_EXPRESSION_LENGTH);
    assert.deepEqual(evaluateCondition(chain, { object: pod(), request }), value(true));
    const huge = `'${"a".repeat(1_000_000)}' == 'a'`;
    assert.deepEqual(evaluateCondition(huge, { object: pod(), request }), {
      kind: "unsupported",
      message: `longer than ${MAX_EXPRESSION_LENGTH} characters`,
    });
    // An unclosed string's message quotes nothing of it; a bad character is quoted, bounded.
    const bad = evaluateCondition(`#${"x".repeat(5000)}`, { object: pod(), request });
    assert.ok(bad.kind === "unsupported" && bad.message.length < 100, JSON.stringify(bad).slice(0, 200));
  });

  test("a key inherited from Object.prototype is no key of a map", () => {
    assert.deepEqual(
      evaluateCondition("'constructor' in object.metadata.labels", { object: pod({}), request }),
      value(false),
    );
    assert.equal(
      evaluateCondition("object.metadata.labels['__proto__'] == 'x'", { object: pod({}), request }).kind,
      "error",
    );
  });
});
