// `preview --server`: the same question asked of a running injector over HTTPS.
//
// The certificate is verified against --cacert (else the system's CAs) and, like kubectl's
// --tls-server-name, against `tlsServerName` instead of the URL's host when given: through
// `kubectl port-forward` the URL is https://127.0.0.1:PORT, while the chart's certificates
// name only the Service (<service>.<namespace>.svc). `insecureSkipTlsVerify` verifies nothing.
// Without --cacert the caller may pass the cluster's caBundle as `ca` (what the API server
// itself trusts the injector with); without either, the system's CAs.
import { readFile } from "node:fs/promises";
import { request } from "node:https";

export class RemotePreviewError extends Error {
  readonly code = "ERR_REMOTE_PREVIEW";
}

export interface RemotePreviewOptions {
  /** The Accept header: application/json or application/yaml. */
  readonly accept: string;
  /** A PEM file of the CA(s) to trust. */
  readonly caFile?: string;
  /** Or the CA(s) themselves (PEM), e.g. the cluster's caBundle, and where they come from. */
  readonly ca?: { readonly pem: string; readonly from: string };
  /** The name the certificate must carry (and the SNI sent), instead of the URL's host. */
  readonly tlsServerName?: string;
  /** Verify no certificate at all. */
  readonly insecureSkipTlsVerify?: boolean;
  readonly timeoutMs?: number;
  /** Sent as `Authorization: Bearer …` (never printed). */
  readonly bearerToken?: string;
}

/** The message of an error answer: a Status's message, our `error` (code and message), or the text. */
export function errorAnswerMessage(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) {
      const { error, message } = parsed as { error?: { code?: unknown; message?: unknown }; message?: unknown };
      if (typeof error?.message === "string")
        return `${typeof error.code === "string" ? error.code : ""} ${error.message}`.trim();
      if (typeof message === "string") return message;
    }
  } catch {
    // not JSON: keep the text
  }
  return text.slice(0, 500);
}

export async function remotePreview(url: URL, body: string, opts: RemotePreviewOptions): Promise<string> {
  const { accept, caFile, tlsServerName, insecureSkipTlsVerify = false, timeoutMs = 30_000, bearerToken } = opts;
  let ca: string | undefined = opts.ca?.pem;
  try {
    if (caFile) ca = await readFile(caFile, "utf8");
  } catch (e) {
    throw new RemotePreviewError(`--cacert ${caFile}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/yaml",
          accept,
          ...(bearerToken ? { authorization: `Bearer ${bearerToken}` } : {}),
        },
        timeout: timeoutMs,
        ...(ca ? { ca } : {}),
        ...(tlsServerName ? { servername: tlsServerName } : {}),
        rejectUnauthorized: !insecureSkipTlsVerify,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 200) return resolve(text);
          reject(new RemotePreviewError(`${url.origin} answered ${res.statusCode}: ${errorAnswerMessage(text)}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new RemotePreviewError(`${url.origin}: no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => {
      if (e instanceof RemotePreviewError) return reject(e);
      const code = "code" in e ? e.code : undefined;
      const hint =
        code === "ERR_TLS_CERT_ALTNAME_INVALID" && !tlsServerName
          ? " (through a port-forward, give the name the certificate carries with --tls-server-name, e.g. <service>.<namespace>.svc)"
          : typeof code === "string" && /CERT|SIGNATURE|ISSUER|SELF_SIGNED/.test(code) && !caFile
            ? opts.ca !== undefined
              ? ` (verified against ${opts.ca.from}; give --cacert FILE for another CA)`
              : " (verified against the system's CAs; give the injector's CA with --cacert FILE: certs/ca.crt for npm start)"
            : "";
      reject(new RemotePreviewError(`${url.origin}: ${e.message}${hint}`));
    });
    req.end(body);
  });
}
