// Writes the `config` part of charts/sidecar-injector/values.schema.json from the injector's
// own config rules (src/config/schema.ts), so that helm refuses what the injector would.
//
//   node --import tsx scripts/config-schema.ts          rewrite the file
//   node --import tsx scripts/config-schema.ts --check  exit 1 when the file is stale
//
// test/unit/config/json-schema.test.ts fails while the committed file differs.

import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { withConfigSchema } from "../src/config/json-schema.js";

const FILE = join(
  resolve(dirname(fileURLToPath(import.meta.url)), ".."),
  "charts",
  "sidecar-injector",
  "values.schema.json",
);

const check = process.argv.includes("--check");
const current = await readFile(FILE, "utf8");
const next = withConfigSchema(current);
if (next === current) {
  process.stdout.write(`${FILE} is up to date\n`);
} else if (check) {
  process.stderr.write(`${FILE} is stale: run node --import tsx scripts/config-schema.ts\n`);
  process.exitCode = 1;
} else {
  await writeFile(FILE, next);
  process.stdout.write(`${FILE} written\n`);
}
