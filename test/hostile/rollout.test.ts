// A rollout loses nothing: two replicas of the built injector, a client that keeps its
// connections alive and reuses them for as long as the server lets it (as the API server's Go
// client does, whatever the endpoints say), each new connection going to a replica still in the
// Service's endpoints (as kube-proxy does), 400 reviews a second. Replica A is taken out of the
// endpoints (what Kubernetes does when the Pod starts terminating; the chart's preStop sleep
// covers the propagation), then gets SIGTERM while the client is still sending on its
// connections.
// Every review is answered 200 with its own uid: no reset, no refused connection.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, httpsRequest, Injector, testCertificates, type TestCerts } from "../e2e/injector.js";
import { request } from "../support/https.js";

const RATE = 400;
const SECONDS = 3;
const recorded = JSON.parse(
  readFileSync(new URL("../fixtures/admission-review-pod.json", import.meta.url), "utf8"),
) as { request: { uid: string } };

interface Outcome {
  readonly ok: boolean;
  readonly detail: string;
}

/** A keep-alive agent whose every new connection goes to the port `pick` names at that moment. */
class ServiceAgent extends https.Agent {
  constructor(private readonly pick: () => number) {
    // Bounded like a client with a connection pool: on a saturated machine the load generator
    // must not turn a rollout test into an overload test (that one is in overload.test.ts).
    super({ keepAlive: true, maxSockets: 32 });
  }
  override createConnection(
    options: tls.ConnectionOptions,
    callback?: (err: Error | null, socket: Duplex) => void,
  ): Duplex {
    const socket = tls.connect({ ...options, port: this.pick() });
    if (callback) socket.once("secureConnect", () => callback(null, socket));
    return socket;
  }
}

function review(agent: https.Agent, url: string, ca: string, uid: string): Promise<Outcome> {
  recorded.request.uid = uid;
  const body = JSON.stringify(recorded);
  return request(`${url}/inject`, { agent, ca, body, headers: { "Content-Type": "application/json" } }).then(
    (res) => {
      const echoed =
        res.status === 200 && (JSON.parse(res.body) as { response?: { uid?: string } }).response?.uid === uid;
      return { ok: echoed, detail: `${res.status} ${res.body.slice(0, 120)}` };
    },
    (e: NodeJS.ErrnoException) => ({ ok: false, detail: e.code ?? e.message }),
  );
}

describe("rollout: SIGTERM under 400 reviews/s over keep-alive", () => {
  let certs: TestCerts;
  const replicas: Injector[] = [];

  before(async () => {
    certs = await testCertificates();
  });
  after(async () => {
    for (const r of replicas) await r.dispose();
  });

  it("answers every review while one replica drains and exits, and ignores SIGHUP", async () => {
    const a = new Injector(await freePort(), { certs, logLevel: "info" });
    const b = new Injector(await freePort(), { certs, logLevel: "warn" });
    replicas.push(a, b);
    await a.start();
    await b.start();

    // SIGHUP (a closed terminal, a stray kill -HUP) leaves the replica serving.
    a.signal("SIGHUP");
    await sleep(200);
    assert.equal(a.running, true, "SIGHUP must not stop the process");
    assert.equal((await httpsRequest(`${a.url}/readyz`, certs.caPem)).status, 200);

    // The endpoints: A gets new connections until it is taken out at 1 s.
    let aInEndpoints = true;
    const agent = new ServiceAgent(() => (aInEndpoints ? a.port : b.port));

    const outcomes: Promise<Outcome>[] = [];
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    const started = Date.now();
    for (let sent = 0; sent < RATE * SECONDS;) {
      const due = Math.min(RATE * SECONDS, Math.floor(((Date.now() - started) / 1000) * RATE));
      for (; sent < due; sent++) {
        outcomes.push(review(agent, a.url, certs.caPem, `uid-${sent}`));
      }
      if (Date.now() - started >= 1000) aInEndpoints = false;
      if (exit === undefined && Date.now() - started >= 1500) exit = a.terminate("SIGTERM");
      await sleep(5);
    }
    const results = await Promise.all(outcomes);
    const failed = results.filter((r) => !r.ok);
    assert.equal(results.length, RATE * SECONDS);
    assert.deepEqual(
      failed.slice(0, 5),
      [],
      `${failed.length} of ${results.length} reviews failed; first at ${results.findIndex((r) => !r.ok)}\n${a.output.slice(-3000)}`,
    );

    assert.ok(exit, "SIGTERM was sent");
    assert.deepEqual(await exit, { code: 0, signal: null }, `replica A's exit\n${a.output.slice(-2000)}`);
    assert.match(a.output, /SIGHUP ignored/);
    assert.match(a.output, /"msg":"draining"/);
    agent.destroy();
  });
});
