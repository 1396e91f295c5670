// CPU time per call of functions measured side by side, for the benchmarks' in-process
// columns: each against the others in the same minutes, so that a VM whose speed drifts between
// minutes moves them alike.

/**
 * Median µs of CPU time per call of each function, measured in alternating batches so that
 * each sees the same machine (CPU time, not wall time: a machine shared with other work
 * delays a process without its doing more work; the time its garbage collector threads take
 * is counted). A batch also pays for collecting some of the garbage the batch before it left:
 * the order turns each round, so that each function follows each other one as often (in a
 * fixed order, the function after the one that allocates most looked a tenth slower).
 */
export function interleaved(fns: readonly (() => void)[], budgetMs: number): number[] {
  // Batches of a few milliseconds of the slowest, after a warm-up.
  const per = fns.map((fn) => {
    const t = performance.now();
    for (let i = 0; i < 20; i++) fn();
    return (performance.now() - t) / 20;
  });
  const batch = Math.max(1, Math.round(4 / Math.max(...per, 0.001)));
  const samples: number[][] = fns.map(() => []);
  const end = performance.now() + budgetMs;
  let round = 0;
  do {
    const first = round++ % fns.length;
    fns.forEach((_, j) => {
      const k = (first + j) % fns.length;
      const fn = fns[k]!;
      const start = process.cpuUsage();
      for (let i = 0; i < batch; i++) fn();
      const used = process.cpuUsage(start);
      samples[k]!.push((used.user + used.system) / batch);
    });
  } while (performance.now() < end);
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? 0;
  });
}
