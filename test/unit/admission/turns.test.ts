// Turns: one at a time, in the order asked; a turn begins only once every turn taken before it
// has ended.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Turns } from "../../../src/admission/turns.js";

/** Lets every settled promise's reactions run. */
const settle = (): Promise<void> => new Promise((done) => setImmediate(done));

test("each turn begins when the one taken before it ends, in the order they were taken", async () => {
  const turns = new Turns();
  const log: string[] = [];
  const ends = new Map<string, () => void>();
  const take = (name: string): Promise<void> =>
    turns.take().then((end) => {
      log.push(`begin ${name}`);
      ends.set(name, end);
    });
  const all = Promise.all([take("a"), take("b"), take("c")]);
  await settle();
  assert.deepEqual(log, ["begin a"], "only the first turn has begun");
  ends.get("a")!();
  ends.get("a")!(); // ending a turn twice ends it once
  await settle();
  assert.deepEqual(log, ["begin a", "begin b"]);
  ends.get("b")!();
  await settle();
  assert.deepEqual(log, ["begin a", "begin b", "begin c"]);
  ends.get("c")!();
  await all;
  // Once every turn has ended, the next begins at once.
  const next = await turns.take();
  next();
});
