// /preview's bounds beside the body limits: the share of the event loop previews may take
// (work-budget.ts; a flood is refused at once, 503 with Retry-After, so that reviews and probes
// are not queued behind it), the slices one preview holds the loop for (its Pods read a slice
// at a time, the loop given back between them), and the bytes of answers not yet taken by their
// clients (counted with the bodies being read, holdAnswer; 503 past it).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { request as httpsRequest } from "node:https";
import { WorkBudget, type Admitted } from "../../../src/admission/work-budget.js";
import { buildConfig } from "../../../src/config/load.js";
import {
  INLINE_TEMPLATE_UNITS,
  INLINE_TEMPLATES_CHARS,
  TEMPLATE_OWN_UNITS,
} from "../../../src/injection/inline-cost.js";
import {
  formatPreview,
  formatPreviewInSlices,
  MAX_PREVIEW_PODS,
  preview as previewPods,
  PREVIEW_FORMATS,
  PreviewLimitError,
  type PreviewEntry,
} from "../../../src/preview.js";
import { podReview } from "../../support/review.js";
import { JSON_HEADERS, startTestServer, type TestServer } from "../admission/helpers.js";

const POD = JSON.stringify({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "shop" },
  spec: { containers: [{ name: "web", image: "nginx" }] },
});
const preview = (s: TestServer) =>
  s.request({ path: "/preview?namespaceLabels=istio-injection=enabled", headers: JSON_HEADERS, body: POD });

describe("/preview: the share of the event loop", () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  test("past its share, a preview is refused at once, 503 with Retry-After; reviews are still answered", async () => {
    let now = 0;
    // A clock that does not move: nothing drains, so what previews took stays in the bucket.
    const s = await startTestServer({ previewWork: new WorkBudget(0.5, 20, () => now) });
    servers.push(s);
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof preview>> | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const res = await preview(s);
      statuses.push(res.status);
      if (res.status !== 200) refused = res;
    }
    assert.ok(refused, `no preview refused in ${statuses.length}`);
    assert.ok(statuses.length >= 2, "the first previews are answered");
    assert.equal(refused.status, 503);
    assert.equal(refused.headers["retry-after"], "1");
    const body = JSON.parse(refused.body) as { kind: string; error: { code: string; message: string } };
    assert.equal(body.kind, "Status");
    assert.equal(body.error.code, "ERR_OVERLOADED");
    assert.match(body.error.message, /share of the server's time/);
    const review = await s.request({ path: "/inject", headers: JSON_HEADERS, body: JSON.stringify(podReview()) });
    assert.equal(review.status, 200, "the webhook is not held back by the previews");
    // Once the clock has drained the bucket, previews are answered again.
    now += 60_000;
    assert.equal((await preview(s)).status, 200);
  });
});

/**
 * A List of `pods` Pods, each as costly as is previewed inline: as many grpc-agent templates as
 * the templates annotation may name inline, over as many containers as the templates' work then
 * allows (each Pod 10-20 ms of the engine's time).
 */
function costlyList(pods: number): { apiVersion: string; kind: string; items: unknown[] } {
  const names = Math.floor((INLINE_TEMPLATES_CHARS + 1) / "grpc-agent,".length);
  const containers = Math.floor(INLINE_TEMPLATE_UNITS / names) - TEMPLATE_OWN_UNITS;
  const templates = Array.from({ length: names }, () => "grpc-agent").join(",");
  return {
    apiVersion: "v1",
    kind: "List",
    items: Array.from({ length: pods }, (_, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `p${i}`, namespace: "shop", annotations: { "inject.istio.io/templates": templates } },
      spec: { containers: Array.from({ length: containers }, (_, j) => ({ name: `c${j}`, image: "nginx" })) },
    })),
  };
}

describe("/preview: one preview gives the event loop back between its Pods", () => {
  const labels = { givenLabels: { "istio-injection": "enabled" }, config: buildConfig({}) };
  const small = {
    apiVersion: "v1",
    kind: "List",
    items: Array.from({ length: 6 }, (_, i) => JSON.parse(POD.replace('"web"', `"web${i}"`)) as unknown),
  };
  const patches = (entries: readonly PreviewEntry[]) => entries.map((e) => [e.name, e.decision, e.patch]);

  test("once a slice's time has passed, it pauses before the next Pod; the entries are those read at once", async () => {
    const whole = await previewPods([small], labels);
    let pauses = 0;
    let clock = 0;
    // Each reading of the clock a millisecond after the last: every check finds the slice spent.
    const sliced = await previewPods([small], {
      ...labels,
      slices: { ms: 1, now: () => ++clock, pause: () => Promise.resolve(void pauses++) },
    });
    assert.equal(pauses, small.items.length);
    assert.deepEqual(patches(sliced), patches(whole));
    // A clock that does not move: the slice is never spent, no pause.
    const unmoved = await previewPods([small], {
      ...labels,
      slices: { ms: 1, now: () => 0, pause: () => Promise.resolve(void pauses++) },
    });
    assert.equal(pauses, small.items.length);
    assert.deepEqual(patches(unmoved), patches(whole));
  });

  test("no Pod is read before the preview's turn begins", async () => {
    let pauses = 0;
    let begin!: () => void;
    let asked = false;
    const previewed = previewPods([small], {
      ...labels,
      slices: {
        ms: 0,
        pause: () => Promise.resolve(void pauses++),
        begin: () => {
          asked = true;
          return new Promise<void>((resolve) => (begin = resolve));
        },
      },
    });
    await new Promise((done) => setImmediate(done));
    assert.ok(asked, "the turn is asked for");
    assert.equal(pauses, 0, "no Pod read (each is preceded by a pause here)");
    begin();
    assert.equal((await previewed).length, small.items.length);
    assert.equal(pauses, small.items.length);
  });

  test("the answer, formatted a slice at a time, is formatPreview's text in every format; past the limit, the same refusal", async () => {
    const entries = await previewPods([small], labels);
    for (const format of PREVIEW_FORMATS) {
      let pauses = 0;
      let clock = 0;
      const slices = { ms: 1, now: () => ++clock, pause: () => Promise.resolve(void pauses++) };
      const whole = formatPreview(entries, format);
      assert.equal(await formatPreviewInSlices(entries, format, Infinity, slices), whole, format);
      // A pause after each entry's piece (the JSON and YAML answers' opening and closing pieces too).
      assert.ok(pauses >= entries.length, `${format}: ${pauses} pauses for ${entries.length} entries`);
      const max = Buffer.byteLength(whole) - 1;
      const refusal = (() => {
        try {
          formatPreview(entries, format, max);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(refusal instanceof PreviewLimitError, format);
      await assert.rejects(formatPreviewInSlices(entries, format, max, slices), (e: unknown) => {
        assert.ok(e instanceof PreviewLimitError);
        assert.equal(e.message, refusal.message);
        return true;
      });
    }
  });

  test("the server's longest stall in a preview of many costly Pods is a small part of the preview's time", async () => {
    // Previews one after the other, each seconds of work: not refused for their share.
    const s = await startTestServer({ previewWork: new WorkBudget(0.5, Infinity) });
    const delay = monitorEventLoopDelay({ resolution: 1 });
    try {
      const send = (pods: number) =>
        s.request({
          path: "/preview?format=summary&namespaceLabels=istio-injection=enabled",
          headers: JSON_HEADERS,
          body: JSON.stringify(costlyList(pods)),
        });
      // The review worker (which parses bodies of 64 KiB or more) started and the templates'
      // code compiled before it is timed.
      assert.equal((await send(MAX_PREVIEW_PODS)).status, 200);
      const from = performance.now();
      delay.enable();
      const res = await send(MAX_PREVIEW_PODS);
      delay.disable();
      const tookMs = performance.now() - from;
      assert.equal(res.status, 200, res.body.slice(0, 500));
      assert.equal(res.body.match(/^Pod\//gm)?.length, MAX_PREVIEW_PODS, res.body.slice(0, 300));
      // Read at once, the Pods held the loop for most of the preview (1.5 s on a busy 2-core
      // machine); a slice at a time, for about a Pod's work.
      const stallMs = delay.max / 1e6;
      assert.ok(
        stallMs < tookMs / 4,
        `the loop stalled ${stallMs.toFixed(1)} ms in a preview of ${tookMs.toFixed(0)} ms`,
      );
    } finally {
      delay.disable();
      await s.close();
    }
  });
});

describe("/preview: a preview whose client goes stops at its next slice", () => {
  test("the client gone mid-preview: no more Pods read, a warn line 'preview dropped', no answer logged", async () => {
    let progressed!: () => void;
    const working = new Promise<void>((resolve) => (progressed = resolve));
    // The budget's progress is called at each pause: the preview is under way.
    class Watched extends WorkBudget {
      override progress(ms: number, admitted: Admitted): void {
        super.progress(ms, admitted);
        progressed();
      }
    }
    const s = await startTestServer({ previewWork: new Watched(0.5, Infinity) });
    try {
      const body = JSON.stringify(costlyList(MAX_PREVIEW_PODS));
      const req = httpsRequest({
        host: "127.0.0.1",
        port: s.running.port,
        path: "/preview?format=summary&namespaceLabels=istio-injection=enabled",
        method: "POST",
        ca: s.ca,
        headers: { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) },
      });
      req.on("error", () => undefined);
      req.end(body);
      await working;
      req.destroy();
      let dropped: Record<string, unknown> | undefined;
      for (let i = 0; i < 600 && dropped === undefined; i++) {
        await new Promise((done) => setTimeout(done, 50));
        dropped = s.logs.lines().find((l) => l.msg === "preview dropped");
      }
      assert.ok(dropped, s.logs.text().slice(-2000));
      assert.equal(dropped.code, "ERR_CALLER_GONE");
      assert.equal(s.logs.lines().filter((l) => l.msg === "preview").length, 0, "no answer was made");
      // Its turn was given up: the next preview is answered.
      const next = await s.request({
        path: "/preview?format=summary&namespaceLabels=istio-injection=enabled",
        headers: JSON_HEADERS,
        body: JSON.stringify(costlyList(1)),
      });
      assert.equal(next.status, 200, next.body);
    } finally {
      await s.close();
    }
  });
});

describe("/preview: answers not yet taken count in the budget of bodies being read", () => {
  test("an answer that would pass the budget is refused, 503; within it, answered", async () => {
    const small = await startTestServer({ maxBufferedBodyBytes: 4096 });
    const roomy = await startTestServer();
    try {
      const ok = await preview(roomy);
      assert.equal(ok.status, 200);
      assert.ok(Buffer.byteLength(ok.body) > 4096, `the answer is ${Buffer.byteLength(ok.body)} bytes`);
      const refused = await preview(small);
      assert.equal(refused.status, 503);
      assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, "ERR_OVERLOADED");
    } finally {
      await small.close();
      await roomy.close();
    }
  });
});

describe("/preview: query parameters given once, as a plain value", () => {
  test("a parameter twice or as a list, a format not known, a namespace no namespace can be named: 400, naming it", async () => {
    const s = await startTestServer();
    try {
      const cases: [string, RegExp][] = [
        ["namespaceLabels=a=b&namespaceLabels=c=d", /query parameter namespaceLabels: give it once/],
        ["namespaceLabels[]=a=b", /query parameter namespaceLabels: give it once/],
        ["namespace=a&namespace=b", /query parameter namespace: give it once/],
        ["format=summary&format=diff", /query parameter format: give it once/],
        ["format=DIFF", /query parameter format: "DIFF" is not one of summary, diff/],
        ["namespace=..%2F..%2Fx", /query parameter namespace: "..\/..\/x" cannot be a namespace's name/],
      ];
      for (const [query, message] of cases) {
        const res = await s.request({ path: `/preview?${query}`, headers: JSON_HEADERS, body: POD });
        assert.equal(res.status, 400, query);
        const body = JSON.parse(res.body) as { error: { code: string; message: string } };
        assert.equal(body.error.code, "ERR_PREVIEW_INPUT", query);
        assert.match(body.error.message, message, query);
      }
      const fine = await s.request({
        path: "/preview?namespace=shop&format=summary&other=1",
        headers: JSON_HEADERS,
        body: POD,
      });
      assert.equal(fine.status, 200, "known parameters once, and others, are answered");
    } finally {
      await s.close();
    }
  });
});
