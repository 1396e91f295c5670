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
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error("not a regular file");
    // One byte more than allowed tells a file that grew past the bound since its stat.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    if (length > maxBytes) throw new Error(`longer than ${maxBytes} bytes`);
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    await handle.close();
  }
}
