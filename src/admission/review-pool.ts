// Large reviews are answered on a worker thread. Everything the injector does per review is
// linear in its size, but a review near the 6 MiB body limit still takes tens to hundreds of
// milliseconds to parse and answer; on the event loop that would hold up every other review
// and health check for as long. One worker (started on first use) takes them one at a time;
// past MAX_PENDING waiting, a large review is shed (ERR_OVERLOADED) rather than queued.
// Large /preview bodies are read there too (decoded, pre-scanned, parsed and measured), so a
// 6 MiB body refused for its shape never holds the event loop for its reading; only the parsed
// documents, within /preview's limits, come back.
import { Worker } from "node:worker_threads";
import type { Config } from "../config/types.js";
import { AdmissionError, type ErrorCode } from "./errors.js";
import type { ReviewOutcome } from "./review.js";
import { PreviewError } from "../preview.js";

/** Bodies at least this large go to the worker: below it, a review takes a few milliseconds. */
export const OFFLOAD_FROM_BYTES = 64 * 1024;
/**
 * A review whose Pod has a `proxy.istio.io/config` annotation longer than this goes to the
 * worker too, whatever its size: the annotation's YAML costs 10-20 µs a key or item to read
 * (injection/yaml-limits.ts PROXY_CONFIG_LIMITS), where a whole review of the usual kind costs
 * tens of microseconds. Real annotations are a few hundred characters.
 */
export const INLINE_PROXY_CONFIG_CHARS = 1024;

/** The length of the Pod's `proxy.istio.io/config` annotation in a decoded review; 0 when it has none. */
export function proxyConfigChars(object: unknown): number {
  const metadata = typeof object === "object" && object !== null ? Reflect.get(object, "metadata") : undefined;
  const annotations =
    typeof metadata === "object" && metadata !== null ? Reflect.get(metadata, "annotations") : undefined;
  const value =
    typeof annotations === "object" && annotations !== null
      ? Reflect.get(annotations, "proxy.istio.io/config")
      : undefined;
  return typeof value === "string" ? value.length : 0;
}

/** Large reviews waiting for the worker at most (each holds its body: at most this × 6 MiB). */
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

export interface ReviewPool {
  /**
   * The answer as UTF-8 JSON and the outcome to log; rejects with an AdmissionError. A body
   * that owns its whole buffer (as the body reader's do) is handed to the worker, not copied:
   * the caller must not use it after.
   */
  run(
    body: Uint8Array,
    pathEnv: Readonly<Record<string, string>>,
    nativeSidecarsSupported: boolean | undefined,
  ): Promise<{ body: Uint8Array; outcome: ReviewOutcome }>;
  /**
   * parsePreviewInput(body as UTF-8, format) on the worker: the documents, or a PreviewError
   * with its message; ERR_OVERLOADED past MAX_PENDING waiting. The body is handed over as in run().
   */
  parsePreview(body: Uint8Array, format: "json" | "yaml"): Promise<unknown[]>;
  close(): Promise<void>;
  /**
   * Ends the worker once it has no work: at once when idle, else after the last answer. For a
   * pool its app no longer routes to (a new config): the reviews it holds are still answered.
   * Resolves when the worker has ended.
   */
  retire(): Promise<void>;
}

export function createReviewPool(config: Config): ReviewPool {
  let worker: Worker | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (a: PoolAnswer) => void; reject: (e: unknown) => void }>();
  let retired: (() => void) | undefined;
  const endIfRetired = (): void => {
    if (retired === undefined || waiting.size > 0) return;
    const w = worker;
    worker = undefined;
    const done = retired;
    if (w) void w.terminate().then(done, done);
    else done();
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
      waiting.get(a.id)?.resolve(a);
      waiting.delete(a.id);
      // An idle worker does not keep the process alive; one with work does.
      if (waiting.size === 0) w.unref();
      endIfRetired();
    });
    const fail = (err: unknown): void => {
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
      worker = undefined;
      endIfRetired();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`the review worker exited with ${code}`)));
    w.unref();
    return w;
  };

  const send = async (job: PoolJob | PreviewParseJob): Promise<PoolAnswer> => {
    if (waiting.size >= MAX_PENDING) throw new AdmissionError("ERR_OVERLOADED");
    worker ??= start();
    // A worker with work keeps the process alive until it answers (unref'd again when idle).
    worker.ref();
    const body = job.body;
    return new Promise<PoolAnswer>((resolve, reject) => {
      waiting.set(job.id, { resolve, reject });
      const own =
        body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
      worker?.postMessage(job, own ? [body.buffer] : []);
    });
  };

  return {
    async run(body, pathEnv, nativeSidecarsSupported) {
      const answer = await send({ id: nextId++, kind: "review", body, pathEnv, nativeSidecarsSupported });
      if (!answer.ok) {
        if (answer.code === "ERR_INTERNAL") throw new Error(answer.message);
        throw new AdmissionError(answer.code, answer.message);
      }
      if (!("outcome" in answer)) throw new Error("the review worker answered a review with documents");
      return { body: answer.body, outcome: answer.outcome };
    },
    async parsePreview(body, format) {
      const answer = await send({ id: nextId++, kind: "preview", body, format });
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
      if (w) await w.terminate();
    },
  };
}
