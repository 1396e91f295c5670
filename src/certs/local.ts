// Local certificate mode (`npm start`, tests): a CA and a serving certificate for localhost /
// 127.0.0.1 kept as files in one folder, reused while valid, renewed when not.
//
// Issuing and the renewal rules are those of ./authority.ts, so local certificates rotate the
// same way as the ones the CA Secret manager keeps: a CA that is due is renewed with the same key
// and appended to ca.crt (expired ones dropped), a serving certificate is renewed after two
// thirds of its life, and nothing outlives its CA.

import { X509Certificate, createPrivateKey, randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  caBundlePem,
  caEntryFromPem,
  caNeedsRenewal,
  createCa,
  generateServingKeyPair,
  currentCa,
  leafNeedsRenewal,
  parseCaState,
  pruneExpired,
  renewCa,
  signServingCert,
  signedBy,
  splitPemCertificates,
  splitSans,
  type CaState,
  type KeyPairPem,
} from "./authority.js";

import type { CertificateSource, CertificateSourceDeps } from "./modes.js";
import { readPemFile } from "./read.js";

/** The reason given when the folder's CA files are there but cannot be read as a CA and its key. */
const CA_UNREADABLE = "the CA files cannot be read";

export { generateRsaKeyPair, type KeyPairPem } from "./authority.js";

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
const LOCAL_CA_COMMON_NAME = "sidecar-injector local CA";
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
  /** PEM of the unexpired CA certificates (one key), oldest first: what clients trust. */
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

export interface IssueCaOptions {
  readonly keys: KeyPairPem;
  readonly now: Date;
  readonly days?: number;
  readonly commonName?: string;
}

/** A self-signed CA certificate (PEM) for `keys`: cA true, keyCertSign and cRLSign, 5 years by default. */
export function issueCaCertificate(opts: IssueCaOptions): string {
  const state = renewCa(
    { keyPem: opts.keys.privateKey, certs: [] },
    {
      validityMs: (opts.days ?? CA_VALIDITY_DAYS) * DAY_MS,
      now: opts.now,
      commonName: opts.commonName ?? LOCAL_CA_COMMON_NAME,
    },
  );
  const [entry] = state.certs;
  if (entry === undefined) throw new Error("no CA certificate was issued");
  return entry.certPem;
}

export interface IssueServingOptions {
  /** The serving key pair (only the public key is used). */
  readonly keys: KeyPairPem;
  /** The CA certificate, or several of the CA key's (the newest valid one issues). */
  readonly caCert: string;
  readonly caKey: string;
  /** DNS names and IP addresses; the first DNS name is also the common name. */
  readonly names: readonly string[];
  readonly now: Date;
  /** Validity; capped at the CA's notAfter. */
  readonly days?: number;
}

/** A serving certificate (PEM) signed by the CA: serverAuth, SANs for every name. */
export function issueServingCertificate(opts: IssueServingOptions): string {
  const state = parseCaState(opts.caCert, opts.caKey);
  const issuer = currentCa(state, opts.now);
  if (issuer === undefined) throw new Error("no CA certificate is valid now");
  return signServingCert(state, issuer, opts.keys.publicKey, {
    ...splitSans(opts.names),
    validityMs: (opts.days ?? LEAF_VALIDITY_DAYS) * DAY_MS,
    now: opts.now,
  });
}

function coversName(cert: X509Certificate, name: string): boolean {
  return isIP(name) ? cert.checkIP(name) !== undefined : cert.checkHost(name, { wildcards: false }) !== undefined;
}

/** Why the CA (the key and its certificates) cannot be used at `now` as it is, or undefined. */
export function caProblem(caCert: string, caKey: string, now: Date): string | undefined {
  let state: CaState;
  try {
    state = parseCaState(caCert, caKey);
  } catch (e) {
    return `the CA files cannot be read: ${(e as Error).message}`;
  }
  return caStateProblem(state, now);
}

function caStateProblem(state: CaState, now: Date): string | undefined {
  const current = currentCa(state, now);
  if (current === undefined) {
    if (state.certs.length === 0) return "the CA files hold no certificate";
    return state.certs.some((c) => c.notBefore > now)
      ? "the CA certificate is not valid yet"
      : "the CA certificate has expired";
  }
  if (caNeedsRenewal(current, now)) return "the CA certificate is due for renewal (less than a third of its life left)";
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
    const cas = splitPemCertificates(caCert).map(caEntryFromPem);
    if (cas.length === 0) cas.push(caEntryFromPem(caCert)); // throws the reason
    leaf = new X509Certificate(cert);
    if (!cas.some((ca) => signedBy(cert, ca))) return "the serving certificate is not signed by the CA";
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return "the serving key does not match the serving certificate";
  } catch (e) {
    return `the serving certificate files cannot be read: ${(e as Error).message}`;
  }
  const times = { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
  if (times.notBefore > now) return "the serving certificate is not valid yet";
  if (times.notAfter <= now) return "the serving certificate has expired";
  if (leafNeedsRenewal(times, now))
    return "the serving certificate is due for renewal (two thirds of its life have passed)";
  const missing = names.filter((n) => !coversName(leaf, n));
  if (missing.length > 0) return `the serving certificate does not cover ${missing.join(", ")}`;
  return undefined;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readPemFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes via a temporary file and a rename, so a reader never sees half a key. */
export async function writeAtomically(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: "wx" });
    await chmod(tmp, mode); // the umask could have taken bits away, never added; be exact
    await rename(tmp, file);
  } catch (e) {
    // A full disk, a read-only one: nothing half-written is left behind.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Keys written by someone else with a looser mode are tightened on reuse. */
async function tightenKeyMode(file: string): Promise<void> {
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) await chmod(file, KEY_FILE_MODE);
}

/**
 * Returns the CA and serving certificate in `dir`, generating what is missing or unusable: a CA
 * with less than a third of its life left is renewed with the same key (ca.crt then holds the
 * unexpired certificates, oldest first) and the leaf reissued; unreadable CA files are replaced
 * by a new CA; a leaf that is not signed by the CA, does not match its key, lacks a name, or has
 * had two thirds of its life is reissued from the CA.
 */
export async function ensureLocalCertificates(
  dir: string,
  opts: LocalCertificateOptions = {},
): Promise<LocalCertificates> {
  const now = opts.now ?? new Date();
  const names = [...new Set([...LOCAL_NAMES, ...(opts.extraNames ?? [])])];
  const path = (f: keyof typeof LOCAL_CERT_FILES): string => join(dir, LOCAL_CERT_FILES[f]);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const caCertFile = await readIfExists(path("caCert"));
  const caKeyFile = await readIfExists(path("caKey"));
  let cert = await readIfExists(path("cert"));
  let key = await readIfExists(path("key"));

  const reasons: string[] = [];
  const caOptions = { validityMs: CA_VALIDITY_DAYS * DAY_MS, now, commonName: LOCAL_CA_COMMON_NAME };
  let state: CaState | undefined;
  let caWhy: string | undefined;
  if (caCertFile === undefined && caKeyFile === undefined) {
    caWhy = "no CA in the folder";
  } else if (caCertFile === undefined || caKeyFile === undefined) {
    // Half a CA: replaced by a new one, which whatever trusted the old must be given.
    caWhy = `${CA_UNREADABLE}: ${caCertFile === undefined ? LOCAL_CERT_FILES.caCert : LOCAL_CERT_FILES.caKey} is missing`;
  } else {
    try {
      state = pruneExpired(parseCaState(caCertFile, caKeyFile), now);
      caWhy = caStateProblem(state, now);
    } catch (e) {
      caWhy = `${CA_UNREADABLE}: ${(e as Error).message}`;
    }
  }
  let newCa = false;
  if (state === undefined) {
    reasons.push(caWhy ?? "no CA in the folder");
    state = await createCa(caOptions);
    await writeAtomically(path("caKey"), state.keyPem, KEY_FILE_MODE);
    newCa = true;
  } else {
    if (caWhy !== undefined) {
      reasons.push(caWhy);
      state = renewCa(state, caOptions); // same key, appended
      newCa = true;
    }
    await tightenKeyMode(path("caKey"));
  }
  const caCert = caBundlePem(state, now);
  if (caCert !== caCertFile) await writeAtomically(path("caCert"), caCert, CERT_FILE_MODE);
  const caKey = state.keyPem;

  let newLeaf = false;
  const leafWhy =
    cert === undefined || key === undefined
      ? "no serving certificate in the folder"
      : newCa
        ? "the CA was renewed"
        : leafProblem(caCert, cert, key, names, now);
  if (leafWhy !== undefined || cert === undefined || key === undefined) {
    if (!newCa) reasons.push(leafWhy ?? "no serving certificate in the folder");
    const keys = await generateServingKeyPair();
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

/** How often local certificates are checked for renewal in a long-running `npm start`. */
export const LOCAL_RENEW_CHECK_MS = 12 * 60 * 60 * 1000;

/**
 * Local mode as a certificate source: the certificates in `dir`, generated or renewed now,
 * then checked every LOCAL_RENEW_CHECK_MS and pushed when renewed.
 */
/** What the system said of the certificates' folder, in words, naming the option that chose it. */
const FOLDER_ERRORS: Readonly<Record<string, string>> = {
  EEXIST: "a file of that name is in the way (it must be a folder)",
  ENOTDIR: "a part of the path is a file, not a folder",
  EACCES: "permission denied (the folder must be writable by the injector's user)",
  EPERM: "permission denied (the folder must be writable by the injector's user)",
  EROFS: "the file system is read-only (use --tls-cert and --tls-key, or --cert-mode kubernetes)",
  ENOSPC: "no space left on the device",
};

function folderProblem(e: unknown, dir: string): Error {
  const code = e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined;
  const why = code === undefined ? undefined : FOLDER_ERRORS[code];
  return why === undefined
    ? e instanceof Error
      ? e
      : new Error(String(e))
    : new Error(`cannot keep local certificates in ${dir} (--cert-dir): ${why}`);
}

export async function openLocalSource(
  dir: string,
  { logger }: CertificateSourceDeps,
  extraNames: readonly string[] = [],
): Promise<CertificateSource> {
  const local = await ensureLocalCertificates(dir, { extraNames }).catch((e: unknown) => {
    throw folderProblem(e, dir);
  });
  const line = { dir, generated: local.generated, reason: local.reason || undefined, notAfter: local.notAfter };
  // A CA that was there and could not be read is replaced by one with a new key: whatever
  // trusted the old one (a caBundle, a client's --cacert) must be given the new ca.crt.
  if (local.generated.ca && local.reason.includes(CA_UNREADABLE))
    logger.warn(line, "local certificates generated with a new CA: trust the new ca.crt where the old one was trusted");
  else logger.info(line, local.generated.leaf ? "local certificates generated" : "local certificates reused");
  let renew: ReturnType<typeof setInterval> | undefined;
  const check = (push: (cert: string, key: string) => void): void => {
    ensureLocalCertificates(dir, { extraNames }).then(
      (renewed) => {
        if (!renewed.generated.leaf) return;
        push(renewed.cert, renewed.key);
        logger.info({ dir, reason: renewed.reason, notAfter: renewed.notAfter }, "local certificates renewed");
      },
      (err: unknown) => logger.warn({ err, dir }, "local certificates not renewed"),
    );
  };
  return {
    initial: local,
    serving: () => true,
    start: async (push) => {
      renew = setInterval(() => check(push), LOCAL_RENEW_CHECK_MS);
      renew.unref();
    },
    stop: () => {
      if (renew !== undefined) clearInterval(renew);
    },
  };
}
