// Manifest text in, injected manifest text out: what `inject` prints (and what the preview
// will show). YAML documents (or JSON, which is YAML) are injected in order. The text is read
// within limits (MANIFEST_LIMITS by default, see injection/yaml-limits.ts).
import { isMap, isPair, isScalar, isSeq, stringify, visit, type Document, type Node } from "yaml";
import type { Config } from "./config/types.js";
import { injectDocument, WORKLOAD_KINDS, type InjectedTemplate } from "./injection/workloads.js";
import {
  MANIFEST_LIMITS,
  parseYamlDocuments,
  YamlLimitError,
  YamlSyntaxError,
  type YamlLimits,
} from "./injection/yaml-limits.js";
import { resolveYaml11, yaml11Text } from "./injection/yaml11.js";

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

// --- Workloads as istioctl reads them ---------------------------------------------------
//
// The same goes for the rest of a Pod or workload: kube-inject decodes it into its Go type,
// reading every plain scalar by YAML 1.1 rules, and prints what it decoded. Where that gives
// another value than YAML 1.2 and the field's Go type is known, it is read as Go reads it:
// - a number is YAML 1.1's: `defaultMode: 0400` is the octal mode 256 (YAML 1.2 reads the
//   decimal 400, the mode 0620); in a numeric field (NUMBER_FIELDS) so is a scalar only YAML 1.1
//   reads as a number: `containerPort: 8_080` is 8080;
// - a boolean field (BOOL_FIELDS) takes YAML 1.1's booleans: `readOnly: yes` is true;
// - a string field (an env value, a command or args item, a label or node selector value, and
//   every string field the engine reads: STRING_FIELDS) takes the scalar's text: `value: true`
//   is "true", `value: 0755` is "493", `image: 5` is "5", `mountPath: 1_000` is "1000".
// A word YAML 1.1 reads as a boolean (`y`, `on`) in a field of another type keeps its YAML 1.2
// reading, a string. Other documents (and quoted or block scalars anywhere) are read as YAML
// 1.2 reads them.

const WORKLOAD_KIND_SET: ReadonlySet<string> = new Set(WORKLOAD_KINDS);

/** Maps whose values are Go strings (map[string]string; `selector`: a ReplicationController's). */
const STRING_MAPS: ReadonlySet<string> = new Set(["labels", "matchLabels", "nodeSelector", "selector"]);
/** The boolean fields of a Pod (and of a workload's spec): YAML 1.1's `yes`/`on` are booleans there. */
const BOOL_FIELDS: ReadonlySet<string> = new Set([
  "allowPrivilegeEscalation",
  "automountServiceAccountToken",
  "enableServiceLinks",
  "hostIPC",
  "hostNetwork",
  "hostPID",
  "hostUsers",
  "manualSelector",
  "optional",
  "paused",
  "privileged",
  "readOnly",
  "readOnlyRootFilesystem",
  "runAsNonRoot",
  "setHostnameAsFQDN",
  "shareProcessNamespace",
  "stdin",
  "stdinOnce",
  "suspend",
  "tty",
]);
/**
 * Fields whose Go type is a number (or IntOrString, as a port): a plain scalar YAML 1.1 reads
 * as a number where YAML 1.2 reads a string (`8_080`, `0b1010`) is that number.
 */
const NUMBER_FIELDS: ReadonlySet<string> = new Set([
  "activeDeadlineSeconds",
  "backoffLimit",
  "completions",
  "containerPort",
  "defaultMode",
  "expirationSeconds",
  "failureThreshold",
  "fsGroup",
  "hostPort",
  "initialDelaySeconds",
  "minReadySeconds",
  "mode",
  "parallelism",
  "periodSeconds",
  "port",
  "priority",
  "progressDeadlineSeconds",
  "replicas",
  "revisionHistoryLimit",
  "runAsGroup",
  "runAsUser",
  "seconds",
  "startingDeadlineSeconds",
  "successThreshold",
  "terminationGracePeriodSeconds",
  "timeoutSeconds",
  "ttlSecondsAfterFinished",
]);

/**
 * Fields that are Go strings wherever they occur in a workload, among them every string field
 * the engine reads (injection/shape.ts): a number or boolean there is its text, as
 * sigs.k8s.io/yaml writes a scalar into a string field, not a value of the wrong type.
 */
const STRING_FIELDS: ReadonlySet<string> = new Set([
  "apiVersion",
  "generateName",
  "host",
  "hostIP",
  "image",
  "imagePullPolicy",
  "kind",
  "mountPath",
  "name",
  "namespace",
  "path",
  "protocol",
  "restartPolicy",
  "scheme",
  "service",
  "uid",
]);

/** Lists whose items are Go strings. */
const STRING_LISTS: ReadonlySet<string> = new Set(["command", "args"]);

/** The keys of the pairs on the way to a node (its own key last). */
function keysOn(path: readonly unknown[]): string[] {
  const keys: string[] = [];
  for (const p of path) if (isPair(p) && isScalar(p.key)) keys.push(String(p.key.value));
  return keys;
}

/** Every unquoted value of one workload (annotations aside, read above), as kube-inject reads it. */
function workloadAsIstioctl(node: Node): void {
  visit(node, {
    Scalar(at, scalar, path) {
      if (at === "key" || scalar.type !== "PLAIN" || scalar.tag !== undefined || typeof scalar.source !== "string")
        return;
      const keys = keysOn(path);
      const parentKey = keys[keys.length - 2];
      if (at === "value" && parentKey === "annotations") return;
      const inList = typeof at === "number";
      const ownKey = keys[keys.length - 1];
      const text =
        (inList && ownKey !== undefined && STRING_LISTS.has(ownKey)) ||
        (at === "value" && parentKey !== undefined && STRING_MAPS.has(parentKey)) ||
        (at === "value" && ownKey === "value" && (parentKey === "env" || parentKey === "httpHeaders")) ||
        (at === "value" &&
          ownKey !== undefined &&
          STRING_FIELDS.has(ownKey) &&
          // null stays null: some are pointers (a gRPC probe's `service`), which Go leaves nil.
          resolveYaml11(scalar.source).tag !== "null");
      if (text) {
        scalar.value = yaml11Text(scalar.source);
        return;
      }
      const r = resolveYaml11(scalar.source);
      if (r.tag === "bool" && at === "value" && ownKey !== undefined && BOOL_FIELDS.has(ownKey)) scalar.value = r.value;
      else if (typeof scalar.value === "number" && r.tag === "int") {
        const n = Number(r.value);
        if (Number.isSafeInteger(n)) scalar.value = n;
      } else if (typeof scalar.value === "number" && r.tag === "float") scalar.value = r.value;
      else if (
        typeof scalar.value === "string" &&
        at === "value" &&
        ownKey !== undefined &&
        NUMBER_FIELDS.has(ownKey)
      ) {
        if (r.tag === "int" && Number.isSafeInteger(Number(r.value))) scalar.value = Number(r.value);
        else if (r.tag === "float") scalar.value = r.value;
      }
    },
  });
}

/** The workloads of a document (itself, or a List's items), each read as kube-inject reads it. */
function workloadsAsIstioctl(doc: Document.Parsed): void {
  const kindOf = (n: unknown): unknown => (isMap(n) ? n.get("kind") : undefined);
  const root = doc.contents;
  if (!isMap(root)) return;
  const kind = kindOf(root);
  if (typeof kind === "string" && WORKLOAD_KIND_SET.has(kind)) workloadAsIstioctl(root);
  else if (kind === "List") {
    const items = root.get("items", true);
    if (isSeq(items))
      for (const item of items.items) {
        const k = kindOf(item);
        if (isMap(item) && typeof k === "string" && WORKLOAD_KIND_SET.has(k)) workloadAsIstioctl(item);
      }
  }
}

function asIstioctl(doc: Document.Parsed): void {
  annotationsAsIstioctl(doc);
  workloadsAsIstioctl(doc);
}

export function parseManifest(text: string, source: string, limits: YamlLimits = MANIFEST_LIMITS): unknown[] {
  try {
    return parseYamlDocuments(text, limits, asIstioctl);
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
  // Written for readers of YAML 1.1 (kubectl, istioctl: go-yaml), as Go's own YAML is: a string
  // those would read as something else (`yes`, `on`, `1_000`, `2024-01-01`) is quoted.
  return docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false, version: "1.1" })).join("---\n");
}
