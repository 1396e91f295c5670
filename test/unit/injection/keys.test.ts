// Keys are data: names of Object.prototype's members, and `__proto__`, used as label and
// annotation keys, template names, env names, path parameters, selector keys and container
// fields, are read and written as ordinary keys, and round-trip through the patch.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import jsonpatch from "fast-json-patch";
import { parsePathEnv } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import { apiServerSelection } from "../../../src/injection/explain.js";
import { inject } from "../../../src/injection/inject.js";
import { mergeObject } from "../../../src/injection/merge.js";
import { copyOwn } from "../../../src/injection/own.js";
import { MapEdit } from "../../../src/injection/map-edit.js";
import { matchesSelector } from "../../../src/injection/policy.js";
import { InjectionError } from "../../../src/injection/types.js";
import type { Container, Pod } from "../../../src/kube/types.js";
import { parseLabelList } from "../../../src/preview.js";

const config = buildConfig({});
const KEYS = ["__proto__", "constructor", "valueOf", "hasOwnProperty", "toString"] as const;

/** A Pod built from JSON text, as the webhook receives it: `__proto__` is an own key there. */
function podFromJson(metadata: string, container = '{"name":"app","image":"nginx"}'): Pod {
  return JSON.parse(
    `{"apiVersion":"v1","kind":"Pod","metadata":${metadata},"spec":{"containers":[${container}]}}`,
  ) as Pod;
}

/** The patch, through JSON as the AdmissionResponse carries it, applied with validation to the Pod as sent. */
function applied(pod: Pod, patch: readonly unknown[]): Pod {
  const ops = JSON.parse(JSON.stringify(patch)) as jsonpatch.Operation[];
  return jsonpatch.applyPatch(JSON.parse(JSON.stringify(pod)) as Pod, ops, true, false).newDocument;
}

function proxyOf(pod: Pod): Container | undefined {
  return pod.spec?.containers.find((c) => c.name === "istio-proxy");
}

describe("prototype names as keys", () => {
  for (const key of KEYS) {
    test(`${key} as a label key: kept as an ordinary label, in the patch too`, () => {
      const pod = podFromJson(`{"name":"web","labels":{"${key}":"x","app":"web"}}`);
      const r = inject(pod, { namespace: "demo" }, config);
      assert.equal(r.decision.inject, true);
      const labels = r.pod.metadata?.labels ?? {};
      assert.ok(Object.hasOwn(labels, key) && labels[key] === "x", "the label is kept");
      assert.equal(Object.getPrototypeOf(labels), Object.prototype, "and the map keeps its prototype");
      assert.equal(labels["service.istio.io/canonical-name"], "web");
      const after = applied(pod, r.patch).metadata?.labels ?? {};
      assert.ok(Object.hasOwn(after, key) && after[key] === "x");
      assert.deepEqual(Object.keys(after).sort(), Object.keys(labels).sort());
    });

    test(`${key} as the only label, on a Pod that has none of the injected ones: added whole, with it`, () => {
      const pod = podFromJson(`{"name":"web","labels":{"${key}":"x"},"annotations":{"${key}":"y"}}`);
      const r = inject(pod, { namespace: "demo" }, config);
      const after = applied(pod, r.patch).metadata ?? {};
      assert.equal(Object.hasOwn(after.labels ?? {}, key) ? after.labels?.[key] : undefined, "x");
      assert.equal(Object.hasOwn(after.annotations ?? {}, key) ? after.annotations?.[key] : undefined, "y");
    });

    test(`${key} as an annotation key: no check found for it, kept, and the Pod injected`, () => {
      const pod = podFromJson(`{"name":"web","annotations":{"${key}":"1"}}`);
      const r = inject(pod, { namespace: "demo" }, config);
      assert.equal(r.decision.inject, true);
      const annotations = r.pod.metadata?.annotations ?? {};
      assert.ok(Object.hasOwn(annotations, key) && annotations[key] === "1");
      assert.ok(Object.hasOwn(annotations, "sidecar.istio.io/status"));
      const after = applied(pod, r.patch).metadata?.annotations ?? {};
      assert.equal(after[key], "1");
    });

    test(`${key} as a template name: refused as an unknown template`, () => {
      const pod = podFromJson(`{"name":"web","annotations":{"inject.istio.io/templates":"sidecar,${key}"}}`);
      assert.throws(
        () => inject(pod, { namespace: "demo" }, config),
        (e: unknown) =>
          e instanceof InjectionError &&
          e.code === "ERR_INVALID_ANNOTATION" &&
          e.message.includes(`unknown template "${key}"`),
      );
    });

    test(`${key} as a label whose value is null: the empty string, as the API server stores it`, () => {
      const pod = podFromJson(`{"name":"web","labels":{"${key}":null,"app":"web"}}`);
      const labels = inject(pod, { namespace: "demo" }, config).pod.metadata?.labels ?? {};
      assert.equal(Object.getOwnPropertyDescriptor(labels, key)?.value, "");
      assert.equal(Object.getPrototypeOf(labels), Object.prototype);
    });

    test(`${key} as an env name of the app: carried through`, () => {
      const pod = podFromJson('{"name":"web"}', `{"name":"app","image":"nginx","env":[{"name":"${key}","value":"v"}]}`);
      const r = inject(pod, { namespace: "demo" }, config);
      const app = r.pod.spec?.containers.find((c) => c.name === "app");
      assert.deepEqual(app?.env, [{ name: key, value: "v" }]);
    });

    test(`${key} as a path parameter: an ordinary env var of the proxy`, () => {
      for (const path of [`/inject/${key}/v1`, `/inject/:ENV:${key}=v1`]) {
        const env = parsePathEnv(path);
        const name = key.toUpperCase();
        assert.ok(Object.hasOwn(env, name) && env[name] === "v1", path);
        assert.equal(Object.getPrototypeOf(env), Object.prototype);
      }
      // As the engine gets it from any caller: the key itself, not upper-cased.
      const pathEnv = JSON.parse(`{"${key}":"v2"}`) as Record<string, string>;
      const r = inject(podFromJson('{"name":"web"}'), { namespace: "demo", pathEnv }, config);
      assert.ok(proxyOf(r.pod)?.env?.some((e) => e.name === key && e.value === "v2"));
    });

    test(`${key} as a selector key: matches only a Pod that has it`, () => {
      const has = JSON.parse(`{"${key}":"x"}`) as Record<string, string>;
      assert.equal(matchesSelector({ matchLabels: JSON.parse(`{"${key}":"x"}`) as Record<string, string> }, {}), false);
      assert.equal(matchesSelector({ matchLabels: JSON.parse(`{"${key}":"x"}`) as Record<string, string> }, has), true);
      assert.equal(matchesSelector({ matchExpressions: [{ key, operator: "Exists" }] }, {}), false);
      assert.equal(matchesSelector({ matchExpressions: [{ key, operator: "DoesNotExist" }] }, {}), true);
      assert.equal(matchesSelector({ matchExpressions: [{ key, operator: "In", values: ["x"] }] }, has), true);
      assert.equal(matchesSelector({ matchExpressions: [{ key, operator: "NotIn", values: ["x"] }] }, {}), true);
    });

    test(`${key} as a namespace label: an ordinary label, nothing else selected by it`, () => {
      const labels = parseLabelList(`${key}=enabled`);
      assert.ok(Object.hasOwn(labels, key) && labels[key] === "enabled");
      assert.equal(apiServerSelection("demo", labels, {}, "default").called, false);
      assert.equal(
        apiServerSelection(
          "demo",
          { ...labels, "istio-injection": "enabled" },
          JSON.parse(`{"${key}":"x"}`) as Record<string, string>,
          "default",
        ).called,
        true,
      );
    });

    test(`${key} as a user volume name: a volume of that name`, () => {
      const pod = podFromJson(
        `{"name":"web","annotations":{"sidecar.istio.io/userVolume":${JSON.stringify(`{"${key}":{"emptyDir":{}}}`)}}}`,
      );
      const r = inject(pod, { namespace: "demo" }, config);
      assert.ok(r.pod.spec?.volumes?.some((v) => v.name === key && typeof v.emptyDir === "object"));
    });
  }

  test("a container field named __proto__ merges as a field, and leaves prototypes alone", () => {
    const patch = JSON.parse(
      '{"__proto__":{"polluted":true},"constructor":"c","env":[{"name":"A","value":"2"}]}',
    ) as Record<string, unknown>;
    const merged = mergeObject({ name: "istio-proxy", env: [{ name: "A", value: "1" }] }, patch) as Record<
      string,
      unknown
    >;
    assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(merged, "__proto__")?.value, { polluted: true });
    assert.equal(merged.constructor, "c");
    assert.deepEqual(merged.env, [{ name: "A", value: "2" }]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("a Pod's own istio-proxy with a __proto__ field: recorded in the overrides as a field", () => {
    const pod = podFromJson(
      '{"name":"web"}',
      '{"name":"app","image":"nginx"},{"name":"istio-proxy","image":"auto","__proto__":{"x":1}}',
    );
    const r = inject(pod, { namespace: "demo" }, config);
    const recorded = JSON.parse(r.pod.metadata?.annotations?.["proxy.istio.io/overrides"] ?? "{}") as {
      containers: object[];
    };
    assert.ok(recorded.containers[0] && Object.hasOwn(recorded.containers[0], "__proto__"));
    assert.equal(Object.getPrototypeOf(proxyOf(r.pod)), Object.prototype);
  });

  test("JSON annotations whose values are not what an injector writes are ignored or refused, never a crash", () => {
    const status = (v: string): Pod =>
      podFromJson(`{"name":"web","annotations":{"sidecar.istio.io/status":${JSON.stringify(v)}}}`);
    for (const v of ['{"volumes":[1]}', '{"containers":null}', "null", "[]", "{"]) {
      assert.equal(inject(status(v), { namespace: "demo" }, config).decision.inject, true, v);
    }
    // Istio's injector fails on container lists that are not lists of names: refused, as there.
    for (const v of ['{"containers":"istio-proxy"}', '{"containers":5}', '{"initContainers":[null]}']) {
      assert.throws(
        () => inject(status(v), { namespace: "demo" }, config),
        { code: "ERR_INVALID_ANNOTATION", message: /must be a list of container names/ },
        v,
      );
    }
    const reinjected = podFromJson(
      '{"name":"web","annotations":{"sidecar.istio.io/status":"{\\"containers\\":[\\"istio-proxy\\"]}"}}',
      '{"name":"app","image":"nginx"},{"name":"istio-proxy","env":[{"name":"ISTIO_PROMETHEUS_ANNOTATIONS","value":"null"},{"name":"ISTIO_KUBE_APP_PROBERS","value":"{\\"/app-health/app/readyz\\":\\"x\\"}"}]}',
    );
    assert.equal(inject(reinjected, { namespace: "demo" }, config).decision.inject, true);
    // Istio reads the overrides with json.Unmarshal into a struct: null leaves it empty.
    const nullOverrides = podFromJson(`{"name":"web","annotations":{"proxy.istio.io/overrides":"null"}}`);
    assert.equal(inject(nullOverrides, { namespace: "demo" }, config).decision.inject, true);
    for (const v of ['{"containers":"x"}', '{"containers":[5]}', '{"initContainers":[{"name":1}]}', "[1]", "{"]) {
      const pod = podFromJson(`{"name":"web","annotations":{"proxy.istio.io/overrides":${JSON.stringify(v)}}}`);
      assert.throws(() => inject(pod, { namespace: "demo" }, config), { code: "ERR_INVALID_ANNOTATION" }, v);
    }
    const volumes = podFromJson(
      `{"name":"web","annotations":{"sidecar.istio.io/userVolume":${JSON.stringify('{"v":"x"}')}}}`,
    );
    assert.throws(() => inject(volumes, { namespace: "demo" }, config), {
      code: "ERR_INVALID_ANNOTATION",
      message: /"v" must be a non-empty JSON object/,
    });
  });
});

describe("copyOwn and MapEdit: copies that keep keys as data", () => {
  test("a copy has the same own keys in the same order, `__proto__` an own property, the prototype untouched", () => {
    const source = JSON.parse('{"b":1,"__proto__":{"polluted":true},"a":2,"constructor":3}') as Record<string, unknown>;
    const copy = copyOwn(source);
    assert.notEqual(copy, source);
    assert.deepEqual(Object.keys(copy), ["b", "__proto__", "a", "constructor"]);
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.equal((copy as { polluted?: unknown }).polluted, undefined);
    assert.equal(JSON.stringify(copy), JSON.stringify(source));
  });

  test("a MapEdit sets in place, appends new keys, and never sets the prototype", () => {
    const edit = new MapEdit({ x: "1", y: "2" });
    edit.assign(JSON.parse('{"y":"3","__proto__":"p","z":"4"}') as Record<string, string>);
    const out = edit.toObject();
    assert.deepEqual(Object.keys(out), ["x", "y", "__proto__", "z"]);
    assert.equal(out.y, "3");
    assert.equal(edit.get("__proto__"), "p");
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(edit.get("constructor"), undefined, "a key the map does not have, even one objects inherit");
  });
});
