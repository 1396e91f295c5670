// `serve --warm-up`: the loopback copy the process warms itself on (src/admission/warm-up.ts)
// and the reviews it sends (src/admission/warm-up-reviews.ts). The copy is a real HTTPS server
// on 127.0.0.1; the reviews go through the real engine.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { decodeAdmissionReview } from "../../../src/admission/gate.js";
import { admit } from "../../../src/admission/review.js";
import { warmUp } from "../../../src/admission/warm-up.js";
import { warmUpReviews } from "../../../src/admission/warm-up-reviews.js";
import { buildConfig } from "../../../src/config/load.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { captureLogs, JSON_HEADERS, podReview, removeTestCertificates, send, testCertificates } from "./helpers.js";
import { startServe } from "./served.js";

after(removeTestCertificates);

const config = buildConfig({});

async function warm(opts: { budgetMs?: number; reviews?: number; bodies?: readonly Buffer[] }) {
  const c = await testCertificates();
  const logs = captureLogs();
  const result = await warmUp({
    config,
    tls: { cert: c.cert, key: c.key },
    logLevel: "info",
    logger: createLogger({ destination: logs.stream }),
    budgetMs: opts.budgetMs ?? 60_000,
    ...opts,
  });
  return { result, lines: logs.lines() };
}

describe("warm-up reviews", () => {
  it("are Pod CREATEs a cluster sends: of several kinds, most injected, one opted out, none refused", () => {
    const bodies = warmUpReviews();
    const decisions = bodies.map((body) => {
      const { outcome } = admit(decodeAdmissionReview(body), { config });
      return { decision: outcome.decision, ops: outcome.patchOperations, operation: outcome.operation };
    });
    const pods = bodies.map((b) =>
      JSON.stringify((JSON.parse(b.toString("utf8")) as { request: { object: unknown } }).request.object),
    );
    assert.equal(new Set(pods).size, 4, "four kinds of Pod");
    for (const d of decisions) assert.equal(d.operation, "CREATE");
    assert.equal(decisions.filter((d) => d.decision === "refused").length, 0);
    assert.equal(decisions.filter((d) => d.decision === "skipped").length, 1);
    const injected = decisions.filter((d) => d.decision === "injected");
    assert.equal(injected.length, bodies.length - 1);
    for (const d of injected) assert.ok(d.ops > 0);
  });
});

describe("warmUp", () => {
  it("answers the reviews asked for on its copy, and logs one line with how many", async () => {
    const { result, lines } = await warm({ reviews: 37 });
    assert.equal(result.failure, undefined);
    assert.equal(result.reviews, 37);
    const logged = lines.filter((l) => l.msg === "warmed up");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.reviews, 37);
    // The copy's own per-review lines go nowhere: this log has the one line only.
    assert.equal(lines.length, 1);
  });

  it("stops at its budget however many reviews are left", async () => {
    const none = await warm({ budgetMs: 0, reviews: 1_000_000 });
    assert.equal(none.result.reviews, 0);
    assert.equal(none.result.failure, undefined);
    const some = await warm({ budgetMs: 300, reviews: 1_000_000 });
    assert.equal(some.result.failure, undefined);
    // Its budget, then at most one answer's timeout (5 s) and the copy's close (1 s): not the
    // minutes a million reviews would take.
    assert.ok(some.result.durationMs >= 300, `ended after ${some.result.durationMs} ms`);
    assert.ok(some.result.durationMs < 300 + 6_000 + 2_000, `ended after ${some.result.durationMs} ms`);
  });

  it("stops when its signal aborts, without calling that a failure", async () => {
    const stop = new AbortController();
    const c = await testCertificates();
    const logs = captureLogs();
    const logger = createLogger({ destination: logs.stream });
    const warming = warmUp({
      config,
      tls: { cert: c.cert, key: c.key },
      logLevel: "info",
      logger,
      budgetMs: 60_000,
      reviews: 1_000_000,
      signal: stop.signal,
    });
    // Aborted once it is under way (a review takes milliseconds; the test asks that some were answered).
    await new Promise((r) => setTimeout(r, 2_000));
    stop.abort();
    const result = await warming;
    assert.equal(result.failure, undefined);
    assert.ok(result.reviews > 0, "aborted before any review: the abort under way is not tested");
    assert.ok(result.durationMs < 60_000);
    assert.deepEqual(
      logs.lines().map((l) => l.msg),
      ["warm-up stopped: the server is closing"],
    );
  });

  it("says why when its copy cannot be served, answers none, and resolves", async () => {
    const logs = captureLogs();
    const result = await warmUp({
      config,
      tls: { cert: "not a certificate", key: "not a key" },
      logLevel: "info",
      logger: createLogger({ destination: logs.stream }),
      budgetMs: 60_000,
    });
    assert.equal(result.reviews, 0);
    assert.match(result.failure ?? "", /^cannot serve the copy on a loopback port: /);
    assert.deepEqual(
      logs.lines().map((l) => [l.level, l.msg]),
      [[40, "warm-up ended early; serving anyway"]],
    );
  });

  it("ends at the first answer that is not 200, says why at warn, and resolves", async () => {
    const bad = Buffer.from('{"kind":"AdmissionReview"', "utf8");
    const good = warmUpReviews()[0];
    assert.ok(good !== undefined);
    const { result, lines } = await warm({ bodies: [good, bad], reviews: 50 });
    assert.match(result.failure ?? "", /the copy answered 400/);
    assert.ok(result.reviews >= 1 && result.reviews < 50, `answered ${result.reviews}`);
    const warned = lines.filter((l) => l.msg === "warm-up ended early; serving anyway");
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.level, 40);
    assert.match(String(warned[0]?.reason), /answered 400/);
  });
});

/** The value of an unlabelled sample in a scrape. */
function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m?.[1] !== undefined, `${name} in the scrape`);
  return Number(m[1]);
}

describe("serve --warm-up", () => {
  it("listens at once, says not ready until warm, and counts none of the warm-up in /metrics", async (t) => {
    const c = await testCertificates();
    // Twenty seconds at most: the warm-up ends at its count of reviews long before on any machine,
    // and long after the first probe below.
    const { child, lines, waitFor } = startServe(["--cert-dir", c.dir, "--warm-up", "20s"]);
    t.after(() => child.kill("SIGKILL"));
    const warming = await waitFor((l) => l.msg === "warming up before ready");
    assert.equal(warming.budgetMs, 20_000);
    const port = Number(new URL(String(warming.url)).port);
    // Probes are answered during the warm-up: alive, not ready.
    assert.equal((await send(port, c.ca, { method: "GET", path: "/healthz" })).status, 200);
    const notReady = await send(port, c.ca, { method: "GET", path: "/readyz" });
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /not ready/);
    const warmed = await waitFor((l) => l.msg === "warmed up");
    assert.ok(Number(warmed.reviews) > 0);
    await waitFor((l) => l.msg === "sidecar injector serving");
    assert.equal((await send(port, c.ca, { method: "GET", path: "/readyz" })).status, 200);
    const before = await send(port, c.ca, { method: "GET", path: "/metrics" });
    assert.equal(metricValue(before.body, "sidecar_injection_requests_total"), 0);
    const res = await send(port, c.ca, {
      headers: JSON_HEADERS,
      body: JSON.stringify(podReview({ uid: "after-warm-up" })),
    });
    assert.equal(res.status, 200);
    const after = await send(port, c.ca, { method: "GET", path: "/metrics" });
    assert.equal(metricValue(after.body, "sidecar_injection_requests_total"), 1);
    // No review line but the real one: the copy's lines went nowhere.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      lines()
        .filter((l) => l.msg === "admission review")
        .map((l) => l.uid),
      ["after-warm-up"],
    );
  });

  it("stops warming on SIGTERM, drains and exits 0, never ready", async (t) => {
    const c = await testCertificates();
    // A shutdown delay of 3 s: the drain keeps the process up long after the warm-up has ended.
    const { child, lines, exited, waitFor } = startServe([
      ...["--cert-dir", c.dir, "--warm-up", "60s", "--shutdown-delay", "3s"],
    ]);
    t.after(() => child.kill("SIGKILL"));
    await waitFor((l) => l.msg === "warming up before ready");
    child.kill("SIGTERM");
    // Ended by the signal, not by its budget or its count, and never ready.
    await waitFor((l) => l.msg === "warm-up stopped: the server is closing");
    assert.equal(await exited, 0);
    const said = lines().map((l) => l.msg);
    assert.ok(said.includes("draining"), said.join(" | "));
    assert.ok(said.includes("server stopped"), said.join(" | "));
    assert.ok(!said.includes("sidecar injector serving"), said.join(" | "));
    assert.ok(!said.includes("warmed up"), said.join(" | "));
  });

  it("with --workers 2: the primary's ports answer during the warm-up, each worker's copy on a port of its own", async (t) => {
    const c = await testCertificates();
    // Eight seconds at most, far more than the probes below take.
    const s = startServe(["--cert-dir", c.dir, "--workers", "2", "--warm-up", "8s", "--admin-port", "0"]);
    t.after(() => s.child.kill("SIGKILL"));
    const warming = await s.waitFor((l) => l.msg === "warming up before ready" && l.url !== undefined);
    const port = Number(new URL(String(warming.url)).port);
    // A worker takes the connection and answers: alive. (Not ready is the single process's test:
    // here one worker may already be warm, and the probe goes to it.)
    assert.equal((await send(port, c.ca, { method: "GET", path: "/healthz" })).status, 200);
    const serving = await s.waitFor((l) => l.msg === "sidecar injector serving");
    const pids = serving.pids as number[];
    // Each process writes its own log: a worker's line may come after the primary's "serving".
    const warmed = await Promise.all(pids.map((pid) => s.waitFor((l) => l.msg === "warmed up" && l.pid === pid)));
    // One clock, and a worker takes its pair (and so counts as ready) only once warm.
    const ready = await s.waitFor((l) => l.msg === "every worker ready");
    for (const l of warmed) assert.ok(Number(l.time) <= Number(ready.time), `${l.time} after ${ready.time}`);
    for (const l of warmed) assert.ok(Number(l.reviews) > 0, JSON.stringify(l));
    // Not node:cluster's one handle shared by the workers: each copy on its own port.
    const copies = warmed.map((l) => String(l.copy));
    assert.equal(new Set(copies).size, 2, copies.join(", "));
    for (const p of copies) assert.match(p, /^127\.0\.0\.1:\d+$/);
    assert.equal(s.lines().filter((l) => l.msg === "warm-up ended early; serving anyway").length, 0);
    assert.equal((await send(port, c.ca, { method: "GET", path: "/readyz" })).status, 200);
    const res = await send(port, c.ca, { headers: JSON_HEADERS, body: JSON.stringify(podReview({ uid: "w" })) });
    assert.equal(res.status, 200);
    const adminPort = Number(new URL(String(serving.adminUrl)).port);
    const scrape = await send(adminPort, c.ca, { method: "GET", path: "/metrics" });
    assert.equal(metricValue(scrape.body, "sidecar_injection_requests_total"), 1);
  });

  it("with --workers 2: a worker replaced after a crash warms up while the other takes the new connections", async (t) => {
    const c = await testCertificates();
    const s = startServe(["--cert-dir", c.dir, "--workers", "2", "--warm-up", "6s"]);
    t.after(() => s.child.kill("SIGKILL"));
    const serving = await s.waitFor((l) => l.msg === "sidecar injector serving");
    const port = Number(new URL(String(serving.url)).port);
    const [dead, survivor] = serving.pids as number[];
    assert.ok(dead !== undefined && survivor !== undefined);
    process.kill(dead, "SIGKILL");
    const warming = await s.waitFor(
      (l) => l.msg === "warming up before ready" && l.worker !== undefined && l.pid !== dead && l.pid !== survivor,
    );
    const replacement = Number(warming.pid);
    // Reviews on new connections while the replacement warms, then after.
    const review = async (uid: string): Promise<void> => {
      const res = await send(port, c.ca, { headers: JSON_HEADERS, body: JSON.stringify(podReview({ uid })) });
      assert.equal(res.status, 200);
    };
    for (let i = 0; i < 8; i++) await review(`during-${i}`);
    const warmed = await s.waitFor((l) => l.msg === "warmed up" && l.pid === replacement);
    // The primary counts it warm once it has taken its pair, just after its line.
    await s.waitFor((l) => l.msg === "every worker ready" && Number(l.time) >= Number(warmed.time));
    for (let i = 0; i < 8; i++) await review(`after-${i}`);
    const answered = await Promise.all(
      [...Array.from({ length: 8 }, (_, i) => `during-${i}`), ...Array.from({ length: 8 }, (_, i) => `after-${i}`)].map(
        (uid) => s.waitFor((l) => l.msg === "admission review" && l.uid === uid),
      ),
    );
    // Nothing reached the cold replacement while a ready worker could take it.
    for (const l of answered)
      if (l.pid === replacement) assert.ok(Number(l.time) >= Number(warmed.time), `${String(l.uid)} went to it cold`);
    const early = answered.filter((l) => Number(l.time) < Number(warmed.time));
    assert.ok(early.length > 0, "no review was answered during the replacement's warm-up: nothing was tested");
    for (const l of early) assert.equal(l.pid, survivor);
    // Once warm it takes its share again.
    assert.ok(
      answered.some((l) => l.pid === replacement),
      "the replacement took no connection once warm",
    );
  });
});
