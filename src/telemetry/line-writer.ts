// Log lines on their way to stdout: gathered, and handed to the stream a batch at a time.
//
// - A batch holds whole lines and at most BATCH_BYTES (PIPE_BUF): on the pipe a container
//   runtime reads, one write of it is atomic, so the lines of several processes (`serve
//   --workers N`) never interleave. A line longer than that is written on its own.
// - A batch is handed over when the next line would not fit, and a line waits at most
//   FLUSH_INTERVAL_MS (an unref'd timer: it keeps no process alive).
// - The stream is process.stdout: on a pipe, libuv writes it at once, on the event loop, without
//   blocking (what does not fit waits for the pipe). Writing through the thread pool instead
//   (an fs.write a batch) cost a review about 15 µs: two thread switches per write.
// - At most MAX_UNWRITTEN_BYTES wait in the stream for a reader that does not read. Past that,
//   lines are dropped and counted, and once the stream has taken half of its backlog, a line
//   says how many (`dropNotice`): a stuck log reader never grows the heap without bound.
// - What is gathered is handed over when the process exits, a crash included.
// - Once the stream fails (EPIPE: its reader is gone), lines are dropped: a log reader that
//   goes away never stops the process (stop()).

/** What the lines are written to: a Writable such as process.stdout. */
export interface LineSink {
  write(chunk: string): boolean;
  /** Bytes written to it and not yet taken by the other end. */
  readonly writableLength: number;
}

/** PIPE_BUF on Linux: the largest write a pipe takes atomically. */
export const BATCH_BYTES = 4096;
export const FLUSH_INTERVAL_MS = 100;
export const MAX_UNWRITTEN_BYTES = 8 * 1024 * 1024;

export interface LineWriterOptions {
  readonly batchBytes?: number;
  readonly flushIntervalMs?: number;
  readonly maxUnwrittenBytes?: number;
  /** The line (newline included) written once lines were dropped; `dropped` is how many. */
  readonly dropNotice: (dropped: number) => string;
}

export class LineWriter {
  private batch = "";
  private batchBytes = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly maxBatch: number;
  private readonly interval: number;
  private readonly maxUnwritten: number;

  constructor(
    private readonly sink: LineSink,
    private readonly opts: LineWriterOptions,
  ) {
    this.maxBatch = opts.batchBytes ?? BATCH_BYTES;
    this.interval = opts.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    this.maxUnwritten = opts.maxUnwrittenBytes ?? MAX_UNWRITTEN_BYTES;
  }

  /** pino's DestinationStream. */
  write(line: string): void {
    if (this.stopped) return;
    const bytes = Buffer.byteLength(line);
    if (this.sink.writableLength + this.batchBytes + bytes > this.maxUnwritten) {
      this.dropped += 1;
      return;
    }
    if (this.batchBytes + bytes > this.maxBatch) this.flush();
    this.batch += line;
    this.batchBytes += bytes;
    if (this.batchBytes >= this.maxBatch) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.interval);
      this.timer.unref();
    }
  }

  /** Hands what is gathered to the stream now; pino calls it for a fatal line. */
  flush(): void {
    if (this.stopped) return;
    if (this.dropped > 0 && this.sink.writableLength <= this.maxUnwritten / 2) {
      const notice = this.opts.dropNotice(this.dropped);
      this.dropped = 0;
      this.sink.write(notice);
    }
    if (this.batchBytes === 0) return;
    const batch = this.batch;
    this.batch = "";
    this.batchBytes = 0;
    this.sink.write(batch);
  }

  flushSync(): void {
    this.flush();
  }

  /** The stream failed: what is gathered and every later line are dropped. */
  stop(): void {
    this.stopped = true;
    this.batch = "";
    this.batchBytes = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Lines dropped since the last notice. */
  get droppedLines(): number {
    return this.dropped;
  }
}
