import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry } from "prom-client";
import { caBundlePem, fromSecretData, signedBy, type ServingCert } from "../../../src/certs/authority.js";
import {
  CertManager,
  createCertMetrics,
  type CertManagerOptions,
  type CertMetrics,
} from "../../../src/certs/manager.js";
import type { SecretObject } from "../../../src/kube/client.js";
import { FakeKube } from "./fake-kube.js";
import { createLogger, type Logger } from "../../../src/telemetry/logger.js";
import { captureLogs } from "../../support/logs.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

const OPTS: CertManagerOptions = {
  namespace: "sidecar-injector-system",
  secretName: "sidecar-injector-ca",
  webhookConfigName: "sidecar-injector",
  serviceName: "sidecar-injector",
  clusterDomain: "cluster.local",
  extraSans: ["127.0.0.1"],
  caValidityMs: 3 * HOUR,
  servingValidityMs: 1 * HOUR,
  propagationMs: 10_000,
  resyncMs: MIN,
};

function harness(
  kube: FakeKube,
  clock: { t: number },
  opts: Partial<CertManagerOptions> = {},
  logger: Logger = createLogger({ level: "silent" }),
) {
  const issued: ServingCert[] = [];
  const metrics: CertMetrics = createCertMetrics(new Registry());
  const manager = new CertManager(
    { ...OPTS, ...opts },
    {
      kube,
      logger,
      metrics,
      onCertificate: (c) => issued.push(c),
      now: () => new Date(clock.t),
    },
  );
  return { manager, issued, metrics };
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const bundleOf = (kube: FakeKube, t: number): string =>
  b64(caBundlePem(fromSecretData(kube.secret?.data), new Date(t)));

describe("CertManager", () => {
  test("from nothing: creates the CA, publishes the caBundle everywhere, serves a leaf it signed", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const { manager, issued } = harness(kube, clock);
    await manager.kick();
    const ca = fromSecretData(kube.secret?.data);
    assert.equal(ca.certs.length, 1);
    for (const w of kube.webhook?.webhooks ?? []) assert.equal(w.caBundle, bundleOf(kube, clock.t));
    assert.equal(issued.length, 1);
    const leaf = issued[0] as ServingCert;
    assert.ok(signedBy(leaf.certPem, ca.certs[0] as (typeof ca.certs)[number]));
    assert.deepEqual(
      [...leaf.dnsNames],
      [
        "sidecar-injector",
        "sidecar-injector.sidecar-injector-system",
        "sidecar-injector.sidecar-injector-system.svc",
        "sidecar-injector.sidecar-injector-system.svc.cluster.local",
      ],
    );
    assert.deepEqual([...leaf.ipAddresses], ["127.0.0.1"]);

    // Nothing to do the second time: no writes, no new leaf.
    const writes = { ...kube.writes };
    await manager.kick();
    assert.deepEqual(kube.writes, writes);
    assert.equal(issued.length, 1);
  });

  test("two replicas starting together converge on one CA", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const a = harness(kube, clock);
    const b = harness(kube, clock);
    await Promise.all([a.manager.kick(), b.manager.kick()]);
    const ca = fromSecretData(kube.secret?.data);
    assert.equal(ca.certs.length, 1, "one CA in the Secret");
    const issuer = ca.certs[0] as (typeof ca.certs)[number];
    assert.ok(signedBy((a.issued.at(-1) as ServingCert).certPem, issuer));
    assert.ok(signedBy((b.issued.at(-1) as ServingCert).certPem, issuer));
    assert.equal(kube.writes.secret, 1);
  });

  test("CA renewal: same key appended, published first, leaves move to it only after the propagation delay", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const { manager, issued, metrics } = harness(kube, clock);
    await manager.kick();
    const first = fromSecretData(kube.secret?.data);

    clock.t += 2 * HOUR + 5 * MIN; // under a third of the CA's life left; the first leaf expired
    await manager.kick();
    const renewed = fromSecretData(kube.secret?.data);
    assert.equal(renewed.certs.length, 2);
    assert.equal(renewed.keyPem, first.keyPem, "the key is reused");
    for (const w of kube.webhook?.webhooks ?? [])
      assert.equal(w.caBundle, bundleOf(kube, clock.t), "both certificates published");
    const oldCa = renewed.certs[0] as (typeof renewed.certs)[number];
    const newCa = renewed.certs[1] as (typeof renewed.certs)[number];
    const renewal = issued.at(-1) as ServingCert;
    assert.equal(renewal.issuerFingerprint256, oldCa.fingerprint256, "the new CA is not used before it has propagated");
    assert.ok(renewal.notAfter <= oldCa.notAfter, "a leaf never outlives its issuer");

    clock.t += 11_000;
    await manager.kick();
    assert.equal(
      (issued.at(-1) as ServingCert).issuerFingerprint256,
      newCa.fingerprint256,
      "switched once published long enough",
    );
    const rotations = await metrics.rotations.get();
    assert.equal(
      rotations.values.find((v) => v.labels.kind === "ca")?.value,
      1,
      "one renewal (creation is not a rotation)",
    );
    assert.equal(
      rotations.values.find((v) => v.labels.kind === "serving")?.value,
      issued.length - 1,
      "renewals only, not the first certificate",
    );

    clock.t += HOUR; // the old CA expired: pruned from the Secret and the bundle
    await manager.kick();
    assert.equal(fromSecretData(kube.secret?.data).certs.length, 1);
    assert.equal(kube.webhook?.webhooks[0]?.caBundle, bundleOf(kube, clock.t));
  });

  test("a deleted Secret is recreated from memory; a wiped caBundle is restored", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const { manager } = harness(kube, clock);
    await manager.kick();
    const before = kube.secret?.data;
    kube.secret = undefined;
    for (const w of kube.webhook?.webhooks ?? []) delete w.caBundle;
    await manager.kick();
    assert.deepEqual((kube.secret as SecretObject | undefined)?.data, before, "same CA key and certificates");
    for (const w of kube.webhook?.webhooks ?? []) assert.equal(w.caBundle, bundleOf(kube, clock.t));
  });

  test("update conflicts are retried against the new resourceVersion", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const { manager } = harness(kube, clock);
    await manager.kick();
    clock.t += 2 * HOUR + 5 * MIN;
    kube.conflictsOnReplace = 2;
    await manager.kick();
    assert.equal(fromSecretData(kube.secret?.data).certs.length, 2);
    assert.equal(manager.status().lastError, undefined);
  });

  test("API server unreachable: keeps the certificate, renews the leaf from the CA in memory, reports the error", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    const { manager, issued, metrics } = harness(kube, clock);
    await manager.kick();
    kube.down = true;
    clock.t += 45 * MIN; // past two thirds of the leaf's life
    await manager.kick();
    assert.equal(issued.length, 2, "renewed without the API server");
    assert.match(manager.status().lastError ?? "", /ECONNREFUSED/);
    assert.ok(((await metrics.apiErrors.get()).values[0]?.value ?? 0) >= 1);
    kube.down = false;
    await manager.kick();
    assert.equal(manager.status().lastError, undefined);
  });

  test("API server unreachable from the start: the failure says there is no certificate yet, not one in hand", async () => {
    const kube = new FakeKube();
    kube.down = true;
    const logs = captureLogs();
    const { manager, issued } = harness(kube, { t: Date.now() }, {}, createLogger({ destination: logs.stream }));
    await manager.kick();
    assert.equal(issued.length, 0);
    const failed = logs.lines().find((l) => String(l.msg).startsWith("certificate reconcile failed"));
    assert.equal(failed?.msg, "certificate reconcile failed; no certificate yet, not ready until one is issued");
  });

  test("without a MutatingWebhookConfiguration there is nothing to publish, and a leaf is still issued", async () => {
    const kube = new FakeKube();
    kube.webhook = undefined;
    const clock = { t: Date.now() };
    const { manager, issued } = harness(kube, clock);
    await manager.kick();
    assert.equal(issued.length, 1);
    assert.equal(manager.status().publishedBundle, undefined);
  });

  test("by label: every MutatingWebhookConfiguration with the labels gets the caBundle, others do not", async () => {
    const kube = new FakeKube();
    kube.webhookLabels = { "app.kubernetes.io/name": "sidecar-injector" };
    kube.others = [
      {
        name: "canary",
        labels: { "app.kubernetes.io/name": "sidecar-injector", rev: "canary" },
        resourceVersion: 1,
        webhooks: [{ name: "c.example" }],
      },
      {
        name: "someone-else",
        labels: { "app.kubernetes.io/name": "other" },
        resourceVersion: 1,
        webhooks: [{ name: "o.example" }],
      },
    ];
    const clock = { t: Date.now() };
    const { manager } = harness(kube, clock, { webhookConfigSelector: "app.kubernetes.io/name=sidecar-injector" });
    await manager.kick();
    const bundle = bundleOf(kube, clock.t);
    for (const w of kube.webhook?.webhooks ?? []) assert.equal(w.caBundle, bundle);
    assert.equal(kube.others[0]?.webhooks[0]?.caBundle, bundle);
    assert.equal(kube.others[1]?.webhooks[0]?.caBundle, undefined, "not ours");
  });

  test("renewal points are configurable", async () => {
    const kube = new FakeKube();
    const clock = { t: Date.now() };
    // Serving certificates renewed at half their life; the CA when half of it is left.
    const { manager, issued } = harness(kube, clock, { servingRenewAfter: 0.5, caRenewWhenLeft: 0.5 });
    await manager.kick();
    clock.t += 29 * MIN;
    await manager.kick();
    assert.equal(issued.length, 1, "not yet at 29 of 60 minutes");
    clock.t += 2 * MIN;
    await manager.kick();
    assert.equal(issued.length, 2, "renewed past half of its life");
    assert.equal(fromSecretData(kube.secret?.data).certs.length, 1);
    clock.t += HOUR; // 1h31m of the CA's 3h: less than half left
    await manager.kick();
    assert.equal(fromSecretData(kube.secret?.data).certs.length, 2, "CA renewed with half of its life left");
  });
});
