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
// Not bundled: EXTERNAL below, and what certs/der.ts loads by path at run time (node-forge's
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
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const dist = join(root, "dist");

/**
 * Loaded from node_modules at run time, not bundled: the Kubernetes client (an ES module,
 * loaded with require() only by the modes that talk to the API server, as Node 20.19+ allows;
 * kept out so that no other start parses it) and iconv-lite (raw-body, under express, requires
 * it at load; bundled, its character set tables, which nothing here decodes with, would be a
 * fifth of the bundle, parsed at every start).
 */
const EXTERNAL = ["@kubernetes/client-node", "iconv-lite"];

/** Entry (under src/, .ts) to its bundle (under dist/, .js). */
const ENTRIES = ["cli.ts", "workers/entry.ts", "admission/review-worker.ts"];

/**
 * Defined at the top of each bundle (after "use strict", which must come first), where `require` is Node's own (a
 * module may shadow it, as
 * certs/der.ts does): the file URL of a path relative to the bundle's directory.
 */
const MODULE_URL = "__moduleUrlInDist";
const BANNER = `"use strict";\nconst ${MODULE_URL} = (p) => require("node:url").pathToFileURL(require("node:path").join(__dirname, p)).href;`;

/**
 * Replaces `import.meta.url` in each of our modules with the file URL that module would have in
 * dist/, computed at run time from the bundle's own directory (`__dirname`).
 */
function moduleUrls(outFile) {
  return {
    name: "module-urls",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = readFileSync(args.path, "utf8");
        if (!text.includes("import.meta.url")) return undefined;
        const asBuilt = join(dist, relative(src, args.path)).replace(/\.ts$/, ".js");
        const fromBundle = relative(dirname(outFile), asBuilt);
        return {
          contents: text.replaceAll("import.meta.url", `${MODULE_URL}(${JSON.stringify(fromBundle)})`),
          loader: "ts",
        };
      });
    },
  };
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
writeFileSync(join(dist, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);

for (const entry of ENTRIES) {
  const outfile = join(dist, entry.replace(/\.ts$/, ".js"));
  await build({
    entryPoints: [join(src, entry)],
    outfile,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    sourcemap: "linked",
    sourcesContent: false,
    // Function and class names as written (pino's error serializer logs constructor names).
    keepNames: true,
    external: EXTERNAL,
    banner: { js: BANNER },
    plugins: [moduleUrls(outfile)],
    logLevel: "warning",
  });
}
