// The differential corpus (cases/, written by test/oracle/regen.sh): each case's manifest and
// what Istio's injector made of it.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

export interface CorpusCase {
  readonly id: string;
  readonly manifest: string;
  /** Istio's injected manifest, when it injected (or passed the documents through). */
  readonly output?: string;
  /** Istio's error, when it refused. */
  readonly refusal?: string;
  readonly warnings: readonly string[];
}

export const CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), "cases");

function jsonLines(file: string): Record<string, unknown>[] {
  return gunzipSync(readFileSync(file))
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      const v = JSON.parse(l) as unknown;
      if (typeof v !== "object" || v === null || typeof (v as { id?: unknown }).id !== "string")
        throw new Error(`${file}:${i + 1}: not a case`);
      return v as Record<string, unknown>;
    });
}

export function loadCorpus(dir: string = CASES_DIR): CorpusCase[] {
  const inputs = jsonLines(join(dir, "inputs.jsonl.gz"));
  const answers = new Map(jsonLines(join(dir, "istio.jsonl.gz")).map((a) => [a.id as string, a]));
  return inputs.map((c) => {
    const id = c.id as string;
    const a = answers.get(id);
    if (!a) throw new Error(`case ${id} has no answer from the oracle in istio.jsonl.gz: run npm run oracle:regen`);
    return {
      id,
      manifest: String(c.manifest),
      ...(typeof a.output === "string" ? { output: a.output } : {}),
      ...(typeof a.refusal === "string" ? { refusal: a.refusal } : {}),
      warnings: Array.isArray(a.warnings) ? a.warnings.map(String) : [],
    };
  });
}
