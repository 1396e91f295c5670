// The calls the injector makes on its own account (client.ts: its CA Secret, the webhooks'
// caBundle, the nodes, Istio's ConfigMaps) have a deadline: against a real HTTP server that
// takes the request and never answers, or answers its headers and never the rest of the body,
// each call fails in time with an error that names the call and says why, and its connection
// is closed. Without it such a call waited for ever, and the certificate manager behind it.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { describe, test } from "node:test";
import type { KubeApi, SecretObject } from "../../../src/kube/api.js";
import { kubeApiForTests } from "./api-at.js";

const DEADLINE_MS = 300;

/** What a server does with a request: keeps it unanswered, or sends the headers of a 200 and part of a body. */
type Stall = "no answer" | "headers only";

function stallingServer(stall: Stall) {
  const held: { req: IncomingMessage; closed: Promise<void> }[] = [];
  let arrived: () => void = () => undefined;
  const server = createServer((req, res: ServerResponse) => {
    held.push({ req, closed: new Promise((done) => req.socket.once("close", () => done())) });
    if (stall === "headers only") {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "1000" });
      res.write('{"kind":');
    }
    arrived();
  });
  return {
    server,
    held,
    next: () => new Promise<void>((done) => (arrived = done)),
  };
}

const secret: SecretObject = {
  metadata: { name: "ca", namespace: "sys", resourceVersion: "1" },
  type: "Opaque",
  data: {},
};

const calls: [string, (a: KubeApi) => Promise<unknown>][] = [
  ["read Secret sys/ca", (a) => a.readSecret("sys", "ca")],
  ["create Secret sys/ca", (a) => a.createSecret("sys", secret)],
  ["update Secret sys/ca", (a) => a.replaceSecret("sys", secret)],
  ["read MutatingWebhookConfiguration hook", (a) => a.readWebhookConfig("hook")],
  [
    "update caBundle of MutatingWebhookConfiguration hook",
    (a) => a.patchCaBundles("hook", "7", [{ index: 0, caBundle: "Y2E=" }]),
  ],
  ["list MutatingWebhookConfigurations app=x", (a) => a.listWebhookConfigs("app=x")],
  ["list Nodes", (a) => a.listKubeletVersions()],
  ["read ConfigMap istio-system/istio", (a) => a.readConfigMap("istio-system", "istio")],
];

for (const stall of ["no answer", "headers only"] as const) {
  describe(`a call of the injector's own to an API server that sends ${stall === "no answer" ? "nothing" : "its headers and part of a body"}`, () => {
    const s = stallingServer(stall);
    const kube = kubeApiForTests(s.server, { callTimeoutMs: DEADLINE_MS });
    for (const [op, call] of calls) {
      test(`${op}: fails at its deadline, saying so, and its connection is closed`, { timeout: 20_000 }, async () => {
        const came = s.next();
        const started = performance.now();
        const result = call(kube.api).then(
          () => "answered",
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        );
        await came;
        const request = s.held.at(-1);
        assert.ok(request, "the request reached the server");
        assert.equal(await result, `${op}: no answer from the API server within 0.3 s`);
        // Not before its deadline (the clock's granularity aside); how long after is the machine's.
        assert.ok(performance.now() - started >= DEADLINE_MS - 20, "failed before its deadline");
        await request.closed; // a connection left open fails the test at its timeout
      });
    }
  });
}
