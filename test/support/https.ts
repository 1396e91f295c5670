// The one HTTPS client of the tests: a request to 127.0.0.1 trusting the given CA, on a fresh
// connection each time (no agent), its whole answer buffered.
import type { IncomingHttpHeaders } from "node:http";
import https from "node:https";

export interface ClientRequest {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string | number>;
  /** Sent with Content-Length unless `chunked` is set. */
  readonly body?: string | Buffer;
  readonly chunked?: boolean;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json(): Record<string, unknown>;
}

export function send(port: number, ca: string, req: ClientRequest): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
    const headers: Record<string, string | number> = { ...req.headers };
    if (body !== undefined && !req.chunked) headers["content-length"] = body.length;
    const r = https.request(
      { host: "127.0.0.1", port, ca, method: req.method ?? "POST", path: req.path ?? "/inject", headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    if (body !== undefined && req.chunked) {
      // Several chunks, so the server sees a stream without a declared length.
      const step = 64 * 1024;
      for (let i = 0; i < body.length; i += step) r.write(body.subarray(i, i + step));
    } else if (body !== undefined) {
      r.write(body);
    }
    r.end();
  });
}

export const JSON_HEADERS = { "content-type": "application/json" };
