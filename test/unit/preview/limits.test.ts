// /preview's bounds: Pods per request, namespaces looked up per request, bytes of answer; each
// refused with its code, naming the limit and the count, before the work it bounds is done.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import type { Pod } from "../../../src/kube/types.js";
import {
  formatPreview,
  MAX_PREVIEW_ANSWER_BYTES,
  MAX_PREVIEW_NAMESPACES,
  MAX_PREVIEW_PODS,
  preview,
  PreviewLimitError,
  PREVIEW_FORMATS,
  type NamespaceLabelsResult,
  type PreviewOptions,
} from "../../../src/preview.js";

const config = buildConfig({});

function pod(name: string, namespace?: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  };
}

const list = (items: readonly unknown[]): unknown => ({ apiVersion: "v1", kind: "List", items });
const pods = (n: number, ns?: (i: number) => string): Pod[] =>
  Array.from({ length: n }, (_, i) => pod(`p${i}`, ns?.(i)));

async function refusal(p: Promise<unknown>): Promise<PreviewLimitError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PreviewLimitError) return e;
    throw e;
  }
  assert.fail("not refused");
}

function refusalSync(f: () => unknown): PreviewLimitError {
  try {
    f();
  } catch (e) {
    if (e instanceof PreviewLimitError) return e;
    throw e;
  }
  assert.fail("not refused");
}

describe("Pods per request", () => {
  test("the limit is answered, one more is refused, naming the limit and the count", async () => {
    assert.equal((await preview([list(pods(MAX_PREVIEW_PODS))], { config })).length, MAX_PREVIEW_PODS);
    const e = await refusal(preview([list(pods(MAX_PREVIEW_PODS + 1))], { config }));
    assert.equal(e.code, "ERR_PREVIEW_TOO_MANY_PODS");
    assert.deepEqual([e.limit, e.count], [100, 101]);
    assert.match(e.message, /holds 101 Pods, workloads and AdmissionReviews, more than the limit of 100 per request/);
  });

  test("every form counts: List items, documents, workloads, AdmissionReviews", async () => {
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d" },
      spec: { template: { metadata: {}, spec: { containers: [{ name: "a", image: "i" }] } } },
    };
    const review = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: "u",
        kind: { group: "", version: "v1", kind: "Pod" },
        operation: "CREATE",
        namespace: "x",
        object: pod("r"),
      },
    };
    const docs = [list(pods(3)), deployment, review, pod("single")];
    assert.equal((await preview(docs, { config, maxPods: 6 })).length, 6);
    const e = await refusal(preview(docs, { config, maxPods: 5 }));
    assert.deepEqual([e.limit, e.count], [5, 6]);
  });

  test("a 5,000-Pod List is refused before any Pod is injected or a namespace looked up", async () => {
    let lookups = 0;
    const e = await refusal(
      preview([list(pods(5000, (i) => `ns-${i}`))], {
        config,
        lookup: async () => {
          lookups++;
          return new Map();
        },
      }),
    );
    assert.equal(e.code, "ERR_PREVIEW_TOO_MANY_PODS");
    assert.equal(e.count, 5000);
    assert.equal(lookups, 0);
  });

  test("without a bound (the offline CLI) a large List is previewed whole", async () => {
    const entries = await preview([list(pods(MAX_PREVIEW_PODS * 2))], { config, maxPods: Infinity });
    assert.equal(entries.length, 200);
  });
});

describe("namespaces looked up per request", () => {
  const counting = (): { lookup: NonNullable<PreviewOptions["lookup"]>; asked: string[][] } => {
    const asked: string[][] = [];
    return {
      asked,
      lookup: async (namespaces) => {
        asked.push([...namespaces]);
        return new Map(namespaces.map((ns): [string, NamespaceLabelsResult] => [ns, { labels: {} }]));
      },
    };
  };

  test("the limit is looked up in one call; one more is refused before any lookup", async () => {
    const ok = counting();
    await preview([list(pods(MAX_PREVIEW_NAMESPACES, (i) => `ns-${i}`))], { config, lookup: ok.lookup });
    assert.equal(ok.asked.length, 1);
    assert.equal(ok.asked[0]?.length, 20);

    const over = counting();
    const e = await refusal(
      preview([list(pods(MAX_PREVIEW_NAMESPACES + 1, (i) => `ns-${i}`))], { config, lookup: over.lookup }),
    );
    assert.equal(e.code, "ERR_PREVIEW_TOO_MANY_NAMESPACES");
    assert.deepEqual([e.limit, e.count], [20, 21]);
    assert.match(e.message, /21 namespaces whose labels would be looked up, more than the limit of 20 per request/);
    assert.deepEqual(over.asked, []);
  });

  test("namespaces whose labels are given, or not looked up at all, do not count", async () => {
    const c = counting();
    // 20 other namespaces and the one given: 20 looked up.
    const docs = [list([...pods(MAX_PREVIEW_NAMESPACES, (i) => `ns-${i}`), pod("given", "shop")])];
    await preview(docs, { config, namespace: "shop", givenLabels: { "istio-injection": "enabled" }, lookup: c.lookup });
    assert.equal(c.asked[0]?.length, 20);
    assert.ok(!c.asked[0]?.includes("shop"));
    // No lookup (no token, or no cluster access): nothing is asked, nothing refused.
    const entries = await preview([list(pods(MAX_PREVIEW_PODS, (i) => `ns-${i}`))], {
      config,
      notLookedUp: "no bearer token presented",
    });
    assert.equal(entries.length, 100);
    assert.ok(entries.every((e) => e.decision.reasons[0]?.includes("not known (no bearer token presented)")));
  });
});

describe("bytes of answer", () => {
  test("every format: at the limit answered whole, one byte less refused", async () => {
    const entries = await preview([list(pods(5))], { config });
    for (const format of PREVIEW_FORMATS) {
      const whole = formatPreview(entries, format);
      const size = Buffer.byteLength(whole);
      assert.equal(formatPreview(entries, format, size), whole, format);
      const e = refusalSync(() => formatPreview(entries, format, size - 1));
      assert.equal(e.code, "ERR_PREVIEW_ANSWER_TOO_LARGE", format);
      assert.equal(e.limit, size - 1);
      assert.match(
        e.message,
        new RegExp(`larger than the limit of ${size - 1} bytes \\(${size} bytes after 5 of 5 entries\\)`),
        format,
      );
    }
  });

  test("building stops at the first entry past the limit", async () => {
    const entries = await preview([list(pods(100))], { config });
    const e = refusalSync(() => formatPreview(entries, "json", 50_000));
    assert.match(e.message, / bytes after 3 of 100 entries\)/, "24 KB an entry: the third passes 50 KB");
    assert.ok(e.count < 50_000 + 30_000, `${e.count} bytes built, not the whole 2.4 MB`);
  });

  test("100 one-container Pods fit the answer limit in every format", async () => {
    const entries = await preview([list(pods(MAX_PREVIEW_PODS))], { config });
    for (const format of PREVIEW_FORMATS) {
      assert.ok(
        Buffer.byteLength(formatPreview(entries, format, MAX_PREVIEW_ANSWER_BYTES)) <= MAX_PREVIEW_ANSWER_BYTES,
        format,
      );
    }
  });
});
