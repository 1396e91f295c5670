// The answer to a connection past the bound (src/admission/connection-shed.ts): over TLS, 503
// ERR_OVERLOADED with Retry-After and Connection: close, written once the request has been read;
// at most `maxAtOnce` answered together (the next closed before TLS); each within its timeout;
// new handshakes with the latest pair.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import net, { type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import {
  countShed,
  createConnectionShedder,
  isReviewRequest,
  type ConnectionShedder,
  type ConnectionShedderOptions,
} from "../../../src/admission/connection-shed.js";
import { TLS_CONTEXT_OPTIONS } from "../../../src/admission/https.js";
import { ensureLocalCertificates } from "../../../src/certs/local.js";
import { removeTestCertificates, testCertificates } from "./helpers.js";

after(removeTestCertificates);

/** A TCP listener that gives every connection, not read from, to the shedder; what shed() said. */
async function listener(shedder: ConnectionShedder): Promise<{ port: number; taken: boolean[]; close(): void }> {
  const taken: boolean[] = [];
  const server = net.createServer({ pauseOnConnect: true }, (socket: Socket) => taken.push(shedder.shed(socket)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  assert.ok(typeof address === "object" && address !== null);
  return { port: address.port, taken, close: () => server.close() };
}

/** The test certificates, a shedder with them (and `options`), and a listener giving it every connection. */
async function setup(options: Partial<ConnectionShedderOptions> = {}): Promise<{
  c: Awaited<ReturnType<typeof testCertificates>>;
  shedder: ConnectionShedder;
  l: Awaited<ReturnType<typeof listener>>;
}> {
  const c = await testCertificates();
  const shedder = createConnectionShedder({
    contextOptions: TLS_CONTEXT_OPTIONS,
    cert: c.cert,
    key: c.key,
    ...options,
  });
  return { c, shedder, l: await listener(shedder) };
}

interface Client {
  readonly socket: tls.TLSSocket;
  /** Everything received, once the connection has closed; and whether the handshake completed. */
  readonly closed: Promise<{ text: string; secured: boolean }>;
  /** What has been received so far. */
  received(): string;
}

function client(port: number, ca: string): Client {
  let text = "";
  let secured = false;
  const socket = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => (secured = true));
  socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
  socket.on("error", () => undefined);
  const closed = new Promise<{ text: string; secured: boolean }>((r) =>
    socket.once("close", () => r({ text, secured })),
  );
  return { socket, closed, received: () => text };
}

const secured = (c: Client): Promise<void> => new Promise((r) => c.socket.once("secureConnect", () => r()));

const REVIEW = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "x" } });
const HEAD = `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${REVIEW.length}\r\n\r\n`;

describe("isReviewRequest", () => {
  it("is a POST to a path express routes to the review handler, and nothing else", () => {
    const reviews = [
      "/inject",
      "/inject/",
      "/inject?timeout=10s",
      "/inject/cluster/c1/net/n1",
      "/inject/:ENV:cluster=c1",
      "/INJECT",
      "/Inject/cluster/c1",
      "https://localhost:9443/inject",
      "http://localhost/inject?x=1",
    ];
    const others = [
      "/injector",
      "/inject%2Fcluster",
      "/x/inject",
      "/healthz",
      "/readyz",
      "/metrics",
      "/preview",
      "",
      "*",
    ];
    const request = (method: string, url: string): IncomingMessage => ({ method, url }) as IncomingMessage;
    for (const url of reviews) {
      assert.equal(isReviewRequest(request("POST", url)), true, url);
      assert.equal(isReviewRequest(request("GET", url)), false, `GET ${url}`);
    }
    for (const url of others) assert.equal(isReviewRequest(request("POST", url)), false, url);
  });
});

describe("countShed", () => {
  it("counts a shed review, or a connection closed unread, as a refused review; nothing else, nothing without metrics", () => {
    const counted: unknown[] = [];
    const metrics = { failure: { inc: (labels: unknown) => counted.push(labels) } } as unknown as Parameters<
      typeof countShed
    >[0];
    const request = (method: string, url: string): IncomingMessage => ({ method, url }) as IncomingMessage;
    countShed(metrics, request("POST", "/inject"));
    countShed(metrics, undefined);
    countShed(metrics, request("GET", "/healthz"));
    countShed(metrics, request("GET", "/metrics"));
    countShed(metrics, request("POST", "/preview"));
    countShed(undefined, request("POST", "/inject"));
    countShed(undefined, undefined);
    assert.deepEqual(counted, [{ reason: "ERR_OVERLOADED" }, { reason: "ERR_OVERLOADED" }]);
  });
});

describe("connection shedder", () => {
  it("answers 503 ERR_OVERLOADED with Retry-After: 1 and Connection: close, once the body has arrived", async () => {
    const { c, shedder, l } = await setup();
    try {
      const a = client(l.port, c.ca);
      await secured(a);
      a.socket.write(HEAD + REVIEW.slice(0, 10));
      // Half a body: no answer yet (one now, then closing, could reset the rest of the request).
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(a.received(), "");
      assert.equal(shedder.shedding, 1);
      a.socket.write(REVIEW.slice(10));
      const { text } = await a.closed;
      assert.match(text, /^HTTP\/1\.1 503 /);
      assert.match(text, /\r\nretry-after: 1\r\n/i);
      assert.match(text, /\r\nconnection: close\r\n/i);
      const body = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { error: { code: string } };
      assert.equal(body.error.code, "ERR_OVERLOADED");
      assert.deepEqual(l.taken, [true]);
    } finally {
      l.close();
      shedder.close();
    }
  });

  it("answers at most maxAtOnce together: the next is closed before its handshake, and one is taken again once one ends", async () => {
    const { c, shedder, l } = await setup({ maxAtOnce: 2 });
    try {
      const held = [client(l.port, c.ca), client(l.port, c.ca)];
      await Promise.all(held.map(secured));
      const third = await client(l.port, c.ca).closed;
      assert.equal(third.secured, false);
      assert.equal(third.text, "");
      assert.deepEqual(l.taken, [true, true, false]);
      const first = held[0];
      assert.ok(first !== undefined);
      first.socket.write(HEAD + REVIEW);
      assert.match((await first.closed).text, /^HTTP\/1\.1 503 /);
      for (let i = 0; i < 100 && shedder.shedding > 1; i++) await new Promise((r) => setTimeout(r, 10));
      const fourth = client(l.port, c.ca);
      await secured(fourth);
      fourth.socket.write(HEAD + REVIEW);
      assert.match((await fourth.closed).text, /^HTTP\/1\.1 503 /);
      assert.deepEqual(l.taken, [true, true, false, true]);
      held[1]?.socket.destroy();
    } finally {
      l.close();
      shedder.close();
    }
  });

  it("answers at most perSecond a second: past it a connection is closed before its handshake, and the bucket refills", async () => {
    let clock = 0;
    const { c, shedder, l } = await setup({ perSecond: 2, now: () => clock });
    const answered = async (): Promise<boolean> => {
      const a = client(l.port, c.ca);
      a.socket.once("secureConnect", () => a.socket.write(HEAD + REVIEW));
      const { text, secured: ok } = await a.closed;
      if (ok) assert.match(text, /^HTTP\/1\.1 503 /);
      return ok;
    };
    try {
      // The clock stands still: two answered, the third closed.
      assert.deepEqual([await answered(), await answered(), await answered()], [true, true, false]);
      clock += 499;
      assert.equal(await answered(), false, "not yet a whole token back");
      clock += 1;
      assert.equal(await answered(), true, "half a second: one token back");
      clock += 10_000;
      assert.deepEqual(
        [await answered(), await answered(), await answered()],
        [true, true, false],
        "never more than a second's worth",
      );
      assert.deepEqual(l.taken, [true, true, false, false, true, true, true, false]);
    } finally {
      l.close();
      shedder.close();
    }
  });

  for (const stall of [
    { what: "sends nothing after its handshake", sent: "", answer: /^HTTP\/1\.1 408 / },
    { what: "never finishes its headers", sent: "POST /inject HTTP/1.1\r\nHost: x\r\n", answer: /^HTTP\/1\.1 408 / },
    { what: "never finishes its body", sent: HEAD + REVIEW.slice(0, 10), answer: /^HTTP\/1\.1 408 / },
  ]) {
    it(`closes a connection that ${stall.what} within its timeout`, { timeout: 10_000 }, async () => {
      const { c, shedder, l } = await setup({ timeoutMs: 300 });
      try {
        const a = client(l.port, c.ca);
        await secured(a);
        if (stall.sent !== "") a.socket.write(stall.sent);
        // Node's request and headers timeouts answer 408 (the last timer, past them, only closes).
        assert.match((await a.closed).text, stall.answer);
        for (let i = 0; i < 100 && shedder.shedding > 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(shedder.shedding, 0);
      } finally {
        l.close();
        shedder.close();
      }
    });
  }

  it("serves new handshakes with the pair it was last given", async () => {
    const c = await testCertificates();
    const dir = await mkdtemp(join(tmpdir(), "sidecar-injector-shed-"));
    try {
      const other = await ensureLocalCertificates(dir);
      const shedder = createConnectionShedder({ contextOptions: TLS_CONTEXT_OPTIONS, cert: c.cert, key: c.key });
      const l = await listener(shedder);
      try {
        const before = client(l.port, c.ca);
        await secured(before);
        before.socket.destroy();
        shedder.setCertificate(other.cert, other.key);
        const old = await client(l.port, c.ca).closed;
        assert.equal(old.secured, false, "the first CA no longer verifies the pair served");
        const after = client(l.port, other.ca);
        await secured(after);
        after.socket.destroy();
      } finally {
        l.close();
        shedder.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a pair that does not match, keeping the one before; reports a failed handshake", async () => {
    const errors: string[] = [];
    const { c, shedder, l } = await setup({ onTlsClientError: (err) => errors.push(err.code ?? err.message) });
    const dir = await mkdtemp(join(tmpdir(), "sidecar-injector-shed-"));
    try {
      const other = await ensureLocalCertificates(dir);
      assert.throws(() => shedder.setCertificate(c.cert, other.key), /do not match/);
      const still = client(l.port, c.ca);
      await secured(still);
      // TLS 1.1 only: refused by the listener's settings, and said so.
      const old = tls.connect({
        host: "127.0.0.1",
        port: l.port,
        ca: c.ca,
        minVersion: "TLSv1.1",
        maxVersion: "TLSv1.1",
        ciphers: "DEFAULT:@SECLEVEL=0",
      });
      old.on("error", () => undefined);
      await new Promise((r) => old.once("close", r));
      for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(errors, ["ERR_SSL_UNSUPPORTED_PROTOCOL"]);
      still.socket.destroy();
    } finally {
      l.close();
      shedder.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("closes what it is answering when closed, and every connection given to it afterwards", async () => {
    const c = await testCertificates();
    const shedder = createConnectionShedder({ contextOptions: TLS_CONTEXT_OPTIONS, cert: c.cert, key: c.key });
    const l = await listener(shedder);
    try {
      const a = client(l.port, c.ca);
      await secured(a);
      shedder.close();
      await a.closed;
      const b = await client(l.port, c.ca).closed;
      assert.equal(b.secured, false);
      assert.deepEqual(l.taken, [true, false]);
    } finally {
      l.close();
    }
  });
});
