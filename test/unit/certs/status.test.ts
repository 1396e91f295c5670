import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import { test } from "node:test";
import { Registry } from "prom-client";
import { createCa, mintServingCert } from "../../../src/certs/authority.js";
import { CertManager, createCertMetrics } from "../../../src/certs/manager.js";
import { certificateStatus } from "../../../src/certs/status.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { FakeKube } from "./fake-kube.js";

const OPTS = { namespace: "ns", secretName: "sidecar-injector-ca", webhookConfigName: "sidecar-injector" };

async function serve(cert: string, key: string): Promise<{ server: Server; url: string }> {
  const server = createServer({ cert, key }, (_req, res) => res.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return { server, url: `https://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}` };
}

test("certs status: everything consistent, and the serving certificate's issuer is published", async () => {
  const kube = new FakeKube();
  let served = { certPem: "", keyPem: "" };
  const manager = new CertManager(
    { ...OPTS, serviceName: "sidecar-injector", clusterDomain: "cluster.local", extraSans: ["127.0.0.1"], caValidityMs: 3_600_000, servingValidityMs: 600_000, propagationMs: 0, resyncMs: 60_000 },
    { kube, logger: createLogger({ level: "silent" }), metrics: createCertMetrics(new Registry()), onCertificate: (c) => (served = c) },
  );
  await manager.kick();
  const { server, url } = await serve(served.certPem, served.keyPem);
  try {
    const report = await certificateStatus(kube, { ...OPTS, server: url });
    assert.deepEqual(report.problems, []);
    assert.match(report.text, /CA #1/);
    assert.match(report.text, /issued by: CA #1/);
    assert.match(report.text, /published caBundle contains its issuer: yes/);
    assert.match(report.text, /IP Address:127\.0\.0\.1/);
  } finally {
    server.close();
  }
});

test("certs status: a wiped caBundle and a certificate from another CA are reported as problems", async () => {
  const kube = new FakeKube();
  const manager = new CertManager(
    { ...OPTS, serviceName: "s", clusterDomain: "cluster.local", extraSans: [], caValidityMs: 3_600_000, servingValidityMs: 600_000, propagationMs: 0, resyncMs: 60_000 },
    { kube, logger: createLogger({ level: "silent" }), metrics: createCertMetrics(new Registry()), onCertificate: () => undefined },
  );
  await manager.kick();
  const hook = kube.webhook?.webhooks[0];
  if (hook) delete hook.caBundle;
  const now = new Date();
  const other = await createCa({ validityMs: 3_600_000, now });
  const leaf = await mintServingCert(other, other.certs[0]!, { dnsNames: ["x"], ipAddresses: ["127.0.0.1"], validityMs: 600_000, now });
  const { server, url } = await serve(leaf.certPem, leaf.keyPem);
  try {
    const report = await certificateStatus(kube, { ...OPTS, server: url });
    assert.ok(report.problems.some((p) => p.includes("empty caBundle")), report.text);
    assert.ok(report.problems.some((p) => p.includes("not issued by the CA in the Secret")), report.text);
    assert.match(report.text, /PROBLEMS/);
  } finally {
    server.close();
  }
});

test("certs status: a missing Secret and configuration are named", async () => {
  const kube = new FakeKube();
  kube.webhook = undefined;
  const report = await certificateStatus(kube, OPTS);
  assert.equal(report.problems.length, 2);
  assert.match(report.text, /CA Secret ns\/sidecar-injector-ca: not found/);
  assert.match(report.text, /MutatingWebhookConfiguration sidecar-injector: not found/);
});
