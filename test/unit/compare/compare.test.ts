// compare() with a target that is a plain object: which documents are compared (Pods,
// workloads, Lists, AdmissionReviews of a Pod CREATE), in order, at most MAX_IN_FLIGHT
// reviews at once, and the first failure ends the comparison.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CompareTarget } from "../../../src/compare/client.js";
import { compare, MAX_IN_FLIGHT } from "../../../src/compare/compare.js";
import { CompareError } from "../../../src/compare/review.js";
import { parseConfig } from "../../../src/config/load.js";
import { podReview } from "../../support/review.js";
import { ourAnswer } from "./stand-in-istiod.js";

const config = parseConfig("{}", "defaults");

function pod(name: string): unknown {
  return { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "a", image: "a" }] } };
}

/** Answers as this injector does, after `hold` resolves; counts the reviews in flight. */
function fakeIstiod(hold: () => Promise<void> = async () => {}): CompareTarget & { sent: unknown[]; most: number } {
  let inFlight = 0;
  const t = {
    name: "fake istiod",
    sent: [] as unknown[],
    most: 0,
    send: async (body: string): Promise<string> => {
      inFlight++;
      t.most = Math.max(t.most, inFlight);
      const review: unknown = JSON.parse(body);
      t.sent.push(review);
      await hold();
      inFlight--;
      return JSON.stringify(ourAnswer(review));
    },
  };
  return t;
}

describe("compare", () => {
  test("Pods, workloads, Lists and Pod CREATE reviews, in order; other reviews and documents are not sent", async () => {
    const target = fakeIstiod();
    const docs = [
      pod("one"),
      { kind: "List", items: [pod("two"), { kind: "Service", metadata: { name: "svc" } }] },
      podReview({ namespace: "shop", object: pod("three") }),
      podReview({ operation: "DELETE", object: pod("gone") }),
      podReview({
        kind: { group: "", version: "v1", kind: "ConfigMap" },
        resource: { group: "", version: "v1", resource: "configmaps" },
        object: { kind: "ConfigMap" },
      }),
      {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "four" },
        spec: { template: { spec: { containers: [{ name: "a", image: "a" }] } } },
      },
    ];
    const entries = await compare(docs, { config, target, namespace: "ns" });
    assert.deepEqual(
      entries.map((e) => `${e.kind}/${e.name} ${e.namespace} ${e.result}`),
      ["Pod/one ns identical", "Pod/two ns identical", "Pod/three shop identical", "Job/four ns identical"],
    );
    assert.equal(target.sent.length, 4);
  });

  test(`at most ${MAX_IN_FLIGHT} reviews in flight, answers kept in order`, async () => {
    // Each review waits until the next tick; with 12 Pods every worker is busy at once.
    const target = fakeIstiod(() => new Promise((r) => setImmediate(r)));
    const names = Array.from({ length: 12 }, (_, i) => `p${i}`);
    const entries = await compare(names.map(pod), { config, target });
    assert.deepEqual(
      entries.map((e) => e.name),
      names,
    );
    assert.equal(target.most, MAX_IN_FLIGHT);
  });

  test("the first failure ends it: no more reviews are sent", async () => {
    let calls = 0;
    const target: CompareTarget = {
      name: "failing istiod",
      send: async () => {
        calls++;
        throw new CompareError("failing istiod: no answer within 10 ms");
      },
    };
    await assert.rejects(
      compare(
        Array.from({ length: 20 }, (_, i) => pod(`p${i}`)),
        { config, target },
      ),
      /failing istiod: no answer within 10 ms/,
    );
    assert.ok(calls <= MAX_IN_FLIGHT, `${calls} reviews sent`);
  });

  test("nothing to compare is an error, not an empty answer", async () => {
    await assert.rejects(
      compare([{ kind: "Service" }], { config, target: fakeIstiod() }),
      (e: unknown) => e instanceof CompareError && /no Pod, workload or AdmissionReview/.test(e.message),
    );
  });
});
