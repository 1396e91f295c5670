// What `preview --compare-with` prints. summary (on a terminal): one line per Pod with its
// result, then its differences (path: ours, istiod's; at most SUMMARY_DIFFERENCES) or both
// answers when a refusal is involved, and a count line. json and yaml: `{comparedWith, items}`,
// every entry whole (for machines). diff: per Pod, the unified diff (src/diff.ts) of the Pod
// as istiod's answer leaves it against the Pod as ours does, both as the API server stores
// them (keys in order); `# …` lines for Pods that do not differ or that either refuses.
import { stringify } from "yaml";
import { unifiedDiff } from "../diff.js";
import { clip, quote, quoteName } from "../injection/quote.js";
import { yamlText } from "../yaml-emit.js";
import { storedPodsOf, type CompareEntry, type CompareResult, type Side } from "./compare.js";

export const COMPARE_FORMATS = ["summary", "json", "yaml", "diff"] as const;
export type CompareFormat = (typeof COMPARE_FORMATS)[number];

/** Differences shown per Pod in the summary; -o json has every one kept. */
export const SUMMARY_DIFFERENCES = 20;
const VALUE_CHARS = 100;

const RESULT_TEXT: Readonly<Record<CompareResult, string>> = {
  identical: "identical",
  equivalent: "equivalent",
  different: "different",
  "both-refused": "both refuse",
  "refused-by-istiod-only": "refused by istiod only",
  "refused-by-ours-only": "refused by this injector only",
};

function shown(v: unknown): string {
  if (v === undefined) return "(none)";
  return typeof v === "string" ? quote(v, VALUE_CHARS) : clip(JSON.stringify(v), VALUE_CHARS);
}

/**
 * A copy with every map's keys in order, for the diff: the API server writes labels and
 * annotations (Go maps) sorted, and an order of keys is no difference.
 */
function keysSorted(v: unknown, depth = 0): unknown {
  if (depth > 200) return v;
  if (Array.isArray(v)) return v.map((x) => keysSorted(x, depth + 1));
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    out[k] = keysSorted(x, depth + 1);
  return out;
}

function label(e: CompareEntry): string {
  return `${quoteName(e.kind)}/${quoteName(e.name)} (namespace ${quoteName(e.namespace)})`;
}

function sideText(s: Side): string {
  switch (s.answer) {
    case "refused":
      return `refused: ${quote(s.message ?? "", 500)}`;
    case "invalid-patch":
      return `a patch that does not apply: ${s.message ?? ""}`;
    case "injected":
      return `injected (${s.patchOperations} patch operations)`;
    case "unchanged":
      return "allowed unchanged";
  }
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function summaryOf(e: CompareEntry): string {
  let out = `${label(e)}: ${RESULT_TEXT[e.result]}`;
  if (e.result === "different" || e.result === "equivalent") {
    const harmless = e.differencesTotal - e.differencesEssential;
    out +=
      e.result === "equivalent"
        ? `: ${plural(e.differencesTotal, "difference")} that ${e.differencesTotal === 1 ? "changes" : "change"} nothing\n`
        : `: ${plural(e.differencesEssential, "difference")}${harmless ? ` (and ${harmless} that change nothing)` : ""}\n`;
  } else out += "\n";
  if (e.result !== "identical" && e.result !== "equivalent") {
    if (e.istiod.answer !== "injected" || e.ours.answer !== "injected" || e.result !== "different") {
      out += `  istiod: ${sideText(e.istiod)}\n`;
      out += `  ours:   ${sideText(e.ours)}\n`;
    }
  }
  const shownItems = e.differences.slice(0, SUMMARY_DIFFERENCES);
  for (const d of shownItems) {
    out += `  ${d.path}: ours ${shown(d.ours)}, istiod ${shown(d.istiod)}`;
    out += d.equivalent ? ` (${d.equivalent})\n` : "\n";
  }
  const more = e.differencesTotal - shownItems.length;
  if (more > 0) out += `  … and ${more} more (-o json lists ${e.differences.length}; -o diff shows the whole Pods)\n`;
  return out;
}

/** The count line of the summary. */
export function countLine(entries: readonly CompareEntry[], comparedWith: string): string {
  const counts = new Map<CompareResult, number>();
  for (const e of entries) counts.set(e.result, (counts.get(e.result) ?? 0) + 1);
  const parts = [...counts].map(([r, n]) => `${n} ${RESULT_TEXT[r]}`);
  return `${plural(entries.length, "Pod")} compared with ${comparedWith}: ${parts.join(", ")}\n`;
}

export function formatCompare(entries: readonly CompareEntry[], format: CompareFormat, comparedWith: string): string {
  switch (format) {
    case "json":
      return `${JSON.stringify({ comparedWith, items: entries }, null, 2)}\n`;
    case "yaml":
      return stringify({ comparedWith, items: entries });
    case "summary":
      return entries.map(summaryOf).join("") + countLine(entries, comparedWith);
    case "diff":
      return entries
        .map((e) => {
          const pods = storedPodsOf(e);
          const refusal =
            e.ours.answer === "refused" || e.istiod.answer === "refused"
              ? `# ${label(e)}: ${RESULT_TEXT[e.result]}\n#   istiod: ${sideText(e.istiod)}\n#   ours:   ${sideText(e.ours)}\n`
              : "";
          if (refusal || pods === undefined) return refusal || `# ${label(e)}: ${RESULT_TEXT[e.result]}\n`;
          const d = unifiedDiff(
            yamlText(keysSorted(pods.istiod)),
            yamlText(keysSorted(pods.ours)),
            `${label(e)} by istiod`,
            `${label(e)} by sidecar-injector`,
          );
          const invalid = [e.istiod, e.ours]
            .map((s, i) => (s.answer === "invalid-patch" ? `# ${i === 0 ? "istiod" : "ours"}: ${sideText(s)}\n` : ""))
            .join("");
          return invalid + (d || `# ${label(e)}: ${RESULT_TEXT[e.result]}\n`);
        })
        .join("");
  }
}
