// Hostile TLS clients against the whole server (`serve` as main.ts wires it): each weak or
// broken client is refused and counted by reason, and a well-behaved API server connecting
// alongside them over TLS 1.2 with ECDHE still has its review answered.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { ensureLocalCertificates, type LocalCertificates } from "../../src/certs/local.js";
import { runServe, type ServeHandle } from "../../src/main.js";
import { podReview } from "../support/review.js";

let root: string;
let certs: LocalCertificates;
let h: ServeHandle;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "sidecar-injector-hostile-tls-"));
  const certDir = join(root, "certs");
  certs = await ensureLocalCertificates(certDir);
  h = await runServe({ port: 0, certDir, logLevel: "silent" });
});
after(async () => {
  await h?.close();
  await rm(root, { recursive: true, force: true });
});

/** Resolves with the client's error code, or "connected" if the handshake succeeded. */
function attempt(opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port: h.port, ca: certs.ca, ...opts }, () => {
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function request(
  method: string,
  path: string,
  body?: string,
  agentOptions: https.AgentOptions = {},
): Promise<{ status: number; body: string; cipher: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const agent = new https.Agent({ ca: certs.ca, keepAlive: false, ...agentOptions });
    const req = https.request(
      {
        host: "127.0.0.1",
        port: h.port,
        method,
        path,
        agent,
        headers: body === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const cipher = socket.getCipher().name;
        const protocol = socket.getProtocol() ?? "";
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString("utf8")));
        res.on("end", () => {
          agent.destroy();
          resolve({ status: res.statusCode ?? 0, body: text, cipher, protocol });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function failures(): Promise<Record<string, number>> {
  const text = (await request("GET", "/metrics")).body;
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^sidecar_injector_tls_handshake_failures_total\{reason="(\w+)"\} (\d+)$/gm))
    counts[m[1]!] = Number(m[2]);
  return counts;
}

/** Polls the metrics until `reason` reaches `at least`, then returns every count. */
async function whenCounted(reason: string, atLeast: number): Promise<Record<string, number>> {
  for (let i = 0; i < 200; i++) {
    const counts = await failures();
    if ((counts[reason] ?? 0) >= atLeast) return counts;
    await new Promise((r) => setTimeout(r, 50));
  }
  return failures();
}

describe("hostile TLS clients", () => {
  it("a burst of static-RSA, CBC and TLS 1.1 clients is refused and counted; an ECDHE review alongside is answered", async () => {
    const before = await failures();
    assert.equal(before.cipher, 0);
    assert.equal(before.protocol, 0);

    const weak: Promise<string>[] = [];
    for (let i = 0; i < 20; i++) {
      weak.push(attempt({ maxVersion: "TLSv1.2", ciphers: "AES128-GCM-SHA256" }));
      weak.push(attempt({ maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES128-SHA" }));
      weak.push(attempt({ minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" }));
    }
    // The API server, in the middle of the burst: TLS 1.2, ECDHE, a Pod to inject.
    const review = podReview({
      uid: "bystander",
      namespace: "demo",
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web" },
        spec: { containers: [{ name: "web", image: "nginx" }] },
      },
    });
    const bystander = request("POST", "/inject", JSON.stringify(review), { maxVersion: "TLSv1.2" });

    const outcomes = await Promise.all(weak);
    assert.equal(outcomes.filter((o) => o === "connected").length, 0, outcomes.join(" "));
    const answered = await bystander;
    assert.equal(answered.status, 200);
    assert.equal(answered.protocol, "TLSv1.2");
    assert.match(answered.cipher, /^ECDHE-(ECDSA|RSA)-.*(GCM|POLY1305)/);
    const response = (JSON.parse(answered.body) as { response: { uid: string; allowed: boolean; patch?: string } })
      .response;
    assert.equal(response.uid, "bystander");
    assert.equal(response.allowed, true);
    assert.ok(response.patch, "the Pod was injected");

    const counts = await whenCounted("cipher", 40);
    assert.equal(counts.cipher, 40);
    assert.equal(counts.protocol, 20);
  });

  it("plain HTTP, a renegotiation and a half-open handshake are refused and counted, and the server still answers", async () => {
    const before = await failures();
    const plain = await new Promise<string>((resolve) => {
      let data = "";
      const socket = net.connect(h.port, "127.0.0.1", () => socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      socket.on("data", (c: Buffer) => (data += c.toString("latin1")));
      socket.on("close", () => resolve(data));
      socket.on("error", () => undefined);
    });
    assert.doesNotMatch(plain, /^HTTP\/1\.1 200/, "no answer in plain HTTP");

    const renegotiation = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: "127.0.0.1", port: h.port, ca: certs.ca, maxVersion: "TLSv1.2" }, () => {
        socket.renegotiate({}, (err) => {
          if (!err) resolve("renegotiated");
        });
      });
      socket.resume();
      socket.on("error", () => undefined);
      socket.on("close", () => resolve("closed"));
    });
    assert.equal(renegotiation, "closed");

    // A ClientHello cut short, then a reset.
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03]);
    await new Promise<void>((resolve) => {
      const socket = net.connect(h.port, "127.0.0.1", () => socket.write(hello, () => socket.resetAndDestroy()));
      socket.on("close", () => resolve());
      socket.on("error", () => undefined);
    });

    const counts = await whenCounted("reset", before.reset! + 1);
    assert.equal(counts.plain_http, before.plain_http! + 1);
    assert.equal(counts.renegotiation, before.renegotiation! + 1);
    assert.equal(counts.reset, before.reset! + 1);
    assert.equal((await request("GET", "/readyz")).status, 200);
  });
});
