// Every malformed shape of a field the engine reads is refused with ERR_INVALID_POD and a
// message naming the field by its JSON path; null where the API server reads "absent" is absent.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import jsonpatch from "fast-json-patch";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { annotationsOverLimit, MAX_ANNOTATIONS_BYTES, readPod } from "../../../src/injection/shape.js";
import { InjectionError } from "../../../src/injection/types.js";

const config = buildConfig({});
type Json = Record<string, unknown>;

/** A valid Pod, as JSON (so every test starts from a fresh, mutable copy). */
function base(): Json {
  return JSON.parse(
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web", namespace: "demo", labels: { app: "web" }, annotations: { team: "a" } },
      spec: {
        containers: [
          {
            name: "app",
            image: "nginx",
            ports: [{ containerPort: 80, name: "http" }],
            env: [{ name: "A", value: "1" }],
            readinessProbe: { httpGet: { path: "/ready", port: "http" } },
          },
        ],
        initContainers: [{ name: "setup", image: "busybox" }],
        volumes: [{ name: "data", emptyDir: {} }],
      },
    }),
  ) as Json;
}

/** Sets the value at a dotted path with [i] indexes, e.g. "spec.containers[0].ports". */
function set(obj: Json, path: string, value: unknown): Json {
  const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let at: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    at[k] ??= {};
    at = at[k] as Record<string, unknown>;
  }
  at[keys.at(-1) as string] = value;
  return obj;
}

const MALFORMED: readonly [path: string, value: unknown, message: string][] = [
  ["metadata", "web", "metadata: must be an object"],
  ["metadata.name", 5, "metadata.name: must be a string"],
  ["metadata.generateName", ["web-"], "metadata.generateName: must be a string"],
  ["metadata.namespace", true, "metadata.namespace: must be a string"],
  ["metadata.labels", "app=web", "metadata.labels: must be a map of strings"],
  ["metadata.labels", ["app"], "metadata.labels: must be a map of strings"],
  ["metadata.labels.app", 1, 'metadata.labels["app"]: must be a string'],
  ["metadata.annotations", 7, "metadata.annotations: must be a map of strings"],
  ["metadata.annotations.team", { a: 1 }, 'metadata.annotations["team"]: must be a string'],
  ["metadata.ownerReferences", {}, "metadata.ownerReferences: must be a list"],
  ["metadata.ownerReferences", [1], "metadata.ownerReferences[0]: must be an object"],
  ["metadata.ownerReferences", [{ kind: 1 }], "metadata.ownerReferences[0].kind: must be a string"],
  [
    "metadata.ownerReferences",
    [{ apiVersion: "v1", kind: "ReplicaSet", name: "w", controller: "yes" }],
    "metadata.ownerReferences[0].controller: must be true or false",
  ],
  ["spec", "x", "spec: must be an object"],
  ["spec", null, "spec: must be an object with the Pod's containers"],
  ["spec.containers", { name: "app" }, "spec.containers: must be a list"],
  ["spec.containers[0]", "app", "spec.containers[0]: must be an object"],
  ["spec.containers[0].image", 3, "spec.containers[0].image: must be a string"],
  ["spec.containers[0].args", "run", "spec.containers[0].args: must be a list"],
  ["spec.containers[0].args", ["run", 1], "spec.containers[0].args[1]: must be a string"],
  ["spec.containers[0].name", 3, "spec.containers[0].name: must be a string"],
  ["spec.containers[0].command", [{}], "spec.containers[0].command[0]: must be a string"],
  ["spec.containers[0].ports", "x", "spec.containers[0].ports: must be a list"],
  ["spec.containers[0].ports[0]", 80, "spec.containers[0].ports[0]: must be an object"],
  [
    "spec.containers[0].ports[0].containerPort",
    "80",
    "spec.containers[0].ports[0].containerPort: must be a whole number",
  ],
  [
    "spec.containers[0].ports[0].containerPort",
    80.5,
    "spec.containers[0].ports[0].containerPort: must be a whole number",
  ],
  ["spec.containers[0].ports[0].name", 80, "spec.containers[0].ports[0].name: must be a string"],
  ["spec.containers[0].ports[0].hostPort", "80", "spec.containers[0].ports[0].hostPort: must be a whole number"],
  ["spec.containers[0].env", { A: "1" }, "spec.containers[0].env: must be a list"],
  ["spec.containers[0].env[0]", "A=1", "spec.containers[0].env[0]: must be an object"],
  ["spec.containers[0].env[0].name", 3, "spec.containers[0].env[0].name: must be a string"],
  ["spec.containers[0].env[0].value", 1, "spec.containers[0].env[0].value: must be a string"],
  ["spec.containers[0].env[0].valueFrom", "x", "spec.containers[0].env[0].valueFrom: must be an object"],
  ["spec.containers[0].resources", "1Gi", "spec.containers[0].resources: must be an object"],
  ["spec.containers[0].resources.limits", ["1"], "spec.containers[0].resources.limits: must be a map of quantities"],
  [
    "spec.containers[0].resources.requests",
    { cpu: true },
    'spec.containers[0].resources.requests["cpu"]: must be a quantity (for example 100m or 1Gi)',
  ],
  ["spec.containers[0].readinessProbe", "x", "spec.containers[0].readinessProbe: must be an object"],
  ["spec.containers[0].readinessProbe.httpGet", [], "spec.containers[0].readinessProbe.httpGet: must be an object"],
  [
    "spec.containers[0].readinessProbe.httpGet.port",
    {},
    "spec.containers[0].readinessProbe.httpGet.port: must be a port number or a port name",
  ],
  [
    "spec.containers[0].readinessProbe.httpGet.path",
    1,
    "spec.containers[0].readinessProbe.httpGet.path: must be a string",
  ],
  [
    "spec.containers[0].readinessProbe.httpGet.httpHeaders",
    ["Host: x"],
    "spec.containers[0].readinessProbe.httpGet.httpHeaders[0]: must be an object",
  ],
  [
    "spec.containers[0].readinessProbe.timeoutSeconds",
    "1",
    "spec.containers[0].readinessProbe.timeoutSeconds: must be a whole number",
  ],
  [
    "spec.containers[0].livenessProbe.tcpSocket.port",
    1.5,
    "spec.containers[0].livenessProbe.tcpSocket.port: must be a port number or a port name",
  ],
  [
    "spec.containers[0].startupProbe.grpc",
    { port: "9090" },
    "spec.containers[0].startupProbe.grpc.port: must be a whole number",
  ],
  ["spec.containers[0].lifecycle", "x", "spec.containers[0].lifecycle: must be an object"],
  [
    "spec.containers[0].lifecycle.preStop.exec.command",
    "drain",
    "spec.containers[0].lifecycle.preStop.exec.command: must be a list",
  ],
  [
    "spec.containers[0].lifecycle.postStart.httpGet.port",
    true,
    "spec.containers[0].lifecycle.postStart.httpGet.port: must be a port number or a port name",
  ],
  ["spec.containers[0].securityContext", "root", "spec.containers[0].securityContext: must be an object"],
  ["spec.containers[0].volumeMounts", [1], "spec.containers[0].volumeMounts[0]: must be an object"],
  [
    "spec.containers[0].volumeMounts",
    [{ name: "data", mountPath: 5 }],
    "spec.containers[0].volumeMounts[0].mountPath: must be a string",
  ],
  ["spec.containers[0].restartPolicy", 1, "spec.containers[0].restartPolicy: must be a string"],
  ["spec.initContainers", "setup", "spec.initContainers: must be a list"],
  ["spec.initContainers[0].name", 1, "spec.initContainers[0].name: must be a string"],
  [
    "spec.initContainers[0].ports",
    [{ containerPort: "x" }],
    "spec.initContainers[0].ports[0].containerPort: must be a whole number",
  ],
  ["spec.volumes", "data", "spec.volumes: must be a list"],
  ["spec.volumes[0]", "data", "spec.volumes[0]: must be an object"],
  ["spec.volumes[0].name", 1, "spec.volumes[0].name: must be a string"],
  ["spec.imagePullSecrets", [{ name: 1 }], "spec.imagePullSecrets[0].name: must be a string"],
  ["spec.hostNetwork", "true", "spec.hostNetwork: must be true or false"],
  ["spec.securityContext", [], "spec.securityContext: must be an object"],
];

describe("malformed shapes are refused naming the field", () => {
  for (const [path, value, message] of MALFORMED) {
    test(`${path}: ${JSON.stringify(value)}`, () => {
      const pod = set(base(), path, value);
      assert.throws(
        () => inject(pod, { namespace: "demo" }, config),
        (e: unknown) => {
          assert.ok(e instanceof InjectionError, String(e));
          assert.equal(e.code, "ERR_INVALID_POD");
          assert.equal(e.message, message);
          assert.ok(message.startsWith(`${e.field}: `), `field ${e.field} opens the message`);
          return true;
        },
      );
    });
  }

  test("an object with two wrong fields is refused, naming one of them", () => {
    const pod = set(set(base(), "spec.containers[0].image", 3), "spec.containers[0].name", 4);
    assert.throws(
      () => inject(pod, { namespace: "demo" }, config),
      (e: unknown) =>
        e instanceof InjectionError &&
        ["spec.containers[0].image", "spec.containers[0].name"].includes(e.field ?? "") &&
        e.message.startsWith(`${e.field}: must be`),
    );
  });

  test("not an object at all", () => {
    for (const value of [null, "pod", 5, []]) {
      assert.throws(() => inject(value, { namespace: "demo" }, config), {
        code: "ERR_INVALID_POD",
        message: "object: must be a Pod (a JSON object)",
      });
    }
  });

  test("a huge map key is quoted to a bounded prefix", () => {
    const key = "k".repeat(100_000);
    const pod = set(base(), "metadata.labels", { [key]: 1 });
    assert.throws(
      () => inject(pod, { namespace: "demo" }, config),
      (e: unknown) =>
        e instanceof InjectionError && e.message.length < 200 && e.message.includes("(100000 characters)"),
    );
  });
});

/** Marks a field left out of the Pod altogether. */
const MISSING = Symbol("missing");

/**
 * Fields Go decodes to their zero value when missing or null, and values Kubernetes' validation
 * refuses but its decoder (and so Istio's injector) reads: [path, given, what the engine reads
 * there (undefined: not checked)]. The API server sends the webhook such a Pod (it validates
 * after admission), and `istioctl kube-inject` injects it: so do we, and the API server's
 * validation says what is wrong with it.
 */
const GO_ZERO_VALUES: readonly [path: string, given: unknown, read: unknown][] = [
  ["spec.containers", null, undefined],
  ["spec.containers", MISSING, undefined],
  ["spec.containers", [], undefined],
  ["spec.containers[0]", null, undefined],
  ["spec.containers[0].name", null, ""],
  ["spec.containers[0].name", "", ""],
  ["spec.containers[0].name", MISSING, ""],
  ["spec.initContainers[0].name", MISSING, ""],
  ["spec.containers[0].command", [null, "run"], ["", "run"]],
  ["spec.containers[0].ports[0]", null, { containerPort: 0 }],
  ["spec.containers[0].ports[0].containerPort", null, 0],
  ["spec.containers[0].ports[0].containerPort", MISSING, 0],
  ["spec.containers[0].env[0]", null, { name: "" }],
  ["spec.containers[0].env[0].name", "", ""],
  ["spec.containers[0].env[0].name", MISSING, ""],
  ["spec.containers[0].resources.requests", { cpu: null }, { cpu: "0" }],
  ["spec.containers[0].readinessProbe.httpGet.port", null, undefined],
  ["spec.containers[0].readinessProbe.httpGet.port", MISSING, undefined],
  ["spec.containers[0].readinessProbe.httpGet.port", "", undefined],
  ["spec.containers[0].readinessProbe.httpGet.httpHeaders", [null], undefined],
  ["spec.containers[0].livenessProbe", { tcpSocket: {} }, undefined],
  ["spec.containers[0].startupProbe", { grpc: {} }, undefined],
  ["spec.containers[0].lifecycle", { preStop: { httpGet: { port: "" } } }, undefined],
  ["spec.volumes[0]", null, { name: "" }],
  ["spec.volumes[0].name", MISSING, ""],
  ["metadata.ownerReferences", [null], [{ apiVersion: "", kind: "", name: "" }]],
  [
    "metadata.ownerReferences",
    [{ apiVersion: "apps/v1", name: "", controller: true }],
    [{ apiVersion: "apps/v1", name: "", kind: "", controller: true }],
  ],
];

/** The value at a dotted path with [i] indexes, or undefined. */
function at(obj: unknown, path: string): unknown {
  return path
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .reduce<unknown>((v, k) => (typeof v === "object" && v !== null ? (v as Json)[k] : undefined), obj);
}

describe("a field Go decodes to its zero value is read as that value, not refused", () => {
  for (const [path, given, read] of GO_ZERO_VALUES) {
    const label = given === MISSING ? "missing" : JSON.stringify(given);
    test(`${path}: ${label}`, () => {
      const pod = set(base(), path, given);
      if (given === MISSING) {
        const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
        delete (at(pod, keys.slice(0, -1).join(".")) as Json)[keys.at(-1) as string];
      }
      const snapshot = structuredClone(pod);
      const r = inject(pod, { namespace: "demo" }, config);
      assert.deepEqual(pod, snapshot, "the input is not modified");
      assert.equal(r.decision.inject, true);
      if (read !== undefined) assert.deepEqual(at(readPod(pod), path), read);
      assert.ok(r.pod.spec?.containers.some((c) => c.name === "istio-proxy"));
      // The patch applies, with validation, to the Pod as it was sent.
      jsonpatch.applyPatch(structuredClone(pod), structuredClone(r.patch) as jsonpatch.Operation[], true, false);
    });
  }
});

/** Null where the API server reads "absent": [path, what the injected Pod has there]. */
const NULL_IS_ABSENT: readonly string[] = [
  "metadata.labels",
  "metadata.annotations",
  "metadata.ownerReferences",
  "metadata.name",
  "metadata.generateName",
  "spec.initContainers",
  "spec.volumes",
  "spec.imagePullSecrets",
  "spec.hostNetwork",
  "spec.securityContext",
  "spec.containers[0].ports",
  "spec.containers[0].env",
  "spec.containers[0].image",
  "spec.containers[0].readinessProbe",
  "spec.containers[0].lifecycle",
  "spec.containers[0].resources",
  "spec.containers[0].env[0].value",
  "spec.containers[0].readinessProbe.httpGet.path",
];

describe("null is absent where the API server's decoder makes it so", () => {
  for (const path of NULL_IS_ABSENT) {
    test(`${path}: null is injected as if absent`, () => {
      const given = set(base(), path, null);
      const absent = structuredClone(given);
      const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
      let at = absent as Record<string, unknown>;
      for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
      delete at[keys.at(-1) as string];

      const snapshot = structuredClone(given);
      const r = inject(given, { namespace: "demo" }, config);
      assert.deepEqual(given, snapshot, "the input is not modified");
      assert.equal(r.decision.inject, true);
      const want = inject(absent, { namespace: "demo" }, config);
      assert.deepEqual(JSON.parse(JSON.stringify(r.pod)), JSON.parse(JSON.stringify(want.pod)));
      // The patch applies, with validation, to the Pod as it was sent (nulls included).
      const patched = jsonpatch.applyPatch(
        structuredClone(given),
        structuredClone(r.patch) as jsonpatch.Operation[],
        true,
        false,
      ).newDocument;
      assert.deepEqual(
        jsonpatch
          .compare(JSON.parse(JSON.stringify(r.pod)) as object, patched)
          .filter((op) => op.op !== "add" || op.path !== `/${keys.join("/")}`),
        [],
      );
    });
  }

  test("a null label or annotation value is the empty string, as the API server stores it", () => {
    const pod = readPod(set(set(base(), "metadata.labels.version", null), "metadata.annotations.note", null));
    assert.equal(pod.metadata?.labels?.version, "");
    assert.equal(pod.metadata?.annotations?.note, "");
  });

  test("a Pod without nulls comes back as the very object given; with one, only the path to it is copied", () => {
    const pod = base();
    assert.equal(readPod(pod), pod);
    const withNull = set(base(), "spec.containers[0].env", null);
    const read = readPod(withNull);
    assert.notEqual(read, withNull);
    const spec = withNull.spec as { containers: unknown[]; volumes: unknown[]; initContainers: unknown[] };
    assert.equal(read.spec.volumes, spec.volumes, "untouched lists are shared");
    assert.equal(read.spec.initContainers?.[0], spec.initContainers[0], "untouched items are shared");
    assert.notEqual(read.spec.containers[0], spec.containers[0]);
    assert.equal(Object.hasOwn(read.spec.containers[0] ?? {}, "env"), false);
    assert.equal((spec.containers[0] as Json).env, null, "the input keeps its null");
  });
});

describe("an unexpected failure names the engine's step", () => {
  test("an exception that is no refusal becomes an EngineFailure naming its step, with the exception as cause", async () => {
    const { EngineFailure } = await import("../../../src/injection/types.js");
    const boom = new Error("boom");
    // A getter that answers the shape check (however often it reads it: counted first), then
    // fails when the decision reads it.
    const pod = base();
    let reads = 0;
    let answered = Infinity;
    Object.defineProperty(pod.spec as object, "hostNetwork", {
      enumerable: false,
      get() {
        reads += 1;
        if (reads > answered) throw boom;
        return false;
      },
    });
    readPod(pod);
    answered = reads;
    reads = 0;
    assert.throws(
      () => inject(pod, { namespace: "demo" }, config),
      (e: unknown) =>
        e instanceof EngineFailure &&
        e.step === "deciding whether to inject" &&
        e.cause === boom &&
        !e.message.includes("boom"),
    );
    const first = base();
    Object.defineProperty(first, "metadata", {
      get() {
        throw boom;
      },
    });
    assert.throws(
      () => inject(first, { namespace: "demo" }, config),
      (e: unknown) => e instanceof EngineFailure && e.step === "checking the shape of the Pod",
    );
  });
});

describe("documents the engine leaves alone", () => {
  test("a skipped Pod with nulls is printed as given; an injected one has them dropped", async () => {
    const { injectDocument } = await import("../../../src/injection/workloads.js");
    const skipped = set(
      set(base(), "metadata.annotations", { "sidecar.istio.io/inject": "false" }),
      "spec.volumes",
      null,
    );
    assert.equal(injectDocument(skipped, "demo", config).doc, skipped);
    const injected = set(base(), "spec.volumes", null);
    const out = injectDocument(injected, "demo", config).doc as { spec: { volumes: { name: string }[] } };
    assert.ok(out.spec.volumes.some((v) => v.name === "istio-envoy"));
  });
});

describe("nesting", () => {
  /** `levels` nested objects: {"a":{"a":…{}}}. */
  function nested(levels: number): Json {
    return JSON.parse(`${'{"a":'.repeat(levels - 1)}{}${"}".repeat(levels - 1)}`) as Json;
  }

  test("a Pod nested deeper than 100 levels is refused naming where, however deep; 100 levels are fine", async () => {
    const { MAX_POD_DEPTH } = await import("../../../src/injection/shape.js");
    assert.equal(MAX_POD_DEPTH, 100);
    // The Pod is level 1, spec 2, the list 3, the container 4, its securityContext 5.
    const at = (levels: number): Json => set(base(), "spec.containers[0].securityContext", nested(levels));
    assert.equal(inject(at(96), { namespace: "demo" }, config).decision.inject, true);
    for (const levels of [97, 5_000, 200_000]) {
      assert.throws(() => inject(at(levels), { namespace: "demo" }, config), {
        code: "ERR_INVALID_POD",
        message:
          "spec.containers[0].securityContext: nests deeper than 100 levels (a Pod from the API server nests a dozen)",
      });
    }
    const odd = set(base(), "metadata", JSON.parse(`{"name":"web","x y":${JSON.stringify(nested(120))}}`));
    assert.throws(() => inject(odd, { namespace: "demo" }, config), {
      message: /^metadata\["x y"\]\.a\.a: nests deeper/,
    });
  });
});

describe("the API server's limit on annotations", () => {
  const podWith = (annotations: Record<string, string>): Json => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", annotations },
    spec: { containers: [{ name: "app", image: "nginx" }] },
  });

  test("256 KiB of annotations in all is injected; one byte more is admitted as it is, not refused", () => {
    // Istio's injector injects such a Pod, and the API server then refuses it, naming the
    // annotations: whoever injects it, it is never created, and the refusal is the API server's.
    const key = "example.com/pad";
    const fits = podWith({ [key]: "x".repeat(MAX_ANNOTATIONS_BYTES - key.length) });
    assert.equal(inject(fits, { namespace: "demo" }, config).decision.inject, true);
    const padding = { [key]: "x".repeat(MAX_ANNOTATIONS_BYTES - key.length + 1) };
    const over = podWith(padding);
    assert.ok(readPod(over));
    const r = inject(over, { namespace: "demo" }, config);
    assert.equal(r.decision.inject, false);
    assert.equal(r.decision.code, "annotations_too_large");
    assert.match(r.decision.reasons.at(-1) ?? "", /annotations are over 262144 bytes in all.*: not injected$/);
    assert.deepEqual(r.patch, []);
    // An invalid annotation is not even read.
    const overAndInvalid = podWith({ ...padding, "sidecar.istio.io/interceptionMode": "x" });
    assert.equal(inject(overAndInvalid, { namespace: "demo" }, config).decision.inject, false);
  });

  test("three-byte characters at the limit: counted in bytes on either side of a third of it in characters", () => {
    // "€" is one UTF-16 unit and three bytes of UTF-8.
    const euros = (key: string, n: number): Record<string, string> => ({ [key]: "€".repeat(n) });
    assert.equal(annotationsOverLimit(euros("k", Math.floor(MAX_ANNOTATIONS_BYTES / 3) - 1)), false); // within a third, in units
    assert.equal(annotationsOverLimit(euros("k", (MAX_ANNOTATIONS_BYTES - 1) / 3)), false); // exactly the limit, in bytes
    assert.equal(annotationsOverLimit(euros("kk", (MAX_ANNOTATIONS_BYTES - 1) / 3)), true);
  });

  test("the sum is over keys and values in bytes, as the API server counts it (UTF-8)", () => {
    const many = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`example.com/a${i}`, "é"]));
    assert.equal(annotationsOverLimit(many), true);
  });
});
