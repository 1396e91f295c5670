// Our code as it ships, for the benchmarks that measure it in process: src/ bundled with the
// options `npm run build` bundles dist/ with (scripts/bundle.mjs), then loaded. Loaded from
// src/ through the TypeScript transform the tests run under, every function and closure is
// wrapped at its creation to keep its name (a third of the engine's time for a Pod of fifty
// containers), which the shipped code is not; a benchmark of that would measure the transform.
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { bundleOptions } from "../../scripts/bundle.mjs";
import type * as Review from "../../src/admission/review.js";
import type * as Load from "../../src/config/load.js";
import type * as Inject from "../../src/injection/inject.js";

const repository = resolve(import.meta.dirname, "..", "..");

/** The modules a benchmark calls, each as its bundle exports it. */
const MODULES = ["src/admission/review.ts", "src/config/load.ts", "src/injection/inject.ts"];

export type Engine = Pick<typeof Review, "answerReview" | "decodeAdmissionReview"> &
  Pick<typeof Load, "buildConfig" | "loadConfig"> &
  Pick<typeof Inject, "inject">;

/**
 * The exports of MODULES from `root`'s src/ (another checkout's, for a before and after), in one
 * bundle built as dist/'s are. Untyped: another checkout's may differ.
 */
export async function bundledExports(root: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "bench-bundle-"));
  try {
    const outfile = join(dir, "bench.js");
    await build({
      ...bundleOptions(root, outfile),
      sourcemap: false,
      stdin: {
        contents: MODULES.map((m) => `export * from ${JSON.stringify(`./${m}`)};`).join("\n"),
        resolveDir: root,
        sourcefile: "bench-entry.ts",
        loader: "ts",
      },
    });
    return createRequire(import.meta.url)(outfile) as Record<string, unknown>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** This checkout's engine and handler, bundled as shipped. */
export async function bundledEngine(): Promise<Engine> {
  const m = await bundledExports(repository);
  for (const name of ["answerReview", "decodeAdmissionReview", "buildConfig", "loadConfig", "inject"])
    if (typeof m[name] !== "function") throw new Error(`bundle of ${repository}: no ${name}`);
  return m as unknown as Engine;
}
