// /preview's read of a namespace's labels (client.ts readNamespaceLabels) against a real HTTP
// server answering as a buggy API server might: an answer that is not the Namespace asked for
// is a failure to read its labels (the preview then says the labels could not be read), never
// a namespace without labels (which would read as "no istio-injection label").
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { MAX_ANSWER_BYTES } from "../../../src/kube/capped-http.js";
import { kubeApiForTests } from "./api-at.js";

/** What the server answers a GET of /api/v1/namespaces/shop. */
let answer: (res: ServerResponse) => void = () => undefined;
const server = createServer((_req, res) => answer(res));
const json = (body: unknown) => (res: ServerResponse) =>
  res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));

const kube = kubeApiForTests(server);

describe("readNamespaceLabels", () => {
  test("the Namespace asked for: its labels, or none", async () => {
    answer = json({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "shop", labels: { "istio-injection": "enabled" } },
    });
    assert.deepEqual(await kube.api.readNamespaceLabels("shop", new AbortController().signal), {
      "istio-injection": "enabled",
    });
    answer = json({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
    assert.deepEqual(await kube.api.readNamespaceLabels("shop", new AbortController().signal), {});
  });

  test("an answer that is not that Namespace: a failure, not a namespace without labels", async () => {
    const answers: [string, (res: ServerResponse) => void][] = [
      ["{}", json({})],
      ["metadata: null", json({ apiVersion: "v1", kind: "Namespace", metadata: null })],
      ["another namespace", json({ apiVersion: "v1", kind: "Namespace", metadata: { name: "other" } })],
      ["an HTML page", (res) => res.writeHead(200, { "Content-Type": "text/html" }).end("<html>login</html>")],
    ];
    for (const [what, a] of answers) {
      answer = a;
      await assert.rejects(
        kube.api.readNamespaceLabels("shop", new AbortController().signal),
        /read Namespace shop/,
        what,
      );
    }
  });
});

describe("the length of an answer to a request's call (capped-http.ts)", () => {
  test("an answer that does not end: the call fails once MAX_ANSWER_BYTES are read, its connection closed", async () => {
    let written = 0;
    let closed!: () => void;
    const connectionClosed = new Promise<void>((done) => (closed = done));
    answer = (res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write('{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","annotations":{"a":"');
      const chunk = "x".repeat(64 * 1024);
      const more = (): void => {
        while (!res.destroyed && written < 16 * MAX_ANSWER_BYTES) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        // Without a bound, the call reads all of it and succeeds.
        if (!res.destroyed) res.end('"}}}');
      };
      res.on("close", closed);
      more();
    };
    await assert.rejects(
      kube.api.readNamespaceLabels("shop", new AbortController().signal),
      new RegExp(`read Namespace shop: the API server's answer is longer than ${MAX_ANSWER_BYTES} bytes`),
    );
    await connectionClosed;
    assert.ok(written < 4 * MAX_ANSWER_BYTES, `the server wrote ${written} bytes before the connection closed`);
  });

  test("an answer within the bound is read whole, a 404 is no namespace, a POST carries its body", async () => {
    const big = "y".repeat(MAX_ANSWER_BYTES - 1024);
    answer = json({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "shop", labels: { a: "b" }, annotations: { big } },
    });
    assert.deepEqual(await kube.api.readNamespaceLabels("shop", new AbortController().signal), { a: "b" });
    answer = (res) =>
      res
        .writeHead(404, { "Content-Type": "application/json" })
        .end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 }));
    assert.equal(await kube.api.readNamespaceLabels("shop", new AbortController().signal), undefined);
    let sent = "";
    let contentType: string | undefined;
    let contentLength: string | undefined;
    answer = (res) =>
      json({
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        status: { authenticated: true, user: { username: "ann" } },
      })(res);
    server.once("request", (req: IncomingMessage) => {
      contentType = req.headers["content-type"];
      contentLength = req.headers["content-length"];
      req.setEncoding("utf8");
      req.on("data", (c: string) => (sent += c));
    });
    assert.deepEqual(await kube.api.reviewToken("secret-token", new AbortController().signal), { username: "ann" });
    assert.equal(JSON.parse(sent).spec.token, "secret-token");
    assert.match(contentType ?? "", /^application\/json/);
    assert.equal(contentLength, String(Buffer.byteLength(sent)));
  });
});
