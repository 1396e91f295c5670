// `serve --warm-up`: the loopback copy the process warms itself on (src/admission/warm-up.ts)
// and the reviews it sends (src/admission/warm-up-reviews.ts). The copy is a real HTTPS server
// on 127.0.0.1; the reviews go through the real engine.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, it } from "node:test";
import { decodeAdmissionReview } from "../../../src/admission/gate.js";
import { admit } from "../../../src/admission/review.js";
import { warmUp } from "../../../src/admission/warm-up.js";
import { warmUpReviews } from "../../../src/admission/warm-up-reviews.js";
import { buildConfig } from "../../../src/config/load.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { captureLogs, JSON_HEADERS, podReview, removeTestCertificates, send, testCertificates } from "./helpers.js";
import { CLI, serve, START_TIMEOUT_MS, type LogLine } from "./served.js";

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
    assert.ok(new Set(bodies.map((b) => b.toString("utf8"))).size >= 4, "at least four kinds of Pod");
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
    assert.ok(some.result.durationMs >= 300, `ended after ${some.result.durationMs} ms`);
    assert.ok(some.result.reviews < 1_000_000);
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
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CLI, "serve", "--port", "0", "--cert-dir", c.dir, "--warm-up", "20s", "--log-format", "json"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    t.after(() => child.kill("SIGKILL"));
    const lines: LogLine[] = [];
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const seen = (msg: string): Promise<LogLine> =>
      new Promise((resolve, reject) => {
        const look = (): boolean => {
          const line = lines.find((l) => l.msg === msg);
          if (line !== undefined) resolve(line);
          return line !== undefined;
        };
        if (look()) return;
        const timer = setTimeout(() => reject(new Error(`no "${msg}" line; stderr: ${err}`)), START_TIMEOUT_MS);
        child.stdout.on("data", () => look() && clearTimeout(timer));
      });
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.lastIndexOf("\n");
      if (nl < 0) return;
      for (const l of out.slice(0, nl).split("\n")) if (l.startsWith("{")) lines.push(JSON.parse(l) as LogLine);
      out = out.slice(nl + 1);
    });
    const warming = await seen("warming up before ready");
    assert.equal(warming.budgetMs, 20_000);
    const port = Number(new URL(String(warming.url)).port);
    // Probes are answered during the warm-up: alive, not ready.
    assert.equal((await send(port, c.ca, { method: "GET", path: "/healthz" })).status, 200);
    const notReady = await send(port, c.ca, { method: "GET", path: "/readyz" });
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /not ready/);
    const warmed = await seen("warmed up");
    assert.ok(Number(warmed.reviews) > 0);
    await seen("sidecar injector serving");
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
      lines.filter((l) => l.msg === "admission review").map((l) => l.uid),
      ["after-warm-up"],
    );
  });

  it("with --workers 2, each worker warms up on a port of its own before the primary is ready", async (t) => {
    const c = await testCertificates();
    const s = await serve(["--cert-dir", c.dir, "--workers", "2", "--warm-up", "1s", "--admin-port", "0"]);
    t.after(() => s.child.kill("SIGKILL"));
    // Each process writes its own log: a worker's line may come after the primary's "serving".
    const warmed = await Promise.all(s.pids.map((pid) => s.waitFor((l) => l.msg === "warmed up" && l.pid === pid)));
    // One clock, and a worker says it listens only once warm: its line is timed before the primary's.
    const ready = await s.waitFor((l) => l.msg === "every worker ready");
    for (const l of warmed) assert.ok(Number(l.time) <= Number(ready.time), `${l.time} after ${ready.time}`);
    for (const l of warmed) assert.ok(Number(l.reviews) > 0, JSON.stringify(l));
    assert.equal(s.lines().filter((l) => l.msg === "warm-up ended early; serving anyway").length, 0);
    assert.equal((await send(s.port, c.ca, { method: "GET", path: "/readyz" })).status, 200);
    const res = await send(s.port, c.ca, { headers: JSON_HEADERS, body: JSON.stringify(podReview({ uid: "w" })) });
    assert.equal(res.status, 200);
    const scrape = await send(s.adminPort ?? 0, c.ca, { method: "GET", path: "/metrics" });
    assert.equal(metricValue(scrape.body, "sidecar_injection_requests_total"), 1);
  });
});
