import type { Config } from "../config/types.js";
import type { Pod } from "../kube/types.js";
import type { InjectContext, InjectResult } from "./types.js";

// PLACEHOLDER while the engine is written: decides nothing.
export function inject(pod: Pod, _ctx: InjectContext, _config: Config): InjectResult {
  return { decision: { inject: false, reasons: ["engine not yet written"] }, patch: [], pod, warnings: [] };
}
