// End-to-end rollout: the real kube-apiserver calls two replicas of the built injector through a
// "Service" (a TCP proxy on 127.0.0.1 that sends each new connection to a replica in its
// endpoints, as kube-proxy does; connections already open stay where they are). Pods are
// created in a steady stream; replica A leaves the endpoints (what Kubernetes does when its Pod
// starts terminating; the chart's preStop sleep covers the propagation) and then gets SIGTERM.
// Every Pod is created, and created with its sidecar: the API server never sees a reset.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseAllDocuments } from "yaml";
import type { Pod } from "../../src/kube/types.js";
import { CHART } from "../support/helm.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";

const NAMESPACE = "e2e-rollout";
const CREATIONS_PER_SECOND = 60;
const SECONDS = 6;

// ServiceAccount admission on, as in a real cluster: the sidecar's projected token needs a serviceAccountName.
const { cluster, skip } = await clusterForSuite("rollout end-to-end test", { serviceAccountAdmission: true });

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

/** A TCP proxy that sends each new connection to the port `pick` names at that moment. */
function service(pick: () => number): Promise<{ server: Server; port: number }> {
  const server = createServer((client: Socket) => {
    const upstream = connect(pick(), "127.0.0.1");
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port })),
  );
}

const pod = (name: string): Pod => ({
  metadata: { name, labels: { app: "roll" } },
  spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
});

describe("rollout against a real kube-apiserver: one replica of two stops while Pods are created", { skip }, () => {
  let certs: TestCerts;
  let a: Injector;
  let b: Injector;
  let proxy: { server: Server; port: number };
  let aInEndpoints = true;

  before(async () => {
    certs = await testCertificates();
    a = new Injector(await freePort(), { certs, logLevel: "info" });
    b = new Injector(await freePort(), { certs });
    await a.start();
    await b.start();
    proxy = await service(() => (aInEndpoints ? a.port : b.port));
    const c = kube();
    await c.createNamespace(NAMESPACE, { "istio-injection": "enabled" });
    const r = await c.helm([
      "template",
      "sidecar-injector",
      CHART,
      "--namespace",
      "sidecar-injector-system",
      "--set",
      "tls.mode=secret",
      "--set",
      `webhook.url=https://127.0.0.1:${proxy.port}/inject`,
      "--set",
      `webhook.caBundle=${Buffer.from(certs.caPem).toString("base64")}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const mwc = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .find((d) => d?.kind === "MutatingWebhookConfiguration");
    assert.ok(mwc);
    const created = await c.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);
    assert.equal(created.status, 201, created.text);
    // The API server picks the configuration up asynchronously.
    for (let i = 0; ; i++) {
      const probe = await c.request<Pod>("POST", `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, {
        apiVersion: "v1",
        kind: "Pod",
        ...pod(`probe-${i}`),
      });
      if (probe.status === 201 && probe.json?.spec?.containers?.some((x) => x.name === "istio-proxy")) break;
      assert.ok(i < 150, `the webhook did not take effect: ${probe.status} ${probe.text.slice(0, 300)}`);
      await sleep(200);
    }
  });

  after(async () => {
    await a?.dispose();
    await b?.dispose();
    proxy?.server.close();
    await cluster?.stop();
  });

  test(`${CREATIONS_PER_SECOND} Pod creations a second for ${SECONDS} s across the handover: none fails, every one injected`, async () => {
    const results: Promise<{ status: number; injected: boolean; text: string }>[] = [];
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    const started = Date.now();
    const total = CREATIONS_PER_SECOND * SECONDS;
    for (let sent = 0; sent < total;) {
      const elapsed = Date.now() - started;
      const due = Math.min(total, Math.floor((elapsed / 1000) * CREATIONS_PER_SECOND) + 1);
      for (; sent < due; sent++) {
        results.push(
          kube()
            .request<Pod>("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
              apiVersion: "v1",
              kind: "Pod",
              ...pod(`p-${sent}`),
            })
            .then((r) => ({
              status: r.status,
              injected: r.json?.spec?.containers?.some((x) => x.name === "istio-proxy") === true,
              text: r.text.slice(0, 300),
            })),
        );
      }
      if (elapsed >= 2000) aInEndpoints = false;
      if (exit === undefined && elapsed >= 2500) exit = a.terminate("SIGTERM");
      await sleep(10);
    }
    const done = await Promise.all(results);
    const failed = done.filter((r) => r.status !== 201);
    const bare = done.filter((r) => r.status === 201 && !r.injected);
    console.log(`ROLLOUT RESULT: creations=${done.length} failed=${failed.length} not_injected=${bare.length}`);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${done.length} creations failed`);
    assert.equal(bare.length, 0, "Pods created without a sidecar");
    assert.ok(exit, "SIGTERM was sent");
    assert.deepEqual(await exit, { code: 0, signal: null }, a.output.slice(-2000));
    // A answered reviews until it stopped, and B took over.
    assert.match(a.output, /"msg":"admission review"/);
  });
});
