// The log lines' way to stdout (line-writer.ts): batches of whole lines no larger than a pipe
// writes atomically, a line never waiting longer than the flush interval, and a bound on what a
// log reader that does not read can make the process hold, with a line saying what was dropped.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { BATCH_BYTES, LineWriter, MAX_UNWRITTEN_BYTES, type LineSink } from "../../../src/telemetry/line-writer.js";

/** A stream that keeps what it is given; `unread` is what its reader has not taken yet. */
function sink(): LineSink & { writes: string[]; unread: number } {
  const s = {
    writes: [] as string[],
    unread: 0,
    write(chunk: string): boolean {
      s.writes.push(chunk);
      s.unread += Buffer.byteLength(chunk);
      return true;
    },
    get writableLength(): number {
      return s.unread;
    },
  };
  return s;
}

const notice = (n: number): string => `dropped ${n}\n`;
const line = (i: number, bytes = 100): string => `${String(i).padStart(6, "0")}${"x".repeat(bytes - 7)}\n`;

describe("LineWriter", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  test("writes whole lines in batches of at most BATCH_BYTES, in order, none lost", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice });
    const lines = Array.from({ length: 1000 }, (_, i) => line(i, 90 + (i % 37)));
    for (const l of lines) w.write(l);
    w.flush();
    assert.equal(out.writes.join(""), lines.join(""));
    assert.ok(out.writes.length < 1000 / 30, `${out.writes.length} writes for 1,000 lines of about 108 bytes`);
    for (const batch of out.writes) {
      assert.ok(Buffer.byteLength(batch) <= BATCH_BYTES, `a batch of ${Buffer.byteLength(batch)} bytes`);
      assert.ok(batch.endsWith("\n"), "a batch ends with a whole line");
    }
  });

  test("counts bytes, not characters: a batch of multi-byte lines stays within BATCH_BYTES", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice });
    const wide = `${"ü".repeat(300)}\n`; // 601 bytes, 301 characters
    for (let i = 0; i < 40; i++) w.write(wide);
    w.flush();
    assert.equal(out.writes.join(""), wide.repeat(40));
    for (const batch of out.writes) assert.ok(Buffer.byteLength(batch) <= BATCH_BYTES);
  });

  test("a line longer than a batch is written on its own, after what was gathered before it", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice });
    const long = `${"y".repeat(BATCH_BYTES * 2)}\n`;
    w.write(line(1));
    w.write(long);
    w.write(line(2));
    assert.deepEqual(out.writes, [line(1), long], "the long line does not wait");
    w.flush();
    assert.deepEqual(out.writes, [line(1), long, line(2)]);
  });

  test("a line waits at most the flush interval, and a quiet writer arms no timer", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice, flushIntervalMs: 100 });
    w.write(line(1));
    mock.timers.tick(99);
    assert.deepEqual(out.writes, []);
    w.write(line(2));
    mock.timers.tick(1);
    assert.deepEqual(out.writes, [line(1) + line(2)], "the second line goes with the first's deadline");
    mock.timers.tick(1000);
    assert.equal(out.writes.length, 1, "nothing gathered, nothing written");
    w.write(line(3));
    mock.timers.tick(100);
    assert.deepEqual(out.writes, [line(1) + line(2), line(3)]);
  });

  test("past the bound on what waits unread, lines are dropped, and a line says how many once half is read", () => {
    const out = sink();
    const max = 10_000;
    const w = new LineWriter(out, { dropNotice: notice, maxUnwrittenBytes: max, batchBytes: 1000 });
    for (let i = 0; i < 200; i++) w.write(line(i));
    w.flush();
    const kept = out.writes.join("");
    assert.ok(Buffer.byteLength(kept) <= max, `${Buffer.byteLength(kept)} bytes held for a reader that does not read`);
    const keptLines = kept.split("\n").filter((l) => l !== "").length;
    assert.equal(w.droppedLines, 200 - keptLines);
    assert.equal(keptLines, 100, "the lines that fit under the bound are kept, in order");
    assert.equal(kept, Array.from({ length: 100 }, (_, i) => line(i)).join(""));

    // The reader takes a little: still over half the bound, so lines are kept but no notice yet.
    out.unread = max * 0.6;
    out.writes.length = 0;
    w.write(line(500));
    w.flush();
    assert.deepEqual(out.writes, [line(500)]);
    assert.equal(w.droppedLines, 100);

    // It takes most of the rest: the notice comes first, then the lines after it.
    out.unread = 0;
    out.writes.length = 0;
    w.write(line(501));
    w.flush();
    assert.deepEqual(out.writes, [notice(100), line(501)]);
    assert.equal(w.droppedLines, 0);
  });

  test("once stopped (the stream failed), what was gathered and every later line are dropped", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice, flushIntervalMs: 100 });
    w.write(line(1));
    w.stop();
    w.write(line(2));
    w.flush();
    mock.timers.tick(1000);
    assert.deepEqual(out.writes, []);
  });

  test("the default bound is the documented MAX_UNWRITTEN_BYTES", () => {
    const out = sink();
    const w = new LineWriter(out, { dropNotice: notice });
    out.unread = MAX_UNWRITTEN_BYTES - 100;
    w.write(line(1));
    assert.equal(w.droppedLines, 0);
    w.write(line(2));
    assert.equal(w.droppedLines, 1);
  });
});
