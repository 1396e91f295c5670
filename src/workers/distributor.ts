// Which worker of `serve --workers N` the primary hands the next accepted connection to, or
// none (the connection is shed). Pure: no sockets, no clock; the primary (primary.ts) tells it
// what happens and asks it to choose.
//
// - Only workers that take connections are candidates: `add`ed once listening, `remove`d when
//   they stop accepting (draining past the shutdown delay) or exit. A replacement is a new id
//   with counts from 0.
// - A worker's load is its open connections, as it last reported them, plus the hand-overs it
//   has not acknowledged yet. Each acknowledgement carries the worker's open count at that
//   moment (which includes the connection acknowledged), and closes are reported batched; the
//   channel keeps a worker's messages in order, so the last report is the current count less
//   the hand-overs still on the way.
// - The next connection goes to the candidate with the least load; ties go round robin (the
//   first candidate at or after the one after the last chosen), so two long-lived connections
//   never land on one worker while another has none.
// - Bound: a worker with `maxUnacknowledged` hand-overs not acknowledged is not a candidate
//   (its event loop is behind: more would wait in the channel, unbounded, as node:cluster's
//   round-robin queue did), nor one at `maxOpen` (it would close the connection itself, as a
//   single process does past --max-connections). No candidate left: shed at once.

export interface DistributorLimits {
  /** Hand-overs on the way to one worker, not yet acknowledged; at it, the worker is skipped. */
  readonly maxUnacknowledged: number;
  /** Load (open and on the way) at which a worker is skipped; default none. */
  readonly maxOpen?: number;
}

interface Candidate {
  readonly id: number;
  open: number;
  unacknowledged: number;
}

export class Distributor {
  private readonly candidates: Candidate[] = [];
  /** Position in `candidates` where the search for a tie starts. */
  private next = 0;

  constructor(private readonly limits: DistributorLimits) {
    if (!Number.isInteger(limits.maxUnacknowledged) || limits.maxUnacknowledged < 1) {
      throw new Error(
        `maxUnacknowledged must be a whole number of hand-overs, at least 1 (got ${limits.maxUnacknowledged})`,
      );
    }
  }

  /** A worker that takes connections from now on (no-op if it already is a candidate). */
  add(id: number): void {
    if (this.find(id) === undefined) this.candidates.push({ id, open: 0, unacknowledged: 0 });
  }

  /** A worker that takes no more connections (stopped accepting, or exited). */
  remove(id: number): void {
    const i = this.candidates.findIndex((c) => c.id === id);
    if (i < 0) return;
    this.candidates.splice(i, 1);
    if (this.next > i) this.next -= 1;
    if (this.next >= this.candidates.length) this.next = 0;
  }

  /** Whether `id` is a candidate. */
  has(id: number): boolean {
    return this.find(id) !== undefined;
  }

  /** How many workers take connections. */
  get size(): number {
    return this.candidates.length;
  }

  /**
   * The worker the next connection goes to, counted as handed to it (unacknowledged until
   * `acknowledged`); undefined when every candidate is at a limit, or there is none: shed.
   */
  choose(): number | undefined {
    const n = this.candidates.length;
    let best: Candidate | undefined;
    let bestAt = 0;
    for (let k = 0; k < n; k++) {
      const at = (this.next + k) % n;
      const c = this.candidates[at];
      if (c === undefined || !this.takes(c)) continue;
      if (best === undefined || load(c) < load(best)) {
        best = c;
        bestAt = at;
      }
    }
    if (best === undefined) return undefined;
    best.unacknowledged += 1;
    this.next = (bestAt + 1) % n;
    return best.id;
  }

  /** The worker took a connection handed to it; `open` is its count of open connections now. */
  acknowledged(id: number, open: number): void {
    const c = this.find(id);
    if (c === undefined) return;
    c.unacknowledged = Math.max(0, c.unacknowledged - 1);
    c.open = Math.max(0, open);
  }

  /** A hand-over that never reached the worker (the channel refused it): no longer on the way. */
  lost(id: number): void {
    const c = this.find(id);
    if (c !== undefined) c.unacknowledged = Math.max(0, c.unacknowledged - 1);
  }

  /** The worker's count of open connections, reported after some closed. */
  reported(id: number, open: number): void {
    const c = this.find(id);
    if (c !== undefined) c.open = Math.max(0, open);
  }

  /** Open and on the way, per candidate (for logs and tests). */
  loads(): Array<{ id: number; open: number; unacknowledged: number }> {
    return this.candidates.map((c) => ({ id: c.id, open: c.open, unacknowledged: c.unacknowledged }));
  }

  private takes(c: Candidate): boolean {
    if (c.unacknowledged >= this.limits.maxUnacknowledged) return false;
    return this.limits.maxOpen === undefined || load(c) < this.limits.maxOpen;
  }

  private find(id: number): Candidate | undefined {
    return this.candidates.find((c) => c.id === id);
  }
}

const load = (c: Candidate): number => c.open + c.unacknowledged;
