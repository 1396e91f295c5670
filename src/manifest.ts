// Manifest text in, injected manifest text out: what `inject` prints (and what the preview
// will show). YAML documents (or JSON, which is YAML) are injected in order. The text is read
// within limits (MANIFEST_LIMITS by default, see injection/yaml-limits.ts).
import { stringify } from "yaml";
import type { Config } from "./config/types.js";
import { injectDocument, type InjectedTemplate } from "./injection/workloads.js";
import { MANIFEST_LIMITS, parseYamlDocuments, YamlLimitError, YamlSyntaxError, type YamlLimits } from "./injection/yaml-limits.js";

export class ManifestError extends Error {
  readonly code = "ERR_MANIFEST";
}

export const OUTPUT_FORMATS = ["yaml", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface InjectedManifest {
  readonly docs: readonly unknown[];
  readonly injected: readonly InjectedTemplate[];
}

export function parseManifest(text: string, source: string, limits: YamlLimits = MANIFEST_LIMITS): unknown[] {
  try {
    return parseYamlDocuments(text, limits);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw new ManifestError(`${source}: document ${e.document} is not valid YAML: ${e.message}`);
    if (e instanceof YamlLimitError) throw new ManifestError(`${source}: ${e.message}`);
    throw e;
  }
}

export function injectManifest(text: string, source: string, namespace: string, config: Config): InjectedManifest {
  const injected: InjectedTemplate[] = [];
  const docs = parseManifest(text, source).map((d) => injectDocument(d, namespace, config, injected).doc);
  return { docs, injected };
}

export function formatManifest(docs: readonly unknown[], format: OutputFormat): string {
  if (format === "json") {
    return `${JSON.stringify(docs.length === 1 ? docs[0] : { apiVersion: "v1", kind: "List", items: docs }, null, 2)}\n`;
  }
  return docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}
