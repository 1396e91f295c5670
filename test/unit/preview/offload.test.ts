// Large /preview bodies are read on the review worker: the same documents or the same refusal
// as reading them on the event loop, the body handed over rather than copied, and over HTTPS
// the same status and answer with the worker as without it.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createReviewPool, OFFLOAD_FROM_BYTES } from "../../../src/admission/review-pool.js";
import { buildConfig } from "../../../src/config/load.js";
import { parsePreviewInput, PreviewError } from "../../../src/preview.js";
import { removeTestCertificates, startTestServer } from "../admission/helpers.js";

const big = (n: number): number => Math.ceil(OFFLOAD_FROM_BYTES / n) + 1;
const container = (i: number): Record<string, unknown> => ({
  name: `c${i}`,
  image: "nginx:1.27",
  ports: [{ containerPort: 80 + (i % 1000) }],
});
const pod = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: "web" }): string =>
  JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata, spec });

/** Bodies of at least OFFLOAD_FROM_BYTES, each answered differently. */
const BODIES: { name: string; format: "json" | "yaml"; body: string }[] = [
  {
    name: "a valid Pod with a long annotation",
    format: "json",
    body: pod({ containers: [container(0)] }, { name: "web", annotations: { note: "x".repeat(OFFLOAD_FROM_BYTES) } }),
  },
  {
    name: "a Pod of 1,000 containers",
    format: "json",
    body: pod({ containers: Array.from({ length: 1000 }, (_, i) => container(i)) }),
  },
  { name: "brackets nested too deep", format: "json", body: "[".repeat(big(2)) + "]".repeat(big(2)) },
  { name: "too many items", format: "json", body: `[${"0,".repeat(big(2))}0]` },
  {
    name: "YAML over its byte limit",
    format: "yaml",
    body: Array.from({ length: big(10) }, (_, i) => `k${i}: ${i}`).join("\n"),
  },
  { name: "YAML sent as JSON, over YAML's limit", format: "json", body: `{a: 1}\n#${"x".repeat(OFFLOAD_FROM_BYTES)}` },
  { name: "JSON that is not JSON", format: "json", body: `{"a": ${"1".repeat(OFFLOAD_FROM_BYTES)}` },
];

const outcome = (f: () => unknown): { docs: unknown } | { error: string } => {
  try {
    return { docs: f() };
  } catch (e) {
    assert.ok(e instanceof PreviewError, String(e));
    return { error: e.message };
  }
};

describe("the review worker reads /preview bodies", () => {
  const pool = createReviewPool(buildConfig({}));
  after(() => pool.close());

  for (const b of BODIES) {
    test(`${b.name}: what parsePreviewInput gives`, async () => {
      assert.ok(Buffer.byteLength(b.body) >= OFFLOAD_FROM_BYTES);
      const here = outcome(() => parsePreviewInput(b.body, b.format));
      const bytes = new TextEncoder().encode(b.body);
      let there: { docs: unknown } | { error: string };
      try {
        there = { docs: await pool.parsePreview(bytes, b.format) };
      } catch (e) {
        assert.ok(e instanceof PreviewError, String(e));
        there = { error: e.message };
      }
      assert.deepEqual(there, here);
      // Handed to the worker, not copied: the caller's buffer is now empty.
      assert.equal(bytes.byteLength, 0);
    });
  }

  test("every case above is told apart: some parse, some are refused, with different messages", () => {
    const seen = BODIES.map((b) => outcome(() => parsePreviewInput(b.body, b.format)));
    assert.ok(seen.filter((s) => "docs" in s).length >= 2);
    const errors = new Set(seen.flatMap((s) => ("error" in s ? [s.error] : [])));
    assert.ok(errors.size >= 4, [...errors].join("\n"));
  });
});

describe("POST /preview answers the same with the worker as without", async () => {
  const withPool = await startTestServer();
  const without = await startTestServer({ offloadLargeReviews: false });
  after(async () => {
    await withPool.close();
    await without.close();
    await removeTestCertificates();
  });

  for (const b of BODIES) {
    test(b.name, async () => {
      const req = { path: "/preview", headers: { "content-type": `application/${b.format}` }, body: b.body };
      const a = await withPool.request(req);
      const c = await without.request(req);
      assert.equal(a.status, c.status);
      assert.equal(a.body, c.body);
      assert.ok(a.status === 200 || a.status === 400, `${a.status} ${a.body.slice(0, 200)}`);
    });
  }
});

describe("a retired pool (its app replaced by a new config's)", () => {
  test("answers the bodies it holds, then ends its worker", async () => {
    const pool = createReviewPool(buildConfig({}));
    const first = BODIES[0];
    assert.ok(first);
    const held = pool.parsePreview(new TextEncoder().encode(first.body), first.format);
    const retired = pool.retire();
    const docs = await held;
    assert.equal(docs.length, 1, "the held body is answered, not cut off by the retirement");
    await retired;
  });
  test("an idle pool, never started, retires at once", async () => {
    await createReviewPool(buildConfig({})).retire();
  });
});
