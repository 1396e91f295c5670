// The share of the event loop /preview may take (work-budget.ts): a bucket of milliseconds that
// drains at its share of the clock; work starts only below the burst, reckoned when it starts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { INITIAL_MS_PER_UNIT, WorkBudget } from "../../../src/admission/work-budget.js";

function clocked(share = 0.5, burst = 1000): { budget: WorkBudget; advance(ms: number): void } {
  let t = 0;
  return { budget: new WorkBudget(share, burst, () => t), advance: (ms) => void (t += ms) };
}

describe("WorkBudget", () => {
  test("work starts below the burst, is refused past it, and drains at its share of the clock", () => {
    const { budget, advance } = clocked();
    const a = budget.admit(1);
    assert.ok(a);
    budget.spend(1200, a);
    assert.equal(budget.admit(1), undefined, "1,200 ms held: past the 1,000 ms burst");
    advance(399);
    assert.equal(budget.admit(1), undefined, "at half the clock, 399 ms drain 199.5");
    advance(2);
    assert.ok(budget.admit(1), "below the burst again");
  });

  test("what starts is reckoned at once, so work that has not finished counts", () => {
    const { budget } = clocked();
    let admitted = 0;
    while (budget.admit(10) !== undefined && admitted < 1000) admitted++;
    assert.equal(admitted, Math.ceil(1000 / (10 * INITIAL_MS_PER_UNIT)));
  });

  test("the reckoning follows what the work took, per unit", () => {
    const { budget, advance } = clocked();
    for (let i = 0; i < 30; i++) {
      const a = budget.admit(10);
      assert.ok(a);
      budget.spend(100, a); // 10 ms a unit, twice the first reckoning
      advance(1000);
    }
    const next = budget.admit(10);
    assert.ok(next);
    assert.ok(Math.abs(next.reckoned - 100) < 1, `reckoned ${next.reckoned} ms`);
  });

  test("work going on is held as it passes its reckoning, and counted once when done", () => {
    const { budget } = clocked();
    const a = budget.admit(1);
    assert.ok(a);
    assert.equal(budget.pending, INITIAL_MS_PER_UNIT);
    budget.progress(INITIAL_MS_PER_UNIT - 1, a);
    assert.equal(budget.pending, INITIAL_MS_PER_UNIT, "within its reckoning: nothing more held");
    budget.progress(1200, a);
    assert.equal(budget.pending, 1200);
    assert.equal(budget.admit(1), undefined, "work still going on past the burst refuses more");
    budget.progress(1100, a);
    assert.equal(budget.pending, 1200, "progress never takes back what was held");
    budget.spend(1300, a);
    assert.equal(budget.pending, 1300, "done: what it took, once");
  });

  test("work stopped before its end is counted, but does not change the reckoning", () => {
    const { budget, advance } = clocked();
    const a = budget.admit(10);
    assert.ok(a);
    budget.spend(1, a, false); // a tenth of a millisecond a unit, had it finished
    assert.equal(budget.pending, 1);
    advance(10_000);
    assert.equal(budget.admit(10)?.reckoned, 10 * INITIAL_MS_PER_UNIT);
  });

  test("a spend never leaves the bucket below empty, nor counts negative time", () => {
    const { budget } = clocked();
    const a = budget.admit(100);
    assert.ok(a);
    budget.spend(-5, a);
    assert.equal(budget.pending, 0);
  });
});
