// What a bounded log stream dropped is said in a line of its own (log-drops.ts): counted by the
// line, told once the notice fits, retried while it does not, never counted as a dropped line.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { NOTICE_RETRY_MS, reportDrops } from "../../../src/telemetry/log-drops.js";

/** A stream that drops every write while `full`, as sonic-boom past maxLength: `drop`, synchronously. */
class Bounded extends EventEmitter {
  full = false;
  readonly written: string[] = [];
  write(line: string): boolean {
    if (this.full) this.emit("drop", line);
    else this.written.push(line);
    return true;
  }
}

const notice = (n: number): string => `dropped ${n}\n`;

describe("reportDrops", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  test("counts the lines dropped and says how many once the notice fits, after the retry interval", () => {
    const s = new Bounded();
    const pending = reportDrops(s, notice);
    s.full = true;
    s.write("a\n");
    s.write("b\nc\n");
    assert.equal(pending(), 3);
    mock.timers.tick(NOTICE_RETRY_MS - 1);
    assert.deepEqual(s.written, []);
    s.full = false;
    mock.timers.tick(1);
    assert.deepEqual(s.written, ["dropped 3\n"]);
    assert.equal(pending(), 0);
    mock.timers.tick(10 * NOTICE_RETRY_MS);
    assert.deepEqual(s.written, ["dropped 3\n"], "told once");
  });

  test("a notice that does not fit is tried again, with what was dropped meanwhile, and is no dropped line", () => {
    const s = new Bounded();
    const pending = reportDrops(s, notice);
    s.full = true;
    s.write("a\n");
    mock.timers.tick(NOTICE_RETRY_MS);
    assert.equal(pending(), 1, "the notice itself dropped: not counted");
    s.write("b\n");
    mock.timers.tick(NOTICE_RETRY_MS);
    s.full = false;
    mock.timers.tick(NOTICE_RETRY_MS);
    assert.deepEqual(s.written, ["dropped 2\n"]);
    assert.equal(pending(), 0);
  });

  test("nothing dropped, nothing written and no timer", () => {
    const s = new Bounded();
    reportDrops(s, notice);
    s.write("a\n");
    mock.timers.tick(10 * NOTICE_RETRY_MS);
    assert.deepEqual(s.written, ["a\n"]);
  });
});
