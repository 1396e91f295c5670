// The shape of the Pod, checked once at the engine's entry, for exactly the fields the engine
// reads: metadata name, generateName, namespace, labels, annotations, ownerReferences; spec
// containers and initContainers (name, image, args, command, env, ports, resources, probes,
// lifecycle hooks, securityContext, volumeMounts, restartPolicy, imagePullPolicy), volumes,
// imagePullSecrets, hostNetwork, securityContext. A wrong type is refused with ERR_INVALID_POD
// and a message naming the field by its JSON path and what it must be:
// `spec.containers[0].ports: must be a list`. Fields the engine does not read are carried
// through unlooked-at.
//
// null follows the API server's decoder (Go's encoding/json, which Kubernetes uses): a null
// map, list, object or optional scalar is the field left out, so it is treated as absent (a
// YAML `labels:` with nothing after it is such a null); a null label or annotation value is
// the empty string, as the decoder stores it.
//
// A field Go decodes to its zero value when it is missing or null is read as that value, never
// refused: a name is "", a port 0, a null list item the empty object (a container without a
// name), a null string in a list "", a null quantity 0, a Pod without containers has none.
// That is what the API server sends the webhook for such a Pod (it decodes the Pod before
// admission, and validates it after), and what Istio's injector reads and injects; the API
// server's validation, not the injector, then says what is wrong with it. The value is filled
// in (copy-on-write), so the engine reads the Pod Go decodes.
//
// Whatever its fields, a Pod may nest no deeper than MAX_POD_DEPTH levels: the engine carries
// the fields it does not read into the patch, and serialising one thousands of levels deep
// overflows the stack (the API server's typed Pod nests a dozen levels).
//
// One walk does both: each reader is given the levels its value may still nest, and the fields
// it does not read are walked for depth only, so every key of the Pod is enumerated once (a map
// of 400 000 labels is costly to enumerate: V8 sorts a large map's keys each time). When the
// walk finds something wrong, the Pod is walked again for depth alone, so that a Pod both too
// deep and of a wrong type is refused for its depth, at the first too-deep path, as before.
//
// The walk is linear in the Pod, builds a field's path only when refusing it, and
// copies nothing unless it drops a null: then only the objects on the way to it are copied
// (copy-on-write), so the common Pod comes back as the very object given, now typed.
import type { Container, Pod } from "../kube/types.js";
import { isMap, setOwn } from "./own.js";
import { quote } from "./quote.js";
import { InjectionError } from "./types.js";

type Rec = Record<string, unknown>;
/**
 * Reads one value: the value itself, a copy without nulls, or undefined for absent; throws
 * Wrong, or TOO_DEEP when an object in it is more than `room` levels down (the value itself
 * being the first). `room` is Infinity where depth is not checked.
 */
type Reader = (value: unknown, room: number) => unknown;
type Fields = Readonly<Record<string, Reader>>;

/**
 * A wrong type, thrown by the reader that finds it. Its JSON path is put together on the way
 * out, each enclosing object or list adding its segment, so that the common case (nothing
 * wrong) builds no path strings at all.
 */
class Wrong {
  /** Path segments, innermost first: ".ports", "[0]", ".containers", ".spec". */
  readonly segments: string[] = [];
  constructor(readonly what: string) {}

  path(root: string): string {
    const inner = this.segments.reverse().join("");
    if (root !== "") return `${root}${inner}`;
    return inner.startsWith(".") ? inner.slice(1) : inner;
  }
}

/** Thrown by the walk when something nests deeper than its room; the path is found after. */
const TOO_DEEP = new (class TooDeep {})();

const absent = (v: unknown): v is null | undefined => v === undefined || v === null;

const str: Reader = (v) => {
  if (absent(v)) return undefined;
  if (typeof v !== "string") throw new Wrong("a string");
  return v;
};

/** A string Go decodes as "" when missing or null (a name, which Kubernetes' validation requires). */
const name: Reader = (v) => {
  if (absent(v)) return "";
  if (typeof v !== "string") throw new Wrong("a string");
  return v;
};

const bool: Reader = (v) => {
  if (absent(v)) return undefined;
  if (typeof v !== "boolean") throw new Wrong("true or false");
  return v;
};

const int: Reader = (v) => {
  if (absent(v)) return undefined;
  if (!Number.isSafeInteger(v)) throw new Wrong("a whole number");
  return v;
};

/** A number Go decodes as 0 when missing or null (a containerPort, a gRPC probe's port). */
const requiredInt: Reader = (v) => {
  if (absent(v)) return 0;
  if (!Number.isSafeInteger(v)) throw new Wrong("a whole number");
  return v;
};

/**
 * A port by number or by the name of a container port, as probes and hooks give it (Go's
 * IntOrString: 0 when missing or null; "" is a name, as it decodes).
 */
const portRef: Reader = (v) => {
  if (absent(v)) return 0;
  if (Number.isSafeInteger(v) || typeof v === "string") return v;
  throw new Wrong("a port number or a port name");
};

/**
 * The object (`room` levels left for it) with each of its fields that has a reader read, and
 * every other field checked for depth only; a field whose reading changed it makes a copy. The
 * object's own keys are walked, not the readers' (a container has a dozen fields of the fifteen
 * read: each absent one would be a lookup that misses); a field Go decodes to a zero value
 * that is not there is then filled in with it. The fields are the object's enumerable ones,
 * all that JSON and YAML make; when several are wrong, the first in the object's order is named.
 */
function fields(o: Rec, readers: FieldList, room: number): Rec {
  if (room <= 0) throw TOO_DEEP;
  const { byName, zeros } = readers;
  let out = o;
  let zerosSeen = 0;
  for (const key in o) {
    const before = o[key];
    const read = byName.get(key);
    if (read === undefined) {
      // A scalar first: most unread fields are, and need no walk.
      if (room !== Infinity && typeof before === "object" && before !== null && deeper(before, room - 1) !== undefined)
        throw TOO_DEEP;
      continue;
    }
    if (zeros.includes(key)) zerosSeen++;
    let after: unknown;
    try {
      after = read(before, room - 1);
    } catch (e) {
      if (e instanceof Wrong) e.segments.push(`.${key}`);
      throw e;
    }
    if (after === before) continue;
    if (out === o) out = { ...o };
    if (after === undefined) delete out[key];
    else out[key] = after;
  }
  if (zerosSeen < zeros.length)
    for (const key of zeros) {
      if (Object.hasOwn(o, key)) continue;
      if (out === o) out = { ...o };
      out[key] = byName.get(key)?.(undefined, room - 1);
    }
  return out;
}

/**
 * An object's readers by name, and the names of those that read a missing field as a zero
 * value (found by asking each: readers are pure).
 */
interface FieldList {
  readonly byName: ReadonlyMap<string, Reader>;
  readonly zeros: readonly string[];
}

function fieldList(readers: Fields): FieldList {
  const byName = new Map(Object.entries(readers));
  const zeros = [...byName].filter(([, read]) => read(undefined, Infinity) !== undefined).map(([key]) => key);
  return { byName, zeros };
}

/** An optional object (null: absent). */
function object(readers: Fields = {}): Reader {
  const list = fieldList(readers);
  return (v, room) => {
    if (absent(v)) return undefined;
    if (!isMap(v)) throw new Wrong("an object");
    return fields(v, list, room);
  };
}

/** A list item or a struct field: an object, missing or null being the empty object Go decodes. */
function item(readers: Fields = {}): Reader {
  const list = fieldList(readers);
  return (v, room) => {
    if (absent(v)) return fields({}, list, room);
    if (!isMap(v)) throw new Wrong("an object");
    return fields(v, list, room);
  };
}

function readList(v: unknown, each: Reader, room: number): unknown[] {
  if (!Array.isArray(v)) throw new Wrong("a list");
  if (room <= 0) throw TOO_DEEP;
  let out: unknown[] = v;
  for (let i = 0; i < v.length; i++) {
    const before: unknown = v[i];
    let after: unknown;
    try {
      after = each(before, room - 1);
    } catch (e) {
      if (e instanceof Wrong) e.segments.push(`[${i}]`);
      throw e;
    }
    if (after === before) continue;
    if (out === v) out = [...v];
    out[i] = after;
  }
  return out;
}

/** An optional list (null: absent) whose every item is read by `each`. */
function list(each: Reader): Reader {
  return (v, room) => (absent(v) ? undefined : readList(v, each, room));
}

const strings = list((v) => {
  if (v === null) return "";
  if (typeof v !== "string") throw new Wrong("a string");
  return v;
});

/** A wrong value in a map, its key quoted (keys are user data, of any length). */
function wrongEntry(key: string, what: string): Wrong {
  const w = new Wrong(what);
  w.segments.push(`[${quote(key)}]`);
  return w;
}

/** A map of strings (labels, annotations); a null value is the empty string, as the API server stores it. */
const stringMap: Reader = (v, room) => {
  if (absent(v)) return undefined;
  if (!isMap(v)) throw new Wrong("a map of strings");
  if (room <= 0) throw TOO_DEEP;
  let out = v;
  for (const key of Object.keys(v)) {
    const value = v[key];
    if (typeof value === "string") continue;
    if (value !== null) throw wrongEntry(key, "a string");
    if (out === v) out = { ...v };
    setOwn(out, key, "");
  }
  return out;
};

/** requests / limits: resource name to quantity ("100m", "1Gi", or a number). */
const quantities: Reader = (v, room) => {
  if (absent(v)) return undefined;
  if (!isMap(v)) throw new Wrong("a map of quantities");
  if (room <= 0) throw TOO_DEEP;
  let out = v;
  for (const key of Object.keys(v)) {
    const q = v[key];
    if (typeof q === "string" || typeof q === "number") continue;
    if (q !== null) throw wrongEntry(key, "a quantity (for example 100m or 1Gi)");
    // Go decodes a null quantity as the zero quantity.
    if (out === v) out = { ...v };
    setOwn(out, key, "0");
  }
  return out;
};

const httpGet = object({
  port: portRef,
  path: str,
  host: str,
  scheme: str,
  httpHeaders: list(item({ name: str, value: str })),
});
const tcpSocket = object({ port: portRef, host: str });
const exec = object({ command: strings });

const probe = object({
  httpGet,
  tcpSocket,
  grpc: object({ port: requiredInt, service: str }),
  timeoutSeconds: int,
});
const hook = object({ httpGet, tcpSocket, exec });

const container = item({
  name,
  image: str,
  command: strings,
  args: strings,
  env: list(item({ name, value: str, valueFrom: object() })),
  ports: list(item({ containerPort: requiredInt, name: str, protocol: str, hostPort: int, hostIP: str })),
  resources: object({ requests: quantities, limits: quantities }),
  readinessProbe: probe,
  livenessProbe: probe,
  startupProbe: probe,
  lifecycle: object({ preStop: hook, postStart: hook }),
  securityContext: object(),
  volumeMounts: list(item({ name: str, mountPath: str })),
  restartPolicy: str,
  imagePullPolicy: str,
});

const containers = list(container);

/**
 * The API server's limit on all of a Pod's annotations together (keys and values, in bytes:
 * TotalAnnotationSizeLimitB). It is checked after mutating admission, so a Pod over it is
 * never created, whoever injects it. Istio's injector injects it (and the API server then
 * refuses it, saying why); we leave it alone (policy.ts), which spares the work in proportion
 * to it without being the one who refuses it.
 */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Whether the annotations are over MAX_ANNOTATIONS_BYTES in all, keys and values in UTF-8. */
export function annotationsOverLimit(annotations: Readonly<Record<string, string>> | undefined): boolean {
  if (annotations === undefined) return false;
  // A UTF-16 unit is at most 3 bytes of UTF-8: under a third of the limit in units, the bytes
  // need not be counted (the common case; counting calls into C++ for every key and value).
  const keys = Object.keys(annotations);
  let units = 0;
  for (const key of keys) units += key.length + (annotations[key]?.length ?? 0);
  if (units * 3 <= MAX_ANNOTATIONS_BYTES) return false;
  let total = 0;
  for (const key of keys) {
    const value = annotations[key];
    total += Buffer.byteLength(key) + (value === undefined ? 0 : Buffer.byteLength(value));
    if (total > MAX_ANNOTATIONS_BYTES) return true;
  }
  return false;
}

const metadata = object({
  name: str,
  generateName: str,
  namespace: str,
  labels: stringMap,
  annotations: stringMap,
  ownerReferences: list(item({ apiVersion: name, kind: name, name, uid: str, controller: bool })),
});

const spec = item({
  containers: (v, room) => (absent(v) ? [] : readList(v, container, room)),
  initContainers: containers,
  volumes: list(item({ name })),
  imagePullSecrets: list(item({ name: str })),
  hostNetwork: bool,
  securityContext: object(),
});

const pod = item({ metadata, spec });

/**
 * How deep a Pod may nest. The API server decodes Pods into their typed struct, about a dozen
 * levels deep at most; the engine carries fields it does not read into the patch, and
 * serialising a value thousands of levels deep overflows the stack.
 */
export const MAX_POD_DEPTH = 100;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The path segments (innermost first) down to a value more than `room` levels below `v`, or
 * undefined. Recursive, but never more than MAX_POD_DEPTH calls deep, however deep the input;
 * no allocation unless something is too deep.
 */
function deeper(v: object, room: number): string[] | undefined {
  if (room === 0) return [];
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x !== "object" || x === null) continue;
      const path = deeper(x, room - 1);
      if (path) return [...path, `[${i}]`];
    }
    return undefined;
  }
  if (!isMap(v)) return undefined; // not an array: a map
  const o = v;
  for (const key in o) {
    const x = o[key];
    if (typeof x !== "object" || x === null) continue;
    const path = deeper(x, room - 1);
    if (path) return [...path, IDENTIFIER.test(key) ? `.${key}` : `[${quote(key)}]`];
  }
  return undefined;
}

/**
 * The path (its first levels) of a value nested more than `levels` deep in `root` (itself the
 * first level), or undefined. Safe on any input: the recursion stops at `levels`.
 */
export function nestedDeeperThan(root: unknown, levels: number): string | undefined {
  if (typeof root !== "object" || root === null) return undefined;
  const segments = deeper(root, levels);
  if (segments === undefined) return undefined;
  const path = segments.reverse().slice(0, 4).join("");
  return path.startsWith(".") ? path.slice(1) : path;
}

/** The InjectionError naming a Wrong's field, under `root`. */
function wrongField(e: Wrong, root: string): InjectionError {
  const at = e.path(root);
  return new InjectionError("ERR_INVALID_POD", at, `${at}: must be ${e.what}`);
}

/** Runs a reader without a depth check; a Wrong becomes the InjectionError naming the field, under `root`. */
function read(reader: Reader, value: unknown, root: string): unknown {
  try {
    return reader(value, Infinity);
  } catch (e) {
    throw e instanceof Wrong ? wrongField(e, root) : e;
  }
}

/**
 * A list of containers given elsewhere than in the Pod (the overrides annotation), checked as
 * the Pod's are; `at` names it in messages. undefined when absent or null.
 */
export function readContainers(value: unknown, at: string): Container[] | undefined {
  // parse boundary: the container reader has checked every field the Container type names for the engine.
  return read(containers, value, at) as Container[] | undefined;
}

/** A Pod whose spec the engine can read. */
export type CheckedPod = Pod & { readonly spec: NonNullable<Pod["spec"]> };

/**
 * The Pod, checked for the shape of every field the engine reads, with nulls where the API
 * server reads "absent" dropped (the object given when it has none). Throws ERR_INVALID_POD
 * naming a field of a wrong type (see fields for which, when there are several).
 */
export function readPod(value: unknown): CheckedPod {
  if (!isMap(value)) throw new InjectionError("ERR_INVALID_POD", "object", "object: must be a Pod (a JSON object)");
  if (absent(value.spec))
    throw new InjectionError("ERR_INVALID_POD", "spec", "spec: must be an object with the Pod's containers");
  try {
    // parse boundary: the readers above have checked every field the Pod type names for the engine.
    return pod(value, MAX_POD_DEPTH) as CheckedPod;
  } catch (e) {
    if (e !== TOO_DEEP && !(e instanceof Wrong)) throw e;
    // Depth first, at its first path, whatever else is wrong.
    const deep = nestedDeeperThan(value, MAX_POD_DEPTH);
    if (deep !== undefined) {
      throw new InjectionError(
        "ERR_INVALID_POD",
        deep,
        `${deep}: nests deeper than ${MAX_POD_DEPTH} levels (a Pod from the API server nests a dozen)`,
      );
    }
    if (e instanceof Wrong) throw wrongField(e, "");
    throw new Error("the Pod's walk found it too deep where its depth walk did not", { cause: e });
  }
}
