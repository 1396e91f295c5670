// The share of the event loop /preview may take, as a leaky bucket of milliseconds: the work
// of each preview (parsing, the engine, formatting: what holds the loop, not the waits on the
// API server or the worker thread) is added as it goes (between a preview's slices) and when
// done, and drains at `share` of the clock
// (a half: 500 ms a second). A preview starts only while the bucket holds less than
// `burstMs` (a second); past it, it is refused at once (503 with Retry-After), so that a flood
// of previews, each tens of milliseconds on the loop, never queues more than about a second of
// work ahead of the API server's reviews and the health probes (9 s, measured, before). Pure
// but for the clock it is given.

export const PREVIEW_WORK_SHARE = 0.5;
export const PREVIEW_WORK_BURST_MS = 1000;
/**
 * What a preview's work is reckoned at when it starts, 5 ms per KiB of body to begin
 * with, then the running average of those done (each weighing a fifth): previews waiting on the
 * API server are all admitted before any of them has worked, and each holds its reckoning in
 * the bucket until its true cost replaces it.
 */
export const INITIAL_MS_PER_UNIT = 5;
const AVERAGE_WEIGHT = 0.2;

export class WorkBudget {
  private level = 0;
  private at: number;
  private msPerUnit = INITIAL_MS_PER_UNIT;

  constructor(
    private readonly share = PREVIEW_WORK_SHARE,
    private readonly burstMs = PREVIEW_WORK_BURST_MS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.at = now();
  }

  /** The milliseconds of work not yet drained. */
  get pending(): number {
    const t = this.now();
    this.level = Math.max(0, this.level - (t - this.at) * this.share);
    this.at = t;
    return this.level;
  }

  /**
   * Whether a piece of work of `units` (KiB of body) may start now; if so, its reckoned cost
   * is held in the bucket, to be given to `progress` as it goes and `spend` with what it took.
   */
  admit(units: number): Admitted | undefined {
    if (this.pending >= this.burstMs) return undefined;
    const reckoned = Math.max(1, units) * this.msPerUnit;
    this.level += reckoned;
    return { units: Math.max(1, units), reckoned, charged: reckoned };
  }

  /**
   * Work going on (a preview between its slices): `ms` of the event loop so far. What passes
   * its reckoning is held in the bucket at once, so that work admitted meanwhile sees it, not
   * only once the work is done.
   */
  progress(ms: number, admitted: Admitted): void {
    if (!(ms > admitted.charged)) return;
    this.level = this.pending + (ms - admitted.charged);
    admitted.charged = ms;
  }

  /**
   * Work done: `ms` of the event loop in place of what it was reckoned at. Work stopped before
   * its end (`finished` false: its client went) is counted, but does not teach the reckoning
   * what work costs: what it skipped would lower the price of the work admitted next.
   */
  spend(ms: number, admitted: Admitted, finished = true): void {
    const took = Math.max(0, ms);
    this.level = Math.max(0, this.pending + took - admitted.charged);
    if (finished) this.msPerUnit = (1 - AVERAGE_WEIGHT) * this.msPerUnit + AVERAGE_WEIGHT * (took / admitted.units);
  }
}

/** Work admitted: its units, what it was reckoned at, and what the bucket holds for it so far. */
export interface Admitted {
  readonly units: number;
  readonly reckoned: number;
  charged: number;
}
