// The side-by-side table of `npm run bench` (test/bench/table.bench.ts): reading what vegeta
// and Linux report, and laying out the figures and their ratios. Pure: no I/O, no clock.
//
// - parseVegetaReport: `vegeta report -type=json` → requests, answered (status 200), p50/p99 in
//   ms, answered per second, mean answer size. A report without one of these fields is an
//   error naming the field.
// - cpuTicks: utime + stime (fields 14 and 15, in clock ticks) of one /proc/<pid>/stat line.
//   The command name (field 2) is in parentheses and may itself hold spaces and ')': fields are
//   counted after its last ')'.
// - ratio: a / b to two significant digits ("1.4×", "0.52×"); "–" when either is missing or b
//   is not positive.
// - tableRows: the rows (metric × rate) for the columns in order; a column without a figure
//   for a row gets "–". The two ratio columns are ours (--workers 1) over the bare server and
//   over Istio; on the in-process row, ours over the floor.
//   "answer bytes" is the size of one answer checked before the attacks (for the injectors: a
//   patch, allowed): similar sizes show the servers did similar work. "just started" rows are
//   each server's first attack, at 1,000/s as soon as it is ready: a new replica's first
//   seconds, its code not yet optimised; "with --warm-up" rows are ours started again as the
//   chart runs it, warmed up before it says it is ready (the ready time includes the warm-up).
// - renderTable: a Markdown table, columns padded to their widest cell.
// - combineRounds: one rate's rounds as one result: requests and answers summed, every other
//   figure the median of the rounds'.
// - roundRatios: for two servers measured in the same rounds (ours and the bare server, in
//   alternating order), the median of each round's own ratio, by row label, over the rounds
//   both had at a rate (answered % is not among them: its ratio is of all rounds' counts). The table's
//   ours/bare column shows these where there are some: the machine's speed drifts from minute
//   to minute, and a round's two attacks ran in the same minute.

export interface VegetaSummary {
  readonly requests: number;
  /** Answers with status 200. */
  readonly answered: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Answers with status 200 per second of the attack. */
  readonly answeredPerSecond: number;
  /** Mean size of an answer body, bytes. */
  readonly meanAnswerBytes: number;
}

function field(obj: unknown, path: readonly string[], what: string): number {
  let at: unknown = obj;
  for (const key of path) {
    if (typeof at !== "object" || at === null || !(key in at)) throw new Error(`${what}: no ${path.join(".")}`);
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at !== "number" || !Number.isFinite(at)) throw new Error(`${what}: ${path.join(".")} is not a number`);
  return at;
}

export function parseVegetaReport(text: string): VegetaSummary {
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch {
    throw new Error("vegeta report: not JSON");
  }
  const what = "vegeta report";
  const requests = field(report, ["requests"], what);
  const codes: unknown =
    typeof report === "object" && report !== null && "status_codes" in report ? report.status_codes : undefined;
  if (typeof codes !== "object" || codes === null) throw new Error(`${what}: no status_codes`);
  const answered = "200" in codes ? field(codes, ["200"], what) : 0;
  const ns = 1e6;
  // vegeta's duration is the span over which requests were sent, in ns; wait is the time to the
  // last answer after that.
  const seconds = (field(report, ["duration"], what) + field(report, ["wait"], what)) / 1e9;
  return {
    requests,
    answered,
    p50Ms: field(report, ["latencies", "50th"], what) / ns,
    p99Ms: field(report, ["latencies", "99th"], what) / ns,
    answeredPerSecond: seconds > 0 ? answered / seconds : 0,
    meanAnswerBytes: field(report, ["bytes_in", "mean"], what),
  };
}

export function cpuTicks(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) throw new Error("/proc stat line without a command name in parentheses");
  // After ")": field 3 (state) is at index 0, so field n is at index n - 3.
  const rest = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) throw new Error("/proc stat line without utime and stime");
  return utime + stime;
}

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return "–";
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toPrecision(2)}×`;
}

/** A figure: no decimals from 100 up, one from 10 up, two below; "–" when missing. */
export function figure(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  return n.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

/** What one HTTP server did at one offered rate. */
export interface RateResult {
  readonly summary: VegetaSummary;
  /** Server CPU (user + system, all its processes) per request sent, µs. */
  readonly cpuUsPerRequest: number;
}

export interface ServerResult {
  /** Spawn → first 200 from /readyz, ms. */
  readonly readyMs?: number;
  /** The same, with the serving certificate generated at start (ours only). */
  readonly readyWithCertsMs?: number;
  readonly idleRssMiB?: number;
  readonly peakRssMiB?: number;
  /** Size of one answer to the fixture, checked before the attacks. */
  readonly answerBytes?: number;
  /** Its first attack, at 1,000/s, just after it was ready (before the JIT has optimised its code). */
  readonly fresh?: RateResult;
  /** By rate label: "500", "1000", "2000", "max". */
  readonly rates: ReadonlyMap<string, RateResult>;
  /** Started again with the chart's --warm-up: spawn → first 200 from /readyz, ms, the warm-up included. */
  readonly warmedReadyMs?: number;
  /** Its first attack then, at 1,000/s, just after it was ready. */
  readonly warmedFresh?: RateResult;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function combineRounds(rounds: readonly RateResult[]): RateResult {
  if (rounds.length === 0) throw new Error("combineRounds: no rounds");
  const of = (get: (r: RateResult) => number): number => median(rounds.map(get));
  return {
    summary: {
      requests: rounds.reduce((n, r) => n + r.summary.requests, 0),
      answered: rounds.reduce((n, r) => n + r.summary.answered, 0),
      p50Ms: of((r) => r.summary.p50Ms),
      p99Ms: of((r) => r.summary.p99Ms),
      answeredPerSecond: of((r) => r.summary.answeredPerSecond),
      meanAnswerBytes: of((r) => r.summary.meanAnswerBytes),
    },
    cpuUsPerRequest: of((r) => r.cpuUsPerRequest),
  };
}

/** The rate of each server's first attack, as soon as it is ready: the reference rate. */
export const FRESH_RATE = "1000";

/** The rate's label in the table's rows: "1000/s", "max". */
export const rateName = (rate: string): string => (rate === "max" ? "max" : `${rate}/s`);

/**
 * Median of each round's ours / bare, by row label ("1000/s: server CPU µs/req" ...), over the
 * rounds both servers had at a rate; a label whose every round lacks a ratio is left out.
 */
export function roundRatios(
  ours: ReadonlyMap<string, readonly RateResult[]>,
  bare: ReadonlyMap<string, readonly RateResult[]>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [rate, o] of ours) {
    // Rounds are only ever cut short at their end (a collapse skips the rest): the first n of
    // each ran side by side.
    const b = bare.get(rate) ?? [];
    const n = Math.min(o.length, b.length);
    if (n === 0) continue;
    const name = rateName(rate);
    const set = (label: string, get: (r: RateResult) => number): void => {
      const r = median(o.slice(0, n).map((x, i) => (get(b[i]!) > 0 ? get(x) / get(b[i]!) : NaN)));
      if (Number.isFinite(r)) out.set(`${name}: ${label}`, r);
    };
    set("server CPU µs/req", (r) => r.cpuUsPerRequest);
    set("p50 ms", (r) => r.summary.p50Ms);
    set("p99 ms", (r) => r.summary.p99Ms);
    if (rate === "max") set("answered/s", (r) => r.summary.answeredPerSecond);
  }
  return out;
}

export interface BenchResults {
  /** CPU µs per review in-process: JSON.parse + JSON.stringify of the same bytes. */
  readonly floorUs?: number;
  /** CPU µs per review in-process: our decode, admit, encode. */
  readonly oursInProcessUs?: number;
  readonly bare?: ServerResult;
  readonly ours1?: ServerResult;
  readonly ours2?: ServerResult;
  readonly istio?: ServerResult;
  /** ours / bare by row label, each the median of the rounds' own ratios (roundRatios). */
  readonly oursOverBare?: ReadonlyMap<string, number>;
  /** The warm-up of the warmed rows (`serve --warm-up`), as given: "5s". */
  readonly warmUp?: string;
}

export const COLUMNS = [
  "",
  "floor (parse+stringify)",
  "ours in-process",
  "bare Node HTTPS",
  "ours --workers 1",
  "ours --workers 2",
  "Istio webhook",
  "ours/bare",
  "ours/Istio",
] as const;

export type Row = readonly string[];

export function tableRows(r: BenchResults, rateLabels: readonly string[]): Row[] {
  const rows: Row[] = [];
  const servers = [r.bare, r.ours1, r.ours2, r.istio];
  const row = (label: string, get: (s: ServerResult) => number | undefined): void => {
    const values = servers.map((s) => (s === undefined ? undefined : get(s)));
    const [bare, ours1, , istio] = values;
    const paired = r.oursOverBare?.get(label);
    rows.push([
      label,
      "–",
      "–",
      ...values.map(figure),
      paired === undefined ? ratio(ours1, bare) : ratio(paired, 1),
      ratio(ours1, istio),
    ]);
  };
  rows.push([
    "CPU µs per review, in-process",
    figure(r.floorUs),
    figure(r.oursInProcessUs),
    "–",
    "–",
    "–",
    "–",
    ratio(r.oursInProcessUs, r.floorUs),
    "–",
  ]);
  row("ready ms", (s) => s.readyMs);
  row("ready ms, generating its certificate", (s) => s.readyWithCertsMs);
  const warmed = `--warm-up ${r.warmUp ?? "?"}`;
  row(`ready ms, with ${warmed}`, (s) => s.warmedReadyMs);
  row("RSS MiB idle", (s) => s.idleRssMiB);
  row("RSS MiB peak", (s) => s.peakRssMiB);
  // The same work on both sides: the answers should be about the same size.
  row("answer bytes", (s) => s.answerBytes);
  const rateRows = (name: string, of: (s: ServerResult) => RateResult | undefined, max: boolean): void => {
    const at = (get: (x: RateResult) => number | undefined) => (s: ServerResult) => {
      const x = of(s);
      return x === undefined ? undefined : get(x);
    };
    row(
      `${name}: answered %`,
      at((x) => (x.summary.requests > 0 ? (100 * x.summary.answered) / x.summary.requests : undefined)),
    );
    if (max)
      row(
        `${name}: answered/s`,
        at((x) => x.summary.answeredPerSecond),
      );
    row(
      `${name}: p50 ms`,
      at((x) => x.summary.p50Ms),
    );
    row(
      `${name}: p99 ms`,
      at((x) => x.summary.p99Ms),
    );
    row(
      `${name}: server CPU µs/req`,
      at((x) => x.cpuUsPerRequest),
    );
  };
  rateRows(`just started, ${FRESH_RATE}/s`, (s) => s.fresh, false);
  rateRows(`just started with ${warmed}, ${FRESH_RATE}/s`, (s) => s.warmedFresh, false);
  for (const rate of rateLabels) rateRows(rateName(rate), (s) => s.rates.get(rate), rate === "max");
  return rows;
}

export function renderTable(header: Row, rows: readonly Row[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: Row): string => `| ${widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
