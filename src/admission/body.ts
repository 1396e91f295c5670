// Reading a request body within the limits, and the Content-Type rules of the endpoints.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { AdmissionError } from "./errors.js";
import { quote } from "../injection/quote.js";

/** Istio's MaxRequestBodyBytes. */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;
/** The API server gives a webhook at most 30 s (default 10 s); a body slower than this is dead. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

/**
 * Bytes all request bodies being read, and the large answers being written, may hold together.
 * A body or answer that would take the total past it is refused with ERR_OVERLOADED (503): a
 * burst of large bodies, or clients that do not read their answers, then cost a bounded amount
 * of memory, well inside the chart's memory limit, instead of growing the heap until the
 * process dies.
 */
export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Bytes of a refused body still read (and dropped) after it is answered, so that a client
 * still sending it gets to read its answer instead of a reset (Go's client, writing while it
 * reads, lost a 413 to `write: broken pipe` when the connection closed under it). Past them
 * the connection is closed: the rest of a body is never read at any length.
 */
export const DISCARD_AFTER_REFUSAL_BYTES = 2 * DEFAULT_MAX_BODY_BYTES;

/** Connections whose request was answered while its body still comes (being dropped). */
const answeredEarly = new WeakSet<object>();

/**
 * Whether the request on this connection was answered before its body came: a timeout of that
 * request (Node's, while the rest is dropped) needs no answer of its own, only the close.
 */
export function answeredBeforeItsBody(socket: object): boolean {
  return answeredEarly.has(socket);
}

/** Reads and drops what is left of `req`'s body, DISCARD_AFTER_REFUSAL_BYTES at most, then closes its connection. */
export function discardRest(req: IncomingMessage, maxBytes: number = DISCARD_AFTER_REFUSAL_BYTES): void {
  // A client still waiting for 100 Continue has sent no body: its answer closes the connection.
  if (awaitsContinue(req)) return;
  const socket = req.socket;
  // A connection reads its next request only once this one's body has ended.
  if (req.complete || answeredEarly.has(socket)) return;
  answeredEarly.add(socket);
  req.once("end", () => answeredEarly.delete(socket));
  let left = maxBytes;
  req.on("data", (chunk: Buffer) => {
    left -= chunk.byteLength;
    if (left < 0) req.socket.destroy();
  });
  req.resume();
}

/**
 * Requests sent with `Expect: 100-continue` whose `100 Continue` has not been written, with
 * whether their connection was to be kept alive. Their client waits (a while) for it before
 * sending the body: it is written when the body is read (readRequestBody), and an answer that
 * comes first (a refusal the headers decide: 413 for the declared length, 415, 503) is the
 * final one, with `Connection: close`, since the client may or may not send the body after it.
 */
const awaitingContinue = new WeakMap<IncomingMessage, { res: ServerResponse; keepAlive: boolean }>();

/** A request sent with `Expect: 100-continue`: answered as above. Call before its handler runs. */
export function expectContinue(req: IncomingMessage, res: ServerResponse): void {
  awaitingContinue.set(req, { res, keepAlive: res.shouldKeepAlive });
  res.shouldKeepAlive = false;
}

/** Whether the request's client still waits for `100 Continue` before it sends the body. */
export function awaitsContinue(req: IncomingMessage): boolean {
  return awaitingContinue.has(req);
}

/** Writes the `100 Continue` a request waits for, if it does and nothing was answered yet. */
function sendContinue(req: IncomingMessage): void {
  const waiting = awaitingContinue.get(req);
  if (waiting === undefined) return;
  awaitingContinue.delete(req);
  if (waiting.res.headersSent || waiting.res.writableEnded) return;
  waiting.res.shouldKeepAlive = waiting.keepAlive;
  waiting.res.writeContinue();
}

/**
 * The event emitted on a request whose body HTTP's parser refused (with the error to answer):
 * readRequestBody rejects with it, and a refusal waiting for the body's end answers at once.
 */
export const BODY_REFUSED = "body-refused";
/** Requests whose body HTTP's parser refused midway, with the error they are answered. */
const refusedBodies = new WeakMap<IncomingMessage, AdmissionError>();
/** Connections taken from the parser after it refused a body. */
const takenFromParser = new WeakSet<object>();

/**
 * For a parser error (a bad chunk size, chunk extensions past their limit) in the body of the
 * request whose answer waits on `socket`: that request is answered by its handler, as a body
 * that does not come whole is (readRequestBody rejects with 400 ERR_BODY_READ naming the
 * parser's reason, at once or as soon as it is called), and its answer closes the connection.
 * The parser, which refuses whatever else comes, is taken off the connection, and what still
 * comes is dropped, DISCARD_AFTER_REFUSAL_BYTES at most, so that the answer is not lost to a
 * reset. True when the error is dealt with (this one, or a later one of the same parser);
 * false for anything else.
 */
export function refuseBodyMidway(socket: Duplex, answer: ServerResponse | undefined, reason: string): boolean {
  if (takenFromParser.has(socket)) return true;
  if (answer === undefined || answer.headersSent || answer.req.complete || answer.req.socket !== socket) return false;
  takeFromParser(socket);
  answer.shouldKeepAlive = false;
  const err = new AdmissionError("ERR_BODY_READ", `malformed request body: ${reason}`);
  refusedBodies.set(answer.req, err);
  answer.req.emit(BODY_REFUSED, err);
  return true;
}

/**
 * Takes the connection from HTTP's parser, which refuses whatever comes after an error: what
 * still comes is dropped, DISCARD_AFTER_REFUSAL_BYTES at most (then the connection is closed),
 * so that the answers still to be written are not lost to a reset.
 */
export function takeFromParser(socket: Duplex): void {
  if (takenFromParser.has(socket)) return;
  takenFromParser.add(socket);
  for (const listener of socket.listeners("data")) socket.off("data", listener as (chunk: Buffer) => void);
  let left = DISCARD_AFTER_REFUSAL_BYTES;
  // Adding a data listener also takes the connection from the parser, when it reads it natively.
  socket.on("data", (chunk: Buffer) => {
    left -= chunk.byteLength;
    if (left < 0) socket.destroy();
  });
  socket.resume();
}

/** Shared by every request of a server: the bytes its bodies hold right now. */
export class BodyBudget {
  inUse = 0;
  constructor(readonly maxBytes: number = DEFAULT_MAX_BUFFERED_BODY_BYTES) {}
}

export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
  /** Shared across requests; without one, only the per-body limit applies. */
  readonly budget?: BodyBudget;
}

export const YAML_TYPES = new Set(["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"]);

/** Accepts `application/json` with optional parameters; a charset, if given, must be UTF-8. */
export function checkJsonContentType(header: string | undefined): void {
  const [type = "", ...params] = (header ?? "").split(";");
  if (type.trim().toLowerCase() !== "application/json") {
    throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", `Content-Type must be application/json`);
  }
  checkCharset(params);
}

export function checkCharset(params: readonly string[]): void {
  for (const param of params) {
    const [name = "", value = ""] = param.split("=", 2);
    if (name.trim().toLowerCase() !== "charset") continue;
    const charset = value
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") {
      throw new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Type charset must be utf-8");
    }
  }
}

/**
 * Reads the whole request body, refusing it (ERR_BODY_TOO_LARGE) as soon as the declared
 * Content-Length or the bytes received exceed the limit, and (ERR_REQUEST_TIMEOUT) when it is
 * not complete in time. The rest of a refused body is dropped, within DISCARD_AFTER_REFUSAL_BYTES.
 */
export function readRequestBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { maxBodyBytes, bodyTimeoutMs, budget } = limits;
  const tooLarge = (): AdmissionError =>
    new AdmissionError("ERR_BODY_TOO_LARGE", `request body is larger than the limit of ${maxBodyBytes} bytes`);

  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
    return Promise.reject(new AdmissionError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Encoding must be identity"));
  }
  // HTTP's parser frames a body by its final `chunked` and passes the codings before it (gzip,
  // deflate) on undone: such a body is not the bytes sent (RFC 9112: 501). Empty list elements
  // are no coding (RFC 9110).
  const transfer = req.headers["transfer-encoding"];
  if (
    transfer !== undefined &&
    transfer.split(",").some((c) => !["", "chunked", "identity"].includes(c.trim().toLowerCase()))
  ) {
    return Promise.reject(
      new AdmissionError("ERR_TRANSFER_CODING", `Transfer-Encoding ${quote(transfer)} is not served: only chunked`),
    );
  }
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) return Promise.reject(tooLarge());
  const refused = refusedBodies.get(req);
  if (refused !== undefined) return Promise.reject(refused);
  sendContinue(req);

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    /** Bytes counted against the budget, given back when the body is done with. */
    let held = 0;
    let settled = false;

    const settle = (err: AdmissionError | undefined): void => {
      if (settled) return;
      settled = true;
      // The bytes go back to the budget now: the caller parses the body synchronously next.
      if (budget !== undefined) budget.inUse -= held;
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onAbort);
      req.off(BODY_REFUSED, onRefused);
      if (err) {
        discardRest(req);
        reject(err);
      } else {
        // A review of a few KiB comes in one chunk, a view into the socket's read buffer:
        // handed on as it is, not copied. A body that would own its whole buffer is always a
        // fresh copy, so that handing its buffer to the review worker takes nothing from Node.
        const only = chunks.length === 1 ? chunks[0] : undefined;
        resolve(only !== undefined && only.byteLength < only.buffer.byteLength ? only : Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBodyBytes) return settle(tooLarge());
      if (budget !== undefined) {
        if (budget.inUse + chunk.length > budget.maxBytes) return settle(new AdmissionError("ERR_OVERLOADED"));
        budget.inUse += chunk.length;
        held += chunk.length;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onAbort = (): void =>
      settle(new AdmissionError("ERR_BODY_READ", "the connection closed before the request body was complete"));
    const onRefused = (err: AdmissionError): void => settle(err);
    const timer = setTimeout(() => settle(new AdmissionError("ERR_REQUEST_TIMEOUT")), bodyTimeoutMs);

    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onAbort);
    req.on("close", onAbort);
    req.on(BODY_REFUSED, onRefused);
  });
}

/** As much of a response as says whether its client is still there. */
export interface AnswerTo {
  readonly closed: boolean;
  readonly destroyed: boolean;
  readonly req: { readonly socket: { readonly destroyed: boolean } };
}

/**
 * Whether the client of `res` has gone: the answer, or its connection, has closed (an answer
 * queued behind another on a connection that closes never closes itself), so nothing written
 * to it would be read.
 */
export function clientGone(res: AnswerTo): boolean {
  return res.closed || res.destroyed || res.req.socket.destroyed;
}

/**
 * A large answer's bytes, held until its client has taken them (or gone), counted in the
 * budget of the bodies being read: clients that do not read their answers cannot hold more
 * than it together. Throws ERR_OVERLOADED, for a 503 in its place, when it would pass it.
 */
export function holdAnswer(res: ServerResponse, bytes: number, budget: BodyBudget | undefined): void {
  // A client gone while its review was worked on takes nothing: its answer is never written.
  const socket = res.req.socket;
  if (budget === undefined || clientGone(res)) return;
  if (budget.inUse + bytes > budget.maxBytes) throw new AdmissionError("ERR_OVERLOADED");
  budget.inUse += bytes;
  // Given back when the answer is done with, or its connection goes: an answer queued behind
  // another on a connection that closes never emits close.
  let held = true;
  const giveBack = (): void => {
    if (!held) return;
    held = false;
    budget.inUse -= bytes;
    res.off("close", giveBack);
    socket.off("close", giveBack);
  };
  res.once("close", giveBack);
  socket.once("close", giveBack);
}
