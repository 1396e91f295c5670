// Certificates from files (`--tls-cert`/`--tls-key`, e.g. written by cert-manager): loaded,
// checked to belong together, and polled for changes so a renewed pair is swapped into the
// running server. Polling rather than fs.watch: mounted Secrets change by swapping symlinks,
// which fs.watch reports unreliably, and a few small reads every few seconds cost nothing.
//
// A pair is used only while its certificate is valid: at start an expired or not-yet-valid
// pair is an error naming the file and its validity window (the API server would refuse every
// handshake with it); on reload such a pair is reported and the pair in use is kept (a
// not-yet-valid one is taken as soon as it becomes valid). A pair in use that nears its end
// is reported once: whatever renews it (cert-manager renews at a third of the life left) has
// not done so. The clock is injectable.

import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import type { CertReloadFailureReason } from "../telemetry/metrics.js";
import type { CertificateSource, CertificateSourceDeps } from "./modes.js";
import { readPemFile } from "./read.js";

export const DEFAULT_POLL_INTERVAL_MS = 5_000;
/** A pair in use is reported as expiring with this little time left, or a quarter of its life if less. */
export const EXPIRY_WARNING_MAX_MS = 7 * 24 * 60 * 60 * 1000;

export class CertificateFileError extends Error {
  readonly code = "ERR_TLS_FILE";
  constructor(
    /** The file at fault (or both, `cert + key`, when they do not match). */
    readonly file: string,
    /** What is wrong, as a bounded metric label. */
    readonly reason: CertReloadFailureReason,
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
  readonly notBefore: Date;
  readonly notAfter: Date;
}

async function readText(file: string): Promise<string> {
  try {
    return await readPemFile(file);
  } catch (e) {
    throw new CertificateFileError(file, "read", `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * Checks that `cert` is a certificate, `key` a private key, that they match, and that the
 * certificate is valid at `now`.
 */
export function checkCertificatePair(
  cert: string,
  key: string,
  certFile: string,
  keyFile: string,
  now: Date = new Date(),
): CertificatePair {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new CertificateFileError(certFile, "parse", `${certFile} does not hold a PEM certificate`, { cause: e });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new CertificateFileError(keyFile, "parse", `${keyFile} does not hold an unencrypted PEM private key`, {
      cause: e,
    });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateFileError(
      `${certFile} + ${keyFile}`,
      "mismatch",
      `the key in ${keyFile} does not belong to the certificate in ${certFile}`,
    );
  }
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  // No "now" in the messages: the same problem must read the same at every poll.
  const window = `valid from ${iso(notBefore)} to ${iso(notAfter)}`;
  if (now.getTime() < notBefore.getTime()) {
    throw new CertificateFileError(
      certFile,
      "not_yet_valid",
      `the certificate in ${certFile} is not valid yet (${window})`,
    );
  }
  if (now.getTime() >= notAfter.getTime()) {
    throw new CertificateFileError(certFile, "expired", `the certificate in ${certFile} has expired (${window})`);
  }
  return { cert, key, notBefore, notAfter };
}

export async function loadCertificateFiles(
  certFile: string,
  keyFile: string,
  now: Date = new Date(),
): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readText(certFile), readText(keyFile)]);
  return checkCertificatePair(cert, key, certFile, keyFile, now);
}

/** How long before its end a pair is reported as expiring: a quarter of its life, at most 7 days. */
export function expiryWarningMs(pair: CertificatePair): number {
  return Math.min(EXPIRY_WARNING_MAX_MS, (pair.notAfter.getTime() - pair.notBefore.getTime()) / 4);
}

export interface WatchOptions {
  readonly intervalMs?: number;
  /**
   * A change that cannot be used (yet): the cert written before the key, an expired or not yet
   * valid certificate. The old pair is kept. Each distinct problem is reported once.
   */
  readonly onError?: (err: CertificateFileError) => void;
  /** The pair in use has `msLeft` (0 or less: expired) left; reported once per pair, from the start. */
  readonly onExpiring?: (pair: CertificatePair, msLeft: number) => void;
  readonly now?: () => Date;
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
  const now = opts.now ?? (() => new Date());
  let inUse = current;
  let last = `${current.cert}\u0000${current.key}`;
  let lastError = "";
  let warned: CertificatePair | undefined;
  let busy = false;

  const checkExpiry = (): void => {
    if (warned === inUse) return;
    const msLeft = inUse.notAfter.getTime() - now().getTime();
    if (msLeft > expiryWarningMs(inUse)) return;
    warned = inUse;
    opts.onExpiring?.(inUse, msLeft);
  };

  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const [cert, key] = await Promise.all([readText(certFile), readText(keyFile)]);
      const seen = `${cert}\u0000${key}`;
      if (seen === last) {
        lastError = "";
        return;
      }
      const pair = checkCertificatePair(cert, key, certFile, keyFile, now());
      try {
        onReload(pair);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new CertificateFileError(
          `${certFile} + ${keyFile}`,
          "rejected",
          `the TLS server refused the pair in ${certFile} and ${keyFile}: ${why}`,
          { cause: e },
        );
      }
      last = seen;
      lastError = "";
      inUse = pair;
    } catch (e) {
      // readText, checkCertificatePair and the wrapper above throw nothing else.
      const err =
        e instanceof CertificateFileError
          ? e
          : new CertificateFileError(`${certFile} + ${keyFile}`, "read", String(e), { cause: e });
      // Report each distinct problem once, not every interval.
      if (err.message !== lastError) opts.onError?.(err);
      lastError = err.message;
    } finally {
      busy = false;
      checkExpiry();
    }
  };

  checkExpiry();

  const timer = setInterval(() => void poll(), opts.intervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

/**
 * Files mode as a certificate source: the pair loaded now (an error naming the file if it
 * cannot be used), then watched; a changed pair that cannot be used is counted by reason and
 * logged, and the pair in use kept.
 */
export async function openFileSource(
  certFile: string,
  keyFile: string,
  { logger, metrics }: CertificateSourceDeps,
): Promise<CertificateSource> {
  const filePair = await loadCertificateFiles(certFile, keyFile);
  logger.info({ cert: certFile, notAfter: filePair.notAfter }, "serving certificate loaded from files");
  let watch: CertificateWatch | undefined;
  const onReload =
    (push: (cert: string, key: string) => void) =>
    (pair: CertificatePair): void => {
      push(pair.cert, pair.key);
      logger.info({ cert: certFile, notAfter: pair.notAfter }, "serving certificate reloaded");
    };
  const reports: WatchOptions = {
    onError: (err) => {
      metrics.certReloadFailures.inc({ reason: err.reason });
      logger.warn(
        { file: err.file, reason: err.reason, message: err.message },
        "serving certificate not reloaded, the previous one is still served",
      );
    },
    onExpiring: (pair, msLeft) =>
      logger.warn(
        { cert: certFile, notAfter: pair.notAfter, hoursLeft: Math.floor(msLeft / 3_600_000) },
        msLeft > 0
          ? "serving certificate expires soon and has not been renewed"
          : "serving certificate has expired and has not been renewed",
      ),
  };
  return {
    initial: filePair,
    serving: () => true,
    start: async (push) => {
      watch = watchCertificateFiles(certFile, keyFile, filePair, onReload(push), reports);
    },
    stop: () => watch?.close(),
  };
}
