// The connections the primary of `serve --workers N` has chosen one worker for, on their way to
// it over the channel, one at a time (primary.ts keeps one queue per worker).
//
// Node passes a channel one handle at a time: the next is written only once the worker has
// acknowledged the last, a round trip through both processes' event loops, slow on a busy
// machine. Node kept the queue itself, and wrote each connection however long it had waited in
// it: one whose client had reset it meanwhile took its round trip as a live one does. So a flood
// of connections reset at once (about 1,400 a second on the 2-core machine) filled the channels,
// the primary's bounds on hand-overs on the way were reached, and live connections were shed with
// the dead ones: closed before their handshake past the shed answers' own bound, failing the API
// server's reviews. Here the primary keeps the queue, writes the next connection only once the
// worker has acknowledged the last (as Node would), and looks at each as it writes it: one whose
// client is gone is closed there, never written. `purge` drops such ones still waiting, for the
// primary to call before it would shed a connection.
//
// A hand-over written and never acknowledged (the worker could not receive the descriptor, out
// of them; Node then gives up on it) holds the next back for `ackTimeoutMs` at most.
import type { Socket } from "node:net";

/** Which of the primary's listeners accepted a connection (and which of the worker's serves it). */
export type ListenerName = "webhook" | "admin";

export interface HandOver {
  /** The primary's number for it: the worker's acknowledgement names it. */
  readonly id: number;
  readonly socket: Socket;
  readonly listener: ListenerName;
  /** When the primary counted it as on its way (Distributor.choose's clock). */
  readonly at: number;
}

export interface HandOverQueueOptions {
  /** Writes the hand-over to the worker's channel; `done` with an error if it could not be. */
  readonly write: (h: HandOver, done: (err: Error | null) => void) => void;
  /**
   * A hand-over never written (its connection is closed by then): its client had gone, or the
   * channel refused it. Must not throw.
   */
  readonly dropped: (h: HandOver, why: "gone" | "failed") => void;
  /** How long one written and not acknowledged holds the next back. */
  readonly ackTimeoutMs: number;
  /** Whether a connection's client has gone (default clientGone). */
  readonly gone?: (socket: Socket) => boolean;
  /** Milliseconds, any monotonic clock (default performance.now). */
  readonly now?: () => number;
}

/**
 * Whether the client of a connection not yet read from has gone: reset (or closed here). Asks
 * the system anew each time (the peer's address: none once reset), where Socket.remoteAddress
 * keeps its first answer. A client that closed its side in order (FIN) is still there for this:
 * only reading tells, and the worker does the reading.
 */
export function clientGone(socket: Socket): boolean {
  if (socket.destroyed) return true;
  const handle: unknown = (socket as Socket & { readonly _handle?: unknown })._handle;
  if (typeof handle !== "object" || handle === null || !("getpeername" in handle)) return false;
  const getpeername = handle.getpeername;
  if (typeof getpeername !== "function") return false;
  // 0, or a negative errno: ENOTCONN once the connection is reset.
  return getpeername.call(handle, {}) !== 0;
}

export class HandOverQueue {
  private readonly waiting: HandOver[] = [];
  /** Written, not yet acknowledged, by id: the primary's descriptor is closed at the acknowledgement. */
  private readonly written = new Map<number, HandOver>();
  /** When each of those was written, oldest first (as `written`). */
  private readonly writtenAt = new Map<number, number>();
  /** The last one written, while its acknowledgement is awaited, and when it was written. */
  private awaiting: { readonly id: number; readonly since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private whenWritten: Array<() => void> = [];
  private readonly gone: (socket: Socket) => boolean;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: HandOverQueueOptions) {
    this.gone = opts.gone ?? clientGone;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Hand-overs waiting or written, not yet acknowledged. */
  get size(): number {
    return this.waiting.length + this.written.size;
  }

  /**
   * How long (ms) the oldest one written has waited for its acknowledgement; 0 when none is
   * awaited. A worker whose event loop stands still (stopped, or in an endless loop) has one
   * waiting for ever.
   */
  stalledFor(now: number = this.now()): number {
    for (const at of this.writtenAt.values()) return now - at;
    return 0;
  }

  /** Queues a hand-over, written at once if none is awaiting its acknowledgement. */
  push(h: HandOver): void {
    if (this.closed) {
      h.socket.destroy();
      this.opts.dropped(h, "failed");
      return;
    }
    this.waiting.push(h);
    this.pump();
  }

  /**
   * The worker has the connection (taken, or refused and closed): the primary's descriptor is
   * closed, and the next one written. Returns it, or undefined for an id not written here.
   */
  acknowledged(id: number): HandOver | undefined {
    const h = this.written.get(id);
    if (h === undefined) return undefined;
    this.written.delete(id);
    this.writtenAt.delete(id);
    h.socket.destroy();
    if (this.awaiting?.id === id) this.awaiting = undefined;
    this.pump();
    return h;
  }

  /** Drops the waiting ones whose client is gone (see clientGone); returns how many. */
  purge(): number {
    let n = 0;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const h = this.waiting[i];
      if (h === undefined || !this.gone(h.socket)) continue;
      this.waiting.splice(i, 1);
      h.socket.destroy();
      this.opts.dropped(h, "gone");
      n += 1;
    }
    this.settle();
    return n;
  }

  /** Runs `fn` once every hand-over queued so far is written (or dropped): at once if none waits. */
  afterWritten(fn: () => void): void {
    if (this.waiting.length === 0) fn();
    else this.whenWritten.push(fn);
  }

  /**
   * The worker is gone: writes nothing more, and gives back the hand-overs not written yet (to
   * give to another worker; their connections untouched). Those written stay until
   * acknowledged, or taken with takeWritten.
   */
  close(): HandOver[] {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.awaiting = undefined;
    const rest = this.waiting.splice(0);
    this.settle();
    return rest;
  }

  /**
   * Gives back the hand-overs written and never acknowledged (their connections untouched). For
   * a worker gone once every message it sent has been read: it acknowledges a connection in the
   * same turn as it takes it, before it reads a byte from it, so one it never acknowledged is one
   * it never read from (it may never have received it: stopped, or dead first).
   */
  takeWritten(): HandOver[] {
    const rest = [...this.written.values()];
    this.written.clear();
    this.writtenAt.clear();
    this.awaiting = undefined;
    return rest;
  }

  /**
   * Takes the hand-overs not written yet (to give them to another worker), and goes on with
   * those written: the worker drains, and acknowledges what it has.
   */
  takeWaiting(): HandOver[] {
    const rest = this.waiting.splice(0);
    this.settle();
    return rest;
  }

  private pump(): void {
    while (this.waiting.length > 0 && !this.closed) {
      const now = this.now();
      if (this.awaiting !== undefined) {
        const left = this.opts.ackTimeoutMs - (now - this.awaiting.since);
        if (left > 0) {
          this.timer ??= setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, left);
          return;
        }
      }
      const h = this.waiting.shift();
      if (h === undefined) break;
      if (this.gone(h.socket)) {
        h.socket.destroy();
        this.opts.dropped(h, "gone");
        continue;
      }
      this.written.set(h.id, h);
      this.writtenAt.set(h.id, now);
      this.awaiting = { id: h.id, since: now };
      this.write(h);
    }
    this.settle();
  }

  private write(h: HandOver): void {
    let failed = false;
    const fail = (): void => {
      if (failed || !this.written.delete(h.id)) return;
      this.writtenAt.delete(h.id);
      failed = true;
      h.socket.destroy();
      if (this.awaiting?.id === h.id) this.awaiting = undefined;
      this.opts.dropped(h, "failed");
      this.pump();
    };
    try {
      this.opts.write(h, (err) => {
        if (err !== null) fail();
      });
    } catch {
      fail();
    }
  }

  /** Runs what waits for every hand-over queued before it to be written, once none waits. */
  private settle(): void {
    if (this.waiting.length > 0 || this.whenWritten.length === 0) return;
    const fns = this.whenWritten;
    this.whenWritten = [];
    for (const fn of fns) fn();
  }
}
