import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { after, describe, it } from "node:test";
import type { RequestListener } from "node:http";
import {
  PLAIN_HTTP_ANSWER,
  TLS12_CIPHER_SUITES,
  TLS13_CIPHER_SUITES,
  startServer,
} from "../../../src/admission/https.js";
import { createTlsFailureReporter } from "../../../src/admission/tls-failures.js";
import { generateRsaKeyPair, issueServingCertificate, LOCAL_CERT_FILES } from "../../../src/certs/local.js";
import { createMetrics } from "../../../src/telemetry/metrics.js";
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
      s.running.setCertificate(
        issueServingCertificate({ keys, caCert: c.ca, caKey, names: ["localhost", "127.0.0.1"], now: new Date() }),
        keys.privateKey,
      );
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
      const cert = issueServingCertificate({
        keys,
        caCert: c.ca,
        caKey,
        names: ["localhost", "127.0.0.1"],
        now: new Date(),
      });

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

/** Collects what the server reports through onTlsClientError. */
function tlsErrors(): {
  codes: string[];
  next(): Promise<string>;
  onTlsClientError: (err: NodeJS.ErrnoException) => void;
} {
  const codes: string[] = [];
  const waiting: ((code: string) => void)[] = [];
  return {
    codes,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    onTlsClientError: (err) => {
      codes.push(err.code ?? "");
      for (const w of waiting.splice(0)) w(err.code ?? "");
    },
  };
}

/** A refused handshake: waits for both the client's error and the server's report. */
async function refused(
  port: number,
  ca: string,
  opts: tls.ConnectionOptions,
  errors: ReturnType<typeof tlsErrors>,
): Promise<{ client: string; server: string }> {
  const reported = errors.next();
  const h = await handshake(port, ca, opts);
  assert.ok("error" in h, `handshake with ${JSON.stringify(opts)} should fail: ${JSON.stringify(h)}`);
  return { client: h.error, server: await reported };
}

const STATIC_RSA = [
  "AES128-GCM-SHA256",
  "AES256-GCM-SHA384",
  "AES128-SHA256",
  "AES256-SHA256",
  "AES128-SHA",
  "AES256-SHA",
];
const WEAK_FORWARD_SECRET = [
  "ECDHE-RSA-AES128-SHA256",
  "ECDHE-RSA-AES256-SHA384",
  "ECDHE-RSA-AES128-SHA",
  "ECDHE-ECDSA-AES128-SHA256",
  "ECDHE-ECDSA-AES128-SHA",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
];

describe("TLS cipher suites and renegotiation", () => {
  it("TLS 1.2 offers ECDHE AEAD suites only, before and after a certificate swap; TLS 1.3 keeps its suites", async () => {
    const errors = tlsErrors();
    const s = await startTestServer({}, { onTlsClientError: errors.onTlsClientError });
    try {
      const check = async (key: "ECDSA" | "RSA"): Promise<void> => {
        for (const cipher of [...STATIC_RSA, ...WEAK_FORWARD_SECRET]) {
          const r = await refused(s.running.port, s.ca, { maxVersion: "TLSv1.2", ciphers: cipher }, errors);
          assert.equal(r.server, "ERR_SSL_NO_SHARED_CIPHER", cipher);
        }
        // Only the suites of the key's kind can be negotiated with it; those all can.
        for (const cipher of TLS12_CIPHER_SUITES.filter((c) => c.startsWith(`ECDHE-${key}-`))) {
          const h = await handshake(s.running.port, s.ca, { maxVersion: "TLSv1.2", ciphers: cipher });
          assert.ok("protocol" in h && h.protocol === "TLSv1.2", `${cipher}: ${JSON.stringify(h)}`);
        }
        for (const suite of TLS13_CIPHER_SUITES) {
          const h = await handshake(s.running.port, s.ca, { minVersion: "TLSv1.3", ciphers: suite });
          assert.ok("protocol" in h && h.protocol === "TLSv1.3", `${suite}: ${JSON.stringify(h)}`);
        }
      };
      await check("ECDSA"); // local serving certificates carry a P-256 key
      const c = await testCertificates();
      const caKey = await readFile(join(c.dir, LOCAL_CERT_FILES.caKey), "utf8");
      const keys = await generateRsaKeyPair();
      s.running.setCertificate(
        issueServingCertificate({ keys, caCert: c.ca, caKey, names: ["localhost", "127.0.0.1"], now: new Date() }),
        keys.privateKey,
      );
      await check("RSA");
      assert.equal(errors.codes.length, 2 * (STATIC_RSA.length + WEAK_FORWARD_SECRET.length), errors.codes.join(" "));
    } finally {
      await s.close();
    }
  });

  it("a plain HTTP request to the TLS port: answered 400 in plain text, as Go's TLS server answers it, then closed", async () => {
    const s = await startTestServer();
    try {
      for (const request of ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "POST /inject HTTP/1.1\r\nHost: x\r\n\r\n"]) {
        const answer = await new Promise<string>((resolve, reject) => {
          let got = "";
          const socket = net.connect(s.running.port, "127.0.0.1", () => socket.write(request));
          socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
          socket.on("close", () => resolve(got));
          socket.on("error", reject);
        });
        assert.equal(answer, PLAIN_HTTP_ANSWER, request);
      }
      // The server serves TLS as before.
      assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
    } finally {
      await s.close();
    }
  });

  it("counts and logs refused handshakes by reason: static RSA, TLS 1.1, plain HTTP, a stalled handshake, a reset", async () => {
    const logs: { fields: Record<string, unknown>; message: string }[] = [];
    const metrics = createMetrics();
    // The clock stands still: one line per reason, the rest counted as left out.
    const reporter = createTlsFailureReporter({
      counter: metrics.tlsHandshakeFailures,
      log: { warn: (fields, message) => logs.push({ fields, message }) },
      now: () => 0,
    });
    const errors = tlsErrors();
    const s = await startTestServer(
      { metrics },
      {
        // The stalled handshake below ends after this; the others finish long before it.
        headersTimeoutMs: 1000,
        onTlsClientError: (err, socket) => {
          reporter.report(err, socket.remoteAddress);
          errors.onTlsClientError(err);
        },
      },
    );
    const port = s.running.port;
    try {
      const staticRsa = { maxVersion: "TLSv1.2", ciphers: "AES128-GCM-SHA256" } as const;
      assert.deepEqual(await refused(port, s.ca, staticRsa, errors), {
        client: "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
        server: "ERR_SSL_NO_SHARED_CIPHER",
      });
      await refused(port, s.ca, staticRsa, errors);
      const tls11 = { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" } as const;
      assert.deepEqual(await refused(port, s.ca, tls11, errors), {
        client: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
        server: "ERR_SSL_UNSUPPORTED_PROTOCOL",
      });

      const raw = async (send: (socket: net.Socket) => void): Promise<string> => {
        const reported = errors.next();
        const socket = net.connect(port, "127.0.0.1", () => send(socket));
        socket.on("error", () => undefined);
        return reported;
      };
      assert.equal(await raw((c) => c.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")), "ERR_SSL_HTTP_REQUEST");
      assert.equal(await raw(() => undefined), "ERR_TLS_HANDSHAKE_TIMEOUT");
      // The start of a ClientHello, then a TCP reset.
      assert.equal(
        await raw((c) =>
          c.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03]), () =>
            c.resetAndDestroy(),
          ),
        ),
        "ECONNRESET",
      );

      const text = await metrics.registry.metrics();
      const count = (reason: string): number =>
        Number(
          new RegExp(`^sidecar_injector_tls_handshake_failures_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(
            text,
          )?.[1],
        );
      assert.deepEqual(
        {
          cipher: count("cipher"),
          protocol: count("protocol"),
          plain_http: count("plain_http"),
          timeout: count("timeout"),
          reset: count("reset"),
          other: count("other"),
        },
        { cipher: 2, protocol: 1, plain_http: 1, timeout: 1, reset: 1, other: 0 },
      );
      assert.deepEqual(
        logs.map((l) => l.fields.reason),
        ["cipher", "protocol", "plain_http", "timeout", "reset"],
        "the second cipher failure within the interval is counted, not logged",
      );
      assert.equal(logs[0]?.message, "TLS handshake failed");
      assert.equal(logs[0]?.fields.code, "ERR_SSL_NO_SHARED_CIPHER");
      assert.equal(logs[0]?.fields.detail, "no shared cipher");
      assert.equal(logs[0]?.fields.remoteAddress, "127.0.0.1");
    } finally {
      await s.close();
    }
  });

  const haveOpenssl = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
  it(
    "tells apart a client that does not trust our CA from one that rejects our certificate",
    { skip: haveOpenssl ? false : "no openssl binary to send the alerts" },
    async () => {
      const errors = tlsErrors();
      const s = await startTestServer({}, { onTlsClientError: errors.onTlsClientError });
      const c = await testCertificates();
      const sClient = async (...args: string[]): Promise<string> => {
        const reported = errors.next();
        const p = spawn(
          "openssl",
          ["s_client", "-connect", `127.0.0.1:${s.running.port}`, "-verify_return_error", ...args],
          { stdio: ["pipe", "ignore", "ignore"] },
        );
        p.stdin.end();
        return reported;
      };
      try {
        // Trusting only the leaf itself: "unable to get local issuer certificate", alert unknown_ca.
        assert.equal(await sClient("-CAfile", join(c.dir, LOCAL_CERT_FILES.cert)), "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA");
        // Trusting the CA but dialling a name the certificate does not carry: alert bad_certificate.
        assert.equal(
          await sClient(
            "-CAfile",
            join(c.dir, LOCAL_CERT_FILES.caCert),
            "-verify_hostname",
            "sidecar-injector.other.svc",
          ),
          "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
        );
      } finally {
        await s.close();
      }
    },
  );

  it("refuses a client-initiated renegotiation: the connection is closed and reported", async () => {
    const errors = tlsErrors();
    const s = await startTestServer({}, { onTlsClientError: errors.onTlsClientError });
    try {
      const reported = errors.next();
      const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const c = tls.connect({ host: "127.0.0.1", port: s.running.port, ca: s.ca, maxVersion: "TLSv1.2" }, () =>
          resolve(c),
        );
        c.once("error", reject);
      });
      socket.on("error", () => undefined);
      socket.resume();
      const closed = new Promise<void>((r) => socket.once("close", () => r()));
      let answered: (outcome: string) => void = () => undefined;
      const renegotiation = new Promise<string>((r) => (answered = r));
      assert.equal(
        socket.renegotiate({}, (err) => answered(err ? `failed: ${err.message}` : "renegotiated")),
        true,
        "the client sends the request",
      );
      // Whichever comes first: the server's refusal, or a renegotiation that went through.
      assert.equal(await Promise.race([reported, renegotiation]), "ERR_TLS_RENEGOTIATION_DISABLED");
      await closed;
      assert.deepEqual(errors.codes, ["ERR_TLS_RENEGOTIATION_DISABLED"], "reported once");
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

describe("requests Node's HTTP parser refuses", () => {
  it("are answered in JSON naming what is wrong, and the connection closed", async () => {
    const s = await startTestServer();
    try {
      const cases: readonly (readonly [string, number, string, RegExp])[] = [
        [
          "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
          400,
          "ERR_BAD_REQUEST",
          /^malformed request: Duplicate Content-Length$/,
        ],
        [
          "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          400,
          "ERR_BAD_REQUEST",
          /^malformed request: Transfer-Encoding can't be present with Content-Length$/,
        ],
        ["GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "ERR_BAD_REQUEST", /^malformed request: /],
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(20_000)}\r\n\r\n`, 431, "ERR_HEADERS_TOO_LARGE", /limit/],
        ["GET /healthz HTTP/1.1\r\n\r\n", 400, "ERR_BAD_REQUEST", /^malformed request: missing required Host header$/],
        ["GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", 417, "ERR_EXPECTATION_FAILED", /100-continue/],
        ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "ERR_METHOD_NOT_ALLOWED", /CONNECT/],
        [
          "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
          501,
          "ERR_TRANSFER_CODING",
          /^Transfer-Encoding "gzip, chunked" is not served: only chunked$/,
        ],
      ];
      for (const [request, status, code, message] of cases) {
        const socket = await connect(s.running.port, s.ca);
        const answer = readUntilClosed(socket);
        socket.write(request);
        const res = await answer;
        assert.equal(res.status, status, request.slice(0, 40));
        assert.equal(res.headers.connection, "close", request.slice(0, 40));
        assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
        const error = (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, code);
        assert.match(error.message, message);
      }
      // HTTP/1.0 needs no Host.
      const old = await connect(s.running.port, s.ca);
      const oldAnswer = readUntilClosed(old);
      old.write("GET /healthz HTTP/1.0\r\n\r\n");
      assert.equal((await oldAnswer).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe("Expect: 100-continue", () => {
  const review = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u-1",
      operation: "CREATE",
      object: { kind: "Pod", metadata: { name: "p" }, spec: { containers: [] } },
    },
  });
  const head = (length: number, type = "application/json"): string =>
    `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;

  it("a refusal the headers decide is the final answer at once, no 100 before it, and the connection closed", async () => {
    const s = await startTestServer();
    try {
      for (const [request, status] of [
        [head(50 * 1024 * 1024), 413],
        [head(review.length, "text/plain"), 415],
      ] as const) {
        const socket = await connect(s.running.port, s.ca);
        const answer = readUntilClosed(socket);
        socket.write(request); // and never the body
        const res = await answer;
        assert.equal(res.status, status);
        assert.equal(res.headers.connection, "close");
      }
    } finally {
      await s.close();
    }
  });

  it("a review: 100 Continue once its body is read, then its answer on a connection kept alive", async () => {
    const s = await startTestServer();
    try {
      const socket = await connect(s.running.port, s.ca);
      let got = "";
      const waiters: (() => void)[] = [];
      socket.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        for (const w of waiters.splice(0)) w();
      });
      /** Resolves once what has come matches `pattern` (the test runner's timeout bounds it). */
      const until = async (pattern: RegExp): Promise<void> => {
        while (!pattern.test(got)) await new Promise<void>((r) => waiters.push(r));
      };
      socket.write(head(review.length));
      await until(/\r\n\r\n/);
      assert.equal(got, "HTTP/1.1 100 Continue\r\n\r\n");
      socket.write(review);
      await until(/"uid":"u-1"/);
      assert.match(got.slice(25), /^HTTP\/1\.1 200 /);
      assert.doesNotMatch(got.slice(25), /\r\nconnection: close\r\n/i);
      socket.destroy();
    } finally {
      await s.close();
    }
  });
});

describe("a chunked body HTTP's parser refuses midway, its request refused for overload", () => {
  it("is answered at once, the connection closed, not held to the request timeout", { timeout: 20_000 }, async () => {
    const s = await startTestServer({}, { maxConcurrentRequests: 0 });
    try {
      const socket = await connect(s.running.port, s.ca);
      const answer = readUntilClosed(socket);
      socket.write(
        'POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nzz\r\n',
      );
      const res = await answer;
      assert.equal(res.status, 503);
      assert.equal(res.headers.connection, "close");
    } finally {
      await s.close();
    }
  });
});

describe("a request asking to switch protocols", () => {
  it(
    "is answered in HTTP/1.1 and its connection closed at once, not held to the keep-alive timeout",
    { timeout: 30_000 },
    async () => {
      const s = await startTestServer();
      try {
        const socket = await connect(s.running.port, s.ca);
        const answer = readUntilClosed(socket);
        // Another request pipelined behind it: never parsed; the close tells its client to send it again.
        socket.write(
          "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" +
            "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        const res = await answer;
        assert.equal(res.status, 200);
        assert.equal(res.headers.connection, "close");
      } finally {
        await s.close();
      }
    },
  );
});

describe("a chunked body HTTP's parser refuses midway", () => {
  it("is its request's to answer: 400 ERR_BODY_READ naming the reason, the connection closed, whatever still comes", async () => {
    const s = await startTestServer();
    try {
      const head =
        "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
      const cases: readonly (readonly [string, string, RegExp])[] = [
        // A bad chunk size after a good chunk, the client then silent.
        ["bad size", `${head}5\r\n{"a":\r\nzz\r\n`, /^malformed request body: Invalid character in chunk size$/],
        // The same, the client then still sending: 64 KiB after the error, dropped, not reset.
        ["bad size, then more", `${head}5\r\n{"a":\r\nzz\r\n${"x".repeat(64 * 1024)}`, /^malformed request body: /],
        // Chunk extensions past their limit (16 KiB).
        ["long extension", `${head}5;${"e".repeat(20 * 1024)}\r\n`, /^malformed request body: /],
      ];
      for (const [name, request, message] of cases) {
        const socket = await connect(s.running.port, s.ca);
        const answer = readUntilClosed(socket);
        socket.write(request);
        const res = await answer;
        assert.equal(res.status, 400, name);
        assert.equal(res.headers.connection, "close", name);
        const error = (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, "ERR_BODY_READ", name);
        assert.match(error.message, message, name);
      }
      // /preview reads its body the same way, and is answered the same way.
      const preview = await connect(s.running.port, s.ca);
      const previewAnswer = readUntilClosed(preview);
      preview.write(`${head.replace("/inject", "/preview")}5\r\n{"a":\r\nzz\r\n`);
      const previewRes = await previewAnswer;
      assert.equal(previewRes.status, 400);
      assert.match(previewRes.body, /"ERR_BODY_READ"/);
      assert.match(previewRes.body, /malformed request body: /);
      // Ended by the client right after the bad chunk: still answered.
      const socket = await connect(s.running.port, s.ca);
      const answer = readUntilClosed(socket);
      socket.end(`${head}3\r\nabc\r\n-1\r\n`);
      const res = await answer;
      assert.equal(res.status, 400);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, "ERR_BODY_READ");
      // Nothing held: the server still answers, and no connection is left open.
      assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
      for (let i = 0; i < 200 && s.running.connections > 0; i++) await sleep(10);
      assert.equal(s.running.connections, 0);
    } finally {
      await s.close();
    }
  });

  it("with Expect: 100-continue too: the 100 does not give it its keep-alive back", { timeout: 30_000 }, async () => {
    const s = await startTestServer();
    try {
      const socket = await connect(s.running.port, s.ca);
      const answer = readUntilClosed(socket);
      socket.write(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
      );
      const res = await answer;
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, "close");
    } finally {
      await s.close();
    }
  });
});

describe("a handshake that never finishes", () => {
  it("is closed at the handshake timeout, and its place under maxConnections given back", async () => {
    const s = await startTestServer({}, { headersTimeoutMs: 300, maxConnections: 2 });
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = net.connect(s.running.port, "127.0.0.1");
        socket.on("error", () => undefined);
        idle.push(socket);
      }
      const closedByServer = Promise.all(idle.map((c) => new Promise((resolve) => c.once("close", resolve))));
      // Within sixty times the timeout, however busy the machine; never, before the fix.
      const waited = await Promise.race([closedByServer.then(() => true), sleep(20_000).then(() => false)]);
      assert.ok(waited, "the server closed both");
      for (let i = 0; i < 100 && s.running.connections > 0; i++) await sleep(10);
      assert.equal(s.running.connections, 0);
      assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
    } finally {
      for (const c of idle) c.destroy();
      await s.close();
    }
  });
});

describe("a refusal written on the connection itself", () => {
  it("is written after the answer under way, never into it, and closes the connection", async () => {
    const c = await testCertificates();
    let release: (() => void) | undefined;
    const running = await startServer({
      app: (_req, res) => {
        res.writeHead(200, { "Content-Length": 20 });
        res.write("0123456789");
        release = () => res.end("0123456789");
      },
      port: 0,
      tls: c,
    });
    try {
      for (const next of [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        "BOGUS / HTTP/1.1\r\nHost: x\r\n\r\n",
      ]) {
        const socket = await connect(running.port, c.ca);
        const closed = readUntilClosed(socket);
        const refused = new Promise((resolve) => {
          running.server.once("connect", resolve);
          running.server.once("clientError", resolve);
        });
        socket.write(`GET /a HTTP/1.1\r\nHost: x\r\n\r\n${next}`);
        await refused;
        release?.();
        const res = await closed;
        // The first answer whole, then the refusal, then the connection closed.
        assert.equal(res.status, 200);
        assert.equal(res.body.slice(0, 20), "01234567890123456789", "nothing written into the first answer");
        assert.match(
          res.body.slice(20),
          // (readUntilClosed's body ends where the refusal's head does)
          /^HTTP\/1\.1 (405 Method Not Allowed|400 Bad Request)\r\n[^]*Connection: close$/,
        );
      }
    } finally {
      await running.close(1000);
    }
  });
});

describe("a client that does not read its answer", () => {
  it("is closed once nothing has moved on its connection for twice the request timeout, and its answer let go", async () => {
    const c = await testCertificates();
    const answer = Buffer.alloc(32 * 1024 * 1024, "x");
    let served: (() => void) | undefined;
    const answered = new Promise<void>((resolve) => (served = resolve));
    const running = await startServer({
      app: (_req, res) => {
        res.writeHead(200, { "Content-Length": answer.length });
        res.end(answer);
        served?.();
      },
      port: 0,
      tls: c,
      requestTimeoutMs: 500,
    });
    try {
      assert.equal(running.server.timeout, 1000);
      const socket = await connect(running.port, c.ca);
      socket.on("error", () => undefined);
      // Reads the first bytes of the answer, then nothing: the kernel's buffers fill and the
      // rest of the 32 MiB waits in the server's socket.
      socket.once("data", () => socket.pause());
      socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await answered;
      assert.equal(running.connections, 1);
      // The server closes it on its own (without the timeout it stays open, holding the answer):
      // within twenty times the timeout, however busy the machine.
      for (let waited = 0; running.connections > 0 && waited < 20_000; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(running.connections, 0, "closed by the server");
      socket.destroy();
    } finally {
      await running.close(1000);
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
    a.write(
      `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
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
    a.write(
      "POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
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
