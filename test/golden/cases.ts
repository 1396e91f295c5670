// The golden cases of test/golden: NAME.yaml, with NAME.config.yaml when present.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";

const here = dirname(fileURLToPath(import.meta.url));

export function goldenCases(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith(".yaml") && !f.endsWith(".config.yaml"))
    .sort();
}

export function goldenConfig(name: string): Config {
  const file = join(here, name.replace(/\.yaml$/, ".config.yaml"));
  return parseConfig(existsSync(file) ? readFileSync(file, "utf8") : "{}", file);
}

export function goldenInput(name: string): string {
  return readFileSync(join(here, name), "utf8");
}

