// One gate for every AdmissionReview: the same table of invalid and hostile reviews is sent to
// POST /inject, to POST /preview and to the preview use case (and a few to the `preview`
// command), and each must answer alike: the same HTTP status, code and message where /inject
// refuses the body; where /inject answers inside the review, the preview's entry says the same
// (the same refusal code and message, or the same reason for admitting it unchanged).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AdmissionError, ERRORS, isErrorCode } from "../../../src/admission/errors.js";
import { gate, sanitizeWarnings, validateAdmissionReview } from "../../../src/admission/gate.js";
import { buildConfig } from "../../../src/config/load.js";
import { preview, type PreviewEntry } from "../../../src/preview.js";
import { runCli } from "../../support/run.js";
import { podReview } from "../../support/review.js";
import { JSON_HEADERS, removeTestCertificates, responseOf, startTestServer, type TestServer } from "./helpers.js";

const config = buildConfig({});

type Review = ReturnType<typeof podReview>;

/** A valid Pod CREATE review, changed by `edit` (which may make it anything at all). */
function reviewWith(edit: (r: Review & Record<string, unknown>) => void): unknown {
  const r = podReview({ uid: "gate-1", namespace: "shop" }) as Review & Record<string, unknown>;
  edit(r);
  return r;
}

const HOSTILE = `x${"\u0000\u001b[31m".repeat(10)}${"k".repeat(500)}`;

/** Bodies /inject refuses with 400 ERR_NOT_ADMISSION_REVIEW: the preview must refuse them alike. */
const REFUSED_BODIES: readonly (readonly [string, unknown])[] = [
  ["an unknown apiVersion", reviewWith((r) => (r.apiVersion = "bogus/v0"))],
  ["no apiVersion", reviewWith((r) => delete (r as { apiVersion?: string }).apiVersion)],
  ["a hostile apiVersion", reviewWith((r) => (r.apiVersion = HOSTILE))],
  ["request not an object", reviewWith((r) => (r.request = [] as unknown as Review["request"]))],
  ["no request", reviewWith((r) => delete (r as { request?: unknown }).request)],
  ["no uid", reviewWith((r) => delete (r.request as { uid?: string }).uid)],
  ["an empty uid", reviewWith((r) => (r.request.uid = ""))],
  ["a numeric uid", reviewWith((r) => (r.request.uid = 7 as unknown as string))],
  ["a numeric operation", reviewWith((r) => (r.request.operation = 1))],
  ["a numeric namespace", reviewWith((r) => (r.request.namespace = 1))],
  ["a numeric subResource", reviewWith((r) => (r.request.subResource = 1))],
  ["request.kind a string", reviewWith((r) => (r.request.kind = "Pod"))],
  ["request.kind.kind a number", reviewWith((r) => (r.request.kind = { group: "", version: "v1", kind: 5 }))],
  [
    "request.resource.resource null",
    reviewWith((r) => (r.request.resource = { group: "", version: "v1", resource: null })),
  ],
  ["dryRun a string", reviewWith((r) => (r.request.dryRun = "yes"))],
];

/** Reviews /inject answers inside the review (HTTP 200): refused, or admitted unchanged. */
const ANSWERED_REVIEWS: readonly (readonly [string, unknown])[] = [
  ["a Pod CREATE without the Pod", reviewWith((r) => delete r.request.object)],
  ["a Pod CREATE whose object is a list", reviewWith((r) => (r.request.object = []))],
  ["a Pod UPDATE", reviewWith((r) => (r.request.operation = "UPDATE"))],
  ["no operation", reviewWith((r) => delete r.request.operation)],
  ["a hostile operation", reviewWith((r) => (r.request.operation = HOSTILE))],
  ["a Pod subresource", reviewWith((r) => (r.request.subResource = "binding"))],
  ["a hostile subresource", reviewWith((r) => (r.request.subResource = HOSTILE))],
  [
    "a Deployment",
    reviewWith((r) => {
      r.request.kind = { group: "apps", version: "v1", kind: "Deployment" };
      r.request.resource = { group: "apps", version: "v1", resource: "deployments" };
    }),
  ],
  ["a hostile kind", reviewWith((r) => (r.request.kind = { group: "", version: "v1", kind: HOSTILE }))],
  [
    "no kind or resource, and an object that is no Pod",
    reviewWith((r) => {
      delete r.request.kind;
      delete r.request.resource;
      r.request.object = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" } };
    }),
  ],
];

let server: TestServer;
let dir: string;

before(async () => {
  server = await startTestServer();
  dir = await mkdtemp(join(tmpdir(), "gate-test-"));
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
  await removeTestCertificates();
});

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await server.request({ path, headers: JSON_HEADERS, body: JSON.stringify(body) });
  return { status: res.status, body: res.json() };
}

function errorOf(body: Record<string, unknown>): { code: string; message: string } {
  const error = body.error as { code: string; message: string } | undefined;
  assert.ok(error, `no error in ${JSON.stringify(body)}`);
  return error;
}

function onlyEntry(body: Record<string, unknown>): PreviewEntry {
  const items = body.items as PreviewEntry[] | undefined;
  assert.equal(items?.length, 1, JSON.stringify(body));
  return items[0]!;
}

describe("a body /inject refuses is refused by /preview and by the preview use case alike", () => {
  for (const [name, body] of REFUSED_BODIES) {
    test(name, async () => {
      const inject = await post("/inject", body);
      assert.equal(inject.status, 400, JSON.stringify(inject.body));
      const injectError = errorOf(inject.body);
      assert.equal(injectError.code, "ERR_NOT_ADMISSION_REVIEW");
      assert.match(injectError.message, /^request body is not an AdmissionReview: /);
      assert.ok(injectError.message.length < 200, "the message quotes no user value whole");

      const previewed = await post("/preview", body);
      assert.equal(previewed.status, inject.status);
      assert.deepEqual(errorOf(previewed.body), injectError);
      assert.equal(previewed.body.message, injectError.message, "the Status kubectl prints says the same");

      await assert.rejects(
        preview([body], { config }),
        (e: unknown) => e instanceof AdmissionError && e.code === injectError.code && e.message === injectError.message,
      );
    });
  }
});

describe("a review /inject answers inside the review, the preview answers alike", () => {
  for (const [name, body] of ANSWERED_REVIEWS) {
    test(name, async () => {
      const inject = await post("/inject", body);
      assert.equal(inject.status, 200, JSON.stringify(inject.body));
      const response = responseOf({
        status: 200,
        headers: {},
        body: JSON.stringify(inject.body),
        json: () => inject.body,
      });

      const previewed = await post("/preview", body);
      assert.equal(previewed.status, 200, JSON.stringify(previewed.body));
      const entry = onlyEntry(previewed.body);
      const direct = await preview([body], { config });
      assert.deepEqual(
        onlyEntry(JSON.parse(JSON.stringify({ items: direct })) as Record<string, unknown>),
        entry,
        "the use case answers what the route answers",
      );
      assert.equal(entry.decision.inject, false);
      assert.deepEqual(entry.patch, []);
      assert.equal(response.patch, undefined);

      if (response.allowed === false) {
        const status = response.status as { code: number; message: string };
        const error = entry.error;
        assert.ok(error && isErrorCode(error.code), `the preview refuses too: ${JSON.stringify(entry)}`);
        assert.equal(ERRORS[error.code].status, status.code);
        assert.equal(`sidecar-injector: ${error.message}`, status.message);
      } else {
        assert.equal(response.allowed, true);
        assert.equal(entry.error, undefined);
        // The same words, within the envelope's size for a warning.
        assert.deepEqual(response.warnings, sanitizeWarnings([`sidecar-injector: ${entry.decision.reasons[0]}`]));
        assert.equal(entry.decision.reasons.length, 1);
      }
    });
  }
});

describe("gate", () => {
  test("a Pod CREATE passes with its Pod, managedFields dropped, in the request's namespace", () => {
    const review = validateAdmissionReview(
      reviewWith(
        (r) =>
          (r.request.object = {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "p", managedFields: [{ manager: "kubectl" }] },
            spec: {},
          }),
      ),
    );
    const verdict = gate(review.request);
    assert.deepEqual(verdict, {
      pass: true,
      namespace: "shop",
      pod: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: {} },
    });
  });

  test("the namespace falls back to the object's, then to the one given", () => {
    const noNamespace = reviewWith((r) => {
      delete r.request.namespace;
      r.request.object = { kind: "Pod", metadata: { name: "p" } };
    });
    const request = validateAdmissionReview(noNamespace).request;
    assert.equal(gate(request).pass && gate(request, "elsewhere").pass, true);
    assert.deepEqual(
      [gate(request), gate(request, "elsewhere")].map((v) => (v.pass ? v.namespace : undefined)),
      ["default", "elsewhere"],
    );
    const inObject = validateAdmissionReview(
      reviewWith(
        (r) => (delete r.request.namespace, (r.request.object = { kind: "Pod", metadata: { namespace: "own" } })),
      ),
    );
    const v = gate(inObject.request, "elsewhere");
    assert.equal(v.pass ? v.namespace : undefined, "own");
  });

  test("each way of not passing, with its bounded label", () => {
    const verdicts = ANSWERED_REVIEWS.map(([, r]) => gate(validateAdmissionReview(r).request));
    const labels = verdicts.map((v) => (v.pass ? "pass" : "unchanged" in v ? v.unchanged : v.refused.code));
    assert.deepEqual(labels, [
      "ERR_INVALID_POD",
      "ERR_INVALID_POD",
      "not_create",
      "not_create",
      "not_create",
      "not_a_pod",
      "not_a_pod",
      "not_a_pod",
      "not_a_pod",
      "not_a_pod",
    ]);
    for (const v of verdicts) {
      if (v.pass || !("reason" in v)) continue;
      assert.doesNotMatch(v.reason, /k{100}/, "a user value is quoted, bounded");
      assert.ok(
        [...v.reason].every((c) => c >= " "),
        `printable: ${v.reason}`,
      );
    }
  });
});

describe("the preview command refuses what /inject refuses", () => {
  test("apiVersion bogus/v0: exit 2 and /inject's message", async () => {
    const body = REFUSED_BODIES[0]![1];
    const file = join(dir, "bogus.json");
    await writeFile(file, JSON.stringify(body));
    const inject = await post("/inject", body);
    const ran = await runCli(["preview", "-f", file, "-o", "json"]);
    assert.equal(ran.code, 2, ran.stderr);
    assert.equal(ran.stderr, `error: ${errorOf(inject.body).message}\n`);
    assert.equal(ran.stdout, "");
  });

  test("a Pod CREATE without the Pod: the entry's refusal, exit 1 (a refused Pod)", async () => {
    const file = join(dir, "no-object.json");
    await writeFile(file, JSON.stringify(ANSWERED_REVIEWS[0]![1]));
    const ran = await runCli(["preview", "-f", file, "-o", "json"]);
    assert.equal(ran.code, 1, ran.stderr);
    const entry = onlyEntry(JSON.parse(ran.stdout) as Record<string, unknown>);
    assert.equal(entry.error?.code, "ERR_INVALID_POD");
    assert.equal(entry.error?.message, "request.object: must be the Pod being created");
  });
});
