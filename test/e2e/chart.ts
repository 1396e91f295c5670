// Our chart rendered by helm for an injector that runs beside the test API server, not in it:
// `tls.mode=secret` (the test issues the certificates), the webhooks calling the injector's URL
// with the test CA as caBundle, the fullname sidecar-injector, plus the arguments a test adds.
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { Cluster } from "./cluster.js";

export const CHART = join(resolve(dirname(fileURLToPath(import.meta.url)), "..", ".."), "charts", "sidecar-injector");
/** The namespace the chart is rendered for. */
export const OWN_NAMESPACE = "sidecar-injector-system";

type Obj = Record<string, unknown>;

/** The chart's documents, rendered with `helm template` for `url` (…/inject) and `caPem`. */
export async function renderChartForUrl(
  cluster: Cluster,
  opts: { readonly url: string; readonly caPem: string; readonly extra?: readonly string[] },
): Promise<Obj[]> {
  const r = await cluster.helm([
    "template",
    "sidecar-injector",
    CHART,
    "--namespace",
    OWN_NAMESPACE,
    "--set",
    "tls.mode=secret",
    "--set",
    `webhook.url=${opts.url}`,
    "--set",
    `webhook.caBundle=${Buffer.from(opts.caPem).toString("base64")}`,
    "--set",
    "fullnameOverride=sidecar-injector",
    ...(opts.extra ?? []),
  ]);
  assert.equal(r.code, 0, r.stderr);
  return parseAllDocuments(r.stdout).flatMap((d): Obj[] => {
    const o: unknown = d.toJS();
    return o !== null && typeof o === "object" && !Array.isArray(o) ? [o as Obj] : [];
  });
}

/** The chart's MutatingWebhookConfiguration among `docs`. */
export function webhookConfigOf(docs: readonly Obj[]): Obj {
  const mwc = docs.find((d) => d.kind === "MutatingWebhookConfiguration");
  assert.ok(mwc, "the chart renders a MutatingWebhookConfiguration");
  return mwc;
}
