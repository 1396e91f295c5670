// Istio's own golden files, default settings: every case of Istio's TestInjection that runs
// with the default settings (test/oracle/istio-default-cases.txt; copied into cases/, see the
// README there) is injected by our CLI's path with the equivalent config
// (test/oracle/injector-config.yaml) and compared with Istio's output after the API server's
// normalisation (test/support/compare-injected.ts).
//
// KNOWN_DIVERGENT lists the cases where we differ today. A listed case that differs is
// reported as a todo with its differences; an unlisted case that differs fails; a listed case
// that now agrees fails too, so that the list can only shrink.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load.js";
import { InjectionError } from "../../src/injection/types.js";
import { injectManifest } from "../../src/manifest.js";
import { compareInjected, describeDifferences, type Difference } from "../support/compare-injected.js";

const here = dirname(fileURLToPath(import.meta.url));
const casesDir = join(here, "cases");
const configFile = join(here, "..", "oracle", "injector-config.yaml");
const config = parseConfig(readFileSync(configFile, "utf8"), configFile);

/** Cases where our output differs from Istio's today (each with what differs). */
const KNOWN_DIVERGENT: ReadonlyMap<string, string> = new Map<string, string>([]);

function cases(): string[] {
  return readdirSync(casesDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
}

function differences(name: string): Difference[] {
  const input = readFileSync(join(casesDir, name), "utf8");
  const istio = readFileSync(join(casesDir, `${name}.injected`), "utf8");
  let ours: readonly unknown[];
  try {
    ours = injectManifest(input, name, "default", config).docs;
  } catch (e) {
    if (!(e instanceof InjectionError)) throw e;
    return [{ path: "(refused)", kind: "changed", istio: "injected", ours: e.message }];
  }
  return compareInjected(ours, istio);
}

describe("Istio's golden files (default settings)", () => {
  const all = cases();

  test("every case has Istio's output beside it, and the known divergences are cases", () => {
    assert.ok(all.length >= 70, `only ${all.length} cases in ${casesDir}`);
    for (const name of all) assert.ok(readFileSync(join(casesDir, `${name}.injected`), "utf8").length > 0, name);
    for (const name of KNOWN_DIVERGENT.keys())
      assert.ok(all.includes(name), `KNOWN_DIVERGENT names ${name}, which is no case`);
  });

  for (const name of all) {
    test(name, (t) => {
      const diffs = differences(name);
      const known = KNOWN_DIVERGENT.get(name);
      if (known !== undefined) {
        assert.ok(diffs.length > 0, `${name} now agrees with Istio: remove it from KNOWN_DIVERGENT`);
        t.todo(`known divergence (${known}): ${describeDifferences(diffs, 3).join("; ")}`);
        return;
      }
      assert.deepEqual(describeDifferences(diffs, 20), [], `${name} differs from Istio's output`);
    });
  }
});
