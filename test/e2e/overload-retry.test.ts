// End-to-end: a review the injector sheds because too many are in flight (`serve --max-requests`,
// 503 ERR_OVERLOADED with `Retry-After: 1`) is retried by the real kube-apiserver, whose webhook
// client (client-go's rest client) retries a 429 or 5xx that carries Retry-After, within the
// webhook's timeoutSeconds. So a shed review is a delayed Pod, not a refused one; and when the
// injector stays full past timeoutSeconds, the Pod is refused under failurePolicy Fail.
// The same for a connection past the bound (`--max-connections`, one process or the primary of
// `--workers`): answered 503 as well, where a closed connection would fail the call outright
// (client-go retries a POST only on an answer that says so).
//
// The injector runs with one place (`--max-requests 1`); the test takes that place itself with
// a review whose body never finishes, so the API server's calls are shed for as long as the test
// holds it. /metrics is read on the admin port, which has a gate of its own.
import assert from "node:assert/strict";
import https from "node:https";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Pod } from "../../src/kube/types.js";
import { request, type ClientResponse } from "../support/https.js";
import { podReview } from "../support/review.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector, metricValue, testCertificates, type TestCerts } from "./injector.js";

/** Retried within its 10 s: the place is freed after the API server's first call was shed. */
const NS_RETRIED = "e2e-retry";
const HOOK_RETRIED = "retried.overload.sidecar-injector.test";
/** Given up after its 3 s: the place stays taken all along. */
const NS_TIMED_OUT = "e2e-retry-timeout";
const HOOK_TIMED_OUT = "timed-out.overload.sidecar-injector.test";

// ServiceAccount admission on, as in a real cluster: the sidecar's projected token needs a serviceAccountName.
const { cluster, skip } = await clusterForSuite("overload retry end-to-end test", { serviceAccountAdmission: true });
after(async () => {
  await cluster?.stop();
});

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const pod = (name: string): Pod => ({
  metadata: { name, labels: { app: "retry" } },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});

interface Created {
  readonly status: number;
  readonly pod: Pod;
  readonly message: string;
}

async function createPod(ns: string, name: string, query = ""): Promise<Created> {
  const r = await kube().request<Pod & { message?: string }>("POST", `/api/v1/namespaces/${ns}/pods${query}`, {
    apiVersion: "v1",
    kind: "Pod",
    ...pod(name),
  });
  return { status: r.status, pod: r.json, message: r.json?.message ?? r.text.slice(0, 500) };
}

const sidecarOf = (p: Pod | null | undefined): unknown =>
  p?.spec?.containers?.find((c) => c.name === "istio-proxy") ??
  p?.spec?.initContainers?.find((c) => c.name === "istio-proxy");

/** One webhook, failurePolicy Fail, calling the injector for Pods in namespaces labelled `e2e-retry=<value>`. */
function webhookConfiguration(
  name: string,
  value: string,
  timeoutSeconds: number,
  url: string,
  caPem: string,
): Record<string, unknown> {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
    webhooks: [
      {
        name,
        clientConfig: { url, caBundle: Buffer.from(caPem).toString("base64") },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        namespaceSelector: { matchLabels: { "e2e-retry": value } },
        failurePolicy: "Fail",
        timeoutSeconds,
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        reinvocationPolicy: "Never",
      },
    ],
  };
}

/** Polls `until` every 50 ms for at most `ms`; returns whether it became true. */
async function eventually(ms: number, until: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await until()) return true;
    await sleep(50);
  }
  return until();
}

/**
 * Reviews shed so far (`sidecar_injection_failure_total{reason="ERR_OVERLOADED"}`), read on the
 * admin port over one kept-alive connection per port: with `--max-connections 1` the admin port
 * has one place too, and a scrape on a new connection each time could be shed itself (logged,
 * not counted) while the one before still held it, and read nothing.
 */
const scrapeAgents = new Map<number, https.Agent>();
after(() => {
  for (const agent of scrapeAgents.values()) agent.destroy();
});
async function shedCount(adminPort: number, ca: string): Promise<number> {
  let agent = scrapeAgents.get(adminPort);
  if (agent === undefined) scrapeAgents.set(adminPort, (agent = new https.Agent({ keepAlive: true, maxSockets: 1 })));
  const r = await request(`https://127.0.0.1:${adminPort}/metrics`, { ca, agent, timeoutMs: 2000 });
  assert.equal(r.status, 200, r.body.slice(0, 300));
  return metricValue(r.body, "sidecar_injection_failure_total", { reason: "ERR_OVERLOADED" }) ?? 0;
}

/**
 * Starts creating Pod `name` in `ns` while the injector sheds, and resolves once the API
 * server's call was shed (`shed()` grew), with the creation still pending; fails if the
 * creation ends first, or no call was shed within 8 s.
 */
async function createWhileShed(
  ns: string,
  name: string,
  shed: () => Promise<number>,
): Promise<{ created: Promise<Created>; before: number }> {
  let settled = false;
  const before = await shed();
  const created = createPod(ns, name).finally(() => (settled = true));
  // The API server's first call is shed: the count grows while the creation is pending.
  const apiServerShed = await eventually(8_000, async () => settled || (await shed()) > before);
  if (settled) {
    const early = await created;
    assert.fail(`the creation ended while the injector was full: ${early.status} ${early.message}`);
  }
  assert.ok(apiServerShed, "the API server's call was not shed while the injector was full");
  return { created, before };
}

/** Waits (30 s at most) until a Pod created in `ns` (dry run) gets the sidecar: the API server calls the webhook. */
async function webhookInEffect(ns: string): Promise<void> {
  let last = "";
  const ready = await eventually(30_000, async () => {
    const probe = await createPod(ns, `probe-${Date.now()}`, "?dryRun=All");
    last = `${probe.status} ${probe.message}`;
    return probe.status === 201 && sidecarOf(probe.pod) !== undefined;
  });
  assert.ok(ready, `the webhook for ${ns} did not take effect: ${last}`);
}

interface Held {
  /** Whether the injector has written anything back on the held connection (it never should). */
  readonly answered: () => boolean;
  readonly release: () => void;
}

describe("a review shed for overload is retried by a real kube-apiserver", { skip }, () => {
  let certs: TestCerts;
  let injector: Injector;
  let adminPort: number;

  const shed = (): Promise<number> => shedCount(adminPort, certs.caPem);

  /** A direct review of a Pod, as the API server would send it. */
  function directReview(): Promise<ClientResponse> {
    return request(`${injector.url}/inject`, {
      ca: certs.caPem,
      timeoutMs: 5000,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(
        podReview({ namespace: NS_RETRIED, object: { apiVersion: "v1", kind: "Pod", ...pod("direct") } }),
      ),
    });
  }

  /**
   * Takes the injector's one place: a POST /inject whose headers promise a body that never comes
   * whole. Confirmed by a direct review being shed (503, `Retry-After: 1`) while the held
   * connection has had no answer; should the direct review have come first (the held headers
   * not read yet), it starts over.
   */
  async function hold(): Promise<Held> {
    let last = "";
    for (let attempt = 0; attempt < 10; attempt++) {
      const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: injector.port, ca: certs.caPem }, () => resolve(s));
        s.once("error", reject);
      });
      let answered = false;
      socket.on("error", () => undefined);
      socket.on("data", () => (answered = true));
      socket.write(
        `POST /inject HTTP/1.1\r\nHost: 127.0.0.1:${injector.port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 4096\r\n\r\n{"apiVersion":"admission.k8s.io/v1",`,
      );
      const held: Held = { answered: () => answered, release: () => socket.destroy() };
      const probe = await directReview();
      if (probe.status === 503 && !answered) {
        try {
          assert.equal(probe.headers["retry-after"], "1", "the shed review says when to retry");
          assert.match(probe.body, /ERR_OVERLOADED/);
        } catch (e) {
          held.release();
          throw e;
        }
        return held;
      }
      last = `direct review ${probe.status}, held connection answered: ${answered}`;
      held.release();
      await sleep(100);
    }
    assert.fail(`could not take the injector's one place (${last})`);
  }

  before(async () => {
    certs = await testCertificates();
    adminPort = await freePort();
    injector = new Injector(await freePort(), {
      certs,
      args: ["--max-requests", "1", "--admin-port", String(adminPort)],
    });
    await injector.start();
    const c = kube();
    await c.createNamespace(NS_RETRIED, { "istio-injection": "enabled", "e2e-retry": "retried" });
    await c.createNamespace(NS_TIMED_OUT, { "istio-injection": "enabled", "e2e-retry": "timed-out" });
    for (const mwc of [
      webhookConfiguration(HOOK_RETRIED, "retried", 10, `${injector.url}/inject`, certs.caPem),
      webhookConfiguration(HOOK_TIMED_OUT, "timed-out", 3, `${injector.url}/inject`, certs.caPem),
    ]) {
      const r = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);
      assert.equal(r.status, 201, r.text);
    }
    // The API server picks the configurations up asynchronously: wait until both call the injector.
    for (const ns of [NS_RETRIED, NS_TIMED_OUT]) await webhookInEffect(ns);
  });

  after(async () => {
    await injector?.dispose();
  });

  test("shed while the place is taken, the API server's call is retried once it is free: the Pod is created with its sidecar", async () => {
    const held = await hold();
    let created: Promise<Created> | undefined;
    try {
      const pending = await createWhileShed(NS_RETRIED, "retried", shed);
      created = pending.created;
      const before = pending.before;
      const shedWhileHeld = (await shed()) - before;
      assert.ok(shedWhileHeld >= 1);
      assert.equal(held.answered(), false, "the held review kept its place");
      held.release();
      const r = await created;
      const shedInAll = (await shed()) - before;
      console.log(
        `RETRIED: status=${r.status} shed_while_held=${shedWhileHeld} shed_in_all=${shedInAll} message=${r.status === 201 ? "-" : r.message}`,
      );
      assert.equal(r.status, 201, `the Pod was refused: ${r.message}`);
      assert.ok(sidecarOf(r.pod), "the Pod has the istio-proxy sidecar");
      assert.equal(typeof r.pod.metadata?.annotations?.["sidecar.istio.io/status"], "string");
    } finally {
      held.release();
      await created?.catch(() => undefined);
    }
  });

  test("the place taken for longer than timeoutSeconds: the API server retries until its timeout, then refuses the Pod under Fail", async () => {
    const held = await hold();
    try {
      const before = await shed();
      const r = await createPod(NS_TIMED_OUT, "timed-out");
      const shedInAll = (await shed()) - before;
      console.log(`TIMED OUT: status=${r.status} shed=${shedInAll} message=${r.message}`);
      assert.equal(held.answered(), false, "the held review kept its place all along");
      assert.notEqual(r.status, 201, "the Pod was created without the injector's answer");
      assert.match(r.message, new RegExp(`failed calling webhook "${HOOK_TIMED_OUT.replaceAll(".", "\\.")}"`));
      // More than one call shed: the API server retried after Retry-After before giving up.
      assert.ok(shedInAll > 1, `the API server called ${shedInAll} time(s) only`);
      const get = await kube().request("GET", `/api/v1/namespaces/${NS_TIMED_OUT}/pods/timed-out`);
      assert.equal(get.status, 404, "the refused Pod does not exist");
    } finally {
      held.release();
    }
  });
});

/** Retried: the connections the injector may serve are taken until the API server's first call is shed. */
const NS_CONNECTIONS = "e2e-retry-connections";

for (const mode of [
  // One process: one connection served at once.
  {
    name: "one process",
    args: ["--max-connections", "1"],
    places: 1,
    hook: "connections.overload.sidecar-injector.test",
  },
  // The primary of two workers: one connection each.
  {
    name: "the primary of --workers 2",
    args: ["--workers", "2", "--max-connections", "1"],
    places: 2,
    hook: "worker-connections.overload.sidecar-injector.test",
  },
]) {
  describe(
    `a connection past the bound (${mode.name}) is answered 503 and retried by a real kube-apiserver`,
    { skip },
    () => {
      let certs: TestCerts;
      let injector: Injector;
      let adminPort: number;
      const value = mode.hook.split(".")[0] ?? "connections";

      const shed = (): Promise<number> => shedCount(adminPort, certs.caPem);

      /**
       * A kept-alive connection the injector serves: a health check on it answered 200 without
       * `Connection: close` (one opened while another connection, say the start's readiness check,
       * still held the place, is shed instead: then another is tried), then a review begun on it.
       */
      async function servedConnection(): Promise<tls.TLSSocket> {
        let last = "";
        for (let attempt = 0; attempt < 25; attempt++) {
          const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
            const s = tls.connect({ host: "127.0.0.1", port: injector.port, ca: certs.caPem }, () => resolve(s));
            s.once("error", reject);
          });
          socket.on("error", () => undefined);
          const head = await new Promise<string>((resolve) => {
            let text = "";
            const onData = (d: Buffer): void => {
              text += d.toString("latin1");
              if (!text.includes("\r\n\r\n")) return;
              socket.off("data", onData);
              resolve(text.slice(0, text.indexOf("\r\n\r\n")));
            };
            socket.on("data", onData);
            socket.once("close", () => resolve(text));
            socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
          });
          if (/^HTTP\/1\.1 200 /.test(head) && !/\r\nconnection: close/i.test(head)) {
            // Then busy: a review whose body is still coming (10 s at most). An idle connection
            // would give its place to a new one past the bound (EVICT_IDLE_AFTER_MS).
            socket.write(
              "POST /inject HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            );
            return socket;
          }
          last = head.split("\r\n")[0] ?? "";
          socket.destroy();
          await sleep(200);
        }
        assert.fail(`no connection served by the injector (last: ${last})`);
      }

      /**
       * Every place taken by a connection the injector serves (each with a review in flight); then a
       * review on a new connection is answered 503. Closes are counted a moment late (a worker
       * reports them batched), so the first probes may still be served: probed until one is not.
       */
      async function takeEveryPlace(): Promise<{ release: () => void }> {
        const sockets: tls.TLSSocket[] = [];
        const release = (): void => {
          for (const s of sockets) s.destroy();
        };
        try {
          for (let i = 0; i < mode.places; i++) sockets.push(await servedConnection());
          let last = "";
          for (let attempt = 0; attempt < 25; attempt++) {
            const probe = await request(`${injector.url}/inject`, {
              ca: certs.caPem,
              timeoutMs: 5000,
              headers: { "Content-Type": "application/json", Connection: "close" },
              body: JSON.stringify(podReview({ object: { apiVersion: "v1", kind: "Pod", ...pod("direct") } })),
            });
            if (probe.status === 503) {
              assert.equal(probe.headers["retry-after"], "1", "the shed connection's answer says when to retry");
              assert.equal(probe.headers.connection, "close");
              assert.match(probe.body, /ERR_OVERLOADED/);
              return { release };
            }
            last = `${probe.status} ${probe.body.slice(0, 200)}`;
            await sleep(200);
          }
          assert.fail(`no review shed with ${sockets.length} connections held (last: ${last})`);
        } catch (e) {
          release();
          throw e;
        }
      }

      before(async () => {
        certs = await testCertificates();
        adminPort = await freePort();
        injector = new Injector(await freePort(), { certs, args: [...mode.args, "--admin-port", String(adminPort)] });
        await injector.start();
        const c = kube();
        const ns = `${NS_CONNECTIONS}-${mode.places}`;
        await c.createNamespace(ns, { "istio-injection": "enabled", "e2e-retry": value });
        const r = await c.request(
          "POST",
          "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
          webhookConfiguration(mode.hook, value, 10, `${injector.url}/inject`, certs.caPem),
        );
        assert.equal(r.status, 201, r.text);
        await webhookInEffect(ns);
        // The API server keeps its connections to the injector alive: restarted, it has none, and
        // its next call needs a new one.
        await injector.stop();
        await injector.start();
      });

      after(async () => {
        await injector?.dispose();
      });

      test("shed while every place is taken, the API server's call is retried once one is free: the Pod is created with its sidecar", async () => {
        const ns = `${NS_CONNECTIONS}-${mode.places}`;
        const held = await takeEveryPlace();
        let created: Promise<Created> | undefined;
        try {
          const pending = await createWhileShed(ns, "retried", shed);
          created = pending.created;
          const before = pending.before;
          held.release();
          const r = await created;
          console.log(`CONNECTION RETRIED (${mode.name}): status=${r.status} shed=${(await shed()) - before}`);
          assert.equal(r.status, 201, `the Pod was refused: ${r.message}`);
          assert.ok(sidecarOf(r.pod), "the Pod has the istio-proxy sidecar");
        } finally {
          held.release();
          await created?.catch(() => undefined);
        }
      });
    },
  );
}
