// A watch (watch.ts) against a real HTTP server standing in for the API server: its events
// whatever the chunks they come in, the request it makes, a refusal's Status, and each bound
// on its life: unanswered, open past the time asked, a line too long or not an event, an
// ERROR event, a connection reset, stop(). Every way it ends closes its connection.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeError } from "../../../src/kube/api.js";
import { startWatch, type WatchLimits } from "../../../src/kube/watch.js";
import { answerJson, failureStatus, kubeApiForTests, kubeConfigAt } from "./api-at.js";

const WHAT = "watch /api/v1/namespaces/ns/secrets (metadata.name=ca)";
const PATH = "/api/v1/namespaces/ns/secrets";
const LIMITS: WatchLimits = { startTimeoutMs: 300, timeoutSeconds: 60, graceMs: 30_000, maxLineBytes: 1000 };

/** What the server does with the next watch request. */
type Answer = (req: IncomingMessage, res: ServerResponse) => void;

/** A request the server took: its URL and headers, and a promise for its connection's close. */
interface Taken {
  readonly req: IncomingMessage;
  readonly closed: Promise<void>;
}

let answer: Answer = () => undefined;
let taken: Taken | undefined;
const server = createServer((req, res) => {
  taken = { req, closed: new Promise((done) => req.socket.once("close", () => done())) };
  answer(req, res);
});
let kc: KubeConfig;
before(async () => {
  kc = await kubeConfigAt(server);
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const line = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`;
const secret = (v: string): object => ({ metadata: { name: "ca" }, data: { v } });

/** Starts a watch of `answer`'s server and records what it delivers and how it ends. */
async function watch(next: Answer, limits: WatchLimits = LIMITS, handle?: (type: string) => void) {
  answer = next;
  taken = undefined;
  const events: [string, unknown][] = [];
  let resolveEnd: (err: unknown) => void = () => undefined;
  const ended = new Promise<unknown>((done) => (resolveEnd = done));
  let ends = 0;
  const started = startWatch(
    kc,
    WHAT,
    PATH,
    { fieldSelector: "metadata.name=ca" },
    limits,
    (type, object) => {
      handle?.(type);
      events.push([type, object]);
    },
    (err) => {
      ends += 1;
      resolveEnd(err ?? "ended");
    },
  );
  return { started, events, ended, ends: () => ends, taken: () => taken };
}

const endMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

describe("a watch", () => {
  test("delivers each event whatever the chunks it comes in, and ends when the API server ends it", async () => {
    const text =
      line("ADDED", secret("é1")) + line("BOOKMARK", { metadata: {} }) + line("MODIFIED", secret("2")) + "\n";
    const bytes = Buffer.from(text + line("DELETED", secret("3")).trimEnd());
    const w = await watch((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      // Cut everywhere: inside the two bytes of "é", inside a line, at a line's end.
      const cuts = [5, bytes.indexOf("é") + 1, bytes.indexOf("\n") + 1, bytes.length - 7];
      let from = 0;
      for (const cut of cuts) {
        res.write(bytes.subarray(from, cut));
        from = cut;
      }
      res.end(bytes.subarray(from));
    });
    await w.started;
    assert.equal(await w.ended, "ended");
    assert.deepEqual(w.events, [
      ["ADDED", secret("é1")],
      ["BOOKMARK", { metadata: {} }],
      ["MODIFIED", secret("2")],
      ["DELETED", secret("3")],
    ]);
    const url = new URL(w.taken()?.req.url ?? "", "http://x");
    assert.equal(url.pathname, PATH);
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      fieldSelector: "metadata.name=ca",
      watch: "true",
      timeoutSeconds: "60",
    });
    assert.equal(w.taken()?.req.headers.authorization, "Bearer t");
    assert.equal(w.taken()?.req.headers.accept, "application/json");
    assert.equal(w.ends(), 1);
  });

  test("refused: fails to start with the Status's message and its code", async () => {
    const forbidden = { ...failureStatus(403, "Forbidden"), message: 'secrets "ca" is forbidden: no' };
    const w = await watch((_req, res) => answerJson(res, 403, forbidden));
    await assert.rejects(w.started, (e: unknown) => {
      assert.ok(e instanceof KubeError);
      assert.equal(e.message, `${WHAT}: secrets "ca" is forbidden: no`);
      assert.equal(e.status, 403);
      return true;
    });
    const page = await watch((_req, res) => {
      res.writeHead(502, { "Content-Type": "text/html" });
      res.end("<html>bad gateway</html>");
    });
    await assert.rejects(page.started, { message: `${WHAT}: HTTP 502 Bad Gateway` });
    await page.taken()?.closed;
  });

  test("not answered: fails to start at its deadline, and its connection is closed", { timeout: 20_000 }, async () => {
    const w = await watch(() => undefined);
    await assert.rejects(w.started, { message: `${WHAT}: no answer from the API server within 0.3 s` });
    await w.taken()?.closed;
    assert.equal(w.ends(), 0, "a watch that never started does not end");
  });

  test(
    "open past the time asked and its grace: ends with an error, and its connection is closed",
    { timeout: 20_000 },
    async () => {
      const w = await watch(
        (_req, res) => {
          res.writeHead(200, { "Content-Type": "application/json" });
          res.write(line("ADDED", secret("1")));
        },
        { ...LIMITS, timeoutSeconds: 1, graceMs: 100 },
      );
      await w.started;
      assert.equal(
        endMessage(await w.ended),
        `${WHAT}: still open 0.1 s past the 1 s asked: taken for a dead connection`,
      );
      await w.taken()?.closed;
      assert.deepEqual(w.events, [["ADDED", secret("1")]]);
    },
  );

  const endings: [string, (res: ServerResponse) => void, string | RegExp][] = [
    [
      "a line longer than the limit",
      (res) => res.write(`{"type":"ADDED","object":{"v":"${"x".repeat(1000)}`),
      `${WHAT}: an event longer than 1000 bytes`,
    ],
    [
      "a line longer than the limit, its end in the same chunk",
      (res) => res.write(line("ADDED", { v: "x".repeat(1000) })),
      `${WHAT}: an event longer than 1000 bytes`,
    ],
    ["a line that is not an event", (res) => res.write("<html>\n"), `${WHAT}: a line that is not a watch event`],
    [
      "an event without an object",
      (res) => res.write('{"type":"ADDED"}\n'),
      `${WHAT}: a line that is not a watch event`,
    ],
    [
      "an ERROR event",
      (res) => res.write(line("ERROR", { ...failureStatus(410, "Expired"), message: "too old resource version" })),
      `${WHAT}: too old resource version`,
    ],
    [
      "the connection reset inside a line",
      (res) => {
        res.write('{"type":"ADD');
        setTimeout(() => res.socket?.destroy(), 50);
      },
      `${WHAT}: the connection closed before the API server ended the watch`,
    ],
    [
      "the connection reset (RST)",
      (res) => setTimeout(() => res.socket?.resetAndDestroy(), 50),
      new RegExp(`^${WHAT.replace(/[()./]/g, "\\$&")}: \\S`),
    ],
  ];
  for (const [what, then, message] of endings) {
    test(`${what}: ends with an error that says so, and its connection is closed`, { timeout: 20_000 }, async () => {
      const w = await watch((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.write(line("ADDED", secret("1")));
        then(res);
      });
      await w.started;
      const err = await w.ended;
      assert.ok(err instanceof KubeError);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      if (what === "an ERROR event") assert.equal(err.status, 410);
      await w.taken()?.closed;
      assert.deepEqual(w.events, [["ADDED", secret("1")]], "events before the end are delivered, none after");
      assert.equal(w.ends(), 1);
    });
  }

  test("stop(): its connection is closed, and nothing more is delivered, not even its end", async () => {
    let res: ServerResponse | undefined;
    const w = await watch((_req, r) => {
      res = r;
      r.writeHead(200, { "Content-Type": "application/json" });
      r.write(line("ADDED", secret("1")));
    });
    const stop = await w.started;
    while (w.events.length === 0) await new Promise((done) => setTimeout(done, 5));
    stop();
    await w.taken()?.closed;
    res?.end(line("MODIFIED", secret("2")));
    await new Promise((done) => setTimeout(done, 50));
    assert.deepEqual(w.events, [["ADDED", secret("1")]]);
    assert.equal(w.ends(), 0);
  });

  test("an event its handler throws on: ends with an error that says so, nothing after it delivered", async () => {
    const w = await watch(
      (_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.write(line("ADDED", secret("1")) + line("MODIFIED", secret("2")) + line("MODIFIED", secret("3")));
      },
      LIMITS,
      (type) => {
        if (type === "MODIFIED") throw new TypeError("no metadata");
      },
    );
    await w.started;
    assert.equal(endMessage(await w.ended), `${WHAT}: a MODIFIED event not handled: no metadata`);
    await w.taken()?.closed;
    assert.deepEqual(w.events, [["ADDED", secret("1")]]);
    assert.equal(w.ends(), 1);
  });
});

describe("a watch of the KubeApi, ended by the API server at the time it asked", () => {
  /** The watch requests the server took, by their query. */
  const queries: URLSearchParams[] = [];
  /** What the server answers each request, in turn. */
  let script: ((res: ServerResponse, asked: number) => void)[] = [];
  const api = createServer((req, res) => {
    const query = new URL(req.url ?? "/", "http://x").searchParams;
    queries.push(query);
    res.writeHead(200, { "Content-Type": "application/json" });
    script[queries.length - 1]?.(res, Number(query.get("timeoutSeconds")));
  });
  const kube = kubeApiForTests(api, { watchTimeoutSeconds: 1 });
  const withRv = (v: string, rv: string): object => ({ metadata: { name: "ca", resourceVersion: rv }, data: { v } });

  test(
    "resumes at once from the last resourceVersion seen (a bookmark's), nothing sent twice; a 410 then ends it",
    { timeout: 20_000 },
    async () => {
      queries.length = 0;
      script = [
        (res, asked) => {
          res.write(line("ADDED", withRv("1", "5")) + line("BOOKMARK", { metadata: { resourceVersion: "7" } }));
          setTimeout(() => res.end(), asked * 1000);
        },
        (res) => {
          res.write(line("MODIFIED", withRv("2", "8")));
          setTimeout(() => res.end(line("ERROR", { ...failureStatus(410, "Expired"), message: "too old" })), 50);
        },
      ];
      const seen: (string | undefined)[] = [];
      let resolveEnd: (err: unknown) => void = () => undefined;
      const ended = new Promise<unknown>((done) => (resolveEnd = done));
      await kube.api.watchSecret("ns", "ca", (s) => seen.push(s?.data?.v), resolveEnd);
      const err = await ended;
      assert.ok(err instanceof KubeError);
      assert.equal(err.status, 410);
      assert.deepEqual(seen, ["1", "2"]);
      assert.deepEqual(
        queries.map((q) => [q.get("resourceVersion"), q.get("allowWatchBookmarks"), q.get("timeoutSeconds")]),
        [
          [null, "true", "1"],
          ["7", "true", "1"],
        ],
      );
    },
  );

  test("ended before the time it asked (an API server shutting down): ended, for its caller to start afresh", async () => {
    queries.length = 0;
    script = [(res) => res.end(line("ADDED", withRv("1", "5")))];
    let resolveEnd: (err: unknown) => void = () => undefined;
    const ended = new Promise<unknown>((done) => (resolveEnd = done));
    await kube.api.watchSecret("ns", "ca", () => undefined, resolveEnd);
    assert.equal(await ended, undefined);
    await new Promise((done) => setTimeout(done, 100));
    assert.equal(queries.length, 1, "started again by itself");
  });
});
