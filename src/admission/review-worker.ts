// The worker thread of review-pool.ts: decodes and answers one AdmissionReview at a time, off
// the event loop that accepts connections and answers every other review.
import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config/types.js";
import { AdmissionError } from "./errors.js";
import { answerReview, decodeAdmissionReview } from "./review.js";
import type { PoolAnswer, PoolJob, PreviewParseJob } from "./review-pool.js";
import { parsePreviewInput, PreviewError } from "../preview.js";

// The config is cloned once, when the worker starts: the engine caches per config object.
const config = (workerData as { config: Config }).config;

/** A /preview body read as the route would: its documents, or its PreviewError's message. */
function parsePreview(job: PreviewParseJob): PoolAnswer {
  try {
    const text = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength).toString("utf8");
    return { id: job.id, ok: true, docs: parsePreviewInput(text, job.format) };
  } catch (e) {
    return e instanceof PreviewError
      ? { id: job.id, ok: false, code: "ERR_PREVIEW_INPUT", message: e.message }
      : {
          id: job.id,
          ok: false,
          code: "ERR_INTERNAL",
          message: e instanceof Error ? (e.stack ?? e.message) : String(e),
        };
  }
}

parentPort?.on("message", (job: PoolJob | PreviewParseJob) => {
  if (job.kind === "preview") {
    parentPort?.postMessage(parsePreview(job));
    return;
  }
  let answer: PoolAnswer;
  try {
    const review = decodeAdmissionReview(job.body);
    const { body, outcome } = answerReview(review, {
      config,
      pathEnv: job.pathEnv,
      ...(job.nativeSidecarsSupported === undefined ? {} : { nativeSidecarsSupported: job.nativeSidecarsSupported }),
    });
    const { error, ...rest } = outcome;
    // Encoded here, and handed over rather than copied (the buffer is the answer's alone): the
    // answer can be megabytes (a patch rewriting a hundred thousand probes), and the event loop
    // has better things to do.
    answer = {
      id: job.id,
      ok: true,
      body,
      outcome: {
        ...rest,
        ...(error === undefined
          ? {}
          : { error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      },
    };
  } catch (e) {
    answer =
      e instanceof AdmissionError
        ? { id: job.id, ok: false, code: e.code, message: e.message }
        : {
            id: job.id,
            ok: false,
            code: "ERR_INTERNAL",
            message: e instanceof Error ? (e.stack ?? e.message) : String(e),
          };
  }
  const buffer = answer.ok && "body" in answer ? answer.body.buffer : undefined;
  parentPort?.postMessage(answer, buffer instanceof ArrayBuffer ? [buffer] : []);
});
