// /preview near the body limit, in-process: the CPU time of each stage of what the route does
// with a JSON List of 100 Pods just under 6 MiB (parse, preview, then the answer as JSON, YAML
// and diff, each refused or written as the route would), and, for the YAML the answers write,
// the yaml library's stringify beside yaml-emit.ts, which writes the same text. The same List
// as startup.bench.ts sends to a running server (one long env value per Pod, so the diff stays
// small and the JSON and YAML answers pass the 4 MiB answer limit, refused as they are).
// CPU time (process.cpuUsage), not wall time: on a busy machine it moves far less. Medians of
// PREVIEW_RUNS rounds (default 5) after one warm-up round.
// Run: node --import tsx test/bench/preview.bench.ts
import { loadavg } from "node:os";
import { stringify } from "yaml";
import { buildConfig } from "../../src/config/load.js";
import { unifiedDiff } from "../../src/diff.js";
import {
  formatPreview,
  MAX_PREVIEW_ANSWER_BYTES,
  parseLabelList,
  parsePreviewInput,
  preview,
  PreviewLimitError,
  type PreviewEntry,
  type PreviewFormat,
} from "../../src/preview.js";
import { yamlText } from "../../src/yaml-emit.js";
import { previewListBody } from "./preview-body.js";
import { median } from "./table.js";

const runs = Number(process.env.PREVIEW_RUNS ?? "5");
const MIB = 1024 * 1024;
const PODS = 100;
const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

/** CPU milliseconds `f` takes (awaited). */
async function cpuMs(f: () => unknown): Promise<number> {
  const c0 = process.cpuUsage();
  await f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

async function main(): Promise<void> {
  const body = previewListBody("json", PODS);
  const config = buildConfig({});
  const times = new Map<string, number[]>();
  const notes = new Map<string, string>();
  const time = async (stage: string, f: () => unknown, round: number): Promise<void> => {
    const ms = await cpuMs(f);
    if (round > 0) times.set(stage, [...(times.get(stage) ?? []), ms]);
  };
  for (let round = 0; round <= runs; round++) {
    let docs: unknown[] = [];
    let entries: PreviewEntry[] = [];
    await time("parse (JSON)", () => (docs = parsePreviewInput(body, "json")), round);
    await time(
      "preview (100 Pods)",
      async () => (entries = await preview(docs, { config, givenLabels: parseLabelList("istio-injection=enabled") })),
      round,
    );
    for (const format of ["json", "yaml", "diff"] as const satisfies readonly PreviewFormat[]) {
      await time(
        `answer: ${format}`,
        () => {
          try {
            notes.set(
              `answer: ${format}`,
              `${(formatPreview(entries, format, MAX_PREVIEW_ANSWER_BYTES).length / MIB).toFixed(2)} MiB`,
            );
          } catch (e) {
            if (!(e instanceof PreviewLimitError)) throw e;
            notes.set(
              `answer: ${format}`,
              `refused past ${(MAX_PREVIEW_ANSWER_BYTES / MIB).toFixed(0)} MiB (${e.code})`,
            );
          }
        },
        round,
      );
    }
    const originals = (docs[0] as { items: unknown[] }).items;
    await time(
      "YAML of each Pod as given and as stored: yaml library",
      () => entries.forEach((e, i) => (stringify(originals[i], YAML_OPTIONS), stringify(e.object, YAML_OPTIONS))),
      round,
    );
    await time(
      "YAML of each Pod as given and as stored: yaml-emit.ts",
      () => entries.forEach((e, i) => (yamlText(originals[i]), yamlText(e.object))),
      round,
    );
    const pairs = entries.map((e, i) => [yamlText(originals[i]), yamlText(e.object)] as const);
    await time(
      "unified diff of each Pod's two YAML texts",
      () => pairs.forEach(([a, b]) => unifiedDiff(a, b, "a", "b")),
      round,
    );
  }
  const [l1] = loadavg();
  process.stdout.write(
    `/preview in-process: JSON List of ${PODS} Pods, ${(body.length / MIB).toFixed(2)} MiB; CPU ms, median of ${runs}; load average ${l1?.toFixed(2)}\n\n`,
  );
  process.stdout.write("| stage | CPU ms | |\n|---|---:|---|\n");
  for (const [stage, ms] of times)
    process.stdout.write(`| ${stage} | ${median(ms).toFixed(0)} | ${notes.get(stage) ?? ""} |\n`);
}

await main();
