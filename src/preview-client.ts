// `preview --server`: the same question asked of a running injector over HTTPS.
import { readFile } from "node:fs/promises";
import { request } from "node:https";

export class RemotePreviewError extends Error {
  readonly code = "ERR_REMOTE_PREVIEW";
}

/** `bearerToken`, when given, is sent as `Authorization: Bearer …` (never printed). */
export async function remotePreview(url: URL, body: string, accept: string, caFile?: string, timeoutMs = 30_000, bearerToken?: string): Promise<string> {
  const ca = caFile ? await readFile(caFile, "utf8") : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/yaml", accept, ...(bearerToken ? { authorization: `Bearer ${bearerToken}` } : {}) },
        timeout: timeoutMs,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 200) return resolve(text);
          let message = text.slice(0, 500);
          try {
            const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
            if (parsed.error?.message) message = `${parsed.error.code ?? ""} ${parsed.error.message}`.trim();
          } catch {
            // not JSON: keep the text
          }
          reject(new RemotePreviewError(`${url.origin} answered ${res.statusCode}: ${message}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new RemotePreviewError(`${url.origin}: no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => reject(e instanceof RemotePreviewError ? e : new RemotePreviewError(`${url.origin}: ${e.message}`)));
    req.end(body);
  });
}
