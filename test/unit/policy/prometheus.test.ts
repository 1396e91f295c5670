// The Prometheus merge from the Pod's annotations, without a cluster: what the merge writes
// (read from the engine), that the policy's model of it is the engine's for every combination
// of the values the domain admits, which values and spellings the domain admits, and where the
// rendered policy computes the env and the annotations. That the API server stores what the
// webhook stores is the e2e suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import type { Pod } from "../../../src/kube/types.js";
import { inject } from "../../../src/injection/inject.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { MAX_VALUE, prometheusModel, prometheusParts } from "../../../src/policy/prometheus.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { annotatedPod, OPTIONS } from "./support.js";

const SCRAPE = "prometheus.io/scrape";
const PORT = "prometheus.io/port";
const PATH = "prometheus.io/path";
const MERGE = "prometheus.istio.io/merge-metrics";
const TARGETS = "prometheus.istio.io/scrape-targets";
const ENV = "ISTIO_PROMETHEUS_ANNOTATIONS";
const MERGED = { [PORT]: "15020", [PATH]: "/stats/prometheus", [SCRAPE]: "true" };

const injected = (annotations: Record<string, string>, config: Config): Pod => {
  const pod: Pod = { ...annotatedPod(annotations), metadata: { ...annotatedPod(annotations).metadata, labels: {} } };
  return inject(pod, { namespace: "demo", nativeSidecarsSupported: false }, { ...config, policy: "enabled" }).pod;
};
const envOf = (p: Pod): string | undefined =>
  p.spec?.containers.find((c) => c.name === "istio-proxy")?.env?.find((e) => e.name === ENV)?.value;
const promOf = (p: Pod): Record<string, string> =>
  Object.fromEntries(Object.entries(p.metadata?.annotations ?? {}).filter(([k]) => k.startsWith("prometheus")));

/** Every combination of the values below, each key absent or set. */
function combinations(values: Record<string, readonly string[]>): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [k, vs] of Object.entries(values)) out = out.flatMap((a) => [a, ...vs.map((v) => ({ ...a, [k]: v }))]);
  return out;
}

describe("the Prometheus merge from the Pod's annotations", () => {
  test("what it writes is read from the engine: the agent's port and path, applied by default as the config says", () => {
    for (const native of [false, true])
      assert.deepEqual(prometheusParts(DEFAULT_CONFIG, native), {
        annotations: MERGED,
        target: "15020",
        byDefault: true,
      });
    assert.equal(prometheusParts(parseConfig("prometheusMerge: false\n"), false)?.byDefault, false);
    assert.equal(prometheusParts(parseConfig("proxy:\n  statusPort: 16020\n"), false)?.target, "16020");
  });

  test("the model is the engine's for every combination of values in the domain, merged by default or not", () => {
    const grid = combinations({
      [MERGE]: ["true", "false", "1", "F"],
      [SCRAPE]: ["", "true", "false", "yes", "0", "T"],
      [PORT]: ["", "8080", "15020", "08080"],
      [PATH]: ["", "/metrics", "/m?x=<a>&b=é"],
    });
    assert.equal(grid.length, 5 * 7 * 5 * 4);
    for (const text of ["{}\n", "prometheusMerge: false\n"]) {
      const config = parseConfig(text);
      const parts = prometheusParts(config, false);
      assert.ok(parts, text);
      const { rules } = renderPolicy(config, OPTIONS);
      let merged = 0;
      let handed = 0;
      for (const a of grid) {
        assert.equal(outsideDomain(rules, annotatedPod(a)), undefined, JSON.stringify(a));
        const out = injected(a, config);
        const model = prometheusModel(a, parts);
        const own = Object.fromEntries(Object.entries(a).filter(([k]) => k !== MERGE));
        assert.deepEqual(promOf(out), {
          ...(MERGE in a ? { [MERGE]: a[MERGE] } : {}),
          ...own,
          ...(model.applies ? MERGED : {}),
        });
        assert.equal(envOf(out), model.env, `${text} ${JSON.stringify(a)}`);
        if (model.applies) merged++;
        if (model.env !== undefined) handed++;
      }
      // Both outcomes occur under both configs: the grid exercises the model, not one branch of it.
      assert.ok(merged > 100 && merged < grid.length - 100, `${text}: ${merged} merged`);
      assert.ok(handed > 50, `${text}: ${handed} handed over`);
    }
    assert.equal(
      envOf(injected({ [SCRAPE]: "yes", [PORT]: "08080", [PATH]: "/m" }, DEFAULT_CONFIG)),
      '{"scrape":"yes","path":"/m","port":"08080"}',
    );
  });

  test("scrape-targets: the model is the engine's for every combination with the other settings", () => {
    const grid = combinations({
      [MERGE]: ["false", "1"],
      [SCRAPE]: ["false", "yes"],
      [PORT]: ["15020", "7070"],
      [PATH]: ["/p"],
    }).flatMap((a) => ["8080", "8080:", "8080:/m,9091:/a:b<&>", "1:/x,2,3:"].map((t) => ({ ...a, [TARGETS]: t })));
    assert.equal(grid.length, 3 * 3 * 3 * 2 * 4);
    const parts = prometheusParts(DEFAULT_CONFIG, false);
    assert.ok(parts);
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    let handed = 0;
    for (const a of grid) {
      assert.equal(outsideDomain(rules, annotatedPod(a)), undefined, JSON.stringify(a));
      const out = injected(a, DEFAULT_CONFIG);
      const model = prometheusModel(a, parts);
      // The merge hands the targets over and removes the annotation.
      assert.equal(out.metadata?.annotations?.[TARGETS], model.applies ? undefined : a[TARGETS], JSON.stringify(a));
      assert.equal(envOf(out), model.env, JSON.stringify(a));
      if (model.env !== undefined) handed++;
    }
    assert.ok(handed > 20 && handed < grid.length, `${handed} handed over`);
    assert.equal(
      envOf(injected({ [TARGETS]: "8080:,9091:/a:b", [PORT]: "7070" }, DEFAULT_CONFIG)),
      '{"scrape":"","path":"/metrics","port":"8080","targets":[{"port":"8080","path":"/metrics"},{"port":"9091","path":"/a:b"}]}',
    );
  });

  test("scrape-targets the policy would not write as the webhook does are outside, naming why", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const t of [
      "8080, 9090",
      " 8080",
      "8080:/a b",
      "8080:/é",
      '8080:/"',
      ",8080",
      "8080,",
      "",
      "http:/m",
      "8080:/a\\b",
    ]) {
      const why = outsideDomain(rules, annotatedPod({ [TARGETS]: t })) ?? "";
      assert.match(why, /"prometheus\.istio\.io\/scrape-targets" has the value .*without blanks/, t);
    }
    for (const t of ["15090", "8080,15020", "8080:/m,0"]) {
      const why = outsideDomain(rules, annotatedPod({ [TARGETS]: t })) ?? "";
      assert.match(why, /"prometheus\.istio\.io\/scrape-targets" names the port "(15090|15020|0)"/, t);
      // The webhook refuses each.
      assert.throws(() => injected({ [TARGETS]: t }, DEFAULT_CONFIG), /scrape-targets/, t);
    }
    assert.match(
      outsideDomain(rules, annotatedPod({ [TARGETS]: `8080:/${"m".repeat(MAX_VALUE)}` })) ?? "",
      /scrape-targets" has more than 256 characters/,
    );
  });

  test("ports the webhook refuses or reads as the agent's are outside; others inside", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const v of ["", "1", "80", "8080", "08080", "14999", "15100", "15020", "65535"])
      assert.equal(outsideDomain(rules, annotatedPod({ [PORT]: v })), undefined, v);
    for (const v of ["0", "15000", "15090", "15099", "65536", "99999"]) {
      const why = outsideDomain(rules, annotatedPod({ [PORT]: v })) ?? "";
      assert.match(why, /annotation "prometheus\.io\/port" has the value .*a port in 1-65535 outside 15000-15099/, v);
    }
    for (const v of ["http", "+80", " 80", "123456", "015020"]) {
      const why = outsideDomain(rules, annotatedPod({ [PORT]: v })) ?? "";
      assert.match(why, /annotation "prometheus\.io\/port" has the value .*a port number/, v);
    }
    // The webhook refuses each of these, not merging them ("+80", which it reads as 80, is only narrowed out).
    for (const v of ["0", "15000", "15090", "015020", "65536", "http"])
      assert.throws(() => injected({ [PORT]: v }, DEFAULT_CONFIG), /prometheus\.io\/port/, v);
  });

  test("values JSON would escape, or longer than the bound, are outside; a merge-metrics the webhook refuses too", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const v of ['/a"b', "/a\\b", "/a\nb"]) {
      const why = outsideDomain(rules, annotatedPod({ [PATH]: v })) ?? "";
      assert.match(why, /annotation "prometheus\.io\/path" has the value .*quote, backslash or control character/, v);
    }
    assert.equal(outsideDomain(rules, annotatedPod({ [SCRAPE]: "😀".repeat(MAX_VALUE) })), undefined);
    assert.match(
      outsideDomain(rules, annotatedPod({ [SCRAPE]: "x".repeat(MAX_VALUE + 1) })) ?? "",
      /"prometheus\.io\/scrape" has more than 256 characters/,
    );
    for (const v of ["yes", "", "TRUE "]) {
      assert.match(outsideDomain(rules, annotatedPod({ [MERGE]: v })) ?? "", /a Go boolean/, v);
      assert.throws(() => injected({ [MERGE]: v }, DEFAULT_CONFIG), /merge-metrics/, v);
    }
  });

  test("other spellings of what the merge reads are outside; annotations it does not read are inside", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const k of [
      "prometheus.io.scrape",
      "prometheus_io/port",
      "prometheus-io-path",
      "prometheus.istio.io.scrape-targets",
      "prometheus.istio.io/secure-port",
      "prometheus.istio.io.secure_port",
    ])
      assert.match(outsideDomain(rules, annotatedPod({ [k]: "8080" })) ?? "", /only the webhook reads/, k);
    const plain = injected({}, DEFAULT_CONFIG);
    for (const k of [
      "prometheus.io/scheme",
      "example.com/prometheus-scrape",
      "Prometheus.io/scrape",
      "prometheus.io/scrapes",
    ]) {
      assert.equal(outsideDomain(rules, annotatedPod({ [k]: "x" })), undefined, k);
      // The engine leaves it as it is, and merges as for a Pod without it.
      const out = injected({ [k]: "x" }, DEFAULT_CONFIG);
      assert.equal(out.metadata?.annotations?.[k], "x", k);
      assert.equal(envOf(out), envOf(plain), k);
      assert.deepEqual({ ...promOf(out), [k]: undefined }, { ...promOf(plain), [k]: undefined }, k);
    }
  });

  test("the policy appends the env before the probers and writes the merge's annotations only when it applies", () => {
    for (const text of ["{}\n", "prometheusMerge: false\n"]) {
      const { policy } = renderPolicy(parseConfig(text), OPTIONS);
      const spec = policy.spec as { variables: { name: string; expression: string }[]; mutations: unknown[] };
      const containers = spec.variables.find((v) => v.name === "injectedContainers")?.expression ?? "";
      assert.match(containers, /\] \+ variables\.prometheusEnv \+ \(variables\.appProbers == "" \?/, text);
      const env = spec.variables.find((v) => v.name === "prometheusEnv")?.expression ?? "";
      assert.match(env, /"value": dyn\("\{\\"scrape\\":\\"" \+ variables\.annotations\[\?"prometheus\.io\/scrape"\]/);
      const patch = JSON.stringify(spec.mutations);
      // Per key: only under the merge's condition; as the whole map (a Pod without annotations): as the config says.
      assert.match(
        patch,
        /variables\.prometheusMerge \? \[JSONPatch\{op: \\"add\\", path: \\"\/metadata\/annotations\/prometheus\.io~1port\\", value: \\"15020\\"\}/,
      );
      assert.equal((patch.match(/prometheus\.io~1port/g) ?? []).length, 1, text);
      assert.equal(/"prometheus\.io\/port\\": dyn\(\\"15020\\"\)/.test(patch), text === "{}\n", text);
    }
  });

  test("a config under which the merge writes nothing leaves every Prometheus annotation to the webhook", () => {
    const config = parseConfig("rewriteAppProbes: false\nproxy:\n  statusPort: 0\n");
    assert.equal(prometheusParts(config, false), undefined);
    const { rules, policy } = renderPolicy(config, OPTIONS);
    assert.match(outsideDomain(rules, annotatedPod({ [SCRAPE]: "true" })) ?? "", /only the webhook reads/);
    assert.doesNotMatch(JSON.stringify(policy), /prometheusEnv/);
  });
});
