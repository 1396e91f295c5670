import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import forge from "node-forge";
import {
  LOCAL_CERT_FILES,
  ensureLocalCertificates,
  generateRsaKeyPair,
  issueCaCertificate,
  issueServingCertificate,
  leafProblem,
  openLocalSource,
  writeAtomically,
} from "../../../src/certs/local.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { createMetrics } from "../../../src/telemetry/metrics.js";
import { captureLogs } from "../../support/logs.js";

const DAY = 24 * 60 * 60 * 1000;
let root: string;
let n = 0;
const freshDir = (): string => join(root, `c${++n}`);

before(async () => {
  root = await mkdtemp(join(tmpdir(), "sidecar-injector-certs-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("ensureLocalCertificates", () => {
  it("generates a CA and a serving certificate for localhost and 127.0.0.1", async () => {
    const dir = freshDir();
    const got = await ensureLocalCertificates(dir, { extraNames: ["injector.test", "::1"] });
    assert.deepEqual(got.generated, { ca: true, leaf: true });

    const ca = new X509Certificate(await readFile(join(dir, LOCAL_CERT_FILES.caCert)));
    const leaf = new X509Certificate(await readFile(join(dir, LOCAL_CERT_FILES.cert)));
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca));
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.checkHost("localhost"), "localhost");
    assert.equal(leaf.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(leaf.checkHost("injector.test"), "injector.test");
    assert.equal(leaf.checkIP("::1"), "::1");
    assert.equal(leaf.checkHost("example.com"), undefined);
    assert.match(leaf.subjectAltName ?? "", /DNS:localhost/);
    assert.match(leaf.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]); // extKeyUsage serverAuth
    assert.ok(leaf.checkPrivateKey(createPrivateKey(await readFile(join(dir, LOCAL_CERT_FILES.key)))));
    assert.equal(got.cert, await readFile(join(dir, LOCAL_CERT_FILES.cert), "utf8"));
    assert.equal(got.ca, await readFile(join(dir, LOCAL_CERT_FILES.caCert), "utf8"));

    // Leaf about a year, CA about five years.
    const leafDays = (Date.parse(leaf.validTo) - Date.now()) / DAY;
    const caDays = (Date.parse(ca.validTo) - Date.now()) / DAY;
    assert.ok(leafDays > 364 && leafDays < 366, `leaf valid for ${leafDays} days`);
    assert.ok(caDays > 5 * 365 - 1 && caDays < 5 * 365 + 1, `CA valid for ${caDays} days`);
    // A positive serial.
    assert.ok(/^[0-7]/.test(leaf.serialNumber), leaf.serialNumber);
  });

  it("writes private keys with mode 0600", async () => {
    const dir = freshDir();
    await ensureLocalCertificates(dir);
    for (const f of [LOCAL_CERT_FILES.caKey, LOCAL_CERT_FILES.key]) {
      assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
    }
    assert.equal((await stat(join(dir, LOCAL_CERT_FILES.cert))).mode & 0o077, 0o044);
  });

  it("reuses valid files on a second call", async () => {
    const dir = freshDir();
    const first = await ensureLocalCertificates(dir);
    const second = await ensureLocalCertificates(dir);
    assert.deepEqual(second.generated, { ca: false, leaf: false });
    assert.equal(second.reason, "");
    assert.equal(second.cert, first.cert);
    assert.equal(second.key, first.key);
    assert.equal(second.ca, first.ca);
  });

  it("tightens a key file that was loosened, when reusing it", async () => {
    const dir = freshDir();
    await ensureLocalCertificates(dir);
    await chmod(join(dir, LOCAL_CERT_FILES.key), 0o644);
    const again = await ensureLocalCertificates(dir);
    assert.equal(again.generated.leaf, false);
    assert.equal((await stat(join(dir, LOCAL_CERT_FILES.key))).mode & 0o777, 0o600);
  });

  it("reissues an expired serving certificate from the same CA", async () => {
    const dir = freshDir();
    const twoYearsAgo = new Date(Date.now() - 2 * 365 * DAY);
    const old = await ensureLocalCertificates(dir, { now: twoYearsAgo });
    assert.ok(new Date(new X509Certificate(old.cert).validTo) < new Date(), "the first leaf is expired by now");

    const renewed = await ensureLocalCertificates(dir);
    assert.deepEqual(renewed.generated, { ca: false, leaf: true });
    assert.match(renewed.reason, /has expired/);
    assert.equal(renewed.ca, old.ca);
    const leaf = new X509Certificate(renewed.cert);
    assert.ok(new Date(leaf.validTo).getTime() > Date.now() + 300 * DAY);
    assert.ok(leaf.verify(new X509Certificate(renewed.ca).publicKey));
  });

  it("renews the leaf once two thirds of its year have passed, not before", async () => {
    const dir = freshDir();
    const now = Date.now();
    await ensureLocalCertificates(dir, { now: new Date(now) });
    const early = await ensureLocalCertificates(dir, { now: new Date(now + 240 * DAY) });
    assert.equal(early.generated.leaf, false);
    const renewed = await ensureLocalCertificates(dir, { now: new Date(now + 245 * DAY) });
    assert.equal(renewed.generated.leaf, true);
    assert.match(renewed.reason, /due for renewal/);
  });

  it("renews a CA with less than a third of its life left with the same key, keeping the old one trusted", async () => {
    const dir = freshDir();
    const now = Date.now();
    const old = await ensureLocalCertificates(dir, { now: new Date(now) });
    const oldKey = await readFile(join(dir, LOCAL_CERT_FILES.caKey), "utf8");
    const later = new Date(now + 3.5 * 365 * DAY); // 1.5 of 5 years left
    const renewed = await ensureLocalCertificates(dir, { now: later });
    assert.deepEqual(renewed.generated, { ca: true, leaf: true });
    assert.match(renewed.reason, /CA certificate is due for renewal/);
    assert.equal(await readFile(join(dir, LOCAL_CERT_FILES.caKey), "utf8"), oldKey);
    assert.ok(renewed.ca.startsWith(old.ca), "the old CA certificate stays first in ca.crt");
    assert.equal(renewed.ca.match(/BEGIN CERTIFICATE/g)?.length, 2);
    const [oldCa, newCa] = renewed.ca.split(/(?<=-----END CERTIFICATE-----\n)/).map((p) => new X509Certificate(p));
    assert.ok(oldCa && newCa);
    assert.ok(newCa.publicKey.equals(oldCa.publicKey));
    assert.ok(new X509Certificate(renewed.cert).verify(newCa.publicKey));
    assert.ok(new Date(newCa.validTo).getTime() > later.getTime() + 4 * 365 * DAY);
    // Nothing more to do right after.
    const again = await ensureLocalCertificates(dir, { now: later });
    assert.deepEqual(again.generated, { ca: false, leaf: false });
  });

  it("replaces an expired CA and the leaf with it", async () => {
    const dir = freshDir();
    const old = await ensureLocalCertificates(dir, { now: new Date(Date.now() - 6 * 365 * DAY) });
    const renewed = await ensureLocalCertificates(dir);
    assert.deepEqual(renewed.generated, { ca: true, leaf: true });
    assert.notEqual(renewed.ca, old.ca);
    assert.ok(new X509Certificate(renewed.cert).checkIssued(new X509Certificate(renewed.ca)));
  });

  it("reissues a leaf that another CA signed", async () => {
    const a = freshDir();
    const b = freshDir();
    await ensureLocalCertificates(a);
    await ensureLocalCertificates(b);
    for (const f of [LOCAL_CERT_FILES.cert, LOCAL_CERT_FILES.key]) {
      await writeFile(join(a, f), await readFile(join(b, f)));
    }
    const fixed = await ensureLocalCertificates(a);
    assert.deepEqual(fixed.generated, { ca: false, leaf: true });
    assert.match(fixed.reason, /not signed by the CA/);
  });

  it("reissues the leaf when a required name is missing", async () => {
    const dir = freshDir();
    await ensureLocalCertificates(dir);
    const again = await ensureLocalCertificates(dir, { extraNames: ["injector.example"] });
    assert.equal(again.generated.leaf, true);
    assert.match(again.reason, /does not cover injector\.example/);
    assert.equal(new X509Certificate(again.cert).checkHost("injector.example"), "injector.example");
  });

  it("replaces garbage files", async () => {
    const dir = freshDir();
    await ensureLocalCertificates(dir);
    await writeFile(join(dir, LOCAL_CERT_FILES.caCert), "not a certificate");
    const again = await ensureLocalCertificates(dir);
    assert.deepEqual(again.generated, { ca: true, leaf: true });
    assert.match(again.reason, /cannot be read/);
  });

  it("says so, as a warning, when a CA that was there is replaced by a new one; at info level otherwise", async () => {
    const dir = freshDir();
    const start = async (): Promise<Record<string, unknown>[]> => {
      const logs = captureLogs();
      const source = await openLocalSource(dir, {
        logger: createLogger({ destination: logs.stream }),
        metrics: createMetrics(),
      });
      source.stop();
      return logs.lines();
    };
    const first = await start();
    assert.deepEqual(
      first.map((l) => [l.level, l.msg]),
      [[30, "local certificates generated"]],
    );
    await writeFile(join(dir, LOCAL_CERT_FILES.caCert), "not a certificate");
    const replaced = await start();
    assert.equal(replaced[0]?.level, 40);
    assert.match(String(replaced[0]?.msg), /new CA: trust the new ca\.crt/);
    const reused = await start();
    assert.deepEqual(
      reused.map((l) => [l.level, l.msg]),
      [[30, "local certificates reused"]],
    );
    // Half a CA (its key gone) is replaced too, and said so.
    await rm(join(dir, LOCAL_CERT_FILES.caKey));
    const halved = await start();
    assert.equal(halved[0]?.level, 40);
    assert.match(String(halved[0]?.reason), /ca\.key is missing/);
  });
});

describe("issueServingCertificate", () => {
  it("never outlives its CA", async () => {
    const now = new Date();
    const caKeys = await generateRsaKeyPair();
    const caCert = issueCaCertificate({ keys: caKeys, now, days: 10 });
    const keys = await generateRsaKeyPair();
    const cert = issueServingCertificate({ keys, caCert, caKey: caKeys.privateKey, names: ["localhost"], now });
    assert.equal(new X509Certificate(cert).validTo, new X509Certificate(caCert).validTo);
    // forge reads it back too, with the authority key id pointing at the CA.
    const parsed = forge.pki.certificateFromPem(cert);
    assert.ok(parsed.getExtension("authorityKeyIdentifier"));
    assert.equal(leafProblem(caCert, cert, keys.privateKey, ["localhost"], now), undefined);
    assert.match(leafProblem(caCert, cert, caKeys.privateKey, ["localhost"], now) ?? "", /key does not match/);
  });
});

describe("writeAtomically", () => {
  it("leaves no temporary file behind when the write fails", async () => {
    const dir = freshDir();
    // The target is a directory that is not empty: the rename into its place fails.
    await mkdir(join(dir, "ca.key", "inside"), { recursive: true });
    await assert.rejects(writeAtomically(join(dir, "ca.key"), "secret", 0o600));
    assert.deepEqual(await readdir(dir), ["ca.key"]);
    // And one that works leaves only the file.
    await writeAtomically(join(dir, "tls.crt"), "cert", 0o644);
    assert.deepEqual((await readdir(dir)).sort(), ["ca.key", "tls.crt"]);
  });
});
