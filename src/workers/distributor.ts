// Which worker of `serve --workers N` the primary hands the next accepted connection to, or
// none (the connection is shed). Pure: no sockets, no clock; the primary (primary.ts) tells it
// what happens, and when, and asks it to choose.
//
// - Only workers that take connections are candidates: `add`ed once listening, `remove`d when
//   they stop accepting (draining past the shutdown delay) or exit. A replacement is a new id
//   with counts from 0.
// - A worker's load is its open connections, as it last reported them, plus the hand-overs it
//   has not acknowledged yet. Each acknowledgement carries the worker's open count at that
//   moment (which includes the connection acknowledged), and closes are reported batched; the
//   channel keeps a worker's messages in order, so the last report is the current count less
//   the hand-overs still on the way, and the acknowledgements come oldest hand-over first.
// - A worker still warming up (`serve --warm-up`: listening, not yet ready) is a candidate only
//   when no ready one takes the connection: its probes are answered while every worker warms
//   (at start), and a replacement warming after a crash, its load 0, does not draw every new
//   connection to its cold code.
// - The next connection goes to the candidate with the least load; ties go round robin (the
//   first candidate at or after the one after the last chosen), so two long-lived connections
//   never land on one worker while another has none.
// - Bound: a worker with `maxUnacknowledged` hand-overs on the way, the oldest handed
//   `maxWaitMs` ago or more, is not a candidate (its event loop is behind: more would wait in
//   the channel, as in node:cluster's round-robin queue), nor one with `maxOpen` hand-overs on
//   the way. A worker with `maxOpen` connections open still takes one: it closes one of its own
//   that has nothing to do to make room, or sheds the new one itself, as a single process does
//   past --max-connections (https.ts). No candidate left: shed at once.
//   Both, how many and how long: Node hands a process one connection at a time and sends the
//   next once the last is taken, so a burst of new connections is on the way for as many of
//   the worker's event-loop turns as it has connections, each turn short. The count alone shed
//   such bursts from workers that took each connection within milliseconds (16 per worker:
//   29-32 of 64 connections opened at once to two idle workers, the oldest handed 4-8 ms
//   before); the wait alone shed a worker whose turns a busy machine slows while it keeps up
//   (one hand-over on the way, slowly taken). `maxOpen` bounds the count on the way.

export interface DistributorLimits {
  /** Hand-overs on the way to one worker, not yet acknowledged, at which it may be skipped (see maxWaitMs). */
  readonly maxUnacknowledged: number;
  /**
   * How long (ms) the oldest of them may have waited for its acknowledgement: a worker with
   * `maxUnacknowledged` on the way, the oldest waiting this long, is skipped.
   */
  readonly maxWaitMs: number;
  /** Hand-overs on the way at which a worker is skipped, whatever their age; default none. */
  readonly maxOpen?: number;
}

interface Candidate {
  readonly id: number;
  /** Listening, not yet ready (warming up): chosen only when no ready candidate takes the connection. */
  warming: boolean;
  open: number;
  /** When each hand-over not yet acknowledged was made, oldest first. */
  readonly handedAt: number[];
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
    if (!(limits.maxWaitMs >= 0) || !Number.isFinite(limits.maxWaitMs)) {
      throw new Error(`maxWaitMs must be a number of milliseconds, at least 0 (got ${limits.maxWaitMs})`);
    }
  }

  /**
   * A worker that takes connections from now on (no-op if it already is a candidate); `warming`:
   * only when no ready one does, until `warmed`.
   */
  add(id: number, opts: { readonly warming?: boolean } = {}): void {
    if (this.find(id) === undefined)
      this.candidates.push({ id, warming: opts.warming === true, open: 0, handedAt: [] });
  }

  /** A candidate added warming is ready: chosen as any other from now on. */
  warmed(id: number): void {
    const c = this.find(id);
    if (c !== undefined) c.warming = false;
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
   * The worker the next connection goes to, counted as handed to it at `now` (ms, any
   * monotonic clock; unacknowledged until `acknowledged`); undefined when every candidate is at
   * a limit, or there is none: shed.
   */
  choose(now: number): number | undefined {
    const n = this.candidates.length;
    let best: Candidate | undefined;
    let bestAt = 0;
    // Ready candidates first; warming ones only when none of those takes it.
    for (const warming of [false, true]) {
      for (let k = 0; k < n; k++) {
        const at = (this.next + k) % n;
        const c = this.candidates[at];
        if (c === undefined || c.warming !== warming || !this.takes(c, now)) continue;
        if (best === undefined || load(c) < load(best)) {
          best = c;
          bestAt = at;
        }
      }
      if (best !== undefined) break;
    }
    if (best === undefined) return undefined;
    best.handedAt.push(now);
    this.next = (bestAt + 1) % n;
    return best.id;
  }

  /** The worker took a connection handed to it; `open` is its count of open connections now. */
  acknowledged(id: number, open: number): void {
    const c = this.find(id);
    if (c === undefined) return;
    c.handedAt.shift();
    c.open = Math.max(0, open);
  }

  /**
   * A hand-over that never reached the worker (the channel refused it, its client was gone before
   * it was written, or it went to another worker): no longer on the way. `at`: the time `choose`
   * counted it at, which takes that one off; without it, the oldest (the channel sends them in
   * order). Taking off the oldest for one behind it would hide how long the oldest has waited.
   */
  lost(id: number, at?: number): void {
    const c = this.find(id);
    if (c === undefined) return;
    const i = at === undefined ? 0 : c.handedAt.indexOf(at);
    c.handedAt.splice(Math.max(0, i), 1);
  }

  /** The workers that take connections, in the order ties go round robin. */
  ids(): number[] {
    return this.candidates.map((c) => c.id);
  }

  /** The worker's count of open connections, reported after some closed. */
  reported(id: number, open: number): void {
    const c = this.find(id);
    if (c !== undefined) c.open = Math.max(0, open);
  }

  /** Open and on the way, per candidate (for logs and tests). */
  loads(): Array<{ id: number; open: number; unacknowledged: number }> {
    return this.candidates.map((c) => ({ id: c.id, open: c.open, unacknowledged: c.handedAt.length }));
  }

  /** How long (ms) at `now` the oldest hand-over not acknowledged has waited, per candidate (for logs). */
  waits(now: number): Array<{ id: number; waitedMs: number }> {
    return this.candidates.map((c) => ({ id: c.id, waitedMs: now - (c.handedAt[0] ?? now) }));
  }

  private takes(c: Candidate, now: number): boolean {
    const oldest = c.handedAt[0];
    const behind =
      c.handedAt.length >= this.limits.maxUnacknowledged &&
      oldest !== undefined &&
      now - oldest >= this.limits.maxWaitMs;
    if (behind) return false;
    // Open connections do not count here: a worker at its --max-connections makes room by
    // closing one that has nothing to do, or sheds the connection itself (https.ts), as one
    // process does; the primary cannot see which of its connections are idle.
    return this.limits.maxOpen === undefined || c.handedAt.length < this.limits.maxOpen;
  }

  private find(id: number): Candidate | undefined {
    return this.candidates.find((c) => c.id === id);
  }
}

const load = (c: Candidate): number => c.open + c.handedAt.length;
