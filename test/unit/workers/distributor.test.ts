// The primary's choice of worker for each accepted connection (src/workers/distributor.ts):
// least connections, ties round robin, the bound on hand-overs not acknowledged (how many, and
// how long the oldest has waited), and workers that stop accepting or are replaced. With
// maxWaitMs 0 the bound is on the count alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_MAX_CONNECTIONS } from "../../../src/admission/https.js";
import { Distributor } from "../../../src/workers/distributor.js";
import { MAX_HANDOVER_WAIT_MS, MAX_UNACKNOWLEDGED_HANDOVERS } from "../../../src/workers/primary.js";

/** Chooses `n` times at time 0, acknowledging each at once with the worker's open count. */
function handOut(d: Distributor, n: number, open: Map<number, number>): Array<number | undefined> {
  const out: Array<number | undefined> = [];
  for (let i = 0; i < n; i++) {
    const id = d.choose(0);
    out.push(id);
    if (id === undefined) continue;
    const now = (open.get(id) ?? 0) + 1;
    open.set(id, now);
    d.acknowledged(id, now);
  }
  return out;
}

describe("Distributor", () => {
  it("refuses a bound that is not a whole number of at least 1, or a wait that is not a number of ms", () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      assert.throws(
        () => new Distributor({ maxUnacknowledged: bad, maxWaitMs: 0 }),
        /maxUnacknowledged must be a whole number/,
      );
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(
        () => new Distributor({ maxUnacknowledged: 1, maxWaitMs: bad }),
        /maxWaitMs must be a number of milliseconds, at least 0/,
      );
  });

  it("sheds when no worker takes connections", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    assert.equal(d.choose(0), undefined);
  });

  it("spreads long-lived connections one per worker before any gets a second", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    for (const id of [1, 2, 3]) d.add(id);
    const open = new Map<number, number>();
    assert.deepEqual(handOut(d, 3, open), [1, 2, 3]);
    assert.deepEqual(handOut(d, 3, open), [1, 2, 3]);
    assert.deepEqual([...open.values()], [2, 2, 2]);
  });

  it("counts hand-overs not yet acknowledged: two at once go to two workers", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    d.add(1);
    d.add(2);
    const a = d.choose(0);
    const b = d.choose(0);
    assert.deepEqual([a, b], [1, 2]);
  });

  it("gives the next connection to the worker with the fewest open, whatever the turn", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    for (const id of [1, 2, 3]) d.add(id);
    const open = new Map<number, number>();
    handOut(d, 6, open);
    // Worker 2's connections close (reported batched): it takes the next two, then turns resume.
    d.reported(2, 0);
    open.set(2, 0);
    assert.deepEqual(handOut(d, 2, open), [2, 2]);
    assert.deepEqual(handOut(d, 3, open), [3, 1, 2]);
  });

  it("breaks ties round robin from the one after the last chosen", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    for (const id of [1, 2, 3]) d.add(id);
    const chosen: Array<number | undefined> = [];
    // Each connection closes before the next comes: every choice is a tie at 0.
    for (let i = 0; i < 6; i++) {
      const id = d.choose(0);
      chosen.push(id);
      if (id !== undefined) d.acknowledged(id, 0);
    }
    assert.deepEqual(chosen, [1, 2, 3, 1, 2, 3]);
  });

  it("sheds once every worker has the bound of hand-overs unacknowledged, and takes again after an acknowledgement", () => {
    const d = new Distributor({ maxUnacknowledged: 2, maxWaitMs: 0 });
    d.add(1);
    d.add(2);
    assert.deepEqual([d.choose(0), d.choose(0), d.choose(0), d.choose(0)], [1, 2, 1, 2]);
    assert.equal(d.choose(0), undefined);
    assert.equal(d.choose(0), undefined);
    d.acknowledged(2, 1);
    assert.equal(d.choose(0), 2);
    assert.equal(d.choose(0), undefined);
    assert.deepEqual(d.loads(), [
      { id: 1, open: 0, unacknowledged: 2 },
      { id: 2, open: 1, unacknowledged: 2 },
    ]);
  });

  it("skips a worker only when it has the bound on the way and the oldest has waited maxWaitMs", () => {
    const d = new Distributor({ maxUnacknowledged: 2, maxWaitMs: 100 });
    d.add(1);
    // Many on the way but none old: a burst, taken.
    assert.deepEqual([d.choose(0), d.choose(0), d.choose(99)], [1, 1, 1]);
    assert.equal(d.choose(100), undefined);
    assert.deepEqual(d.waits(100), [{ id: 1, waitedMs: 100 }]);
    d.acknowledged(1, 1);
    assert.equal(d.choose(100), undefined);
    d.acknowledged(1, 2);
    // One on the way, however long: a slow turn, not a worker behind.
    assert.equal(d.choose(500), 1);
    assert.equal(d.choose(500), undefined);
    assert.deepEqual(d.loads(), [{ id: 1, open: 2, unacknowledged: 2 }]);
  });

  it("takes a burst handed at one instant with the primary's bounds, where a bound on the count alone shed half", () => {
    // Node hands a worker one connection at a time, the next once it has taken the last: a
    // burst is on the way, unacknowledged, for as many of the worker's turns as it has.
    const burst = (maxWaitMs: number): Array<number | undefined> => {
      const d = new Distributor({
        maxUnacknowledged: MAX_UNACKNOWLEDGED_HANDOVERS,
        maxWaitMs,
        maxOpen: DEFAULT_MAX_CONNECTIONS,
      });
      d.add(1);
      d.add(2);
      return Array.from({ length: 64 }, () => d.choose(0));
    };
    const now = burst(MAX_HANDOVER_WAIT_MS);
    assert.equal(now.filter((id) => id === undefined).length, 0);
    assert.equal(now.filter((id) => id === 1).length, 32);
    assert.equal(burst(0).filter((id) => id === undefined).length, 64 - 2 * MAX_UNACKNOWLEDGED_HANDOVERS);
  });

  it("bounds a burst by maxOpen hand-overs on the way", () => {
    const d = new Distributor({ maxUnacknowledged: 1, maxWaitMs: 1000, maxOpen: 3 });
    d.add(1);
    d.reported(1, 1);
    assert.deepEqual([d.choose(0), d.choose(0), d.choose(0), d.choose(0)], [1, 1, 1, undefined]);
  });

  it("frees the place of a hand-over that never reached the worker", () => {
    const d = new Distributor({ maxUnacknowledged: 1, maxWaitMs: 0 });
    d.add(1);
    assert.equal(d.choose(0), 1);
    assert.equal(d.choose(0), undefined);
    d.lost(1);
    assert.deepEqual(d.loads(), [{ id: 1, open: 0, unacknowledged: 0 }]);
    assert.equal(d.choose(0), 1);
  });

  it("takes off the very hand-over lost, so the oldest one's wait still counts", () => {
    // Hand-overs at 0, 10 and 20 ms; the one of 10 is dropped before it is written (its client
    // reset it). Taking off the oldest instead would say the oldest had waited since 10 ms, and
    // a worker that never acknowledges (stopped) would keep being chosen past the wait bound.
    const d = new Distributor({ maxUnacknowledged: 2, maxWaitMs: 100 });
    d.add(1);
    assert.deepEqual([d.choose(0), d.choose(10), d.choose(20)], [1, 1, 1]);
    d.lost(1, 10);
    assert.deepEqual(d.waits(100), [{ id: 1, waitedMs: 100 }]);
    assert.equal(d.choose(100), undefined, "two on the way, the oldest for the bound");
    d.lost(1, 12345);
    assert.deepEqual(d.waits(100), [{ id: 1, waitedMs: 80 }], "a time not counted: the oldest");
  });

  it("skips a worker at the bound even when it has the fewest connections", () => {
    const d = new Distributor({ maxUnacknowledged: 1, maxWaitMs: 0 });
    d.add(1);
    d.add(2);
    d.reported(2, 10);
    assert.equal(d.choose(0), 1);
    // Worker 1 (0 open, 1 on the way) is at the bound: worker 2 takes it despite its 10.
    assert.equal(d.choose(0), 2);
    assert.equal(d.choose(0), undefined);
  });

  it("hands a connection to a worker at maxOpen open connections, the least loaded first: it makes room or sheds it", () => {
    const d = new Distributor({ maxUnacknowledged: 8, maxWaitMs: 0, maxOpen: 3 });
    d.add(1);
    d.add(2);
    d.reported(1, 3);
    d.reported(2, 2);
    assert.equal(d.choose(0), 2);
    // Both at 3 (open and on the way): in turn.
    assert.deepEqual([d.choose(0), d.choose(0)], [1, 2]);
    assert.deepEqual(
      d.loads().map((l) => l.unacknowledged),
      [1, 2],
    );
  });

  it("skips a worker that stopped accepting, and sheds when none is left", () => {
    const d = new Distributor({ maxUnacknowledged: 4, maxWaitMs: 0 });
    for (const id of [1, 2, 3]) d.add(id);
    assert.equal(d.choose(0), 1);
    d.remove(2);
    assert.equal(d.has(2), false);
    // Worker 1's hand-over is still on the way: 3 first, then the two in turn.
    assert.deepEqual(handOut(d, 3, new Map([[1, 1]])), [3, 1, 3]);
    // Messages from a worker no longer a candidate change nothing.
    d.acknowledged(2, 0);
    d.reported(2, 0);
    d.remove(1);
    d.remove(3);
    assert.equal(d.size, 0);
    assert.equal(d.choose(0), undefined);
  });

  it("gives a replacement its own counts from 0, and it takes the next connections", () => {
    const d = new Distributor({ maxUnacknowledged: 2, maxWaitMs: 0 });
    d.add(1);
    d.add(2);
    const open = new Map<number, number>();
    handOut(d, 4, open);
    assert.equal(d.choose(0), 1);
    // Worker 1 dies with a hand-over on the way; worker 3 replaces it.
    d.remove(1);
    d.add(3);
    assert.deepEqual(d.loads(), [
      { id: 2, open: 2, unacknowledged: 0 },
      { id: 3, open: 0, unacknowledged: 0 },
    ]);
    assert.deepEqual(handOut(d, 2, open), [3, 3]);
    assert.deepEqual(handOut(d, 2, open), [2, 3]);
  });

  it("gives a warming worker connections only when no ready one takes them, then as any other once warmed", () => {
    const d = new Distributor({ maxUnacknowledged: 2, maxWaitMs: 0 });
    // At start every worker warms: each still takes connections (its probes are answered).
    d.add(1, { warming: true });
    d.add(2, { warming: true });
    const open = new Map<number, number>();
    assert.deepEqual(handOut(d, 2, open), [1, 2]);
    d.warmed(1);
    d.warmed(2);
    handOut(d, 2, open);
    // Worker 1 dies; its replacement, 3, warms with no connection at all: the least loaded, yet
    // every new connection goes to the ready worker while it can take one.
    d.remove(1);
    d.add(3, { warming: true });
    assert.deepEqual(handOut(d, 3, open), [2, 2, 2]);
    // The ready one at its bound of hand-overs on the way: the warming one takes the next.
    assert.equal(d.choose(0), 2);
    assert.equal(d.choose(0), 2);
    assert.equal(d.choose(0), 3);
    d.acknowledged(2, 6);
    d.acknowledged(2, 7);
    d.acknowledged(3, 1);
    // Once warm, the least loaded again: the replacement, until it catches up.
    d.warmed(3);
    assert.deepEqual(handOut(d, 2, open), [3, 3]);
  });

  it("keeps one id once however often it is added", () => {
    const d = new Distributor({ maxUnacknowledged: 1, maxWaitMs: 0 });
    d.add(1);
    d.add(1);
    assert.equal(d.size, 1);
    assert.equal(d.choose(0), 1);
    assert.equal(d.choose(0), undefined);
  });
});
