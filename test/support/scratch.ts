// Temporary folders the test process removes when it exits, whether or not the file that made
// one remembered to. Local certificates (private keys included) and config files live in them.
// On any exit of the process (a failing test, an uncaught exception included), not when a signal
// ends it (a file cancelled by node --test): the test process's own signal handling is left alone.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made = new Set<string>();
let hooked = false;

/** A new folder under the OS temp dir, named `prefix` + random; removed at process exit. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    process.on("exit", removeScratchDirs);
  }
  return dir;
}

/** Removes every folder made so far (also what the exit hook runs). */
export function removeScratchDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}
