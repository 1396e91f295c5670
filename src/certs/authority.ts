// The certificate authority behind the webhook's serving certificates, without any Kubernetes
// I/O: the certificate manager keeps a CaState in a Secret and calls these functions; local
// mode keeps one in files. Design ("Certificates"): a renewed CA reuses the key and is appended,
// the caBundle is every unexpired CA certificate, expired ones are pruned.
//
// Keys are ECDSA P-256, from crypto.generateKeyPair (a millisecond, where an RSA 2048 key takes
// a few hundred, and P-256 handshakes cost a tenth of RSA's); a CA key that is RSA (a Secret or
// a folder written before) is kept and signs as RSA. Certificates are written as DER (./der.ts)
// and signed with crypto.sign, then read back with crypto.X509Certificate, which is what every
// check and every CaEntry field is based on. Kubernetes' API server (Go's crypto/x509) takes
// ECDSA P-256 CA and serving certificates for webhooks.
//
// Because all CA certificates of a state share the key *and* the subject (copied byte for byte
// from the newest one on renewal), a leaf issued under an older CA certificate chains to any
// newer one as well (same issuer name, same key identifier, same signature key): publishing the
// union of CA certificates is enough for clients during a rotation, whichever one they pick.
//
// Times: certificates carry whole seconds, so `now` is rounded down to a second and validities
// are whole seconds. Backdating (for clocks a little behind ours): a certificate whose validity
// is at least 10 minutes starts 60 s before `now`; a shorter one (tests) is not backdated at all.
// The renewal checks undo that from notBefore/notAfter alone (see intendedLifetimeMs), so nothing
// extra is stored.

import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
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
  subjectKeyIdentifierOf,
  subjectOf,
} from "./der.js";

export class CertError extends Error {
  readonly code = "ERR_CERT";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CertError";
  }
}

export interface CaEntry {
  readonly certPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Hex, as X509Certificate.serialNumber shows it. */
  readonly serial: string;
  /** Colon-separated hex SHA-256 of the DER, as X509Certificate.fingerprint256 shows it. */
  readonly fingerprint256: string;
  /** As X509Certificate.subject shows it. */
  readonly subject: string;
}

export interface CaState {
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** Oldest first (by notBefore); all for the same key. */
  readonly certs: readonly CaEntry[];
}

export interface CaOptions {
  readonly commonName?: string;
  readonly validityMs: number;
  readonly now: Date;
}

export interface ServingCert {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
  readonly issuerFingerprint256: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

export interface ServingOptions {
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly validityMs: number;
  readonly now: Date;
}

export const DEFAULT_CA_COMMON_NAME = "sidecar-injector-ca";
export const CA_SECRET_KEYS = { cert: "ca.crt", key: "ca.key" } as const;

const RSA_BITS = 2048;
const SECOND_MS = 1000;
/** Validities of at least this long are backdated by BACKDATE_MS; shorter ones not at all. */
const BACKDATE_FROM_MS = 10 * 60 * 1000;
const BACKDATE_MS = 60 * 1000;
const ORGANIZATION = "sidecar-injector";

export interface KeyPairPem {
  /** SPKI PEM. */
  readonly publicKey: string;
  /** PKCS#8 PEM. */
  readonly privateKey: string;
}

/**
 * A new key, for a serving certificate or a CA: ECDSA P-256, generated off the event loop. A TLS
 * handshake signs with the serving key: P-256 costs about a tenth of what RSA 2048 does, which
 * is what bounds the rate of new connections a replica can take; and making one takes a
 * millisecond, not the hundreds an RSA key takes, which a start that generates certificates
 * waits for.
 */
export function generateServingKeyPair(): Promise<KeyPairPem> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "ec",
      {
        namedCurve: "P-256",
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey })),
    );
  });
}

/** A new RSA key pair, generated off the event loop (CA keys written before P-256 were RSA). */
export function generateRsaKeyPair(bits = RSA_BITS): Promise<KeyPairPem> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "rsa",
      {
        modulusLength: bits,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey })),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Time arithmetic

function floorSeconds(ms: number): number {
  return Math.floor(ms / SECOND_MS) * SECOND_MS;
}

/** How far notBefore is moved back for a certificate meant to be valid for `validityMs`. */
export function backdateMs(validityMs: number): number {
  return validityMs >= BACKDATE_FROM_MS ? BACKDATE_MS : 0;
}

/**
 * The lifetime a certificate was issued for, from its notBefore/notAfter: the backdate is taken
 * off again. Spans of BACKDATE_FROM_MS + BACKDATE_MS or more were backdated; shorter ones were
 * not (spans in between are never produced here and are read as not backdated).
 */
export function intendedLifetimeMs(notBefore: Date, notAfter: Date): number {
  const span = notAfter.getTime() - notBefore.getTime();
  return span >= BACKDATE_FROM_MS + BACKDATE_MS ? span - BACKDATE_MS : span;
}

function checkValidity(validityMs: number, what: string): number {
  if (!Number.isFinite(validityMs) || validityMs < SECOND_MS) {
    throw new CertError(`${what} validity must be at least one second, got ${String(validityMs)} ms`);
  }
  return floorSeconds(validityMs);
}

function checkNow(now: Date): number {
  const t = now.getTime();
  if (!Number.isFinite(t)) throw new CertError("invalid current time");
  return floorSeconds(t);
}

function checkFraction(f: number, what: string): number {
  if (!Number.isFinite(f) || f < 0 || f > 1) throw new CertError(`${what} must be between 0 and 1, got ${String(f)}`);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Reading certificates back

function parseX509(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CertError(`${what} is not a readable certificate: ${(e as Error).message}`, { cause: e });
  }
}

function x509Dates(x: X509Certificate): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
}

function entryFromX509(x: X509Certificate): CaEntry {
  return {
    certPem: ensureTrailingNewline(x.toString()),
    ...x509Dates(x),
    serial: x.serialNumber,
    fingerprint256: x.fingerprint256,
    subject: x.subject,
  };
}

/** A CaEntry for one PEM certificate (not checked to be a CA; see fromSecretData). */
export function caEntryFromPem(pem: string): CaEntry {
  return entryFromX509(parseX509(pem, "the CA certificate"));
}

function ensureTrailingNewline(s: string): string {
  return s.endsWith("\n") ? s : `${s}\n`;
}

function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  const der = (k: KeyObject): Buffer => k.export({ type: "spki", format: "der" });
  return der(a).equals(der(b));
}

function parsePrivateKey(keyPem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new CertError(`${CA_SECRET_KEYS.key} is not a readable PEM private key: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const p256 = key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
  if (key.asymmetricKeyType !== "rsa" && !p256) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    throw new CertError(
      `${CA_SECRET_KEYS.key} is a${curve ? `n ${key.asymmetricKeyType ?? ""} ${curve}` : ` ${key.asymmetricKeyType ?? "unknown"}`} key; only RSA and EC P-256 keys are supported`,
    );
  }
  return key;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks in `text`, in order. */
export function splitPemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => `${m[0]}\n`);
}

function sortOldestFirst(certs: readonly CaEntry[]): CaEntry[] {
  // Array.prototype.sort is stable: equal notBefore keeps insertion order (older first).
  return [...certs].sort((a, b) => a.notBefore.getTime() - b.notBefore.getTime());
}

/**
 * A CaState from a PEM key and PEM text holding any number of CA certificates (none is allowed:
 * the key is kept and renewCa makes a certificate for it). Every certificate must parse, be a CA,
 * carry the key's public key and be signed by it; duplicates are dropped.
 */
export function parseCaState(certsPem: string, keyPem: string): CaState {
  const key = parsePrivateKey(keyPem);
  const publicKey = createPublicKey(key);
  const blocks = splitPemCertificates(certsPem);
  if (blocks.length === 0 && certsPem.trim() !== "") {
    throw new CertError(`${CA_SECRET_KEYS.cert} holds no PEM certificate`);
  }
  const seen = new Set<string>();
  const certs: CaEntry[] = [];
  blocks.forEach((pem, i) => {
    const what = `${CA_SECRET_KEYS.cert} certificate #${i + 1}`;
    const x = parseX509(pem, what);
    if (!x.ca) throw new CertError(`${what} (${x.subject.replace(/\n/g, ", ")}) is not a CA certificate`);
    if (!samePublicKey(x.publicKey, publicKey)) {
      throw new CertError(
        `${what} (serial ${x.serialNumber}) does not match ${CA_SECRET_KEYS.key}: different public key`,
      );
    }
    if (!x.verify(publicKey))
      throw new CertError(`${what} (serial ${x.serialNumber}) is not signed by ${CA_SECRET_KEYS.key}`);
    if (seen.has(x.fingerprint256)) return;
    seen.add(x.fingerprint256);
    certs.push(entryFromX509(x));
  });
  return { keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(), certs: sortOldestFirst(certs) };
}

// ---------------------------------------------------------------------------------------------
// Issuing

/** 128 random bits as a positive DER INTEGER with no leading zero byte. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function caSubject(commonName: string): Buffer {
  return name([
    [OID.commonName, commonName],
    [OID.organizationName, ORGANIZATION],
  ]);
}

/** 128 random bits, as the magnitude of a positive serial number. */
function serialBytes(): Buffer {
  return Buffer.from(randomSerial(), "hex");
}

function selfSign(keyPem: string, subject: Buffer, validityMs: number, now: Date): CaEntry {
  const nowS = checkNow(now);
  const validity = checkValidity(validityMs, "CA");
  const key = parsePrivateKey(keyPem);
  const publicKey = createPublicKey(key);
  const pem = signCertificate(
    {
      serial: serialBytes(),
      issuer: subject,
      subject,
      notBefore: new Date(nowS - backdateMs(validity)),
      notAfter: new Date(nowS + validity),
      publicKey,
      extensions: [
        extension(OID.basicConstraints, true, sequence(boolean(true))),
        extension(OID.keyUsage, true, namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(publicKey))),
      ],
    },
    key,
  );
  const x = parseX509(pem, "the new CA certificate");
  if (!x.ca || !x.verify(publicKey)) throw new CertError("the new CA certificate does not verify");
  return entryFromX509(x);
}

/** keyUsage bits (RFC 5280 4.2.1.3). */
const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/** A new key (ECDSA P-256) and one self-signed CA certificate for it. */
export async function createCa(opts: CaOptions): Promise<CaState> {
  checkNow(opts.now);
  checkValidity(opts.validityMs, "CA");
  const keys = await generateServingKeyPair();
  return renewCa({ keyPem: keys.privateKey, certs: [] }, opts);
}

/**
 * The same key with one more self-signed CA certificate appended (new serial). The subject is
 * the newest certificate's, byte for byte, unless opts.commonName is given, so that leaves of
 * every certificate of the state chain to every other.
 */
export function renewCa(state: CaState, opts: CaOptions): CaState {
  parsePrivateKey(state.keyPem);
  const newest = state.certs[state.certs.length - 1];
  const subject =
    opts.commonName !== undefined || newest === undefined
      ? caSubject(opts.commonName ?? DEFAULT_CA_COMMON_NAME)
      : subjectOf(parseX509(newest.certPem, "the newest CA certificate").raw);
  const entry = selfSign(state.keyPem, subject, opts.validityMs, opts.now);
  return { keyPem: state.keyPem, certs: sortOldestFirst([...state.certs, entry]) };
}

/** The state without certificates whose notAfter <= now (may leave none). */
export function pruneExpired(state: CaState, now: Date): CaState {
  return { keyPem: state.keyPem, certs: state.certs.filter((c) => c.notAfter.getTime() > now.getTime()) };
}

function validAt(c: { notBefore: Date; notAfter: Date }, now: Date): boolean {
  const t = now.getTime();
  return c.notBefore.getTime() <= t && t < c.notAfter.getTime();
}

/** The newest (by notBefore; the later one on a tie) certificate valid at `now`. */
export function currentCa(state: CaState, now: Date): CaEntry | undefined {
  let best: CaEntry | undefined;
  for (const c of state.certs) {
    if (validAt(c, now) && (best === undefined || c.notBefore.getTime() >= best.notBefore.getTime())) best = c;
  }
  return best;
}

/**
 * True when there is no CA, it has expired, or less than `renewWhenLeft` of its intended
 * lifetime is left (exactly that fraction left is not yet due).
 */
export function caNeedsRenewal(entry: CaEntry | undefined, now: Date, renewWhenLeft = 1 / 3): boolean {
  checkFraction(renewWhenLeft, "renewWhenLeft");
  if (entry === undefined) return true;
  const left = entry.notAfter.getTime() - now.getTime();
  if (left <= 0) return true;
  // Rounded to a millisecond so that thirds of whole seconds compare exactly.
  return left < Math.round(intendedLifetimeMs(entry.notBefore, entry.notAfter) * renewWhenLeft);
}

/**
 * True when the certificate has expired or at least `renewAfterElapsed` of its intended lifetime
 * has passed since it was really issued (notBefore plus the backdate).
 */
export function leafNeedsRenewal(
  cert: Pick<ServingCert, "notBefore" | "notAfter">,
  now: Date,
  renewAfterElapsed = 2 / 3,
): boolean {
  checkFraction(renewAfterElapsed, "renewAfterElapsed");
  const notAfter = cert.notAfter.getTime();
  if (now.getTime() >= notAfter) return true;
  const lifetime = intendedLifetimeMs(cert.notBefore, cert.notAfter);
  const elapsed = now.getTime() - (notAfter - lifetime);
  return elapsed >= Math.round(lifetime * renewAfterElapsed);
}

/** The unexpired CA certificates, oldest first, each ending in a newline: the caBundle. */
export function caBundlePem(state: CaState, now: Date): string {
  return pruneExpired(state, now)
    .certs.map((c) => ensureTrailingNewline(c.certPem))
    .join("");
}

/** The names a Service's serving certificate needs, shortest first. */
export function servingDnsNames(service: string, namespace: string, clusterDomain: string): string[] {
  const domain = clusterDomain.replace(/^\.+|\.+$/g, "");
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`];
}

/** Sorts names into DNS names and IP addresses; duplicates and empty names are dropped. */
export function splitSans(names: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const raw of names) {
    const n = raw.trim();
    if (n === "") continue;
    const list = isIP(n) !== 0 ? ipAddresses : dnsNames;
    if (!list.includes(n)) list.push(n);
  }
  return { dnsNames, ipAddresses };
}

function findIssuer(state: CaState, issuer: CaEntry): X509Certificate {
  if (!state.certs.some((c) => c.fingerprint256 === issuer.fingerprint256)) {
    throw new CertError(`the issuer (serial ${issuer.serial}) is not one of the CA's certificates`);
  }
  const x = parseX509(issuer.certPem, "the issuer");
  if (!x.ca) throw new CertError(`the issuer (serial ${issuer.serial}) is not a CA certificate`);
  if (!x.checkPrivateKey(parsePrivateKey(state.keyPem))) {
    throw new CertError(`the issuer (serial ${issuer.serial}) does not match the CA key`);
  }
  return x;
}

/**
 * A serving certificate (PEM) for `publicKeyPem`, signed with the CA key as `issuer`: CN = the
 * first DNS name (or IP address), SANs for every name, serverAuth, notAfter capped at the
 * issuer's. Synchronous; mintServingCert also makes the key and checks the result.
 */
export function signServingCert(state: CaState, issuer: CaEntry, publicKeyPem: string, opts: ServingOptions): string {
  const nowS = checkNow(opts.now);
  const validity = checkValidity(opts.validityMs, "serving certificate");
  const dnsNames = [...new Set(opts.dnsNames)];
  const ipAddresses = [...new Set(opts.ipAddresses ?? [])];
  for (const d of dnsNames) {
    if (d.trim() === "" || isIP(d) !== 0)
      throw new CertError(`"${d}" is not a DNS name (IP addresses go in ipAddresses)`);
  }
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new CertError(`"${ip}" is not an IP address`);
  const commonName = dnsNames[0] ?? ipAddresses[0];
  if (commonName === undefined) throw new CertError("a serving certificate needs at least one DNS name or IP address");

  const issuerX = findIssuer(state, issuer);
  const issuerNotAfter = floorSeconds(x509Dates(issuerX).notAfter.getTime());
  const notAfter = Math.min(nowS + validity, issuerNotAfter);
  if (notAfter - nowS < SECOND_MS) {
    throw new CertError(
      `the issuer (serial ${issuer.serial}) expires at ${issuerX.validTo}: too late for a serving certificate`,
    );
  }
  if (!validAt(x509Dates(issuerX), new Date(nowS))) {
    throw new CertError(`the issuer (serial ${issuer.serial}) is not valid yet (from ${issuerX.validFrom})`);
  }

  const subjectKey = createPublicKey(publicKeyPem);
  const rsa = subjectKey.asymmetricKeyType === "rsa";
  if (!rsa && subjectKey.asymmetricKeyType !== "ec") {
    throw new CertError(`a serving key must be RSA or EC, not ${subjectKey.asymmetricKeyType ?? "unknown"}`);
  }
  // The issuer's name and key identifier as that certificate states them, so the leaf chains to it.
  const authorityKeyId = subjectKeyIdentifierOf(issuerX.raw) ?? keyIdentifier(issuerX.publicKey);
  return signCertificate(
    {
      serial: serialBytes(),
      issuer: subjectOf(issuerX.raw),
      subject: name([
        [OID.commonName, commonName],
        [OID.organizationName, ORGANIZATION],
      ]),
      notBefore: new Date(nowS - backdateMs(notAfter - nowS)),
      notAfter: new Date(notAfter),
      publicKey: subjectKey,
      extensions: [
        extension(OID.basicConstraints, true, sequence()),
        // An ECDSA key signs in the handshake and never encrypts a key exchange.
        extension(
          OID.keyUsage,
          true,
          namedBits(rsa ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] : [KEY_USAGE.digitalSignature]),
        ),
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        extension(
          OID.subjectAltName,
          false,
          sequence(...dnsNames.map(dnsName), ...ipAddresses.map((ip) => ipAddress(ipBytes(ip)))),
        ),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(subjectKey))),
        extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, authorityKeyId))),
      ],
    },
    parsePrivateKey(state.keyPem),
  );
}

/** The 4 or 16 bytes of an IP address (checked with isIP before). */
export function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  let text = ip.replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4?.[1] !== undefined) {
    tail = [...ipBytes(v4[1])];
    text = text.slice(0, -v4[1].length) + "0:0";
  }
  const [head = "", rest] = text.split("::");
  const groups = (s: string): string[] => (s === "" ? [] : s.split(":"));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all =
    rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

/**
 * A new key and a serving certificate for it signed by `issuer` (one of state's certificates),
 * read back and verified against the issuer before it is returned.
 */
export async function mintServingCert(state: CaState, issuer: CaEntry, opts: ServingOptions): Promise<ServingCert> {
  // Check the arguments before spending time on a key.
  findIssuer(state, issuer);
  checkValidity(opts.validityMs, "serving certificate");
  const keys = await generateServingKeyPair();
  const pem = signServingCert(state, issuer, keys.publicKey, opts);

  const leaf = parseX509(pem, "the new serving certificate");
  const issuerX = parseX509(issuer.certPem, "the issuer");
  if (!leaf.checkIssued(issuerX) || !leaf.verify(issuerX.publicKey)) {
    throw new CertError("the new serving certificate does not verify against its issuer");
  }
  if (!leaf.checkPrivateKey(createPrivateKey(keys.privateKey))) {
    throw new CertError("the new serving certificate does not match its key");
  }
  const dnsNames = [...new Set(opts.dnsNames)];
  const ipAddresses = [...new Set(opts.ipAddresses ?? [])];
  const missing = [
    ...dnsNames.filter((d) => leaf.checkHost(d, { wildcards: false }) === undefined),
    ...ipAddresses.filter((ip) => leaf.checkIP(ip) === undefined),
  ];
  if (missing.length > 0) throw new CertError(`the new serving certificate does not cover ${missing.join(", ")}`);
  return {
    certPem: ensureTrailingNewline(leaf.toString()),
    keyPem: keys.privateKey,
    ...x509Dates(leaf),
    serial: leaf.serialNumber,
    issuerFingerprint256: issuer.fingerprint256,
    dnsNames,
    ipAddresses,
  };
}

/** Whether `certPem` names `ca`'s subject as its issuer and carries a signature by its key. */
export function signedBy(certPem: string, ca: CaEntry): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const issuer = new X509Certificate(ca.certPem);
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The Secret

/** Secret `data`: base64 of the PEM certificates (oldest first) and of the PKCS#8 PEM key. */
export function toSecretData(state: CaState): Record<string, string> {
  const certs = state.certs.map((c) => ensureTrailingNewline(c.certPem)).join("");
  return {
    [CA_SECRET_KEYS.cert]: Buffer.from(certs, "utf8").toString("base64"),
    [CA_SECRET_KEYS.key]: Buffer.from(state.keyPem, "utf8").toString("base64"),
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(value: string, name: string): string {
  const compact = value.replace(/\s+/g, "");
  if (!BASE64.test(compact)) throw new CertError(`${name} is not base64`);
  return Buffer.from(compact, "base64").toString("utf8");
}

/**
 * The CaState in a Secret's `data` (base64 values). ca.key is required; ca.crt may be missing or
 * empty (the key is kept, renewCa makes a certificate). Throws CertError naming the problem.
 */
export function fromSecretData(data: Record<string, string> | undefined): CaState {
  if (data === undefined) throw new CertError(`the CA Secret has no data (missing ${CA_SECRET_KEYS.key})`);
  const key = data[CA_SECRET_KEYS.key];
  if (key === undefined || key.trim() === "") throw new CertError(`the CA Secret is missing ${CA_SECRET_KEYS.key}`);
  const cert = data[CA_SECRET_KEYS.cert];
  return parseCaState(
    cert === undefined ? "" : decodeBase64(cert, CA_SECRET_KEYS.cert),
    decodeBase64(key, CA_SECRET_KEYS.key),
  );
}

// ---------------------------------------------------------------------------------------------
// Durations

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  y: 365 * 24 * 60 * 60 * 1000,
};
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|y))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|y)/g;

/**
 * Milliseconds in "30s", "10m", "12h", "7d", "5y" (365 days), "250ms", "1h30m"; a plain integer
 * is milliseconds. Throws CertError on anything else.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  let ms: number;
  if (/^\d+$/.test(t)) {
    ms = Number(t);
  } else if (DURATION.test(t)) {
    ms = 0;
    for (const m of t.matchAll(DURATION_PART)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
    ms = Math.round(ms);
  } else {
    throw new CertError(`"${text}" is not a duration (examples: 90s, 10m, 12h, 7d, 1y, 1h30m)`);
  }
  if (!Number.isSafeInteger(ms)) throw new CertError(`"${text}" is too long a duration`);
  return ms;
}
