import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { nextRunLength, responseBytes } from "../../../src/admission/answer.js";
import { buildResponseReview, type ResponseFields } from "../../../src/admission/gate.js";
import { admit, answerReview, decodeAdmissionReview } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { shared } from "../../../src/injection/template-parts.js";
import type { PatchOperation } from "../../../src/injection/types.js";
import { goldenCases, goldenConfig, inputPods } from "../../golden/cases.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "..", "..", "fixtures");

/** What the answer must be: the UTF-8 of the review's JSON. */
function expected(apiVersion: string, uid: string, fields: ResponseFields): Buffer {
  return Buffer.from(JSON.stringify(buildResponseReview(apiVersion, uid, fields)), "utf8");
}

function check(fields: ResponseFields, uid = "u-1", apiVersion = "admission.k8s.io/v1"): Buffer {
  const got = responseBytes(apiVersion, uid, fields);
  assert.equal(got.toString("utf8"), expected(apiVersion, uid, fields).toString("utf8"));
  assert.ok(got.equals(expected(apiVersion, uid, fields)));
  return got;
}

/** `count` operations adding a label each, `chars` characters of value each. */
function labels(count: number, chars: number, fill = "v"): PatchOperation[] {
  return Array.from({ length: count }, (_, i) => ({
    op: "add",
    path: `/metadata/labels/l${i}`,
    value: fill.repeat(Math.ceil(chars / fill.length)).slice(0, chars),
  }));
}

/** One operation adding a list of `count` containers. */
function containers(count: number, envPer = 3): PatchOperation[] {
  return [
    {
      op: "replace",
      path: "/spec/containers",
      value: Array.from({ length: count }, (_, i) => ({
        name: `c-${i}`,
        image: "example.com/app:1",
        env: Array.from({ length: envPer }, (_, j) => ({ name: `V${j}`, value: `x${i}.${j}` })),
      })),
    },
  ];
}

describe("responseBytes", () => {
  it("is the UTF-8 of the review's JSON for every golden case's patch, and for its refusals and skips", () => {
    let patches = 0;
    for (const name of goldenCases()) {
      const config = goldenConfig(name);
      for (const { pod, namespace } of inputPods(name)) {
        let patch: readonly PatchOperation[];
        try {
          patch = inject(pod, { namespace }, config).patch;
        } catch {
          continue;
        }
        if (patch.length > 0) patches++;
        check({ allowed: true, patch, warnings: [`case ${name}`], auditAnnotations: { decision: "injected" } });
      }
    }
    assert.ok(patches > 20, `golden patches checked: ${patches}`);
    check({ allowed: true });
    check({ allowed: true, patch: [] });
    check(
      {
        allowed: false,
        status: { code: 400, message: 'bad "patch":"" here', reason: "BadRequest", status: "Failure" },
        auditAnnotations: { decision: "refused", patch: "" },
      },
      "u",
      "admission.k8s.io/v1beta1",
    );
  });

  it("writes the envelope's user values as JSON.stringify does: quotes, non-ASCII, the slot's own text", () => {
    const patch = labels(3, 10);
    check({ allowed: true, patch }, '"patch":"" é 😀 \u2028 \\ uid');
    check({ allowed: true, patch, warnings: ['w"1', "é€😀", "\ud800 lone"] }, "u", "admission.k8s.io/v1beta1");
    check({ allowed: false, patch, status: { code: 403, message: "no" } });
  });

  it("is JSON.stringify's text of values it does not write itself: left out, null, toJSON, classes, lone surrogates", () => {
    class Box {
      constructor(readonly inside: string) {}
    }
    const odd: unknown[] = [
      undefined,
      () => 1,
      Symbol("s"),
      null,
      Number.NaN,
      -0,
      1e21,
      new Date(0),
      new Box("b"),
      { toJSON: () => "mine" },
      Object.assign(Object.create(null) as object, { k: "v" }),
      "\ud83d lone \udc00",
      { 'k"ey': "v\n", "": "", é: "é" },
    ];
    const many = (value: unknown): PatchOperation => ({ op: "add", path: "/x", value });
    // Each as a value of its own, in lists and maps large enough to be written item by item,
    // and among operations enough to be stringified in several runs.
    const ops: PatchOperation[] = [
      ...odd.map(many),
      many(Array.from({ length: 40 }, (_, i) => odd[i % odd.length])),
      many(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, odd[i % odd.length]]))),
      ...Array.from({ length: 70 }, (_, i) => many(odd[i % odd.length])),
      { op: "add", path: "/y" },
      { op: "add", path: "/z", value: undefined },
    ];
    check({ allowed: true, patch: ops });
    // A list with toJSON of its own, and one whose operations are not plain objects.
    const listWithToJson = Object.assign(
      Array.from({ length: 40 }, (_, i) => i),
      { toJSON: () => "list" },
    );
    check({ allowed: true, patch: [many(listWithToJson)] });
    const notPlain = [new Box("op") as unknown as PatchOperation, ...labels(40, 5)];
    check({ allowed: true, patch: notPlain });
  });

  it("is exact at every size: around the base64 slices and the kept buffer, larger then smaller, call after call", () => {
    const cases = [
      labels(1, 3 * 1024 * 1024), // 3 MiB of JSON: larger than the buffer kept
      containers(2000, 10), // an operation of many items, over 1 MiB
      labels(1, 48 * 1024 - 58),
      labels(1, 48 * 1024 - 57),
      labels(1, 48 * 1024 - 56),
      labels(1, 48 * 1024 - 55),
      labels(1, 96 * 1024),
      labels(33, 4000, "é€"),
      labels(65, 3000, "😀"),
      containers(200),
      containers(33),
      containers(32),
      labels(5, 10),
      labels(1, 1),
    ];
    for (const patch of cases) {
      const got = check({ allowed: true, patch, warnings: ["w"] });
      const answer = JSON.parse(got.toString("utf8")) as { response: { patch: string } };
      assert.deepEqual(JSON.parse(Buffer.from(answer.response.patch, "base64").toString("utf8")), patch);
    }
  });

  it("sizes a run of operations from the one before: about 32 KiB of text, at most twice as long, 32 to 512", () => {
    assert.equal(nextRunLength(32, 4417), 64, "150 probe operations: doubled, not 237 at once");
    assert.equal(nextRunLength(64, 8834), 128);
    assert.equal(nextRunLength(256, 16 * 1024), 512);
    assert.equal(nextRunLength(512, 1024), 512, "never past 512");
    assert.equal(nextRunLength(512, 64 * 1024), 256, "halved for twice the text");
    assert.equal(nextRunLength(32, 3 * 1024 * 1024), 32, "never below 32");
    assert.equal(nextRunLength(32, 0), 64);
    for (const ops of [32, 33, 100, 511, 512])
      for (const chars of [2, 100, 4000, 32 * 1024, 1e6, 1e9]) {
        const n = nextRunLength(ops, chars);
        assert.ok(Number.isInteger(n) && n >= 32 && n <= Math.min(512, 2 * ops), `${ops} ops, ${chars} chars: ${n}`);
      }
  });

  it("is exact for runs of operations of changing sizes: runs sized from the one before, cut by large and kept values", () => {
    const shortThenLong = [...labels(40, 5), ...labels(300, 2000, "é"), ...labels(700, 3)];
    const longThenShort = [...labels(64, 3000), ...labels(1200, 1)];
    // Small operations around ones written on their own: a large list, and a kept (shared) value.
    const cut = [...labels(100, 10), ...containers(40), ...labels(600, 7), ...containers(3), ...labels(45, 20)];
    for (const patch of [shortThenLong, longThenShort, cut, labels(512 * 3 + 33, 2)]) check({ allowed: true, patch });
  });

  it("writes a list's items from the kept texts of shared parts only: what changed since the answer before is written anew", () => {
    const args = shared(["proxy", "sidecar"]);
    const constant = shared({ name: "CA_ADDR", value: "istiod:15012" });
    const volume = shared({ name: "istio-data", emptyDir: {} });
    // Frozen but not by `shared`: what it holds may change between answers.
    const shallow = Object.freeze({ inner: { x: 1 } });
    const mutable: { x: number; y?: string } = { x: 1 };
    const proxy = (pod: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      name: "istio-proxy",
      args,
      env: [constant, { name: "POD", value: pod }, constant],
      shallow,
      mutable,
      ...extra,
    });
    const patch = (items: unknown[], path = "/spec/initContainers"): ResponseFields => ({
      allowed: true,
      patch: [
        { op: "add", path: "/metadata/labels/a", value: "b" },
        { op: "add", path, value: items },
        { op: "replace", path: "/spec/volumes", value: [volume, { name: "own" }, volume] },
      ],
    });
    check(patch([{ name: "istio-init", args }, proxy("p-1")]));
    check(patch([{ name: "istio-init", args }, proxy('p-2 "quoted" ✓')]));
    shallow.inner.x = 2;
    mutable.x = 3;
    mutable.y = "now";
    check(patch([{ name: "istio-init", args }, proxy("p-3")]));
    // Other values, other keys, other orders, values JSON.stringify leaves out or writes as null.
    check(patch([{ name: "istio-init", args: ["other"] }, proxy("p-4", { args: undefined, n: Number.NaN })]));
    check(
      patch([
        { args, name: "istio-init" },
        { name: "istio-proxy", env: [constant, undefined, () => 1] },
      ]),
    );
    check(patch([{ name: "istio-init" }, proxy("p-5", { f: () => 1, env: args })]));
    check(patch([volume, proxy("p-6"), null, "text", 7]));
    check(patch([shared({ name: "x", args }), { name: "y", args: volume }]));
    // More paths than are kept, and more items than are kept of one path.
    for (let i = 0; i < 40; i++) check(patch([proxy(`p-${i}`)], `/spec/containers/${i}/x`));
    const many = Array.from({ length: 20 }, (_, i) => proxy(`m-${i}`, { i }));
    check(patch(many));
    check(patch(many.map((c, i) => (i % 2 === 0 ? { ...c, i: -i } : c))));
  });

  it("writes an operation's object value from the kept texts of its shared fields: what changed is written anew", () => {
    const args = shared(["proxy", "sidecar"]);
    const probe = shared({ httpGet: { path: "/healthz/ready", port: 15021 } });
    const constant = shared({ name: "CA_ADDR", value: "istiod:15012" });
    const shallow = Object.freeze({ inner: { x: 1 } });
    const mutable: { x: number; y?: string } = { x: 1 };
    const proxy = (pod: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      name: "istio-proxy",
      args,
      env: [constant, { name: "POD", value: pod }],
      readinessProbe: probe,
      shallow,
      mutable,
      ...extra,
    });
    const patch = (value: unknown, path = "/spec/containers/1"): ResponseFields => ({
      allowed: true,
      patch: [
        { op: "add", path: "/metadata/labels/a", value: "b" },
        { op: "add", path, value },
        { op: "add", path: "/metadata/annotations", value: { "sidecar.istio.io/status": path, n: "1" } },
      ],
    });
    check(patch(proxy("p-1")));
    check(patch(proxy('p-2 "quoted" ✓')));
    shallow.inner.x = 2;
    mutable.x = 3;
    mutable.y = "now";
    check(patch(proxy("p-3")));
    // Other values under the same keys, other keys, other orders, values left out or not plain.
    check(patch(proxy("p-4", { args: ["other"], readinessProbe: { ...probe }, n: Number.NaN, u: undefined })));
    check(patch({ readinessProbe: probe, name: "istio-proxy", args }));
    check(patch(proxy("p-5", { f: () => 1, env: args, readinessProbe: -0 })));
    check(patch(probe));
    check(patch(shared({ name: "x", args })));
    check(patch({ toJSON: () => "mine" }));
    check(patch(Object.assign(Object.create(null) as object, { name: "no prototype", args })));
    check(patch({}));
    // A list's items after the first: toJSON, a class, a list.
    check(patch([proxy("p-6"), { toJSON: () => "mine" }, new Date(0), [proxy("p-7")]]));
    check(patch([proxy("p-6"), { toJSON: () => "mine" }, new Date(1), [proxy("p-8")]]));
    // More paths than are kept.
    for (let i = 0; i < 40; i++) check(patch(proxy(`p-${i}`), `/spec/containers/${i}`));
  });

  it("gives a buffer of its own, which a worker can hand over without detaching another's", () => {
    const small = responseBytes("admission.k8s.io/v1", "u", { allowed: true, patch: labels(1, 1) });
    const large = responseBytes("admission.k8s.io/v1", "u", { allowed: true, patch: labels(10, 10_000) });
    const none = responseBytes("admission.k8s.io/v1", "u", { allowed: true });
    for (const b of [small, large, none]) {
      assert.equal(b.byteOffset, 0);
      assert.equal(b.buffer.byteLength, b.byteLength);
    }
    assert.notEqual(small.buffer, large.buffer);
  });
});

describe("answerReview", () => {
  it("answers each recorded review with the bytes of admit's review, outcome alike", () => {
    const config = buildConfig({});
    const names = readdirSync(fixtures).filter((f) => f.startsWith("admission-review-") && f.endsWith(".json"));
    assert.ok(names.length >= 5);
    for (const name of names) {
      const body = readFileSync(join(fixtures, name));
      const byAdmit = admit(decodeAdmissionReview(body), { config });
      const answered = answerReview(decodeAdmissionReview(body), { config });
      assert.equal(answered.body.toString("utf8"), JSON.stringify(byAdmit.review), name);
      assert.deepEqual(answered.outcome, byAdmit.outcome, name);
    }
  });
});
