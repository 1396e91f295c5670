// A seeded random number generator for the test corpora's generators (test/oracle,
// test/strategic-merge): the same seed gives the same cases, byte for byte, on every platform.

/** mulberry32: small, fast, and the same on every platform. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    const v = list[Math.floor(this.next() * list.length)];
    if (v === undefined) throw new Error("pick from an empty list");
    return v;
  }
  /** Up to `n` distinct items, in list order. */
  some<T>(list: readonly T[], n: number): T[] {
    const idx = new Set<number>();
    while (idx.size < Math.min(n, list.length)) idx.add(Math.floor(this.next() * list.length));
    return [...idx].sort((a, b) => a - b).map((i) => list[i] as T);
  }
}
