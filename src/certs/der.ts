// X.509 certificates written and read as DER (ITU-T X.690): the few ASN.1 types a CA and a
// serving certificate need (RFC 5280), and a reader that finds the parts of a certificate that
// the next one must copy byte for byte (its subject, as the issuer name of what it signs; its
// key identifier).
//
// The ASN.1 is node-forge's (the project's certificate library): nodes built with asn1.create,
// written with asn1.toDer, read with asn1.fromDer. Only node-forge/lib/asn1.js is loaded, and
// only when a certificate is first written or read: the whole of node-forge costs ~250 ms of
// start-up, that module ~25 ms. Keys and signatures stay with node:crypto (ECDSA P-256 keys are
// generated in a millisecond, RSA keys of older CAs still sign): crypto.sign signs the
// TBSCertificate, the key identifiers are SHA-1 of the public key (RFC 5280 4.2.1.2, method 1).
// Every certificate written here is read back with crypto.X509Certificate before it is used
// (authority.ts).
//
// Each function takes and gives DER bytes, so callers compose them as ASN.1 values. DER given
// in (an issuer name copied from a certificate, a SubjectPublicKeyInfo) is read with fromDer and
// must write back to the very same bytes, or it is refused: what is copied is copied byte for
// byte. node-forge's own encodings, relied on here: an INTEGER is written as its value bytes
// (one leading zero byte is dropped when the next byte's top bit is clear, so values are given
// minimal); a primitive BIT STRING's value starts with its unused-bits byte; fromDer with
// decodeBitStrings off leaves a BIT STRING's content as it is; lengths are written minimal.

import { createHash, sign, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import type { asn1 as Forge } from "node-forge";
import { quote } from "../injection/quote.js";

export class DerError extends Error {
  readonly code = "ERR_DER";
}

type Asn1 = Forge.Asn1;

interface FromDerOptions {
  readonly strict: boolean;
  readonly parseAllBytes: boolean;
  readonly decodeBitStrings: boolean;
  readonly maxDepth: number;
}

/** node-forge's asn1 module, with the options object its fromDer takes (lib/asn1.js) that the typings leave out. */
type Asn1Module = typeof Forge & { fromDer(bytes: string, options: FromDerOptions): Asn1 };

const require = createRequire(import.meta.url);
let loaded: Asn1Module | undefined;

/** node-forge's asn1 module, loaded on first use. */
function forge(): Asn1Module {
  // lib/asn1.js is CommonJS and untyped: its exports are node-forge's asn1 namespace, which
  // @types/node-forge describes.
  loaded ??= require("node-forge/lib/asn1.js") as Asn1Module;
  return loaded;
}

/** Binary strings are node-forge's bytes. */
const binary = (b: Uint8Array): string => Buffer.from(b).toString("binary");

function toDer(node: Asn1): Buffer {
  return Buffer.from(forge().toDer(node).getBytes(), "binary");
}

/** A universal primitive value from its content bytes. */
function primitive(type: Forge.Type, content: Uint8Array | string): Asn1 {
  const f = forge();
  return f.create(f.Class.UNIVERSAL, type, false, typeof content === "string" ? content : binary(content));
}

function constructed(type: Forge.Type, children: Asn1[]): Asn1 {
  const f = forge();
  return f.create(f.Class.UNIVERSAL, type, true, children);
}

/** Rejects what node-forge would read as something else: tag numbers of more than one byte. */
function checkTags(node: Asn1): void {
  if (Number(node.type) === 0x1f) throw new DerError("multi-byte DER tags are not read here");
  if (Array.isArray(node.value)) node.value.forEach(checkTags);
}

/** One DER value read, which must write back to exactly these bytes (DER, not BER). */
function read(der: Uint8Array, what = "DER"): Asn1 {
  let node: Asn1;
  try {
    node = forge().fromDer(binary(der), { strict: true, parseAllBytes: true, decodeBitStrings: false, maxDepth: 32 });
  } catch (err) {
    throw new DerError(`${what} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  checkTags(node);
  if (!toDer(node).equals(der)) throw new DerError(`${what} is not DER (it would not be copied byte for byte)`);
  return node;
}

function childrenOf(node: Asn1, what: string): Asn1[] {
  if (!Array.isArray(node.value)) throw new DerError(`${what} is not constructed`);
  return node.value;
}

function contentOf(node: Asn1, what: string): string {
  if (typeof node.value !== "string") throw new DerError(`${what} is not primitive`);
  return node.value;
}

const isUniversal = (node: Asn1 | undefined, type: Forge.Type): node is Asn1 =>
  node !== undefined && node.tagClass === forge().Class.UNIVERSAL && node.type === type;
const isContext = (node: Asn1 | undefined, n: number): node is Asn1 =>
  node !== undefined && node.tagClass === forge().Class.CONTEXT_SPECIFIC && node.type === n;

export const sequence = (...parts: readonly Uint8Array[]): Buffer =>
  toDer(
    constructed(
      forge().Type.SEQUENCE,
      parts.map((p) => read(p)),
    ),
  );
const setOf = (...parts: readonly Asn1[]): Asn1 => constructed(forge().Type.SET, [...parts]);

/** `[n] EXPLICIT`: a constructed context-specific tag around `content`. */
export function explicit(n: number, content: Uint8Array): Buffer {
  const f = forge();
  return toDer(f.create(f.Class.CONTEXT_SPECIFIC, n, true, [read(content)]));
}

/** `[n] IMPLICIT` of a primitive type: its content under a context-specific tag. */
export function implicit(n: number, content: Uint8Array): Buffer {
  const f = forge();
  return toDer(f.create(f.Class.CONTEXT_SPECIFIC, n, false, binary(content)));
}

export const octetString = (b: Uint8Array): Buffer => toDer(primitive(forge().Type.OCTETSTRING, b));
export const boolean = (v: boolean): Buffer => toDer(primitive(forge().Type.BOOLEAN, Buffer.from([v ? 0xff : 0x00])));

/** A BIT STRING of whole bytes (no unused bits): a signature, a public key. */
export const bitString = (b: Uint8Array): Buffer =>
  toDer(primitive(forge().Type.BITSTRING, Buffer.concat([Buffer.from([0]), b])));

/** A non-negative INTEGER from its big-endian magnitude (a leading zero added when the top bit is set). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = Buffer.from(magnitude.subarray(start));
  return toDer(
    primitive(
      forge().Type.INTEGER,
      (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m.length === 0 ? Buffer.from([0]) : m,
    ),
  );
}

function oidNode(dotted: string): Asn1 {
  const f = forge();
  if (!/^\d+(\.\d+)+$/.test(dotted)) throw new DerError(`${quote(dotted)} is not an object identifier`);
  try {
    return primitive(f.Type.OID, f.oidToDer(dotted).getBytes());
  } catch (err) {
    throw new DerError(
      `${quote(dotted)} is not an object identifier: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

export const oid = (dotted: string): Buffer => toDer(oidNode(dotted));

/**
 * A named BIT STRING (keyUsage): bit 0 is the first byte's top bit; trailing zero bits are
 * left out and counted as unused, as DER requires.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  return toDer(primitive(forge().Type.BITSTRING, Buffer.concat([Buffer.from([7 - (last & 7)]), bytes])));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A directory string: PrintableString when every character allows it, else UTF8String. */
function directoryString(s: string): Asn1 {
  const { Type } = forge();
  return PRINTABLE.test(s)
    ? primitive(Type.PRINTABLESTRING, Buffer.from(s, "latin1"))
    : primitive(Type.UTF8, Buffer.from(s, "utf8"));
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
  const { Type } = forge();
  return toDer(
    constructed(
      Type.SEQUENCE,
      attributes.map(([type, value]) => setOf(constructed(Type.SEQUENCE, [oidNode(type), directoryString(value)]))),
    ),
  );
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
function timeNode(d: Date): Asn1 {
  const f = forge();
  const year = d.getUTCFullYear();
  if (!(year >= 1950 && year <= 9999))
    throw new DerError(
      `${Number.isNaN(d.getTime()) ? "an invalid date" : d.toISOString()} cannot be written in a certificate`,
    );
  return year < 2050
    ? primitive(f.Type.UTCTIME, f.dateToUtcTime(d))
    : primitive(f.Type.GENERALIZEDTIME, f.dateToGeneralizedTime(d));
}

export const time = (d: Date): Buffer => toDer(timeNode(d));

/** An Extension: its OID, `critical` only when true (DER leaves defaults out), the value's DER. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  const { Type } = forge();
  return toDer(
    constructed(Type.SEQUENCE, [
      oidNode(id),
      ...(critical ? [read(boolean(true))] : []),
      primitive(Type.OCTETSTRING, value),
    ]),
  );
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

/**
 * The TBSCertificate's fields, the version tag skipped: serial, signature, issuer, validity, subject, spki, then [1]
 * [2] [3].
 */
function tbsFields(certDer: Uint8Array): { readonly fields: Asn1[]; readonly extensions: Asn1 | undefined } {
  const { Type } = forge();
  const cert = read(certDer, "the certificate");
  const [tbs] = isUniversal(cert, Type.SEQUENCE) ? childrenOf(cert, "the certificate") : [];
  if (!isUniversal(tbs, Type.SEQUENCE)) throw new DerError("not a certificate");
  const all = childrenOf(tbs, "the TBSCertificate");
  const fields = isContext(all[0], 0) ? all.slice(1) : all;
  if (fields.length < 6) throw new DerError("not a certificate");
  return { fields, extensions: fields.find((f) => isContext(f, 3)) };
}

/** The subject Name of a certificate, its DER exactly as written (what it signs as issuer). */
export function subjectOf(certDer: Uint8Array): Buffer {
  const subject = tbsFields(certDer).fields[4];
  if (!isUniversal(subject, forge().Type.SEQUENCE)) throw new DerError("not a certificate");
  return toDer(subject);
}

/** The content of a certificate's subjectKeyIdentifier, or undefined when it has none. */
export function subjectKeyIdentifierOf(certDer: Uint8Array): Buffer | undefined {
  const f = forge();
  const { extensions } = tbsFields(certDer);
  if (extensions === undefined) return undefined;
  const [list] = childrenOf(extensions, "the extensions");
  if (list === undefined) return undefined;
  for (const ext of childrenOf(list, "the extensions")) {
    const [id, ...rest] = childrenOf(ext, "an extension");
    const value = rest.at(-1);
    if (!isUniversal(id, f.Type.OID) || value === undefined) continue;
    if (f.derToOid(contentOf(id, "an extension's OID")) !== OID.subjectKeyIdentifier) continue;
    const inner = read(Buffer.from(contentOf(value, "subjectKeyIdentifier"), "binary"), "subjectKeyIdentifier");
    if (!isUniversal(inner, f.Type.OCTETSTRING)) throw new DerError("subjectKeyIdentifier is not an OCTET STRING");
    return Buffer.from(contentOf(inner, "subjectKeyIdentifier"), "binary");
  }
  return undefined;
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits of a public key. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = read(publicKey.export({ type: "spki", format: "der" }), "the public key");
  const [, bits] = childrenOf(spki, "the public key");
  if (!isUniversal(bits, forge().Type.BITSTRING)) throw new DerError("not a SubjectPublicKeyInfo");
  // The content starts with its unused-bits byte (0 for a key), which is not hashed.
  return createHash("sha1")
    .update(Buffer.from(contentOf(bits, "the public key"), "binary").subarray(1))
    .digest();
}

// ---------------------------------------------------------------------------------------------
// Signing

/** The AlgorithmIdentifier a key signs with here: SHA-256 with RSA, or ECDSA with SHA-256 (P-256). */
function signatureAlgorithm(key: KeyObject): Asn1 {
  const { Type } = forge();
  if (key.asymmetricKeyType === "rsa")
    return constructed(Type.SEQUENCE, [oidNode(OID.sha256WithRsa), primitive(Type.NULL, "")]);
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1")
    return constructed(Type.SEQUENCE, [oidNode(OID.ecdsaWithSha256)]);
  throw new DerError(
    `a ${key.asymmetricKeyType ?? "unknown"} ${key.asymmetricKeyDetails?.namedCurve ?? ""} key does not sign certificates here (RSA or EC P-256)`.replace(
      "  ",
      " ",
    ),
  );
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
  const { Type } = forge();
  const algorithm = signatureAlgorithm(signer);
  const tbsNode = constructed(Type.SEQUENCE, [
    read(explicit(0, unsignedInteger(Buffer.from([2])))),
    read(unsignedInteger(fields.serial)),
    algorithm,
    read(fields.issuer, "the issuer name"),
    constructed(Type.SEQUENCE, [timeNode(fields.notBefore), timeNode(fields.notAfter)]),
    read(fields.subject, "the subject name"),
    read(fields.publicKey.export({ type: "spki", format: "der" }), "the public key"),
    read(explicit(3, sequence(...fields.extensions))),
  ]);
  const tbs = toDer(tbsNode);
  const der = toDer(
    constructed(Type.SEQUENCE, [
      tbsNode,
      algorithm,
      primitive(Type.BITSTRING, Buffer.concat([Buffer.from([0]), sign("sha256", tbs, signer)])),
    ]),
  );
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
}
