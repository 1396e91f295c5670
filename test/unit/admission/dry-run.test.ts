// Dry-run reviews (`request.dryRun: true`, e.g. `kubectl apply --dry-run=server`) are answered
// like any other, and counted apart: sidecar_injection_dry_run_total{decision} and a
// `dryRun: true` field on their log line. Other reviews change neither.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { admit, validateAdmissionReview } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import { REVIEW_DECISIONS } from "../../../src/telemetry/metrics.js";
import { podReview } from "../../support/review.js";
import { JSON_HEADERS, removeTestCertificates, responseOf, startTestServer, type TestServer } from "./helpers.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures");
const DRY_RUN_FIXTURE: unknown = JSON.parse(readFileSync(join(fixtures, "admission-review-dry-run.json"), "utf8"));
const config = buildConfig({});

/** A Pod CREATE in an injected namespace, dry run or not, that `outcome` picks. */
function review(
  uid: string,
  dryRun: boolean | undefined,
  outcome: "injected" | "skipped" | "allowed" | "refused",
): unknown {
  const annotations: Record<string, string> =
    outcome === "skipped"
      ? { "sidecar.istio.io/inject": "false" }
      : outcome === "refused"
        ? { "sidecar.istio.io/proxyCPU": "lots" }
        : {};
  return podReview({
    uid,
    operation: outcome === "allowed" ? "UPDATE" : "CREATE",
    object: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: uid, annotations },
      spec: { containers: [{ name: "app", image: "nginx" }] },
    },
    request: dryRun === undefined ? {} : { dryRun },
  });
}

describe("admit", () => {
  test("says whether the review is a dry run, and answers it as any other", () => {
    const dry = admit(validateAdmissionReview(review("d", true, "injected")), { config });
    const wet = admit(validateAdmissionReview(review("d", false, "injected")), { config });
    const unsaid = admit(validateAdmissionReview(review("d", undefined, "injected")), { config });
    assert.equal(dry.outcome.dryRun, true);
    assert.equal(wet.outcome.dryRun, false);
    assert.equal(unsaid.outcome.dryRun, false);
    assert.deepEqual(dry.review, wet.review);
    assert.equal(dry.outcome.decision, "injected");
  });

  test("the recorded dry-run review from a real API server is one", () => {
    assert.equal(admit(validateAdmissionReview(DRY_RUN_FIXTURE), { config }).outcome.dryRun, true);
  });
});

describe("POST /inject", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.close();
    await removeTestCertificates();
  });

  async function dryRunCounts(): Promise<Record<string, number>> {
    const text = await s.metrics.registry.metrics();
    const out: Record<string, number> = {};
    for (const decision of REVIEW_DECISIONS) {
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`sidecar_injection_dry_run_total{decision="${decision}"} `));
      assert.ok(line !== undefined, `the ${decision} series is published from the start`);
      out[decision] = Number(line.split(" ").at(-1));
    }
    return out;
  }

  test("counts dry runs by decision and marks their log lines; other reviews neither", async () => {
    assert.deepEqual(await dryRunCounts(), { injected: 0, skipped: 0, allowed: 0, refused: 0 });
    const sent: [string, boolean, "injected" | "skipped" | "allowed" | "refused"][] = [
      ["dry-injected", true, "injected"],
      ["dry-injected-2", true, "injected"],
      ["dry-skipped", true, "skipped"],
      ["dry-allowed", true, "allowed"],
      ["dry-refused", true, "refused"],
      ["wet-injected", false, "injected"],
      ["wet-refused", false, "refused"],
    ];
    for (const [uid, dryRun, outcome] of sent) {
      const res = await s.request({ headers: JSON_HEADERS, body: JSON.stringify(review(uid, dryRun, outcome)) });
      assert.equal(res.status, 200);
      assert.equal(responseOf(res).allowed, outcome !== "refused", uid);
    }
    assert.deepEqual(await dryRunCounts(), { injected: 2, skipped: 1, allowed: 1, refused: 1 });
    const lines = s.logs.lines().filter((l) => typeof l.uid === "string");
    for (const [uid, dryRun, outcome] of sent) {
      const line = lines.find((l) => l.uid === uid);
      assert.ok(line, `a log line for ${uid}`);
      assert.equal(line.decision, outcome, uid);
      if (dryRun) assert.equal(line.dryRun, true, uid);
      else assert.equal("dryRun" in line, false, `${uid}: no dryRun field`);
    }
  });
});
