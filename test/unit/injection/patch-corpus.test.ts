// The patch, over every input we have (the golden cases, Istio's golden cases, the differential
// corpus, and each golden case's injected output again, a re-injection): applied with
// validation to the Pod it was computed from, it gives the engine's Pod byte for byte (key
// order included; a null field is a field left out, as the API server reads it), and the operations on each list take
// no more characters than replacing
// that list whole would.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { parseConfig } from "../../../src/config/load.js";
import type { Config } from "../../../src/config/types.js";
import { inject } from "../../../src/injection/inject.js";
import { TEMPLATES } from "../../../src/injection/template.js";
import { InjectionError, type PatchOperation } from "../../../src/injection/types.js";
import { podOf } from "../../../src/injection/workloads.js";
import { ManifestError, parseManifest } from "../../../src/manifest.js";
import { loadCorpus } from "../../differential/corpus.js";
import { goldenCases, goldenConfig, goldenInput } from "../../golden/cases.js";

const here = dirname(fileURLToPath(import.meta.url));
const oracleConfigFile = join(here, "..", "..", "oracle", "injector-config.yaml");
const oracleConfig = parseConfig(readFileSync(oracleConfigFile, "utf8"), oracleConfigFile);

const LISTS = ["/spec/initContainers", "/spec/containers", "/spec/volumes", "/spec/imagePullSecrets"] as const;

interface Input {
  readonly id: string;
  readonly manifest: string;
  readonly config: Config;
}

function inputs(): Input[] {
  const out: Input[] = [];
  for (const name of goldenCases()) {
    const config = goldenConfig(name);
    out.push({ id: `golden ${name}`, manifest: goldenInput(name), config });
    out.push({
      id: `golden ${name}.injected`,
      manifest: readFileSync(join(here, "..", "..", "golden", `${name}.injected`), "utf8"),
      config,
    });
  }
  const istioDir = join(here, "..", "..", "istio-golden", "cases");
  for (const f of readdirSync(istioDir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yaml.injected"))
    .sort()) {
    out.push({ id: `istio-golden ${f}`, manifest: readFileSync(join(istioDir, f), "utf8"), config: oracleConfig });
  }
  for (const c of loadCorpus()) out.push({ id: `differential ${c.id}`, manifest: c.manifest, config: oracleConfig });
  out.push(...bareInputs());
  return out;
}

/**
 * Every template, alone and after the sidecar's, over Pods without the maps the templates write
 * into (no labels, no annotations but the templates', labels and annotations empty, a native
 * sidecar or not): a template that adds nothing to a map the Pod lacks must leave it out, as the
 * patch does.
 */
function bareInputs(): Input[] {
  const out: Input[] = [];
  for (const name of TEMPLATES.keys()) {
    for (const templates of [name, `sidecar,${name}`]) {
      for (const extra of ["", "  labels: {}\n", "  labels: {}\n  annotations: {}\n"]) {
        const annotations = `  annotations:\n    inject.istio.io/templates: "${templates}"\n`;
        const metadata = extra.includes("annotations")
          ? extra.replace("  annotations: {}\n", annotations)
          : extra + annotations;
        out.push({
          id: `bare ${templates} ${JSON.stringify(extra)}`,
          manifest: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\n${metadata}spec:\n  containers:\n  - name: app\n    image: nginx\n`,
          config: oracleConfig,
        });
      }
    }
  }
  return out;
}

function pods(
  manifest: string,
  id: string,
): {
  name: string;
  pod: unknown;
  workload?: { name: string; namespace: string; kind: string; apiVersion: string };
  namespace: string;
}[] {
  let docs: unknown[];
  try {
    docs = parseManifest(manifest, id);
  } catch (e) {
    if (e instanceof ManifestError) return [];
    throw e;
  }
  const flat = (d: unknown): unknown[] => {
    const list = d as { kind?: string; items?: unknown[] } | null;
    return list?.kind === "List" && Array.isArray(list.items) ? list.items.flatMap(flat) : [d];
  };
  return docs.flatMap(flat).flatMap((d) => podOf(d, "default") ?? []);
}

/**
 * A null field is the field left out, as the API server's decoder reads it (the engine reads
 * the Pod so, and patches from that reading: shape.ts).
 */
function withoutNullFields(this: unknown, _key: string, value: unknown): unknown {
  return value === null && !Array.isArray(this) ? undefined : value;
}

const opSize = (op: PatchOperation): number => JSON.stringify(op).length + 1;
const under = (op: PatchOperation, path: string): boolean => op.path === path || op.path.startsWith(`${path}/`);

test("over every input, the patch gives the engine's Pod byte for byte, and no list's operations outweigh replacing it", () => {
  let checked = 0;
  let listsPatched = 0;
  let saved = 0;
  for (const input of inputs()) {
    for (const l of pods(input.manifest, input.id)) {
      const what = `${input.id} ${l.name}`;
      let result;
      try {
        result = inject(
          l.pod,
          l.workload ? { namespace: l.namespace, workload: l.workload } : { namespace: l.namespace },
          input.config,
        );
      } catch (e) {
        if (e instanceof InjectionError) continue;
        throw e;
      }
      if (!result.decision.inject) {
        assert.equal(result.patch.length, 0, what);
        continue;
      }
      const source = structuredClone(l.pod);
      const patched = jsonpatch.applyPatch(
        source,
        structuredClone(result.patch) as jsonpatch.Operation[],
        true,
        false,
      ).newDocument;
      const got = JSON.stringify(patched, withoutNullFields);
      const want = JSON.stringify(result.pod, withoutNullFields);
      if (got !== want) {
        let i = 0;
        while (got[i] === want[i]) i++;
        assert.fail(`${what}: the patch gives ${got.slice(i - 60, i + 60)}, the engine ${want.slice(i - 60, i + 60)}`);
      }
      checked++;

      const before = (l.pod as { spec?: Record<string, unknown> }).spec ?? {};
      const after = (result.pod as { spec?: Record<string, unknown> }).spec ?? {};
      for (const path of LISTS) {
        const ops = result.patch.filter((o) => under(o, path));
        if (ops.length === 0) continue;
        const key = path.slice("/spec/".length);
        const whole = opSize({ op: before[key] === undefined ? "add" : "replace", path, value: after[key] });
        const ours = ops.reduce((n, o) => n + opSize(o), 0);
        assert.ok(ours <= whole, `${what}: ${ours} characters of operations on ${path}, ${whole} to replace it`);
        listsPatched++;
        saved += whole - ours;
      }
    }
  }
  assert.ok(checked > 500, `${checked} injected Pods checked`);
  assert.ok(listsPatched > checked, `${listsPatched} lists patched`);
  assert.ok(saved > 0, "some lists are patched item by item, smaller than whole");
});
