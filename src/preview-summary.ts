// `preview -o summary` (the default on a terminal): each Pod or workload in a few lines, the
// decision and its reasons, what would be added, what the init container captures, and the
// warnings or the refusal, and which injector takes the Pod with the chart's policy mode on
// ("policy mode: handled by the MutatingAdmissionPolicy" or "policy mode: falls to the webhook:
// <reason>"); the full answer (patch, object) stays behind -o json|yaml|diff.
import type { PreviewEntry } from "./preview.js";
import { quoteName } from "./injection/quote.js";
import { verdictText } from "./policy/verdict.js";

function added(entry: PreviewEntry): string | undefined {
  const containers = entry.patch
    .filter(
      (op) =>
        op.op === "add" &&
        /^\/spec\/(template\/spec\/|jobTemplate\/spec\/template\/spec\/)?(initContainers|containers)(\/\d+|\/-)?$/.test(
          op.path,
        ),
    )
    .flatMap((op) => {
      const v: unknown = "value" in op ? op.value : undefined;
      const list = Array.isArray(v) ? v : [v];
      return list.flatMap((c: unknown) =>
        typeof c === "object" && c !== null && "name" in c && typeof c.name === "string" ? [c.name] : [],
      );
    });
  if (entry.patch.length === 0) return undefined;
  const image = entry.proxy ? `, proxy image ${entry.proxy.image}${entry.proxy.native ? " (native sidecar)" : ""}` : "";
  return `adds ${containers.length > 0 ? containers.join(", ") : "no container"}${image}; ${entry.patch.length} patch operation(s)`;
}

export function formatPreviewSummary(entries: readonly PreviewEntry[]): string {
  let out = "";
  for (const e of entries) {
    const verdict = e.error ? "refused" : e.decision.inject ? "injected" : "not injected";
    out += `${quoteName(e.kind)}/${quoteName(e.name)} (namespace ${quoteName(e.namespace)}): ${verdict}\n`;
    for (const r of e.decision.reasons) out += `  - ${r}\n`;
    const error = e.error;
    if (error && !e.decision.reasons.some((r) => r.includes(error.message))) out += `  error: ${error.message}\n`;
    // An older server's answer has no policyMode: nothing is said.
    if (e.policyMode) out += `  policy mode: ${verdictText(e.policyMode)}\n`;
    const adds = e.decision.inject && !e.error ? added(e) : undefined;
    if (adds) out += `  ${adds}\n`;
    if (e.decision.inject && !e.error) for (const line of e.interception.summary) out += `  ${line}\n`;
    for (const w of e.warnings) out += `  warning: ${w}\n`;
  }
  if (entries.length === 0) out += "no Pod or workload in the input\n";
  return out;
}
