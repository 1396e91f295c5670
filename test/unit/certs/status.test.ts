import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer, type Server } from "node:https";
import { test } from "node:test";
import { Registry } from "prom-client";
import {
  createCa,
  generateRsaKeyPair,
  mintServingCert,
  signServingCert,
  type ServingCert,
} from "../../../src/certs/authority.js";
import { CertManager, createCertMetrics } from "../../../src/certs/manager.js";
import { certificateCovers, certificateStatus, dialledName } from "../../../src/certs/status.js";
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
    {
      ...OPTS,
      serviceName: "sidecar-injector",
      clusterDomain: "cluster.local",
      extraSans: ["127.0.0.1"],
      caValidityMs: 3_600_000,
      servingValidityMs: 600_000,
      propagationMs: 0,
      resyncMs: 60_000,
    },
    {
      kube,
      logger: createLogger({ level: "silent" }),
      metrics: createCertMetrics(new Registry()),
      onCertificate: (c) => (served = c),
    },
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
    {
      ...OPTS,
      serviceName: "s",
      clusterDomain: "cluster.local",
      extraSans: [],
      caValidityMs: 3_600_000,
      servingValidityMs: 600_000,
      propagationMs: 0,
      resyncMs: 60_000,
    },
    {
      kube,
      logger: createLogger({ level: "silent" }),
      metrics: createCertMetrics(new Registry()),
      onCertificate: () => undefined,
    },
  );
  await manager.kick();
  const hook = kube.webhook?.webhooks[0];
  if (hook) delete hook.caBundle;
  const now = new Date();
  const other = await createCa({ validityMs: 3_600_000, now });
  const leaf = await mintServingCert(other, other.certs[0]!, {
    dnsNames: ["x"],
    ipAddresses: ["127.0.0.1"],
    validityMs: 600_000,
    now,
  });
  const { server, url } = await serve(leaf.certPem, leaf.keyPem);
  try {
    const report = await certificateStatus(kube, { ...OPTS, server: url });
    assert.ok(
      report.problems.some((p) => p.includes("empty caBundle")),
      report.text,
    );
    assert.ok(
      report.problems.some((p) => p.includes("not issued by the CA in the Secret")),
      report.text,
    );
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

/** The Secret and caBundle set up by a manager, and the certificate it would serve. */
async function managed(kube: FakeKube): Promise<ServingCert> {
  let served: ServingCert | undefined;
  const manager = new CertManager(
    {
      ...OPTS,
      serviceName: "sidecar-injector",
      clusterDomain: "cluster.local",
      extraSans: ["127.0.0.1"],
      caValidityMs: 3_600_000,
      servingValidityMs: 600_000,
      propagationMs: 0,
      resyncMs: 60_000,
    },
    {
      kube,
      logger: createLogger({ level: "silent" }),
      metrics: createCertMetrics(new Registry()),
      onCertificate: (c) => (served = c),
    },
  );
  await manager.kick();
  assert.ok(served);
  return served;
}

test("certs status: every webhook's dialled name is checked against the serving certificate", async () => {
  const kube = new FakeKube();
  const served = await managed(kube);
  const bundle = kube.webhook!.webhooks[0]!.caBundle;
  kube.webhook!.webhooks = [
    {
      name: "svc.example",
      caBundle: bundle,
      clientConfig: { service: { name: "sidecar-injector", namespace: "ns", path: "/inject" } },
    },
    { name: "url.example", caBundle: bundle, clientConfig: { url: "https://127.0.0.1:9443/inject" } },
    {
      name: "moved.example",
      caBundle: bundle,
      clientConfig: { service: { name: "sidecar-injector", namespace: "istio-system" } },
    },
    { name: "ip.example", caBundle: bundle, clientConfig: { url: "https://10.96.0.12:443/inject" } },
    { name: "v6.example", caBundle: bundle, clientConfig: { url: "https://[fd00::1]/inject" } },
  ];
  const { server, url } = await serve(served.certPem, served.keyPem);
  try {
    const report = await certificateStatus(kube, { ...OPTS, server: url });
    assert.match(report.text, /svc\.example: dials "sidecar-injector\.ns\.svc", covered/);
    assert.match(report.text, /url\.example: dials "127\.0\.0\.1", covered/);
    const names = new X509Certificate(served.certPem).subjectAltName ?? "";
    assert.ok(names.includes("DNS:sidecar-injector.ns.svc"), names);
    assert.deepEqual(report.problems, [
      `webhook moved.example dials the name "sidecar-injector.istio-system.svc", which the serving certificate does not carry (its names: ${JSON.stringify(names)})`,
      `webhook ip.example dials the IP address "10.96.0.12", which the serving certificate does not carry (its names: ${JSON.stringify(names)})`,
      `webhook v6.example dials the IP address "fd00::1", which the serving certificate does not carry (its names: ${JSON.stringify(names)})`,
    ]);
    assert.match(report.text, /PROBLEMS/);
  } finally {
    server.close();
  }
});

test("certs status: a serving certificate outside its validity window is a problem", async () => {
  const kube = new FakeKube();
  const served = await managed(kube);
  const { server, url } = await serve(served.certPem, served.keyPem);
  try {
    const later = await certificateStatus(kube, {
      ...OPTS,
      server: url,
      now: new Date(served.notAfter.getTime() + 1000),
    });
    assert.ok(
      later.problems.some((p) => p.startsWith("the serving certificate has expired (valid from ")),
      later.text,
    );
    const earlier = await certificateStatus(kube, {
      ...OPTS,
      server: url,
      now: new Date(served.notBefore.getTime() - 1000),
    });
    assert.ok(
      earlier.problems.some((p) => p.startsWith("the serving certificate is not valid yet (valid from ")),
      earlier.text,
    );
    assert.ok(!earlier.problems.some((p) => p.includes("expired")), earlier.text);
  } finally {
    server.close();
  }
});

test("certs status: without --server the names are said not to be checked; a clientConfig.url that is no URL is a problem", async () => {
  const kube = new FakeKube();
  await managed(kube);
  const plain = await certificateStatus(kube, OPTS);
  assert.deepEqual(plain.problems, []);
  assert.match(plain.text, /Serving certificate: not checked \(give --server/);
  assert.deepEqual(dialledName({ name: "x", clientConfig: { url: "not a url" } }), {
    error: 'clientConfig.url "not a url" is not a URL',
  });
  assert.deepEqual(dialledName({ name: "x", clientConfig: { url: "https://Hook.Example.com:8443/inject" } }), {
    name: "hook.example.com",
  });
  assert.deepEqual(dialledName({ name: "x", clientConfig: { service: { name: "a", namespace: "b", port: 443 } } }), {
    name: "a.b.svc",
  });
  assert.equal(dialledName({ name: "x" }), undefined);
});

test("certificateCovers: wildcards as RFC 6125 allows, IP addresses only as IP SANs, never the common name", async () => {
  const state = await createCa({ validityMs: 3_600_000, now: new Date() });
  const keys = await generateRsaKeyPair();
  const pem = signServingCert(state, state.certs[0]!, keys.publicKey, {
    dnsNames: ["*.example.com", "exact.test"],
    ipAddresses: ["10.1.2.3", "fd00::7"],
    validityMs: 600_000,
    now: new Date(),
  });
  const cert = new X509Certificate(pem);
  const cases: [string, boolean][] = [
    ["hook.example.com", true],
    ["HOOK.Example.COM", true],
    ["a.b.example.com", false], // one label only
    ["example.com", false],
    ["exact.test", true],
    ["exact.test.", true],
    ["other.test", false],
    ["10.1.2.3", true],
    ["fd00::7", true],
    ["fd00:0:0:0:0:0:0:7", true],
    ["10.1.2.4", false],
    ["hook.example.com.evil.test", false],
  ];
  for (const [name, covered] of cases) assert.equal(certificateCovers(cert, name), covered, name);

  // Only the subject names the host: not covered (Go has ignored the common name since 1.15).
  const cnOnly = await createCa({ validityMs: 3_600_000, now: new Date(), commonName: "cn-only.example" });
  assert.equal(certificateCovers(new X509Certificate(cnOnly.certs[0]!.certPem), "cn-only.example"), false);
});
