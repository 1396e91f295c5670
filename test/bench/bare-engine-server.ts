// The bare server of bare-server.ts with our engine inside: it reads the body, decodes,
// admits and encodes as the webhook's handler does (the code as shipped, bundled as dist/ is:
// bundled.ts) and writes the answer, with nothing else of `serve`: no request tracking, body
// limits, timeouts, log line or metrics. Beside `serve` (profile-serve.ts, BARE=engine), the
// difference is what the server around the engine costs; beside the bare server, what the
// engine costs on a server's core, caches shared with the rest of a request.
//
// Run: node --import tsx test/bench/bare-engine-server.ts PORT CERT_FILE KEY_FILE
// Prints `listening <port>` once it accepts connections; exits on SIGTERM/SIGINT. Loopback only.
import { join } from "node:path";
import { serveBare } from "./bare-server.js";
import { bundledEngine } from "./bundled.js";

const root = join(import.meta.dirname, "..", "..");
const { answerReview, decodeAdmissionReview, loadConfig } = await bundledEngine();
const config = await loadConfig(join(root, "test", "oracle", "injector-config.yaml"));

serveBare("bare-engine-server.ts", (body) => {
  try {
    return { status: 200, json: answerReview(decodeAdmissionReview(body), { config }).body };
  } catch {
    return { status: 400, json: '{"error":"not an AdmissionReview"}' };
  }
});
