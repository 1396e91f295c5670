// The review worker's queue: one job handed over at a time, in order; a job whose caller has
// gone or whose deadline has passed is dropped when its turn comes (ERR_CALLER_GONE), never run;
// MAX_PENDING held at most, the dead ones making room.
//
// Whether a job ran is told by its body: a job handed to the worker takes its buffer with it
// (the caller's view is left empty), one never handed over keeps it. What the tests change
// (a client gone, the clock) they change synchronously after queueing, before the worker can
// have answered anything: an answer comes in a later turn of the event loop. So nothing here
// depends on how fast the machine is.
//
// Through the server: a review dropped is logged once and counted; its deadline is the API
// server's `?timeout=` or the request timeout, from when its headers were read (the tests send
// the last byte of the body only after waiting longer than that since the request was counted).
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import type { IncomingMessage, ServerResponse } from "node:http";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import { AdmissionError } from "../../../src/admission/errors.js";
import {
  createReviewPool,
  MAX_PENDING,
  OFFLOAD_FROM_BYTES,
  type JobCaller,
  type ReviewPool,
} from "../../../src/admission/review-pool.js";
import { createApp } from "../../../src/admission/server.js";
import { buildConfig } from "../../../src/config/load.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { createMetrics, type Metrics } from "../../../src/telemetry/metrics.js";
import { captureLogs, podReview, removeTestCertificates, startTestServer, type TestServer } from "./helpers.js";

after(removeTestCertificates);

const config = buildConfig({});

/** A caller, as much of its response as the pool reads; `gone()` closes its connection. */
function caller(waitsMs = Infinity): JobCaller & { gone(): void } {
  const res = { closed: false, destroyed: false, req: { socket: { destroyed: false } } };
  return {
    res,
    waitsMs,
    gone() {
      res.req.socket.destroyed = true;
      res.destroyed = true;
    },
  };
}

const injectable = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web" },
  spec: { containers: [{ name: "app", image: "nginx" }] },
};

/** A review's bytes, owning their buffer (so handed over, not copied). */
const review = (uid: string): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(podReview({ uid, object: injectable })));

/** A /preview body's bytes. */
const previewBody = (): Uint8Array => new TextEncoder().encode(JSON.stringify(injectable));

type Settled = { uid: string } | { docs: number } | { code: string; message: string };

/** What a job settles to: its answer's uid, or the code of its refusal. */
async function settled(p: Promise<{ body: Uint8Array } | unknown[]>): Promise<Settled> {
  try {
    const answer = await p;
    if (Array.isArray(answer)) return { docs: answer.length };
    const json = JSON.parse(new TextDecoder().decode(answer.body)) as { response: { uid: string } };
    return { uid: json.response.uid };
  } catch (e) {
    assert.ok(e instanceof AdmissionError, String(e));
    return { code: e.code, message: e.message };
  }
}

/**
 * One pool for the tests that leave it idle (a worker takes most of a second to start under
 * tsx), on a clock they move forward.
 */
const clock = { t: 0 };
const shared = createReviewPool(config, { now: () => clock.t });
after(() => shared.close());

async function withPool<T>(f: (pool: ReviewPool, clock: { t: number }) => Promise<T>): Promise<T> {
  return await f(shared, clock);
}

describe("the review worker's queue", () => {
  it("does not run a job whose client disconnected while it waited; runs those before and after it", async () => {
    await withPool(async (pool) => {
      const bodies = ["a", "b", "c"].map(review);
      const callers = bodies.map(() => caller());
      const jobs = bodies.map((b, i) => settled(pool.run(b, {}, undefined, callers[i])));
      // "a" is on the worker; "b" and "c" wait. "b"'s client goes.
      callers[1]?.gone();
      const [a, b, c] = await Promise.all(jobs);
      assert.deepEqual(a, { uid: "a" });
      assert.deepEqual(c, { uid: "c" });
      assert.ok(b !== undefined && "code" in b, JSON.stringify(b));
      assert.equal(b.code, "ERR_CALLER_GONE");
      assert.match(b.message, /client closed the connection/);
      assert.deepEqual(
        bodies.map((x) => x.byteLength > 0),
        [false, true, false],
        "only the jobs run were handed to the worker",
      );
    });
  });

  it("answers a job already on the worker when its client goes (it cannot be taken back)", async () => {
    await withPool(async (pool) => {
      const c = caller();
      const job = settled(pool.run(review("on-worker"), {}, undefined, c));
      c.gone();
      assert.deepEqual(await job, { uid: "on-worker" });
    });
  });

  it("does not run a job whose deadline passed while it waited; runs one whose deadline has not", async () => {
    await withPool(async (pool, clock) => {
      const bodies = ["first", "late", "in-time", "no-caller"].map(review);
      const jobs = [
        settled(pool.run(bodies[0] ?? review(""), {}, undefined, caller(1_000))),
        settled(pool.run(bodies[1] ?? review(""), {}, undefined, caller(1_000))),
        settled(pool.run(bodies[2] ?? review(""), {}, undefined, caller(5_000))),
        // Without a caller: run, whatever the clock.
        settled(pool.run(bodies[3] ?? review(""), {}, undefined)),
      ];
      clock.t += 1_000;
      const [first, late, inTime, noCaller] = await Promise.all(jobs);
      assert.deepEqual(first, { uid: "first" }, "on the worker before its deadline: answered");
      assert.ok(late !== undefined && "code" in late, JSON.stringify(late));
      assert.equal(late.code, "ERR_CALLER_GONE");
      assert.match(late.message, /deadline/);
      assert.deepEqual(inTime, { uid: "in-time" });
      assert.deepEqual(noCaller, { uid: "no-caller" });
      assert.deepEqual(
        bodies.map((x) => x.byteLength > 0),
        [false, true, false, false],
      );
    });
  });

  it("drops at once, unrun, a job whose deadline has passed when it is queued, the worker idle", async () => {
    await withPool(async (pool) => {
      const body = review("expired");
      const job = await settled(pool.run(body, {}, undefined, caller(-1)));
      assert.ok("code" in job && job.code === "ERR_CALLER_GONE", JSON.stringify(job));
      assert.ok(body.byteLength > 0, "never handed over");
      // And the next one is run.
      assert.deepEqual(await settled(pool.run(review("next"), {}, undefined, caller(1))), { uid: "next" });
    });
  });

  it("answers in the order queued", async () => {
    await withPool(async (pool) => {
      const order: string[] = [];
      const uids = Array.from({ length: MAX_PENDING }, (_, i) => `r${i}`);
      await Promise.all(
        uids.map((uid) =>
          pool.run(review(uid), {}, undefined, caller()).then((a) => {
            const json = JSON.parse(new TextDecoder().decode(a.body)) as { response: { uid: string } };
            order.push(json.response.uid);
          }),
        ),
      );
      assert.deepEqual(order, uids);
    });
  });

  it("sheds past MAX_PENDING held with ERR_OVERLOADED, the shed job never handed over", async () => {
    await withPool(async (pool) => {
      const held = Array.from({ length: MAX_PENDING }, (_, i) =>
        settled(pool.run(review(`h${i}`), {}, undefined, caller())),
      );
      const shedBody = review("shed");
      const shed = await settled(pool.run(shedBody, {}, undefined, caller()));
      assert.ok("code" in shed && shed.code === "ERR_OVERLOADED", JSON.stringify(shed));
      assert.ok(shedBody.byteLength > 0);
      const answers = await Promise.all(held);
      assert.deepEqual(
        answers,
        Array.from({ length: MAX_PENDING }, (_, i) => ({ uid: `h${i}` })),
      );
    });
  });

  it("makes room past MAX_PENDING by dropping the waiting jobs no one wants, not by shedding a live one", async () => {
    await withPool(async (pool, clock) => {
      const callers = Array.from({ length: MAX_PENDING }, (_, i) => caller(i === 3 ? 1_000 : Infinity));
      const held = callers.map((c, i) => settled(pool.run(review(`h${i}`), {}, undefined, c)));
      // h0 is on the worker; of those waiting, h2's and h5's clients go and h3's deadline passes.
      callers[2]?.gone();
      callers[5]?.gone();
      clock.t += 2_000;
      const more = ["m0", "m1", "m2"].map((uid) => settled(pool.run(review(uid), {}, undefined, caller())));
      const shed = await settled(pool.run(review("shed"), {}, undefined, caller()));
      assert.ok("code" in shed && shed.code === "ERR_OVERLOADED", JSON.stringify(shed));
      const answers = await Promise.all([...held, ...more]);
      const codeOf = (s: Settled | undefined): string | undefined => (s && "code" in s ? s.code : undefined);
      assert.deepEqual(
        answers.map((s) => codeOf(s) ?? (s && "uid" in s ? s.uid : "?")),
        ["h0", "h1", "ERR_CALLER_GONE", "ERR_CALLER_GONE", "h4", "ERR_CALLER_GONE", "h6", "h7", "m0", "m1", "m2"],
      );
    });
  });

  it("drops a /preview body the same way, and reads one still wanted", async () => {
    await withPool(async (pool) => {
      const gone = caller();
      const bodies = [review("first"), previewBody(), previewBody()];
      const jobs = [
        settled(pool.run(bodies[0] ?? review(""), {}, undefined, caller())),
        settled(pool.parsePreview(bodies[1] ?? previewBody(), "json", gone)),
        settled(pool.parsePreview(bodies[2] ?? previewBody(), "json", caller())),
      ];
      gone.gone();
      const [first, dropped, read] = await Promise.all(jobs);
      assert.deepEqual(first, { uid: "first" });
      assert.ok(dropped !== undefined && "code" in dropped && dropped.code === "ERR_CALLER_GONE");
      assert.match(dropped.message, /preview body/);
      assert.deepEqual(read, { docs: 1 });
      assert.deepEqual(
        bodies.map((x) => x.byteLength > 0),
        [false, true, false],
      );
    });
  });

  it("retired, answers the jobs it holds but those no one wants, then ends its worker", async () => {
    const pool = createReviewPool(config);
    const gone = caller();
    const kept = settled(pool.run(review("kept"), {}, undefined, caller()));
    const dropped = settled(pool.run(review("dropped"), {}, undefined, gone));
    const last = settled(pool.run(review("last"), {}, undefined, caller()));
    gone.gone();
    const retired = pool.retire();
    assert.deepEqual(await kept, { uid: "kept" });
    const d = await dropped;
    assert.ok("code" in d && d.code === "ERR_CALLER_GONE", JSON.stringify(d));
    assert.deepEqual(await last, { uid: "last" });
    await retired;
  });

  it("closed, rejects every job it holds, the waiting ones unrun", async () => {
    const pool = createReviewPool(config);
    const bodies = ["a", "b"].map(review);
    const jobs = bodies.map((b) =>
      pool.run(b, {}, undefined, caller()).then(
        () => "answered",
        () => "rejected",
      ),
    );
    await pool.close();
    assert.deepEqual(await Promise.all(jobs), ["rejected", "rejected"]);
    assert.ok((bodies[1]?.byteLength ?? 0) > 0, "the waiting one was never handed over");
  });
});

/** The failures counted with `reason`. */
async function failures(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.failure.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** A review of OFFLOAD_FROM_BYTES or more (for the worker), as JSON. */
function largeReview(uid: string): string {
  const labels: Record<string, string> = {};
  for (let i = 0; i * 12 < OFFLOAD_FROM_BYTES; i++) labels[`label-${i}`] = "v";
  const body = JSON.stringify(podReview({ uid, object: { ...injectable, metadata: { name: uid, labels } } }));
  assert.ok(body.length >= OFFLOAD_FROM_BYTES);
  return body;
}

/**
 * POSTs `body` to `path` on a connection of its own, its last byte sent only `waitMs` after the
 * server began the request (its headers read: the request counted), so that any deadline of
 * less has passed by the time the review could wait for the worker. The whole raw answer
 * (`Connection: close`: the server closes after it). The connection is never half-closed: the
 * server would take that for a client gone.
 */
async function staged(s: TestServer, path: string, body: string, waitMs: number): Promise<string> {
  const requests = async (): Promise<number> => (await s.metrics.requests.get()).values[0]?.value ?? 0;
  const socket = tls.connect({ host: "127.0.0.1", port: s.running.port, ca: s.ca });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  const answer = new Promise<string>((resolve) => {
    let text = "";
    socket.on("data", (c: Buffer) => (text += c.toString("latin1")));
    socket.on("close", () => resolve(text));
    socket.on("error", () => resolve(text));
  });
  const before = await requests();
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, -1)}`,
  );
  while ((await requests()) === before) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, waitMs));
  socket.write(body.slice(-1));
  return await answer;
}

describe("POST /inject: a large review no one waits for any more", () => {
  it("whose client has gone is not worked on, and logged once as dropped, with no status, and counted", async () => {
    const logs = captureLogs();
    const metrics = createMetrics();
    const app = createApp({ config, logger: createLogger({ destination: logs.stream }), metrics, isReady: () => true });
    try {
      // A request read whole, whose connection has closed by the time it would be handed over.
      const req = Object.assign(Readable.from([Buffer.from(largeReview("gone"))]), {
        method: "POST",
        url: "/inject?timeout=10s",
        headers: { "content-type": "application/json" },
      });
      const res = { closed: true, destroyed: true, headersSent: false, writableEnded: false, req };
      Object.assign(req, { socket: { destroyed: true } });
      app(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      const dropped = (): Record<string, unknown>[] =>
        logs.lines().filter((l) => l.msg === "admission request dropped" || l.msg === "admission review");
      for (let i = 0; i < 1_000 && dropped().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      const lines = dropped();
      assert.equal(lines.length, 1, JSON.stringify(lines));
      const line = lines[0] ?? {};
      assert.equal(line.msg, "admission request dropped");
      assert.equal(line.code, "ERR_CALLER_GONE");
      assert.equal(line.status, undefined, "nothing was sent");
      assert.match(String(line.message), /client closed the connection/);
      assert.equal(await failures(metrics, "ERR_CALLER_GONE"), 1);
    } finally {
      await app.retire();
    }
  });

  it("past the API server's ?timeout=, is answered 504 unworked, logged once and counted", async () => {
    const s = await startTestServer();
    try {
      const [late, answered] = await Promise.all([
        staged(s, "/inject?timeout=1s", largeReview("late"), 1_100),
        staged(s, "/inject?timeout=30s", largeReview("in-time"), 1_100),
      ]);
      assert.match(late, /^HTTP\/1\.1 504 /);
      assert.match(late, /"code":"ERR_CALLER_GONE"/);
      assert.match(answered, /^HTTP\/1\.1 200 /);
      assert.match(answered, /"uid":"in-time"/);
      const lines = s.logs.lines();
      const dropped = lines.filter((l) => l.msg === "admission request dropped");
      assert.equal(dropped.length, 1, JSON.stringify(dropped));
      assert.equal(dropped[0]?.code, "ERR_CALLER_GONE");
      assert.equal(dropped[0]?.status, 504);
      assert.match(String(dropped[0]?.message), /deadline/);
      assert.deepEqual(
        lines.filter((l) => l.msg === "admission review").map((l) => l.uid),
        ["in-time"],
        "the late one was never answered as a review",
      );
      assert.equal(await failures(s.metrics, "ERR_CALLER_GONE"), 1);
    } finally {
      await s.close();
    }
  });

  it("past the server's own request timeout, without ?timeout=, is dropped too", async () => {
    const s = await startTestServer({ requestTimeoutMs: 50 });
    try {
      const late = await staged(s, "/inject", largeReview("slow"), 100);
      assert.match(late, /^HTTP\/1\.1 504 [^]*"code":"ERR_CALLER_GONE"/);
      assert.equal(await failures(s.metrics, "ERR_CALLER_GONE"), 1);
    } finally {
      await s.close();
    }
  });
});

describe("POST /preview: a large body no one waits for any more", () => {
  it("past its deadline when it would wait for the worker, is answered 504 unread; a small one is answered", async () => {
    // A microsecond: reading a body of 64 KiB over TLS takes longer, whatever the machine.
    const s = await startTestServer({ requestTimeoutMs: 0.001 });
    try {
      const large = JSON.stringify({
        ...injectable,
        metadata: { name: "web", labels: { note: "x".repeat(OFFLOAD_FROM_BYTES) } },
      });
      const headers = { "content-type": "application/json" };
      const late = await s.request({ path: "/preview", headers, body: large });
      assert.equal(late.status, 504, late.body);
      assert.equal((late.json().error as { code: string }).code, "ERR_CALLER_GONE");
      const small = await s.request({ path: "/preview", headers, body: JSON.stringify(injectable) });
      assert.equal(small.status, 200, small.body);
    } finally {
      await s.close();
    }
  });
});
