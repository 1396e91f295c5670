// The floor a webhook in Node cannot go below: a bare Node HTTPS server (TLS 1.2+, the same
// certificate as `serve`) that reads the body, JSON.parse's it, JSON.stringify's an answer of
// the same shape (the review, its uid echoed) and writes it; GET /readyz answers 200. No
// framework, no logging, no metrics, no injection. The benchmarks run it beside `serve`, under
// the same load, to say what the injector costs on top of HTTPS and JSON. It imports nothing
// of ours, so table.bench.ts can run it as plain JavaScript, without a loader in its process.
// serveBare is also bare-engine-server.ts's server, with another answer.
//
// Run: node --import tsx test/bench/bare-server.ts PORT CERT_FILE KEY_FILE
// Prints `listening <port>` once it accepts connections (PORT 0 picks a free one); exits on
// SIGTERM/SIGINT. Loopback only.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { pathToFileURL } from "node:url";

/** A POST's answer from its body: the status and the JSON. */
export type BareAnswer = (body: Buffer) => { status: number; json: string | Uint8Array };

/** Serves `answer` on the PORT CERT_FILE KEY_FILE of the command line; `script` names it in the usage. */
export function serveBare(script: string, answer: BareAnswer): void {
  const [portArg = "0", certFile = "", keyFile = ""] = process.argv.slice(2);
  if (certFile === "" || keyFile === "") {
    process.stderr.write(`usage: ${script} PORT CERT_FILE KEY_FILE\n`);
    process.exit(2);
  }
  const server = createServer(
    { minVersion: "TLSv1.2", cert: readFileSync(certFile), key: readFileSync(keyFile) },
    (req, res) => {
      if (req.method !== "POST") {
        res.writeHead(req.url === "/readyz" ? 200 : 404).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const { status, json } = answer(Buffer.concat(chunks));
        res
          .writeHead(status, {
            "Content-Type": "application/json",
            "Content-Length": typeof json === "string" ? Buffer.byteLength(json) : json.byteLength,
          })
          .end(json);
      });
    },
  );
  server.keepAliveTimeout = 95_000;
  server.listen(Number(portArg), "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === "object" && address !== null ? address.port : portArg}\n`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The floor's answer: the review parsed and written back, its uid echoed in a response. */
const floorAnswer: BareAnswer = (body) => {
  try {
    const review = JSON.parse(body.toString("utf8")) as { request?: { uid?: unknown } };
    return { status: 200, json: JSON.stringify({ ...review, response: { uid: review.request?.uid, allowed: true } }) };
  } catch {
    return { status: 400, json: '{"error":"not JSON"}' };
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) serveBare("bare-server.ts", floorAnswer);
