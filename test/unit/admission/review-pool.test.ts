// The review worker's queue: one job handed over at a time, in order; a job whose caller has
// gone or whose deadline has passed is dropped when its turn comes (ERR_CALLER_GONE), never run;
// MAX_PENDING held at most, the dead ones making room.
//
// Whether a job ran is told by its body: a job handed to the worker takes its buffer with it
// (the caller's view is left empty), one never handed over keeps it. What the tests change
// (a client gone, the clock) they change synchronously after queueing, before the worker can
// have answered anything: an answer comes in a later turn of the event loop. So nothing here
// depends on how fast the machine is.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { AdmissionError } from "../../../src/admission/errors.js";
import { createReviewPool, MAX_PENDING, type JobCaller, type ReviewPool } from "../../../src/admission/review-pool.js";
import { buildConfig } from "../../../src/config/load.js";
import { podReview } from "../../support/review.js";

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
