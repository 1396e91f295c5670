import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger } from "../../../src/telemetry/logger.js";

function collector(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const lines = (): Record<string, unknown>[] =>
    chunks
      .join("")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines };
}

describe("createLogger", () => {
  it("writes one JSON object per line with level, name and message", () => {
    const c = collector();
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
    const c = collector();
    const log = createLogger({ level: "warn", destination: c.stream });
    log.info("quiet");
    log.warn("loud");
    assert.deepEqual(
      c.lines().map((l) => l.msg),
      ["loud"],
    );
  });

  it("redacts keys, tokens and bodies even when a caller passes them", () => {
    const c = collector();
    const log = createLogger({ destination: c.stream });
    log.info(
      { key: "-----BEGIN PRIVATE KEY-----", tls: { key: "k2" }, token: "t0ken", body: "{pod}", req: { headers: { authorization: "Bearer x" } } },
      "oops",
    );
    const text = JSON.stringify(c.lines());
    for (const secret of ["BEGIN PRIVATE KEY", "k2", "t0ken", "{pod}", "Bearer x"]) {
      assert.ok(!text.includes(secret), `${secret} leaked into ${text}`);
    }
    assert.ok(text.includes("[redacted]"));
  });

  it("refuses an unknown level with a message naming it", () => {
    assert.throws(() => createLogger({ level: "verbose" }), /unknown log level "verbose"/);
  });
});
