// /preview's read of a namespace's labels (client.ts readNamespaceLabels) against a real HTTP
// server answering as a buggy API server might: an answer that is not the Namespace asked for
// is a failure to read its labels (the preview then says the labels could not be read), never
// a namespace without labels (which would read as "no istio-injection label").
import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import type { KubeApi } from "../../../src/kube/api.js";
import { kubeApiAt } from "./api-at.js";

/** What the server answers a GET of /api/v1/namespaces/shop. */
let answer: (res: ServerResponse) => void = () => undefined;
const server = createServer((_req, res) => answer(res));
const json = (body: unknown) => (res: ServerResponse) =>
  res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));

let api: KubeApi;
before(async () => {
  api = await kubeApiAt(server);
});
after(() => {
  server.closeAllConnections();
  server.close();
});

describe("readNamespaceLabels", () => {
  test("the Namespace asked for: its labels, or none", async () => {
    answer = json({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "shop", labels: { "istio-injection": "enabled" } },
    });
    assert.deepEqual(await api.readNamespaceLabels("shop", new AbortController().signal), {
      "istio-injection": "enabled",
    });
    answer = json({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
    assert.deepEqual(await api.readNamespaceLabels("shop", new AbortController().signal), {});
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
      await assert.rejects(api.readNamespaceLabels("shop", new AbortController().signal), /read Namespace shop/, what);
    }
  });
});
