// The golden cases of test/golden: NAME.yaml, with NAME.config.yaml when present.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { Pod } from "../../src/kube/types.js";
import { podOf, type DocumentPod } from "../../src/injection/workloads.js";
import { parseManifest } from "../../src/manifest.js";

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

/** The Pod a workload's controller would create from its template, as the API server sends it. */
export function podAsCreated(kind: string, name: string, template: Pod): Pod {
  const meta = { ...(template.metadata ?? {}) };
  const own = (apiVersion: string, ownerKind: string, ownerName: string, labels: Record<string, string> = {}): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...meta,
      generateName: `${ownerName}-`,
      // No labels map where the template has none and the controller adds none (Istio's cronjob).
      ...(meta.labels || Object.keys(labels).length ? { labels: { ...(meta.labels ?? {}), ...labels } } : {}),
      ownerReferences: [
        { apiVersion, kind: ownerKind, name: ownerName, uid: "00000000-0000-0000-0000-000000000000", controller: true },
      ],
    },
    spec: template.spec,
  });
  switch (kind) {
    case "Deployment":
      return own("apps/v1", "ReplicaSet", `${name}-5f6b7c8d9`, { "pod-template-hash": "5f6b7c8d9" });
    case "CronJob":
      return own("batch/v1", "Job", `${name}-29012345`);
    case "DeploymentConfig":
      return own("v1", "ReplicationController", `${name}-1`, { deploymentconfig: name });
    case "Job":
      return own("batch/v1", "Job", name);
    case "ReplicationController":
      return own("v1", "ReplicationController", name);
    default:
      return own("apps/v1", kind, name);
  }
}

/** The Pods of a golden case's input, as given (in the order the CLI injects them). */
export function inputPods(name: string): DocumentPod[] {
  const flat = (d: unknown): unknown[] => {
    const list = d as { kind?: string; items?: unknown[] };
    return list?.kind === "List" && Array.isArray(list.items) ? list.items.flatMap(flat) : [d];
  };
  return parseManifest(goldenInput(name), name)
    .flatMap(flat)
    .flatMap((d) => podOf(d, "default") ?? []);
}
