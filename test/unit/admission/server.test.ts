import assert from "node:assert/strict";
import https from "node:https";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { DEFAULT_MAX_BODY_BYTES, plainInjectPath } from "../../../src/admission/server.js";
import {
  InjectionError,
  type DecisionCode,
  type InjectContext,
  type PatchOperation,
} from "../../../src/injection/types.js";
import { QUOTE_MAX_CHARS } from "../../../src/injection/quote.js";
import { createMetrics } from "../../../src/telemetry/metrics.js";
import type { Pod } from "../../../src/kube/types.js";
import {
  JSON_HEADERS,
  podReview,
  removeTestCertificates,
  responseOf,
  startTestServer,
  type TestServer,
} from "./helpers.js";

after(removeTestCertificates);

function post(s: TestServer, body: unknown, path = "/inject"): ReturnType<TestServer["request"]> {
  return s.request({ path, headers: JSON_HEADERS, body: JSON.stringify(body) });
}

function decodePatch(b64: unknown): unknown {
  assert.equal(typeof b64, "string");
  return JSON.parse(Buffer.from(b64 as string, "base64").toString("utf8"));
}

async function metricValue(s: TestServer, line: string): Promise<number | undefined> {
  const text = await s.metrics.registry.metrics();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe("POST /inject with the real engine", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it("answers a v1 review, echoing apiVersion and uid", async () => {
    const res = await post(s, podReview({ uid: "a1b2" }));
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^application\/json/);
    const body = res.json();
    assert.equal(body.apiVersion, "admission.k8s.io/v1");
    assert.equal(body.kind, "AdmissionReview");
    const r = responseOf(res);
    assert.equal(r.uid, "a1b2");
    assert.equal(r.allowed, true);
    assert.equal(r.patch, undefined, "an opted-out Pod gets no patch");
    assert.equal((r.auditAnnotations as Record<string, string>).decision, "skipped");
  });

  it("answers a v1beta1 review as v1beta1", async () => {
    const res = await post(s, podReview({ apiVersion: "admission.k8s.io/v1beta1", uid: "beta-uid" }));
    assert.equal(res.status, 200);
    assert.equal(res.json().apiVersion, "admission.k8s.io/v1beta1");
    assert.equal(responseOf(res).uid, "beta-uid");
    assert.equal(responseOf(res).allowed, true);
  });

  it("accepts /inject/ with a trailing slash and path parameters", async () => {
    for (const path of ["/inject/", "/inject/cluster/c1/net/n1"]) {
      const res = await post(s, podReview(), path);
      assert.equal(res.status, 200, path);
      assert.equal(responseOf(res).allowed, true, path);
    }
  });

  it("allows a non-Pod object unchanged, with a warning", async () => {
    const res = await post(
      s,
      podReview({
        kind: { group: "apps", version: "v1", kind: "Deployment" },
        resource: { group: "apps", version: "v1", resource: "deployments" },
        object: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: {} },
      }),
    );
    const r = responseOf(res);
    assert.equal(r.allowed, true);
    assert.equal(r.patch, undefined);
    assert.match(String((r.warnings as string[])[0]), /Deployment admitted unchanged/);
  });

  for (const operation of ["UPDATE", "DELETE"]) {
    it(`allows a Pod ${operation} unchanged`, async () => {
      const injectable = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p" },
        spec: { containers: [{ name: "c" }] },
      };
      const res = await post(s, podReview({ operation, object: injectable }));
      const r = responseOf(res);
      assert.equal(r.allowed, true);
      assert.equal(r.patch, undefined, "a Pod that would be injected on CREATE is left alone");
      assert.equal((r.auditAnnotations as Record<string, string>).decision, "allowed");
    });
  }

  const contentTypes: [string | undefined, number][] = [
    ["text/plain", 415],
    [undefined, 415],
    ["application/jsonp", 415],
    ["application/x-www-form-urlencoded", 415],
    ["application/json; charset=latin1", 415],
    ["application/json; charset=utf-8", 200],
    ["Application/JSON", 200],
  ];
  for (const [type, status] of contentTypes) {
    it(`answers Content-Type ${type ?? "(none)"} with ${status}`, async () => {
      const res = await s.request({
        headers: type === undefined ? {} : { "content-type": type },
        body: JSON.stringify(podReview()),
      });
      assert.equal(res.status, status);
      if (status === 415) {
        const error = res.json().error as { code: string; message: string };
        assert.equal(error.code, "ERR_UNSUPPORTED_MEDIA_TYPE");
        assert.match(error.message, /application\/json|charset/);
      } else {
        assert.equal(responseOf(res).allowed, true);
      }
    });
  }

  it("refuses a compressed body as unsupported", async () => {
    const res = await s.request({ headers: { ...JSON_HEADERS, "content-encoding": "gzip" }, body: "xx" });
    assert.equal(res.status, 415);
  });

  it("answers an empty body with 400 ERR_EMPTY_BODY", async () => {
    const res = await s.request({ headers: JSON_HEADERS, body: "" });
    assert.equal(res.status, 400);
    assert.equal((res.json().error as { code: string }).code, "ERR_EMPTY_BODY");
  });

  it("answers malformed JSON with 400 ERR_MALFORMED_JSON", async () => {
    const res = await s.request({ headers: JSON_HEADERS, body: '{"apiVersion": ' });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json(), { error: { code: "ERR_MALFORMED_JSON", message: "request body is not valid JSON" } });
  });

  it("answers JSON that is not an AdmissionReview with 400 naming the problem", async () => {
    for (const body of [
      { hello: "world" },
      [1, 2],
      { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {} },
    ]) {
      const res = await s.request({ headers: JSON_HEADERS, body: JSON.stringify(body) });
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = res.json().error as { code: string; message: string };
      assert.equal(error.code, "ERR_NOT_ADMISSION_REVIEW");
      assert.match(error.message, /not an AdmissionReview: /);
    }
  });

  it("answers other methods with 405 (saying which it takes) and other paths with 404, as JSON", async () => {
    const get = await s.request({ method: "GET", path: "/inject" });
    assert.equal(get.status, 405);
    assert.equal((get.json().error as { code: string }).code, "ERR_METHOD_NOT_ALLOWED");
    for (const [method, path, allow] of [
      ["GET", "/inject", "POST"],
      ["PUT", "/inject/cluster/c1/net/n1", "POST"],
      ["GET", "/preview", "POST"],
      ["POST", "/healthz", "GET, HEAD"],
      ["DELETE", "/readyz", "GET, HEAD"],
      ["POST", "/metrics", "GET, HEAD"],
    ] as const) {
      const r = await s.request({ method, path });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.allow, allow, `${method} ${path}`);
    }
    const nope = await s.request({ method: "POST", path: "/mutate", headers: JSON_HEADERS, body: "{}" });
    assert.equal(nope.status, 404);
    assert.equal((nope.json().error as { code: string }).code, "ERR_NOT_FOUND");
  });

  it("reads every header within the 16 KiB limit, the 2,001st and later too", async () => {
    const filler: Record<string, string> = {};
    for (let i = 0; i < 2100; i++) filler[`x${i}`] = "1";
    const res = await s.request({ headers: { ...filler, ...JSON_HEADERS }, body: JSON.stringify(podReview()) });
    assert.equal(res.status, 200);
  });

  it("answers a path that does not percent-decode with 400", async () => {
    const res = await s.request({
      path: "/inject/cluster/%E0%A4%A",
      headers: JSON_HEADERS,
      body: JSON.stringify(podReview()),
    });
    assert.equal(res.status, 400);
    assert.equal((res.json().error as { code: string }).code, "ERR_BAD_REQUEST");
  });
});

describe("the plain /inject handler ahead of express", () => {
  it("takes /inject and /inject/… with path parameters, and leaves everything else to express", () => {
    assert.equal(plainInjectPath("/inject"), "/inject");
    assert.equal(plainInjectPath("/inject?timeout=10s"), "/inject");
    assert.equal(plainInjectPath("/inject/cluster/c1/net/n1"), "/inject/cluster/c1/net/n1");
    assert.equal(plainInjectPath("/inject/:ENV:cluster=c1?x=1"), "/inject/:ENV:cluster=c1");
    for (const other of [
      "/inject/",
      "/INJECT",
      "/Inject/cluster/c1",
      "/inject/cluster/c%31",
      "/injected",
      "/inject2/x",
      "/preview",
      "/",
      "",
      "*",
    ]) {
      assert.equal(plainInjectPath(other), undefined, other);
    }
  });

  it("answers as express's route does, byte for byte, headers and all", async () => {
    const s = await startTestServer();
    try {
      const body = JSON.stringify(
        podReview({
          uid: "same",
          object: { kind: "Pod", metadata: { name: "web" }, spec: { containers: [{ name: "app", image: "nginx" }] } },
        }),
      );
      // /Inject is routed by express (case-insensitive, as before); /inject by the plain handler.
      const plain = await s.request({ path: "/inject", headers: JSON_HEADERS, body });
      const routed = await s.request({ path: "/Inject", headers: JSON_HEADERS, body });
      assert.equal(plain.status, 200);
      assert.equal(responseOf(plain).patchType, "JSONPatch");
      assert.equal(plain.body, routed.body);
      for (const h of ["content-type", "content-length", "connection", "x-powered-by", "etag"])
        assert.equal(plain.headers[h], routed.headers[h], h);
      for (const [path, status] of [
        ["/inject", 400],
        ["/Inject", 400],
      ] as const) {
        const bad = await s.request({ path, headers: JSON_HEADERS, body: "{" });
        assert.equal(bad.status, status);
        assert.equal(bad.headers["content-type"], "application/json; charset=utf-8");
        assert.deepEqual(bad.json(), {
          error: { code: "ERR_MALFORMED_JSON", message: "request body is not valid JSON" },
        });
      }
      assert.equal(s.logs.lines().filter((l) => l.uid === "same" && l.decision === "injected").length, 2);
    } finally {
      await s.close();
    }
  });
});

describe("body size limit", () => {
  const LIMIT = 1024;
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ maxBodyBytes: LIMIT });
  });
  after(() => s.close());

  /** A valid review padded with whitespace to exactly `size` bytes. */
  const reviewOfSize = (size: number): string => {
    const json = JSON.stringify(podReview());
    assert.ok(json.length <= size);
    return json + " ".repeat(size - json.length);
  };

  it("accepts a body of exactly the limit", async () => {
    const res = await s.request({ headers: JSON_HEADERS, body: reviewOfSize(LIMIT) });
    assert.equal(res.status, 200);
    assert.equal(responseOf(res).allowed, true);
  });

  it("answers a declared Content-Length over the limit with 413", async () => {
    const res = await s.request({ headers: JSON_HEADERS, body: reviewOfSize(LIMIT + 1) });
    assert.equal(res.status, 413);
    const error = res.json().error as { code: string; message: string };
    assert.equal(error.code, "ERR_BODY_TOO_LARGE");
    assert.match(error.message, /1024 bytes/);
  });

  it("answers a chunked body that grows over the limit with 413", async () => {
    const res = await s.request({ headers: JSON_HEADERS, body: " ".repeat(200 * 1024), chunked: true });
    assert.equal(res.status, 413);
    assert.equal((res.json().error as { code: string }).code, "ERR_BODY_TOO_LARGE");
  });

  it("reads no further than it must: a declared or grown body over the limit, or of another type, is dropped within a bound", async () => {
    for (const head of [
      // Declared: refused before a byte of it is read, the rest dropped within
      // DISCARD_AFTER_REFUSAL_BYTES, where Node would read all of it (up to the request timeout).
      `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n`,
      `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000000000\r\n\r\n`,
    ]) {
      const socket = tls.connect({ host: "127.0.0.1", port: s.running.port, ca: s.ca });
      let answer = "";
      socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      socket.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      const chunk = head.includes("chunked") ? `10000\r\n${" ".repeat(0x10000)}\r\n` : " ".repeat(0x10000);
      let sent = 0;
      let done = false;
      void closed.then(() => (done = true));
      socket.write(head);
      // Sends as fast as the server takes it, until it closes or 256 MiB went: what it read
      // after answering is bounded by what the kernel holds, not by the request timeout.
      while (!done && sent < 256 * 1024 * 1024) {
        sent += chunk.length;
        if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once("drain", r)), closed]);
      }
      await closed;
      assert.ok(sent < 256 * 1024 * 1024, `${sent} bytes taken before the connection closed`);
      assert.match(answer, /^HTTP\/1\.1 41[35] /);
    }
  });

  it("a client still sending a body a little over the limit reads its 413 whole, and may send again", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: s.running.port, ca: s.ca });
    const body = " ".repeat(LIMIT * 4);
    const twice = `POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    let answer = "";
    const both = new Promise<void>((resolve, reject) => {
      socket.on("data", (d: Buffer) => {
        answer += d.toString("latin1");
        if ((answer.match(/HTTP\/1\.1 413 /g) ?? []).length === 2) resolve();
      });
      socket.on("error", reject);
      socket.on("close", () => reject(new Error(`closed after ${JSON.stringify(answer.slice(0, 300))}`)));
    });
    socket.write(twice + twice);
    await both;
    socket.destroy();
    assert.doesNotMatch(answer, /connection: close/i);
  });

  it("counts refused bodies as failures by code", async () => {
    assert.ok(((await metricValue(s, 'sidecar_injection_failure_total{reason="ERR_BODY_TOO_LARGE"}')) ?? 0) >= 2);
  });
});

describe("a refused body that stops coming", () => {
  it("gets its 413 once, then its connection closed at the request timeout: no second answer", async () => {
    const s = await startTestServer({ maxBodyBytes: 1024 }, { requestTimeoutMs: 600, headersTimeoutMs: 300 });
    try {
      const socket = tls.connect({ host: "127.0.0.1", port: s.running.port, ca: s.ca });
      socket.on("error", () => undefined);
      let answer = "";
      socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.write(
        "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n0123456789",
      );
      await closed;
      assert.equal((answer.match(/HTTP\/1\.1 /g) ?? []).length, 1, answer);
      assert.match(answer, /^HTTP\/1\.1 413 /);
    } finally {
      await s.close();
    }
  });
});

describe("body size limit at the 6 MiB default", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it("is 6 MiB", () => {
    assert.equal(DEFAULT_MAX_BODY_BYTES, 6 * 1024 * 1024);
  });

  it("accepts exactly 6 MiB and refuses one byte more", async () => {
    const json = JSON.stringify(podReview());
    const exact = json + " ".repeat(DEFAULT_MAX_BODY_BYTES - json.length);
    const ok = await s.request({ headers: JSON_HEADERS, body: exact });
    assert.equal(ok.status, 200);
    assert.equal(responseOf(ok).uid, "uid-1");
    const over = await s.request({ headers: JSON_HEADERS, body: `${exact} ` });
    assert.equal(over.status, 413);
    const chunked = await s.request({ headers: JSON_HEADERS, body: `${exact} `, chunked: true });
    assert.equal(chunked.status, 413);
  });
});

describe("a body that does not arrive in time", () => {
  it("is answered with 408 and the connection closed", async () => {
    const s = await startTestServer({ bodyTimeoutMs: 200 });
    try {
      const res = await new Promise<{ status: number; body: string; connection: string | undefined }>(
        (resolve, reject) => {
          const req = https.request(
            {
              host: "127.0.0.1",
              port: s.running.port,
              ca: s.ca,
              method: "POST",
              path: "/inject",
              headers: { ...JSON_HEADERS, "content-length": 100 },
              agent: false,
            },
            (r) => {
              let body = "";
              r.on("data", (c: Buffer) => (body += c.toString()));
              r.on("end", () => resolve({ status: r.statusCode ?? 0, body, connection: r.headers.connection }));
            },
          );
          req.on("error", reject);
          req.write('{"apiVersion":'); // and never the rest
        },
      );
      assert.equal(res.status, 408);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, "ERR_REQUEST_TIMEOUT");
      assert.equal(res.connection, "close");
    } finally {
      await s.close();
    }
  });
});

describe("engine outcomes over HTTP", () => {
  const PATCH: PatchOperation[] = [
    { op: "add", path: "/metadata/labels", value: { "security.istio.io/tlsMode": "istio" } },
  ];
  let behaviour: (pod: Pod, ctx: InjectContext) => ReturnType<typeof inject>;
  const contexts: InjectContext[] = [];
  const inject = (
    pod: Pod,
    ctx: InjectContext,
  ): {
    decision: { inject: boolean; code: DecisionCode; reasons: string[] };
    patch: PatchOperation[];
    pod: Pod;
    warnings: string[];
  } => {
    contexts.push(ctx);
    return behaviour(pod, ctx);
  };
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ inject, nativeSidecarsSupported: false });
  });
  after(() => s.close());

  it("returns the engine's patch, base64-encoded, with patchType JSONPatch", async () => {
    behaviour = (pod) => ({
      decision: { inject: true, code: "policy_enabled", reasons: ["policy enabled"] },
      patch: PATCH,
      pod,
      warnings: ["w1"],
    });
    const before = (await metricValue(s, "sidecar_injection_success_total")) ?? 0;
    const r = responseOf(await post(s, podReview({ uid: "inj" })));
    assert.equal(r.allowed, true);
    assert.equal(r.patchType, "JSONPatch");
    assert.deepEqual(decodePatch(r.patch), PATCH);
    assert.deepEqual(r.warnings, ["w1"]);
    assert.equal(await metricValue(s, "sidecar_injection_success_total"), before + 1);
  });

  it("hands path parameters, namespace and native sidecar support to the engine", async () => {
    behaviour = (pod) => ({
      decision: { inject: false, code: "pod_annotation", reasons: ["no"] },
      patch: [],
      pod,
      warnings: [],
    });
    contexts.length = 0;
    // The plain handler's path, and one with a percent-escape that express routes: the same env.
    for (const path of ["/inject/cluster/c1/net/n1/team/a--slash--b", "/inject/cluster/c%31/net/n1/team/a--slash--b"]) {
      contexts.length = 0;
      await post(s, podReview({ namespace: "east" }), path);
      assert.deepEqual(
        contexts[0],
        {
          namespace: "east",
          pathEnv: { ISTIO_META_CLUSTER_ID: "c1", ISTIO_META_NETWORK: "n1", TEAM: "a/b" },
          nativeSidecarsSupported: false,
        },
        path,
      );
    }
  });

  it("refuses an invalid annotation inside the review (HTTP 200), naming it", async () => {
    behaviour = () => {
      throw new InjectionError(
        "ERR_INVALID_ANNOTATION",
        "sidecar.istio.io/interceptionMode",
        'annotation sidecar.istio.io/interceptionMode: "BOGUS" is not one of REDIRECT, TPROXY, NONE',
      );
    };
    const res = await post(s, podReview({ uid: "bad-ann" }));
    assert.equal(res.status, 200);
    const r = responseOf(res);
    assert.equal(r.uid, "bad-ann");
    assert.equal(r.allowed, false);
    const status = r.status as { code: number; reason: string; message: string };
    assert.equal(status.code, 400);
    assert.equal(status.reason, "BadRequest");
    assert.match(status.message, /sidecar\.istio\.io\/interceptionMode/);
    assert.equal(await metricValue(s, 'sidecar_injection_failure_total{reason="ERR_INVALID_ANNOTATION"}'), 1);
  });

  it("survives an engine crash: allowed:false with a generic message, logged, and keeps serving", async () => {
    behaviour = () => {
      throw new RangeError("engine exploded");
    };
    const res = await post(s, podReview({ uid: "crash" }));
    assert.equal(res.status, 200);
    const r = responseOf(res);
    assert.equal(r.allowed, false);
    assert.equal((r.status as { code: number }).code, 500);
    assert.ok(!res.body.includes("exploded"));
    const logged = s.logs.lines().find((l) => l.uid === "crash");
    assert.equal(logged?.level, 50);
    assert.match(JSON.stringify(logged?.err), /engine exploded/);
    assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
  });

  it("writes one log line per review with the decision and no body", async () => {
    behaviour = (pod) => ({
      decision: { inject: true, code: "policy_enabled", reasons: ["an ignored value", "policy enabled"] },
      patch: PATCH,
      pod,
      warnings: [],
    });
    const review = podReview({
      uid: "log-me",
      namespace: "logs",
      object: {
        kind: "Pod",
        metadata: { generateName: "job-", annotations: { secret: "do-not-log-this" } },
        spec: { containers: [] },
      },
    });
    await post(s, review);
    const lines = s.logs.lines().filter((l) => l.uid === "log-me");
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line.namespace, "logs");
    assert.equal(line.pod, "job-");
    assert.equal(line.operation, "CREATE");
    assert.equal(line.decision, "injected");
    assert.equal(line.reason, "policy enabled");
    assert.equal(typeof line.durationMs, "number");
    assert.ok(!s.logs.text().includes("do-not-log-this"));
  });
});

describe("request paths in the log", () => {
  it("are cut to QUOTE_MAX_CHARS with the full length noted, however long the path", async () => {
    const s = await startTestServer();
    try {
      const path = `/inject/k/${"v".repeat(15_000)}`;
      const res = await s.request({ path, headers: { "content-type": "text/plain" }, body: "x" });
      assert.equal(res.status, 415);
      const line = s.logs.lines().find((l) => l.msg === "admission request refused");
      assert.ok(line, "the refusal is logged");
      assert.equal(line.path, `${path.slice(0, QUOTE_MAX_CHARS)}… (${path.length} characters)`);
      assert.ok(s.logs.text().length < 2_000, `${s.logs.text().length} bytes logged`);
    } finally {
      await s.close();
    }
  });
});

describe("health, readiness and metrics", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it("/healthz is 200 whether or not the server is ready", async () => {
    s.setReady(false);
    assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
    s.setReady(true);
    assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
  });

  it("/readyz is 503 until ready, then 200", async () => {
    s.setReady(false);
    const notReady = await s.request({ method: "GET", path: "/readyz" });
    assert.equal(notReady.status, 503);
    assert.equal((notReady.json().error as { code: string }).code, "ERR_NOT_READY");
    s.setReady(true);
    assert.equal((await s.request({ method: "GET", path: "/readyz" })).status, 200);
  });

  it("/readyz and /healthz answer alike with a query, as HEAD, and through the router (a trailing slash)", async () => {
    s.setReady(true);
    const plain = await s.request({ method: "GET", path: "/readyz" });
    assert.equal(plain.body, '{"status":"ready"}');
    assert.equal(plain.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(plain.headers["content-length"], String(plain.body.length));
    assert.equal(plain.headers["x-powered-by"], undefined);
    assert.equal(plain.headers.etag, undefined);
    for (const path of ["/readyz?verbose=1", "/readyz/"]) {
      const res = await s.request({ method: "GET", path });
      assert.equal(res.status, 200, path);
      assert.equal(res.body, plain.body, path);
      assert.equal(res.headers["content-type"], plain.headers["content-type"], path);
    }
    const head = await s.request({ method: "HEAD", path: "/healthz" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal(head.headers["content-length"], String('{"status":"ok"}'.length));
    assert.equal((await s.request({ method: "GET", path: "/healthz" })).body, '{"status":"ok"}');
    assert.equal((await s.request({ method: "POST", path: "/readyz" })).status, 405);
  });

  it("/metrics serves the Prometheus text format with the injector counters", async () => {
    await post(s, podReview());
    await s.request({ headers: { "content-type": "text/plain" }, body: "x" });
    const res = await s.request({ method: "GET", path: "/metrics" });
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /^sidecar_injection_requests_total 2$/m);
    assert.match(res.body, /^sidecar_injection_skip_total\{reason="pod_annotation"\} 1$/m);
    assert.match(res.body, /^sidecar_injection_failure_total\{reason="ERR_UNSUPPORTED_MEDIA_TYPE"\} 1$/m);
    assert.match(res.body, /^sidecar_injection_duration_seconds_count 2$/m);
    assert.match(res.body, /^process_resident_memory_bytes \d+/m);
  });
});

describe("GET /metrics under a flood of scrapes", () => {
  it("renders once for the scrapes that arrive while it renders; a later scrape renders again", async () => {
    const metrics = createMetrics();
    const render = metrics.registry.metrics.bind(metrics.registry);
    let renderings = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    metrics.registry.metrics = async () => {
      renderings += 1;
      if (renderings === 1) await held;
      return render();
    };
    const s = await startTestServer({ metrics });
    try {
      const first = s.request({ method: "GET", path: "/metrics" });
      while (renderings === 0) await new Promise((r) => setTimeout(r, 5));
      let answered = 0;
      const more = Array.from({ length: 20 }, () =>
        s.request({ method: "GET", path: "/metrics" }).finally(() => (answered += 1)),
      );
      // All 21 received and dispatched before it is let go (none is answered meanwhile, unless
      // each renders on its own).
      while (s.running.inFlight < 21 && answered < 20) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
      release();
      const answers = await Promise.all([first, ...more]);
      assert.ok(answers.every((a) => a.status === 200 && a.body === answers[0]?.body));
      assert.equal(renderings, 1);
      assert.equal((await s.request({ method: "GET", path: "/metrics" })).status, 200);
      assert.equal(renderings, 2);
    } finally {
      await s.close();
    }
  });
});
