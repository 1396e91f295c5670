// The Pods of the golden cases, of the differential corpus and made ones, as their
// controllers would create them, grouped by config, with whether each is in the policy's domain (and why not).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { Pod } from "../../src/kube/types.js";
import { podOf } from "../../src/injection/workloads.js";
import { parseManifest } from "../../src/manifest.js";
import { outsideDomain } from "../../src/policy/domain.js";
import { PolicyRenderError } from "../../src/policy/errors.js";
import { renderPolicy, type PolicyOptions, type RenderedPolicy } from "../../src/policy/render.js";
import { goldenCases, goldenInput, podAsCreated } from "../golden/cases.js";
import { loadCorpus } from "../differential/corpus.js";
import { PROBE_CASES } from "./policy-probe-pods.js";
import { PROMETHEUS_CASES } from "./policy-prometheus-pods.js";
import { RESOURCE_CASES } from "./policy-resource-pods.js";
import { TRAFFIC_CASES } from "./policy-traffic-pods.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface CorpusPod {
  /** Case and document, for messages. */
  readonly id: string;
  readonly namespace: string;
  /** As its controller would send it (generateName and an owner for a workload's Pod). */
  readonly pod: Pod;
  /** Undefined when the policy covers it; else why it falls to the webhook. */
  readonly outside: string | undefined;
}

export interface ConfigGroup {
  readonly configText: string;
  readonly config: Config;
  /** The policy for this config, or why the config cannot be one. */
  readonly rendered: RenderedPolicy | string;
  readonly pods: CorpusPod[];
}

function flat(d: unknown): unknown[] {
  const list = d as { kind?: string; items?: unknown[] };
  return list?.kind === "List" && Array.isArray(list.items) ? list.items.flatMap(flat) : [d];
}

function podsOf(id: string, manifest: string): { id: string; namespace: string; pod: Pod }[] {
  return parseManifest(manifest, id)
    .flatMap(flat)
    .flatMap((d) => podOf(d, "default") ?? [])
    .map((dp, i) => ({
      id: `${id}#${i + 1} ${dp.kind}/${dp.name}`,
      namespace: dp.namespace,
      pod: dp.kind === "Pod" ? dp.pod : podAsCreated(dp.kind, dp.name, dp.pod),
    }));
}

function group(
  configText: string,
  source: string,
  options: PolicyOptions,
  cases: { id: string; manifest: string }[],
): ConfigGroup {
  const config = parseConfig(configText, source);
  let rendered: RenderedPolicy | string;
  try {
    rendered = renderPolicy(config, options);
  } catch (e) {
    if (!(e instanceof PolicyRenderError)) throw e;
    rendered = e.message;
  }
  const pods = cases.flatMap((c) => {
    let found: ReturnType<typeof podsOf>;
    try {
      found = podsOf(c.id, c.manifest);
    } catch {
      return [];
    }
    return found.map((p) => ({
      ...p,
      outside: typeof rendered === "string" ? `the config: ${rendered}` : outsideDomain(rendered.rules, p.pod),
    }));
  });
  return { configText, config, rendered, pods };
}

/** The golden cases, one group per config file text. */
export function goldenGroups(options: PolicyOptions): ConfigGroup[] {
  const byConfig = new Map<string, { id: string; manifest: string }[]>();
  for (const name of goldenCases()) {
    const file = join(ROOT, "test", "golden", name.replace(/\.yaml$/, ".config.yaml"));
    const text = existsSync(file) ? readFileSync(file, "utf8") : "{}\n";
    byConfig.set(text, [...(byConfig.get(text) ?? []), { id: name, manifest: goldenInput(name) }]);
  }
  return [...byConfig].map(([text, cases]) => group(text, "golden config", options, cases));
}

/** The differential corpus, under the oracle's equivalent config. */
export function differentialGroup(options: PolicyOptions): ConfigGroup {
  const file = join(ROOT, "test", "oracle", "injector-config.yaml");
  return group(readFileSync(file, "utf8"), file, options, loadCorpus());
}

/**
 * The Pods made for the probe rewrite, the annotations and the Prometheus merge
 * (policy-*-pods.ts), under the default config.
 */
export function madeGroup(options: PolicyOptions): ConfigGroup {
  return group("{}\n", "default config", options, [
    ...PROBE_CASES,
    ...RESOURCE_CASES,
    ...TRAFFIC_CASES,
    ...PROMETHEUS_CASES,
  ]);
}
