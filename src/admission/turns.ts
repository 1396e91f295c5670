// One at a time, in the order asked. /preview reads its Pods and formats its answer a slice at a
// time, giving the event loop back between slices; without turns, previews would interleave
// there, each holding its documents and the entries it has built (megabytes for a List of costly
// Pods) at once. With them, one preview at a time holds what it builds, as when each ran to its
// end without a pause, and reviews and probes still come between the slices.

export class Turns {
  #last: Promise<void> = Promise.resolve();

  /** Waits for the turns taken before it to end; the function returned ends this one. */
  async take(): Promise<() => void> {
    const before = this.#last;
    let end!: () => void;
    this.#last = new Promise<void>((resolve) => {
      end = resolve;
    });
    await before;
    return end;
  }
}
