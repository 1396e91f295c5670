import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureLocalCertificates } from "../../../src/certs/local.js";
import { runServe } from "../../../src/main.js";
import { JSON_HEADERS, podReview, send } from "./helpers.js";

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "sidecar-injector-serve-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("runServe", () => {
  it("generates local certificates, serves and becomes ready, then stops on close()", async () => {
    const certDir = join(root, "local");
    const h = await runServe({ port: 0, certDir, logLevel: "silent" });
    let closed = false;
    try {
      assert.equal(h.host, "127.0.0.1");
      assert.equal(h.url, `https://127.0.0.1:${h.port}`);
      const ca = await readFile(join(certDir, "ca.crt"), "utf8");
      assert.equal((await stat(join(certDir, "tls.key"))).mode & 0o777, 0o600);

      assert.equal((await send(h.port, ca, { method: "GET", path: "/healthz" })).status, 200);
      assert.equal((await send(h.port, ca, { method: "GET", path: "/readyz" })).status, 200);
      const res = await send(h.port, ca, {
        headers: JSON_HEADERS,
        body: JSON.stringify(podReview({ uid: "serve-1" })),
      });
      assert.equal(res.status, 200);
      assert.equal((res.json().response as { uid: string }).uid, "serve-1");

      await h.close();
      closed = true;
      await assert.rejects(send(h.port, ca, { method: "GET", path: "/healthz" }), /ECONNREFUSED/);
    } finally {
      if (!closed) await h.close();
    }
  });

  it("serves the certificate files it is given", async () => {
    const pair = await ensureLocalCertificates(join(root, "files"));
    const h = await runServe({
      port: 0,
      tlsCert: join(root, "files", "tls.crt"),
      tlsKey: join(root, "files", "tls.key"),
      certDir: join(root, "never-used"),
      logLevel: "silent",
    });
    try {
      assert.equal((await send(h.port, pair.ca, { method: "GET", path: "/readyz" })).status, 200);
      await assert.rejects(stat(join(root, "never-used")), /ENOENT/);
    } finally {
      await h.close();
    }
  });

  it("refuses a certificate without its key, a key that does not match, and an unknown log level", async () => {
    await assert.rejects(
      runServe({ port: 0, tlsCert: "x.crt", logLevel: "silent" }),
      /--tls-cert and --tls-key must be given together/,
    );
    const a = await ensureLocalCertificates(join(root, "a"));
    const b = await ensureLocalCertificates(join(root, "b"));
    assert.notEqual(a.key, b.key);
    await assert.rejects(
      runServe({
        port: 0,
        tlsCert: join(root, "a", "tls.crt"),
        tlsKey: join(root, "b", "tls.key"),
        logLevel: "silent",
      }),
      (e: Error) => e.message.includes(join(root, "b", "tls.key")),
    );
    await assert.rejects(runServe({ port: 0, certDir: join(root, "a"), logLevel: "chatty" }), /unknown log level/);
  });

  it("refuses a config file with an unknown key, naming it", async () => {
    const file = join(root, "bad.yaml");
    await writeFile(file, "polcy: enabled\n");
    await assert.rejects(
      runServe({ port: 0, configFile: file, certDir: join(root, "a"), logLevel: "silent" }),
      /polcy/,
    );
  });

  it("drains and exits 0 on SIGTERM", async () => {
    const certDir = join(root, "signal");
    const main = resolve("src/main.ts");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import(${JSON.stringify(main)}).then((m) => m.runServe({ port: 0, certDir: ${JSON.stringify(certDir)} }))`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const url = await new Promise<string>((resolveUrl, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /"url":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(out);
        if (m?.[1]) resolveUrl(m[1]);
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${err}`)));
    });
    const port = Number(new URL(url).port);
    const ca = await readFile(join(certDir, "ca.crt"), "utf8");
    assert.equal((await send(port, ca, { method: "GET", path: "/readyz" })).status, 200);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, err);
    assert.match(out, /"msg":"draining"/);
    assert.match(out, /"msg":"server stopped"/);
    assert.ok(!out.includes("BEGIN"), "no key material in the logs");
  });
});
