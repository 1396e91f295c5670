// Fixed keys and inputs for certificates whose bytes are pinned in der.test.ts: what the writer
// produced for them, taken from the hand-written DER encoder that der.ts replaced, so that any
// byte the ASN.1 library writes differently shows. RSA PKCS#1 v1.5 signatures are deterministic,
// so a certificate an RSA key signs is pinned whole; ECDSA signatures are not (a random k), so
// one an EC key signs is pinned up to its signature, which is verified instead.

import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import {
  boolean,
  dnsName,
  extension,
  implicit,
  ipAddress,
  keyIdentifier,
  name,
  namedBits,
  octetString,
  oid,
  OID,
  sequence,
  signCertificate,
} from "../../../src/certs/der.js";

export const RSA_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDYYr1AlHk7hpa+
MsZlECjq19TodThpFP6YHRGA+l2Ae9FqCNvurUrjp4T0MJZe5FzFInHAvL07Jr3O
W+St5ug09YWnNHAZTDxDQkwA2upRrws75KnVfwUYo9iyPYCL9tBrZgEQjk7sYI++
ZKLXstteijJzugA4d+q/GNknBFlhPx9h0yWQJ/2u9mdlI+MPTJrd1Ril2mOgHcpO
VowRIb5Lb/hG7Cg71FKH84W0I5umSGmyQAdobcJ8Eb4QZ3TLMR611MzzsoxbKQmZ
fa0pw6Fb/SJtayqX/Rc7bCdg+D0A8ETGCrOvs1MXfh2Kgd3IzC2odF4o0gtgc+j3
HNlGs5dTAgMBAAECggEAY+1NSpqGVef0i0c1eYx56OHdT7B6aYSpgiPCZpa4QVJs
xhPrRRDACdvduUsK1i2NbfhXIdPHa56bfsXPGEQPLg3IOAwuTHB5T/I42Rg/p5M3
k+QoThDHkLZxpvZh+8DyRPapPTUK23xIRXuB/Cx7w+/8Fpdp7KnsPW3DMpJ+mDpN
6ImySq32XSWotiuPSenvdMs1mYdFDT9ZDRcv5Ynu6OWBxmrWDGi4DR7axT/cNkqV
Y8YHaGxZZiJYRVY5vHJZDEf3JfAkPNsZkAuRM4QqJUTLwXsMOpjWeggcG/ctKCgW
M0aBiqPp5mJJICMLlAqLFDf254Y9P47dLflNioT6oQKBgQDsFXx5RSZJpBRJWShL
WkPGvpdwKAX31oinK78AAD1RI+SML186qvN5JrzWj5ts3bSXncsFEC216AB7yLV8
YMvb1fyALK6E15ohJ3L6jgCnvkusB2gJ1DITKvWwAIG7CrcSOmFqy2kcfA3dCGM+
ZUTNALidSX+EhoctdwAzYMe80QKBgQDqo9imSMEnvRBWIP3fX32Yvq4ctOeo1DHb
H4t8Oa5haCo39lHkMRP4GCYdWWBFZos2YzqGVmzY84zpd6A/u6PMz+rP66xFDOOz
uuuNDS4bNb7rgXQhDAVFDY52U8ockMkgUG2V2v+cubxVOnLFddUNUIH/N3foRVb5
kAs6NocK4wKBgQDIgt87aH3CYfdQ7MaKaVnTPSEGAxg+jRl3UnJgn9N0TNXaMonh
HDy6Eyqj2UiayBqQA1bhMAKC009F0wxBXT0Hs9FHU6vN7AheTFEdeOoZjkhbDddR
McZt/Ti6iVOl9s3ST39Z4vWdWce0iWExJ3Wt4ATsofYKKvA4ry+ec35xYQKBgQDl
bG9Zp6m1gVeH35pb3rKft1HnH7ujiFd3OdDZFk07UO526ZII3TP5USNzbwCC21Ej
TMLct4SWXQ1a+mzl5EK08FdYFcfLfF7oTcwjjs+WK2cSPvGdnnNIoYi6ihME+0yt
G/cKn6dvRuyvKQcvq5c1/ZIeSc4kfigcvIs90DMaoQKBgQDXwn/EJHmqsw6JCjeM
tLcidZa2NVCBnsUNCJ8BJG/RYYbHnU86owOKENKBZKNxn8rI4bcYvO+hQWP1De8Y
mzD0mMqrXwheEz5e5KQ0Z4QL+1gnVPVjQUs0FCrB6tFjBzHJNkXvhzvUPb5ibTxL
TAskyCmK3egwGRSqVTYVH0tRFA==
-----END PRIVATE KEY-----
`;

export const EC_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgT1zpmN12+Ir2hr+P
MQT2NF1leik2fL7D4wfdz3WuWpehRANCAAT3Nt8mz9/2CnB3uejlPLKNm0imBn/F
0yFECQ6U31rzwUsCj6n6RATgUb0LTI0YnaZJ1a5p6kF9PU0uDklXEj8k
-----END PRIVATE KEY-----
`;

export const EC_SERVING_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgl9ZWFu4sPfCYQqSY
gUWsVQGH449sLedlM3QzdcaUQzWhRANCAATBTwB8IIq3oDP4xmCOpEfOvtV9dosJ
3PKGzWzFCFjNsZxnyVd91QB3GzrjhdwXFZMyvKWEBvkALds8tBCTrca4
-----END PRIVATE KEY-----
`;

export interface Written {
  readonly rsaCa: string;
  readonly leafOfRsaCa: string;
  readonly ecCa: string;
  readonly leafOfEcCa: string;
}

const publicOf = (pem: string): KeyObject => createPublicKey(createPrivateKey(pem));

function caExtensions(key: KeyObject): Uint8Array[] {
  return [
    extension(OID.basicConstraints, true, sequence(boolean(true))),
    extension(OID.keyUsage, true, namedBits([5, 6])),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(key))),
  ];
}

function leafExtensions(subjectKey: KeyObject, issuerKey: KeyObject, rsa: boolean): Uint8Array[] {
  const dns = [
    "sidecar-injector",
    "sidecar-injector.istio-system",
    "sidecar-injector.istio-system.svc",
    "sidecar-injector.istio-system.svc.cluster.local",
  ];
  return [
    extension(OID.basicConstraints, true, sequence()),
    extension(OID.keyUsage, true, namedBits(rsa ? [0, 2] : [0])),
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
    extension(
      OID.subjectAltName,
      false,
      sequence(
        ...dns.map(dnsName),
        ipAddress(Buffer.from([10, 96, 0, 17])),
        ipAddress(Buffer.from("20010db8000000000000000000000001", "hex")),
      ),
    ),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(subjectKey))),
    extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, keyIdentifier(issuerKey)))),
  ];
}

/** The four certificates, as PEM, that these fixed inputs give. */
export function writeFixedCertificates(): Written {
  const rsaKey = createPrivateKey(RSA_KEY_PEM);
  const ecKey = createPrivateKey(EC_KEY_PEM);
  const rsaPublic = publicOf(RSA_KEY_PEM);
  const ecPublic = publicOf(EC_KEY_PEM);
  const servingPublic = publicOf(EC_SERVING_KEY_PEM);
  const caName = name([
    [OID.commonName, "sidecar-injector-ca"],
    [OID.organizationName, "sïdecar ünïcode"],
  ]);
  const leafName = name([[OID.commonName, "sidecar-injector.istio-system.svc"]]);
  const rsaCa = signCertificate(
    {
      serial: Buffer.from("00c3a1b2c3d4e5f60718293a4b5c6d7e8f", "hex"),
      issuer: caName,
      subject: caName,
      notBefore: new Date("2026-11-29T15:00:00.999Z"),
      notAfter: new Date("2056-11-29T15:00:00Z"),
      publicKey: rsaPublic,
      extensions: caExtensions(rsaPublic),
    },
    rsaKey,
  );
  const leafOfRsaCa = signCertificate(
    {
      serial: Buffer.from("4f0102030405060708090a0b0c0d0e0f", "hex"),
      issuer: caName,
      subject: leafName,
      notBefore: new Date("2026-11-29T14:59:00Z"),
      notAfter: new Date("2027-11-29T15:00:00Z"),
      publicKey: servingPublic,
      extensions: leafExtensions(servingPublic, rsaPublic, false),
    },
    rsaKey,
  );
  const ecCa = signCertificate(
    {
      serial: Buffer.from([0x00, 0x00, 0x7f]),
      issuer: caName,
      subject: caName,
      notBefore: new Date("1999-01-02T03:04:05Z"),
      notAfter: new Date("2049-12-31T23:59:59Z"),
      publicKey: ecPublic,
      extensions: caExtensions(ecPublic),
    },
    ecKey,
  );
  const leafOfEcCa = signCertificate(
    {
      serial: Buffer.from([0x80]),
      issuer: caName,
      subject: leafName,
      notBefore: new Date("2050-01-01T00:00:00Z"),
      notAfter: new Date("2051-01-01T00:00:00Z"),
      publicKey: rsaPublic,
      extensions: leafExtensions(rsaPublic, ecPublic, true),
    },
    ecKey,
  );
  return { rsaCa, leafOfRsaCa, ecCa, leafOfEcCa };
}

/** Hex of the DER of each certificate as the hand-written encoder wrote it; the ECDSA-signed ones whole, but compared
 * up to their signature (tbsAndAlgorithm). */
export const EXPECTED = {
  rsaCa:
    "308203453082022da003020102021100c3a1b2c3d4e5f60718293a4b5c6d7e8f300d06092a864886f70d01010b0500303b311c301a06035504031313736964656361722d696e6a6563746f722d636131" +
    "1b3019060355040a0c1273c3af646563617220c3bc6ec3af636f64653020170d3236313132393135303030305a180f32303536313132393135303030305a303b311c301a060355040313137369646563" +
    "61722d696e6a6563746f722d6361311b3019060355040a0c1273c3af646563617220c3bc6ec3af636f646530820122300d06092a864886f70d01010105000382010f003082010a0282010100d862bd40" +
    "94793b8696be32c6651028ead7d4e875386914fe981d1180fa5d807bd16a08dbeead4ae3a784f430965ee45cc52271c0bcbd3b26bdce5be4ade6e834f585a73470194c3c43424c00daea51af0b3be4a9" +
    "d57f0518a3d8b23d808bf6d06b6601108e4eec608fbe64a2d7b2db5e8a3273ba003877eabf18d9270459613f1f61d3259027fdaef6676523e30f4c9addd518a5da63a01dca4e568c1121be4b6ff846ec" +
    "283bd45287f385b4239ba64869b24007686dc27c11be106774cb311eb5d4ccf3b28c5b2909997dad29c3a15bfd226d6b2a97fd173b6c2760f83d00f044c60ab3afb353177e1d8a81ddc8cc2da8745e28" +
    "d20b6073e8f71cd946b397530203010001a3423040300f0603551d130101ff040530030101ff300e0603551d0f0101ff040403020106301d0603551d0e0416041401c4b7dc71320a24e1b976799872b1" +
    "9668f3f55a300d06092a864886f70d01010b050003820101003191a205df40c6e1e4259a104d4fd8bc20b966fb944ff63fc95f5d33f211a4c5f880d522810c7824ffb16f1c53aabe71ba9f99ea26306f" +
    "7b458731cb116abbbd39b1cabe32052f5f2598d14d7df555f98879ffbd189f4c6a6d525f7a9e4d1ca05a0cac064c22638180c64e56654d824979fff9bb7e721fb345c99dbaea7a0fa4924090258c0295" +
    "9663d2dae2c1d3aeab794f938031b92f1cb5d820d3fe158450b65f46f0b7fc3aee41dd95987c35c099163d46a2775caad02b53da830cee196b4fd66e5bca1988feae20510506a770a88a5cbe62c0e371" +
    "2bb0a259de4c49e351272be16743e2b1d28611a92d7a37dae784ca61333d8f9982d57db120239bbb72",
  leafOfRsaCa:
    "3082034a30820232a00302010202104f0102030405060708090a0b0c0d0e0f300d06092a864886f70d01010b0500303b311c301a06035504031313736964656361722d696e6a6563746f722d6361311b" +
    "3019060355040a0c1273c3af646563617220c3bc6ec3af636f6465301e170d3236313132393134353930305a170d3237313132393135303030305a302c312a302806035504031321736964656361722d" +
    "696e6a6563746f722e697374696f2d73797374656d2e7376633059301306072a8648ce3d020106082a8648ce3d03010703420004c14f007c208ab7a033f8c6608ea447cebed57d768b09dcf286cd6cc5" +
    "0858cdb19c67c9577dd500771b3ae385dc17159332bca58406f9002ddb3cb41093adc6b8a38201223082011e300c0603551d130101ff04023000300e0603551d0f0101ff04040302078030130603551d" +
    "25040c300a06082b060105050703013081a80603551d110481a030819d8210736964656361722d696e6a6563746f72821d736964656361722d696e6a6563746f722e697374696f2d73797374656d8221" +
    "736964656361722d696e6a6563746f722e697374696f2d73797374656d2e737663822f736964656361722d696e6a6563746f722e697374696f2d73797374656d2e7376632e636c75737465722e6c6f63" +
    "616c87040a600011871020010db8000000000000000000000001301d0603551d0e04160414236bff8836cded09a2b09d5fb6b24caebeec41c9301f0603551d2304183016801401c4b7dc71320a24e1b9" +
    "76799872b19668f3f55a300d06092a864886f70d01010b05000382010100930f23f568075cab871a0ea9cb175900063acf28a68412595258a9b924baf59d405afc2f07fabd2a2b25e7d76f819d1cb00b" +
    "92eaf15e3878f2a4246c9b9b54cce5e3fadccbb9771b1eb573a0df6500970227b4e80ead54335ff832012ae2c276924851b89f5695afd3e1e9eba7fd356687e28a7577631dd3518c22770279ecfcce05" +
    "89ef811812dcfc6551dec623c8de53ff3f9ce682369bcf69aed925f873185009c446518ea8333fb371170cc29be8bba09332bd6fadb8aeabdc3814e8d1a219a0e2a72f0174f4af042f20f95d241d6e94" +
    "01e28c4b5031b980b9e05d94482971c2f4877b2bb5b124d8502a1534b5393447ca4ed37b136ebd1aa68b1968a798",
  ecCa:
    "308201a63082014da00302010202017f300a06082a8648ce3d040302303b311c301a06035504031313736964656361722d696e6a6563746f722d6361311b3019060355040a0c1273c3af646563617220" +
    "c3bc6ec3af636f6465301e170d3939303130323033303430355a170d3439313233313233353935395a303b311c301a06035504031313736964656361722d696e6a6563746f722d6361311b3019060355" +
    "040a0c1273c3af646563617220c3bc6ec3af636f64653059301306072a8648ce3d020106082a8648ce3d03010703420004f736df26cfdff60a7077b9e8e53cb28d9b48a6067fc5d32144090e94df5af3" +
    "c14b028fa9fa4404e051bd0b4c8d189da649d5ae69ea417d3d4d2e0e4957123f24a3423040300f0603551d130101ff040530030101ff300e0603551d0f0101ff040403020106301d0603551d0e041604" +
    "143502f6a9e5fd19b4a0ee6e3e7a51535bd686d432300a06082a8648ce3d040302034700304402205574de68962c5d7f2f601bcc9db7bc41f8388dbc5206e2b5badd38bcd9e036fa0220227033e09c29" +
    "f36e48aaad3f1f8793762a5d91cb994dbd6007b6d1aef740529c",
  leafOfEcCa:
    "3082034a308202f0a00302010202020080300a06082a8648ce3d040302303b311c301a06035504031313736964656361722d696e6a6563746f722d6361311b3019060355040a0c1273c3af6465636172" +
    "20c3bc6ec3af636f64653022180f32303530303130313030303030305a180f32303531303130313030303030305a302c312a302806035504031321736964656361722d696e6a6563746f722e69737469" +
    "6f2d73797374656d2e73766330820122300d06092a864886f70d01010105000382010f003082010a0282010100d862bd4094793b8696be32c6651028ead7d4e875386914fe981d1180fa5d807bd16a08" +
    "dbeead4ae3a784f430965ee45cc52271c0bcbd3b26bdce5be4ade6e834f585a73470194c3c43424c00daea51af0b3be4a9d57f0518a3d8b23d808bf6d06b6601108e4eec608fbe64a2d7b2db5e8a3273" +
    "ba003877eabf18d9270459613f1f61d3259027fdaef6676523e30f4c9addd518a5da63a01dca4e568c1121be4b6ff846ec283bd45287f385b4239ba64869b24007686dc27c11be106774cb311eb5d4cc" +
    "f3b28c5b2909997dad29c3a15bfd226d6b2a97fd173b6c2760f83d00f044c60ab3afb353177e1d8a81ddc8cc2da8745e28d20b6073e8f71cd946b397530203010001a38201223082011e300c0603551d" +
    "130101ff04023000300e0603551d0f0101ff0404030205a030130603551d25040c300a06082b060105050703013081a80603551d110481a030819d8210736964656361722d696e6a6563746f72821d73" +
    "6964656361722d696e6a6563746f722e697374696f2d73797374656d8221736964656361722d696e6a6563746f722e697374696f2d73797374656d2e737663822f736964656361722d696e6a6563746f" +
    "722e697374696f2d73797374656d2e7376632e636c75737465722e6c6f63616c87040a600011871020010db8000000000000000000000001301d0603551d0e0416041401c4b7dc71320a24e1b9767998" +
    "72b19668f3f55a301f0603551d230418301680143502f6a9e5fd19b4a0ee6e3e7a51535bd686d432300a06082a8648ce3d0403020348003045022100a5f0bfa573b294e8f9db722484d4fda38708f1f0" +
    "a08501d1202534ce9cf2dee102201a90a04144a46c60b2dae5706dceeb7185f10127b25b58ace52461ffe48aff68",
  subject:
    "303b311c301a06035504031313736964656361722d696e6a6563746f722d6361311b3019060355040a0c1273c3af646563617220c3bc6ec3af636f6465",
  ski: "01c4b7dc71320a24e1b976799872b19668f3f55a",
  kidRsa: "01c4b7dc71320a24e1b976799872b19668f3f55a",
  kidEc: "3502f6a9e5fd19b4a0ee6e3e7a51535bd686d432",
} as const;

/**
 * A certificate's TBSCertificate and signatureAlgorithm, its DER with the signature left out:
 * the two outer headers read here by hand, long-form lengths included, so that the check does not
 * rest on the code under test.
 */
export function tbsAndAlgorithm(certDer: Uint8Array): Buffer {
  const header = (at: number): { readonly content: number; readonly end: number } => {
    const first = certDer[at + 1] ?? 0;
    const n = first & 0x80 ? first & 0x7f : 0;
    let length = n === 0 ? first : 0;
    for (let i = 0; i < n; i++) length = length * 256 + (certDer[at + 2 + i] ?? 0);
    return { content: at + 2 + n, end: at + 2 + n + length };
  };
  const tbs = header(header(0).content);
  const algorithm = header(tbs.end);
  return Buffer.from(certDer.subarray(header(0).content, algorithm.end));
}
