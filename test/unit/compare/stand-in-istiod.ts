// An HTTPS server standing in for istiod's injection endpoint, for the tests of
// `preview --compare-with`. Its certificate names only istiod's Service
// (istiod.istio-system.svc), as istiod's does, signed by a CA written to `caFile`. What it
// answers is `handler`, set per test: `asOurs` answers each review with this injector's own
// webhook (admit), so a comparison finds nothing; `asOurs(edit)` edits that answer first.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admit, validateAdmissionReview } from "../../../src/admission/review.js";
import { createCa, mintServingCert } from "../../../src/certs/authority.js";
import { parseConfig } from "../../../src/config/load.js";
import type { AdmissionReview } from "../../../src/kube/types.js";

export const ISTIOD_NAME = "istiod.istio-system.svc";

export type Handler = (review: unknown, req: IncomingMessage, res: ServerResponse) => void;

export interface StandInIstiod {
  readonly url: string;
  readonly caFile: string;
  readonly dir: string;
  /** Reviews received, as parsed. */
  readonly received: unknown[];
  handler: Handler;
  close(): Promise<void>;
}

const config = parseConfig("{}", "defaults");

/** This injector's own answer to `review` (its webhook's admit, default config), edited by `edit`. */
export function ourAnswer(review: unknown, edit: (r: AdmissionReview) => void = () => {}): AdmissionReview {
  const answer = admit(validateAdmissionReview(review), { config }).review;
  const copy = structuredClone(answer);
  edit(copy);
  return copy;
}

export function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export const asOurs =
  (edit?: (r: AdmissionReview) => void): Handler =>
  (review, _req, res) =>
    sendJson(res, ourAnswer(review, edit));

export async function startStandInIstiod(): Promise<StandInIstiod> {
  const dir = mkdtempSync(join(tmpdir(), "stand-in-istiod-"));
  const now = new Date();
  const ca = await createCa({ validityMs: 3_600_000, now });
  const issuer = ca.certs[0];
  if (issuer === undefined) throw new Error("no CA certificate");
  const leaf = await mintServingCert(ca, issuer, {
    dnsNames: [ISTIOD_NAME],
    ipAddresses: [],
    validityMs: 600_000,
    now,
  });
  const caFile = join(dir, "istiod-ca.crt");
  writeFileSync(caFile, issuer.certPem);
  const received: unknown[] = [];
  const state: { handler: Handler } = { handler: asOurs() };
  const server: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let review: unknown;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        sendJson(res, { message: "not JSON" }, 400);
        return;
      }
      received.push(review);
      state.handler(review, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  return {
    url: `https://127.0.0.1:${port}/inject`,
    caFile,
    dir,
    received,
    get handler() {
      return state.handler;
    },
    set handler(h: Handler) {
      state.handler = h;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
