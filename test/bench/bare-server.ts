// The floor a webhook in Node cannot go below: a bare Node HTTPS server (TLS 1.2+, the same
// certificate as `serve`) that reads the body, JSON.parse's it, JSON.stringify's an answer of
// the same shape (the review, its uid echoed) and writes it; GET /readyz answers 200. No
// framework, no logging, no metrics, no injection. The benchmarks run it beside `serve`, under
// the same load, to say what the injector costs on top of HTTPS and JSON. It imports nothing
// of ours, so table.bench.ts can run it as plain JavaScript, without a loader in its process.
//
// Run: node --import tsx test/bench/bare-server.ts PORT CERT_FILE KEY_FILE
// Prints `listening <port>` once it accepts connections (PORT 0 picks a free one); exits on
// SIGTERM/SIGINT. Loopback only.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [portArg = "0", certFile = "", keyFile = ""] = process.argv.slice(2);
if (certFile === "" || keyFile === "") {
  process.stderr.write("usage: bare-server.ts PORT CERT_FILE KEY_FILE\n");
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
      let answer: string;
      let status = 200;
      try {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request?: { uid?: unknown } };
        answer = JSON.stringify({ ...review, response: { uid: review.request?.uid, allowed: true } });
      } catch {
        status = 400;
        answer = '{"error":"not JSON"}';
      }
      res
        .writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(answer) })
        .end(answer);
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
