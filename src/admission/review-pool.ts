// Large reviews are answered on a worker thread. Everything the injector does per review is
// linear in its size, but a review near the 6 MiB body limit still takes tens to hundreds of
// milliseconds to parse and answer; on the event loop that would hold up every other review
// and health check for as long. One worker (started on first use) takes them one at a time;
// past MAX_PENDING held (the one on the worker and those waiting), a large review is shed
// (ERR_OVERLOADED) rather than queued.
// Large /preview bodies are read there too (decoded, pre-scanned, parsed and measured), so a
// 6 MiB body refused for its shape never holds the event loop for its reading; only the parsed
// documents, within /preview's limits, come back.
//
// The queue is kept here, and the worker handed one job at a time, the next once it answers:
// a job whose caller no longer wants its answer (JobCaller: its client has closed the
// connection, or its deadline, caller-deadline.ts, has passed) is dropped when its turn comes,
// not run, and rejected with ERR_CALLER_GONE; so is one waiting when a new job finds the queue
// full, so that the dead ones never shed a live one. (A dense proxy config near its limit
// takes over half a second on the worker: eight of them queued for callers long gone would be
// seconds of work for no one.) A job already on the worker is answered.
import { Worker } from "node:worker_threads";
import type { Config } from "../config/types.js";
import { clientGone, type AnswerTo } from "./body.js";
import { AdmissionError, type ErrorCode } from "./errors.js";
import type { ReviewOutcome } from "./review.js";
import { PreviewError } from "../preview.js";

/**
 * Bodies at least this large go to the worker: below it, a review takes a few milliseconds,
 * unless what it holds costs more than its bytes say (injection/inline-cost.ts).
 */
export const OFFLOAD_FROM_BYTES = 64 * 1024;
/** Large reviews held at most, the one on the worker included (each holds its body: at most this × 6 MiB). */
export const MAX_PENDING = 8;

export interface PoolJob {
  readonly id: number;
  readonly kind: "review";
  readonly body: Uint8Array;
  readonly pathEnv: Readonly<Record<string, string>>;
  readonly nativeSidecarsSupported: boolean | undefined;
}

/** A /preview body to read: what parsePreviewInput gives for it, or its PreviewError. */
export interface PreviewParseJob {
  readonly id: number;
  readonly kind: "preview";
  readonly body: Uint8Array;
  readonly format: "json" | "yaml";
}

export type PoolAnswer =
  | {
      readonly id: number;
      readonly ok: true;
      readonly body: Uint8Array;
      readonly outcome: Omit<ReviewOutcome, "error"> & { readonly error?: string };
    }
  | { readonly id: number; readonly ok: true; readonly docs: unknown[] }
  | { readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** Who waits for a job's answer: the job is not run once it has gone or its deadline has passed. */
export interface JobCaller {
  /** The response the answer is for (body.ts clientGone). */
  readonly res: AnswerTo;
  /** How long from now it waits at most, in ms (caller-deadline.ts); Infinity: no bound. */
  readonly waitsMs: number;
}

export interface ReviewPoolOptions {
  /** The clock of the callers' deadlines, in ms; default performance.now. */
  readonly now?: () => number;
}

export interface ReviewPool {
  /**
   * The answer as UTF-8 JSON and the outcome to log; rejects with an AdmissionError
   * (ERR_CALLER_GONE: dropped unrun, see the header). A body that owns its whole buffer (as the
   * body reader's do) is handed to the worker, not copied: the caller must not use it after.
   */
  run(
    body: Uint8Array,
    pathEnv: Readonly<Record<string, string>>,
    nativeSidecarsSupported: boolean | undefined,
    caller?: JobCaller,
  ): Promise<{ body: Uint8Array; outcome: ReviewOutcome }>;
  /**
   * parsePreviewInput(body as UTF-8, format) on the worker: the documents, or a PreviewError
   * with its message; ERR_OVERLOADED past MAX_PENDING held, ERR_CALLER_GONE as in run(). The
   * body is handed over as in run().
   */
  parsePreview(body: Uint8Array, format: "json" | "yaml", caller?: JobCaller): Promise<unknown[]>;
  /** Ends the worker at once; the jobs it holds are rejected. */
  close(): Promise<void>;
  /**
   * Ends the worker once it has no work: at once when idle, else after the last answer. For a
   * pool its app no longer routes to (a new config): the reviews it holds are still answered
   * (or dropped, as any, when no one wants them). Resolves when the worker has ended.
   */
  retire(): Promise<void>;
}

/** A job held: on the worker, or waiting for it. */
interface Held {
  readonly job: PoolJob | PreviewParseJob;
  readonly caller: JobCaller | undefined;
  /** On the pool's clock; Infinity without a caller. */
  readonly deadline: number;
  readonly resolve: (a: PoolAnswer) => void;
  readonly reject: (e: unknown) => void;
}

/** Why no one wants the answer to `held` any more; undefined while someone does. */
function unwanted(held: Held, now: () => number): string | undefined {
  if (held.caller === undefined) return undefined;
  const what = held.job.kind === "review" ? "the review" : "the preview body";
  if (clientGone(held.caller.res))
    return `${what} was not worked on: its client closed the connection while it waited for the review worker`;
  if (now() >= held.deadline)
    return `${what} was not worked on: its deadline (the API server's timeout, or the request timeout) passed while it waited for the review worker`;
  return undefined;
}

export function createReviewPool(config: Config, options: ReviewPoolOptions = {}): ReviewPool {
  const now = options.now ?? (() => performance.now());
  let worker: Worker | undefined;
  let nextId = 1;
  /** The job on the worker. */
  let running: Held | undefined;
  /** The jobs waiting for it, in order. */
  const queue: Held[] = [];
  let retired: (() => void) | undefined;
  const endIfRetired = (): void => {
    if (retired === undefined || running !== undefined || queue.length > 0) return;
    const w = worker;
    worker = undefined;
    const done = retired;
    if (w) void w.terminate().then(done, done);
    else done();
  };

  /** Hands the worker the next job someone still wants, if it is free; drops those no one does. */
  const next = (): void => {
    if (running !== undefined) return;
    let held: Held | undefined;
    while ((held = queue.shift()) !== undefined) {
      const why = unwanted(held, now);
      if (why === undefined) break;
      held.reject(new AdmissionError("ERR_CALLER_GONE", why));
    }
    if (held === undefined) {
      // An idle worker does not keep the process alive; one with work does.
      worker?.unref();
      endIfRetired();
      return;
    }
    try {
      worker ??= start();
      const body = held.job.body;
      const own =
        body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
      worker.postMessage(held.job, own ? [body.buffer] : []);
      // A worker with work keeps the process alive until it answers (unref'd again when idle).
      worker.ref();
      running = held;
    } catch (e) {
      held.reject(e);
      next();
    }
  };

  /** Drops the waiting jobs no one wants any more (when a new one finds the queue full). */
  const prune = (): void => {
    let kept = 0;
    for (const held of queue) {
      const why = unwanted(held, now);
      if (why === undefined) queue[kept++] = held;
      else held.reject(new AdmissionError("ERR_CALLER_GONE", why));
    }
    queue.length = kept;
  };

  const start = (): Worker => {
    // Under tsx (tests) this module is TypeScript, and so is its worker.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const entry = new URL(`./review-worker${ext}`, import.meta.url);
    // A worker's entry file does not go through the module hooks that load TypeScript (tsx);
    // a module it imports does.
    const w =
      ext === ".ts"
        ? new Worker(
            `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`,
            { eval: true, workerData: { config } },
          )
        : new Worker(entry, { workerData: { config } });
    w.on("message", (a: PoolAnswer) => {
      if (w !== worker || running?.job.id !== a.id) return;
      const held = running;
      running = undefined;
      held.resolve(a);
      next();
    });
    // The jobs held are rejected with the error (a worker ended by close or a retirement is
    // no longer `worker`: its exit is not one).
    const fail = (err: unknown): void => {
      if (w !== worker) return;
      worker = undefined;
      const held = running === undefined ? queue.splice(0) : [running, ...queue.splice(0)];
      running = undefined;
      for (const h of held) h.reject(err);
      endIfRetired();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`the review worker exited with ${code}`)));
    w.unref();
    return w;
  };

  const send = async (job: PoolJob | PreviewParseJob, caller: JobCaller | undefined): Promise<PoolAnswer> => {
    const full = (): boolean => queue.length + (running === undefined ? 0 : 1) >= MAX_PENDING;
    if (full()) prune();
    if (full()) throw new AdmissionError("ERR_OVERLOADED");
    return new Promise<PoolAnswer>((resolve, reject) => {
      queue.push({ job, caller, deadline: caller === undefined ? Infinity : now() + caller.waitsMs, resolve, reject });
      next();
    });
  };

  return {
    async run(body, pathEnv, nativeSidecarsSupported, caller) {
      const answer = await send({ id: nextId++, kind: "review", body, pathEnv, nativeSidecarsSupported }, caller);
      if (!answer.ok) {
        if (answer.code === "ERR_INTERNAL") throw new Error(answer.message);
        throw new AdmissionError(answer.code, answer.message);
      }
      if (!("outcome" in answer)) throw new Error("the review worker answered a review with documents");
      return { body: answer.body, outcome: answer.outcome };
    },
    async parsePreview(body, format, caller) {
      const answer = await send({ id: nextId++, kind: "preview", body, format }, caller);
      if (!answer.ok) {
        if (answer.code === "ERR_PREVIEW_INPUT") throw new PreviewError(answer.message);
        if (answer.code === "ERR_INTERNAL") throw new Error(answer.message);
        throw new AdmissionError(answer.code, answer.message);
      }
      if (!("docs" in answer)) throw new Error("the review worker answered a preview body with a review");
      return answer.docs;
    },
    retire() {
      return new Promise<void>((resolve) => {
        retired = resolve;
        endIfRetired();
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      const held = running === undefined ? queue.splice(0) : [running, ...queue.splice(0)];
      running = undefined;
      const err = new Error("the review pool was closed");
      for (const h of held) h.reject(err);
      if (w) await w.terminate();
      endIfRetired();
    },
  };
}
