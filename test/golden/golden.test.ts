// Golden tests: each test/golden/NAME.yaml is injected (with NAME.config.yaml when present)
// and compared with NAME.yaml.injected. Expected files change only on request:
// `UPDATE_GOLDEN=1 npm test` writes them (review the diff); without it a missing expected
// file is a failure, never a file written and then compared with itself. Every case is also checked for patch fidelity
// (the engine's patch,
// applied with validation to the input, gives the printed Pod) and idempotency (injecting the
// output again changes nothing).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { InjectionError } from "../../src/injection/types.js";
import { formatManifest, injectManifest, parseManifest } from "../../src/manifest.js";
import { assertMatchesExpected } from "../support/expected.js";
import { goldenCases, goldenConfig, goldenInput } from "./cases.js";

const here = dirname(fileURLToPath(import.meta.url));

describe("golden files", () => {
  for (const name of goldenCases()) {
    test(name, () => {
      const config = goldenConfig(name);
      const input = goldenInput(name);
      const { docs, injected } = injectManifest(input, name, "default", config);
      const got = formatManifest(docs, "yaml");
      const file = join(here, `${name}.injected`);
      assertMatchesExpected(file, got, name);

      for (const item of injected) {
        const { result } = item;
        // Patch fidelity: the operations alone turn the input into the printed Pod.
        const source = structuredClone(inputPodOf(input, item.name, item.kind));
        if (source !== undefined) {
          const patched = jsonpatch.applyPatch(
            source,
            structuredClone(result.patch) as jsonpatch.Operation[],
            true,
            false,
          ).newDocument;
          assert.deepEqual(
            patched,
            JSON.parse(JSON.stringify(result.pod)),
            `${name} ${item.kind}/${item.name}: patch does not reproduce the output`,
          );
        }
        assert.ok(result.decision.reasons.length > 0, "every decision carries a reason");
      }

      // Idempotency: injecting the output again prints the same thing.
      const again = formatManifest(injectManifest(got, name, "default", config).docs, "yaml");
      assert.equal(again, got, `${name}: injecting twice changes the output`);
    });
  }
});

/** The Pod (or pod template as a Pod) named `name` in the input manifest. */
function inputPodOf(text: string, name: string, kind: string): unknown {
  for (const doc of flatten(parseManifest(text, "input"))) {
    const d = doc as {
      kind?: string;
      metadata?: { name?: string; generateName?: string };
      spec?: Record<string, unknown>;
    };
    const docName = d.metadata?.name ?? d.metadata?.generateName ?? "";
    if (d.kind !== kind || docName !== name) continue;
    if (kind === "Pod") return d;
    const spec = d.spec ?? {};
    // A CronJob is injected as kube-inject does: its job template's metadata, its pod template's spec.
    const jobTemplate = spec.jobTemplate as { metadata?: unknown; spec: { template: { spec: unknown } } } | undefined;
    if (kind === "CronJob" && jobTemplate)
      return { metadata: jobTemplate.metadata ?? {}, spec: jobTemplate.spec.template.spec };
    const tpl = spec.template as { metadata?: unknown; spec: unknown };
    return { metadata: tpl.metadata ?? {}, spec: tpl.spec };
  }
  return undefined;
}

function flatten(docs: unknown[]): unknown[] {
  return docs.flatMap((d) => {
    const list = d as { kind?: string; items?: unknown[] };
    return list.kind === "List" && Array.isArray(list.items) ? flatten(list.items) : [d];
  });
}

describe("golden files: refused input", () => {
  const badDir = join(here, "bad");
  for (const name of readdirSync(badDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    test(name, () => {
      const input = readFileSync(join(badDir, name), "utf8");
      const expectedFile = join(badDir, `${name}.err`);
      let message = "";
      try {
        injectManifest(input, name, "default", goldenConfig("none.yaml"));
        assert.fail(`${name}: was injected, expected a refusal`);
      } catch (e) {
        assert.ok(e instanceof InjectionError, `${name}: ${String(e)}`);
        message = e.message;
      }
      assertMatchesExpected(expectedFile, `${message}\n`, name);
    });
  }
});
