// Entry of each worker process of `serve --workers N`, forked by the primary (primary.ts);
// like cli.ts, it only starts what main.ts wires.
import { runWorker } from "../main.js";

// Not a top-level await: dist/ bundles this file as CommonJS (scripts/build.mjs).
void runWorker();
