import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { ipBytes } from "../../../src/certs/authority.js";
import {
  DerError,
  keyIdentifier,
  name,
  namedBits,
  OID,
  oid,
  sequence,
  signCertificate,
  subjectKeyIdentifierOf,
  subjectOf,
  time,
  unsignedInteger,
} from "../../../src/certs/der.js";
import { EC_KEY_PEM, EXPECTED, RSA_KEY_PEM, tbsAndAlgorithm, writeFixedCertificates } from "./der-fixtures.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("DER", () => {
  it("writes object identifiers, integers and named bits as X.690 says", () => {
    assert.equal(hex(oid("1.2.840.113549.1.1.11")), "06092a864886f70d01010b");
    assert.equal(hex(oid("2.5.29.19")), "0603551d13");
    assert.throws(() => oid("1"), DerError);
    assert.equal(hex(unsignedInteger(Buffer.from([0x80]))), "02020080", "a leading zero keeps it positive");
    assert.equal(hex(unsignedInteger(Buffer.from([0, 0, 0x7f]))), "02017f", "leading zeros dropped");
    assert.equal(hex(namedBits([0])), "03020780");
    assert.equal(hex(namedBits([0, 2])), "030205a0");
    assert.equal(hex(namedBits([5, 6])), "03020106");
  });

  it("writes UTCTime through 2049 and GeneralizedTime from 2050", () => {
    assert.equal(
      Buffer.from(time(new Date("2049-12-31T23:59:59Z")))
        .subarray(2)
        .toString(),
      "491231235959Z",
    );
    assert.equal(time(new Date("2049-12-31T23:59:59Z"))[0], 0x17);
    assert.equal(
      Buffer.from(time(new Date("2050-01-01T00:00:00Z")))
        .subarray(2)
        .toString(),
      "20500101000000Z",
    );
    assert.equal(time(new Date("2050-01-01T00:00:00Z"))[0], 0x18);
  });

  it("signs a certificate that crypto.X509Certificate reads back, dates beyond 2050 included", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const subject = name([
      [OID.commonName, "test ca"],
      [OID.organizationName, "ünïcode"],
    ]);
    const pem = signCertificate(
      {
        serial: Buffer.from([0x42]),
        issuer: subject,
        subject,
        notBefore: new Date("2030-01-01T00:00:00Z"),
        notAfter: new Date("2060-01-01T00:00:00Z"),
        publicKey,
        extensions: [],
      },
      privateKey,
    );
    const x = new X509Certificate(pem);
    assert.equal(x.subject, "CN=test ca\nO=ünïcode");
    assert.equal(new Date(x.validTo).toISOString(), "2060-01-01T00:00:00.000Z");
    assert.equal(x.serialNumber, "42");
    assert.ok(x.verify(publicKey));
    assert.equal(hex(subjectOf(x.raw)), hex(subject));
    assert.equal(subjectKeyIdentifierOf(x.raw), undefined, "no extension, no identifier");
  });

  it("refuses a key it does not sign with, naming it", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const subject = name([[OID.commonName, "x"]]);
    assert.throws(
      () =>
        signCertificate(
          {
            serial: Buffer.from([1]),
            issuer: subject,
            subject,
            notBefore: new Date(),
            notAfter: new Date(),
            publicKey,
            extensions: [],
          },
          privateKey,
        ),
      /a ed25519 key does not sign certificates here/,
    );
  });

  it("reads truncated input as an error, not a crash", () => {
    assert.throws(() => subjectOf(Buffer.from([0x30, 0x82, 0x10])), DerError);
    assert.throws(() => subjectOf(Buffer.from([0x30, 0x03, 0x02, 0x01])), DerError);
  });

  it("gives the 4 or 16 bytes of an IP address", () => {
    assert.equal(hex(ipBytes("10.1.2.3")), "0a010203");
    assert.equal(hex(ipBytes("::1")), "00000000000000000000000000000001");
    assert.equal(hex(ipBytes("2001:db8::8:800:200c:417a")), "20010db8000000000008080020 0c417a".replace(" ", ""));
    assert.equal(hex(ipBytes("::ffff:1.2.3.4")), "00000000000000000000ffff01020304");
    assert.equal(hex(ipBytes("fe80::")), "fe800000000000000000000000000000");
  });
});

describe("DER of whole certificates", () => {
  const written = writeFixedCertificates();
  const raw = (pem: string): Buffer => new X509Certificate(pem).raw;
  const rsaPublic = createPublicKey(createPrivateKey(RSA_KEY_PEM));
  const ecPublic = createPublicKey(createPrivateKey(EC_KEY_PEM));

  it("writes, for fixed inputs, the bytes the hand-written encoder wrote (RSA-signed ones whole)", () => {
    assert.equal(hex(raw(written.rsaCa)), EXPECTED.rsaCa);
    assert.equal(hex(raw(written.leafOfRsaCa)), EXPECTED.leafOfRsaCa);
  });

  it("writes, for fixed inputs, the same bytes up to an ECDSA signature, which verifies", () => {
    for (const [pem, expected] of [
      [written.ecCa, EXPECTED.ecCa],
      [written.leafOfEcCa, EXPECTED.leafOfEcCa],
    ] as const) {
      assert.equal(hex(tbsAndAlgorithm(raw(pem))), hex(tbsAndAlgorithm(Buffer.from(expected, "hex"))));
      assert.ok(new X509Certificate(pem).verify(ecPublic));
    }
    assert.notEqual(hex(tbsAndAlgorithm(raw(written.ecCa))), hex(raw(written.ecCa)), "the signature is left out");
  });

  it("reads back the subject, its key identifier and a key's identifier as before", () => {
    assert.equal(hex(subjectOf(raw(written.rsaCa))), EXPECTED.subject);
    assert.equal(hex(subjectKeyIdentifierOf(raw(written.rsaCa)) ?? Buffer.alloc(0)), EXPECTED.ski);
    assert.equal(hex(keyIdentifier(rsaPublic)), EXPECTED.kidRsa);
    assert.equal(hex(keyIdentifier(ecPublic)), EXPECTED.kidEc);
    assert.equal(hex(subjectKeyIdentifierOf(raw(written.ecCa)) ?? Buffer.alloc(0)), EXPECTED.kidEc);
  });

  it("writes certificates that crypto.X509Certificate reads and chains", () => {
    const rsaCa = new X509Certificate(written.rsaCa);
    const leaf = new X509Certificate(written.leafOfRsaCa);
    assert.equal(rsaCa.subject, "CN=sidecar-injector-ca\nO=sïdecar ünïcode");
    assert.equal(rsaCa.serialNumber, "C3A1B2C3D4E5F60718293A4B5C6D7E8F");
    assert.equal(new Date(rsaCa.validFrom).toISOString(), "2026-11-29T15:00:00.000Z", "whole seconds");
    assert.equal(new Date(rsaCa.validTo).toISOString(), "2056-11-29T15:00:00.000Z");
    assert.ok(rsaCa.ca);
    assert.ok(leaf.checkIssued(rsaCa));
    assert.ok(leaf.verify(rsaPublic));
    assert.ok(!leaf.ca);
    assert.equal(
      leaf.subjectAltName,
      "DNS:sidecar-injector, DNS:sidecar-injector.istio-system, DNS:sidecar-injector.istio-system.svc, DNS:sidecar-injector.istio-system.svc.cluster.local, IP Address:10.96.0.17, IP Address:2001:DB8:0:0:0:0:0:1",
    );
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    const ecLeaf = new X509Certificate(written.leafOfEcCa);
    assert.ok(ecLeaf.checkIssued(new X509Certificate(written.ecCa)));
    assert.equal(ecLeaf.serialNumber, "80");
    assert.equal(new X509Certificate(written.ecCa).serialNumber, "7F");
  });

  const openssl = spawnSync("openssl", ["version"], { encoding: "utf8" });
  it(
    "writes certificates that openssl x509 -text reads",
    { skip: openssl.status === 0 ? false : "no openssl on this machine" },
    () => {
      const text = (pem: string): string => {
        const r = spawnSync("openssl", ["x509", "-noout", "-text"], { input: pem, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      const ca = text(written.rsaCa);
      assert.match(ca, /Signature Algorithm: sha256WithRSAEncryption/);
      assert.match(ca, /Not After : Nov 29 15:00:00 2056 GMT/);
      assert.match(ca, /CA:TRUE/);
      assert.match(ca, /Certificate Sign, CRL Sign/);
      const leaf = text(written.leafOfEcCa);
      assert.match(leaf, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(leaf, /Not Before: Jan {2}1 00:00:00 2050 GMT/);
      assert.match(leaf, /Digital Signature, Key Encipherment/);
      assert.match(leaf, /TLS Web Server Authentication/);
      assert.match(
        leaf,
        /DNS:sidecar-injector\.istio-system\.svc\.cluster\.local, IP Address:10\.96\.0\.17, IP Address:2001:DB8:0:0:0:0:0:1/,
      );
      assert.match(text(written.ecCa), /Not Before: Jan {2}2 03:04:05 1999 GMT/);
    },
  );
});

describe("DER through node-forge's asn1 module", () => {
  it("refuses DER given in that would not be copied byte for byte, and names what is wrong", () => {
    const der = new X509Certificate(writeFixedCertificates().rsaCa).raw;
    assert.equal(hex(der.subarray(0, 4)), "30820345", "a long-form length to widen");
    const wider = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]);
    assert.throws(
      () => subjectOf(wider),
      (e: unknown) => e instanceof DerError && /is not DER/.test(e.message),
    );
    const subject = subjectOf(der);
    const berSubject = Buffer.concat([Buffer.from([0x30, 0x81]), subject.subarray(1)]);
    assert.throws(() => sequence(berSubject), /is not DER/);
    assert.throws(() => sequence(Buffer.from([0x05])), DerError, "truncated");
    assert.throws(() => subjectOf(Buffer.from([0x30, 0x80, 0x30, 0x00, 0x00, 0x00])), DerError, "indefinite length");
    assert.throws(() => subjectOf(Buffer.from([0x3f, 0x81, 0x01, 0x00])), DerError, "multi-byte tag");
  });

  it("refuses object identifiers X.660 does not allow", () => {
    assert.throws(() => oid("3.1"), DerError);
    assert.throws(() => oid("1.40.1"), DerError);
    assert.throws(() => oid("1.2.x"), DerError);
    assert.throws(() => oid("1.2.4294967296"), DerError);
    assert.equal(hex(oid("2.999.3")), "0603883703");
  });

  it("loads only lib/asn1.js of node-forge, and only when a certificate is written", () => {
    const script = `
      import { createRequire } from "node:module";
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes("node-forge")).map((p) => p.replace(/.*node-forge[\\\\/]/, "")).sort();
      const der = await import(${JSON.stringify(new URL("../../../src/certs/der.ts", import.meta.url).href)});
      const before = loaded();
      der.name([[der.OID.commonName, "x"]]);
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      cwd: new URL("../../..", import.meta.url),
    });
    assert.equal(r.status, 0, r.stderr);
    const { before, after } = JSON.parse(r.stdout) as { before: string[]; after: string[] };
    assert.deepEqual(before, [], "nothing of node-forge on import");
    assert.ok(after.includes("lib/asn1.js"), after.join(", "));
    assert.ok(
      !after.includes("lib/index.js") && !after.includes("lib/x509.js") && !after.includes("lib/pki.js"),
      after.join(", "),
    );
  });
});
