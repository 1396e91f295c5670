// The differential corpus (cases/, written by test/oracle/regen.sh): each case's manifest and
// what Istio's injector made of it.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCases } from "../support/jsonl.js";

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

export function loadCorpus(dir: string = CASES_DIR): CorpusCase[] {
  const inputs = readCases(join(dir, "inputs.jsonl.gz"));
  const answers = new Map(readCases(join(dir, "istio.jsonl.gz")).map((a) => [a.id as string, a]));
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
