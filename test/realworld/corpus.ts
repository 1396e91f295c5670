// The real-world corpus (cases/): Pod-bearing documents of public projects (collect.ts) and
// what Istio's injector made of each, with native sidecars and with classic ones (regen.sh).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCases } from "../support/jsonl.js";

export const MODES = ["native", "classic"] as const;
export type Mode = (typeof MODES)[number];

export interface Answer {
  /** Istio's injected manifest, when it admitted the document: as printed, and read (record.ts). */
  readonly output?: string;
  readonly docs?: readonly unknown[];
  /** Istio's error, when it refused. */
  readonly refusal?: string;
}

export interface RealWorldCase {
  readonly id: string;
  readonly manifest: string;
  /** Where the document comes from: repository, commit, path, document, licence. */
  readonly origin: Readonly<Record<string, unknown>>;
  readonly istio: Readonly<Record<Mode, Answer>>;
}

export const CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), "cases");

function answers(dir: string, mode: Mode): Map<string, Answer> {
  return new Map(
    readCases(join(dir, `istio-${mode}.jsonl.gz`)).map((a) => [
      a.id as string,
      {
        ...(typeof a.output === "string" && a.refusal === undefined ? { output: a.output } : {}),
        ...(Array.isArray(a.docs) ? { docs: a.docs as unknown[] } : {}),
        ...(typeof a.refusal === "string" && a.refusal !== "" ? { refusal: a.refusal } : {}),
      },
    ]),
  );
}

export function loadRealWorld(dir: string = CASES_DIR): RealWorldCase[] {
  const byMode = { native: answers(dir, "native"), classic: answers(dir, "classic") };
  return readCases(join(dir, "inputs.jsonl.gz")).map((c) => {
    const id = c.id as string;
    const istio = { native: byMode.native.get(id), classic: byMode.classic.get(id) };
    if (istio.native === undefined || istio.classic === undefined)
      throw new Error(`case ${id} has no recorded answer from Istio: run test/realworld/regen.sh`);
    const origin = c.origin;
    return {
      id,
      manifest: String(c.manifest),
      origin: typeof origin === "object" && origin !== null ? (origin as Record<string, unknown>) : {},
      istio: { native: istio.native, classic: istio.classic },
    };
  });
}
