// Local certificate mode (`npm start`, tests): a CA and a serving certificate for localhost /
// 127.0.0.1 kept as files in one folder, reused while valid, regenerated when not.
//
// Keys come from crypto.generateKeyPair (off the event loop); certificates are assembled and
// signed with node-forge and read back with crypto.X509Certificate, which is also what decides
// whether files on disk can be reused.

import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import forge from "node-forge";

export const LOCAL_CERT_FILES = {
  caCert: "ca.crt",
  caKey: "ca.key",
  cert: "tls.crt",
  key: "tls.key",
} as const;

/** Names every local serving certificate carries. */
export const LOCAL_NAMES: readonly string[] = ["localhost", "127.0.0.1"];

const DAY_MS = 24 * 60 * 60 * 1000;
export const CA_VALIDITY_DAYS = 5 * 365;
export const LEAF_VALIDITY_DAYS = 365;
/** A leaf with less than this left is replaced. */
export const LEAF_MIN_REMAINING_MS = DAY_MS;
/** A CA with less than this left is replaced (and with it the leaf). */
export const CA_MIN_REMAINING_MS = 30 * DAY_MS;
/** Certificates start this long before `now`, for clocks that are a little behind. */
const BACKDATE_MS = 60 * 60 * 1000;
const RSA_BITS = 2048;
const KEY_FILE_MODE = 0o600;
const CERT_FILE_MODE = 0o644;

export interface LocalCertificateOptions {
  /** The current time; tests move it. */
  readonly now?: Date;
  /** More DNS names or IP addresses for the serving certificate. */
  readonly extraNames?: readonly string[];
}

export interface LocalCertificates {
  readonly dir: string;
  /** PEM of the CA certificate: what clients trust. */
  readonly ca: string;
  /** PEM of the serving certificate. */
  readonly cert: string;
  /** PEM (PKCS#8) of the serving key. */
  readonly key: string;
  readonly notAfter: Date;
  /** What was written this time; both false when the files were reused. */
  readonly generated: { readonly ca: boolean; readonly leaf: boolean };
  /** Why something was generated, for the log; empty when reused. */
  readonly reason: string;
}

export interface KeyPairPem {
  readonly publicKey: string;
  readonly privateKey: string;
}

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

/** 128 random bits as a positive DER INTEGER with no leading zero byte. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function subject(commonName: string): forge.pki.CertificateField[] {
  return [
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "sidecar-injector" },
  ];
}

export interface IssueCaOptions {
  readonly keys: KeyPairPem;
  readonly now: Date;
  readonly days?: number;
  readonly commonName?: string;
}

/** A self-signed CA certificate (PEM): cA true, keyCertSign and cRLSign, 5 years by default. */
export function issueCaCertificate(opts: IssueCaOptions): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(opts.keys.publicKey);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(opts.now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(opts.now.getTime() + (opts.days ?? CA_VALIDITY_DAYS) * DAY_MS);
  const name = subject(opts.commonName ?? "sidecar-injector local CA");
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(opts.keys.privateKey), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

export interface IssueServingOptions {
  /** The serving key pair (only the public key is used). */
  readonly keys: KeyPairPem;
  readonly caCert: string;
  readonly caKey: string;
  /** DNS names and IP addresses; the first is also the common name. */
  readonly names: readonly string[];
  readonly now: Date;
  /** Validity; capped at the CA's notAfter. */
  readonly days?: number;
}

/** A serving certificate (PEM) signed by the CA: serverAuth, SANs for every name. */
export function issueServingCertificate(opts: IssueServingOptions): string {
  const ca = forge.pki.certificateFromPem(opts.caCert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(opts.keys.publicKey);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(opts.now.getTime() - BACKDATE_MS);
  const wanted = opts.now.getTime() + (opts.days ?? LEAF_VALIDITY_DAYS) * DAY_MS;
  cert.validity.notAfter = new Date(Math.min(wanted, ca.validity.notAfter.getTime()));
  cert.setSubject(subject(opts.names[0] ?? "localhost"));
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: opts.names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(opts.caKey), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

function coversName(cert: X509Certificate, name: string): boolean {
  return isIP(name) ? cert.checkIP(name) !== undefined : cert.checkHost(name, { wildcards: false }) !== undefined;
}

/** Why the CA cannot be used at `now`, or undefined if it can. */
export function caProblem(caCert: string, caKey: string, now: Date): string | undefined {
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caCert);
    if (!ca.ca) return "the CA certificate is not a CA";
    if (!ca.checkPrivateKey(createPrivateKey(caKey))) return "the CA key does not match the CA certificate";
  } catch (e) {
    return `the CA files cannot be read: ${(e as Error).message}`;
  }
  if (new Date(ca.validFrom) > now) return "the CA certificate is not valid yet";
  if (new Date(ca.validTo).getTime() - now.getTime() <= CA_MIN_REMAINING_MS) return "the CA certificate expires soon";
  return undefined;
}

/** Why the serving certificate cannot be used at `now`, or undefined if it can. */
export function leafProblem(
  caCert: string,
  cert: string,
  key: string,
  names: readonly string[],
  now: Date,
): string | undefined {
  let leaf: X509Certificate;
  try {
    const ca = new X509Certificate(caCert);
    leaf = new X509Certificate(cert);
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return "the serving certificate is not signed by the CA";
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return "the serving key does not match the serving certificate";
  } catch (e) {
    return `the serving certificate files cannot be read: ${(e as Error).message}`;
  }
  if (new Date(leaf.validFrom) > now) return "the serving certificate is not valid yet";
  if (new Date(leaf.validTo).getTime() - now.getTime() <= LEAF_MIN_REMAINING_MS) {
    return "the serving certificate expires within a day";
  }
  const missing = names.filter((n) => !coversName(leaf, n));
  if (missing.length > 0) return `the serving certificate does not cover ${missing.join(", ")}`;
  return undefined;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes via a temporary file and a rename, so a reader never sees half a key. */
async function writeAtomically(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, data, { mode, flag: "wx" });
  await chmod(tmp, mode); // the umask could have taken bits away, never added; be exact
  await rename(tmp, file);
}

/** Keys written by someone else with a looser mode are tightened on reuse. */
async function tightenKeyMode(file: string): Promise<void> {
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) await chmod(file, KEY_FILE_MODE);
}

/**
 * Returns the CA and serving certificate in `dir`, generating what is missing or unusable:
 * a CA that is invalid or expires within 30 days is replaced together with the leaf; a leaf
 * that is not signed by the CA, does not match its key, lacks a name, or expires within a day
 * is reissued from the existing CA.
 */
export async function ensureLocalCertificates(
  dir: string,
  opts: LocalCertificateOptions = {},
): Promise<LocalCertificates> {
  const now = opts.now ?? new Date();
  const names = [...new Set([...LOCAL_NAMES, ...(opts.extraNames ?? [])])];
  const path = (f: keyof typeof LOCAL_CERT_FILES): string => join(dir, LOCAL_CERT_FILES[f]);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  let caCert = await readIfExists(path("caCert"));
  let caKey = await readIfExists(path("caKey"));
  let cert = await readIfExists(path("cert"));
  let key = await readIfExists(path("key"));

  const reasons: string[] = [];
  let newCa = false;
  const caWhy = caCert === undefined || caKey === undefined ? "no CA in the folder" : caProblem(caCert, caKey, now);
  if (caWhy !== undefined || caCert === undefined || caKey === undefined) {
    reasons.push(caWhy ?? "no CA in the folder");
    const keys = await generateRsaKeyPair();
    caKey = keys.privateKey;
    caCert = issueCaCertificate({ keys, now });
    await writeAtomically(path("caKey"), caKey, KEY_FILE_MODE);
    await writeAtomically(path("caCert"), caCert, CERT_FILE_MODE);
    newCa = true;
  } else {
    await tightenKeyMode(path("caKey"));
  }

  let newLeaf = false;
  const leafWhy =
    cert === undefined || key === undefined
      ? "no serving certificate in the folder"
      : newCa
        ? "the CA was replaced"
        : leafProblem(caCert, cert, key, names, now);
  if (leafWhy !== undefined || cert === undefined || key === undefined) {
    if (!newCa) reasons.push(leafWhy ?? "no serving certificate in the folder");
    const keys = await generateRsaKeyPair();
    key = keys.privateKey;
    cert = issueServingCertificate({ keys, caCert, caKey, names, now });
    await writeAtomically(path("key"), key, KEY_FILE_MODE);
    await writeAtomically(path("cert"), cert, CERT_FILE_MODE);
    newLeaf = true;
  } else {
    await tightenKeyMode(path("key"));
  }

  if (newCa || newLeaf) {
    // Read back what was just written with an independent parser before anything serves it.
    const problem = caProblem(caCert, caKey, now) ?? leafProblem(caCert, cert, key, names, now);
    if (problem !== undefined) throw new Error(`generated certificates in ${dir} are unusable: ${problem}`);
  }

  return {
    dir,
    ca: caCert,
    cert,
    key,
    notAfter: new Date(new X509Certificate(cert).validTo),
    generated: { ca: newCa, leaf: newLeaf },
    reason: reasons.join("; "),
  };
}
