// The one HTTPS client of the tests: a request verified against the given CA (or, asked to,
// not verified at all), on a fresh connection each time unless an agent is given, its whole
// answer buffered. `send` is the webhook's shorthand: 127.0.0.1, a port, POST /inject.
// Tests that mean to do something else on purpose (a raw TLS socket, a keep-alive load, a
// pinned TLS version) keep their own code.
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

export interface HttpsRequest extends Omit<ClientRequest, "path"> {
  /** The CA certificates (PEM; several allowed) the server's certificate is verified against. */
  readonly ca?: string | Buffer;
  /** Verify nothing (e.g. polling /readyz before any CA is known). */
  readonly insecure?: boolean;
  /** Fail with an error when the server says nothing for this long. */
  readonly timeoutMs?: number;
  /** Connections to reuse; without one, each request has a connection of its own. */
  readonly agent?: https.Agent;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json(): Record<string, unknown>;
}

/** `req` sent to `url` (GET without a body, POST with one, unless `method` says otherwise). */
export function request(url: string | URL, req: HttpsRequest = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
    const method = req.method ?? (body === undefined ? "GET" : "POST");
    const headers: Record<string, string | number> = { ...req.headers };
    if (body !== undefined && !req.chunked) headers["content-length"] = body.length;
    const r = https.request(
      url,
      {
        method,
        headers,
        agent: req.agent ?? false,
        ...(req.ca === undefined ? {} : { ca: req.ca }),
        ...(req.insecure ? { rejectUnauthorized: false } : {}),
        ...(req.timeoutMs === undefined ? {} : { timeout: req.timeoutMs }),
      },
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
    r.on("timeout", () => r.destroy(new Error(`${method} ${String(url)}: no answer within ${req.timeoutMs} ms`)));
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

/** `req` to the webhook on 127.0.0.1:`port`, trusting `ca`: POST /inject unless it says otherwise. */
export function send(port: number, ca: string, req: ClientRequest): Promise<ClientResponse> {
  const { path = "/inject", method = "POST", ...rest } = req;
  return request(`https://127.0.0.1:${port}${path}`, { ...rest, method, ca });
}

export const JSON_HEADERS = { "content-type": "application/json" };
