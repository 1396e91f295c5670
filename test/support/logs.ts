// The one log capture of the tests: a stream a logger writes to, read back as text or as the
// JSON lines it holds.
import { Writable } from "node:stream";

export interface LogCapture {
  readonly stream: Writable;
  lines(): Record<string, unknown>[];
  text(): string;
}

export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const text = (): string => chunks.join("");
  return {
    stream,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
