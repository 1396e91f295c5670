import { podReview } from "../../support/review.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionError } from "../../../src/admission/errors.js";
import { DEEP_SCAN_FROM_OPENINGS, openings } from "../../../src/admission/gate.js";
import {
  admit,
  buildResponseReview,
  decodeAdmissionReview,
  encodePatch,
  sanitizeWarnings,
  validateAdmissionReview,
  type IncomingReview,
  type InjectFn,
} from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import {
  EngineFailure,
  InjectionError,
  type InjectContext,
  type PatchOperation,
} from "../../../src/injection/types.js";
import type { AdmissionRequest, Pod } from "../../../src/kube/types.js";

const config = buildConfig({});

function pod(extra: Partial<Pod> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1" },
    spec: { containers: [{ name: "app", image: "nginx" }] },
    ...extra,
  };
}

function review(request: Partial<AdmissionRequest> = {}, apiVersion = "admission.k8s.io/v1"): IncomingReview {
  return podReview({
    apiVersion,
    uid: "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
    object: pod(),
    request,
  }) as IncomingReview;
}

const PATCH: PatchOperation[] = [
  { op: "add", path: "/metadata/labels", value: { "security.istio.io/tlsMode": "istio" } },
];

/** A fake engine that records its calls. */
function fakeEngine(behaviour: (pod: Pod, ctx: InjectContext) => ReturnType<InjectFn>): InjectFn & {
  calls: { pod: Pod; ctx: InjectContext }[];
} {
  const calls: { pod: Pod; ctx: InjectContext }[] = [];
  const fn = (p: Pod, ctx: InjectContext): ReturnType<InjectFn> => {
    calls.push({ pod: p, ctx });
    return behaviour(p, ctx);
  };
  return Object.assign(fn, { calls });
}

const injecting = (): ReturnType<typeof fakeEngine> =>
  fakeEngine((p) => ({
    decision: { inject: true, code: "policy_enabled", reasons: ["namespace label istio-injection=enabled"] },
    patch: PATCH,
    pod: p,
    warnings: ["proxyCPU overridden"],
  }));
const skipping = (): ReturnType<typeof fakeEngine> =>
  fakeEngine((p) => ({
    decision: {
      inject: false,
      code: "pod_annotation",
      reasons: ["label sidecar.istio.io/inject=maybe ignored", "annotation sidecar.istio.io/inject=false"],
    },
    patch: [],
    pod: p,
    warnings: [],
  }));
const throwing = (e: unknown): ReturnType<typeof fakeEngine> =>
  fakeEngine(() => {
    throw e;
  });

function decodePatch(b64: string | undefined): unknown {
  assert.ok(b64 !== undefined, "patch missing");
  return JSON.parse(Buffer.from(b64, "base64").toString("utf8"));
}

describe("decodeAdmissionReview", () => {
  it("refuses megabytes of nested brackets before JSON.parse spends seconds on them", () => {
    const deep = JSON.stringify(podReview()).replace(
      '"request":{',
      `"deep":${"[".repeat(2_000_000)}${"]".repeat(2_000_000)},"request":{`,
    );
    assert.throws(
      () => decodeAdmissionReview(deep),
      (e: unknown) =>
        e instanceof AdmissionError &&
        e.code === "ERR_NOT_ADMISSION_REVIEW" &&
        /nests deeper than 110 levels/.test(e.message),
    );
    // A large body of ordinary depth is read as usual.
    const wide = podReview({
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "w", annotations: { pad: "x".repeat(200_000) } },
        spec: { containers: [] },
      },
    });
    assert.equal(decodeAdmissionReview(JSON.stringify(wide)).request.uid, wide.request.uid);
  });

  it("scans for depth only a body with more brackets than JSON.parse reads quickly at any depth", () => {
    // Brackets in strings count too (the count does not look for strings), and the count stops one past the cap.
    assert.equal(openings('{"a":["[{", {}]}', 100), 5);
    assert.equal(openings("[".repeat(10), 3), 4);
    assert.equal(openings("x".repeat(10), 3), 0);
    const padded = (deep: string): string =>
      JSON.stringify(
        podReview({ object: { kind: "Pod", metadata: { annotations: { pad: "x".repeat(100_000) } } } }),
      ).replace('"request":{', `"deep":${deep},"request":{`);
    // Past the cap, the scan refuses it before JSON.parse, at any length.
    const many = DEEP_SCAN_FROM_OPENINGS + 1;
    assert.throws(
      () => decodeAdmissionReview(padded(`${"[".repeat(many)}${"]".repeat(many)}`)),
      (e: unknown) => e instanceof AdmissionError && /nests deeper than 110 levels/.test(e.message),
    );
    // Within it, JSON.parse reads it whatever its depth (the engine checks the Pod's own).
    const few = DEEP_SCAN_FROM_OPENINGS - 64;
    assert.equal(
      decodeAdmissionReview(padded(`${"[".repeat(few)}${"]".repeat(few)}`)).request.uid,
      podReview().request.uid,
    );
  });

  const valid = JSON.stringify(review());

  it("accepts a v1 review given as bytes", () => {
    const got = decodeAdmissionReview(Buffer.from(valid));
    assert.equal(got.apiVersion, "admission.k8s.io/v1");
    assert.equal(got.request.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
  });

  it("accepts v1beta1 and a leading byte-order mark", () => {
    const got = decodeAdmissionReview(`\ufeff${JSON.stringify(review({}, "admission.k8s.io/v1beta1"))}`);
    assert.equal(got.apiVersion, "admission.k8s.io/v1beta1");
  });

  it("refuses an empty body", () => {
    for (const body of ["", "  \n", Buffer.alloc(0)]) {
      assert.throws(
        () => decodeAdmissionReview(body),
        (e: unknown) => e instanceof AdmissionError && e.code === "ERR_EMPTY_BODY",
      );
    }
  });

  it("refuses malformed JSON without echoing the body", () => {
    assert.throws(
      () => decodeAdmissionReview('{"apiVersion": "s3cr3t'),
      (e: unknown) =>
        e instanceof AdmissionError &&
        e.code === "ERR_MALFORMED_JSON" &&
        e.status === 400 &&
        !e.message.includes("s3cr3t"),
    );
  });

  const notReviews: [string, unknown, RegExp][] = [
    ["an array", [], /JSON object/],
    ["a string", "review", /JSON object/],
    ["null", null, /JSON object/],
    ["another kind", { ...review(), kind: "Pod" }, /kind must be "AdmissionReview"/],
    ["an unknown apiVersion", { ...review(), apiVersion: "admission.k8s.io/v2" }, /apiVersion must be one of/],
    ["no request", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }, /request must be an object/],
    ["no uid", { ...review(), request: { operation: "CREATE" } }, /request\.uid/],
    ["an empty uid", { ...review(), request: { ...review().request, uid: "" } }, /request\.uid/],
    ["a numeric uid", { ...review(), request: { ...review().request, uid: 7 } }, /request\.uid/],
    ["a numeric operation", { ...review(), request: { ...review().request, operation: 1 } }, /request\.operation/],
    [
      "a string kind",
      { ...review(), request: { ...review().request, kind: "Pod" } },
      /request\.kind must be an object/,
    ],
    [
      "a numeric resource group",
      { ...review(), request: { ...review().request, resource: { group: 1 } } },
      /request\.resource\.group/,
    ],
  ];
  for (const [what, value, message] of notReviews) {
    it(`refuses ${what} as not an AdmissionReview`, () => {
      assert.throws(
        () => validateAdmissionReview(value),
        (e: unknown) => e instanceof AdmissionError && e.code === "ERR_NOT_ADMISSION_REVIEW" && message.test(e.message),
      );
    });
  }
});

describe("admit", () => {
  it("answers an injected Pod with a base64 JSONPatch, echoing apiVersion and uid", () => {
    const engine = injecting();
    const { review: out, outcome } = admit(review(), { config, inject: engine });
    assert.equal(out.apiVersion, "admission.k8s.io/v1");
    assert.equal(out.kind, "AdmissionReview");
    assert.equal(out.request, undefined);
    const r = out.response!;
    assert.equal(r.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
    assert.equal(r.allowed, true);
    assert.equal(r.patchType, "JSONPatch");
    assert.deepEqual(decodePatch(r.patch), PATCH);
    assert.deepEqual(r.warnings, ["proxyCPU overridden"]);
    assert.deepEqual(r.auditAnnotations, { decision: "injected", reason: "namespace label istio-injection=enabled" });
    assert.equal(outcome.decision, "injected");
    assert.equal(outcome.patchOperations, 1);
    assert.equal(outcome.pod, "web-1");
    assert.equal(engine.calls.length, 1);
  });

  it("echoes v1beta1", () => {
    const { review: out } = admit(review({}, "admission.k8s.io/v1beta1"), { config, inject: injecting() });
    assert.equal(out.apiVersion, "admission.k8s.io/v1beta1");
    assert.equal(out.response?.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
  });

  it("audit annotation keys carry no '/', since the API server prefixes them with the webhook name", () => {
    const { review: out } = admit(review(), { config, inject: injecting() });
    for (const key of Object.keys(out.response?.auditAnnotations ?? {})) {
      assert.match(key, /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    }
  });

  it("passes namespace, path env and native sidecar support to the engine", () => {
    const engine = injecting();
    admit(review(), {
      config,
      inject: engine,
      pathEnv: { ISTIO_META_CLUSTER_ID: "c1" },
      nativeSidecarsSupported: true,
    });
    assert.deepEqual(engine.calls[0]?.ctx, {
      namespace: "shop",
      pathEnv: { ISTIO_META_CLUSTER_ID: "c1" },
      nativeSidecarsSupported: true,
    });
  });

  it("leaves empty path env and unknown native support out of the context", () => {
    const engine = injecting();
    admit(review(), { config, inject: engine, pathEnv: {} });
    assert.deepEqual(engine.calls[0]?.ctx, { namespace: "shop" });
  });

  it("takes the namespace from the request, then the Pod, then default", () => {
    const engine = injecting();
    const inPod = pod({ metadata: { generateName: "web-", namespace: "from-pod" } });
    admit(review({ namespace: undefined, object: inPod }), { config, inject: engine });
    admit(review({ namespace: "", object: pod() }), { config, inject: engine });
    const { outcome } = admit(review({ namespace: "from-request", object: inPod }), { config, inject: engine });
    assert.deepEqual(
      engine.calls.map((c) => c.ctx.namespace),
      ["from-pod", "default", "from-request"],
    );
    assert.equal(outcome.pod, "web-", "generateName when there is no name");
  });

  it("strips managedFields before the engine sees the Pod, without touching the request", () => {
    const engine = injecting();
    const object = pod({ metadata: { name: "p", labels: { app: "a" }, managedFields: [{ manager: "kubectl" }] } });
    admit(review({ object }), { config, inject: engine });
    assert.equal(engine.calls[0]?.pod.metadata?.managedFields, undefined);
    assert.deepEqual(engine.calls[0]?.pod.metadata?.labels, { app: "a" });
    assert.deepEqual(object.metadata?.managedFields, [{ manager: "kubectl" }]);
  });

  it("allows a skipped Pod without a patch and explains why in a warning", () => {
    const { review: out, outcome } = admit(review(), { config, inject: skipping() });
    const r = out.response!;
    assert.equal(r.allowed, true);
    assert.equal(r.patch, undefined);
    assert.equal(r.patchType, undefined);
    assert.deepEqual(r.warnings, [
      "sidecar-injector: sidecar not injected: label sidecar.istio.io/inject=maybe ignored; annotation sidecar.istio.io/inject=false",
    ]);
    assert.deepEqual(r.auditAnnotations, { decision: "skipped", reason: "annotation sidecar.istio.io/inject=false" });
    assert.equal(outcome.decision, "skipped");
    assert.equal(outcome.skipReason, "pod_annotation", "the decision's own code");
  });

  it("omits the patch when the engine injects with no operations", () => {
    const engine = fakeEngine((p) => ({
      decision: { inject: true, code: "policy_enabled", reasons: ["already injected"] },
      patch: [],
      pod: p,
      warnings: [],
    }));
    const r = admit(review(), { config, inject: engine }).review.response!;
    assert.equal(r.allowed, true);
    assert.equal(r.patch, undefined);
    assert.equal(r.patchType, undefined);
  });

  it("refuses an invalid annotation with a 400 status naming it", () => {
    const err = new InjectionError(
      "ERR_INVALID_ANNOTATION",
      "sidecar.istio.io/proxyCPU",
      'annotation sidecar.istio.io/proxyCPU: "lots" is not a CPU quantity',
    );
    const { review: out, outcome } = admit(review(), { config, inject: throwing(err) });
    const r = out.response!;
    assert.equal(r.allowed, false);
    assert.equal(r.patch, undefined);
    assert.deepEqual(r.status, {
      code: 400,
      reason: "BadRequest",
      status: "Failure",
      message: 'sidecar-injector: annotation sidecar.istio.io/proxyCPU: "lots" is not a CPU quantity',
    });
    assert.equal(
      outcome.reason,
      'annotation sidecar.istio.io/proxyCPU: "lots" is not a CPU quantity',
      "the log line's reason is the message itself",
    );
    assert.equal(r.auditAnnotations?.decision, "refused");
    assert.equal(outcome.decision, "refused");
    assert.equal(outcome.errorCode, "ERR_INVALID_ANNOTATION");
    assert.equal(outcome.error, undefined, "an expected refusal is not logged as an error");
    assert.ok(!("error" in outcome), "nor does its outcome carry an error key");
  });

  it("puts the field in front of an InjectionError message that does not name it", () => {
    const err = new InjectionError(
      "ERR_INVALID_ANNOTATION",
      "traffic.sidecar.istio.io/includeInboundPorts",
      "not a port list",
    );
    const r = admit(review(), { config, inject: throwing(err) }).review.response!;
    assert.equal(r.status?.message, "sidecar-injector: traffic.sidecar.istio.io/includeInboundPorts: not a port list");
  });

  it("refuses with a generic message on an unexpected exception and hands the error back", () => {
    const boom = new TypeError("cannot read properties of undefined (reading 'password=hunter2')");
    const { review: out, outcome } = admit(review(), { config, inject: throwing(boom) });
    const r = out.response!;
    assert.equal(r.allowed, false);
    assert.equal(r.status?.code, 500);
    assert.equal(r.status?.reason, "InternalError");
    assert.ok(!JSON.stringify(out).includes("hunter2"), "internal details stay out of the answer");
    assert.equal(outcome.errorCode, "ERR_INTERNAL");
    assert.equal(outcome.error, boom);
    assert.deepEqual(Object.keys(outcome), [
      "uid",
      "namespace",
      "pod",
      "operation",
      "decision",
      "reason",
      "errorCode",
      "patchOperations",
      "dryRun",
      "error",
    ]);
    assert.equal(
      r.status?.message,
      "sidecar-injector: internal error while answering the review; see the injector's logs",
    );
  });

  it("an unexpected failure inside the engine names the step that failed, nothing of the input, and logs the cause", () => {
    const cause = new TypeError("Cannot read properties of undefined (reading 'hunter2')");
    const { review: out, outcome } = admit(review(), {
      config,
      inject: throwing(new EngineFailure("rendering the sidecar", cause)),
    });
    const r = out.response!;
    assert.equal(r.status?.code, 500);
    assert.equal(
      r.status?.message,
      "sidecar-injector: internal error while rendering the sidecar; see the injector's logs",
    );
    assert.ok(!JSON.stringify(out).includes("hunter2"));
    assert.equal(outcome.error, cause, "the cause goes to the log");
  });

  it("every refusal's status.message names the injector", () => {
    const refusals = [
      admit(review({ object: undefined }), { config }),
      admit(review({ object: { ...pod(), spec: { containers: "app" } } }), { config }),
      admit(
        review({
          object: pod({ metadata: { name: "p", annotations: { "sidecar.istio.io/interceptionMode": "MAGIC" } } }),
        }),
        { config },
      ),
      admit(review(), { config, inject: throwing(new RangeError("x")) }),
    ];
    for (const { review: out } of refusals) {
      assert.equal(out.response?.allowed, false);
      assert.match(out.response?.status?.message ?? "", /^sidecar-injector: \S/);
    }
    assert.equal(refusals[1]?.review.response?.status?.message, "sidecar-injector: spec.containers: must be a list");
  });

  it("bounds every user value of the outcome (the log line) and of the messages", () => {
    const huge = (c: string): string => c.repeat(1_000_000);
    const object = pod({ metadata: { name: huge("n"), namespace: huge("s") } });
    const big = review({ uid: huge("u"), namespace: undefined, object });
    const { outcome } = admit(big, { config, inject: injecting() });
    for (const field of [outcome.uid, outcome.namespace, outcome.pod ?? ""]) {
      assert.ok(field.length < 200, `field of ${field.length} characters`);
      assert.match(field, /\(1000000 characters\)$/);
    }
    const updated = admit(review({ operation: huge("O") }), { config, inject: injecting() });
    assert.ok(updated.outcome.reason.length < 200 && updated.outcome.operation.length < 200);
    assert.ok(JSON.stringify(updated.review).length < 2000);
    const other = admit(review({ kind: { group: "x", version: "v1", kind: huge("K") }, subResource: huge("r") }), {
      config,
      inject: injecting(),
    });
    assert.ok(other.outcome.reason.length < 300, `reason of ${other.outcome.reason.length} characters`);
  });

  it("hands the engine the namespace itself, however long, and bounds it only in the outcome", () => {
    const engine = injecting();
    const ns = "n".repeat(500);
    const { outcome } = admit(review({ namespace: ns }), { config, inject: engine });
    assert.equal(engine.calls[0]?.ctx.namespace, ns);
    assert.ok(outcome.namespace.length < 200);
  });

  it("refuses a Pod CREATE without an object", () => {
    const engine = injecting();
    const r = admit(review({ object: undefined }), { config, inject: engine }).review.response!;
    assert.equal(r.allowed, false);
    assert.equal(r.status?.code, 400);
    assert.match(r.status?.message ?? "", /request\.object/);
    assert.equal(engine.calls.length, 0);
  });

  const untouched: [string, Partial<AdmissionRequest>, string][] = [
    [
      "a Deployment",
      {
        kind: { group: "apps", version: "v1", kind: "Deployment" },
        resource: { group: "apps", version: "v1", resource: "deployments" },
      },
      "not_a_pod",
    ],
    [
      "a ConfigMap",
      {
        kind: { group: "", version: "v1", kind: "ConfigMap" },
        resource: { group: "", version: "v1", resource: "configmaps" },
      },
      "not_a_pod",
    ],
    [
      "a Pod from another group",
      {
        kind: { group: "example.com", version: "v1", kind: "Pod" },
        resource: { group: "example.com", version: "v1", resource: "pods" },
      },
      "not_a_pod",
    ],
    ["a Pod subresource", { subResource: "ephemeralcontainers", operation: "UPDATE" }, "not_a_pod"],
    [
      "pods/exec CONNECT",
      { subResource: "exec", operation: "CONNECT", kind: { group: "", version: "v1", kind: "PodExecOptions" } },
      "not_a_pod",
    ],
    ["a Pod UPDATE", { operation: "UPDATE", oldObject: pod() }, "not_create"],
    ["a Pod DELETE", { operation: "DELETE", object: undefined, oldObject: pod() }, "not_create"],
    ["a Pod CONNECT", { operation: "CONNECT" }, "not_create"],
  ];
  for (const [what, request, skipReason] of untouched) {
    it(`allows ${what} unchanged without calling the engine`, () => {
      const engine = injecting();
      const { review: out, outcome } = admit(review(request), { config, inject: engine });
      const r = out.response!;
      assert.equal(r.allowed, true);
      assert.equal(r.patch, undefined);
      assert.equal(r.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
      assert.equal(r.warnings?.length, 1);
      assert.match(r.warnings?.[0] ?? "", /admitted unchanged/);
      assert.equal(outcome.decision, "allowed");
      assert.equal(outcome.skipReason, skipReason);
      assert.equal(engine.calls.length, 0);
    });
  }

  it("treats a request with neither kind nor resource as a Pod only if the object says so", () => {
    const engine = injecting();
    admit(review({ kind: undefined, resource: undefined }), { config, inject: engine });
    admit(review({ kind: undefined, resource: undefined, object: { kind: "Service", metadata: {} } }), {
      config,
      inject: engine,
    });
    assert.equal(engine.calls.length, 1);
  });

  it("uses the real engine by default: an opted-out Pod is skipped", () => {
    const object = pod({ metadata: { name: "p", annotations: { "sidecar.istio.io/inject": "false" } } });
    const { review: out, outcome } = admit(review({ object }), { config });
    assert.equal(out.response?.allowed, true);
    assert.equal(out.response?.patch, undefined);
    assert.equal(outcome.decision, "skipped");
  });
});

describe("sanitizeWarnings / buildResponseReview", () => {
  it("keeps warnings on one line, short, and within the total size", () => {
    assert.deepEqual(sanitizeWarnings(["a\nb\tc", "", "   "]), ["a b c"]);
    const [long] = sanitizeWarnings(["x".repeat(1000)]);
    assert.equal(long?.length, 256);
    assert.ok(long?.endsWith("..."));
    const many = sanitizeWarnings(Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(200, "y")));
    assert.ok(many.join("").length <= 4096);
    assert.equal(many.length, 20);
  });

  it("leaves out empty warnings and patches", () => {
    const out = buildResponseReview("admission.k8s.io/v1", "u", { allowed: true, patch: [], warnings: [] });
    assert.deepEqual(out, {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "u", allowed: true },
    });
  });
});

describe("buildResponseReview's patch", () => {
  const bigPatch: PatchOperation[] = Array.from({ length: 40 }, (_, i) => ({
    op: "add",
    path: `/metadata/labels/l${i}`,
    value: `v${i}`.repeat(20),
  }));

  it("is base64 of the patch's JSON, in a plain response: its keys, its JSON and a deep comparison see nothing else", () => {
    const built = buildResponseReview("admission.k8s.io/v1", "u", { allowed: true, patch: bigPatch });
    const patch = Buffer.from(JSON.stringify(bigPatch), "utf8").toString("base64");
    const plain = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "u", allowed: true, patchType: "JSONPatch", patch },
    };
    assert.deepEqual(built, plain);
    assert.deepEqual(Object.keys(built.response ?? {}), ["uid", "allowed", "patchType", "patch"]);
    assert.equal(JSON.stringify(built), JSON.stringify(plain));
  });
});

describe("encodePatch", () => {
  const plain = (ops: readonly PatchOperation[]): string => Buffer.from(JSON.stringify(ops), "utf8").toString("base64");
  const sized = (chars: number, fill: string): PatchOperation[] => [
    { op: "add", path: "/metadata/annotations/a", value: fill.repeat(Math.ceil(chars / fill.length)).slice(0, chars) },
  ];

  it("is base64 of the patch's UTF-8, whatever its size and characters, call after call", () => {
    // Longer patches first, then shorter ones: nothing of an earlier patch may show in a later one;
    // sizes around the reused buffer's 64 KiB, and characters of 1 to 4 UTF-8 bytes.
    const cases = [
      sized(70_000, "x"),
      // The patch's JSON is 58 characters more than the value: exactly 64 KiB, and one byte over.
      sized(65_536 - 58 + 1, "x"),
      sized(65_536 - 58, "x"),
      sized(30_000, "é€"),
      sized(21_000, "😀"),
      sized(5_000, "ascii"),
      [],
      sized(10, "x"),
    ];
    for (const ops of cases) {
      const encoded = encodePatch(ops);
      assert.equal(encoded, plain(ops));
      assert.deepEqual(JSON.parse(Buffer.from(encoded, "base64").toString("utf8")), ops);
    }
  });
});
