import type { BuildOptions } from "esbuild";

export const EXTERNAL: readonly string[];
export function bundleOptions(root: string, outfile: string): BuildOptions;
export function checkClassNames(root: string, bundles: readonly string[]): string[];
