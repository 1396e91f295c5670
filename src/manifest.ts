// Manifest text in, injected manifest text out: what `inject` prints (and what the preview
// will show). YAML documents (or JSON, which is YAML) are injected in order. The text is read
// within limits (MANIFEST_LIMITS by default, see injection/yaml-limits.ts).
import { isMap, isPair, isScalar, stringify, visit, type Document } from "yaml";
import type { Config } from "./config/types.js";
import { injectDocument, type InjectedTemplate } from "./injection/workloads.js";
import {
  MANIFEST_LIMITS,
  parseYamlDocuments,
  YamlLimitError,
  YamlSyntaxError,
  type YamlLimits,
} from "./injection/yaml-limits.js";
import { yaml11Text } from "./injection/yaml11.js";

export class ManifestError extends Error {
  readonly code = "ERR_MANIFEST";
}

export const OUTPUT_FORMATS = ["yaml", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface InjectedManifest {
  readonly docs: readonly unknown[];
  readonly injected: readonly InjectedTemplate[];
}

// --- Annotation values as istioctl reads them ------------------------------------------
//
// istioctl kube-inject decodes a manifest with sigs.k8s.io/yaml into the typed object: the
// YAML is read by go-yaml v2 (YAML 1.1), and a scalar that lands in a string field (every
// annotation value) is turned into its text: `proxyCPU: 2` is "2", `inject: yes` is "true",
// `port: 0x1F` is "31", `cpu: 1e6` is "1e+06", `x: ~` is "". A quoted or block scalar is
// the string it spells. So unquoted annotation values are read here the same way, and the
// rest of the manifest as YAML 1.2 reads it (injection/yaml11.ts has go-yaml's reading).

function keyIs(node: unknown, name: string): boolean {
  return isScalar(node) && node.value === name;
}

/** Every unquoted value under a `metadata.annotations` map, as istioctl reads it. */
function annotationsAsIstioctl(doc: Document.Parsed): void {
  visit(doc, {
    Pair(_, pair, path) {
      const map = path[path.length - 1];
      const annotations = path[path.length - 2];
      const metadata = path[path.length - 4];
      if (
        !isMap(map) ||
        !isPair(annotations) ||
        !keyIs(annotations.key, "annotations") ||
        !isPair(metadata) ||
        !keyIs(metadata.key, "metadata")
      )
        return;
      const v = pair.value;
      if (v === null) pair.value = doc.createNode("");
      else if (isScalar(v) && v.type === "PLAIN" && v.tag === undefined && typeof v.source === "string")
        v.value = yaml11Text(v.source);
      return visit.SKIP;
    },
  });
}

export function parseManifest(text: string, source: string, limits: YamlLimits = MANIFEST_LIMITS): unknown[] {
  try {
    return parseYamlDocuments(text, limits, annotationsAsIstioctl);
  } catch (e) {
    if (e instanceof YamlSyntaxError)
      throw new ManifestError(`${source}: document ${e.document} is not valid YAML: ${e.message}`);
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
