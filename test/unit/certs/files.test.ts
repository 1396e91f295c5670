import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { createCa, mintServingCert, type CaState, type ServingCert } from "../../../src/certs/authority.js";
import {
  CertificateFileError,
  EXPIRY_WARNING_MAX_MS,
  checkCertificatePair,
  expiryWarningMs,
  loadCertificateFiles,
  watchCertificateFiles,
  type CertificatePair,
} from "../../../src/certs/files.js";
import { ensureLocalCertificates, type LocalCertificates } from "../../../src/certs/local.js";
import { MAX_PEM_FILE_BYTES, readPemFile } from "../../../src/certs/read.js";
import { runServe } from "../../../src/main.js";

let root: string;
let a: LocalCertificates;
let b: LocalCertificates;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "sidecar-injector-files-"));
  a = await ensureLocalCertificates(join(root, "a"));
  b = await ensureLocalCertificates(join(root, "b"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function pairFiles(name: string, cert: string, key: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(root, `${name}.crt`);
  const keyFile = join(root, `${name}.key`);
  await writeFile(certFile, cert);
  await writeFile(keyFile, key);
  return { certFile, keyFile };
}

/** Replaces a file the way a Secret volume update does: never half-written. */
async function replace(file: string, content: string): Promise<void> {
  await writeFile(`${file}.new`, content);
  await rename(`${file}.new`, file);
}

function waitFor<T>(register: (resolve: (v: T) => void) => void, ms = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

describe("loadCertificateFiles", () => {
  it("loads a matching pair", async () => {
    const { certFile, keyFile } = await pairFiles("ok", a.cert, a.key);
    const pair = await loadCertificateFiles(certFile, keyFile);
    assert.equal(pair.cert, a.cert);
    assert.equal(pair.key, a.key);
    assert.equal(pair.notAfter.getTime(), a.notAfter.getTime());
  });

  it("names the key file when the key does not belong to the certificate", async () => {
    const { certFile, keyFile } = await pairFiles("mismatch", a.cert, b.key);
    await assert.rejects(loadCertificateFiles(certFile, keyFile), (e: unknown) => {
      assert.ok(e instanceof CertificateFileError);
      assert.equal(e.code, "ERR_TLS_FILE");
      assert.ok(e.message.includes(keyFile) && e.message.includes(certFile), e.message);
      assert.match(e.message, /does not belong/);
      return true;
    });
  });

  it("names the certificate file when it holds no certificate", async () => {
    const { certFile, keyFile } = await pairFiles("badcert", "hello", a.key);
    await assert.rejects(loadCertificateFiles(certFile, keyFile), (e: unknown) => {
      assert.ok(e instanceof CertificateFileError);
      assert.equal(e.file, certFile);
      return true;
    });
  });

  it("names the key file when it holds no key", async () => {
    const { certFile, keyFile } = await pairFiles("badkey", a.cert, a.cert);
    await assert.rejects(loadCertificateFiles(certFile, keyFile), (e: unknown) => {
      assert.ok(e instanceof CertificateFileError);
      assert.equal(e.file, keyFile);
      return true;
    });
  });

  it("names a missing file", async () => {
    const missing = join(root, "nope.crt");
    await assert.rejects(loadCertificateFiles(missing, join(root, "ok.key")), (e: unknown) => {
      assert.ok(e instanceof CertificateFileError);
      assert.equal(e.file, missing);
      assert.ok(e.message.includes(missing));
      return true;
    });
  });
});

describe("watchCertificateFiles", () => {
  it("reports a new matching pair once, and problems without dropping the old pair", async () => {
    const { certFile, keyFile } = await pairFiles("watched", a.cert, a.key);
    const current = await loadCertificateFiles(certFile, keyFile);
    const reloads: CertificatePair[] = [];
    const errors: CertificateFileError[] = [];
    let onReload: ((p: CertificatePair) => void) | undefined;
    let onError: ((e: CertificateFileError) => void) | undefined;
    const watch = watchCertificateFiles(
      certFile,
      keyFile,
      current,
      (p) => {
        reloads.push(p);
        onReload?.(p);
      },
      {
        intervalMs: 20,
        onError: (e) => {
          errors.push(e);
          onError?.(e);
        },
      },
    );
    try {
      // Unchanged files: nothing reported.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(reloads.length, 0);

      // The certificate changes before the key: a mismatch, reported, not reloaded.
      const err = waitFor<CertificateFileError>((r) => (onError = r));
      await replace(certFile, b.cert);
      assert.match((await err).message, /does not belong/);
      assert.equal(reloads.length, 0);

      // Then the key: the new pair is reloaded.
      const reloaded = waitFor<CertificatePair>((r) => (onReload = r));
      await replace(keyFile, b.key);
      assert.equal((await reloaded).cert, b.cert);

      await new Promise((r) => setTimeout(r, 100));
      assert.equal(reloads.length, 1, "the same pair is not reported twice");
      assert.equal(errors.length, 1, "the same problem is not reported every interval");
    } finally {
      watch.close();
    }
  });
});

describe("a certificate path that is not a regular file", () => {
  it("is refused at once, without waiting for a writer or reading without end, and the watch goes on", async () => {
    const dir = join(root, "odd");
    await mkdir(dir, { recursive: true });
    const fifo = join(dir, "fifo.crt");
    execFileSync("mkfifo", [fifo]);
    const big = join(dir, "big.crt");
    await writeFile(big, Buffer.alloc(MAX_PEM_FILE_BYTES + 1, "x"));
    for (const [file, why] of [
      [fifo, /not a regular file/],
      ["/dev/zero", /not a regular file/],
      [dir, /not a regular file/],
      [big, /longer than 1048576 bytes/],
    ] as const) {
      await assert.rejects(readPemFile(file), why, file);
      await assert.rejects(loadCertificateFiles(file, file), (e: unknown) => {
        assert.ok(e instanceof CertificateFileError && e.reason === "read" && e.file === file, String(e));
        return true;
      });
    }
    assert.equal(await readPemFile(join(root, "a", "tls.crt")), a.cert);

    // A watched certificate swapped for a FIFO: reported; the pair written after it is taken.
    const { certFile, keyFile } = await pairFiles("fifo-watched", a.cert, a.key);
    const current = await loadCertificateFiles(certFile, keyFile);
    let onError: ((e: CertificateFileError) => void) | undefined;
    let onReload: ((p: CertificatePair) => void) | undefined;
    const watch = watchCertificateFiles(certFile, keyFile, current, (p) => onReload?.(p), {
      intervalMs: 20,
      onError: (e) => onError?.(e),
    });
    try {
      const err = waitFor<CertificateFileError>((r) => (onError = r));
      await rename(certFile, `${certFile}.bak`);
      execFileSync("mkfifo", [certFile]);
      assert.match((await err).message, /not a regular file/);
      const reloaded = waitFor<CertificatePair>((r) => (onReload = r));
      await rm(certFile);
      await writeFile(keyFile, b.key);
      await writeFile(certFile, b.cert);
      assert.equal((await reloaded).cert, b.cert);
    } finally {
      watch.close();
    }
  });
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let ca: CaState | undefined;
/** A serving certificate for 127.0.0.1 valid from `from` for `validityMs` (not backdated below 10 minutes). */
async function mint(from: Date, validityMs: number): Promise<ServingCert> {
  ca ??= await createCa({ validityMs: 3650 * DAY, now: new Date(Date.now() - 400 * DAY) });
  return mintServingCert(ca, ca.certs[0]!, {
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    validityMs,
    now: from,
  });
}

describe("validity of a pair from files", () => {
  it("refuses an expired or not-yet-valid pair, naming the file and the validity window", async () => {
    const { certFile, keyFile } = await pairFiles("window", a.cert, a.key);
    const pair = await loadCertificateFiles(certFile, keyFile);
    const from = pair.notBefore.toISOString().replace(/\.000Z$/, "Z");
    const to = pair.notAfter.toISOString().replace(/\.000Z$/, "Z");

    const expired = (e: unknown): boolean => {
      assert.ok(e instanceof CertificateFileError);
      assert.equal(e.code, "ERR_TLS_FILE");
      assert.equal(e.reason, "expired");
      assert.equal(e.file, certFile);
      assert.equal(e.message, `the certificate in ${certFile} has expired (valid from ${from} to ${to})`);
      return true;
    };
    await assert.rejects(loadCertificateFiles(certFile, keyFile, pair.notAfter), expired);
    await assert.rejects(loadCertificateFiles(certFile, keyFile, new Date(pair.notAfter.getTime() + DAY)), expired);
    await assert.rejects(
      loadCertificateFiles(certFile, keyFile, new Date(pair.notBefore.getTime() - 1000)),
      (e: unknown) => {
        assert.ok(e instanceof CertificateFileError);
        assert.equal(e.reason, "not_yet_valid");
        assert.equal(e.message, `the certificate in ${certFile} is not valid yet (valid from ${from} to ${to})`);
        return true;
      },
    );
    // The first and the last valid instant are accepted.
    assert.equal(checkCertificatePair(a.cert, a.key, certFile, keyFile, pair.notBefore).cert, a.cert);
    assert.equal(
      checkCertificatePair(a.cert, a.key, certFile, keyFile, new Date(pair.notAfter.getTime() - 1)).cert,
      a.cert,
    );
  });

  it("gives every other problem its bounded reason", async () => {
    const cases: [string, string, string][] = [
      ["mismatch", a.cert, b.key],
      ["parse", "hello", a.key],
      ["parse", a.cert, a.cert],
    ];
    for (const [reason, cert, key] of cases) {
      assert.throws(
        () => checkCertificatePair(cert, key, "c.crt", "c.key"),
        (e: unknown) => e instanceof CertificateFileError && e.reason === reason,
      );
    }
    await assert.rejects(
      loadCertificateFiles(join(root, "absent.crt"), join(root, "absent.key")),
      (e: unknown) => e instanceof CertificateFileError && e.reason === "read",
    );
  });

  it("warns a quarter of the life before the end, at most 7 days before", () => {
    const at = (ms: number): Date => new Date(Date.UTC(2030, 0, 1) + ms);
    const pair = (lifeMs: number): CertificatePair => ({ cert: "", key: "", notBefore: at(0), notAfter: at(lifeMs) });
    assert.equal(expiryWarningMs(pair(DAY)), 6 * HOUR);
    assert.equal(expiryWarningMs(pair(90 * DAY)), EXPIRY_WARNING_MAX_MS);
  });

  it("serve refuses to start with an expired pair, with the file and its window in the error", async () => {
    const old = await mint(new Date(Date.now() - 2 * DAY), DAY);
    const { certFile, keyFile } = await pairFiles("expired", old.certPem, old.keyPem);
    await assert.rejects(
      runServe({ port: 0, tlsCert: certFile, tlsKey: keyFile, certDir: join(root, "never-used"), logLevel: "silent" }),
      (e: unknown) => {
        assert.ok(e instanceof CertificateFileError);
        assert.equal(
          e.code,
          "ERR_TLS_FILE",
          "the CLI's path for errors the user must fix: a message and exit status 2",
        );
        assert.ok(e.message.includes(certFile) && e.message.includes("has expired (valid from "), e.message);
        return true;
      },
    );
  });

  it("a watch keeps the pair in use when the files turn expired or not yet valid, takes one when it becomes valid, and warns once before the end", async () => {
    const t0 = new Date(Date.now() - HOUR);
    const first = await mint(t0, 10 * DAY);
    const later = await mint(new Date(t0.getTime() + 2 * DAY), 10 * DAY);
    const stale = await mint(new Date(t0.getTime() - 40 * DAY), 10 * DAY);
    const { certFile, keyFile } = await pairFiles("clocked", first.certPem, first.keyPem);
    let now = new Date(t0.getTime() + HOUR);
    const current = await loadCertificateFiles(certFile, keyFile, now);

    const reloads: CertificatePair[] = [];
    const errors: CertificateFileError[] = [];
    const expiring: { pair: CertificatePair; msLeft: number }[] = [];
    let onReload: ((p: CertificatePair) => void) | undefined;
    let onError: ((e: CertificateFileError) => void) | undefined;
    let onExpiring: (() => void) | undefined;
    const watch = watchCertificateFiles(
      certFile,
      keyFile,
      current,
      (p) => {
        reloads.push(p);
        onReload?.(p);
      },
      {
        intervalMs: 20,
        now: () => now,
        onError: (e) => {
          errors.push(e);
          onError?.(e);
        },
        onExpiring: (pair, msLeft) => {
          expiring.push({ pair, msLeft });
          onExpiring?.();
        },
      },
    );
    try {
      assert.equal(expiring.length, 0, "ten days left: no warning");

      // A pair that starts in two days: reported, not taken.
      // Between the two renames a poll may see a mismatch: wait for the reason that matters.
      const notYet = waitFor<CertificateFileError>((r) => (onError = (e) => e.reason === "not_yet_valid" && r(e)));
      await writeFile(`${keyFile}.new`, later.keyPem);
      await writeFile(`${certFile}.new`, later.certPem);
      await Promise.all([rename(`${keyFile}.new`, keyFile), rename(`${certFile}.new`, certFile)]);
      const e1 = await notYet;
      assert.equal(e1.reason, "not_yet_valid");
      assert.equal(e1.file, certFile);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(reloads.length, 0);
      assert.equal(errors.filter((e) => e.reason === "not_yet_valid").length, 1, "reported once, not at every poll");

      // Its time comes: taken without any change to the files.
      const taken = waitFor<CertificatePair>((r) => (onReload = r));
      now = new Date(t0.getTime() + 2 * DAY + HOUR);
      assert.equal((await taken).cert, later.certPem);

      // Files that hold an expired pair: reported, the pair in use kept.
      const expired = waitFor<CertificateFileError>((r) => (onError = (e) => e.reason === "expired" && r(e)));
      await writeFile(`${keyFile}.new`, stale.keyPem);
      await writeFile(`${certFile}.new`, stale.certPem);
      await Promise.all([rename(`${keyFile}.new`, keyFile), rename(`${certFile}.new`, certFile)]);
      assert.equal((await expired).reason, "expired");
      assert.equal(reloads.length, 1);

      // The pair in use nears its end (7 days is more than a quarter of 10 days: 2.5 days).
      assert.equal(expiring.length, 0);
      const warned = waitFor<void>((r) => (onExpiring = r));
      now = new Date(later.notAfter.getTime() - DAY);
      await warned;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(expiring.length, 1, "once per pair");
      assert.equal(expiring[0]?.pair.cert, later.certPem);
      assert.equal(expiring[0]?.msLeft, DAY);
    } finally {
      watch.close();
    }
  });

  it("a pair the server refuses is reported as rejected, not taken as the one in use, and tried again", async () => {
    const { certFile, keyFile } = await pairFiles("refused", a.cert, a.key);
    const current = await loadCertificateFiles(certFile, keyFile);
    let refuse = 3;
    const errors: CertificateFileError[] = [];
    const taken = waitFor<CertificatePair>((resolve) => {
      const watch = watchCertificateFiles(
        certFile,
        keyFile,
        current,
        (p) => {
          if (refuse-- > 0) throw new Error("ee key too small");
          watch.close();
          resolve(p);
        },
        { intervalMs: 20, onError: (e) => errors.push(e) },
      );
    });
    await replace(keyFile, b.key);
    await replace(certFile, b.cert);
    assert.equal((await taken).cert, b.cert);
    const rejected = errors.filter((e) => e.reason === "rejected");
    assert.equal(rejected.length, 1, "reported once, though refused three times");
    assert.equal(
      rejected[0]?.message,
      `the TLS server refused the pair in ${certFile} and ${keyFile}: ee key too small`,
    );
  });

  it("serve counts a reload refused for expiry and keeps serving the pair it has", async () => {
    const good = await mint(new Date(Date.now() - HOUR), 10 * DAY);
    const old = await mint(new Date(Date.now() - 3 * DAY), DAY);
    const { certFile, keyFile } = await pairFiles("served", good.certPem, good.keyPem);
    const h = await runServe({
      port: 0,
      tlsCert: certFile,
      tlsKey: keyFile,
      certDir: join(root, "never-used"),
      logLevel: "silent",
    });
    try {
      await replace(keyFile, old.keyPem);
      await replace(certFile, old.certPem);
      // The default poll interval is 5 s: wait for the count, at most 30 s.
      const failures = async (): Promise<string> => {
        const res = await fetchMetrics(h.port);
        return /^sidecar_injector_cert_reload_failures_total\{reason="expired"\} (\d+)$/m.exec(res)?.[1] ?? "absent";
      };
      assert.equal(await failures(), "0");
      for (let i = 0; i < 300 && (await failures()) === "0"; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await failures(), "1");
      const served = await new Promise<X509Certificate | undefined>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: h.port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerX509Certificate());
          socket.end();
        });
        socket.on("error", reject);
      });
      assert.equal(served?.serialNumber, good.serial);
    } finally {
      await h.close();
    }
  });
});

function fetchMetrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      socket.write("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    });
    let data = "";
    socket.on("data", (c: Buffer) => (data += c.toString("utf8")));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}

describe("readPemFile", () => {
  it("reads a file to its end, whatever its size when it was opened, and refuses one past the bound", async () => {
    const dir = join(root, "grow");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "tls.crt");
    // Larger than one read, and past the bound by one byte.
    await writeFile(file, a.cert.repeat(100));
    assert.equal(await readPemFile(file), a.cert.repeat(100));
    await writeFile(file, "x".repeat(300_001));
    await assert.rejects(readPemFile(file, 300_000), /longer than 300000 bytes/);
    assert.equal((await readPemFile(file, 300_001)).length, 300_001);
    // An empty file is read as empty (a writer between its truncation and its write).
    await writeFile(file, "");
    assert.equal(await readPemFile(file), "");
  });
});
