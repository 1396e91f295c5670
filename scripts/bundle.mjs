// How src/ is bundled: the esbuild options `npm run build` bundles dist/ with (scripts/build.mjs),
// shared with the benchmarks that measure our code in process (test/bench/bundled.ts), so that
// they measure the code that ships rather than a development transform of it.
//
// Names: not kept (esbuild's keepNames). Keeping them wraps every function and class in a call
// that redefines its `name` when it is created, closures included, every time: on the engine's
// path that cost a third of its time for a Pod of fifty containers (the closures a review makes
// per container). Without it, a class or function keeps the name it is declared with, unless
// two modules of the bundle declare the same top-level name: then esbuild renames one (`Foo2`).
// Our classes' names are what pino's error serializer logs as an error's `type`, so the build
// checks that each class declared in src/ is in the bundles under its own name
// (checkClassNames) and fails otherwise.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";

/**
 * Loaded from node_modules at run time, not bundled: the Kubernetes client (an ES module,
 * loaded with require() only by the modes that talk to the API server, as Node 20.19+ allows;
 * kept out so that no other start parses it) and iconv-lite (raw-body, under express, requires
 * it at load; bundled, its character set tables, which nothing here decodes with, would be a
 * fifth of the bundle, parsed at every start).
 */
export const EXTERNAL = ["@kubernetes/client-node", "iconv-lite"];

/**
 * Defined at the top of each bundle (after "use strict", which must come first), where `require` is Node's own (a
 * module may shadow it, as certs/der.ts does): the file URL of a path relative to the bundle's directory.
 */
const MODULE_URL = "__moduleUrlInDist";
const BANNER = `"use strict";\nconst ${MODULE_URL} = (p) => require("node:url").pathToFileURL(require("node:path").join(__dirname, p)).href;`;

/**
 * Replaces `import.meta.url` in each of our modules with the file URL that module would have in
 * `root`/dist/, computed at run time from the bundle's own directory (`__dirname`).
 */
function moduleUrls(root, outFile) {
  const src = join(root, "src");
  const dist = join(root, "dist");
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

/** esbuild's options for a bundle of `root`'s src/ written to `outfile` (entry points not included). */
export function bundleOptions(root, outfile) {
  return {
    outfile,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    sourcemap: "linked",
    sourcesContent: false,
    keepNames: false,
    external: EXTERNAL,
    banner: { js: BANNER },
    plugins: [moduleUrls(root, outfile)],
    logLevel: "warning",
    // Module comments name files relative to the root (checkClassNames reads them).
    absWorkingDir: root,
  };
}

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/**
 * The classes declared in `root`/src/ that the bundles do not name as declared (`class Foo`,
 * `Foo = class`) in their module's part (esbuild heads each module's code with a comment naming
 * its file): renamed by the bundler, as `Foo2`.
 */
export function checkClassNames(root, bundles) {
  /** Each module's code, by its file as the bundles' comments name it (relative to `root`). */
  const parts = new Map();
  for (const bundle of bundles) {
    const pieces = readFileSync(bundle, "utf8").split(/^\/\/ (\S+)$/m);
    for (let i = 1; i + 1 < pieces.length; i += 2) parts.set(pieces[i], (parts.get(pieces[i]) ?? "") + pieces[i + 1]);
  }
  const wrong = [];
  for (const file of sources(join(root, "src"))) {
    const part = parts.get(relative(root, file).split(sep).join("/"));
    if (part === undefined) continue; // not bundled
    for (const m of readFileSync(file, "utf8").matchAll(
      /^\s*(?:export\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)/gm,
    )) {
      const name = m[1];
      if (!new RegExp(`(class ${name}[\\s{]|\\b${name} = class\\b)`).test(part)) wrong.push(name);
    }
  }
  return wrong.sort();
}
