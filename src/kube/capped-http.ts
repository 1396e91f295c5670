// The HTTP library of the calls a request makes (/preview's lookups): @kubernetes/client-node's
// own reads a whole answer into memory whatever its length, so a broken or hostile API server
// streaming without end could fill the injector's memory before the call's deadline. This one
// reads at most `maxBytes` of an answer's body: past that, the connection is closed and the
// call fails with an error that says so. Everything else is as the client's own library does
// it: the request's URL, method, headers, body, agent (TLS and credentials) and abort signal.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { ResponseContext, wrapHttpLibrary, type HttpLibrary, type RequestContext } from "@kubernetes/client-node";

/** Bytes of an answer's body a call reads: a Namespace, a TokenReview or an access review is far smaller. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** The error of an answer longer than the bound. */
export class AnswerTooLong extends Error {
  constructor(readonly maxBytes: number) {
    super(`the API server's answer is longer than ${maxBytes} bytes`);
    this.name = "AnswerTooLong";
  }
}

function headersOf(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function send(request: RequestContext, maxBytes: number): Promise<ResponseContext> {
  return new Promise((resolve, reject) => {
    const url = new URL(request.getUrl());
    const body = request.getBody();
    if (body !== undefined && typeof body !== "string") {
      reject(new Error("only a string request body is sent"));
      return;
    }
    const options = {
      method: request.getHttpMethod().toString(),
      headers:
        body === undefined
          ? request.getHeaders()
          : { ...request.getHeaders(), "Content-Length": String(Buffer.byteLength(body)) },
      agent: request.getAgent(),
      signal: request.getSignal(),
    };
    const onAnswer = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on("data", (chunk: Buffer) => {
        length += chunk.length;
        if (length > maxBytes) {
          req.destroy();
          reject(new AnswerTooLong(maxBytes));
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", reject);
      res.on("end", () => {
        const bytes = Buffer.concat(chunks, length);
        resolve(
          new ResponseContext(res.statusCode ?? 0, headersOf(res), {
            text: () => Promise.resolve(bytes.toString("utf8")),
            binary: () => Promise.resolve(bytes),
          }),
        );
      });
    };
    const req = url.protocol === "https:" ? httpsRequest(url, options, onAnswer) : httpRequest(url, options, onAnswer);
    req.on("error", reject);
    req.end(body);
  });
}

/** An HTTP library for @kubernetes/client-node's calls that reads at most `maxBytes` of an answer. */
export function cappedHttpLibrary(maxBytes: number = MAX_ANSWER_BYTES): HttpLibrary {
  return wrapHttpLibrary({ send: (request) => send(request, maxBytes) });
}
