// The calls the injector makes on its own account (client.ts: its CA Secret, the webhooks'
// caBundle, the nodes, Istio's ConfigMaps) have a deadline: against a real HTTP server that
// takes the request and never answers, or answers its headers and never the rest of the body,
// each call fails in time with an error that names the call and says why, and its connection
// is closed. Without it such a call waited for ever, and the certificate manager behind it.
// A watch's request has the same deadline, past which its connection is closed too (the rest
// of a watch's life: watch.test.ts). And under the deadline, answers are read as before: a 404
// is "not there", a JSON Patch goes with its Content-Type.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { createInspectApi } from "../../../src/kube/client.js";
import type { InspectApi, KubeApi, SecretObject } from "../../../src/kube/api.js";
import { answerJson, failureStatus, kubeApiForTests, kubeConfigAt } from "./api-at.js";

const DEADLINE_MS = 300;

/** What a server does with a request: keeps it unanswered, or sends the headers of a 200 and part of a body. */
type Stall = "no answer" | "headers only";

/** A request the server holds, and a promise for its connection's close. */
interface Held {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly closed: Promise<void>;
}

function stallingServer(stall: Stall) {
  const held: Held[] = [];
  let arrived: () => void = () => undefined;
  const server = createServer((req, res: ServerResponse) => {
    held.push({ req, res, closed: new Promise((done) => req.socket.once("close", () => done())) });
    if (stall === "headers only") {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "1000" });
      res.write('{"kind":');
    }
    arrived();
  });
  return {
    server,
    /**
     * Runs `call`, waits for its request to reach the server, and returns that request and how
     * the call settles: "settled", or its error's message.
     */
    async hold(call: () => Promise<unknown>): Promise<{ request: Held; outcome: Promise<string> }> {
      const came = new Promise<void>((done) => (arrived = done));
      const outcome = call().then(
        () => "settled",
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      await came;
      const request = held.at(-1);
      assert.ok(request, "the request reached the server");
      return { request, outcome };
    },
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
        const started = performance.now();
        const { request, outcome } = await s.hold(() => call(kube.api));
        assert.equal(await outcome, `${op}: no answer from the API server within 0.3 s`);
        // Not before its deadline (the clock's granularity aside); how long after is the machine's.
        assert.ok(performance.now() - started >= DEADLINE_MS - 20, "failed before its deadline");
        await request.closed; // a connection left open fails the test at its timeout
      });
    }
  });
}

/** `check`'s reads, with the caller's kubeconfig: the same deadline. */
const inspectCalls: [string, (a: InspectApi) => Promise<unknown>][] = [
  ["read Namespace ns", (a) => a.readNamespace("ns")],
  ["list Namespaces", (a) => a.listNamespaces()],
  ["read Deployment ns/web", (a) => a.readObject("Deployment", "ns", "web")],
  ["list Pods", (a) => a.listPods(undefined)],
  ["list MutatingWebhookConfigurations", (a) => a.listMutatingWebhookConfigurations()],
  ["read ConfigMap ns/cfg", (a) => a.readConfigMap("ns", "cfg")],
  ["list Nodes", (a) => a.listNodeVersions()],
  ["list Deployments", (a) => a.listDeployments("app=x")],
  ["list mutatingadmissionpolicies (admissionregistration.k8s.io/v1)", (a) => a.listMutatingAdmissionPolicies()],
  ["discover API groups", (a) => a.listServedVersions("admissionregistration.k8s.io")],
];

describe("a read of `check` that the API server does not answer", () => {
  const s = stallingServer("no answer");
  const kube = kubeApiForTests(s.server, { callTimeoutMs: DEADLINE_MS });
  for (const [op, call] of inspectCalls) {
    test(`${op}: fails at its deadline, saying so, and its connection is closed`, { timeout: 20_000 }, async () => {
      const { request, outcome } = await s.hold(() => call(kube.inspect));
      assert.equal(await outcome, `${op}: no answer from the API server within 0.3 s`);
      await request.closed;
    });
  }
});

const watches: [string, (a: KubeApi, onChange: () => void) => Promise<() => void>][] = [
  [
    "watch /api/v1/namespaces/sys/secrets (metadata.name=ca)",
    (a, onChange) => a.watchSecret("sys", "ca", onChange, () => undefined),
  ],
  [
    "watch /api/v1/namespaces/istio-system/configmaps (metadata.name=istio)",
    (a, onChange) => a.watchConfigMap("istio-system", "istio", onChange, () => undefined),
  ],
  [
    "watch /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations (app=x)",
    (a, onChange) => a.watchWebhookConfig({ labelSelector: "app=x" }, onChange, () => undefined),
  ],
];

describe("a watch whose request the API server does not answer", () => {
  const s = stallingServer("no answer");
  const kube = kubeApiForTests(s.server, { callTimeoutMs: DEADLINE_MS });
  for (const [what, watch] of watches) {
    test(`${what}: fails to start at the deadline, and its connection is closed`, { timeout: 20_000 }, async () => {
      const { request, outcome } = await s.hold(() => watch(kube.api, () => undefined));
      assert.equal(await outcome, `${what}: no answer from the API server within 0.3 s`);
      // Closed by the watch itself, not left open for an answer: a connection left open fails
      // the test at its timeout.
      await request.closed;
    });
  }
});

describe("calls answered within the deadline", () => {
  const seen: { method: string; url: string; contentType: string | undefined }[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", contentType: req.headers["content-type"] });
    req.resume();
    req.on("end", () => {
      if (req.method === "GET") {
        answerJson(res, 404, failureStatus(404, "NotFound"));
        return;
      }
      answerJson(res, 200, {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfiguration",
        metadata: { name: "hook", resourceVersion: "8" },
        webhooks: [{ name: "a.example.com", clientConfig: { caBundle: "Y2E=" } }],
      });
    });
  });
  const kube = kubeApiForTests(server, { callTimeoutMs: 5_000 });

  test("a Secret that is not there is undefined, not an error", async () => {
    assert.equal(await kube.api.readSecret("sys", "ca"), undefined);
    assert.equal(seen.at(-1)?.url, "/api/v1/namespaces/sys/secrets/ca");
  });

  test("the caBundle patch goes as a JSON Patch, and its answer is read", async () => {
    const patched = await kube.api.patchCaBundles("hook", "7", [{ index: 0, caBundle: "Y2E=" }]);
    assert.equal(seen.at(-1)?.method, "PATCH");
    assert.equal(seen.at(-1)?.contentType, "application/json-patch+json");
    assert.equal(patched.resourceVersion, "8");
    assert.equal(patched.name, "hook");
  });
});

describe("credentials a kubeconfig's exec plugin takes long to give", () => {
  // The plugin answers after twice the deadline; the server at once. The deadline is the API
  // server's: it runs from when the request goes out, so the call succeeds.
  const server = createServer((req, res) => {
    assert.equal(req.headers.authorization, "Bearer from-plugin");
    answerJson(res, 200, { kind: "Namespace", apiVersion: "v1", metadata: { name: "ns", labels: { a: "b" } } });
  });
  const plugin = `setTimeout(() => console.log(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-plugin" } })), ${2 * DEADLINE_MS})`;
  let kc: KubeConfig;
  before(async () => {
    const plain = await kubeConfigAt(server);
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: plain.clusters,
      users: [
        {
          name: "u",
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: process.execPath,
            args: ["-e", plugin],
            interactiveMode: "Never",
          },
        },
      ],
      contexts: plain.contexts,
      currentContext: plain.currentContext,
    });
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test("a call of `check`'s is not failed for the plugin's time", { timeout: 20_000 }, async () => {
    const started = performance.now();
    const ns = await createInspectApi(kc, { callTimeoutMs: DEADLINE_MS }).readNamespace("ns");
    assert.deepEqual(ns, { name: "ns", labels: { a: "b" } });
    assert.ok(performance.now() - started >= 2 * DEADLINE_MS - 20, "the plugin did not take its time");
  });
});
