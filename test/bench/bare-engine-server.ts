// The bare server of bare-server.ts with our engine inside: it reads the body, decodes,
// admits and encodes as the webhook's handler does (the code as shipped, bundled as dist/ is:
// bundled.ts) and writes the answer, with nothing else of `serve`: no request tracking, body
// limits, timeouts, log line or metrics. Beside `serve` (profile-serve.ts, BARE=engine), the
// difference is what the server around the engine costs; beside the bare server, what the
// engine costs on a server's core, caches shared with the rest of a request.
//
// Run: node --import tsx test/bench/bare-engine-server.ts PORT CERT_FILE KEY_FILE
// Prints `listening <port>` once it accepts connections; exits on SIGTERM/SIGINT. Loopback only.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { join } from "node:path";
import { bundledEngine } from "./bundled.js";

const [portArg = "0", certFile = "", keyFile = ""] = process.argv.slice(2);
if (certFile === "" || keyFile === "") {
  process.stderr.write("usage: bare-engine-server.ts PORT CERT_FILE KEY_FILE\n");
  process.exit(2);
}
const root = join(import.meta.dirname, "..", "..");
const { answerReview, decodeAdmissionReview, loadConfig } = await bundledEngine();
const config = await loadConfig(join(root, "test", "oracle", "injector-config.yaml"));

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
      let status = 200;
      let answer: Uint8Array | string;
      try {
        answer = answerReview(decodeAdmissionReview(Buffer.concat(chunks)), { config }).body;
      } catch {
        status = 400;
        answer = '{"error":"not an AdmissionReview"}';
      }
      res
        .writeHead(status, {
          "Content-Type": "application/json",
          "Content-Length": typeof answer === "string" ? Buffer.byteLength(answer) : answer.byteLength,
        })
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
