// Builds dist/: one CommonJS file per program entry, bundled with its dependencies by esbuild,
// so that a start loads a few files instead of some four hundred (yaml alone is 74 modules,
// express and its dependencies about a hundred), each resolved, read and compiled on its own.
// `npm run build` type-checks first (tsc, no output); this script only emits.
//
//   dist/cli.js                      the CLI and `serve` (package.json "bin", `npm start`)
//   dist/workers/entry.js            each worker process of `serve --workers N` (main.ts forks it)
//   dist/admission/review-worker.js  the review worker thread (admission/review-pool.ts)
//   dist/package.json                {"type": "commonjs"}: the bundles are CommonJS
//
// CommonJS rather than ES modules: Node 20 loads one large CommonJS file in about a sixth of
// the CPU time it takes to load the same code as one ES module (measured on the bundle of
// `serve`), and has no compile cache for either. What `import()` loads only when a mode needs
// it (the Kubernetes client, node:cluster, the certificate authority) is still run only then:
// esbuild keeps each lazily imported module behind its own initialiser.
//
// `import.meta.url` in a bundled module becomes the URL its own file would have had in dist/
// (dist/admission/review-pool.js, dist/main.js, ...), so the paths it resolves against it (the
// review worker beside review-pool.js, workers/entry.js beside main.js, ../package.json beside
// cli.js, node-forge's asn1 module from certs/der.js) are those of the unbundled layout.
//
// How each is bundled (options, names, what is left out): scripts/bundle.mjs.
//
// Not bundled: EXTERNAL in bundle.mjs, and what certs/der.ts loads by path at run time (node-forge's
// asn1 module). The image's node_modules holds them (the production dependencies).
//
// Stack traces name the bundle's lines and the functions' own names (not minified);
// `node --enable-source-maps dist/cli.js ...` maps them to src/ through the .map beside each
// file.
//
// `npm run build:modules` emits tsc's one file per module into dist/ instead (ES modules, as
// before bundling), for a CPU profile that names our files (test/bench/profile-serve.ts sorts
// its time by dist/ folder).
//
// Run: node scripts/build.mjs   (npm run build does, after tsc --noEmit)
import { build } from "esbuild";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleOptions, checkClassNames } from "./bundle.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const dist = join(root, "dist");

/** Entry (under src/, .ts) to its bundle (under dist/, .js). */
const ENTRIES = ["cli.ts", "workers/entry.ts", "admission/review-worker.ts"];

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
writeFileSync(join(dist, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);

const bundles = [];
for (const entry of ENTRIES) {
  const outfile = join(dist, entry.replace(/\.ts$/, ".js"));
  await build({ ...bundleOptions(root, outfile), entryPoints: [join(src, entry)] });
  bundles.push(outfile);
}
const renamed = checkClassNames(root, bundles);
if (renamed.length > 0) {
  console.error(
    `build: ${renamed.join(", ")}: declared in src/ but not in dist/ under that name (two top-level declarations of one name: rename one, so that logs name the class as written)`,
  );
  process.exit(1);
}
