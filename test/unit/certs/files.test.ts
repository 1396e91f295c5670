import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CertificateFileError,
  loadCertificateFiles,
  watchCertificateFiles,
  type CertificatePair,
} from "../../../src/certs/files.js";
import { ensureLocalCertificates, type LocalCertificates } from "../../../src/certs/local.js";

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
