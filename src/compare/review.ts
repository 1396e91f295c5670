// The AdmissionReview `preview --compare-with` sends, and how an answer to it is read.
//
// The review is what the API server sends a webhook for a Pod CREATE (admission.k8s.io/v1,
// kind Pod, resource pods, the namespace, `dryRun: true`: nothing is created), with the Pod
// as its controller would create it (podAsCreated): so istiod and this injector are asked the
// same question, the question the API server would ask them. `istioctl kube-inject` sends
// istiod a sparser review (no uid, no operation); Istio's webhook does not read those fields,
// this injector's does, and the API server always sends them.
//
// An answer is read the same way whoever wrote it (istiod, or this injector's own `admit`):
// an AdmissionReview echoing the uid, `allowed`, and a base64 JSON Patch (`patchType:
// JSONPatch`) of add/remove/replace/move/copy/test operations; else `allowed: false` and
// `status.message`. Anything else is a CompareError naming who answered and what is wrong,
// with user values quoted.
import { randomUUID } from "node:crypto";
import { quote } from "../injection/quote.js";
import { isMap } from "../injection/own.js";
import { MAX_POD_DEPTH } from "../injection/shape.js";
import { jsonPreScan, type YamlLimits } from "../injection/yaml-limits.js";
import type { ObjectMeta, Pod } from "../kube/types.js";

/** An answer that cannot be read, a peer that cannot be reached: exit 2, naming the peer. */
export class CompareError extends Error {
  readonly code = "ERR_COMPARE";
}

/** One RFC 6902 operation as an answer carries it (checked: op, path, from, value). */
export interface AnswerOperation {
  readonly op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  readonly path: string;
  readonly from?: string;
  readonly value?: unknown;
}

/** What an injector answered for one Pod. */
export type Verdict =
  | { readonly answer: "patched"; readonly patch: readonly AnswerOperation[]; readonly warnings: readonly string[] }
  | { readonly answer: "unchanged"; readonly warnings: readonly string[] }
  | { readonly answer: "refused"; readonly message: string; readonly warnings: readonly string[] };

/** Operations in one answer at most: Istio's injection is a few dozen; thousands is no answer. */
export const MAX_ANSWER_OPERATIONS = 10_000;

type Obj = Record<string, unknown>;

/**
 * The Pod a document's controller would create, as the API server sends it in the review
 * (asSerialized): a Pod as given (namespace filled in, managedFields dropped); a workload's
 * pod template with the generateName, ownerReference and labels its controller gives (a
 * Deployment's ReplicaSet
 * `<name>-<hash>` with `pod-template-hash`, a CronJob's Job `<name>-<scheduled minute>`, a
 * DeploymentConfig's ReplicationController `<name>-1` with `deploymentconfig`; a StatefulSet's
 * first Pod, `<name>-0`).
 */
export function podAsCreated(kind: string, name: string, namespace: string, given: Pod): Pod {
  const pod = asSerialized(given);
  const meta: ObjectMeta = isMap(pod.metadata) ? { ...pod.metadata } : {};
  delete meta.managedFields;
  meta.namespace = namespace;
  if (kind === "Pod") return { ...pod, apiVersion: "v1", kind: "Pod", metadata: meta };
  const owner = (
    apiVersion: string,
    ownerKind: string,
    ownerName: string,
    labels: Record<string, string> = {},
  ): Pod => {
    const given = isMap(meta.labels) ? meta.labels : undefined;
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        ...meta,
        generateName: `${ownerName}-`,
        ...(given || Object.keys(labels).length > 0 ? { labels: { ...given, ...labels } } : {}),
        ownerReferences: [
          {
            apiVersion,
            kind: ownerKind,
            name: ownerName,
            uid: "00000000-0000-0000-0000-000000000000",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      ...(pod.spec !== undefined ? { spec: pod.spec } : {}),
    };
  };
  switch (kind) {
    case "Deployment":
      return owner("apps/v1", "ReplicaSet", `${name}-5f6b7c8d9`, { "pod-template-hash": "5f6b7c8d9" });
    case "CronJob":
      return owner("batch/v1", "Job", `${name}-29012345`);
    case "DeploymentConfig":
      return owner("v1", "ReplicationController", `${name}-1`, { deploymentconfig: name });
    case "Job":
      return owner("batch/v1", "Job", name);
    case "ReplicationController":
      return owner("v1", "ReplicationController", name);
    case "StatefulSet": {
      // A StatefulSet names its Pods itself: <name>-<ordinal>, no generateName.
      const { generateName: _none, ...first } =
        owner("apps/v1", "StatefulSet", name, {
          "statefulset.kubernetes.io/pod-name": `${name}-0`,
        }).metadata ?? {};
      return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { ...first, name: `${name}-0` },
        ...(pod.spec ? { spec: pod.spec } : {}),
      };
    }
    default:
      return owner("apps/v1", kind, name);
  }
}

/**
 * The Pod as the API server writes it into a review: every container with its `resources`
 * (a struct Go always writes, `{}` when empty). Istio's patch is the difference between two
 * such serializations, so it may add `/spec/containers/0/resources/limits`: it applies to the
 * Pod the API server sent, and must apply to the Pod sent here.
 */
function asSerialized(pod: Pod): Pod {
  const spec = pod.spec;
  if (!isMap(spec)) return pod;
  const lists: Obj = {};
  for (const key of ["initContainers", "containers", "ephemeralContainers"]) {
    const list = spec[key];
    if (!Array.isArray(list)) continue;
    lists[key] = list.map((c: unknown) => (isMap(c) && !("resources" in c) ? { ...c, resources: {} } : c));
  }
  return { ...pod, spec: { ...spec, ...lists } };
}

/** A Pod CREATE review for `pod` in `namespace`, with a fresh uid. */
export function podCreateReview(
  pod: Pod,
  namespace: string,
): {
  apiVersion: "admission.k8s.io/v1";
  kind: "AdmissionReview";
  request: Obj & { uid: string; namespace: string; object: Pod };
} {
  const gvk = { group: "", version: "v1", kind: "Pod" };
  const gvr = { group: "", version: "v1", resource: "pods" };
  const name = typeof pod.metadata?.name === "string" ? pod.metadata.name : "";
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      ...(name ? { name } : {}),
      namespace,
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object: pod,
      oldObject: null,
      dryRun: true,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function isOp(v: unknown): v is AnswerOperation["op"] {
  return typeof v === "string" && OPS.has(v);
}

/** The operations of a decoded patch, each checked; `where` names the answer. */
function readOperations(value: unknown, where: string): AnswerOperation[] {
  if (!Array.isArray(value)) throw new CompareError(`${where}: response.patch is not a JSON array of operations`);
  if (value.length > MAX_ANSWER_OPERATIONS)
    throw new CompareError(
      `${where}: response.patch has ${value.length} operations, more than the ${MAX_ANSWER_OPERATIONS} an injection can take`,
    );
  return value.map((o: unknown, i): AnswerOperation => {
    const at = `${where}: response.patch[${i}]`;
    if (!isMap(o)) throw new CompareError(`${at} is not an operation object`);
    const { op, path, from } = o;
    if (!isOp(op))
      throw new CompareError(
        `${at}.op: ${typeof op === "string" ? quote(op) : "missing"} is not a JSON Patch operation`,
      );
    if (typeof path !== "string" || (path !== "" && !path.startsWith("/")))
      throw new CompareError(`${at}.path: must be a JSON Pointer`);
    if ((op === "move" || op === "copy") && (typeof from !== "string" || (from !== "" && !from.startsWith("/"))))
      throw new CompareError(`${at}.from: must be a JSON Pointer`);
    if ((op === "add" || op === "replace" || op === "test") && !("value" in o))
      throw new CompareError(`${at}: ${op} without a value`);
    return {
      op,
      path,
      ...(typeof from === "string" ? { from } : {}),
      ...("value" in o ? { value: o.value } : {}),
    };
  });
}

function readWarnings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((w): w is string => typeof w === "string") : [];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * What an answer's JSON (and its decoded patch) may hold before it is parsed: a Pod's depth
 * and the review around it, and far more nodes than any injection adds. Past them the answer
 * is refused unread, so a hostile one cannot cost more than its (capped) bytes.
 */
const ANSWER_JSON_LIMITS: YamlLimits = {
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxDepth: MAX_POD_DEPTH + 10,
  maxNodes: 500_000,
  maxAliases: 0,
  maxDocuments: 1,
};

function parseBounded(text: string, what: string, where: string): unknown {
  try {
    jsonPreScan(text, ANSWER_JSON_LIMITS);
  } catch (e) {
    throw new CompareError(`${where}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return JSON.parse(text);
}

/**
 * Reads an answer to `sentUid`. `where` names who answered (a URL, "this injector"): every
 * error says it. Throws CompareError for anything that is not an AdmissionReview answer.
 */
export function readAnswer(text: string, sentUid: string, where: string): Verdict {
  let parsed: unknown;
  try {
    parsed = parseBounded(text, "the answer", where);
  } catch (e) {
    if (e instanceof CompareError) throw e;
    const start = text.trimStart().slice(0, 40);
    throw new CompareError(
      `${where}: the answer is not JSON${start ? ` (it starts ${quote(start)})` : " (it is empty)"}`,
    );
  }
  if (!isMap(parsed) || parsed.kind !== "AdmissionReview")
    throw new CompareError(`${where}: the answer is not an AdmissionReview`);
  const { response } = parsed;
  if (!isMap(response)) throw new CompareError(`${where}: the AdmissionReview has no response`);
  if (response.uid !== sentUid)
    throw new CompareError(
      `${where}: the response's uid ${typeof response.uid === "string" ? quote(response.uid) : "(none)"} is not the request's ${sentUid}`,
    );
  if (typeof response.allowed !== "boolean") throw new CompareError(`${where}: response.allowed is not true or false`);
  const warnings = readWarnings(response.warnings);
  if (!response.allowed) {
    const status = isMap(response.status) ? response.status : {};
    const message = typeof status.message === "string" ? status.message : "(no message)";
    return { answer: "refused", message, warnings };
  }
  if (response.patch === undefined || response.patch === null || response.patch === "")
    return { answer: "unchanged", warnings };
  if (response.patchType !== "JSONPatch")
    throw new CompareError(
      `${where}: response.patchType is ${typeof response.patchType === "string" ? quote(response.patchType) : "missing"}, not JSONPatch`,
    );
  if (typeof response.patch !== "string" || !BASE64.test(response.patch))
    throw new CompareError(`${where}: response.patch is not base64`);
  let ops: unknown;
  try {
    ops = parseBounded(Buffer.from(response.patch, "base64").toString("utf8"), "response.patch", where);
  } catch (e) {
    if (e instanceof CompareError) throw e;
    throw new CompareError(`${where}: response.patch is not base64 of JSON`);
  }
  const patch = readOperations(ops, where);
  return patch.length === 0 ? { answer: "unchanged", warnings } : { answer: "patched", patch, warnings };
}
