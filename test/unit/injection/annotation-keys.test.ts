// Unknown and deprecated annotation keys in Istio's injection domains: the closest known key
// named (typo, letter case, another domain), nothing said about known keys or other domains,
// and bounded in number and length whatever the Pod carries. Then through the engine: the
// warnings reach what the webhook answers, injected or not.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import {
  annotationKeyWarnings,
  closestKnownKey,
  editDistance,
  MAX_KEY_WARNINGS,
} from "../../../src/injection/annotation-keys.js";
import { inject } from "../../../src/injection/inject.js";

describe("annotationKeyWarnings", () => {
  test("a typo, a letter case, a key of another domain: each named with the closest known key", () => {
    assert.deepEqual(annotationKeyWarnings({ "sidecar.istio.io/injet": "false" }), [
      'unknown annotation "sidecar.istio.io/injet" is ignored; did you mean sidecar.istio.io/inject?',
    ]);
    assert.deepEqual(annotationKeyWarnings({ "sidecar.istio.io/proxyCpu": "1" }), [
      'unknown annotation "sidecar.istio.io/proxyCpu" is ignored; did you mean sidecar.istio.io/proxyCPU?',
    ]);
    assert.deepEqual(annotationKeyWarnings({ "sidecar.istio.io/excludeOutboundPorts": "5432" }), [
      'unknown annotation "sidecar.istio.io/excludeOutboundPorts" is ignored; did you mean traffic.sidecar.istio.io/excludeOutboundPorts?',
    ]);
    assert.deepEqual(annotationKeyWarnings({ "proxy.istio.io/confg": "{}" }), [
      'unknown annotation "proxy.istio.io/confg" is ignored; did you mean proxy.istio.io/config?',
    ]);
  });

  test("nothing close: no suggestion", () => {
    assert.deepEqual(annotationKeyWarnings({ "sidecar.istio.io/somethingElseEntirely": "x" }), [
      'unknown annotation "sidecar.istio.io/somethingElseEntirely" is ignored',
    ]);
  });

  test("known keys, keys of other domains, and no annotations: nothing", () => {
    assert.deepEqual(
      annotationKeyWarnings({
        "sidecar.istio.io/inject": "true",
        "sidecar.istio.io/proxyCPU": "100m",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
        "proxy.istio.io/config": "{}",
        "prometheus.istio.io/merge-metrics": "false",
        "inject.istio.io/templates": "sidecar",
        "status.sidecar.istio.io/port": "15020",
        "example.com/injet": "x",
        "istio.io/rev": "canary",
        "networking.istio.io/exportTo": ".",
      }),
      [],
    );
    assert.deepEqual(annotationKeyWarnings(undefined), []);
  });

  test("a deprecated key: named with what replaces it", () => {
    assert.deepEqual(annotationKeyWarnings({ "traffic.sidecar.istio.io/kubevirtInterfaces": "net1" }), [
      "annotation traffic.sidecar.istio.io/kubevirtInterfaces is deprecated: use istio.io/reroute-virtual-interfaces",
    ]);
  });

  test("bounded: at most MAX_KEY_WARNINGS named, the rest counted; a long key quoted bounded and not compared", () => {
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`sidecar.istio.io/unknown${i}`, "x"]));
    const w = annotationKeyWarnings(many);
    assert.equal(w.length, MAX_KEY_WARNINGS + 1);
    assert.equal(w.at(-1), `${5000 - MAX_KEY_WARNINGS} more unknown annotation(s) in Istio's domains are ignored`);
    const long = `sidecar.istio.io/${"y".repeat(10_000)}`;
    const [said] = annotationKeyWarnings({ [long]: "x" });
    assert.ok(said !== undefined && said.length < 150, said);
    assert.match(said, /\(10017 characters\)/);
    assert.equal(closestKnownKey(long), undefined);
  });
});

describe("editDistance", () => {
  test("Levenshtein, stopping past the limit", () => {
    assert.equal(editDistance("inject", "injet", 3), 1);
    assert.equal(editDistance("kitten", "sitting", 5), 3);
    assert.equal(editDistance("abc", "abc", 0), 0);
    assert.equal(editDistance("abcdef", "uvwxyz", 2), 3, "limit + 1 once past it");
    assert.equal(editDistance("a", "abcdefgh", 2), 3, "lengths too far apart");
  });
});

describe("through the engine", () => {
  const config = buildConfig({});
  const pod = (annotations: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", annotations },
    spec: { containers: [{ name: "web", image: "nginx" }] },
  });
  test("injected with the warning: the misspelt opt-out did not opt out", () => {
    const r = inject(pod({ "sidecar.istio.io/injet": "false" }), { namespace: "demo" }, config);
    assert.equal(r.decision.inject, true);
    assert.ok(
      r.warnings.includes(
        'unknown annotation "sidecar.istio.io/injet" is ignored; did you mean sidecar.istio.io/inject?',
      ),
      r.warnings.join("\n"),
    );
  });
  test("not injected: the warning still said", () => {
    const r = inject(
      pod({ "sidecar.istio.io/inject": "false", "sidecar.istio.io/proxyCpu": "1" }),
      { namespace: "demo" },
      config,
    );
    assert.equal(r.decision.inject, false);
    assert.ok(
      r.warnings.some((w) => w.includes("did you mean sidecar.istio.io/proxyCPU?")),
      r.warnings.join("\n"),
    );
  });
});
