import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { describe, it } from "node:test";
import { createLogger, MAX_UNWRITTEN_LOG_BYTES, redactFields } from "../../../src/telemetry/logger.js";
import { captureLogs } from "../../support/logs.js";

const loggerModule = new URL("../../../src/telemetry/logger.ts", import.meta.url).href;

/**
 * A process that runs `body` after `const log = createLogger();` (the default destination,
 * its stdout), every stream piped; what it writes on stderr is gathered.
 */
function loggingProcess(body: string): { child: ChildProcessWithoutNullStreams; stderr(): string } {
  const code = `import { createLogger } from ${JSON.stringify(loggerModule)};
const log = createLogger();
${body}`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: "pipe" });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  return { child, stderr: () => err };
}

/** A process that logs to its stdout with the default destination; `then` runs after the lines. */
function logging(
  lines: number,
  then: string,
): { lines: Promise<string[]>; firstLine: Promise<string | undefined>; exited: Promise<number | null>; kill(): void } {
  const code = `import { createLogger } from ${JSON.stringify(loggerModule)};
const log = createLogger();
for (let i = 0; i < ${lines}; i++) log.info({ i, pad: "x".repeat(200) }, "line");
${then}`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let text = "";
  let first: (line: string | undefined) => void = () => undefined;
  const firstLine = new Promise<string | undefined>((done) => (first = done));
  child.stdout.on("data", (d: Buffer) => {
    text += d.toString("utf8");
    if (text.includes("\n")) first(text.slice(0, text.indexOf("\n")));
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (status) => done(status)));
  const closed = new Promise<void>((done) => child.stdout.once("close", () => done()));
  void closed.then(() => first(undefined));
  return {
    lines: closed.then(() => text.split("\n").filter((l) => l !== "")),
    firstLine,
    exited,
    kill: () => child.kill("SIGKILL"),
  };
}

describe("createLogger", () => {
  it("writes one JSON object per line with level, name and message", () => {
    const c = captureLogs();
    const log = createLogger({ destination: c.stream });
    log.info({ uid: "u1" }, "admission review");
    const [line, ...rest] = c.lines();
    assert.equal(rest.length, 0);
    assert.equal(line?.msg, "admission review");
    assert.equal(line?.uid, "u1");
    assert.equal(line?.name, "sidecar-injector");
    assert.equal(line?.level, 30);
  });

  it("drops lines below the configured level", () => {
    const c = captureLogs();
    const log = createLogger({ level: "warn", destination: c.stream });
    log.info("quiet");
    log.warn("loud");
    assert.deepEqual(
      c.lines().map((l) => l.msg),
      ["loud"],
    );
  });

  it("redacts keys, tokens and bodies even when a caller passes them", () => {
    const c = captureLogs();
    const log = createLogger({ destination: c.stream });
    log.info(
      {
        key: "-----BEGIN PRIVATE KEY-----",
        tls: { key: "k2" },
        token: "t0ken",
        body: "{pod}",
        req: { headers: { authorization: "Bearer x" } },
      },
      "oops",
    );
    const text = JSON.stringify(c.lines());
    for (const secret of ["BEGIN PRIVATE KEY", "k2", "t0ken", "{pod}", "Bearer x"]) {
      assert.ok(!text.includes(secret), `${secret} leaked into ${text}`);
    }
    assert.ok(text.includes("[redacted]"));
  });

  it("writes every line gathered on stdout, in order, when the process exits at once after them", async () => {
    const run = logging(500, "process.exit(3);");
    assert.equal(await run.exited, 3);
    const lines = (await run.lines).map((l) => JSON.parse(l) as { i: number; msg: string });
    assert.deepEqual(
      lines.map((l) => l.i),
      Array.from({ length: 500 }, (_, i) => i),
    );
  });

  it("writes every line gathered on stdout when the process dies of an uncaught exception", async () => {
    const run = logging(300, 'throw new Error("boom");');
    assert.equal(await run.exited, 1);
    assert.equal((await run.lines).length, 300);
  });

  it(
    "holds at most MAX_UNWRITTEN_LOG_BYTES for a stdout nobody reads, then says how many lines it dropped",
    { timeout: 120_000 },
    async () => {
      // 20,000 lines of about 1 KB while the pipe is not read: past the bound they are dropped.
      const { child, stderr } =
        loggingProcess(`for (let i = 0; i < 20000; i++) log.info({ i, pad: "x".repeat(900) }, "line");
process.stderr.write("logged\\n");
setTimeout(() => undefined, 60_000);`);
      try {
        await new Promise<void>((done, fail) => {
          child.stderr.on("data", () => stderr().includes("logged") && done());
          child.once("exit", (status) => fail(new Error(`exited ${status}: ${stderr()}`)));
        });
        // Now read: what was held arrives in order, then, once there is room, the notice.
        let out = "";
        const notice = await new Promise<{ dropped: number; level: number }>((done) => {
          child.stdout.setEncoding("utf8").on("data", (d: string) => {
            out += d;
            const m = /^.*"msg":"log lines dropped[^\n]*$/m.exec(out);
            if (m) done(JSON.parse(m[0]) as { dropped: number; level: number });
          });
        });
        const before = out.slice(0, out.lastIndexOf("\n", out.indexOf('"msg":"log lines dropped')) + 1);
        const kept = before
          .split("\n")
          .slice(0, -1)
          .map((l) => (JSON.parse(l) as { i: number }).i);
        assert.deepEqual(
          kept,
          Array.from({ length: kept.length }, (_, i) => i),
          "the lines kept are the first, whole, in order",
        );
        // The bound, and the pipe's own buffer (64 KiB here; at most 1 MiB on Linux).
        const held = Buffer.byteLength(before);
        assert.ok(held <= MAX_UNWRITTEN_LOG_BYTES + 1024 * 1024, `${held} bytes held for a reader that did not read`);
        assert.ok(held > MAX_UNWRITTEN_LOG_BYTES / 2, `only ${held} bytes held: the bound was not what dropped`);
        assert.equal(notice.dropped, 20000 - kept.length);
        assert.equal(notice.level, 40);
      } finally {
        child.kill("SIGKILL");
      }
    },
  );

  it(
    "exits, its last lines dropped, when its stdout is never read: the write at exit waits EXIT_FLUSH_MS, not for ever",
    { timeout: 60_000 },
    async () => {
      // Megabytes of lines held for a pipe nobody reads, then an exit: the synchronous write of
      // what is held gives up at its deadline, and the process ends with its own status.
      const { child, stderr } =
        loggingProcess(`for (let i = 0; i < 4000; i++) log.info({ i, pad: "x".repeat(900) }, "line");
process.stderr.write("logged\\n");
process.exit(3);`);
      // Read only once it has exited (and at once then: node discards what a stream without a reader holds).
      const ended = new Promise<{ status: number | null; out: string }>((done) =>
        child.once("exit", (status) => {
          const chunks: Buffer[] = [];
          child.stdout
            .on("data", (d: Buffer) => chunks.push(d))
            .once("end", () => done({ status, out: Buffer.concat(chunks).toString("utf8") }));
        }),
      );
      try {
        const { status, out } = await ended;
        assert.equal(status, 3, `the process ended with its own status: ${stderr()}`);
        assert.match(stderr(), /logged/);
        assert.doesNotMatch(stderr(), /EAGAIN|Error/);
        // What the pipe took before the exit is whole lines, in order, from the first.
        const lines = out.split("\n").slice(0, -1);
        assert.ok(lines.length > 0 && lines.length < 4000, `${lines.length} lines arrived`);
        assert.deepEqual(
          lines.slice(0, 10).map((l) => (JSON.parse(l) as { i: number }).i),
          Array.from({ length: Math.min(10, lines.length) }, (_, i) => i),
        );
      } finally {
        child.kill("SIGKILL");
      }
    },
  );

  it(
    "exits when the reader of its stdout went away before the write at exit (EPIPE met there first)",
    { timeout: 60_000 },
    async () => {
      // The first line is written while the reader reads; the reader goes; the process logs a
      // line and exits at once: the synchronous write at exit is the first to meet the broken
      // pipe. sonic-boom 4 retried it every 100 ms for ever.
      const { child, stderr } = loggingProcess(`log.info("first");
process.stdin.once("data", () => {
  log.info("last");
  process.exit(4);
});`);
      const exited = new Promise<number | null>((done) => child.once("exit", (status) => done(status)));
      try {
        await new Promise<void>((done) => child.stdout.once("data", () => done()));
        child.stdout.destroy();
        child.stdin.end("go\n");
        assert.equal(await exited, 4, `the process ended with its own status: ${stderr()}`);
        assert.doesNotMatch(stderr(), /EPIPE/);
      } finally {
        child.kill("SIGKILL");
      }
    },
  );

  it(
    "lives on when the reader of its stdout goes away (EPIPE), its later lines dropped",
    { timeout: 60_000 },
    async () => {
      const { child, stderr } = loggingProcess(`log.info("first");
process.stdin.once("data", () => {
  for (let i = 0; i < 2000; i++) log.info({ i, pad: "x".repeat(200) }, "line");
  setTimeout(() => {
    for (let i = 0; i < 2000; i++) log.info({ i }, "after");
    setTimeout(() => process.stderr.write("alive\\n"), 200);
  }, 200);
});`);
      const exited = new Promise<number | null>((done) => child.once("exit", (status) => done(status)));
      // The first line arrives; then the reader goes, and the process is told to log more.
      await new Promise<void>((done) => child.stdout.once("data", () => done()));
      child.stdout.destroy();
      child.stdin.end("go\n");
      assert.equal(await exited, 0, `the process ended on its own: ${stderr()}`);
      assert.match(stderr(), /alive/);
      assert.doesNotMatch(stderr(), /EPIPE/);
    },
  );

  it("writes a line on stdout while the process lives on, without waiting for more lines", async () => {
    const run = logging(1, "setTimeout(() => undefined, 60_000);");
    try {
      // Bounded, so that a line that never comes fails the test instead of hanging it.
      const line = await Promise.race([
        run.firstLine,
        new Promise<undefined>((done) => setTimeout(() => done(undefined), 20_000).unref()),
      ]);
      assert.equal((JSON.parse(line ?? "{}") as { msg?: string }).msg, "line");
      // Seen while the process still runs: it is the periodic flush, not the exit, that wrote it.
      assert.equal(await Promise.race([run.exited.then(() => "exited"), Promise.resolve("running")]), "running");
    } finally {
      run.kill();
    }
  });

  it("redacts inside a logged error, child bindings and headers, and leaves the caller's object alone", () => {
    const c = captureLogs();
    const log = createLogger({ destination: c.stream }).child({ token: "bound-t0ken", worker: 2 });
    const err = Object.assign(new Error("namespaces is forbidden"), { body: "api-body-secret", code: 403 });
    const fields = {
      err,
      headers: { cookie: "c00kie", accept: "json" },
      req: { headers: { authorization: "Bearer y", host: "h" } },
      uid: "u1",
    };
    log.error(fields, "failed");
    const [line] = c.lines();
    const text = JSON.stringify(line);
    for (const secret of ["bound-t0ken", "api-body-secret", "c00kie", "Bearer y"])
      assert.ok(!text.includes(secret), `${secret} leaked into ${text}`);
    assert.equal(line?.worker, 2);
    assert.equal(line?.uid, "u1");
    assert.deepEqual(line?.headers, { cookie: "[redacted]", accept: "json" });
    assert.deepEqual(line?.req, { headers: { authorization: "[redacted]", host: "h" } });
    const logged = line?.err as { message: string; code: number; body: string; stack: string };
    assert.equal(logged.message, "namespaces is forbidden");
    assert.equal(logged.code, 403);
    assert.equal(logged.body, "[redacted]");
    assert.match(logged.stack, /namespaces is forbidden/);
    assert.equal(fields.headers.cookie, "c00kie");
    assert.equal(fields.req.headers.authorization, "Bearer y");
    assert.equal(err.body, "api-body-secret");
  });

  it("hands a line with nothing to censor on as it is, without copying it", () => {
    const line = { uid: "u", namespace: "ns", pod: "p", decision: "injected", durationMs: 0.4, nested: { fine: true } };
    assert.equal(redactFields(line), line);
    const secret = { uid: "u", password: "pw" };
    assert.notEqual(redactFields(secret), secret);
    assert.deepEqual(redactFields(secret), { uid: "u", password: "[redacted]" });
  });

  it("refuses an unknown level with a message naming it", () => {
    assert.throws(() => createLogger({ level: "verbose" }), /unknown log level "verbose"/);
  });
});
