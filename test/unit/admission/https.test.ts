import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import https from "node:https";
import { join } from "node:path";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import type { RequestListener } from "node:http";
import { startServer } from "../../../src/admission/https.js";
import { generateRsaKeyPair, issueServingCertificate, LOCAL_CERT_FILES } from "../../../src/certs/local.js";
import { podReview, removeTestCertificates, startTestServer, testCertificates } from "./helpers.js";

after(removeTestCertificates);

type Handshake = { protocol: string | null; serial: string } | { error: string };

function handshake(port: number, ca: string, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, ...opts }, () => {
      resolve({ protocol: socket.getProtocol(), serial: socket.getPeerCertificate().serialNumber });
      socket.end();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

/** A TLS connection to write raw HTTP on. */
function connect(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Everything the server sends until it closes the connection, parsed as one response. */
function readUntilClosed(socket: tls.TLSSocket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let data = "";
    socket.on("data", (c: Buffer) => (data += c.toString("utf8")));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", body = ""] = data.split("\r\n\r\n", 2);
      const [statusLine = "", ...headerLines] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("TLS", () => {
  it("refuses TLS 1.1 even where Node's own default would allow it, before and after a certificate swap", async () => {
    const saved = tls.DEFAULT_MIN_VERSION;
    tls.DEFAULT_MIN_VERSION = "TLSv1"; // a server relying on the default would now negotiate 1.1
    const s = await startTestServer();
    try {
      // The client is able to speak TLS 1.1 (legacy ciphers allowed); the server says no.
      const tls11 = { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" } as const;
      assert.deepEqual(await handshake(s.running.port, s.ca, tls11), { error: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });

      const v12 = await handshake(s.running.port, s.ca, { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
      assert.ok("protocol" in v12 && v12.protocol === "TLSv1.2", JSON.stringify(v12));
      const v13 = await handshake(s.running.port, s.ca);
      assert.ok("protocol" in v13 && v13.protocol === "TLSv1.3", JSON.stringify(v13));

      const c = await testCertificates();
      const caKey = await readFile(join(c.dir, LOCAL_CERT_FILES.caKey), "utf8");
      const keys = await generateRsaKeyPair();
      s.running.setCertificate(issueServingCertificate({ keys, caCert: c.ca, caKey, names: ["localhost", "127.0.0.1"], now: new Date() }), keys.privateKey);
      assert.deepEqual(await handshake(s.running.port, s.ca, tls11), { error: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });
    } finally {
      tls.DEFAULT_MIN_VERSION = saved;
      await s.close();
    }
  });

  it("serves a swapped certificate to new connections, and refuses a pair that does not match", async () => {
    const s = await startTestServer();
    try {
      const before = await handshake(s.running.port, s.ca);
      assert.ok("serial" in before);
      const c = await testCertificates();
      const caKey = await readFile(join(c.dir, LOCAL_CERT_FILES.caKey), "utf8");
      const keys = await generateRsaKeyPair();
      const cert = issueServingCertificate({ keys, caCert: c.ca, caKey, names: ["localhost", "127.0.0.1"], now: new Date() });

      assert.throws(() => s.running.setCertificate(cert, c.key), /key values mismatch|mismatch/i);
      const unchanged = await handshake(s.running.port, s.ca);
      assert.ok("serial" in unchanged && unchanged.serial === before.serial);

      s.running.setCertificate(cert, keys.privateKey);
      const after = await handshake(s.running.port, s.ca);
      assert.ok("serial" in after, JSON.stringify(after));
      assert.notEqual(after.serial, before.serial);
      assert.equal(after.serial, new (await import("node:crypto")).X509Certificate(cert).serialNumber);
    } finally {
      await s.close();
    }
  });
});

describe("timeouts", () => {
  it("sets the request, headers and keep-alive timeouts it is given", async () => {
    const s = await startTestServer({}, { requestTimeoutMs: 1500, headersTimeoutMs: 300, keepAliveTimeoutMs: 700 });
    try {
      assert.equal(s.running.server.requestTimeout, 1500);
      assert.equal(s.running.server.headersTimeout, 300);
      assert.equal(s.running.server.keepAliveTimeout, 700);
      // Headers that never finish: the server gives up on its own.
      const socket = await connect(s.running.port, s.ca);
      const closed = readUntilClosed(socket);
      const started = Date.now();
      socket.write("POST /inject HTTP/1.1\r\nHost: x\r\n");
      const res = await closed;
      assert.equal(res.status, 408);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      await s.close();
    }
  });
});

describe("drain", () => {
  it("stops accepting, reports not ready, and waits for the request in flight", async () => {
    const s = await startTestServer();
    const port = s.running.port;
    const body = JSON.stringify(podReview({ uid: "in-flight" }));
    const half = Math.floor(body.length / 2);

    // A: a review whose body is only half sent.
    const requestSeen = new Promise((r) => s.running.server.once("request", r));
    const a = await connect(port, s.ca);
    const aResponse = readUntilClosed(a);
    a.write(`POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
    a.write(body.slice(0, half));
    await requestSeen;

    // B: a readiness probe whose headers are not finished yet.
    const b = await connect(port, s.ca);
    const bResponse = readUntilClosed(b);
    b.write("GET /readyz HTTP/1.1\r\nHost: localhost\r\n");
    await sleep(100);

    let closed = false;
    const closing = s.running.close(10_000).then(() => (closed = true));
    assert.equal(s.running.draining, true);
    assert.equal(s.running.inFlight, 1);

    // No new connections.
    const fresh = await handshake(port, s.ca);
    assert.deepEqual(fresh, { error: "ECONNREFUSED" });

    // B completes during the drain: not ready, and told to close.
    b.write("\r\n");
    const ready = await bResponse;
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.connection, "close");
    assert.match(ready.body, /ERR_NOT_READY/);

    await sleep(200);
    assert.equal(closed, false, "close() waits while a request is in flight");

    // A completes: answered in full, then the server finishes closing.
    a.write(body.slice(half));
    const res = await aResponse;
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, "close");
    const review = JSON.parse(res.body) as { response: { uid: string; allowed: boolean } };
    assert.equal(review.response.uid, "in-flight");
    assert.equal(review.response.allowed, true);
    await closing;
    assert.equal(closed, true);
    assert.equal(s.running.server.listening, false);
  });

  it("force-closes a request that outlasts the drain timeout", async () => {
    const s = await startTestServer();
    const requestSeen = new Promise((r) => s.running.server.once("request", r));
    const a = await connect(s.running.port, s.ca);
    const aClosed = new Promise<void>((r) => a.on("close", () => r()));
    a.on("error", () => undefined);
    a.write("POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    await requestSeen;
    const started = Date.now();
    await s.running.close(300);
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2000, `close took ${took} ms`);
    await aClosed;
  });

  it("closes keep-alive connections left idle past the grace without waiting for the deadline", async () => {
    const s = await startTestServer();
    const agent = new https.Agent({ keepAlive: true, ca: s.ca });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = https.request({ host: "127.0.0.1", port: s.running.port, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end();
      });
      await sleep(20);
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, "one idle keep-alive connection");
      const started = Date.now();
      await s.running.close({ timeoutMs: 20_000, idleGraceMs: 100 });
      assert.ok(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`);
      assert.equal(s.running.connections, 0);
    } finally {
      agent.destroy();
    }
  });

  it("closes a kept-alive connection as soon as a response begun before the drain completes", async () => {
    // A response whose headers went out before the drain cannot say "Connection: close";
    // its connection turns idle when it ends and must not be left open until the deadline.
    let finish: (() => void) | undefined;
    let onHeaders!: () => void;
    const headersSent = new Promise<void>((r) => (onHeaders = r));
    const app: RequestListener = (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("part ");
      finish = () => res.end("done");
      onHeaders();
    };
    const c = await testCertificates();
    const server = await startServer({ app, port: 0, host: "127.0.0.1", tls: c });
    const agent = new https.Agent({ keepAlive: true, ca: c.ca });
    try {
      const body = new Promise<string>((resolve, reject) => {
        const req = https.request({ host: "127.0.0.1", port: server.port, path: "/", agent }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve(text));
        });
        req.on("error", reject);
        req.end();
      });
      await headersSent;
      const t0 = Date.now();
      const closing = server.close(3000);
      await sleep(100);
      finish?.();
      assert.equal(await body, "part done");
      await closing;
      assert.ok(Date.now() - t0 < 1500, `close took ${Date.now() - t0} ms`);
    } finally {
      agent.destroy();
    }
  });

  it("is idempotent", async () => {
    const s = await startTestServer();
    const first = s.running.close(1000);
    assert.equal(s.running.close(1000), first);
    await first;
  });
});
