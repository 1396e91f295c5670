// A worker's side of the channel to its primary (src/workers/worker.ts), on a fake channel:
// /preview's lookups sent to the primary and their answers, the node state it pushes, and the
// connections it hands over (acknowledged with the count open, closes reported batched).
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { LOOKUP_DEADLINE_MS, NOT_KNOWN, notReadWithin } from "../../../src/admission/preview-lookup.js";
import { PREFIX, type FromWorker } from "../../../src/workers/protocol.js";
import {
  connectToPrimary,
  LOOKUP_ANSWER_TIMEOUT_MS,
  OPEN_REPORT_INTERVAL_MS,
  type ChannelPort,
  type ConnectionSink,
} from "../../../src/workers/worker.js";

type LookupMessage = Extract<FromWorker, { type: `${typeof PREFIX}lookup` }>;

/** A channel whose messages to the primary are kept, and whose primary the test plays. */
function fakePort(): ChannelPort & {
  sent: FromWorker[];
  deliver(m: unknown, handle?: unknown): void;
  lookups(): LookupMessage[];
} {
  const sent: FromWorker[] = [];
  let handler: ((m: unknown, handle: unknown) => void) | undefined;
  return {
    sent,
    send: (m) => {
      sent.push(m);
      return Promise.resolve();
    },
    onMessage: (fn) => (handler = fn),
    deliver: (m, handle) => handler?.(m, handle),
    lookups: () => sent.filter((m): m is LookupMessage => m.type === `${PREFIX}lookup`),
  };
}

/** Lets the channel's promise callbacks run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("a worker's /preview lookups, run by the primary", () => {
  it("sends the token and the namespaces, and takes the primary's answer for the namespaces asked only", async () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    const pending = channel.lookups.lookup("tok", ["shop", "billing"]);
    const [asked] = port.lookups();
    assert.deepEqual(
      { token: asked?.token, namespaces: asked?.namespaces },
      { token: "tok", namespaces: ["shop", "billing"] },
    );
    port.deliver({
      type: `${PREFIX}looked-up`,
      id: asked?.id,
      results: [
        ["shop", { labels: { "istio-injection": "enabled" } }],
        ["other", { labels: {} }],
      ],
    });
    const got = await pending;
    assert.deepEqual(Object.fromEntries(got), {
      shop: { labels: { "istio-injection": "enabled" } },
      // Missing from the answer: as a call that failed, never a guess.
      billing: { unknown: NOT_KNOWN.failed },
    });
  });

  it("says every namespace failed when the primary could not look them up", async () => {
    const port = fakePort();
    const pending = connectToPrimary(port).lookups.lookup("tok", ["a", "b"]);
    port.deliver({
      type: `${PREFIX}looked-up`,
      id: port.lookups()[0]?.id,
      error: "this injector has no cluster access",
    });
    assert.deepEqual(Object.fromEntries(await pending), {
      a: { unknown: NOT_KNOWN.failed },
      b: { unknown: NOT_KNOWN.failed },
    });
  });

  it("gives each answer to its own request when two are in flight", async () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    const first = channel.lookups.lookup("alice", ["a"]);
    const second = channel.lookups.lookup("bob", ["a"]);
    const [m1, m2] = port.lookups();
    assert.ok(m1 !== undefined && m2 !== undefined && m1.id !== m2.id);
    port.deliver({ type: `${PREFIX}looked-up`, id: m2.id, results: [["a", { unknown: NOT_KNOWN.forbidden }]] });
    port.deliver({ type: `${PREFIX}looked-up`, id: m1.id, results: [["a", { labels: { team: "x" } }]] });
    assert.deepEqual(Object.fromEntries(await first), { a: { labels: { team: "x" } } });
    assert.deepEqual(Object.fromEntries(await second), { a: { unknown: NOT_KNOWN.forbidden } });
  });

  it("asks nothing for no namespaces", async () => {
    const port = fakePort();
    assert.equal((await connectToPrimary(port).lookups.lookup("tok", [])).size, 0);
    assert.deepEqual(port.lookups(), []);
  });

  describe("with no answer from the primary", () => {
    beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
    afterEach(() => mock.timers.reset());

    it("says the labels were not read within the deadline, after the deadline and the channel's allowance", async () => {
      assert.ok(LOOKUP_ANSWER_TIMEOUT_MS > LOOKUP_DEADLINE_MS);
      const port = fakePort();
      let done = false;
      const pending = connectToPrimary(port).lookups.lookup("tok", ["shop"]);
      void pending.then(() => (done = true));
      mock.timers.tick(LOOKUP_ANSWER_TIMEOUT_MS - 1);
      await settle();
      assert.equal(done, false, "still waiting for the primary");
      mock.timers.tick(1);
      assert.deepEqual(Object.fromEntries(await pending), { shop: { unknown: notReadWithin(LOOKUP_DEADLINE_MS) } });
      // An answer after that is dropped.
      port.deliver({ type: `${PREFIX}looked-up`, id: port.lookups()[0]?.id, results: [["shop", { labels: {} }]] });
    });
  });
});

describe("a worker's node state, pushed by the primary", () => {
  const init = (nativeSidecars: boolean | null): unknown => ({
    type: `${PREFIX}init`,
    settings: {},
    certificate: { cert: "c", key: "k", generation: 1, serving: true },
    nativeSidecars,
  });

  it("is not known until the primary knows it, then follows each push", () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    assert.equal(channel.nativeSidecars(), undefined);
    port.deliver(init(null));
    assert.equal(channel.nativeSidecars(), undefined);
    port.deliver({ type: `${PREFIX}native`, nativeSidecars: true });
    assert.equal(channel.nativeSidecars(), true);
    port.deliver({ type: `${PREFIX}native`, nativeSidecars: false });
    assert.equal(channel.nativeSidecars(), false);
  });

  it("is the primary's current state from init, for a worker started later", () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    port.deliver(init(true));
    assert.equal(channel.nativeSidecars(), true);
    // Anything not ours on the channel is ignored.
    port.deliver({ type: "other:native", nativeSidecars: false });
    port.deliver("native");
    assert.equal(channel.nativeSidecars(), true);
  });
});

describe("a worker's connections, handed by the primary", () => {
  type Accepted = Extract<FromWorker, { type: `${typeof PREFIX}accepted` }>;
  const acks = (port: ReturnType<typeof fakePort>): Array<Pick<Accepted, "taken" | "open">> =>
    port.sent.filter((m): m is Accepted => m.type === `${PREFIX}accepted`).map(({ taken, open }) => ({ taken, open }));
  const opens = (port: ReturnType<typeof fakePort>): number[] =>
    port.sent.flatMap((m) => (m.type === `${PREFIX}open` ? [m.open] : []));

  /** A sink that keeps what it takes, up to `max`, as the webhook listener does. */
  function fakeSink(max: number): ConnectionSink & { taken: Socket[] } {
    const taken: Socket[] = [];
    return {
      taken,
      accept(socket) {
        if (taken.filter((s) => !s.destroyed).length >= max) {
          socket.destroy();
          return false;
        }
        taken.push(socket);
        return true;
      },
      get connections() {
        return taken.filter((s) => !s.destroyed).length;
      },
    };
  }

  it("acknowledges every hand-over with the count open, taken or refused, and destroys what it refuses", () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    const early = new Socket();
    // Before the listener is there: refused, still acknowledged.
    port.deliver({ type: `${PREFIX}connection` }, early);
    assert.equal(early.destroyed, true);
    const sink = fakeSink(2);
    channel.serveConnections({ webhook: sink });
    const sockets = [new Socket(), new Socket(), new Socket()];
    for (const s of sockets) port.deliver({ type: `${PREFIX}connection` }, s);
    // A message without a socket (the handle lost on the way) is acknowledged too.
    port.deliver({ type: `${PREFIX}connection` });
    assert.deepEqual(acks(port), [
      { taken: false, open: 0 },
      { taken: true, open: 1 },
      { taken: true, open: 2 },
      { taken: false, open: 2 },
      { taken: false, open: 2 },
    ]);
    assert.equal(sockets[2]?.destroyed, true);
    for (const s of sockets) s.destroy();
  });

  it("serves the admin port's connections on the admin listener, acknowledged with the webhook's count open", async () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    const webhook = fakeSink(10);
    const admin = fakeSink(10);
    channel.serveConnections({ webhook, admin });
    const [a, b, c] = [new Socket(), new Socket(), new Socket()];
    port.deliver({ type: `${PREFIX}connection`, id: 1, listener: "webhook" }, a);
    port.deliver({ type: `${PREFIX}connection`, id: 2, listener: "admin" }, b);
    port.deliver({ type: `${PREFIX}connection`, id: 3, listener: "admin" }, c);
    assert.deepEqual(webhook.taken, [a]);
    assert.deepEqual(admin.taken, [b, c]);
    const sent = port.sent.filter((m): m is Accepted => m.type === `${PREFIX}accepted`);
    assert.deepEqual(
      sent.map(({ id, listener, taken, open }) => ({ id, listener, taken, open })),
      [
        { id: 1, listener: "webhook", taken: true, open: 1 },
        { id: 2, listener: "admin", taken: true, open: 1 },
        { id: 3, listener: "admin", taken: true, open: 1 },
      ],
    );
    // An admin connection closing changes nothing the primary counts: not reported.
    b.destroy();
    await settle();
    assert.deepEqual(opens(port), []);
    // Without an admin listener, one is refused and closed, still acknowledged.
    const other = fakePort();
    connectToPrimary(other).serveConnections({ webhook: fakeSink(10) });
    const d = new Socket();
    other.deliver({ type: `${PREFIX}connection`, id: 7, listener: "admin" }, d);
    assert.equal(d.destroyed, true);
    assert.deepEqual(acks(other), [{ taken: false, open: 0 }]);
    for (const s of [a, c]) s.destroy();
  });

  describe("closes", () => {
    beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 }));
    afterEach(() => mock.timers.reset());

    /** Destroys the sockets and lets their close events run. */
    const close = async (sockets: Socket[]): Promise<void> => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => setImmediate(r));
    };

    it("are reported at once after a quiet interval, then batched: at most one message per interval", async () => {
      const port = fakePort();
      const channel = connectToPrimary(port);
      channel.serveConnections({ webhook: fakeSink(10) });
      const sockets = Array.from({ length: 6 }, () => new Socket());
      for (const s of sockets) port.deliver({ type: `${PREFIX}connection` }, s);
      await close(sockets.slice(0, 1));
      assert.deepEqual(opens(port), [5], "the first close at once");
      await close(sockets.slice(1, 3));
      assert.deepEqual(opens(port), [5], "later ones wait for the interval");
      mock.timers.tick(OPEN_REPORT_INTERVAL_MS - 1);
      assert.deepEqual(opens(port), [5]);
      mock.timers.tick(1);
      assert.deepEqual(opens(port), [5, 3], "one message for both");
      await close(sockets.slice(3, 4));
      mock.timers.tick(OPEN_REPORT_INTERVAL_MS);
      assert.deepEqual(opens(port), [5, 3, 2]);
      // Quiet for an interval: the next close is reported at once again.
      mock.timers.tick(OPEN_REPORT_INTERVAL_MS);
      await close(sockets.slice(4));
      assert.deepEqual(opens(port), [5, 3, 2, 0]);
    });
  });

  it("answers the primary's ping at once, with its id", () => {
    const port = fakePort();
    connectToPrimary(port);
    port.deliver({ type: `${PREFIX}ping`, id: 41 });
    port.deliver({ type: `${PREFIX}ping`, id: 42 });
    assert.deepEqual(
      port.sent.filter((m) => m.type === `${PREFIX}pong`),
      [
        { type: `${PREFIX}pong`, id: 41 },
        { type: `${PREFIX}pong`, id: 42 },
      ],
    );
  });

  it("tells the primary when it drains on its own, and learns when the last connection is handed", async () => {
    const port = fakePort();
    const channel = connectToPrimary(port);
    let last = false;
    void channel.lastConnection.then(() => (last = true));
    channel.draining();
    assert.ok(port.sent.some((m) => m.type === `${PREFIX}draining`));
    await settle();
    assert.equal(last, false);
    port.deliver({ type: `${PREFIX}last-connection` });
    await settle();
    assert.equal(last, true);
  });
});
