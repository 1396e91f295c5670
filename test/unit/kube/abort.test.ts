// /preview's calls to the API server (client.ts) end when their signal fires: against a real
// HTTP server that never answers, the call rejects and its connection is closed, so a hung API
// server keeps no socket of ours open past the lookup's deadline.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import type { KubeApi } from "../../../src/kube/api.js";
import { kubeApiForTests } from "./api-at.js";

/** Requests received and not answered, and a promise per request for its connection's close. */
const held: { req: IncomingMessage; closed: Promise<void> }[] = [];
let arrived: () => void = () => undefined;
const server = createServer((req) => {
  held.push({ req, closed: new Promise((done) => req.socket.once("close", () => done())) });
  arrived();
});

const kube = kubeApiForTests(server);

const calls: [string, (a: KubeApi, signal: AbortSignal) => Promise<unknown>][] = [
  ["readNamespaceLabels", (a, signal) => a.readNamespaceLabels("shop", signal)],
  ["reviewToken", (a, signal) => a.reviewToken("some-token", signal)],
  ["canGetNamespace", (a, signal) => a.canGetNamespace({ username: "alice" }, "shop", signal)],
];

describe("a call to an API server that never answers", () => {
  for (const [name, call] of calls) {
    test(`${name}: aborted by its signal, it rejects and its connection is closed`, { timeout: 20_000 }, async () => {
      const came = new Promise<void>((done) => (arrived = done));
      const controller = new AbortController();
      const result = call(kube.api, controller.signal).then(
        () => "answered",
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      await came;
      const request = held.at(-1);
      assert.ok(request, "the request reached the server");
      controller.abort();
      assert.match(await result, /abort/i);
      await request.closed; // a connection left open fails the test at its timeout
    });
  }
});
