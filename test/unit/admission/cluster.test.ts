// `serve --workers N`: real processes (the CLI under tsx, a primary and its workers), real
// HTTPS on 127.0.0.1. Which worker answered a review is read from its log line (pino writes the
// pid of the process on every line), never from the response.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFile, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { Agent, request } from "node:https";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import { ensureLocalCertificates } from "../../../src/certs/local.js";
import { DEFAULT_RESTART_POLICY, nextRestart, resolveWorkerCount } from "../../../src/workers/primary.js";
import { JSON_HEADERS, podReview, send } from "./helpers.js";
import { CLI, serve, type Served } from "./served.js";

/**
 * A client on one kept-alive connection (an agent of one socket, as the API server keeps a few):
 * each review says which certificate the connection was made with.
 */
function keptAlive(
  port: number,
  ca: string | string[],
): { review(uid: string): Promise<{ status: number; fingerprint: string }>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: "localhost" });
  return {
    review: (uid) =>
      new Promise((ok, fail) => {
        const body = JSON.stringify(podReview({ uid }));
        const req = request(
          {
            host: "127.0.0.1",
            port,
            path: "/inject",
            method: "POST",
            agent,
            headers: { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            // getPeerX509Certificate() gives nothing on a reused connection; getPeerCertificate() does.
            const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256 ?? "";
            res.resume();
            res.on("end", () => ok({ status: res.statusCode ?? 0, fingerprint }));
          },
        );
        req.on("error", fail);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/** A review on a new connection (a new TLS handshake: the primary hands it to a worker). */
async function review(port: number, ca: string, uid: string): Promise<number> {
  const res = await send(port, ca, { headers: JSON_HEADERS, body: JSON.stringify(podReview({ uid })) });
  return res.status;
}

/** A plain TCP connection to the webhook port, once open. */
function rawConnection(port: number): Promise<Socket> {
  return new Promise<Socket>((ok, fail) => {
    const socket = connectTcp(port, "127.0.0.1", () => ok(socket));
    socket.once("error", fail);
  });
}

/**
 * Starts a TLS handshake on `socket` at once (its ClientHello waits in the kernel until a worker
 * reads it) and sends a review once secured: `answer` is the status, or 0 if the server closed
 * the connection without one (shed); `closed` and `secured` say so far whether it was closed
 * and whether its handshake completed.
 */
function reviewOverTls(
  socket: Socket,
  ca: string,
  uid: string,
  /** Sent instead of the review (a probe's GET). */
  request?: string,
): { answer: Promise<number>; closed(): boolean; text(): string } {
  let closed = false;
  let text = "";
  const body = JSON.stringify(podReview({ uid }));
  const answer = new Promise<number>((ok) => {
    const tls = connectTls({ socket, ca, servername: "localhost" }, () => {
      tls.end(
        request ??
          `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    tls.setEncoding("latin1");
    tls.on("data", (d: string) => (text += d));
    tls.on("error", () => undefined);
    tls.on("close", () => {
      closed = true;
      ok(Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0));
    });
  });
  return { answer, closed: () => closed, text: () => text };
}

/**
 * Opens `n` plain TCP connections together, and only once all are open sends a review over
 * TLS on each: the primary accepts them as one burst, as when a client that opens a connection
 * for each request due while its others wait (the API server, vegeta) meets a stall. The
 * status of each answer; 0 for a connection closed without one.
 */
async function burst(port: number, ca: string, n: number): Promise<number[]> {
  const raw = await Promise.all(Array.from({ length: n }, () => rawConnection(port)));
  return Promise.all(raw.map((socket, i) => reviewOverTls(socket, ca, `burst-${i}`).answer));
}

/** The pid of the process that logged the review of `uid`. */
async function answeredBy(s: Served, uid: string): Promise<number> {
  const line = await s.waitFor((l) => l.msg === "admission review" && l.uid === uid, 30_000);
  return Number(line.pid);
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m?.[1] !== undefined, `${name} in the scrape`);
  return Number(m[1]);
}

describe("nextRestart and resolveWorkerCount", () => {
  it("doubles the delay with each death in a row up to the cap, and a long-lived worker resets it", () => {
    const p = DEFAULT_RESTART_POLICY;
    let deaths = 0;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const next = nextRestart(p, deaths, 100);
      deaths = next.deathsInARow;
      delays.push(next.delayMs);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.deepEqual(nextRestart(p, deaths, p.stableAfterMs), { deathsInARow: 1, delayMs: 1000 });
    assert.deepEqual(nextRestart(p, 1000, 0).delayMs, 30000);
  });

  it("takes 0 and auto as the cores available, any other count as given", () => {
    assert.equal(resolveWorkerCount(0, 6), 6);
    assert.equal(resolveWorkerCount("auto", 2), 2);
    assert.equal(resolveWorkerCount("auto", 0), 1);
    assert.equal(resolveWorkerCount(3, 2), 3);
  });
});

describe("serve --workers: bad values", () => {
  for (const bad of ["-1", "two", "1.5", "10000"]) {
    it(`refuses --workers ${bad}, naming it`, async () => {
      const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", `--workers=${bad}`], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
      assert.equal(code, 2);
      assert.match(
        err,
        new RegExp(`--workers must be a number of processes.*${JSON.stringify(bad).replace(/[.]/g, "\\.")}`),
      );
    });
  }
});

describe("serve --workers 2 (local certificates, an admin port)", () => {
  let root: string;
  let s: Served;
  let ca: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-"));
    s = await serve(["--workers", "2", "--admin-port", "0", "--cert-dir", join(root, "certs")]);
    ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
  });
  after(async () => {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  });

  // First, while no connection has ever been open: the distributor's counts are exact.
  it("puts kept-alive connections opened one after the other two on each worker, and one scrape of either sums both", async () => {
    const clients = Array.from({ length: 4 }, () => keptAlive(s.port, ca));
    try {
      const workerOf: number[] = [];
      for (const [i, c] of clients.entries()) {
        assert.equal((await c.review(`kept-${i}-0`)).status, 200);
        workerOf.push(await answeredBy(s, `kept-${i}-0`));
      }
      // Least connections: the second goes to the worker without one, the fourth likewise.
      assert.notEqual(workerOf[0], workerOf[1]);
      assert.notEqual(workerOf[2], workerOf[3]);
      assert.deepEqual([...new Set(workerOf)].sort(), [...s.pids].sort());
      for (const pid of s.pids) assert.equal(workerOf.filter((p) => p === pid).length, 2);
      // Every later review on a connection is answered by the worker that has it.
      for (const [i, c] of clients.entries()) {
        for (let j = 1; j < 5; j++) {
          assert.equal((await c.review(`kept-${i}-${j}`)).status, 200);
          assert.equal(await answeredBy(s, `kept-${i}-${j}`), workerOf[i]);
        }
      }
    } finally {
      for (const c of clients) c.close();
    }
    const reviews = 4 * 5;
    // Each scrape is answered by one worker, and each shows every review, whichever worker answered it.
    for (let i = 0; i < 4; i++) {
      const scrape = await send(s.adminPort ?? 0, ca, { method: "GET", path: "/metrics" });
      assert.equal(scrape.status, 200);
      assert.equal(metricValue(scrape.body, "sidecar_injection_requests_total"), reviews);
      assert.equal(metricValue(scrape.body, "sidecar_injection_duration_seconds_count"), reviews);
    }
    // The webhook port does not serve /metrics when there is an admin port.
    assert.equal((await send(s.port, ca, { method: "GET", path: "/metrics" })).status, 404);
  });

  it("runs two workers besides the primary, each ready", async () => {
    assert.equal(s.pids.length, 2);
    assert.ok(!s.pids.includes(s.child.pid ?? -1));
    assert.ok(s.adminPort !== undefined && s.adminPort !== s.port);
    // /readyz is each process's own: asked on new connections, both workers answer it.
    for (let i = 0; i < 4; i++) assert.equal((await send(s.port, ca, { method: "GET", path: "/readyz" })).status, 200);
  });

  it("answers a burst of 64 connections opened at once, as one process does: none shed", async () => {
    // Node hands a worker one connection at a time and sends the next only once the worker has
    // taken the last, so a burst is on the way in the primary for as many worker event-loop turns
    // as it has connections, however little each turn costs: a bound on how many are on the way
    // shed bursts that two workers carry easily (a bound of 16 each, alone, closed 29-32 of these 64).
    const statuses = await burst(s.port, ca, 64);
    const closedUnanswered = statuses.filter((st) => st === 0).length;
    assert.equal(closedUnanswered, 0, `${closedUnanswered} of 64 connections closed unanswered`);
    assert.equal(statuses.filter((st) => st === 200).length, 64);
    assert.equal(s.lines().filter((l) => l.msg === "connections shed: every worker is at its bound").length, 0);
  });

  it("ignores SIGHUP in the primary and in the workers", async () => {
    const [worker] = s.pids;
    assert.ok(worker !== undefined);
    s.child.kill("SIGHUP");
    process.kill(worker, "SIGHUP");
    await s.waitFor((l) => l.msg === "SIGHUP ignored: send SIGTERM to stop" && l.pid === s.child.pid, 30_000);
    await s.waitFor((l) => l.msg === "SIGHUP ignored: send SIGTERM to stop" && l.pid === worker, 30_000);
    for (let i = 0; i < 4; i++) assert.equal(await review(s.port, ca, `after-hup-${i}`), 200);
    assert.ok(!s.lines().some((l) => l.msg === "worker exited unexpectedly; replacing it"));
  });

  it("replaces a killed worker, while the other keeps answering", async () => {
    const [victim, survivor] = s.pids;
    assert.ok(victim !== undefined && survivor !== undefined);
    process.kill(victim, "SIGKILL");
    const died = await s.waitFor(
      (l) => l.msg === "worker exited unexpectedly; replacing it" && l.workerPid === victim,
      30_000,
    );
    assert.equal(died.signal, "SIGKILL");
    assert.equal(died.restartInMs, 1000);
    // Until the replacement listens, every connection goes to the survivor.
    const uids = Array.from({ length: 6 }, (_, i) => `survivor-${i}`);
    for (const uid of uids) assert.equal(await review(s.port, ca, uid), 200);
    const replaced = await s.waitFor((l) => l.msg === "worker replaced");
    const newPid = Number(replaced.workerPid);
    assert.ok(newPid !== victim && newPid !== survivor);
    await s.waitFor((l) => l.msg === "every worker ready" && Array.isArray(l.pids) && l.pids.includes(newPid));
    // The replacement (no connection yet) gets the first new connection, or, if the survivor
    // shows none open either and has its turn, the second: ties go round robin.
    const seen = new Set<number>();
    for (let i = 0; i < 2 && !seen.has(newPid); i++) {
      assert.equal(await review(s.port, ca, `after-replace-${i}`), 200);
      seen.add(await answeredBy(s, `after-replace-${i}`));
    }
    assert.ok(seen.has(newPid), "the replacement answers reviews");
    assert.ok(!seen.has(victim));
  });

  it("drains every worker on SIGTERM under keep-alive load: no request fails, every client is told to close, exit 0", async () => {
    const clients = 6;
    let answered = 0;
    let failed = 0;
    let closedByServer = 0;
    let stop = false;
    const body = JSON.stringify(podReview({ uid: "keep-alive" }));
    const loop = async (): Promise<void> => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
      try {
        while (!stop) {
          const r = await new Promise<{ status: number; close: boolean }>((ok, fail) => {
            const req = request(
              {
                host: "127.0.0.1",
                port: s.port,
                path: "/inject",
                method: "POST",
                agent,
                headers: { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) },
              },
              (res) => {
                res.resume();
                res.on("end", () => ok({ status: res.statusCode ?? 0, close: res.headers.connection === "close" }));
              },
            );
            req.on("error", fail);
            req.end(body);
          }).catch(() => undefined);
          if (r === undefined || r.status !== 200) {
            failed += 1;
            return;
          }
          answered += 1;
          // A client told to close goes elsewhere (its endpoint is being removed): it stops here.
          if (r.close) {
            closedByServer += 1;
            return;
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const loops = Array.from({ length: clients }, () => loop());
    while (answered < 200 && failed === 0) await new Promise((r) => setTimeout(r, 20));
    const before = answered;
    s.child.kill("SIGTERM");
    const timer = setTimeout(() => (stop = true), 30_000);
    await Promise.all(loops);
    clearTimeout(timer);
    assert.equal(failed, 0);
    assert.ok(answered > before, "requests sent after SIGTERM were answered");
    assert.equal(closedByServer, clients, "every kept-alive client got Connection: close");
    assert.equal(await s.exited, 0, s.stderr());
    const stopped = s
      .lines()
      .filter((l) => l.msg === "server stopped")
      .map((l) => l.pid);
    assert.equal(new Set(stopped).size, 2, "both workers drained");
    const summary = s.lines().find((l) => l.msg === "workers stopped");
    assert.equal(summary?.failed, 0);
  });
});

describe("serve --workers 2 with certificate files", () => {
  let root: string | undefined;
  let s: Served | undefined;
  after(async () => {
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    // Unset when the tests were filtered out (--test-name-pattern).
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("pushes a reloaded pair to every worker: connections made after the push see it on both", async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-files-"));
    const a = await ensureLocalCertificates(join(root, "a"));
    const b = await ensureLocalCertificates(join(root, "b"));
    const cert = join(root, "tls.crt");
    const key = join(root, "tls.key");
    await copyFile(join(root, "a", "tls.crt"), cert);
    await copyFile(join(root, "a", "tls.key"), key);
    s = await serve(["--workers", "2", "--tls-cert", cert, "--tls-key", key]);
    const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

    // Connections kept open throughout: none closes, so the distributor's counts are exact, and
    // each pair of connections opened one after the other lands on both workers.
    const clients: Array<ReturnType<typeof keptAlive>> = [];
    const connect = async (uid: string): Promise<{ fingerprint: string; pid: number }> => {
      const c = keptAlive(s?.port ?? 0, [a.ca, b.ca]);
      clients.push(c);
      const r = await c.review(uid);
      assert.equal(r.status, 200);
      return { fingerprint: r.fingerprint, pid: await answeredBy(s as Served, uid) };
    };
    const old = [await connect("before-0"), await connect("before-1")];
    for (const c of old) assert.equal(c.fingerprint, fingerprintOf(a.cert));
    assert.equal(new Set(old.map((c) => c.pid)).size, 2);
    // Replaced the way a mounted Secret is: each file swapped whole.
    await copyFile(join(root, "b", "tls.key"), `${key}.new`);
    await copyFile(join(root, "b", "tls.crt"), `${cert}.new`);
    await rename(`${key}.new`, key);
    await rename(`${cert}.new`, cert);
    await s.waitFor((l) => l.msg === "serving certificate reloaded", 60_000);
    await s.waitFor((l) => l.msg === "every worker ready" && l.generation === 2, 30_000);

    const renewed = [await connect("after-0"), await connect("after-1")];
    for (const c of renewed) assert.equal(c.fingerprint, fingerprintOf(b.cert), "a handshake after the push");
    assert.equal(new Set(renewed.map((c) => c.pid)).size, 2, "handshakes with the new pair on both workers");
    // The connections made before keep the pair they were made with.
    assert.equal((await clients[0]?.review("before-again"))?.fingerprint, fingerprintOf(a.cert));
    for (const c of clients) c.close();
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0, s.stderr());
  });
});

describe("serve --workers 2 --shutdown-delay: the primary keeps handing connections during the delay", () => {
  let root: string | undefined;
  let s: Served | undefined;
  after(async () => {
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    // Unset when the tests were filtered out (--test-name-pattern).
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  /** A review on a new connection: its status and Connection header, or how it failed and whether TLS was reached. */
  const attempt = (
    port: number,
    ca: string,
    uid: string,
  ): Promise<{ status: number; close: boolean } | { code: string; secured: boolean }> =>
    new Promise((ok) => {
      const body = JSON.stringify(podReview({ uid }));
      let secured = false;
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/inject",
          method: "POST",
          agent: false,
          ca,
          headers: { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => ok({ status: res.statusCode ?? 0, close: res.headers.connection === "close" }));
        },
      );
      req.on("socket", (socket) => socket.once("secureConnect", () => (secured = true)));
      req.on("error", (err: NodeJS.ErrnoException) => ok({ code: err.code ?? err.message, secured }));
      req.end(body);
    });

  it("answers every new connection until it stops accepting, each answer closing its connection; then refuses before TLS; exit 0", async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-delay-"));
    s = await serve(["--workers", "2", "--shutdown-delay", "6s", "--cert-dir", join(root, "certs")]);
    const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
    const served = s;
    s.child.kill("SIGTERM");
    for (const pid of s.pids) await s.waitFor((l) => l.msg === "draining" && l.pid === pid, 30_000);
    // Not ready from the start of the drain, while still answering.
    const ready = await send(s.port, ca, { method: "GET", path: "/readyz" });
    assert.equal(ready.status, 503);
    const answered = new Set<number>();
    let last: { code: string; secured: boolean } | undefined;
    for (let i = 0; last === undefined; i++) {
      const r = await attempt(served.port, ca, `delay-${i}`);
      if ("code" in r) {
        last = r;
        break;
      }
      assert.equal(r.status, 200, `review ${i} during the delay`);
      assert.equal(r.close, true, `review ${i} answered with Connection: close`);
      answered.add(await answeredBy(served, `delay-${i}`));
    }
    // The first connections after the drain began were answered, by both workers (least
    // connections, each closed before the next: ties go round robin).
    assert.deepEqual([...answered].sort(), [...s.pids].sort());
    // The end: the primary's listener closed; never a connection reset after its handshake.
    assert.equal(last.secured, false, `ended with ${last.code}`);
    assert.ok(["ECONNREFUSED", "ECONNRESET"].includes(last.code), last.code);
    assert.equal(await s.exited, 0, s.stderr());
    assert.equal(s.lines().find((l) => l.msg === "workers stopped")?.failed, 0);
    assert.ok(!s.lines().some((l) => l.msg === "connections shed: every worker is at its bound"));
  });
});

describe("serve --workers 2: a worker that dies while draining", () => {
  let root: string | undefined;
  let s: Served | undefined;
  after(async () => {
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    // Unset when the tests were filtered out (--test-name-pattern).
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("is not replaced, and the primary exits 1 once the other has drained", async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-fail-"));
    // The shutdown delay keeps both workers draining long enough to kill one meanwhile.
    s = await serve(["--workers", "2", "--shutdown-delay", "3s", "--cert-dir", join(root, "certs")]);
    const [victim, other] = s.pids;
    assert.ok(victim !== undefined && other !== undefined);
    s.child.kill("SIGTERM");
    await s.waitFor((l) => l.msg === "draining" && l.pid === victim, 30_000);
    process.kill(victim, "SIGKILL");
    assert.equal(await s.exited, 1, s.stderr());
    const failed = s.lines().find((l) => l.msg === "worker failed while stopping");
    assert.equal(failed?.workerPid, victim);
    assert.equal(failed?.signal, "SIGKILL");
    assert.ok(
      s.lines().some((l) => l.msg === "server stopped" && l.pid === other),
      "the other worker drained",
    );
    assert.equal(s.lines().find((l) => l.msg === "workers stopped")?.failed, 1);
    assert.ok(!s.lines().some((l) => l.msg === "worker replaced"));
  });
});

describe("serve --workers 2: admin-port connections of a worker killed before it took them", () => {
  let root: string | undefined;
  let s: Served | undefined;
  let stopped: number[] = [];
  after(async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // Already gone.
      }
    }
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it("are answered by the worker left, none left open in the primary", { timeout: 120_000 }, async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-admin-"));
    s = await serve(["--workers", "2", "--admin-port", "0", "--cert-dir", join(root, "certs")]);
    const adminPort = s.adminPort;
    assert.ok(adminPort !== undefined);
    const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
    stopped = [...s.pids];
    for (const pid of stopped) process.kill(pid, "SIGSTOP");
    const probes = (await Promise.all(Array.from({ length: 4 }, () => rawConnection(adminPort)))).map((socket) =>
      reviewOverTls(socket, ca, "", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    // With node:cluster's round robin the primary would have accepted them by now and handed
    // one to each stopped worker; the one handed to the worker killed would stay open for good.
    await new Promise((r) => setTimeout(r, 500));
    const [killed, left] = stopped;
    assert.ok(killed !== undefined && left !== undefined);
    process.kill(killed, "SIGKILL");
    process.kill(left, "SIGCONT");
    stopped = [];
    const statuses = await Promise.race([
      Promise.all(probes.map((p) => p.answer)),
      new Promise<string>((r) => setTimeout(() => r("still open after 60 s"), 60_000).unref()),
    ]);
    assert.deepEqual(statuses, [200, 200, 200, 200]);
  });
});

describe("serve --workers 2 with both workers stopped (SIGSTOP): the primary's bound on hand-overs", () => {
  // One worker is no primary (`--workers 1` is the single process), so both of two are stopped:
  // their event loops stand still, and every connection handed to them stays unacknowledged.
  let root: string | undefined;
  let s: Served | undefined;
  let stopped: number[] = [];
  const resume = (): void => {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // Already gone.
      }
    }
    stopped = [];
  };
  after(async () => {
    resume();
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  /** A new connection carrying a review (reviewOverTls). */
  const open = async (port: number, ca: string, uid: string): Promise<ReturnType<typeof reviewOverTls>> =>
    reviewOverTls(await rawConnection(port), ca, uid);

  it(
    "holds 16 hand-overs per worker, answers new connections 503 with Retry-After once the oldest has waited the bound, and the held ones once the workers run",
    { timeout: 240_000 },
    async (t) => {
      root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-stuck-"));
      s = await serve(["--workers", "2", "--admin-port", "0", "--cert-dir", join(root, "certs")]);
      const served = s;
      const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
      assert.equal(s.pids.length, 2);
      // Both answer first: the distributor counts no connection open or on the way.
      for (let i = 0; i < 2; i++) assert.equal(await review(s.port, ca, `before-${i}`), 200);

      const perWorker = 16; // MAX_UNACKNOWLEDGED_HANDOVERS
      const bound = perWorker * s.pids.length;
      stopped = [...s.pids];
      for (const pid of stopped) process.kill(pid, "SIGSTOP");
      let conns: Array<Awaited<ReturnType<typeof open>>>;
      try {
        // As many as the count bound lets on the way, opened at once: none can be shed (a worker
        // is skipped only with 16 on the way; least load, ties in turn, puts 16 on each).
        conns = await Promise.all(Array.from({ length: bound }, (_, i) => open(served.port, ca, `held-${i}`)));
        // Then one at a time, each given a moment to be answered, until one is: that happens only
        // once both workers have 16 on the way, the oldest for the wait bound (a second), and the
        // primary answers it. Bounded: without the bound (or a much larger one) none is answered.
        const giveUpAt = Date.now() + 15_000;
        while (!conns.some((c) => c.closed()) && Date.now() < giveUpAt) {
          const c = await open(served.port, ca, `probe-${conns.length}`);
          conns.push(c);
          await Promise.race([c.answer, new Promise((r) => setTimeout(r, 250))]);
        }
        assert.ok(
          conns.some((c) => c.closed()),
          `no connection shed with both workers stopped, after ${conns.length} opened (${bound} to reach the count bound)`,
        );
        // While the workers are stopped, every connection answered so far was answered by the primary.
        for (const c of conns.filter((x) => x.closed())) assert.match(c.text(), /^HTTP\/1\.1 503 /);
        // A probe shed too: answered 503, logged, not counted among the refused reviews.
        const probe = reviewOverTls(
          await rawConnection(served.port),
          ca,
          "",
          "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert.equal(await probe.answer, 503);
        // One more, shed too, whose handshake the primary refuses (TLS 1.1 only): counted as a
        // worker's failed handshake is, and not as a refused review (it carried none), as with
        // one process.
        const old = connectTls({
          socket: await rawConnection(served.port),
          ca,
          servername: "localhost",
          minVersion: "TLSv1.1",
          maxVersion: "TLSv1.1",
          ciphers: "DEFAULT:@SECLEVEL=0",
        });
        old.on("error", () => undefined);
        await new Promise((r) => old.once("close", r));
      } finally {
        resume();
      }

      const statuses = await Promise.all(conns.map((c) => c.answer));
      // In the order opened: the held ones, all answered once the workers ran, then the shed ones
      // (once both workers are at the bound, stopped, every new connection is shed).
      const held = statuses.findIndex((st) => st !== 200);
      assert.ok(held >= 0, "a connection was shed");
      const shed = statuses.length - held;
      assert.deepEqual(
        statuses.slice(held),
        Array.from({ length: shed }, () => 503),
        `statuses after the first shed: ${statuses.slice(held).join(",")}`,
      );
      // What the API server retries: a 503 that says when, on a connection that then closes.
      for (const c of conns.slice(held)) {
        assert.match(c.text(), /\r\nretry-after: 1\r\n/i);
        assert.match(c.text(), /\r\nconnection: close\r\n/i);
        assert.match(c.text(), /"code":"ERR_OVERLOADED"/);
      }
      // At least the count bound was held, and not much more: those opened one at a time while the
      // oldest hand-over had waited less than a second (a handful at a 250 ms pace) — a bound of
      // 64 per worker, or none, holds over 128.
      t.diagnostic(`${held} held (${held - bound} opened one at a time), then ${shed} shed`);
      assert.ok(held >= bound, `${held} held, fewer than ${bound}`);
      assert.ok(held <= bound + perWorker, `${held} held before the first shed: more than ${bound + perWorker}`);

      // The shed are counted (summed by the primary, which sheds) and logged, with each worker at the bound.
      const scrape = await send(s.adminPort ?? 0, ca, { method: "GET", path: "/metrics" });
      assert.equal(scrape.status, 200);
      // The shed reviews; not the shed probe, nor the connection whose handshake failed.
      assert.equal(metricValue(scrape.body, 'sidecar_injection_failure_total\\{reason="ERR_OVERLOADED"\\}'), shed);
      assert.equal(metricValue(scrape.body, 'sidecar_injector_tls_handshake_failures_total\\{reason="[^"]*"\\}'), 1);
      const shedMsg = "connections shed: every worker is at its bound";
      const first = await s.waitFor((l) => l.msg === shedMsg, 30_000);
      const logged = s.lines().filter((l) => l.msg === shedMsg);
      assert.equal(first.pid, s.child.pid, "logged by the primary");
      assert.equal(first.code, "ERR_OVERLOADED");
      const loads = first.workers as Array<{ unacknowledged: number }>;
      const waited = first.waitedMs as number[];
      assert.equal(loads.length, 2);
      for (const w of loads) assert.ok(w.unacknowledged >= perWorker, JSON.stringify(first));
      for (const ms of waited)
        assert.ok(ms >= 1_000, `the oldest hand-over had waited the bound: ${JSON.stringify(first)}`);
      const shedLogged = logged.reduce((n, l) => n + Number(l.shed), 0);
      // Connections shed: the reviews, the probe and the failed handshake (the last not yet logged, maybe).
      assert.ok(shedLogged >= 1 && shedLogged <= shed + 2, `${shedLogged} logged as shed, ${shed} reviews seen`);

      // And the workers serve on: a review on a new connection is answered.
      assert.equal(await review(s.port, ca, "after-resume"), 200);
      s.child.kill("SIGTERM");
      assert.equal(await s.exited, 0, s.stderr());
    },
  );
});

describe("serve --workers 2: connections reset before their hand-over (a connect-then-reset flood)", () => {
  // The workers are stopped (SIGSTOP), so that what the primary passes them stays on its way, and
  // the primary too while the connections are opened and reset, so that every one is reset by the
  // time it is accepted: the hand-over of a connection whose client has reset it must not take the
  // place of a live one. Before, the primary passed every one on, reset or not, and with
  // `--max-connections` of them on the way to each worker, every later connection was shed, the
  // API server's too. (One reset while it waits for its turn is dropped then: hand-over.test.ts.)
  let root: string | undefined;
  let s: Served | undefined;
  let stopped: number[] = [];
  const resume = (pids: readonly number[] = stopped): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // Already gone.
      }
    }
    stopped = stopped.filter((p) => !pids.includes(p));
  };
  after(async () => {
    resume();
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it(
    "are closed by the primary, never passed on, each counted as a reset handshake; a live one after them is answered",
    { timeout: 240_000 },
    async () => {
      root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-reset-"));
      const maxConnections = 16;
      s = await serve([
        "--workers",
        "2",
        "--admin-port",
        "0",
        "--max-connections",
        String(maxConnections),
        "--cert-dir",
        join(root, "certs"),
      ]);
      const served = s;
      const primaryPid = s.child.pid ?? 0;
      const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
      const resetMetric = 'sidecar_injector_tls_handshake_failures_total\\{reason="reset"\\}';
      const metric = async (name: string): Promise<number> =>
        metricValue((await send(served.adminPort ?? 0, ca, { method: "GET", path: "/metrics" })).body, name);
      const resetsBefore = await metric(resetMetric);

      stopped = [...s.pids, primaryPid];
      for (const pid of stopped) process.kill(pid, "SIGSTOP");
      // Four times the bound on hand-overs on the way to one worker: they wait in the kernel's
      // backlog, each reset by its client as soon as it is open.
      const resets = 4 * maxConnections;
      await Promise.all(
        Array.from({ length: resets }, async () => {
          const socket = await rawConnection(served.port);
          socket.on("error", () => undefined);
          socket.resetAndDestroy();
        }),
      );
      // Then a live connection with a review, as the API server's: accepted after them.
      const live = reviewOverTls(await rawConnection(served.port), ca, "live");
      resume([primaryPid]);
      // The primary accepts them all while the workers stand still: shed, the live one would be
      // answered now (503), by the primary; held for a worker, it is not.
      await Promise.race([live.answer, new Promise((r) => setTimeout(r, 2_000))]);
      resume();
      assert.equal(
        await live.answer,
        200,
        `the live connection after ${resets} reset ones: ${live.text().slice(0, 200)}`,
      );
      assert.ok(!s.lines().some((l) => l.msg === "connections shed: every worker is at its bound"), "nothing shed");
      // Each reset one counted once, as a reset handshake, as a single process counts it.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const counted = (await metric(resetMetric)) - resetsBefore;
        if (counted >= resets) {
          assert.equal(counted, resets);
          break;
        }
        assert.ok(Date.now() < deadline, `${counted} of ${resets} resets counted`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const scrape = await send(served.adminPort ?? 0, ca, { method: "GET", path: "/metrics" });
      assert.doesNotMatch(scrape.body, /sidecar_injection_failure_total\{reason="ERR_OVERLOADED"\} [1-9]/);
      s.child.kill("SIGTERM");
      assert.equal(await s.exited, 0, s.stderr());
    },
  );
});

describe("serve --workers 2 --admin-port: every worker dead at once", () => {
  let root: string | undefined;
  let s: Served | undefined;
  after(async () => {
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it(
    "answers the probes and the scrape on the admin port 503 not ready, saying why, until a replacement takes them",
    { timeout: 240_000 },
    async (t) => {
      root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-dead-"));
      s = await serve(["--workers", "2", "--admin-port", "0", "--cert-dir", join(root, "certs")]);
      const served = s;
      const adminPort = s.adminPort ?? 0;
      const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
      const paths = ["/readyz", "/healthz", "/metrics"];
      const ask = (
        port: number,
        path: string,
      ): Promise<{ status: number; body: string; retryAfter?: string } | { error: string }> =>
        send(port, ca, { method: "GET", path }).then(
          (r) => ({
            status: r.status,
            body: r.body,
            ...(typeof r.headers["retry-after"] === "string" ? { retryAfter: r.headers["retry-after"] } : {}),
          }),
          (e: NodeJS.ErrnoException) => ({ error: e.code ?? e.message }),
        );
      let pids = [...s.pids];
      // The replacements come a second after the deaths (2 s after a second death in a row, 4 s
      // after a third): asked at once, the primary answers. Should a busy machine let a
      // replacement answer first, both are killed again, the next window twice as long.
      for (let round = 1; ; round++) {
        const dead = pids;
        for (const pid of dead) process.kill(pid, "SIGKILL");
        for (const pid of dead)
          await served.waitFor(
            (l) => l.msg === "worker exited unexpectedly; replacing it" && l.workerPid === pid,
            30_000,
          );
        const answers = await Promise.all([...paths.map((p) => ask(adminPort, p)), ask(served.port, "/readyz")]);
        t.diagnostic(`round ${round}: ${JSON.stringify(answers.map((a) => ("error" in a ? a.error : a.status)))}`);
        for (const a of answers) assert.ok(!("error" in a), `an answer, not ${"error" in a ? a.error : ""}`);
        const byPrimary = answers.every((a) => "status" in a && a.status === 503);
        if (byPrimary || round === 3) {
          const [readyz, healthz, metrics, webhookReadyz] = answers;
          for (const a of [readyz, healthz, metrics]) {
            assert.ok(a !== undefined && "status" in a);
            assert.equal(a.status, 503);
            assert.equal(a.retryAfter, "1");
            assert.deepEqual(JSON.parse(a.body), {
              error: {
                code: "ERR_NOT_READY",
                message: "not ready: no worker is running: the workers are being replaced",
              },
            });
          }
          // The webhook port's: shed, as when every worker is at its bound (the API server retries it).
          assert.ok(webhookReadyz !== undefined && "status" in webhookReadyz);
          assert.equal(webhookReadyz.status, 503);
          break;
        }
        const ready = await served.waitFor(
          (l) =>
            l.msg === "every worker ready" && Array.isArray(l.pids) && !l.pids.some((p) => pids.includes(Number(p))),
          60_000,
        );
        pids = (ready.pids as number[]).map(Number);
      }
      const logged = await served.waitFor(
        (l) => l.msg === "admin connections answered by the primary: no worker takes them",
        30_000,
      );
      assert.equal(logged.pid, served.child.pid);
      // And once the replacements listen, they answer again.
      await served.waitFor(
        (l) => l.msg === "every worker ready" && Array.isArray(l.pids) && !l.pids.some((p) => pids.includes(Number(p))),
        60_000,
      );
      for (const p of paths) assert.equal((await send(adminPort, ca, { method: "GET", path: p })).status, 200, p);
      s.child.kill("SIGTERM");
      assert.equal(await s.exited, 0, s.stderr());
    },
  );
});

describe("serve --workers 2: a worker whose event loop stands still (SIGSTOP)", () => {
  let root: string | undefined;
  let s: Served | undefined;
  let stopped: number | undefined;
  after(async () => {
    if (stopped !== undefined) {
      try {
        process.kill(stopped, "SIGCONT");
      } catch {
        // Already gone.
      }
    }
    if (s !== undefined && s.child.exitCode === null) s.child.kill("SIGKILL");
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it(
    "is killed after 30 s without answering the primary, and the connections it never took are answered by another",
    { timeout: 240_000 },
    async (t) => {
      root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-hung-"));
      s = await serve(["--workers", "2", "--admin-port", "0", "--cert-dir", join(root, "certs")]);
      const served = s;
      const ca = await readFile(join(root, "certs", "ca.crt"), "utf8");
      const [hung, other] = s.pids;
      assert.ok(hung !== undefined && other !== undefined);
      process.kill(hung, "SIGSTOP");
      stopped = hung;
      const stoppedAt = Date.now();
      // Opened at once: the stopped worker, with no connection, gets its share (least load, ties in
      // turn) until its hand-overs on the way outweigh the other's connections.
      const reviews = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => reviewOverTls(await rawConnection(served.port), ca, `hung-${i}`)),
      );
      const killed = await served.waitFor(
        (l) => l.msg === "worker unresponsive: its event loop has not turned; killed, to be replaced",
        120_000,
      );
      stopped = undefined;
      assert.equal(killed.workerPid, hung);
      assert.equal(killed.pid, served.child.pid, "logged by the primary");
      assert.ok(Date.now() - stoppedAt >= 30_000, "not before 30 s");
      const died = await served.waitFor(
        (l) => l.msg === "worker exited unexpectedly; replacing it" && l.workerPid === hung,
        30_000,
      );
      assert.equal(died.signal, "SIGKILL");
      // Every review is answered: those the stopped worker never took go to another worker.
      const statuses = await Promise.race([
        Promise.all(reviews.map((r) => r.answer)),
        new Promise<string>((r) => setTimeout(() => r("not all answered within 60 s of the kill"), 60_000).unref()),
      ]);
      assert.deepEqual(statuses, [200, 200, 200, 200]);
      const killedAt = s.lines().indexOf(killed);
      const late = s
        .lines()
        .slice(killedAt)
        .filter((l) => l.msg === "admission review" && String(l.uid).startsWith("hung-")).length;
      t.diagnostic(`${late} of 4 reviews answered after the stopped worker was killed`);
      // A replacement comes, and serves.
      await served.waitFor(
        (l) => l.msg === "every worker ready" && Array.isArray(l.pids) && !l.pids.includes(hung),
        60_000,
      );
      assert.equal(await review(served.port, ca, "after-hung"), 200);
      s.child.kill("SIGTERM");
      assert.equal(await s.exited, 0, s.stderr());
    },
  );
});
