// X.509 certificates written and read as DER (ITU-T X.690), with node:crypto signing them:
// the few ASN.1 types a CA and a serving certificate need (RFC 5280), and a reader that finds
// the parts of a certificate that the next one must copy byte for byte (its subject, as the
// issuer name of what it signs; its key identifier).
//
// Written by hand rather than with an ASN.1 library so that issuing costs nothing to load and
// signs natively: RSA and ECDSA signatures come from crypto.sign, the key identifiers from
// SHA-1 of the public key (RFC 5280 4.2.1.2, method 1). Every certificate written here is read
// back with crypto.X509Certificate before it is used (authority.ts).

import { createHash, sign, type KeyObject } from "node:crypto";

export class DerError extends Error {
  readonly code = "ERR_DER";
}

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag`, the length of `content`, `content`. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const sequence = (...parts: readonly Uint8Array[]): Buffer => tlv(TAG.sequence, Buffer.concat(parts));
const setOf = (...parts: readonly Uint8Array[]): Buffer => tlv(TAG.set, Buffer.concat(parts));
/** `[n] EXPLICIT`: a constructed context-specific tag around `content`. */
export const explicit = (n: number, content: Uint8Array): Buffer => tlv(0xa0 | n, content);
/** `[n] IMPLICIT` of a primitive type: its content under a context-specific tag. */
export const implicit = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);
export const octetString = (b: Uint8Array): Buffer => tlv(TAG.octetString, b);
export const boolean = (v: boolean): Buffer => tlv(TAG.boolean, Buffer.from([v ? 0xff : 0x00]));
const NULL = Buffer.from([TAG.null, 0x00]);

/** A BIT STRING of whole bytes (no unused bits): a signature, a public key. */
export const bitString = (b: Uint8Array): Buffer => tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), b]));

/** A non-negative INTEGER from its big-endian magnitude (a leading zero added when the top bit is set). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = Buffer.from(magnitude.subarray(start));
  return tlv(TAG.integer, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m.length === 0 ? Buffer.from([0]) : m);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  if (arcs.some((x) => !Number.isSafeInteger(x) || x < 0) || arcs.length < 2) throw new DerError(`${dotted} is not an object identifier`);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const base128: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

/**
 * A named BIT STRING (keyUsage): bit 0 is the first byte's top bit; trailing zero bits are
 * left out and counted as unused, as DER requires.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return tlv(TAG.bitString, Buffer.from([0]));
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([7 - (last & 7)]), bytes]));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A directory string: PrintableString when every character allows it, else UTF8String. */
function directoryString(s: string): Buffer {
  return PRINTABLE.test(s) ? tlv(TAG.printableString, Buffer.from(s, "latin1")) : tlv(TAG.utf8String, Buffer.from(s, "utf8"));
}

export const OID = {
  commonName: "2.5.4.3",
  organizationName: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
} as const;

/** An X.501 Name of one attribute per RDN, in order (e.g. CN then O). */
export function name(attributes: ReadonlyArray<readonly [oid: string, value: string]>): Buffer {
  return sequence(...attributes.map(([type, value]) => setOf(sequence(oid(type), directoryString(value)))));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new DerError(`${iso} cannot be written in a certificate`);
  return year < 2050 ? tlv(TAG.utcTime, Buffer.from(digits.slice(2), "latin1")) : tlv(TAG.generalizedTime, Buffer.from(digits, "latin1"));
}

/** An Extension: its OID, `critical` only when true (DER leaves defaults out), the value's DER. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** A GeneralName for a subjectAltName: dNSName [2] or iPAddress [7] (4 or 16 bytes). */
export function dnsName(n: string): Buffer {
  return implicit(2, Buffer.from(n, "latin1"));
}
export function ipAddress(bytes: Uint8Array): Buffer {
  return implicit(7, bytes);
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Node {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the content. */
  readonly content: number;
  /** Offset just past the content. */
  readonly end: number;
}

function readNode(der: Uint8Array, at: number, limit: number): Node {
  const tag = der[at];
  const first = der[at + 1];
  if (tag === undefined || first === undefined || at + 2 > limit) throw new DerError("truncated DER");
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte DER tags are not read here");
  let length = first;
  let content = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new DerError("unsupported DER length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[content + i] ?? 0);
    content += n;
  }
  const end = content + length;
  if (end > limit) throw new DerError("truncated DER");
  return { tag, start: at, content, end };
}

function childrenOf(der: Uint8Array, parent: Node): Node[] {
  const out: Node[] = [];
  for (let at = parent.content; at < parent.end; ) {
    const n = readNode(der, at, parent.end);
    out.push(n);
    at = n.end;
  }
  return out;
}

/** The TBSCertificate's fields, the version tag skipped: serial, signature, issuer, validity, subject, spki, then [1] [2] [3]. */
function tbsFields(certDer: Uint8Array): { readonly fields: Node[]; readonly extensions: Node | undefined } {
  const cert = readNode(certDer, 0, certDer.length);
  const [tbs] = childrenOf(certDer, cert);
  if (tbs === undefined || tbs.tag !== TAG.sequence) throw new DerError("not a certificate");
  const all = childrenOf(certDer, tbs);
  const fields = all[0]?.tag === 0xa0 ? all.slice(1) : all;
  if (fields.length < 6) throw new DerError("not a certificate");
  return { fields, extensions: fields.find((f) => f.tag === 0xa3) };
}

/** The subject Name of a certificate, its DER exactly as written (what it signs as issuer). */
export function subjectOf(certDer: Uint8Array): Buffer {
  const subject = tbsFields(certDer).fields[4];
  if (subject === undefined) throw new DerError("not a certificate");
  return Buffer.from(certDer.subarray(subject.start, subject.end));
}

/** The content of a certificate's subjectKeyIdentifier, or undefined when it has none. */
export function subjectKeyIdentifierOf(certDer: Uint8Array): Buffer | undefined {
  const { extensions } = tbsFields(certDer);
  if (extensions === undefined) return undefined;
  const [list] = childrenOf(certDer, extensions);
  if (list === undefined) return undefined;
  for (const ext of childrenOf(certDer, list)) {
    const [id, ...rest] = childrenOf(certDer, ext);
    const value = rest.at(-1);
    if (id === undefined || value === undefined) continue;
    if (!Buffer.from(certDer.subarray(id.start, id.end)).equals(oid(OID.subjectKeyIdentifier))) continue;
    const inner = readNode(certDer, value.content, value.end);
    if (inner.tag !== TAG.octetString) throw new DerError("subjectKeyIdentifier is not an OCTET STRING");
    return Buffer.from(certDer.subarray(inner.content, inner.end));
  }
  return undefined;
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits of a public key. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const [, bits] = childrenOf(spki, readNode(spki, 0, spki.length));
  if (bits === undefined || bits.tag !== TAG.bitString) throw new DerError("not a SubjectPublicKeyInfo");
  return createHash("sha1").update(spki.subarray(bits.content + 1, bits.end)).digest();
}

// ---------------------------------------------------------------------------------------------
// Signing

/** The AlgorithmIdentifier a key signs with here: SHA-256 with RSA, or ECDSA with SHA-256 (P-256). */
function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === "rsa") return sequence(oid(OID.sha256WithRsa), NULL);
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return sequence(oid(OID.ecdsaWithSha256));
  throw new DerError(`a ${key.asymmetricKeyType ?? "unknown"} ${key.asymmetricKeyDetails?.namedCurve ?? ""} key does not sign certificates here (RSA or EC P-256)`.replace("  ", " "));
}

export interface CertificateFields {
  /** Big-endian magnitude of a positive serial number. */
  readonly serial: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject's public key. */
  readonly publicKey: KeyObject;
  /** Each an `extension(...)`. */
  readonly extensions: readonly Uint8Array[];
}

/** A v3 certificate with these fields, signed with `signer` (the issuer's private key), as PEM. */
export function signCertificate(fields: CertificateFields, signer: KeyObject): string {
  const algorithm = signatureAlgorithm(signer);
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))),
    unsignedInteger(fields.serial),
    algorithm,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...fields.extensions)),
  );
  const der = sequence(tbs, algorithm, bitString(sign("sha256", tbs, signer)));
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
}
