// A webhook listener whose connections are handed to it (src/admission/https.ts, `handed`), as a
// worker's are by its primary: here a plain TCP listener in the test plays the primary, with
// pauseOnConnect as the primary uses it. Served over TLS; answered 503 past maxConnections, and
// refused once the drain is over; the drain keeps taking them until told the last is on its way.
import assert from "node:assert/strict";
import https from "node:https";
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import { startServer, type RunningServer } from "../../../src/admission/https.js";
import { removeTestCertificates, testCertificates } from "../admission/helpers.js";

after(removeTestCertificates);

/** A TCP listener that hands every connection, not read from, to `to`; counts what was refused. */
async function primary(to: () => RunningServer): Promise<{ port: number; refused: () => number; close(): void }> {
  let refused = 0;
  const server = net.createServer({ pauseOnConnect: true }, (socket: Socket) => {
    if (!to().accept(socket)) refused += 1;
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  assert.ok(typeof address === "object" && address !== null);
  return { port: address.port, refused: () => refused, close: () => server.close() };
}

function get(
  port: number,
  ca: string,
  agent: https.Agent | false = false,
): Promise<{ status: number; close: boolean } | { error: string }> {
  return new Promise((resolve) => {
    const req = https.request({ host: "127.0.0.1", port, ca, path: "/", agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, close: res.headers.connection === "close" }));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

describe("a listener with handed connections", () => {
  it("listens on no port, serves what it is handed over TLS, and answers 503 past maxConnections", async () => {
    const c = await testCertificates();
    const server = await startServer({
      app: (_req, res) => res.end("ok"),
      port: 0,
      handed: true,
      tls: c,
      maxConnections: 1,
      evictIdleAfterMs: Infinity,
      evictSilentAfterMs: Infinity,
    });
    assert.equal(server.server.listening, false);
    const p = await primary(() => server);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.deepEqual(await get(p.port, c.ca, agent), { status: 200, close: false });
      assert.equal(server.connections, 1);
      // A second connection while the kept-alive one is open: past maxConnections, told to retry.
      assert.deepEqual(await get(p.port, c.ca), { status: 503, close: true });
      assert.equal(p.refused(), 1);
      assert.equal(server.connections, 1);
    } finally {
      agent.destroy();
      p.close();
      await server.close(1000);
    }
  });

  it("keeps taking connections during the drain until told the last is on its way, answering each with Connection: close; then refuses", async () => {
    const c = await testCertificates();
    const server = await startServer({ app: (_req, res) => res.end("ok"), port: 0, handed: true, tls: c });
    const p = await primary(() => server);
    let last: () => void = () => undefined;
    const until = new Promise<void>((r) => (last = r));
    const drained = server.close({ until, timeoutMs: 5_000 });
    assert.equal(server.draining, true);
    for (let i = 0; i < 3; i++) assert.deepEqual(await get(p.port, c.ca), { status: 200, close: true });
    assert.equal(p.refused(), 0);
    last();
    await drained;
    const after = await get(p.port, c.ca);
    assert.ok("error" in after, JSON.stringify(after));
    assert.equal(p.refused(), 1);
    p.close();
  });

  // Node checks these timeouts from a timer that listening starts; a handed listener never listens.
  for (const stall of [
    { what: "headers that never finish (headersTimeout)", sent: "POST / HTTP/1.1\r\nHost: x\r\n" },
    {
      what: "a body that never finishes (requestTimeout)",
      sent: "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    },
  ]) {
    it(`answers 408 and closes a handed connection with ${stall.what}`, { timeout: 10_000 }, async () => {
      const c = await testCertificates();
      const server = await startServer({
        app: (req, res) => {
          req.resume();
          req.on("end", () => res.end("ok"));
        },
        port: 0,
        handed: true,
        tls: c,
        headersTimeoutMs: 300,
        requestTimeoutMs: 600,
      });
      const p = await primary(() => server);
      try {
        const socket = tls.connect({ host: "127.0.0.1", port: p.port, ca: c.ca, servername: "localhost" });
        let received = "";
        socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
        socket.on("error", () => undefined);
        await new Promise<void>((r) => socket.once("secureConnect", () => r()));
        const closed = new Promise<void>((r) => socket.once("close", () => r()));
        socket.write(stall.sent);
        // Without the check the connection stays open, and the test fails at its timeout.
        await closed;
        assert.match(received, /^HTTP\/1\.1 408 /);
        // The server sees the close a moment after the client does.
        for (let i = 0; i < 100 && server.connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(server.connections, 0);
      } finally {
        p.close();
        await server.close(1000);
      }
    });
  }

  it("refuses a handed connection when it was started to listen", async () => {
    const c = await testCertificates();
    const server = await startServer({ app: (_req, res) => res.end("ok"), port: 0, tls: c });
    const socket = new net.Socket();
    try {
      assert.equal(server.accept(socket), false);
      assert.equal(socket.destroyed, true);
    } finally {
      await server.close(1000);
    }
  });
});
