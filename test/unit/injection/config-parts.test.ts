// The parts of the sidecar built once per config (template-parts.ts: ConfigMemo, shared): a
// Pod injected under a config that has already served every other input gets the very patch
// it gets under a config used for the first time, over every input we have (the golden cases
// and their injected output, Istio's golden cases, the differential corpus), so no part is
// reused for a Pod whose settings differ; shared parts cannot be changed in place; and the
// cache of one config is bounded.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it, test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildConfig, parseConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import { inject } from "../../../src/injection/inject.js";
import { ConfigMemo, shared, type KeyPart } from "../../../src/injection/template-parts.js";
import { InjectionError, type InjectContext } from "../../../src/injection/types.js";
import { podOf } from "../../../src/injection/workloads.js";
import { ManifestError, parseManifest } from "../../../src/manifest.js";
import { loadCorpus } from "../../differential/corpus.js";
import { goldenCases, goldenConfig, goldenInput } from "../../golden/cases.js";

const here = dirname(fileURLToPath(import.meta.url));
const oracleConfigFile = join(here, "..", "..", "oracle", "injector-config.yaml");

interface Input {
  readonly id: string;
  readonly manifest: string;
  /** The config's source: one Config per source is kept warm, another parsed afresh per Pod. */
  readonly source: string;
  readonly config: () => Config;
}

function inputs(): Input[] {
  const out: Input[] = [];
  for (const name of goldenCases()) {
    const config = (): Config => goldenConfig(name);
    out.push({ id: `golden ${name}`, manifest: goldenInput(name), source: name, config });
    const injected = readFileSync(join(here, "..", "..", "golden", `${name}.injected`), "utf8");
    out.push({ id: `golden ${name}.injected`, manifest: injected, source: name, config });
  }
  const oracle = (): Config => parseConfig(readFileSync(oracleConfigFile, "utf8"), oracleConfigFile);
  const istioDir = join(here, "..", "..", "istio-golden", "cases");
  for (const f of readdirSync(istioDir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yaml.injected"))) {
    out.push({
      id: `istio-golden ${f}`,
      manifest: readFileSync(join(istioDir, f), "utf8"),
      source: "oracle",
      config: oracle,
    });
  }
  for (const c of loadCorpus()) {
    out.push({ id: `differential ${c.id}`, manifest: c.manifest, source: "oracle", config: oracle });
  }
  return out;
}

function documents(manifest: string, id: string): unknown[] {
  const flat = (d: unknown): unknown[] => {
    const items: unknown = typeof d === "object" && d !== null && "items" in d ? d.items : undefined;
    return Array.isArray(items) ? items.flatMap(flat) : [d];
  };
  try {
    return parseManifest(manifest, id).flatMap(flat);
  } catch (e) {
    if (e instanceof ManifestError) return [];
    throw e;
  }
}

function patchText(pod: unknown, ctx: InjectContext, config: Config): string {
  try {
    return JSON.stringify(inject(structuredClone(pod), ctx, config).patch);
  } catch (e) {
    if (e instanceof InjectionError) return `refused: ${e.message}`;
    throw e;
  }
}

test("a config's cached parts give each Pod the patch a config used for the first time gives it", () => {
  const all = inputs();
  const warm = new Map<string, Config>();
  const cases = all.flatMap((input) =>
    documents(input.manifest, input.id).flatMap((doc) => {
      const p = podOf(doc, "default");
      if (p === undefined) return [];
      const ctx: InjectContext = { namespace: p.namespace, ...(p.workload ? { workload: p.workload } : {}) };
      return [{ input, name: p.name, pod: p.pod, ctx }];
    }),
  );
  // Every Pod once through its source's warm config first, so that each later one meets parts
  // that other Pods' settings built.
  for (const c of cases) {
    if (!warm.has(c.input.source)) warm.set(c.input.source, c.input.config());
    patchText(c.pod, c.ctx, warm.get(c.input.source)!);
  }
  let patches = 0;
  for (const c of cases) {
    const fresh = patchText(c.pod, c.ctx, c.input.config());
    assert.equal(patchText(c.pod, c.ctx, warm.get(c.input.source)!), fresh, `${c.input.id} ${c.name}`);
    if (!fresh.startsWith("refused") && fresh !== "[]") patches++;
  }
  assert.ok(patches > 300, `${patches} patches compared`);
});

describe("shared parts", () => {
  it("two Pods under one config share the sidecar's config-only parts, which cannot be changed", () => {
    const config = buildConfig({ nativeSidecars: "true" });
    const pod = (name: string): unknown => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "ns" },
      spec: { containers: [{ name: "app", image: "app:1" }] },
    });
    const proxy = (name: string): Record<string, unknown> => {
      const c = inject(pod(name), { namespace: "ns" }, config).pod.spec?.initContainers?.find(
        (x) => x.name === "istio-proxy",
      );
      assert.ok(c);
      return c;
    };
    const a = proxy("a");
    const b = proxy("b");
    for (const key of ["securityContext", "readinessProbe", "args", "ports", "lifecycle", "resources"]) {
      assert.ok(a[key] !== undefined, key);
      assert.equal(a[key], b[key], `${key} is one object`);
      assert.ok(Object.isFrozen(a[key]), `${key} is frozen`);
    }
    assert.notEqual(a.env, b.env, "the env is the Pod's own");
    assert.throws(() => {
      (a.args as string[]).push("--more");
    }, TypeError);
  });

  it("shared freezes to the bottom", () => {
    const part = shared({ a: { b: [{ c: 1 }] } });
    assert.ok(Object.isFrozen(part.a.b[0]));
    assert.throws(() => {
      (part.a.b[0] as { c: number }).c = 2;
    }, TypeError);
  });

  it("ConfigMemo builds a part once per config and key, and keeps no more than its limit of keys", () => {
    const memo = new ConfigMemo<{ key: string }>(3);
    const a = buildConfig({});
    const b = buildConfig({});
    let built = 0;
    const get = (config: Config, ...key: KeyPart[]): { key: string } =>
      memo.get(config, key, () => {
        built++;
        return { key: JSON.stringify(key) };
      });
    assert.equal(get(a, "x"), get(a, "x"));
    assert.equal(built, 1);
    assert.notEqual(get(b, "x"), get(a, "x"), "another config, another part");
    assert.equal(built, 2);
    assert.equal(get(a, "x", 1), get(a, "x", 1), "a key of several values");
    assert.equal(built, 3);
    assert.notEqual(get(a, "x"), get(a, "x", 1), "a key that begins another is another");
    assert.equal(get(a, "x", null), get(a, "x", undefined), "a value left out is one set to null");
    assert.equal(built, 4);
    // a's three keys are kept: x, [x, 1], [x, null].
    const past = get(a, "x", "1");
    assert.notEqual(past, get(a, "x", 1), "1 and '1' are two keys");
    assert.equal(get(a, "x", "1"), get(a, "x", "1"), "the last part is kept, even past the limit");
    const again = get(a, "x", "1");
    get(a, "x");
    assert.notEqual(get(a, "x", "1"), again, "past the limit a part is built each time it is not the last");
    assert.equal(built, 7);
    assert.equal(get(b, "x"), get(b, "x"), "each config keeps its own");
    assert.equal(built, 7);

    // The last key is the memo's own copy: a caller's list changed after the call does not
    // make the next call find the part of the old values.
    const fresh = new ConfigMemo<{ key: string }>(0);
    const key: KeyPart[] = ["m"];
    const m = fresh.get(a, key, () => ({ key: "m" }));
    key[0] = "n";
    assert.deepEqual(
      fresh.get(a, ["n"], () => ({ key: "n" })),
      { key: "n" },
    );
    assert.notEqual(
      fresh.get(a, ["m"], () => ({ key: "m" })),
      m,
      "limit 0: nothing kept but the last",
    );
    assert.ok(Object.isFrozen(past));
  });
});
