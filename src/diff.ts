// A unified diff of two texts, line by line, with three lines of context, in the format
// `diff -u` prints (hunk headers included): what `?format=diff` and `preview -o diff` print.
//
// The edit script is Myers' O((N+M)D) one, after trimming the common head and tail, so an
// injected manifest (a few hundred changed lines in a possibly huge Pod) costs little. Lines
// are compared as numbers (each distinct line numbered once), so a long line that Myers passes
// over many times is read once, not once per pass. Its work and memory are bounded: past
// MAX_WORK steps the rest of the middle is given as removed and re-added, which is still a
// correct diff, only not the shortest.

type Op = { readonly t: " " | "-" | "+"; readonly line: string };

const MAX_WORK = 5_000_000;

function lines(text: string): string[] {
  const l = text.split("\n");
  if (l.at(-1) === "") l.pop();
  return l;
}

/** Myers' shortest edit script of a against b, or undefined past the work budget. */
function myers(a: readonly string[], b: readonly string[], budget: number): Op[] | undefined {
  const ids = new Map<string, number>();
  const number = (lines: readonly string[]): Int32Array => {
    const out = new Int32Array(lines.length);
    lines.forEach((l, i) => {
      let id = ids.get(l);
      if (id === undefined) ids.set(l, (id = ids.size));
      out[i] = id;
    });
    return out;
  };
  const an = number(a);
  const bn = number(b);
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d]: the furthest x on diagonals -d, -d+2, ..., d after round d.
  const trace: Int32Array[] = [];
  let work = 0;
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && (v[off + k - 1] as number) < (v[off + k + 1] as number))
          ? (v[off + k + 1] as number)
          : (v[off + k - 1] as number) + 1;
      const x0 = x;
      let y = x - k;
      while (x < n && y < m && an[x] === bn[y]) {
        x++;
        y++;
      }
      work += x - x0 + 1;
      v[off + k] = x;
      if (x >= n && y >= m) found = d;
    }
    const snap = new Int32Array(d + 1);
    for (let k = -d; k <= d; k += 2) snap[(k + d) / 2] = v[off + k] as number;
    trace.push(snap);
    if (found < 0 && work > budget) return undefined;
  }
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1] as Int32Array;
    const at = (k: number): number => prev[(k + d - 1) / 2] as number;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    const mx = down ? px : px + 1;
    while (x > mx) {
      ops.push({ t: " ", line: a[--x] as string });
      y--;
    }
    if (down) ops.push({ t: "+", line: b[py] as string });
    else ops.push({ t: "-", line: a[px] as string });
    x = px;
    y = py;
  }
  while (x > 0) ops.push({ t: " ", line: a[--x] as string });
  return ops.reverse();
}

function editScript(a: readonly string[], b: readonly string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const mid = myers(midA, midB, MAX_WORK) ?? [
    ...midA.map((line): Op => ({ t: "-", line })),
    ...midB.map((line): Op => ({ t: "+", line })),
  ];
  return [
    ...a.slice(0, head).map((line): Op => ({ t: " ", line })),
    ...mid,
    ...a.slice(a.length - tail).map((line): Op => ({ t: " ", line })),
  ];
}

/** `-start,len` as diff prints it: `,1` left out, an empty range numbered by the line before. */
function range(start: number, len: number): string {
  if (len === 0) return `${start},0`;
  return len === 1 ? `${start + 1}` : `${start + 1},${len}`;
}

/**
 * The unified diff turning `before` into `after` ("" when they are the same). Texts are
 * compared as lines; a missing newline at the end is not reported.
 */
export function unifiedDiff(before: string, after: string, fromName: string, toName: string, context = 3): string {
  const ops = editScript(lines(before), lines(after));
  // Line counts in a and b before each op.
  const aAt = new Uint32Array(ops.length + 1);
  const bAt = new Uint32Array(ops.length + 1);
  const changed: number[] = [];
  for (const [k, o] of ops.entries()) {
    aAt[k + 1] = (aAt[k] as number) + (o.t === "+" ? 0 : 1);
    bAt[k + 1] = (bAt[k] as number) + (o.t === "-" ? 0 : 1);
    if (o.t !== " ") changed.push(k);
  }
  if (changed.length === 0) return "";
  const out = [`--- ${fromName}`, `+++ ${toName}`];
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, (changed[k] as number) - context);
    let end = Math.min(ops.length, (changed[k] as number) + context + 1);
    while (k + 1 < changed.length && (changed[k + 1] as number) - context <= end) {
      k++;
      end = Math.min(ops.length, (changed[k] as number) + context + 1);
    }
    k++;
    const aStart = aAt[start] as number;
    const bStart = bAt[start] as number;
    out.push(`@@ -${range(aStart, (aAt[end] as number) - aStart)} +${range(bStart, (bAt[end] as number) - bStart)} @@`);
    for (let i = start; i < end; i++) {
      const o = ops[i] as Op;
      out.push(`${o.t}${o.line}`);
    }
  }
  return `${out.join("\n")}\n`;
}
