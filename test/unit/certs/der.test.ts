import assert from "node:assert/strict";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { ipBytes } from "../../../src/certs/authority.js";
import { DerError, name, namedBits, OID, oid, signCertificate, subjectKeyIdentifierOf, subjectOf, time, unsignedInteger } from "../../../src/certs/der.js";

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
    assert.equal(Buffer.from(time(new Date("2049-12-31T23:59:59Z"))).subarray(2).toString(), "491231235959Z");
    assert.equal(time(new Date("2049-12-31T23:59:59Z"))[0], 0x17);
    assert.equal(Buffer.from(time(new Date("2050-01-01T00:00:00Z"))).subarray(2).toString(), "20500101000000Z");
    assert.equal(time(new Date("2050-01-01T00:00:00Z"))[0], 0x18);
  });

  it("signs a certificate that crypto.X509Certificate reads back, dates beyond 2050 included", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const subject = name([
      [OID.commonName, "test ca"],
      [OID.organizationName, "ünïcode"],
    ]);
    const pem = signCertificate({ serial: Buffer.from([0x42]), issuer: subject, subject, notBefore: new Date("2030-01-01T00:00:00Z"), notAfter: new Date("2060-01-01T00:00:00Z"), publicKey, extensions: [] }, privateKey);
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
      () => signCertificate({ serial: Buffer.from([1]), issuer: subject, subject, notBefore: new Date(), notAfter: new Date(), publicKey, extensions: [] }, privateKey),
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
