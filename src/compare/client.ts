// Sending a review to istiod's injection endpoint, the ways `istioctl kube-inject` reaches it
// (istioctl/pkg/kubeinject, ExternalInjector.Inject):
//
// - a URL (the webhook's `clientConfig.url`, or `https://127.0.0.1:15017/inject` through
//   `kubectl port-forward -n istio-system svc/istiod 15017:443`), verified against --compare-ca
//   (else the caBundle of istiod's MutatingWebhookConfiguration, else the system's CAs) and,
//   like kubectl's --tls-server-name, against a name other than the URL's host (istioctl
//   sends `istiod.istio-system.svc`, the name istiod's certificate carries);
// - `service/NS/NAME[:PORT][/PATH]` (the webhook's `clientConfig.service`): through the API
//   server's service proxy (`/api/v1/namespaces/NS/services/https:NAME:PORT/proxy/PATH`) with
//   the kubeconfig's credentials, where istioctl port-forwards to one of the Service's Pods.
//
// Every call is bounded: an answer within `timeoutMs` (istioctl gives istiod 5 s; we give the
// API server's default webhook timeout, 10 s) and of at most `maxAnswerBytes` (the largest
// review the webhook reads, 6 MiB: an answer to a review is a patch of a few KB). Past either
// the call is cut and the error names the peer; so is a refused connection, a TLS failure or an
// HTTP error status (with its message, bounded).
import { readFile } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { DEFAULT_MAX_BODY_BYTES } from "../admission/body.js";
import { quote } from "../injection/quote.js";
import { CompareError } from "./review.js";

/** istiod's injection endpoint, however it is reached. */
export interface CompareTarget {
  /** How it is named in messages and in the report: the URL, or the Service and the proxy. */
  readonly name: string;
  /** Posts an AdmissionReview (JSON) and resolves the answer's text, or rejects with a CompareError. */
  send(review: string): Promise<string>;
}

export const DEFAULT_COMPARE_TIMEOUT_MS = 10_000;
export const MAX_ANSWER_BYTES = DEFAULT_MAX_BODY_BYTES;

export interface DirectTargetOptions {
  /** A PEM file of the CA(s) istiod's certificate is checked against. */
  readonly caFile?: string;
  /** Or the CA(s) themselves, and where they come from (e.g. the cluster's caBundle). */
  readonly ca?: { readonly pem: string; readonly from: string };
  /** The name the certificate must carry (and the SNI sent), instead of the URL's host. */
  readonly tlsServerName?: string;
  readonly insecureSkipTlsVerify?: boolean;
  readonly timeoutMs?: number;
  readonly maxAnswerBytes?: number;
}

/** What one POST needs, whoever it goes to. */
interface PostOptions {
  readonly name: string;
  readonly request: RequestOptions & {
    ca?: string | Buffer | (string | Buffer)[];
    servername?: string;
    rejectUnauthorized?: boolean;
  };
  readonly timeoutMs: number;
  readonly maxAnswerBytes: number;
  /** Said after a certificate error, e.g. which CA was used and how to give another. */
  readonly certificateHint?: (code: string) => string;
}

/** The message of an error answer: a Kubernetes Status's, an `error.message`, or the text's start. */
function errorText(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) {
      const { error, message } = parsed as { error?: { message?: unknown }; message?: unknown };
      if (typeof message === "string") return quote(message, 300);
      if (typeof error?.message === "string") return quote(error.message, 300);
    }
  } catch {
    // not JSON: the text
  }
  const t = text.trim();
  return t ? quote(t, 300) : "(empty)";
}

function post(url: URL, body: string, opts: PostOptions): Promise<string> {
  const { name, timeoutMs, maxAnswerBytes } = opts;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    const req = send(
      url,
      {
        ...opts.request,
        method: "POST",
        headers: {
          ...opts.request.headers,
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
        },
        agent: false,
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const declared = Number(res.headers["content-length"]);
        const tooLarge = (): CompareError =>
          new CompareError(`${name}: the answer is larger than ${maxAnswerBytes} bytes; cut there`);
        if (Number.isFinite(declared) && declared > maxAnswerBytes) {
          res.destroy();
          req.destroy();
          return done(() => reject(tooLarge()));
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
          if (bytes > maxAnswerBytes) {
            res.destroy();
            req.destroy();
            done(() => reject(tooLarge()));
            return;
          }
          chunks.push(c);
        });
        res.on("error", (e) => done(() => reject(new CompareError(`${name}: the answer was cut: ${e.message}`))));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (status === 200) return done(() => resolve(text));
          done(() => reject(new CompareError(`${name} answered HTTP ${status}: ${errorText(text)}`)));
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done(() => reject(new CompareError(`${name}: no answer within ${timeoutMs} ms`)));
    }, timeoutMs);
    req.on("error", (e: Error & { code?: unknown }) => {
      const code = typeof e.code === "string" ? e.code : "";
      const hint = code && opts.certificateHint ? opts.certificateHint(code) : "";
      done(() => reject(new CompareError(`${name}: ${e.message}${hint}`)));
    });
    req.end(body);
  });
}

/** istiod at a URL (https only). */
export async function directTarget(url: URL, opts: DirectTargetOptions = {}): Promise<CompareTarget> {
  if (url.protocol !== "https:")
    throw new CompareError(`--compare-with must be an https:// URL or service/NS/NAME[:PORT], not ${quote(url.href)}`);
  let ca = opts.ca?.pem;
  if (opts.caFile !== undefined) {
    try {
      ca = await readFile(opts.caFile, "utf8");
    } catch (e) {
      throw new CompareError(`--compare-ca ${opts.caFile}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!ca.includes("BEGIN CERTIFICATE"))
      throw new CompareError(`--compare-ca ${opts.caFile}: no PEM certificate in it`);
  }
  // The URL as given names istiod in every message (bounded, as any user value).
  const name = url.href.length <= 200 ? url.href : quote(url.href, 200);
  const certificateHint = (code: string): string => {
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID" && opts.tlsServerName === undefined)
      return " (through a port-forward, give the name istiod's certificate carries with --tls-server-name, e.g. istiod.istio-system.svc)";
    if (/CERT|SIGNATURE|ISSUER|SELF_SIGNED/.test(code))
      return opts.caFile !== undefined
        ? ` (verified against --compare-ca ${opts.caFile})`
        : opts.ca !== undefined
          ? ` (verified against ${opts.ca.from}; give --compare-ca FILE for another CA)`
          : " (verified against the system's CAs; give istiod's CA with --compare-ca FILE)";
    return "";
  };
  const request = {
    ...(ca !== undefined ? { ca } : {}),
    ...(opts.tlsServerName !== undefined ? { servername: opts.tlsServerName } : {}),
    rejectUnauthorized: opts.insecureSkipTlsVerify !== true,
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMPARE_TIMEOUT_MS;
  const maxAnswerBytes = opts.maxAnswerBytes ?? MAX_ANSWER_BYTES;
  return {
    name,
    send: (review) => post(url, review, { name, request, timeoutMs, maxAnswerBytes, certificateHint }),
  };
}

/** `service/NS/NAME[:PORT][/PATH]`, parsed; undefined when `text` is not of that form. */
export function parseServiceRef(
  text: string,
): { namespace: string; name: string; port: number; path: string } | undefined {
  const m =
    /^service\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(?::(\d{1,5}))?(\/[^\s?#]*)?$/.exec(
      text,
    );
  if (!m) return undefined;
  const port = m[5] === undefined ? 443 : Number(m[5]);
  if (port < 1 || port > 65535) return undefined;
  return { namespace: m[1] as string, name: m[3] as string, port, path: m[6] ?? "/inject" };
}

/**
 * A Service reached through the API server's service proxy: `server` is the kubeconfig's
 * cluster URL, `request` the TLS options and headers (credentials) the kubeconfig gives.
 */
export function serviceProxyTarget(
  ref: { namespace: string; name: string; port: number; path: string },
  server: string,
  request: PostOptions["request"],
  opts: { timeoutMs?: number; maxAnswerBytes?: number } = {},
): CompareTarget {
  const base = server.endsWith("/") ? server : `${server}/`;
  const proxyPath = `api/v1/namespaces/${ref.namespace}/services/https:${ref.name}:${ref.port}/proxy${ref.path}`;
  const url = new URL(proxyPath, base);
  const name = `service ${ref.namespace}/${ref.name}:${ref.port}${ref.path} (through the API server's proxy at ${new URL(base).origin})`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMPARE_TIMEOUT_MS;
  const maxAnswerBytes = opts.maxAnswerBytes ?? MAX_ANSWER_BYTES;
  return { name, send: (review) => post(url, review, { name, request, timeoutMs, maxAnswerBytes }) };
}
