// The recorded corpora (test/differential/cases, test/realworld/cases): gzipped JSON lines, one
// case per line, each an object with a string `id`.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

/** The cases of a `.jsonl.gz` file; a line that is not an object with a string id fails, naming its line. */
export function readCases(file: string): Record<string, unknown>[] {
  return gunzipSync(readFileSync(file))
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      const v: unknown = JSON.parse(l);
      if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { id?: unknown }).id !== "string")
        throw new Error(`${file}:${i + 1}: not a case`);
      return v as Record<string, unknown>;
    });
}
