// The parsing and layout of `npm run bench`'s side-by-side table (test/bench/table.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  COLUMNS,
  combineRounds,
  cpuTicks,
  figure,
  median,
  parseVegetaReport,
  ratio,
  renderTable,
  roundRatios,
  tableRows,
  type RateResult,
  type Row,
  type ServerResult,
  type VegetaSummary,
} from "./table.js";

// The shape `vegeta report -type=json` (v12.13.0) prints: latencies and durations in ns.
function report(codes: Record<string, number>, requests: number): string {
  return JSON.stringify({
    latencies: {
      total: 7094623,
      mean: 1418924,
      "50th": 561271,
      "90th": 4662738,
      "95th": 4662738,
      "99th": 4662738,
      max: 4662738,
      min: 451012,
    },
    bytes_in: { total: 3000, mean: 600 },
    bytes_out: { total: 0, mean: 0 },
    earliest: "2026-11-29T14:29:19.919222521Z",
    latest: "2026-11-29T14:29:20.713731416Z",
    end: "2026-11-29T14:29:20.714182428Z",
    duration: 1_999_000_000,
    wait: 1_000_000,
    requests,
    rate: 2.5,
    throughput: 2.5,
    success: 1,
    status_codes: codes,
    errors: [],
  });
}

describe("parseVegetaReport", () => {
  it("reads requests, answers with status 200, p50/p99 in ms, answers per second and answer size", () => {
    const s = parseVegetaReport(report({ "200": 4, "503": 1 }, 5));
    assert.equal(s.requests, 5);
    assert.equal(s.answered, 4);
    assert.equal(s.p50Ms, 0.561271);
    assert.equal(s.p99Ms, 4.662738);
    assert.equal(s.answeredPerSecond, 2); // 4 answers over duration + wait = 2 s
    assert.equal(s.meanAnswerBytes, 600);
  });

  it("counts no answers when no request got a 200", () => {
    assert.equal(parseVegetaReport(report({ "0": 5 }, 5)).answered, 0);
  });

  it("names what is missing or wrong", () => {
    assert.throws(() => parseVegetaReport("Requests [total] 5"), /vegeta report: not JSON/);
    const noP99 = JSON.parse(report({ "200": 1 }, 1)) as { latencies: Record<string, unknown> };
    delete noP99.latencies["99th"];
    assert.throws(() => parseVegetaReport(JSON.stringify(noP99)), /no latencies\.99th/);
    assert.throws(() => parseVegetaReport(JSON.stringify({ requests: "5" })), /requests is not a number/);
    assert.throws(() => parseVegetaReport(JSON.stringify({ requests: 5 })), /no status_codes/);
  });
});

describe("cpuTicks", () => {
  it("adds utime and stime, counting fields after the command name's last ')'", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = "4242 (node ) x (y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 731 129 0 0 20 0 11 0 100 1000000 5000\n";
    assert.equal(cpuTicks(stat), 860);
  });

  it("refuses a line that is not a stat line", () => {
    assert.throws(() => cpuTicks("no parentheses here"), /command name/);
    assert.throws(() => cpuTicks("1 (x) S 1"), /utime and stime/);
  });
});

describe("ratio and figure", () => {
  it("gives two significant digits, whole numbers from 10", () => {
    assert.equal(ratio(3, 1.5), "2.0×");
    assert.equal(ratio(1, 2), "0.50×");
    assert.equal(ratio(150, 10), "15×");
  });

  it("gives – when a side is missing or the divisor is not positive", () => {
    assert.equal(ratio(undefined, 1), "–");
    assert.equal(ratio(1, undefined), "–");
    assert.equal(ratio(1, 0), "–");
    assert.equal(ratio(Number.NaN, 1), "–");
  });

  it("rounds by size", () => {
    assert.equal(figure(1234.5), "1235");
    assert.equal(figure(12.345), "12.3");
    assert.equal(figure(0.1234), "0.12");
    assert.equal(figure(undefined), "–");
  });
});

function summary(over: Partial<VegetaSummary>): VegetaSummary {
  return { requests: 1000, answered: 1000, p50Ms: 1, p99Ms: 2, answeredPerSecond: 500, meanAnswerBytes: 4000, ...over };
}

function server(rates: [string, RateResult][], over: Partial<ServerResult> = {}): ServerResult {
  return { readyMs: 100, idleRssMiB: 50, peakRssMiB: 80, rates: new Map(rates), ...over };
}

describe("tableRows", () => {
  const rateLabels = ["500", "max"];
  const bare = server([
    ["500", { summary: summary({ p50Ms: 0.5 }), cpuUsPerRequest: 100 }],
    ["max", { summary: summary({ answeredPerSecond: 4000 }), cpuUsPerRequest: 90 }],
  ]);
  const ours1 = server(
    [
      ["500", { summary: summary({ p50Ms: 1.5, answered: 990 }), cpuUsPerRequest: 300 }],
      ["max", { summary: summary({ answeredPerSecond: 1000 }), cpuUsPerRequest: 280 }],
    ],
    { readyWithCertsMs: 900, readyMs: 400, answerBytes: 7000 },
  );
  const rows = tableRows({ floorUs: 10, oursInProcessUs: 60, bare, ours1 }, rateLabels);
  const find = (label: string): readonly string[] => {
    const row = rows.find((r) => r[0] === label);
    assert.ok(row, `no row ${label}`);
    return row;
  };
  const col = (name: (typeof COLUMNS)[number]): number => COLUMNS.indexOf(name);

  it("has a cell for every column in every row, and 4 rows per rate (and just started, twice) plus answered/s at max", () => {
    for (const r of rows) assert.equal(r.length, COLUMNS.length, r[0]);
    assert.equal(rows.length, 7 + 4 * (rateLabels.length + 2) + 1);
  });

  it("gives ours started again with the chart's warm-up in rows of its own, ready time included", () => {
    const r = tableRows(
      {
        warmUp: "5s",
        bare: server([], { fresh: { summary: summary({ p99Ms: 2 }), cpuUsPerRequest: 150 } }),
        ours1: server([], {
          fresh: { summary: summary({ p99Ms: 600 }), cpuUsPerRequest: 900 },
          warmedReadyMs: 5200,
          warmedFresh: { summary: summary({ p99Ms: 3.8 }), cpuUsPerRequest: 340 },
        }),
      },
      [],
    );
    const at = (label: string): Row | undefined => r.find((x) => x[0] === label);
    assert.equal(at("ready ms, with --warm-up 5s")?.[col("ours --workers 1")], "5200");
    assert.equal(at("ready ms, with --warm-up 5s")?.[col("bare Node HTTPS")], "–");
    assert.equal(at("just started with --warm-up 5s, 1000/s: p99 ms")?.[col("ours --workers 1")], "3.80");
    assert.equal(at("just started with --warm-up 5s, 1000/s: server CPU µs/req")?.[col("ours --workers 1")], "340");
    // No bare server warmed up: no ratio.
    assert.equal(at("just started with --warm-up 5s, 1000/s: p99 ms")?.[col("ours/bare")], "–");
    assert.equal(at("just started, 1000/s: p99 ms")?.[col("ours --workers 1")], "600");
  });

  it("gives each server's first attack, just after it was ready, in rows of its own", () => {
    const started = (p99Ms: number): ServerResult =>
      server([], { fresh: { summary: summary({ p99Ms, answered: 900 }), cpuUsPerRequest: 400 } });
    const r = tableRows({ bare: started(2), ours1: started(60) }, []);
    const p99 = r.find((x) => x[0] === "just started, 1000/s: p99 ms");
    assert.equal(p99?.[col("ours --workers 1")], "60.0");
    assert.equal(p99?.[col("ours/bare")], "30×");
    assert.equal(r.find((x) => x[0] === "just started, 1000/s: answered %")?.[col("bare Node HTTPS")], "90.0");
    assert.equal(
      rows.find((x) => x[0] === "just started, 1000/s: p99 ms")?.[col("ours --workers 1")],
      "–",
      "none measured",
    );
  });

  it("puts ours over the bare server and over Istio in the ratio columns", () => {
    const p50 = find("500/s: p50 ms");
    assert.equal(p50[col("bare Node HTTPS")], "0.50");
    assert.equal(p50[col("ours --workers 1")], "1.50");
    assert.equal(p50[col("ours/bare")], "3.0×");
    assert.equal(p50[col("ours/Istio")], "–"); // no Istio column measured
    assert.equal(find("max: answered/s")[col("ours/bare")], "0.25×");
    assert.equal(find("ready ms")[col("ours/bare")], "4.0×");
  });

  it("puts the in-process figures under the floor and ours in-process, ours over the floor as ratio", () => {
    const r = find("CPU µs per review, in-process");
    assert.equal(r[col("floor (parse+stringify)")], "10.0");
    assert.equal(r[col("ours in-process")], "60.0");
    assert.equal(r[col("ours/bare")], "6.0×");
  });

  it("computes answered % from answers with status 200 over requests sent", () => {
    assert.equal(find("500/s: answered %")[col("ours --workers 1")], "99.0");
    assert.equal(find("500/s: answered %")[col("ours --workers 2")], "–");
  });

  it("gives the size of the checked answer", () => {
    assert.equal(find("answer bytes")[col("ours --workers 1")], "7000");
    assert.equal(find("answer bytes")[col("bare Node HTTPS")], "–");
  });

  it("gives the ready time with certificate generation only where it was measured", () => {
    const r = find("ready ms, generating its certificate");
    assert.equal(r[col("ours --workers 1")], "900");
    assert.equal(r[col("bare Node HTTPS")], "–");
  });
});

describe("rounds", () => {
  const at = (cpu: number, perSecond: number, p99Ms = 2, answered = 1000): RateResult => ({
    summary: summary({ answeredPerSecond: perSecond, p99Ms, answered }),
    cpuUsPerRequest: cpu,
  });

  it("median: the middle value, the mean of the middle two for an even count, NaN ignored", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([NaN, 5]), 5);
    assert.ok(Number.isNaN(median([])));
  });

  it("combineRounds sums requests and answers, and takes the median of every other figure", () => {
    const c = combineRounds([at(100, 900, 9, 990), at(300, 1000, 1), at(200, 5000, 3)]);
    assert.equal(c.summary.requests, 3000);
    assert.equal(c.summary.answered, 2990);
    assert.equal(c.cpuUsPerRequest, 200);
    assert.equal(c.summary.answeredPerSecond, 1000);
    assert.equal(c.summary.p99Ms, 3);
    assert.throws(() => combineRounds([]), /no rounds/);
  });

  it("roundRatios is the median of each round's own ratio, not the ratio of the medians", () => {
    // The machine slows down in the second round: both servers cost twice as much.
    const ours = new Map([
      ["1000", [at(250, 1000), at(500, 1000), at(260, 1000)]],
      ["max", [at(200, 4000), at(400, 2000), at(210, 3900)]],
    ]);
    const bare = new Map([
      ["1000", [at(100, 1000), at(240, 1000), at(130, 1000)]],
      ["max", [at(80, 10000), at(160, 5000), at(100, 8000)]],
    ]);
    const r = roundRatios(ours, bare);
    // Rounds' ratios 2.5, 2.08, 2.0: median 2.08; medians' ratio would be 260 / 130 = 2.0.
    assert.equal(r.get("1000/s: server CPU µs/req")?.toFixed(3), "2.083");
    // 0.4, 0.4, 0.4875: median 0.4 (medians' ratio: 3900 / 8000 = 0.49).
    assert.equal(r.get("max: answered/s"), 0.4);
    assert.equal(r.has("1000/s: answered/s"), false);
  });

  it("roundRatios pairs only the rounds both had at a rate (one cut short by a collapse)", () => {
    const r = roundRatios(new Map([["2000", [at(300, 1), at(900, 1)]]]), new Map([["2000", [at(100, 1)]]]));
    assert.equal(r.get("2000/s: server CPU µs/req"), 3);
    assert.equal(roundRatios(new Map([["2000", [at(1, 1)]]]), new Map()).size, 0);
  });

  it("roundRatios leaves out a label no round has a ratio for", () => {
    const r = roundRatios(new Map([["max", [at(200, 4000)]]]), new Map([["max", [at(0, 8000)]]]));
    assert.equal(r.has("max: server CPU µs/req"), false);
    assert.equal(r.get("max: answered/s"), 0.5);
  });

  it("the ours/bare column shows the rounds' ratio where there is one", () => {
    const one = server([["max", { summary: summary({ answeredPerSecond: 4000 }), cpuUsPerRequest: 90 }]]);
    const two = server([["max", { summary: summary({ answeredPerSecond: 1000 }), cpuUsPerRequest: 280 }]]);
    const rows = tableRows({ bare: one, ours1: two, oursOverBare: new Map([["max: answered/s", 0.4]]) }, ["max"]);
    const row = (label: string): readonly string[] | undefined => rows.find((x) => x[0] === label);
    assert.equal(row("max: answered/s")?.[COLUMNS.indexOf("ours/bare")], "0.40×");
    // No rounds' ratio for CPU here: the ratio of the two figures.
    assert.equal(row("max: server CPU µs/req")?.[COLUMNS.indexOf("ours/bare")], "3.1×");
  });
});

describe("renderTable", () => {
  it("pads every column to its widest cell", () => {
    const text = renderTable(
      ["", "a", "bb"],
      [
        ["row one", "1", "2"],
        ["r", "333333", ""],
      ],
    );
    const lines = text.split("\n");
    assert.equal(lines.length, 4);
    assert.equal(new Set(lines.map((l) => l.length)).size, 1);
    assert.equal(lines[2], "| row one | 1      | 2  |");
    assert.equal(lines[1], "|---------|--------|----|");
  });
});
