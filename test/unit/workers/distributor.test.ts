// The primary's choice of worker for each accepted connection (src/workers/distributor.ts):
// least connections, ties round robin, the bound on how long a hand-over waits for its
// acknowledgement and on open connections, and workers that stop accepting or are replaced.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_MAX_CONNECTIONS } from "../../../src/admission/https.js";
import { Distributor } from "../../../src/workers/distributor.js";
import { MAX_HANDOVER_WAIT_MS } from "../../../src/workers/primary.js";

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
  it("refuses a wait that is not a number of milliseconds above 0", () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => new Distributor({ maxWaitMs: bad }), /maxWaitMs must be a number of milliseconds above 0/);
  });

  it("sheds when no worker takes connections", () => {
    const d = new Distributor({ maxWaitMs: 1000 });
    assert.equal(d.choose(0), undefined);
  });

  it("spreads long-lived connections one per worker before any gets a second", () => {
    const d = new Distributor({ maxWaitMs: 1000 });
    for (const id of [1, 2, 3]) d.add(id);
    const open = new Map<number, number>();
    assert.deepEqual(handOut(d, 3, open), [1, 2, 3]);
    assert.deepEqual(handOut(d, 3, open), [1, 2, 3]);
    assert.deepEqual([...open.values()], [2, 2, 2]);
  });

  it("counts hand-overs not yet acknowledged: two at once go to two workers", () => {
    const d = new Distributor({ maxWaitMs: 1000 });
    d.add(1);
    d.add(2);
    const a = d.choose(0);
    const b = d.choose(0);
    assert.deepEqual([a, b], [1, 2]);
  });

  it("gives the next connection to the worker with the fewest open, whatever the turn", () => {
    const d = new Distributor({ maxWaitMs: 1000 });
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
    const d = new Distributor({ maxWaitMs: 1000 });
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

  it("sheds once every worker's oldest hand-over has waited the bound, and takes again after an acknowledgement", () => {
    const d = new Distributor({ maxWaitMs: 100 });
    d.add(1);
    d.add(2);
    assert.deepEqual([d.choose(0), d.choose(0), d.choose(50), d.choose(99)], [1, 2, 1, 2]);
    assert.equal(d.choose(100), undefined);
    assert.equal(d.choose(150), undefined);
    // Worker 2 takes its hand-over of 0: its oldest is now the one of 99.
    d.acknowledged(2, 1);
    assert.equal(d.choose(150), 2);
    assert.equal(d.choose(198), 2);
    assert.equal(d.choose(199), undefined);
    assert.deepEqual(d.loads(), [
      { id: 1, open: 0, unacknowledged: 2 },
      { id: 2, open: 1, unacknowledged: 3 },
    ]);
    assert.deepEqual(d.waits(200), [
      { id: 1, waitedMs: 200 },
      { id: 2, waitedMs: 101 },
    ]);
  });

  it("takes a burst of connections handed at one instant, none acknowledged yet, up to maxOpen per worker", () => {
    // Node hands a worker one connection at a time: a burst is on the way, unacknowledged, for
    // as many of the worker's turns as it has connections. The primary's bounds take it all, as
    // one process takes it; a bound of 16 on the way per worker took 32 of these 64.
    const d = new Distributor({ maxWaitMs: MAX_HANDOVER_WAIT_MS, maxOpen: DEFAULT_MAX_CONNECTIONS });
    d.add(1);
    d.add(2);
    const burst = Array.from({ length: 64 }, () => d.choose(0));
    assert.equal(burst.filter((id) => id === undefined).length, 0);
    assert.equal(burst.filter((id) => id === 1).length, 32);
    // The count is still bounded: maxOpen per worker, open or on the way.
    const rest = Array.from({ length: 2 * DEFAULT_MAX_CONNECTIONS }, () => d.choose(1));
    assert.equal(rest.filter((id) => id !== undefined).length, 2 * DEFAULT_MAX_CONNECTIONS - 64);
    assert.equal(d.choose(2), undefined);
  });

  it("frees the place of a hand-over that never reached the worker", () => {
    const d = new Distributor({ maxWaitMs: 10 });
    d.add(1);
    assert.equal(d.choose(0), 1);
    assert.equal(d.choose(10), undefined);
    d.lost(1);
    assert.deepEqual(d.loads(), [{ id: 1, open: 0, unacknowledged: 0 }]);
    assert.equal(d.choose(10), 1);
  });

  it("skips a worker at the bound even when it has the fewest connections", () => {
    const d = new Distributor({ maxWaitMs: 10 });
    d.add(1);
    d.add(2);
    d.reported(2, 10);
    assert.equal(d.choose(0), 1);
    // Worker 1 (0 open, 1 on the way for 10 ms) is at the bound: worker 2 takes it despite its 10.
    assert.equal(d.choose(10), 2);
    assert.equal(d.choose(20), undefined);
  });

  it("skips a worker at maxOpen, as it would close the connection itself", () => {
    const d = new Distributor({ maxWaitMs: 1000, maxOpen: 3 });
    d.add(1);
    d.add(2);
    d.reported(1, 3);
    d.reported(2, 2);
    assert.equal(d.choose(0), 2);
    assert.equal(d.choose(0), undefined);
    d.reported(1, 2);
    assert.equal(d.choose(0), 1);
  });

  it("skips a worker that stopped accepting, and sheds when none is left", () => {
    const d = new Distributor({ maxWaitMs: 1000 });
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
    const d = new Distributor({ maxWaitMs: 1000 });
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

  it("keeps one id once however often it is added", () => {
    const d = new Distributor({ maxWaitMs: 1 });
    d.add(1);
    d.add(1);
    assert.equal(d.size, 1);
    assert.equal(d.choose(0), 1);
    assert.equal(d.choose(1), undefined);
  });
});
