// What each review leaves alive: a review answered through createApp's listener must leave
// nothing of itself behind, neither for the next full collection (a leak) nor for the next
// scavenge. An object still referenced when the young generation is scavenged is copied, and
// after a second scavenge moved to the old generation, where only a mark-compact (a pause of
// milliseconds) frees it: bytes promoted per review are what the tail at 1,000 req/s is made of.
//
// Promoted bytes are read from V8's own record of each collection (v8.GCProfiler): a scavenge's
// promoted bytes are the old space's growth across it (--trace-gc-nvp's `promoted=` agrees).
// The recorded review (test/fixtures) goes over keep-alive HTTP/1.1 on loopback, one request at
// a time, log lines through pino's batched writer. Counts and sizes only: nothing here depends
// on how fast the machine is.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { pino } from "pino";
import { createApp, type App } from "../../../src/admission/server.js";
import type { InjectFn } from "../../../src/admission/review.js";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { createMetrics } from "../../../src/telemetry/metrics.js";

const FIXTURE = new URL("../../fixtures/admission-review-pod.json", import.meta.url);
const WARM_UP = 300;
const REVIEWS = 2000;
/**
 * Promoted bytes per review allowed: the bare server of test/bench promotes ~0.1 KB, the
 * review's own allocations are ~80 KB; a review whose decoded Pod or answer outlives a scavenge
 * promotes several KB.
 */
const MAX_PROMOTED_PER_REVIEW = 1024;
/** Old-space growth per review, between full collections, allowed after the load stops. */
const MAX_KEPT_PER_REVIEW = 256;

v8.setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function oldSpaceUsed(): number {
  const old = v8.getHeapSpaceStatistics().find((s) => s.space_name === "old_space");
  assert.ok(old, "V8 reports an old space");
  return old.space_used_size;
}

interface Load {
  /** Sends `n` reviews one after the other; resolves with how many were answered 200. */
  run(n: number): Promise<number>;
  close(): Promise<void>;
}

async function serve(engine?: InjectFn): Promise<Load> {
  const body = readFileSync(FIXTURE);
  const request = Buffer.concat([
    Buffer.from(
      `POST /inject HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    ),
    body,
  ]);
  const destination = pino.destination({ dest: "/dev/null", sync: false, minLength: 2048, periodicFlush: 100 });
  const app: App = createApp({
    config: buildConfig({}),
    logger: createLogger({ destination }),
    metrics: createMetrics(),
    isReady: () => true,
    offloadLargeReviews: false,
    ...(engine === undefined ? {} : { inject: engine }),
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const socket: Socket = connect(port, "127.0.0.1");
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let pending = "";
  return {
    run: (n) =>
      new Promise((resolve, reject) => {
        let left = n;
        let ok = 0;
        const onData = (d: Buffer): void => {
          pending += d.toString("latin1");
          for (;;) {
            const end = pending.indexOf("\r\n\r\n");
            if (end < 0) return;
            const head = pending.slice(0, end);
            const length = /\r\ncontent-length: (\d+)/i.exec(head);
            if (length?.[1] === undefined) {
              socket.off("data", onData);
              reject(new Error(`an answer without Content-Length: ${head.slice(0, 200)}`));
              return;
            }
            if (pending.length < end + 4 + Number(length[1])) return;
            pending = pending.slice(end + 4 + Number(length[1]));
            if (head.startsWith("HTTP/1.1 200 ")) ok += 1;
            left -= 1;
            if (left === 0) {
              socket.off("data", onData);
              resolve(ok);
              return;
            }
            socket.write(request);
          }
        };
        socket.on("data", onData);
        socket.write(request);
      }),
    close: async () => {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      await app.retire();
      destination.flushSync();
      destination.end();
    },
  };
}

interface SpaceStatistics {
  readonly spaceName: string;
  readonly spaceUsedSize: number;
}
interface GcStatistics {
  readonly gcType: string;
  readonly beforeGC: { readonly heapSpaceStatistics: readonly SpaceStatistics[] };
  readonly afterGC: { readonly heapSpaceStatistics: readonly SpaceStatistics[] };
}

function oldSpaceIn(spaces: readonly SpaceStatistics[]): number {
  const old = spaces.find((s) => s.spaceName === "old_space");
  assert.ok(old, "V8 reports an old space");
  return old.spaceUsedSize;
}

/**
 * While `n` reviews are answered: the bytes a scavenge typically promoted (the median scavenge's,
 * as if every scavenge promoted as much), per review, and the number of scavenges. What each
 * review leaves for the next scavenge shows in every one; a one-off (a page of code metadata,
 * a lazily made table) in one alone, and does not count.
 */
async function promotedPerReview(load: Load, n: number): Promise<{ perReview: number; scavenges: number }> {
  const profiler = new v8.GCProfiler();
  profiler.start();
  const answered = await load.run(n);
  // stop() returns the record, typed loosely by @types/node.
  const record: { readonly statistics: readonly GcStatistics[] } = profiler.stop();
  assert.equal(answered, n, "every review is answered 200");
  const promoted = record.statistics
    .filter((gc) => gc.gcType === "Scavenge")
    .map((gc) => oldSpaceIn(gc.afterGC.heapSpaceStatistics) - oldSpaceIn(gc.beforeGC.heapSpaceStatistics))
    .sort((a, b) => a - b);
  const median = promoted[Math.floor(promoted.length / 2)] ?? 0;
  return { perReview: (median * promoted.length) / n, scavenges: promoted.length };
}

/**
 * The old space's growth from before to after `n` reviews, each side after full collections, per
 * review: the least of three rounds. A leak grows the old space in every round; a one-off (code
 * the optimising compiler made meanwhile, its feedback and metadata) in one round alone.
 */
async function keptPerReview(load: Load, n: number): Promise<number> {
  let least = Infinity;
  for (let round = 0; round < 3; round += 1) least = Math.min(least, await keptInRound(load, n));
  return least;
}

async function keptInRound(load: Load, n: number): Promise<number> {
  gc();
  gc();
  const before = oldSpaceUsed();
  assert.equal(await load.run(n), n);
  // The log lines' batch is written within its flush interval.
  await new Promise((resolve) => setTimeout(resolve, 250));
  gc();
  gc();
  return (oldSpaceUsed() - before) / n;
}

/**
 * The engine's answer for the recorded review, made once: the server's own work per review
 * (body, decoding, the answer's bytes, log line, metrics) without the engine's.
 */
function fixedEngine(): InjectFn {
  let made: ReturnType<InjectFn> | undefined;
  return (pod, ctx, config) => {
    made ??= (() => {
      const r = inject(pod, ctx, config);
      return { decision: r.decision, patch: r.patch, pod: r.pod, warnings: r.warnings };
    })();
    return made;
  };
}

describe("what a review through the server leaves alive", () => {
  for (const [what, engine] of [
    ["the server's own work (the engine's answer made once)", fixedEngine()],
    ["with the real engine", undefined],
  ] as const) {
    describe(what, () => {
      let load: Load;
      before(async () => {
        load = await serve(engine);
        await load.run(WARM_UP);
      });
      after(() => load.close());

      it(`promotes less than ${MAX_PROMOTED_PER_REVIEW} bytes per review to the old generation`, async (t) => {
        const { perReview, scavenges } = await promotedPerReview(load, REVIEWS);
        t.diagnostic(`${perReview.toFixed(0)} bytes promoted per review over ${scavenges} scavenges`);
        assert.ok(scavenges >= 5, `${REVIEWS} reviews ran through ${scavenges} scavenges`);
        assert.ok(perReview < MAX_PROMOTED_PER_REVIEW, `${perReview.toFixed(0)} bytes promoted per review`);
      });

      it(`keeps less than ${MAX_KEPT_PER_REVIEW} bytes per review once the load stops`, async (t) => {
        const kept = await keptPerReview(load, REVIEWS);
        t.diagnostic(`${kept.toFixed(0)} bytes kept per review`);
        assert.ok(kept < MAX_KEPT_PER_REVIEW, `${kept.toFixed(0)} bytes kept per review`);
      });
    });
  }
});
