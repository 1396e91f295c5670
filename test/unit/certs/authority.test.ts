import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import forge from "node-forge";
import {
  CA_SECRET_KEYS,
  CertError,
  caBundlePem,
  caNeedsRenewal,
  createCa,
  currentCa,
  fromSecretData,
  generateRsaKeyPair,
  leafNeedsRenewal,
  mintServingCert,
  parseDuration,
  pruneExpired,
  renewCa,
  servingDnsNames,
  signedBy,
  splitSans,
  toSecretData,
  type CaEntry,
  type CaState,
} from "../../../src/certs/authority.js";
import { boolean, extension, name, OID, sequence, signCertificate } from "../../../src/certs/der.js";

const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (ms: number): Date => new Date(T0.getTime() + ms);

let caA: CaState; // 30 days from T0
let caB: CaState; // another key, same validity

before(async () => {
  [caA, caB] = await Promise.all([
    createCa({ validityMs: 30 * DAY, now: T0 }),
    createCa({ validityMs: 30 * DAY, now: T0 }),
  ]);
});

function first(state: CaState): CaEntry {
  const c = state.certs[0];
  assert.ok(c, "the state has a certificate");
  return c;
}

function spki(pem: string): string {
  return new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }).toString("hex");
}

/** An entry with only the times that matter to the renewal checks. */
function timesOnly(notBefore: Date, notAfter: Date): CaEntry {
  return { certPem: "", notBefore, notAfter, serial: "", fingerprint256: "", subject: "" };
}

describe("createCa", () => {
  it("makes a self-signed CA certificate for the new key", () => {
    const entry = first(caA);
    assert.equal(caA.certs.length, 1);
    const x = new X509Certificate(entry.certPem);
    assert.equal(x.ca, true);
    assert.ok(x.checkIssued(x), "self-issued");
    assert.ok(x.verify(x.publicKey), "self-signed");
    assert.ok(x.checkPrivateKey(createPrivateKey(caA.keyPem)));
    assert.match(caA.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(x.subject, "CN=sidecar-injector-ca\nO=sidecar-injector");
    assert.equal(entry.subject, x.subject);
    assert.equal(entry.serial, x.serialNumber);
    assert.equal(entry.fingerprint256, x.fingerprint256);
    assert.ok(/^[0-7]/.test(x.serialNumber), `positive serial ${x.serialNumber}`);
  });

  it("marks basicConstraints and keyUsage critical, with keyCertSign and cRLSign only", () => {
    // Read with node-forge's ASN.1 parser, independent of the writer.
    const ext = extensionListOf(first(caA).certPem);
    assert.deepEqual(
      ext.map((e) => [e.oid, e.critical]),
      [
        ["2.5.29.19", true], // basicConstraints
        ["2.5.29.15", true], // keyUsage
        ["2.5.29.14", false], // subjectKeyIdentifier
      ],
    );
    // BasicConstraints ::= SEQUENCE { cA TRUE }
    assert.equal(Buffer.from(ext[0]?.value ?? "", "binary").toString("hex"), "30030101ff");
    // keyUsage: bits 5 (keyCertSign) and 6 (cRLSign), one unused bit; no digitalSignature, no keyEncipherment.
    assert.equal(Buffer.from(ext[1]?.value ?? "", "binary").toString("hex"), "03020106");
    const x = new X509Certificate(first(caA).certPem);
    assert.equal(x.publicKey.asymmetricKeyType, "ec", "a new CA key is ECDSA P-256");
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.equal(
      Buffer.from(ext[2]?.value ?? "", "binary")
        .subarray(2)
        .toString("hex"),
      ecPointSha1(x),
    );
  });

  it("is valid for the requested time, backdated by a minute", () => {
    const entry = first(caA);
    const x = new X509Certificate(entry.certPem);
    assert.equal(new Date(x.validFrom).toISOString(), at(-MIN).toISOString());
    assert.equal(new Date(x.validTo).toISOString(), at(30 * DAY).toISOString());
    assert.deepEqual(entry.notBefore, at(-MIN));
    assert.deepEqual(entry.notAfter, at(30 * DAY));
  });

  it("does not backdate a validity of seconds, and rounds to whole seconds", async () => {
    const st = await createCa({ validityMs: 3_700, now: at(2_500), commonName: "short" });
    const x = new X509Certificate(first(st).certPem);
    assert.equal(new Date(x.validFrom).toISOString(), at(2 * S).toISOString());
    assert.equal(new Date(x.validTo).toISOString(), at(5 * S).toISOString());
    assert.equal(x.subject, "CN=short\nO=sidecar-injector");
  });

  it("refuses a validity under a second", async () => {
    await assert.rejects(createCa({ validityMs: 999, now: T0 }), CertError);
    await assert.rejects(createCa({ validityMs: Number.NaN, now: T0 }), /at least one second/);
  });
});

describe("renewCa", () => {
  it("appends a new certificate for the same key and subject", () => {
    const renewed = renewCa(caA, { validityMs: 30 * DAY, now: at(20 * DAY) });
    assert.equal(renewed.keyPem, caA.keyPem);
    assert.equal(renewed.certs.length, 2);
    const [old, fresh] = renewed.certs;
    assert.ok(old && fresh);
    assert.equal(old, first(caA), "the old certificate stays first, unchanged");
    assert.notEqual(fresh.serial, old.serial);
    assert.notEqual(fresh.fingerprint256, old.fingerprint256);
    assert.equal(spki(fresh.certPem), spki(old.certPem));
    assert.equal(fresh.subject, old.subject);
    assert.deepEqual(fresh.notBefore, at(20 * DAY - MIN));
    assert.deepEqual(fresh.notAfter, at(50 * DAY));
    assert.equal(new X509Certificate(fresh.certPem).ca, true);
    assert.equal(caA.certs.length, 1, "the input is not modified");
  });

  it("keeps an RSA CA written by node-forge (before P-256): same key, same subject bytes, leaves chain to either", async () => {
    const keys = await generateRsaKeyPair();
    const key = forge.pki.privateKeyFromPem(keys.privateKey) as forge.pki.rsa.PrivateKey;
    const c = forge.pki.createCertificate();
    c.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    c.serialNumber = "4a";
    c.validity.notBefore = at(-MIN);
    c.validity.notAfter = at(30 * DAY);
    const subject = [
      { name: "commonName", value: "sidecar-injector-ca" },
      { name: "organizationName", value: "sidecar-injector" },
    ];
    c.setSubject(subject);
    c.setIssuer(subject);
    c.setExtensions([
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      { name: "subjectKeyIdentifier" },
    ]);
    c.sign(key, forge.md.sha256.create());
    const old = fromSecretData({
      [CA_SECRET_KEYS.cert]: Buffer.from(forge.pki.certificateToPem(c)).toString("base64"),
      [CA_SECRET_KEYS.key]: Buffer.from(keys.privateKey).toString("base64"),
    });
    const renewed = renewCa(old, { validityMs: 30 * DAY, now: at(20 * DAY) });
    const [oldEntry, newEntry] = renewed.certs;
    assert.ok(oldEntry && newEntry);
    const subjectDer = (pem: string): string => {
      const tbs = (
        forge.asn1.fromDer(forge.util.decode64(pem.replace(/-----[^-]+-----|\s/g, ""))).value as forge.asn1.Asn1[]
      )[0]?.value as forge.asn1.Asn1[];
      return forge.asn1.toDer(tbs[5] as forge.asn1.Asn1).getBytes();
    };
    assert.equal(subjectDer(newEntry.certPem), subjectDer(oldEntry.certPem), "the subject is copied byte for byte");
    assert.equal(new X509Certificate(newEntry.certPem).publicKey.asymmetricKeyType, "rsa");
    const leafOfOld = await mintServingCert(renewed, oldEntry, { dnsNames: ["a"], validityMs: DAY, now: at(20 * DAY) });
    const leafOfNew = await mintServingCert(renewed, newEntry, { dnsNames: ["a"], validityMs: DAY, now: at(20 * DAY) });
    for (const leaf of [leafOfOld, leafOfNew]) {
      assert.equal(signedBy(leaf.certPem, oldEntry), true);
      assert.equal(signedBy(leaf.certPem, newEntry), true);
      const aki = extensionsOf(leaf.certPem).get("2.5.29.35") ?? "";
      assert.ok(
        aki.endsWith(c.generateSubjectKeyIdentifier().getBytes()),
        "the authority key identifier is forge's subject key identifier",
      );
    }
  });

  it("keeps a custom subject unless told otherwise", async () => {
    const st = await createCa({ validityMs: DAY, now: T0, commonName: "custom-ca" });
    const again = renewCa(st, { validityMs: DAY, now: at(HOUR) });
    assert.equal(again.certs[1]?.subject, "CN=custom-ca\nO=sidecar-injector");
    const renamed = renewCa(st, { validityMs: DAY, now: at(HOUR), commonName: "other" });
    assert.equal(renamed.certs[1]?.subject, "CN=other\nO=sidecar-injector");
  });

  it("makes the first certificate for a state that has only a key", () => {
    const st = renewCa({ keyPem: caA.keyPem, certs: [] }, { validityMs: DAY, now: T0 });
    assert.equal(st.certs.length, 1);
    assert.equal(spki(first(st).certPem), spki(first(caA).certPem));
  });
});

describe("pruneExpired, currentCa and caBundlePem", () => {
  // Three certificates of one key: [T0-1m, T0+30d), [T0+20d-1m, T0+50d), [T0+40d-1m, T0+70d).
  let three: CaState;
  before(() => {
    three = renewCa(renewCa(caA, { validityMs: 30 * DAY, now: at(20 * DAY) }), {
      validityMs: 30 * DAY,
      now: at(40 * DAY),
    });
  });

  it("drops certificates whose notAfter has come, and may drop all", () => {
    assert.equal(pruneExpired(three, at(30 * DAY - 1)).certs.length, 3);
    const pruned = pruneExpired(three, at(30 * DAY));
    assert.deepEqual(
      pruned.certs.map((c) => c.serial),
      [three.certs[1]?.serial, three.certs[2]?.serial],
    );
    assert.equal(pruned.keyPem, three.keyPem);
    assert.equal(pruneExpired(three, at(70 * DAY)).certs.length, 0);
  });

  it("picks the newest certificate valid at the time", () => {
    assert.equal(currentCa(three, at(0))?.serial, three.certs[0]?.serial);
    assert.equal(currentCa(three, at(25 * DAY))?.serial, three.certs[1]?.serial);
    assert.equal(currentCa(three, at(45 * DAY))?.serial, three.certs[2]?.serial);
    assert.equal(currentCa(three, at(70 * DAY - 1))?.serial, three.certs[2]?.serial);
    assert.equal(currentCa(three, at(70 * DAY)), undefined, "all expired");
    assert.equal(currentCa(three, at(-2 * MIN)), undefined, "none valid yet");
  });

  it("goes by notBefore, and ignores a newer certificate that is not valid yet", () => {
    // Order by notBefore, not by position: put the newest first and ask before it starts.
    const shuffled: CaState = { keyPem: three.keyPem, certs: [...three.certs].reverse() };
    assert.equal(currentCa(shuffled, at(10 * DAY))?.serial, three.certs[0]?.serial);
    assert.equal(currentCa(shuffled, at(25 * DAY))?.serial, three.certs[1]?.serial, "by notBefore, not position");
  });

  it("bundles the unexpired certificates oldest first, each ending in a newline", () => {
    const bundle = caBundlePem(three, at(35 * DAY));
    assert.equal(bundle, `${three.certs[1]?.certPem}${three.certs[2]?.certPem}`);
    assert.ok(bundle.endsWith("-----END CERTIFICATE-----\n"));
    assert.equal(bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
    const noNewline: CaState = {
      keyPem: three.keyPem,
      certs: three.certs.map((c) => ({ ...c, certPem: c.certPem.trimEnd() })),
    };
    assert.equal(caBundlePem(noNewline, at(0)).match(/-----\n-----BEGIN/g)?.length, 2);
    assert.equal(caBundlePem(three, at(70 * DAY)), "");
  });
});

describe("caNeedsRenewal", () => {
  it("is true without a CA and for an expired one", () => {
    assert.equal(caNeedsRenewal(undefined, T0), true);
    const e = timesOnly(at(0), at(3 * S));
    assert.equal(caNeedsRenewal(e, at(3 * S)), true);
    assert.equal(caNeedsRenewal(e, at(10 * S)), true);
  });

  it("renews with less than a third left, not at exactly a third (few-second validity)", () => {
    const e = timesOnly(at(0), at(3 * S));
    assert.equal(caNeedsRenewal(e, at(0)), false);
    assert.equal(caNeedsRenewal(e, at(2 * S)), false, "exactly one third left");
    assert.equal(caNeedsRenewal(e, at(2 * S + 1)), true);
  });

  it("measures the lifetime without the backdate", () => {
    // Issued at T0 for 30 days, backdated a minute: a third is 10 days, from T0 + 20 days.
    const e = first(caA);
    assert.equal(caNeedsRenewal(e, at(20 * DAY)), false);
    assert.equal(caNeedsRenewal(e, at(20 * DAY + 1)), true);
    // Counting the backdated minute as lifetime would have moved the boundary by 20 s.
    assert.equal(caNeedsRenewal(e, at(20 * DAY - 19 * S)), false);
  });

  it("works on a real certificate of a few seconds", async () => {
    const st = await createCa({ validityMs: 6 * S, now: T0 });
    const e = currentCa(st, T0);
    assert.ok(e);
    assert.equal(caNeedsRenewal(e, at(4 * S)), false);
    assert.equal(caNeedsRenewal(e, at(4 * S + 1)), true);
  });

  it("takes another fraction, and refuses nonsense", () => {
    const e = timesOnly(at(0), at(10 * S));
    assert.equal(caNeedsRenewal(e, at(5 * S), 0.5), false);
    assert.equal(caNeedsRenewal(e, at(5 * S + 1), 0.5), true);
    assert.throws(() => caNeedsRenewal(e, T0, 1.5), CertError);
    assert.throws(() => caNeedsRenewal(e, T0, -0.1), /between 0 and 1/);
  });
});

describe("leafNeedsRenewal", () => {
  it("renews once two thirds have elapsed (few-second validity, no backdate)", () => {
    const c = { notBefore: at(0), notAfter: at(3 * S) };
    assert.equal(leafNeedsRenewal(c, at(0)), false);
    assert.equal(leafNeedsRenewal(c, at(2 * S - 1)), false);
    assert.equal(leafNeedsRenewal(c, at(2 * S)), true, "exactly two thirds elapsed");
    assert.equal(leafNeedsRenewal(c, at(3 * S)), true, "expired");
  });

  it("counts from the real issue time of a backdated certificate", () => {
    // Issued at T0 for a day: notBefore is T0 - 1 min; two thirds is 16 h after T0.
    const c = { notBefore: at(-MIN), notAfter: at(DAY) };
    assert.equal(leafNeedsRenewal(c, at(16 * HOUR - 1)), false);
    assert.equal(leafNeedsRenewal(c, at(16 * HOUR)), true);
  });

  it("takes another fraction", () => {
    const c = { notBefore: at(0), notAfter: at(10 * S) };
    assert.equal(leafNeedsRenewal(c, at(9 * S - 1), 0.9), false);
    assert.equal(leafNeedsRenewal(c, at(9 * S), 0.9), true);
    assert.throws(() => leafNeedsRenewal(c, T0, 2), CertError);
  });
});

/** The extensions of a certificate, in order: OID, criticality, the DER of extnValue's content (binary string). */
function extensionListOf(pem: string): { oid: string; critical: boolean; value: string }[] {
  const der = forge.util.decode64(pem.replace(/-----[^-]+-----|\s/g, ""));
  const cert = forge.asn1.fromDer(der);
  const tbs = (cert.value as forge.asn1.Asn1[])[0]?.value as forge.asn1.Asn1[];
  const explicit = tbs.find((v) => v.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && v.type === 3);
  return (((explicit?.value as forge.asn1.Asn1[])[0]?.value ?? []) as forge.asn1.Asn1[]).map((e) => {
    const parts = e.value as forge.asn1.Asn1[];
    return {
      oid: forge.asn1.derToOid(forge.util.createBuffer(parts[0]?.value as string)),
      critical: parts.length === 3 && (parts[1]?.value as string) === "\u00ff",
      value: parts[parts.length - 1]?.value as string,
    };
  });
}

/** The extensions of a certificate, by OID: the DER of each extnValue's content. */
function extensionsOf(pem: string): Map<string, string> {
  return new Map(extensionListOf(pem).map((e) => [e.oid, e.value]));
}

/** Hex SHA-1 of an EC certificate's uncompressed public point (its key identifier, RFC 5280 method 1). */
function ecPointSha1(x: X509Certificate): string {
  const point = x.publicKey.export({ format: "jwk" });
  return createHash("sha1")
    .update(
      Buffer.concat([
        Buffer.from([4]),
        Buffer.from(point.x ?? "", "base64url"),
        Buffer.from(point.y ?? "", "base64url"),
      ]),
    )
    .digest("hex");
}

describe("mintServingCert", () => {
  const dnsNames = servingDnsNames("injector", "system", "cluster.local");

  it("issues a serverAuth leaf with DNS and IP SANs, signed by the issuer", async () => {
    const issuer = first(caA);
    const leaf = await mintServingCert(caA, issuer, {
      dnsNames,
      ipAddresses: ["127.0.0.1", "::1"],
      validityMs: DAY,
      now: at(HOUR),
    });
    const x = new X509Certificate(leaf.certPem);
    assert.equal(x.ca, false);
    assert.equal(
      x.subjectAltName,
      "DNS:injector, DNS:injector.system, DNS:injector.system.svc, DNS:injector.system.svc.cluster.local, " +
        "IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
    assert.equal(x.checkIP("::1"), "::1");
    assert.equal(x.subject, "CN=injector\nO=sidecar-injector");
    assert.deepEqual(x.keyUsage, ["1.3.6.1.5.5.7.3.1"]); // extKeyUsage: serverAuth only
    assert.ok(x.checkPrivateKey(createPrivateKey(leaf.keyPem)));
    assert.ok(x.checkIssued(new X509Certificate(issuer.certPem)));
    assert.ok(x.verify(new X509Certificate(issuer.certPem).publicKey));
    assert.equal(signedBy(leaf.certPem, issuer), true);
    assert.equal(signedBy(leaf.certPem, first(caB)), false, "not by another CA");
    assert.equal(leaf.issuerFingerprint256, issuer.fingerprint256);
    assert.equal(leaf.serial, x.serialNumber);
    assert.deepEqual(leaf.dnsNames, dnsNames);
    assert.deepEqual(leaf.ipAddresses, ["127.0.0.1", "::1"]);
    assert.deepEqual(leaf.notBefore, at(HOUR - MIN));
    assert.deepEqual(leaf.notAfter, at(HOUR + DAY));

    // An ECDSA P-256 key (cheap handshakes), which node-forge cannot parse: read the DER.
    assert.equal(x.publicKey.asymmetricKeyType, "ec");
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const ext = extensionsOf(leaf.certPem);
    const keyUsage = ext.get("2.5.29.15") ?? "";
    const bits = keyUsage.charCodeAt(keyUsage.length - 1);
    assert.equal(bits & 0x80, 0x80, "digitalSignature");
    assert.equal(bits & 0x20, 0, "no keyEncipherment for an ECDSA key");
    assert.equal(bits & 0x04, 0, "no keyCertSign");
    const ski = Buffer.from(ecPointSha1(new X509Certificate(issuer.certPem)), "hex").toString("binary");
    assert.ok(ext.get("2.5.29.35")?.includes(ski), "the authority key identifier is the issuer's key identifier");
    const leafSki = ext.get("2.5.29.14") ?? "";
    const point = x.publicKey.export({ format: "jwk" });
    const expected = createHash("sha1")
      .update(
        Buffer.concat([
          Buffer.from([4]),
          Buffer.from(point.x ?? "", "base64url"),
          Buffer.from(point.y ?? "", "base64url"),
        ]),
      )
      .digest("binary");
    assert.ok(leafSki.endsWith(expected), "the subject key identifier is the SHA-1 of the leaf's public point");
  });

  it("never outlives its issuer, and backdates by what it really gets", async () => {
    const issuer = first(caA); // until T0 + 30 d
    const leaf = await mintServingCert(caA, issuer, { dnsNames: ["a"], validityMs: 365 * DAY, now: at(29 * DAY) });
    assert.deepEqual(leaf.notAfter, issuer.notAfter);
    assert.deepEqual(new Date(new X509Certificate(leaf.certPem).validTo), issuer.notAfter);
    assert.deepEqual(leaf.notBefore, at(29 * DAY - MIN));
    // Five seconds left on the issuer: no backdate, renewal after two thirds of those.
    const short = await mintServingCert(caA, issuer, { dnsNames: ["a"], validityMs: DAY, now: at(30 * DAY - 5 * S) });
    assert.deepEqual(short.notBefore, at(30 * DAY - 5 * S));
    assert.deepEqual(short.notAfter, issuer.notAfter);
    assert.equal(leafNeedsRenewal(short, at(30 * DAY - 2 * S)), false);
    assert.equal(leafNeedsRenewal(short, at(30 * DAY - S)), true);
  });

  it("refuses an issuer that is not the state's, or that has expired", async () => {
    await assert.rejects(
      mintServingCert(caA, first(caB), { dnsNames: ["a"], validityMs: DAY, now: T0 }),
      /not one of the CA's certificates/,
    );
    const forged: CaState = { keyPem: caA.keyPem, certs: caB.certs };
    await assert.rejects(
      mintServingCert(forged, first(caB), { dnsNames: ["a"], validityMs: DAY, now: T0 }),
      /does not match the CA key/,
    );
    await assert.rejects(
      mintServingCert(caA, first(caA), { dnsNames: ["a"], validityMs: DAY, now: at(30 * DAY) }),
      CertError,
    );
  });

  it("refuses bad names", async () => {
    const issuer = first(caA);
    await assert.rejects(mintServingCert(caA, issuer, { dnsNames: [], validityMs: DAY, now: T0 }), /at least one/);
    await assert.rejects(
      mintServingCert(caA, issuer, { dnsNames: ["10.0.0.1"], validityMs: DAY, now: T0 }),
      /not a DNS name/,
    );
    await assert.rejects(
      mintServingCert(caA, issuer, { dnsNames: ["a"], ipAddresses: ["a.b"], validityMs: DAY, now: T0 }),
      /not an IP address/,
    );
  });

  it("takes an IP address as the common name when there is no DNS name", async () => {
    const leaf = await mintServingCert(caA, first(caA), {
      dnsNames: [],
      ipAddresses: ["10.1.2.3"],
      validityMs: DAY,
      now: T0,
    });
    assert.equal(new X509Certificate(leaf.certPem).subject, "CN=10.1.2.3\nO=sidecar-injector");
  });
});

describe("CA renewal and TLS clients", () => {
  // Real time: the TLS client checks validity against the clock.
  const servers: tls.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  async function serve(certPem: string, keyPem: string): Promise<number> {
    const server = tls.createServer({ cert: certPem, key: keyPem }, (socket) => socket.end("ok"));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
  }

  function handshake(port: number, ca: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ca }, () => {
        let data = "";
        socket.setEncoding("utf8");
        socket.on("data", (d: string) => (data += d));
        socket.on("end", () => resolve(data));
      });
      socket.on("error", reject);
    });
  }

  it("accepts a leaf of the old CA certificate with only the renewed one, or the bundle, as trust", async () => {
    const now = new Date();
    const old = await createCa({ validityMs: DAY, now });
    const oldEntry = first(old);
    const leaf = await mintServingCert(old, oldEntry, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      validityMs: HOUR,
      now,
    });

    const renewed = renewCa(old, { validityMs: DAY, now });
    const newEntry = renewed.certs.find((c) => c.serial !== oldEntry.serial);
    assert.ok(newEntry);
    assert.equal(signedBy(leaf.certPem, newEntry), true, "same subject and key: the new certificate is an issuer too");

    const port = await serve(leaf.certPem, leaf.keyPem);
    assert.equal(await handshake(port, newEntry.certPem), "ok");
    assert.equal(await handshake(port, caBundlePem(renewed, now)), "ok");
    // And a CA with another key is refused: the handshakes above could fail.
    const other = await createCa({ validityMs: DAY, now });
    await assert.rejects(handshake(port, first(other).certPem), /self[- ]signed|unable to (get|verify)/i);
  });
});

describe("the Secret", () => {
  it("round-trips through base64 PEM data", () => {
    const st = renewCa(caA, { validityMs: 30 * DAY, now: at(20 * DAY) });
    const data = toSecretData(st);
    assert.deepEqual(Object.keys(data).sort(), [CA_SECRET_KEYS.cert, CA_SECRET_KEYS.key]);
    const crt = Buffer.from(data[CA_SECRET_KEYS.cert] ?? "", "base64").toString("utf8");
    assert.equal(crt, `${st.certs[0]?.certPem}${st.certs[1]?.certPem}`);
    assert.equal(Buffer.from(data[CA_SECRET_KEYS.key] ?? "", "base64").toString("utf8"), st.keyPem);
    const back = fromSecretData(data);
    assert.deepEqual(back, st);
  });

  it("reads a SEC 1 EC key or a PKCS#1 RSA key and sorts certificates oldest first", async () => {
    const rsa = renewCa(
      { keyPem: (await generateRsaKeyPair()).privateKey, certs: [] },
      { validityMs: 30 * DAY, now: T0 },
    );
    for (const [state, type] of [
      [caA, "sec1"],
      [rsa, "pkcs1"],
    ] as const) {
      const st = renewCa(state, { validityMs: 30 * DAY, now: at(20 * DAY) });
      const legacy = createPrivateKey(st.keyPem).export({ type, format: "pem" }).toString();
      const reversed = [...st.certs]
        .reverse()
        .map((c) => c.certPem)
        .join("");
      const back = fromSecretData({
        [CA_SECRET_KEYS.cert]: Buffer.from(reversed).toString("base64"),
        [CA_SECRET_KEYS.key]: Buffer.from(legacy).toString("base64"),
      });
      assert.deepEqual(
        back.certs.map((c) => c.serial),
        st.certs.map((c) => c.serial),
      );
      assert.equal(back.keyPem, st.keyPem);
    }
  });

  it("refuses a CA key of another curve or type, naming it", () => {
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(
      () => fromSecretData({ [CA_SECRET_KEYS.key]: Buffer.from(p384).toString("base64") }),
      /is an ec secp384r1 key; only RSA and EC P-256 keys are supported/,
    );
    assert.throws(
      () => fromSecretData({ [CA_SECRET_KEYS.key]: Buffer.from(ed).toString("base64") }),
      /is a ed25519 key; only RSA and EC P-256/,
    );
  });

  it("keeps the key when there are no certificates", () => {
    const key = Buffer.from(caA.keyPem).toString("base64");
    assert.deepEqual(fromSecretData({ [CA_SECRET_KEYS.key]: key }), { keyPem: caA.keyPem, certs: [] });
    assert.deepEqual(fromSecretData({ [CA_SECRET_KEYS.key]: key, [CA_SECRET_KEYS.cert]: "" }).certs, []);
  });

  describe("names what is wrong", () => {
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const data = (cert: string, key: string): Record<string, string> => ({
      [CA_SECRET_KEYS.cert]: b64(cert),
      [CA_SECRET_KEYS.key]: b64(key),
    });
    const cases: [string, () => Record<string, string> | undefined, RegExp][] = [
      ["no data", () => undefined, /no data/],
      ["no key", () => ({ [CA_SECRET_KEYS.cert]: b64(first(caA).certPem) }), /missing ca\.key/],
      ["key not base64", () => ({ [CA_SECRET_KEYS.cert]: "", [CA_SECRET_KEYS.key]: "%%%" }), /ca\.key is not base64/],
      ["key not PEM", () => data(first(caA).certPem, "nope"), /ca\.key is not a readable PEM private key/],
      ["no PEM certificate", () => data("garbage", caA.keyPem), /ca\.crt holds no PEM certificate/],
      [
        "broken certificate",
        () => data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", caA.keyPem),
        /ca\.crt certificate #1 is not a readable certificate/,
      ],
      ["key mismatch", () => data(first(caA).certPem + first(caB).certPem, caA.keyPem), /#2 .*does not match ca\.key/],
      ["not a CA", () => data(leafPem, caA.keyPem), /#1 .*is not a CA certificate/],
    ];
    let leafPem = "";
    before(async () => {
      leafPem = (await mintServingCert(caA, first(caA), { dnsNames: ["a"], validityMs: DAY, now: T0 })).certPem;
    });
    for (const [name, input, message] of cases) {
      it(name, () => {
        assert.throws(
          () => fromSecretData(input()),
          (e: unknown) => e instanceof CertError && e.code === "ERR_CERT" && message.test(e.message),
        );
      });
    }
  });

  it("refuses a CA certificate whose key is the same but not self-signed by it", () => {
    // A CA certificate for caA's key, signed by caB's key: public keys match, signature does not.
    const x = name([[OID.commonName, "x"]]);
    const pem = signCertificate(
      {
        serial: Buffer.from([1]),
        issuer: x,
        subject: x,
        notBefore: T0,
        notAfter: at(DAY),
        publicKey: createPublicKey(caA.keyPem),
        extensions: [extension(OID.basicConstraints, true, sequence(boolean(true)))],
      },
      createPrivateKey(caB.keyPem),
    );
    assert.throws(
      () =>
        fromSecretData({
          [CA_SECRET_KEYS.cert]: Buffer.from(pem).toString("base64"),
          [CA_SECRET_KEYS.key]: Buffer.from(caA.keyPem).toString("base64"),
        }),
      /not signed by ca\.key/,
    );
  });
});

describe("names", () => {
  it("lists a Service's DNS names", () => {
    assert.deepEqual(servingDnsNames("svc", "ns", "cluster.local"), [
      "svc",
      "svc.ns",
      "svc.ns.svc",
      "svc.ns.svc.cluster.local",
    ]);
    assert.deepEqual(servingDnsNames("svc", "ns", "example.org.").at(-1), "svc.ns.svc.example.org");
  });

  it("sorts extra names into DNS names and IP addresses", () => {
    assert.deepEqual(splitSans(["localhost", "127.0.0.1", "::1", "a.example", " ", "localhost", "10.0.0.300"]), {
      dnsNames: ["localhost", "a.example", "10.0.0.300"],
      ipAddresses: ["127.0.0.1", "::1"],
    });
  });

  it("signedBy is false for garbage", () => {
    assert.equal(signedBy("not a certificate", first(caA)), false);
    assert.equal(signedBy(first(caA).certPem, first(caA)), true);
    assert.equal(signedBy(first(caB).certPem, first(caA)), false);
  });
});

describe("parseDuration", () => {
  const good: [string, number][] = [
    ["30s", 30 * S],
    ["10m", 10 * MIN],
    ["12h", 12 * HOUR],
    ["7d", 7 * DAY],
    ["5y", 5 * 365 * DAY],
    ["1h30m", 90 * MIN],
    ["1d12h", 36 * HOUR],
    ["250ms", 250],
    ["1.5h", 90 * MIN],
    ["1500", 1500],
    [" 2m ", 2 * MIN],
  ];
  for (const [text, ms] of good) {
    it(`reads ${JSON.stringify(text)}`, () => assert.equal(parseDuration(text), ms));
  }
  for (const bad of ["", "abc", "10x", "-5s", "1.5", "h", "5 m", "1h-30m", "99999999999999999999y"]) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseDuration(bad), CertError));
  }
});
