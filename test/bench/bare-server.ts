// The bare Node HTTPS server the benchmarks compare `serve` with: node:https and nothing else.
// POST reads the whole body, JSON.parse and JSON.stringify it, and answers 200 with the result
// as application/json; GET /readyz answers 200. The same TLS certificate as `serve`, TLS 1.2+.
// It is the floor of any webhook written on Node: what is left above it is ours.
// Run: node --import tsx test/bench/bare-server.ts PORT CERT_FILE KEY_FILE   (SIGTERM ends it)
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [port, certFile, keyFile] = process.argv.slice(2);
if (port === undefined || certFile === undefined || keyFile === undefined) {
  console.error("usage: bare-server.ts PORT CERT_FILE KEY_FILE");
  process.exit(2);
}

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: "TLSv1.2" }, (req, res) => {
  if (req.method !== "POST") {
    res.writeHead(req.url === "/readyz" ? 200 : 404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let out: string;
    try {
      out = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    } catch {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) }).end(out);
  });
});
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => server.close());
