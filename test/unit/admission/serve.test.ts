import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import tls from "node:tls";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureLocalCertificates } from "../../../src/certs/local.js";
import { runServe } from "../../../src/main.js";
import { JSON_HEADERS, podReview, send } from "./helpers.js";

/** A POST to `path` whose body never ends: it holds a place among the requests in flight until destroyed. */
async function holdingRequest(port: number, ca: string, path: string): Promise<tls.TLSSocket> {
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca }, () => resolve(s));
    s.once("error", reject);
  });
  socket.on("error", () => undefined);
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
  );
  return socket;
}

/**
 * GETs /healthz of `port` until it answers `status` (a request is taken in flight after its
 * headers arrive). A phase of the test is a few such requests, far within the 10 s a held body
 * is given before its place is freed (408).
 */
async function untilStatus(port: number, ca: string, status: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const got = (await send(port, ca, { method: "GET", path: "/healthz" })).status;
    if (got === status) return;
    if (tries >= 200) assert.fail(`port ${port}: /healthz still answers ${got}, not ${status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

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

  it("local mode: --tls-san names go into the local certificate beside localhost and 127.0.0.1", async () => {
    const certDir = join(root, "local-sans");
    const h = await runServe({
      port: 0,
      certDir,
      logLevel: "silent",
      kubernetes: { extraSans: ["injector.example", "10.1.2.3"] },
    });
    try {
      const cert = new X509Certificate(await readFile(join(certDir, "tls.crt")));
      assert.equal(cert.checkHost("injector.example"), "injector.example");
      assert.equal(cert.checkIP("10.1.2.3"), "10.1.2.3");
      assert.equal(cert.checkHost("localhost"), "localhost");
    } finally {
      await h.close();
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

  it("counts a request shed on the webhook port as a refused review, and one shed on the admin port not", async () => {
    const certDir = join(root, "sheds");
    const h = await runServe({ port: 0, adminPort: 0, maxConcurrentRequests: 1, certDir, logLevel: "silent" });
    const held: tls.TLSSocket[] = [];
    try {
      const ca = await readFile(join(certDir, "ca.crt"), "utf8");
      const adminPort = Number(new URL(h.adminUrl ?? "").port);
      const overloaded = async (): Promise<string> =>
        (await send(adminPort, ca, { method: "GET", path: "/metrics" })).body
          .split("\n")
          .filter((l) => l.startsWith('sidecar_injection_failure_total{reason="ERR_OVERLOADED"}'))
          .join("\n");
      /** Holds the one place of `port` with a request whose body never ends; resolves once a request there is shed. */
      const hold = async (port: number, path: string): Promise<void> => {
        const socket = await holdingRequest(port, ca, path);
        held.push(socket);
        await untilStatus(port, ca, 503);
      };
      const release = async (port: number): Promise<void> => {
        held.pop()?.destroy();
        await untilStatus(port, ca, 200);
      };

      const review = { headers: JSON_HEADERS, body: JSON.stringify(podReview({ uid: "shed-1" })) };
      await hold(adminPort, "/preview");
      assert.equal((await send(adminPort, ca, { method: "GET", path: "/metrics" })).status, 503);
      assert.equal((await send(adminPort, ca, { ...review, path: "/inject" })).status, 503);
      await release(adminPort);
      assert.equal(await overloaded(), "", "nothing shed on the admin port is a refused review");

      await hold(h.port, "/inject");
      assert.equal((await send(h.port, ca, { ...review, path: "/inject/cluster/c1/net/n1" })).status, 503);
      await release(h.port);
      assert.equal(
        await overloaded(),
        'sidecar_injection_failure_total{reason="ERR_OVERLOADED"} 1',
        "the review shed on the webhook port is, its shed /healthz calls are not",
      );
    } finally {
      for (const socket of held) socket.destroy();
      await h.close();
    }
  });

  /** runServe in a child process, on a free port; resolves once it serves. */
  async function serveChild(
    name: string,
    options: string,
  ): Promise<{
    child: ChildProcess;
    port: number;
    ca: string;
    out: () => string;
    err: () => string;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    logged: (msg: string) => Promise<void>;
  }> {
    const certDir = join(root, name);
    const main = resolve("src/main.ts");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import(${JSON.stringify(main)}).then((m) => m.runServe({ port: 0, certDir: ${JSON.stringify(certDir)}, ${options} }))`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on("exit", (code, signal) => r({ code, signal })),
    );
    const logged = (msg: string): Promise<void> =>
      new Promise((done, reject) => {
        const look = (): void => {
          if (out.includes(`"msg":${JSON.stringify(msg)}`)) {
            child.stdout.off("data", look);
            done();
          }
        };
        child.stdout.on("data", look);
        look();
        void exited.then(({ code, signal }) => reject(new Error(`exited ${code ?? signal} before ${msg}: ${err}`)));
      });
    await logged("sidecar injector serving");
    const url = /"url":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1] ?? "";
    const ca = await readFile(join(certDir, "ca.crt"), "utf8");
    return { child, port: Number(new URL(url).port), ca, out: () => out, err: () => err, exited, logged };
  }

  it("drains and exits 0 on SIGTERM; SIGUSR1 starts no inspector", async () => {
    const s = await serveChild("signal", "");
    assert.equal((await send(s.port, s.ca, { method: "GET", path: "/readyz" })).status, 200);
    // SIGUSR1 does not start Node's inspector (a debugger on 127.0.0.1:9229).
    s.child.kill("SIGUSR1");
    await s.logged("SIGUSR1 ignored: the inspector starts only with --inspect");
    assert.doesNotMatch(s.err(), /Debugger listening/);
    s.child.kill("SIGTERM");
    assert.deepEqual(await s.exited, { code: 0, signal: null }, s.err());
    assert.match(s.out(), /"msg":"draining"/);
    assert.match(s.out(), /"msg":"server stopped"/);
    assert.ok(!s.out().includes("BEGIN"), "no key material in the logs");
  });

  it("goes on draining on SIGTERM, SIGHUP or SIGUSR1 (logged), and ends at once on SIGINT", async () => {
    // A shutdown delay far longer than the test: the drain is under way throughout.
    const s = await serveChild("signal-again", "shutdownDelayMs: 600000");
    try {
      s.child.kill("SIGTERM");
      await s.logged("draining");
      s.child.kill("SIGTERM");
      await s.logged("already draining: SIGTERM ignored (SIGINT or SIGKILL ends the process at once)");
      // SIGHUP and SIGUSR1 stay ignored during the drain (a signal whose listener is gone would end it).
      s.child.kill("SIGHUP");
      await s.logged("SIGHUP ignored: send SIGTERM to stop");
      s.child.kill("SIGUSR1");
      await s.logged("SIGUSR1 ignored: the inspector starts only with --inspect");
      // Still there, still accepting, not ready.
      assert.equal((await send(s.port, s.ca, { method: "GET", path: "/readyz" })).status, 503);
      s.child.kill("SIGINT");
      assert.deepEqual(await s.exited, { code: null, signal: "SIGINT" });
    } finally {
      s.child.kill("SIGKILL");
    }
  });
});
