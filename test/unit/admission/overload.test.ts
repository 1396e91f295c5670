// Pipelining, concurrency bound and connection bound of the HTTPS server: the answers a
// client gets past each bound, and that the server goes on answering afterwards.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import net from "node:net";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { BodyBudget } from "../../../src/admission/body.js";
import {
  evictionCandidate,
  MAX_PIPELINED_REQUESTS,
  PLAIN_HTTP_ANSWER,
  startServer,
  type ConnectionUse,
} from "../../../src/admission/https.js";
import { holdAnswer } from "../../../src/admission/body.js";
import { OFFLOAD_FROM_BYTES } from "../../../src/admission/review-pool.js";
import { costlyAnnotations } from "../../support/costly-annotations.js";
import { INLINE_TEMPLATE_UNITS, TEMPLATE_OWN_UNITS } from "../../../src/injection/inline-cost.js";
import {
  JSON_HEADERS,
  podReview,
  removeTestCertificates,
  responseOf,
  send,
  startTestServer,
  testCertificates,
} from "./helpers.js";

after(removeTestCertificates);

function connect(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Reads from `socket` until `count` complete HTTP responses have arrived or it closes. */
function readResponses(
  socket: tls.TLSSocket,
  count: number,
): Promise<{ statuses: number[]; bodies: string[]; closed: boolean }> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const statuses: number[] = [];
    const bodies: string[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      resolve({ statuses, bodies, closed });
    };
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const headEnd = buf.indexOf("\r\n\r\n");
        if (headEnd < 0) break;
        const head = buf.subarray(0, headEnd).toString("latin1");
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < headEnd + 4 + length) break;
        statuses.push(Number(head.split(" ")[1]));
        bodies.push(buf.subarray(headEnd + 4, headEnd + 4 + length).toString("utf8"));
        buf = buf.subarray(headEnd + 4 + length);
        if (statuses.length === count) finish(false);
      }
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

/** Sends `body` until it is answered `status` (at most 100 times, 20 ms apart); the last answer. */
async function sendUntil(port: number, ca: string, body: string, status: number): ReturnType<typeof send> {
  let last = await send(port, ca, { headers: JSON_HEADERS, body });
  for (let i = 1; i < 100 && last.status !== status; i++) {
    await new Promise((r) => setTimeout(r, 20));
    last = await send(port, ca, { headers: JSON_HEADERS, body });
  }
  return last;
}

const injectable = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", labels: { app: "web" } },
  spec: { containers: [{ name: "app", image: "nginx", ports: [{ containerPort: 80 }] }] },
};

describe("pipelined requests", () => {
  it("reads a chunked body whose Transfer-Encoding has empty list elements (no coding)", async () => {
    const s = await startTestServer();
    try {
      const review = JSON.stringify(podReview({ object: injectable }));
      for (const header of [", chunked", "identity, chunked", " ,chunked"]) {
        const socket = await connect(s.running.port, s.ca);
        socket.write(
          `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: ${header}\r\n\r\n` +
            `${Buffer.byteLength(review).toString(16)}\r\n${review}\r\n0\r\n\r\n`,
        );
        const got = await readResponses(socket, 1);
        socket.destroy();
        assert.deepEqual(got.statuses, [200], header);
      }
    } finally {
      await s.close();
    }
  });

  it("answers the requests before one HTTP's parser refuses, in order, then refuses that one and closes", async () => {
    const s = await startTestServer();
    try {
      const review = JSON.stringify(podReview({ object: injectable }));
      const one =
        "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        `Content-Length: ${Buffer.byteLength(review)}\r\n\r\n${review}`;
      const cases: [string, string, number[], string][] = [
        ["garbage after one", `${one}GARBAGE\r\n\r\n`, [200, 400], "ERR_BAD_REQUEST"],
        ["garbage after three", `${one}${one}${one}GARBAGE\r\n\r\n`, [200, 200, 200, 400], "ERR_BAD_REQUEST"],
        ["CONNECT after one", `${one}CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n`, [200, 405], "ERR_METHOD_NOT_ALLOWED"],
        [
          "two Content-Lengths after one",
          `${one}POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`,
          [200, 400],
          "ERR_BAD_REQUEST",
        ],
        [
          // No length: an empty body (400), then its bytes read as the next request.
          "a body sent without its length",
          "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n{}",
          [400, 400],
          "ERR_BAD_REQUEST",
        ],
      ];
      for (const [what, wire, statuses, code] of cases) {
        const socket = await connect(s.running.port, s.ca);
        socket.write(wire);
        // One more than expected: it ends when the connection closes.
        const got = await readResponses(socket, statuses.length + 1);
        socket.destroy();
        assert.deepEqual(got.statuses, statuses, what);
        assert.equal(got.closed, true, `${what}: closed after the refusal`);
        assert.equal((JSON.parse(got.bodies.at(-1) ?? "{}") as { error?: { code?: string } }).error?.code, code, what);
      }
    } finally {
      await s.close();
    }
  });

  it("answers every request of a 32-deep pipeline, in order", async () => {
    const s = await startTestServer();
    try {
      const socket = await connect(s.running.port, s.ca);
      const n = 32;
      let wire = "";
      // The AdmissionReview the API server sent (with managedFields): answers of this size
      // are what overflowed Node's buffering of a pipeline.
      const recorded = JSON.parse(
        await readFile(new URL("../../fixtures/admission-review-pod.json", import.meta.url), "utf8"),
      ) as { request: { uid: string } };
      for (let i = 0; i < n; i++) {
        recorded.request.uid = `uid-${i}`;
        const body = JSON.stringify(recorded);
        wire += `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      }
      const answers = readResponses(socket, n);
      socket.write(wire);
      const { statuses, bodies } = await answers;
      socket.destroy();
      assert.deepEqual(
        statuses,
        Array.from({ length: n }, () => 200),
      );
      const uids = bodies.map((b) => (JSON.parse(b) as { response: { uid: string; patch?: string } }).response);
      assert.deepEqual(
        uids.map((r) => r.uid),
        Array.from({ length: n }, (_, i) => `uid-${i}`),
      );
      assert.ok(
        uids.every((r) => typeof r.patch === "string"),
        "every answer carries a patch",
      );
    } finally {
      await s.close();
    }
  });
});

describe("pipelined requests received when the drain begins", () => {
  it("are all answered; only the last answer on the connection closes it", async () => {
    const s = await startTestServer();
    try {
      const socket = await connect(s.running.port, s.ca);
      socket.on("error", () => undefined);
      const n = 12;
      let seen = 0;
      const allSeen = new Promise<void>((resolve) =>
        s.running.server.on("request", () => {
          if (++seen === n) resolve();
        }),
      );
      const body = JSON.stringify(podReview({ object: injectable }));
      const request = `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      let raw = "";
      socket.on("data", (d: Buffer) => (raw += d.toString("latin1")));
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.write(request.repeat(n));
      await allSeen;
      const drained = s.close();
      await closed;
      await drained;
      const heads = raw.split("\r\n\r\n").filter((part) => part.includes("HTTP/1.1 "));
      assert.deepEqual(
        heads.map((h) => /HTTP\/1\.1 (\d+)/.exec(h)?.[1]),
        Array.from({ length: n }, () => "200"),
      );
      const connection = heads.map((h) => /\r\nconnection: (\S+)/i.exec(h)?.[1]?.toLowerCase());
      assert.deepEqual(
        connection.map((c) => c === "close"),
        [...Array.from({ length: n - 1 }, () => false), true],
        connection.join(" "),
      );
    } finally {
      await s.close();
    }
  });
});

describe("pipelined requests on a connection that goes", () => {
  const wire = (n: number, path = "/inject"): string => {
    const body = JSON.stringify(podReview({ object: injectable }));
    return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`.repeat(
      n,
    );
  };

  it("lets the places of its unanswered requests go: the bound is not used up, the drain does not wait", async () => {
    const s = await startTestServer({}, { maxConcurrentRequests: 8 });
    try {
      // Ten connections, each a pipeline of five closed at once: Node emits no `close` for the
      // answers still queued behind the first, which held their places in flight for good.
      for (let i = 0; i < 10; i++) {
        const socket = await connect(s.running.port, s.ca);
        socket.on("error", () => undefined);
        socket.resume();
        const closed = new Promise((resolve) => socket.once("close", resolve));
        socket.end(wire(5));
        await closed;
      }
      for (let i = 0; i < 200 && s.running.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.running.inFlight, 0);
      const later = await send(s.running.port, s.ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ object: injectable })),
      });
      assert.equal(later.status, 200);
      assert.equal((await send(s.running.port, s.ca, { method: "GET", path: "/healthz" })).status, 200);
    } finally {
      const started = Date.now();
      await s.close();
      assert.ok(Date.now() - started < 900, "the drain had nothing to wait for");
    }
  });

  it("past MAX_PIPELINED_REQUESTS waiting on one connection: 503 and the connection closed, the others served", async () => {
    const s = await startTestServer();
    try {
      const socket = await connect(s.running.port, s.ca);
      const answers = readResponses(socket, MAX_PIPELINED_REQUESTS + 8);
      socket.write(wire(MAX_PIPELINED_REQUESTS + 8));
      const { statuses, closed } = await answers;
      assert.ok(closed, "the connection is closed after the refusal");
      assert.deepEqual(
        statuses.slice(0, MAX_PIPELINED_REQUESTS),
        Array.from({ length: MAX_PIPELINED_REQUESTS }, () => 200),
      );
      assert.equal(statuses[MAX_PIPELINED_REQUESTS], 503);
      const other = await send(s.running.port, s.ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ object: injectable })),
      });
      assert.equal(other.status, 200);
    } finally {
      await s.close();
    }
  });
});

describe("concurrency bound", () => {
  it("sheds requests past the bound at once with 503 ERR_OVERLOADED, then answers again", async () => {
    const held: Array<() => void> = [];
    const s = await startTestServer({}, { maxConcurrentRequests: 2 });
    // Two requests whose bodies never finish hold both places.
    const slow = await Promise.all([connect(s.running.port, s.ca), connect(s.running.port, s.ca)]);
    const seen = new Promise<void>((resolve) => {
      let n = 0;
      s.running.server.on("request", () => {
        n += 1;
        if (n === 2) resolve();
      });
    });
    for (const socket of slow) {
      socket.on("error", () => undefined);
      socket.write(
        "POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
      );
      held.push(() => socket.destroy());
    }
    try {
      await seen;
      assert.equal(s.running.inFlight, 2);
      const shed = await send(s.running.port, s.ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ object: injectable })),
      });
      assert.equal(shed.status, 503);
      assert.equal(shed.headers["retry-after"], "1");
      assert.equal(shed.headers.connection, "close");
      assert.deepEqual(shed.json(), {
        error: {
          code: "ERR_OVERLOADED",
          message: "sidecar-injector is overloaded: too many requests in flight or connections open; retry",
        },
      });
      const metrics = await s.metrics.registry.getSingleMetricAsString("sidecar_injection_failure_total");
      assert.match(metrics, /reason="ERR_OVERLOADED"} 1/);
      assert.ok(s.logs.lines().some((l) => l.code === "ERR_OVERLOADED" && l.shed === 1));

      for (const release of held) release();
      // Released places are free again: a bystander is injected.
      for (let i = 0; i < 50 && s.running.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
      const ok = await send(s.running.port, s.ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ object: injectable })),
      });
      assert.equal(ok.status, 200);
      assert.equal(typeof responseOf(ok).patch, "string");
    } finally {
      for (const release of held) release();
      await s.close();
    }
  });
});

/** The server's one place taken: a review whose body never finishes, seen by the server. */
async function holdThePlace(s: Awaited<ReturnType<typeof startTestServer>>): Promise<tls.TLSSocket> {
  const holder = await connect(s.running.port, s.ca);
  holder.on("error", () => undefined);
  const seen = new Promise((r) => s.running.server.once("request", r));
  holder.write(
    "POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
  );
  await seen;
  return holder;
}

/** A review on a new connection: its headers and `body` up to `sent` written, the rest by `finish`. */
async function partialPost(
  port: number,
  ca: string,
  body: string,
  sent: number,
): Promise<{ received(): string; finish(): void; closed: Promise<void> }> {
  const socket = await connect(port, ca);
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  socket.write(
    `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body.slice(0, sent));
  return { received: () => received, finish: () => socket.end(body.slice(sent)), closed };
}

describe("concurrency bound: a body still coming", () => {
  it("answers a request past the bound once its body has arrived, not while the client still sends it", async () => {
    const s = await startTestServer({}, { maxConcurrentRequests: 1 });
    const holder = await holdThePlace(s);
    try {
      assert.equal(s.running.inFlight, 1);
      // A 2 MiB body, sent in two parts: answered (and closed) before the second, the client's
      // write could fail with a reset and lose the answer.
      const body = JSON.stringify(
        podReview({
          object: { ...injectable, metadata: { name: "big", annotations: { pad: "x".repeat(2 * 1024 * 1024) } } },
        }),
      );
      const past = await partialPost(s.running.port, s.ca, body, Math.floor(body.length / 2));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(past.received(), "", "answered before the body had arrived");
      past.finish();
      await past.closed;
      assert.match(past.received(), /^HTTP\/1\.1 503 /);
      assert.match(past.received(), /\r\nretry-after: 1\r\n/i);
      assert.match(past.received(), /ERR_OVERLOADED/);
    } finally {
      holder.destroy();
      await s.close();
    }
  });
});

describe("body memory bound", () => {
  it("refuses a body that would take all bodies in flight past the budget, and gives the bytes back", async () => {
    const s = await startTestServer({ maxBufferedBodyBytes: 100_000 });
    const holder = await connect(s.running.port, s.ca);
    holder.on("error", () => undefined);
    try {
      // 90 kB of a 200 kB body arrive and stay: the budget has 10 kB left.
      const requestSeen = new Promise((r) => s.running.server.once("request", r));
      holder.write(
        `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n${" ".repeat(90_000)}`,
      );
      await requestSeen;
      const body = JSON.stringify(
        podReview({
          object: { ...injectable, metadata: { ...injectable.metadata, annotations: { pad: "x".repeat(20_000) } } },
        }),
      );
      // The holder's bytes may still be on the way.
      const refused = await sendUntil(s.running.port, s.ca, body, 503);
      assert.equal(refused.status, 503);
      assert.equal((refused.json().error as { code: string }).code, "ERR_OVERLOADED");
      assert.equal(refused.headers["retry-after"], "1");

      holder.destroy();
      for (let i = 0; i < 50 && s.running.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
      const ok = await send(s.running.port, s.ca, { headers: JSON_HEADERS, body });
      assert.equal(ok.status, 200);
      assert.equal(typeof responseOf(ok).patch, "string");
    } finally {
      holder.destroy();
      await s.close();
    }
  });
});

describe("answer memory bound", () => {
  it("a large answer its client does not read holds its bytes in the budget: past it 503, given back when it goes", async () => {
    // 16,000 containers with probes: a body near the 6 MiB limit, answered on a worker thread
    // with about 13 MB, more than the kernel's socket buffers take from a client that reads
    // nothing (about 4 MiB sent, 128 KiB received).
    const probe = { httpGet: { path: "/ready", port: 8080 } };
    const containers = Array.from({ length: 16_000 }, (_, i) => ({
      name: `c${i}`,
      image: "nginx",
      ports: [{ containerPort: 8080 }],
      readinessProbe: probe,
      livenessProbe: probe,
      startupProbe: probe,
    }));
    const body = JSON.stringify(podReview({ object: { ...injectable, spec: { containers } } }));
    // The answer's size, from a server with the default budget.
    const measure = await startTestServer();
    const size = (await send(measure.running.port, measure.ca, { headers: JSON_HEADERS, body })).body.length;
    await measure.close();
    assert.ok(body.length < 6 * 1024 * 1024 && size > 12_000_000, `${body.length} and ${size} bytes`);
    // Room for one answer and one body, not two answers.
    const s = await startTestServer({ maxBufferedBodyBytes: size + body.length + 10_000 });
    const holder = await connect(s.running.port, s.ca);
    holder.on("error", () => undefined);
    try {
      const request = `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const started = new Promise((r) => holder.once("data", r));
      holder.write(request);
      await started;
      holder.pause(); // the rest of its answer waits in the server
      const refused = await send(s.running.port, s.ca, { headers: JSON_HEADERS, body });
      assert.equal(refused.status, 503);
      assert.equal((refused.json().error as { code: string }).code, "ERR_OVERLOADED");
      holder.destroy();
      // The holder's close may still be on its way.
      assert.equal((await sendUntil(s.running.port, s.ca, body, 200)).status, 200);
    } finally {
      holder.destroy();
      await s.close();
    }
  });
});

/**
 * A server answering "ok", bounded to `maxConnections`, whose idle connections never give up
 * their place: what the tests using it check is the answer past the bound.
 */
async function boundServer(
  maxConnections: number,
  more: Partial<Parameters<typeof startServer>[0]> = {},
): Promise<{ server: Awaited<ReturnType<typeof startServer>>; ca: string }> {
  const c = await testCertificates();
  const server = await startServer({
    app: (_req, res) => res.end("ok"),
    port: 0,
    host: "127.0.0.1",
    tls: c,
    maxConnections,
    evictIdleAfterMs: Infinity,
    evictSilentAfterMs: Infinity,
    ...more,
  });
  return { server, ca: c.ca };
}

describe("connection bound", () => {
  it("a plain HTTP request past the bound is told it sent HTTP to an HTTPS server, as below it", async () => {
    const { server, ca } = await boundServer(1);
    const open = await connect(server.port, ca);
    try {
      assert.equal(server.connections, 1);
      const answer = await new Promise<string>((resolve, reject) => {
        let got = "";
        const socket = net.connect(server.port, "127.0.0.1", () =>
          socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
        socket.on("close", () => resolve(got));
        socket.on("error", reject);
      });
      assert.equal(answer, PLAIN_HTTP_ANSWER);
    } finally {
      open.destroy();
      await server.close(1000);
    }
  });

  it("answers connections past the bound 503 with Retry-After (what the API server retries), and serves again once one closes", async () => {
    const { server, ca } = await boundServer(3);
    const open: tls.TLSSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) open.push(await connect(server.port, ca));
      assert.equal(server.connections, 3);
      const past = await connect(server.port, ca);
      const body = JSON.stringify(podReview({ uid: "past-the-bound" }));
      const answer = readResponses(past, 1);
      let head = "";
      past.on("data", (d: Buffer) => (head ||= d.toString("latin1")));
      past.write(
        `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      past.write(body);
      const { statuses, bodies } = await answer;
      assert.deepEqual(statuses, [503]);
      assert.match(head, /\r\nretry-after: 1\r\n/i);
      assert.match(head, /\r\nconnection: close\r\n/i);
      assert.match(bodies[0] ?? "", /ERR_OVERLOADED/);
      assert.equal(server.connections, 3, "the app's connections are not taken by the one past the bound");
      const closed = new Promise((r) => open[0]?.once("close", r));
      open[0]?.destroy();
      await closed;
      for (let i = 0; i < 50 && server.connections > 2; i++) await new Promise((r) => setTimeout(r, 20));
      const again = await connect(server.port, ca);
      open.push(again);
      const served = readResponses(again, 1);
      again.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.deepEqual((await served).statuses, [200]);
    } finally {
      for (const s of open) s.destroy();
      await server.close(1000);
    }
  });
});

describe("connection bound: a connection with nothing to do gives its place", () => {
  const served = async (port: number, ca: string): Promise<tls.TLSSocket> => {
    const socket = await connect(port, ca);
    socket.on("error", () => undefined);
    const answer = readResponses(socket, 1);
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.deepEqual((await answer).statuses, [200]);
    return socket;
  };
  const closes = (socket: net.Socket): Promise<void> =>
    socket.closed ? Promise.resolve() : new Promise((r) => socket.once("close", () => r()));

  it("a new connection past the bound is served in the place of one that never began its handshake, then of the longest idle", async () => {
    const s = await startTestServer({}, { maxConnections: 3, evictIdleAfterMs: 0, evictSilentAfterMs: 0 });
    const open: net.Socket[] = [];
    try {
      // Two served and kept alive (the first the longest idle), then one that says nothing.
      const first = await served(s.running.port, s.ca);
      const second = await served(s.running.port, s.ca);
      open.push(first, second);
      const silent = net.connect(s.running.port, "127.0.0.1");
      silent.on("error", () => undefined);
      open.push(silent);
      await new Promise((r) => silent.once("connect", r));
      for (let i = 0; i < 200 && s.running.connections < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.running.connections, 3);
      // A fourth: served; the silent one closed, though the served ones were idle longer.
      const silentClosed = closes(silent);
      open.push(await served(s.running.port, s.ca));
      await silentClosed;
      assert.equal(first.closed, false);
      // A fifth: served in the place of the longest idle, the first.
      const firstClosed = closes(first);
      open.push(await served(s.running.port, s.ca));
      await firstClosed;
      assert.equal(second.closed, false);
      assert.equal(s.running.connections, 3);
    } finally {
      for (const socket of open) socket.destroy();
      await s.close();
    }
  });

  it("a connection whose next request has begun to arrive keeps its place, though idle long enough before", async () => {
    const s = await startTestServer({}, { maxConnections: 1, evictIdleAfterMs: 0, evictSilentAfterMs: 0 });
    const tcps: net.Socket[] = [];
    s.running.server.on("secureConnection", (t: tls.TLSSocket) => {
      const tcp = (t as tls.TLSSocket & { _parent?: net.Socket })._parent;
      if (tcp) tcps.push(tcp);
    });
    const open: net.Socket[] = [];
    try {
      const first = await served(s.running.port, s.ca);
      open.push(first);
      const tcp = tcps[0];
      assert.ok(tcp);
      const before = tcp.bytesRead;
      // Its next request's headers, not all of them: no request yet, but bytes read.
      first.write("POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n");
      while (tcp.bytesRead === before) await new Promise((r) => setImmediate(r));
      const body = JSON.stringify(podReview({ object: injectable }));
      assert.equal((await send(s.running.port, s.ca, { headers: JSON_HEADERS, body })).status, 503);
      assert.equal(first.closed, false);
    } finally {
      for (const socket of open) socket.destroy();
      await s.close();
    }
  });

  it("a connection with a request in flight keeps its place: the new one is answered 503", async () => {
    const s = await startTestServer({}, { maxConnections: 2, evictIdleAfterMs: 0, evictSilentAfterMs: 0 });
    const holders: tls.TLSSocket[] = [];
    try {
      // Each holds a review whose body is still coming.
      for (let i = 0; i < 2; i++) holders.push(await holdThePlace(s));
      assert.equal(s.running.inFlight, 2);
      const body = JSON.stringify(podReview({ object: injectable }));
      const past = await send(s.running.port, s.ca, { headers: JSON_HEADERS, body });
      assert.equal(past.status, 503);
      assert.equal((past.json().error as { code: string }).code, "ERR_OVERLOADED");
      assert.ok(holders.every((h) => !h.closed));
    } finally {
      for (const h of holders) h.destroy();
      await s.close();
    }
  });

  it("a connection idle for less than evictIdleAfterMs keeps its place", async () => {
    const s = await startTestServer({}, { maxConnections: 1, evictIdleAfterMs: 60_000, evictSilentAfterMs: 60_000 });
    const open: net.Socket[] = [];
    try {
      open.push(await served(s.running.port, s.ca));
      const body = JSON.stringify(podReview({ object: injectable }));
      assert.equal((await send(s.running.port, s.ca, { headers: JSON_HEADERS, body })).status, 503);
      assert.equal(open[0]?.closed, false);
    } finally {
      for (const socket of open) socket.destroy();
      await s.close();
    }
  });
});

describe("evictionCandidate", () => {
  const use = (idleSince: number, handshaken = true, busy = false): ConnectionUse => ({ idleSince, handshaken, busy });
  it("picks one before its handshake ahead of one kept alive, the longest idle of each, never a busy one or one idle too briefly", () => {
    const pick = (uses: Record<string, ConnectionUse>, now = 10_000): string | undefined =>
      evictionCandidate(Object.keys(uses), (k) => uses[k] as ConnectionUse, now, 1_000, 250);
    assert.equal(pick({ a: use(100), b: use(50), c: use(5_000) }), "b");
    assert.equal(pick({ a: use(100), b: use(8_000, false), c: use(50) }), "b");
    assert.equal(pick({ a: use(100, false), b: use(50, false) }), "b");
    assert.equal(pick({ a: use(0, true, true), b: use(0, false, true) }), undefined);
    assert.equal(pick({ a: use(9_500), b: use(9_999, false) }), undefined);
    // Before its handshake, a quarter of a second is enough; kept alive, a second.
    assert.equal(pick({ a: use(9_500), b: use(9_700, false) }), "b");
    assert.equal(pick({ a: use(9_100), b: use(9_800, false) }), undefined);
    assert.equal(pick({ a: use(9_500), b: use(9_000) }), "b");
    assert.equal(pick({}), undefined);
  });
});

describe("connection bound: Expect: 100-continue past it", () => {
  it("is answered 503 at once, no 100 before it, its body never asked for", { timeout: 30_000 }, async () => {
    const { server, ca } = await boundServer(1);
    const open: tls.TLSSocket[] = [];
    try {
      open.push(await connect(server.port, ca));
      for (let i = 0; i < 200 && server.connections < 1; i++) await new Promise((r) => setTimeout(r, 10));
      const past = await connect(server.port, ca);
      open.push(past);
      let got = "";
      const closed = new Promise<void>((r) => past.once("close", () => r()));
      past.on("data", (d: Buffer) => (got += d.toString("latin1")));
      past.on("error", () => undefined);
      past.write(
        "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n",
      );
      await closed;
      assert.match(got, /^HTTP\/1\.1 503 /);
      assert.match(got, /\r\nretry-after: 1\r\n/i);
    } finally {
      for (const s of open) s.destroy();
      await server.close(1000);
    }
  });
});

describe("connection bound: past the 503s", () => {
  it("closes a connection before its handshake once 32 past the bound are being answered, and says so", async () => {
    let dropped = 0;
    const { server } = await boundServer(1, { onConnectionDropped: () => (dropped += 1) });
    const raw: net.Socket[] = [];
    try {
      // One served, then 32 being answered (they never start their handshake), then one more.
      for (let i = 0; i < 1 + 32 + 1; i++) {
        const socket = net.connect(server.port, "127.0.0.1");
        socket.on("error", () => undefined);
        raw.push(socket);
        await new Promise((r) => socket.once("connect", r));
      }
      for (let i = 0; i < 100 && dropped === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(dropped, 1);
      assert.equal(server.connections, 1);
      assert.equal(server.shedding, 32);
      const last = raw[raw.length - 1];
      assert.ok(last !== undefined);
      if (!last.closed) await new Promise((r) => last.once("close", r));
    } finally {
      for (const s of raw) s.destroy();
      await server.close(1000);
    }
  });
});

describe("drain: a request refused past the concurrency bound", () => {
  it("keeps its connection until its body has come and its 503 is written", async () => {
    const s = await startTestServer({}, { maxConcurrentRequests: 1 });
    const holder = await holdThePlace(s);
    try {
      const body = JSON.stringify(podReview({ object: injectable }));
      const past = await partialPost(s.running.port, s.ca, body, 10);
      // The drain closes connections idle past the grace (100 ms) once nothing is in flight (the
      // holder gone): this one, its body still coming, is not idle.
      const drained = s.running.close({ idleGraceMs: 100, timeoutMs: 3_000 });
      holder.destroy();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(past.received(), "");
      past.finish();
      await past.closed;
      assert.match(past.received(), /^HTTP\/1\.1 503 /);
      await drained;
    } finally {
      holder.destroy();
      await s.close();
    }
  });
});

describe("large reviews on a worker thread", () => {
  it("answers small reviews and health checks while a 6 MiB review is being worked on", async () => {
    const s = await startTestServer();
    try {
      // ~400k labels: seconds of work, all of it off the event loop.
      const labels: Record<string, string> = {};
      for (let i = 0; i < 400_000; i++) labels[`l${i}`] = "v";
      const huge = JSON.stringify(
        podReview({ uid: "huge", object: { ...injectable, metadata: { name: "huge", labels } } }),
      );
      assert.ok(huge.length > 4 * 1024 * 1024 && huge.length < 6 * 1024 * 1024, `${huge.length} bytes`);
      const order: string[] = [];
      const big = send(s.running.port, s.ca, { headers: JSON_HEADERS, body: huge }).then((r) => {
        order.push("huge");
        return r;
      });
      // Once the huge body is in (the worker has it), the others are sent.
      for (let i = 0; i < 200 && s.running.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 200));
      const small = await send(s.running.port, s.ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ uid: "small", object: injectable })),
      });
      order.push("small");
      const health = await send(s.running.port, s.ca, { method: "GET", path: "/healthz" });
      order.push("healthz");
      assert.equal(small.status, 200);
      assert.equal(responseOf(small).uid, "small");
      assert.equal(health.status, 200);
      const bigAnswer = await big;
      assert.equal(bigAnswer.status, 200);
      assert.equal(responseOf(bigAnswer).uid, "huge");
      assert.equal(typeof responseOf(bigAnswer).patch, "string");
      assert.deepEqual(order, ["small", "healthz", "huge"]);
    } finally {
      await s.close();
    }
  });
});

describe("a review that costs more than its bytes say, on a worker thread", () => {
  /** Each Pod sent in a review under OFFLOAD_FROM_BYTES, injected; by uid, whether it was answered on the worker. */
  const answeredOnWorker = async (pods: Record<string, object>): Promise<Record<string, unknown>> => {
    const s = await startTestServer();
    try {
      for (const [uid, object] of Object.entries(pods)) {
        const body = JSON.stringify(podReview({ uid, object }));
        assert.ok(body.length < OFFLOAD_FROM_BYTES);
        const r = await send(s.running.port, s.ca, { headers: JSON_HEADERS, body });
        assert.equal(r.status, 200);
        assert.equal(responseOf(r).uid, uid);
        assert.equal(typeof responseOf(r).patch, "string", `${uid}: injected`);
      }
      return Object.fromEntries(
        s.logs
          .lines()
          .filter((l) => l.msg === "admission review")
          .map((l) => [l.uid, l.onWorker]),
      );
    } finally {
      await s.close();
    }
  };

  for (const { key, max, valueOf } of costlyAnnotations()) {
    it(`${key}: past ${max} characters, and the Pod injected as Istio would`, async () => {
      const pod = (value: string): object => ({
        ...injectable,
        metadata: { name: "p", annotations: { [key]: value } },
      });
      assert.equal(valueOf(max).length, max);
      assert.equal(valueOf(max + 1).length, max + 1);
      assert.deepEqual(await answeredOnWorker({ at: pod(valueOf(max)), past: pod(valueOf(max + 1)) }), {
        at: undefined,
        past: true,
      });
    });
  }

  it(`templates × (containers + ${TEMPLATE_OWN_UNITS}) past ${INLINE_TEMPLATE_UNITS}: each template is merged over every container`, async () => {
    const pod = (templates: string, containers: number): object => ({
      ...injectable,
      metadata: { name: "p", annotations: { "inject.istio.io/templates": templates } },
      spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: "nginx" })) },
    });
    const most = (names: number): number => INLINE_TEMPLATE_UNITS / names - TEMPLATE_OWN_UNITS;
    assert.deepEqual(
      await answeredOnWorker({
        one: pod("sidecar", most(1)),
        onePast: pod("sidecar", most(1) + 1),
        two: pod("sidecar,grpc-agent", most(2)),
        twoPast: pod("sidecar,grpc-agent", most(2) + 1),
      }),
      { one: undefined, onePast: true, two: undefined, twoPast: true },
    );
  });
});

describe("holdAnswer: a large answer's bytes in the budget", () => {
  /** A response and its connection, as much of them as holdAnswer uses. */
  const pair = (closed = false): { res: ServerResponse; socket: EventEmitter & { destroyed: boolean } } => {
    const socket = Object.assign(new EventEmitter(), { destroyed: false });
    const res = Object.assign(new EventEmitter(), { closed, destroyed: false, req: { socket } });
    return { res: res as unknown as ServerResponse, socket };
  };

  it("holds until the answer closes, or its connection does, once", () => {
    const budget = new BodyBudget(100);
    const a = pair();
    holdAnswer(a.res, 60, budget);
    assert.equal(budget.inUse, 60);
    assert.throws(() => holdAnswer(pair().res, 60, budget), /overloaded/);
    a.socket.emit("close"); // queued behind another answer: the connection goes, the answer never closes
    assert.equal(budget.inUse, 0);
    a.res.emit("close");
    assert.equal(budget.inUse, 0, "given back once");
    const b = pair();
    holdAnswer(b.res, 60, budget);
    b.res.emit("close");
    b.socket.emit("close");
    assert.equal(budget.inUse, 0);
    assert.equal(b.socket.listenerCount("close"), 0, "no listener left on a kept-alive connection");
  });

  it("takes nothing for a client gone while its review was worked on", () => {
    const budget = new BodyBudget(100);
    holdAnswer(pair(true).res, 60, budget);
    const gone = pair();
    gone.socket.destroyed = true;
    holdAnswer(gone.res, 60, budget);
    assert.equal(budget.inUse, 0);
  });
});
