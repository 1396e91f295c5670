// Reading a certificate or key file: only a regular file (a symlink to one, as a mounted Secret
// is, included), and at most MAX_PEM_FILE_BYTES of it. A FIFO or a device at that path (a
// mistake, or a file swapped under the injector) would otherwise block the read for good, in
// one of libuv's threads, which then also holds the process at exit; `/dev/zero` would be read
// into memory without end. The file is opened without blocking (a FIFO's open waits for a
// writer otherwise) and looked at through the same descriptor before it is read.
import { constants } from "node:fs";
import { open } from "node:fs/promises";

/** Bytes of a PEM file read at most: a chain of certificates is a few KiB. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** The file's text; throws a message-bearing Error (ENOENT's code kept) for anything else. */
export async function readPemFile(file: string, maxBytes: number = MAX_PEM_FILE_BYTES): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw new Error("not a regular file");
    // Read to its end, whatever its size said a moment ago (a file rewritten in place grows
    // under the reader), and one byte past the bound at most, which tells one too long.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, length);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxBytes) throw new Error(`longer than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, length).toString("utf8");
  } finally {
    await handle.close();
  }
}
