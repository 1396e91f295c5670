// What a log stream bounded in the bytes it holds (sonic-boom's maxLength) dropped, said in a
// line of its own. sonic-boom drops a line that would take it past the bound and emits `drop`
// with it, synchronously, inside write(). Dropped lines are counted; a notice saying how many
// is written once it fits, tried every NOTICE_RETRY_MS from the first drop (an unref'd timer:
// it keeps no process alive), so a reader that falls behind and stays behind is still told.
// A notice that does not fit either is not counted as a dropped line: it is tried again, with
// the lines dropped meanwhile added.

/** The stream's side: sonic-boom's write and `drop` event. */
export interface DroppingStream {
  write(line: string): boolean;
  on(event: "drop", listener: (data: unknown) => void): unknown;
}

export const NOTICE_RETRY_MS = 1000;

/** Lines in what a drop carried: its newlines (a drop is of whole lines). */
function linesIn(data: unknown): number {
  const text = typeof data === "string" ? data : Buffer.isBuffer(data) ? data.toString("utf8") : "";
  let n = 0;
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) n++;
  return Math.max(n, 1);
}

/**
 * Counts what `stream` drops and writes `notice(count)` (a whole line) once it fits. Returns
 * the count not yet told (for tests).
 */
export function reportDrops(
  stream: DroppingStream,
  notice: (dropped: number) => string,
  retryMs = NOTICE_RETRY_MS,
): () => number {
  let dropped = 0;
  let sending: string | undefined;
  let noticeDropped = false;
  let timer: NodeJS.Timeout | undefined;
  const tell = (): void => {
    timer = undefined;
    if (dropped === 0) return;
    const count = dropped;
    sending = notice(count);
    noticeDropped = false;
    stream.write(sending);
    sending = undefined;
    if (noticeDropped) arm();
    else dropped -= count;
  };
  const arm = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(tell, retryMs);
    timer.unref();
  };
  stream.on("drop", (data) => {
    if (sending !== undefined && data === sending) {
      noticeDropped = true;
      return;
    }
    dropped += linesIn(data);
    arm();
  });
  return () => dropped;
}
