// Certificates from files (`--tls-cert`/`--tls-key`, e.g. written by cert-manager): loaded,
// checked to belong together, and polled for changes so a renewed pair is swapped into the
// running server. Polling rather than fs.watch: mounted Secrets change by swapping symlinks,
// which fs.watch reports unreliably, and a few small reads every few seconds cost nothing.

import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";

export const DEFAULT_POLL_INTERVAL_MS = 5_000;

export class CertificateFileError extends Error {
  readonly code = "ERR_TLS_FILE";
  constructor(
    /** The file at fault (or both, `cert + key`, when they do not match). */
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CertificateFileError";
  }
}

export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new CertificateFileError(file, `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Checks that `cert` is a certificate, `key` a private key, and that they match. */
export function checkCertificatePair(cert: string, key: string, certFile: string, keyFile: string): CertificatePair {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new CertificateFileError(certFile, `${certFile} does not hold a PEM certificate`, { cause: e });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new CertificateFileError(keyFile, `${keyFile} does not hold an unencrypted PEM private key`, { cause: e });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateFileError(
      `${certFile} + ${keyFile}`,
      `the key in ${keyFile} does not belong to the certificate in ${certFile}`,
    );
  }
  return { cert, key, notAfter: new Date(x509.validTo) };
}

export async function loadCertificateFiles(certFile: string, keyFile: string): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readText(certFile), readText(keyFile)]);
  return checkCertificatePair(cert, key, certFile, keyFile);
}

export interface WatchOptions {
  readonly intervalMs?: number;
  /** A change that cannot be used yet (e.g. the cert is written before the key). Kept: the old pair. */
  readonly onError?: (err: CertificateFileError) => void;
}

export interface CertificateWatch {
  close(): void;
}

/**
 * Calls `onReload` with the new pair whenever the contents of either file change to a valid,
 * matching pair. `current` is the pair already in use, so it is not reported again.
 */
export function watchCertificateFiles(
  certFile: string,
  keyFile: string,
  current: CertificatePair,
  onReload: (pair: CertificatePair) => void,
  opts: WatchOptions = {},
): CertificateWatch {
  let last = `${current.cert}\u0000${current.key}`;
  let lastError = "";
  let busy = false;

  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const [cert, key] = await Promise.all([readText(certFile), readText(keyFile)]);
      const seen = `${cert}\u0000${key}`;
      if (seen === last) return;
      const pair = checkCertificatePair(cert, key, certFile, keyFile);
      last = seen;
      lastError = "";
      onReload(pair);
    } catch (e) {
      const err =
        e instanceof CertificateFileError
          ? e
          : new CertificateFileError(`${certFile} + ${keyFile}`, (e as Error).message, { cause: e });
      // Report each distinct problem once, not every interval.
      if (err.message !== lastError) opts.onError?.(err);
      lastError = err.message;
    } finally {
      busy = false;
    }
  };

  const timer = setInterval(() => void poll(), opts.intervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
