// The two log formats: JSON (one object a line, what a log pipeline reads) and text for a
// person at a terminal (`HH:MM:SS level msg key=value`), chosen by the option, else by
// SIDECAR_INJECTOR_LOG_FORMAT (what `serve --log-format` sets), else by whether stdout is a
// terminal. Text lines are made after redaction and go through the same batched writer.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { createLogger, defaultLogFormat, LOG_FORMAT_ENV, REDACTED, textLine } from "../../../src/telemetry/logger.js";
import { captureLogs } from "../../support/logs.js";

const clock = (ms: number): string => {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
};

describe("textLine", () => {
  test("time, level, message, then the fields as key=value (quoted when not one word)", () => {
    const time = Date.UTC(2026, 0, 2, 3, 4, 5);
    const line = JSON.stringify({
      level: 40,
      time,
      pid: 1,
      hostname: "h",
      name: "sidecar-injector",
      msg: "caBundle write failed",
      webhook: "a.example",
      attempt: 2,
      ok: false,
      reason: "conflict on write",
      labels: { app: "web" },
    });
    assert.equal(
      textLine(line),
      `${clock(time)} warn  caBundle write failed webhook=a.example attempt=2 ok=false reason="conflict on write" labels={"app":"web"}\n`,
    );
  });

  test("an error: its message in the line, its stack on the lines after", () => {
    const err = { type: "Error", message: "boom", stack: "Error: boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)" };
    const out = textLine(JSON.stringify({ level: 50, time: 0, msg: "failed", err }));
    assert.equal(out, `${clock(0)} error failed err=boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)\n`);
  });

  test("a value from a request cannot drive the terminal: controls and format characters are escaped, never bare", () => {
    const pod = "web\u001b]0;pwned\u0007\u001b[2J";
    const namespace = "demo\u009b8m\u202eevil\u007f";
    const out = textLine(
      JSON.stringify({ level: 30, time: 0, msg: "admission review", pod, namespace, ok: "plain-é" }),
    );
    assert.equal(
      out,
      `${clock(0)} info  admission review pod="web\\u001b]0;pwned\\u0007\\u001b[2J" namespace="demo\\u009b8m\\u202eevil\\u007f" ok=plain-é\n`,
    );
    // Nothing a terminal acts on is left, and the value reads back as it was.
    assert.doesNotMatch(out.slice(0, -1), /\p{C}/u);
    const quoted = /pod=("[^"]*")/.exec(out)?.[1] ?? "";
    assert.equal(JSON.parse(quoted), pod);
  });

  test("an error's stack lines are escaped too: a message over lines repeats in its stack", () => {
    const err = {
      type: "Error",
      message: "x\nevil\u001b]0;pwned\u0007",
      stack: "Error: x\nevil\u001b]0;pwned\u0007\n    at f (a.js:1:1)",
    };
    const out = textLine(JSON.stringify({ level: 50, time: 0, msg: "failed", err }));
    assert.ok(!out.includes("\u001b") && !out.includes("\u0007"), out);
    assert.ok(out.endsWith("\n    evil\\u001b]0;pwned\\u0007\n    at f (a.js:1:1)\n"), out);
  });

  test("a line that is not a JSON object passes as it is", () => {
    assert.equal(textLine("not json\n"), "not json\n");
    assert.equal(textLine("[1,2]\n"), "[1,2]\n");
  });
});

describe("createLogger: the format", () => {
  test("format text: text lines, with the fields redacted as in JSON", () => {
    const { stream, text } = captureLogs();
    const log = createLogger({ destination: stream, format: "text" });
    log.info({ namespace: "shop", token: "s3cret", req: { headers: { authorization: "Bearer x" } } }, "review");
    const line = text();
    assert.match(
      line,
      /^\d\d:\d\d:\d\d info {2}review namespace=shop token=\[redacted\] req=\{"headers":\{"authorization":"\[redacted\]"\}\}\n$/,
    );
    assert.ok(!line.includes("s3cret") && !line.includes("Bearer"), line);
    assert.ok(line.includes(REDACTED));
  });

  test("a destination without a format: JSON, whatever the environment says", () => {
    const { stream, text } = captureLogs();
    const saved = process.env[LOG_FORMAT_ENV];
    process.env[LOG_FORMAT_ENV] = "text";
    try {
      createLogger({ destination: stream }).info({ a: 1 }, "m");
    } finally {
      if (saved === undefined) delete process.env[LOG_FORMAT_ENV];
      else process.env[LOG_FORMAT_ENV] = saved;
    }
    const parsed = JSON.parse(text()) as { msg: string; a: number };
    assert.equal(parsed.msg, "m");
    assert.equal(parsed.a, 1);
  });

  test("the default: the environment variable, else text on a terminal and JSON otherwise; a bad value is named", () => {
    assert.equal(defaultLogFormat({}, true), "text");
    assert.equal(defaultLogFormat({}, false), "json");
    assert.equal(defaultLogFormat({ [LOG_FORMAT_ENV]: "json" }, true), "json");
    assert.equal(defaultLogFormat({ [LOG_FORMAT_ENV]: "text" }, false), "text");
    assert.equal(defaultLogFormat({ [LOG_FORMAT_ENV]: "" }, false), "json");
    assert.throws(
      () => defaultLogFormat({ [LOG_FORMAT_ENV]: "pretty" }, true),
      /SIDECAR_INJECTOR_LOG_FORMAT="pretty" is not a log format \(one of json, text\)/,
    );
  });
});

describe("text on stdout keeps the batched writer", () => {
  test("every line of a process that logs and exits at once arrives, as text", async () => {
    const loggerModule = new URL("../../../src/telemetry/logger.ts", import.meta.url).href;
    const code = `import { createLogger } from ${JSON.stringify(loggerModule)};
const log = createLogger();
for (let i = 0; i < 500; i++) log.info({ i }, "line");
process.exit(0);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, [LOG_FORMAT_ENV]: "text" },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const status = await new Promise<number | null>((done) => child.on("close", (c) => done(c)));
    assert.equal(status, 0);
    const lines = out.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 500, "the lines still gathered at exit are written");
    lines.forEach((l, i) => assert.match(l, new RegExp(`^\\d\\d:\\d\\d:\\d\\d info {2}line i=${i}$`)));
  });
});
