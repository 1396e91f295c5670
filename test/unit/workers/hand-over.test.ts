// The primary's queue of connections on their way to one worker (src/workers/hand-over.ts): one
// written at a time, the next once the last is acknowledged; one whose client has gone by its
// turn is closed, never written. Sockets are plain objects here, except for clientGone, which
// asks the system about real connections on 127.0.0.1.
import assert from "node:assert/strict";
import net, { Socket } from "node:net";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { clientGone, HandOverQueue, type HandOver } from "../../../src/workers/hand-over.js";

/** A queue whose writes are kept (each with its callback), over sockets the test says are gone or not. */
function fakeQueue(ackTimeoutMs = 1_000): {
  queue: HandOverQueue;
  written: HandOver[];
  done: Map<number, (err: Error | null) => void>;
  dropped: Array<{ id: number; why: string }>;
  gone: Set<Socket>;
  clock: { now: number };
  handOver(id: number): HandOver;
} {
  const written: HandOver[] = [];
  const done = new Map<number, (err: Error | null) => void>();
  const dropped: Array<{ id: number; why: string }> = [];
  const gone = new Set<Socket>();
  const clock = { now: 0 };
  const queue = new HandOverQueue({
    write: (h, cb) => {
      written.push(h);
      done.set(h.id, cb);
    },
    dropped: (h, why) => dropped.push({ id: h.id, why }),
    ackTimeoutMs,
    gone: (s) => gone.has(s),
    now: () => clock.now,
  });
  return {
    queue,
    written,
    done,
    dropped,
    gone,
    clock,
    handOver: (id) => ({ id, socket: new Socket(), listener: "webhook", at: id }),
  };
}

const ids = (hs: readonly HandOver[]): number[] => hs.map((h) => h.id);

describe("HandOverQueue", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("writes one hand-over at a time, the next once the worker has acknowledged the last", () => {
    const q = fakeQueue();
    const [a, b, c] = [q.handOver(1), q.handOver(2), q.handOver(3)];
    for (const h of [a, b, c]) q.queue.push(h);
    assert.deepEqual(ids(q.written), [1]);
    assert.equal(q.queue.size, 3);
    assert.equal(q.queue.acknowledged(1), a);
    // The primary's descriptor of a connection the worker has is closed.
    assert.equal(a.socket.destroyed, true);
    assert.equal(b.socket.destroyed, false);
    assert.deepEqual(ids(q.written), [1, 2]);
    assert.equal(q.queue.acknowledged(99), undefined, "an id never written");
    q.queue.acknowledged(2);
    q.queue.acknowledged(3);
    assert.deepEqual(ids(q.written), [1, 2, 3]);
    assert.equal(q.queue.size, 0);
    assert.deepEqual(q.dropped, []);
  });

  it("never writes a connection whose client has gone by its turn: closed, dropped, and the next written at once", () => {
    const q = fakeQueue();
    const hs = [1, 2, 3, 4].map((id) => q.handOver(id));
    for (const h of hs) q.queue.push(h);
    // Reset while waiting behind the first: the two in the middle.
    q.gone.add(hs[1]?.socket as Socket);
    q.gone.add(hs[2]?.socket as Socket);
    q.queue.acknowledged(1);
    assert.deepEqual(ids(q.written), [1, 4]);
    assert.deepEqual(q.dropped, [
      { id: 2, why: "gone" },
      { id: 3, why: "gone" },
    ]);
    assert.equal(hs[1]?.socket.destroyed, true);
    assert.equal(hs[2]?.socket.destroyed, true);
    // Gone when it comes: never written either.
    q.queue.acknowledged(4);
    const late = q.handOver(5);
    q.gone.add(late.socket);
    q.queue.push(late);
    assert.deepEqual(ids(q.written), [1, 4]);
    assert.deepEqual(q.dropped.at(-1), { id: 5, why: "gone" });
  });

  it("purges the waiting ones whose clients have gone, the one written untouched", () => {
    const q = fakeQueue();
    const hs = [1, 2, 3].map((id) => q.handOver(id));
    for (const h of hs) q.queue.push(h);
    for (const h of hs) q.gone.add(h.socket);
    assert.equal(q.queue.purge(), 2);
    assert.deepEqual(q.dropped, [
      { id: 3, why: "gone" },
      { id: 2, why: "gone" },
    ]);
    assert.equal(q.queue.size, 1);
    assert.equal(hs[0]?.socket.destroyed, false, "written: the worker has it, or will");
  });

  it("lets one never acknowledged hold the next back for the acknowledgement timeout at most", () => {
    const q = fakeQueue(1_000);
    for (const id of [1, 2, 3]) q.queue.push(q.handOver(id));
    assert.deepEqual(ids(q.written), [1]);
    q.clock.now = 400;
    assert.equal(q.queue.stalledFor(), 400);
    mock.timers.tick(999);
    q.clock.now = 999;
    assert.deepEqual(ids(q.written), [1]);
    q.clock.now = 1_000;
    mock.timers.tick(1);
    assert.deepEqual(ids(q.written), [1, 2], "written after the timeout");
    assert.equal(q.queue.stalledFor(), 1_000, "the first still unacknowledged");
    // The first acknowledged late still has its descriptor closed; the second, awaited, holds the third.
    q.queue.acknowledged(1);
    assert.equal(q.queue.stalledFor(), 0);
    assert.deepEqual(ids(q.written), [1, 2]);
    q.queue.acknowledged(2);
    assert.deepEqual(ids(q.written), [1, 2, 3]);
  });

  it("drops a hand-over the channel refused, closed, and writes the next", () => {
    const q = fakeQueue();
    const [a, b] = [q.handOver(1), q.handOver(2)];
    q.queue.push(a);
    q.queue.push(b);
    q.done.get(1)?.(new Error("channel closed"));
    assert.equal(a.socket.destroyed, true);
    assert.deepEqual(q.dropped, [{ id: 1, why: "failed" }]);
    assert.deepEqual(ids(q.written), [1, 2]);
    q.done.get(2)?.(null);
    assert.deepEqual(q.dropped, [{ id: 1, why: "failed" }]);
  });

  it("runs what must follow every hand-over queued once each is written", () => {
    const q = fakeQueue();
    const order: string[] = [];
    q.queue.afterWritten(() => order.push("at once"));
    for (const id of [1, 2]) q.queue.push(q.handOver(id));
    q.queue.afterWritten(() => order.push("after 2"));
    assert.deepEqual(order, ["at once"]);
    q.queue.acknowledged(1);
    assert.deepEqual(order, ["at once", "after 2"]);
  });

  it("gives back the waiting ones untouched when the worker goes, then those written and never acknowledged", () => {
    const q = fakeQueue();
    const hs = [1, 2, 3, 4].map((id) => q.handOver(id));
    for (const h of hs) q.queue.push(h);
    q.queue.acknowledged(1);
    const rest = q.queue.close();
    assert.deepEqual(ids(rest), [3, 4]);
    for (const h of hs.slice(1)) assert.equal(h.socket.destroyed, false);
    // Nothing is written once closed.
    const late = q.handOver(5);
    q.queue.push(late);
    assert.equal(late.socket.destroyed, true);
    assert.deepEqual(ids(q.written), [1, 2]);
    // Its acknowledgements, read after its end, still close the primary's descriptors.
    assert.equal(q.queue.size, 1);
    assert.deepEqual(ids(q.queue.takeWritten()), [2]);
    assert.equal(hs[1]?.socket.destroyed, false);
    assert.equal(q.queue.size, 0);
  });

  it("gives back the waiting ones when the worker drains on its own, and still takes the acknowledgements", () => {
    const q = fakeQueue();
    for (const id of [1, 2, 3]) q.queue.push(q.handOver(id));
    assert.deepEqual(ids(q.queue.takeWaiting()), [2, 3]);
    assert.ok(q.queue.acknowledged(1) !== undefined);
    assert.equal(q.queue.size, 0);
  });
});

describe("clientGone", () => {
  /** Resolves once `cond` holds, checked every 10 ms; rejects after `ms`. */
  const until = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("says gone once the client has reset a connection not read from, and not for one closed in order", async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    assert.ok(typeof address === "object" && address !== null);
    const open = (): Promise<Socket> =>
      new Promise((ok) => {
        const c = net.connect(address.port, "127.0.0.1", () => ok(c));
        c.on("error", () => undefined);
      });
    try {
      const reset = await open();
      const ended = await open();
      await until(() => accepted.length === 2, 30_000, "both accepted");
      const [a, b] = accepted as [Socket, Socket];
      assert.equal(clientGone(a), false);
      assert.equal(clientGone(b), false);
      // Which accepted socket is which client: by the client's local port.
      const byPort = (p: number | undefined): Socket => (a.remotePort === p ? a : b);
      const resetHere = byPort(reset.localPort);
      const endedHere = byPort(ended.localPort);
      reset.resetAndDestroy();
      ended.end();
      await until(() => clientGone(resetHere), 30_000, "the reset one gone");
      // A client that closed its side in order: only reading would tell (the worker reads).
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(clientGone(endedHere), false);
      endedHere.destroy();
      assert.equal(clientGone(endedHere), true, "closed here");
    } finally {
      for (const s of accepted) s.destroy();
      server.close();
    }
  });
});
