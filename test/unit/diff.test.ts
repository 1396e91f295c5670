// unifiedDiff: the diff that `?format=diff` and `preview -o diff` print. Checked line by line
// on small cases, against GNU `diff -u` (when the machine has it) on the same two files, by
// applying it with `patch`, and for bounded cost on large inputs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { stringify } from "yaml";
import { buildConfig } from "../../src/config/load.js";
import { unifiedDiff } from "../../src/diff.js";
import { inject } from "../../src/injection/inject.js";
import type { Pod } from "../../src/kube/types.js";

const textOf = (lines: readonly string[]): string => lines.map((l) => `${l}\n`).join("");
const text = (...lines: string[]): string => textOf(lines);
const range = (from: number, to: number, prefix = "l"): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

const has = (tool: string): boolean => spawnSync(tool, ["--version"], { encoding: "utf8" }).status === 0;
const HAS_DIFF = has("diff");
const HAS_PATCH = has("patch");
const dir = mkdtempSync(join(tmpdir(), "unified-diff-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What `diff -u` prints for the two texts, without its two file header lines. */
function gnuDiff(before: string, after: string): string {
  writeFileSync(join(dir, "a"), before);
  writeFileSync(join(dir, "b"), after);
  const r = spawnSync("diff", ["-u", join(dir, "a"), join(dir, "b")], { encoding: "utf8" });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  return r.stdout.split("\n").slice(2).join("\n");
}

const body = (d: string): string => d.split("\n").slice(2).join("\n");
const headers = (d: string): string[] => d.split("\n").filter((l) => l.startsWith("@@"));

/** Applies the diff to `before` with `patch` and returns the result. */
function patched(before: string, diff: string): string {
  writeFileSync(join(dir, "orig"), before);
  writeFileSync(join(dir, "p.diff"), diff);
  const r = spawnSync("patch", ["-s", "-o", join(dir, "out"), join(dir, "orig"), join(dir, "p.diff")], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `patch failed: ${r.stdout}${r.stderr}`);
  return readFileSync(join(dir, "out"), "utf8");
}

describe("unifiedDiff", () => {
  test("identical texts give the empty string", () => {
    assert.equal(unifiedDiff("", "", "a", "b"), "");
    assert.equal(unifiedDiff(text("x", "y"), text("x", "y"), "a", "b"), "");
  });

  test("names the two sides in the --- and +++ lines", () => {
    const d = unifiedDiff(text("x"), text("y"), "Pod/web as given", "Pod/web as stored");
    assert.deepEqual(d.split("\n").slice(0, 2), ["--- Pod/web as given", "+++ Pod/web as stored"]);
    assert.ok(d.endsWith("\n"));
  });

  test("a changed line: removal before addition, ,1 left out of the ranges as diff does", () => {
    assert.equal(
      unifiedDiff(text("a", "x", "b"), text("a", "y", "b"), "A", "B"),
      ["--- A", "+++ B", "@@ -1,3 +1,3 @@", " a", "-x", "+y", " b", ""].join("\n"),
    );
    assert.equal(
      unifiedDiff(text("x"), text("y"), "A", "B"),
      ["--- A", "+++ B", "@@ -1 +1 @@", "-x", "+y", ""].join("\n"),
    );
  });

  test("insertions into and deletions from an empty text number the empty side 0,0", () => {
    assert.equal(
      unifiedDiff("", text("a", "b"), "A", "B"),
      ["--- A", "+++ B", "@@ -0,0 +1,2 @@", "+a", "+b", ""].join("\n"),
    );
    assert.equal(
      unifiedDiff(text("a", "b"), "", "A", "B"),
      ["--- A", "+++ B", "@@ -1,2 +0,0 @@", "-a", "-b", ""].join("\n"),
    );
  });

  test("insertion in the middle: three lines of context on each side", () => {
    const before = text(...range(1, 10));
    const after = text(...range(1, 5), "new1", "new2", ...range(6, 10));
    assert.equal(
      unifiedDiff(before, after, "A", "B"),
      ["--- A", "+++ B", "@@ -3,6 +3,8 @@", " l3", " l4", " l5", "+new1", "+new2", " l6", " l7", " l8", ""].join("\n"),
    );
  });

  test("deletion at the start and at the end: context is cut at the edges", () => {
    const d = unifiedDiff(text(...range(1, 10)), text(...range(2, 9)), "A", "B");
    assert.deepEqual(headers(d), ["@@ -1,4 +1,3 @@", "@@ -7,4 +6,3 @@"]);
    assert.match(d, /^-l1$/m);
    assert.match(d, /^-l10$/m);
  });

  test("changes up to 6 unchanged lines apart share a hunk, 7 apart get two", () => {
    const base = range(1, 20);
    const six = base.map((l) => (l === "l5" || l === "l12" ? `${l}!` : l));
    assert.deepEqual(headers(unifiedDiff(text(...base), text(...six), "A", "B")), ["@@ -2,14 +2,14 @@"]);
    const seven = base.map((l) => (l === "l5" || l === "l13" ? `${l}!` : l));
    assert.deepEqual(headers(unifiedDiff(text(...base), text(...seven), "A", "B")), [
      "@@ -2,7 +2,7 @@",
      "@@ -10,7 +10,7 @@",
    ]);
  });

  test("a context of 0 gives only the changed lines", () => {
    const d = unifiedDiff(text("a", "b", "c"), text("a", "B", "c"), "A", "B", 0);
    assert.equal(body(d), ["@@ -2 +2 @@", "-b", "+B", ""].join("\n"));
  });

  test("a missing final newline is not a difference", () => {
    assert.equal(unifiedDiff("a\nb", "a\nb\n", "A", "B"), "");
  });

  test(
    "line numbers and hunks are the ones diff -u prints for the same files",
    { skip: HAS_DIFF ? false : "diff (diffutils) not installed" },
    () => {
      const cases: [string, string][] = [
        [text(...range(1, 10)), text(...range(1, 5), "new1", "new2", ...range(6, 10))],
        [text(...range(1, 10)), text(...range(2, 9))],
        [
          text(...range(1, 30)),
          text(...range(1, 3), ...range(5, 17), "x", ...range(18, 26), "y", "z", ...range(27, 30)),
        ],
        [text(...range(1, 40)), text("top", ...range(1, 12), ...range(14, 25), "mid", ...range(26, 40), "end")],
        ["", text("a", "b")],
        [text("a", "b"), ""],
        [text("x"), text("y")],
      ];
      for (const [before, after] of cases) {
        const mine = unifiedDiff(before, after, "a", "b");
        const gnu = gnuDiff(before, after);
        assert.deepEqual(headers(mine), headers(gnu));
        assert.equal(body(mine), gnu);
      }
    },
  );

  test(
    "the diff of an injected Pod's YAML is the one diff -u prints",
    { skip: HAS_DIFF ? false : "diff (diffutils) not installed" },
    () => {
      const pod: Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web", labels: { app: "web" }, annotations: { "prometheus.io/scrape": "true" } },
        spec: {
          containers: [
            {
              name: "web",
              image: "nginx",
              ports: [{ containerPort: 80 }],
              readinessProbe: { httpGet: { path: "/", port: 80 } },
            },
          ],
        },
      };
      const injected = inject(pod, { namespace: "demo" }, buildConfig({})).pod;
      const before = stringify(pod);
      const after = stringify(injected);
      const mine = unifiedDiff(before, after, "a", "b");
      assert.ok(headers(mine).length >= 2, "labels, containers and volumes change in several places");
      assert.deepEqual(headers(mine), headers(gnuDiff(before, after)));
    },
  );

  test(
    "applying the diff with patch gives the new text, on many random edits",
    { skip: HAS_PATCH ? false : "patch not installed" },
    () => {
      let seed = 12345;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      for (let t = 0; t < 60; t++) {
        const a = Array.from({ length: Math.floor(rnd() * 40) }, () => "abcdef"[Math.floor(rnd() * 6)] as string);
        const b = a.flatMap((l) => {
          const r = rnd();
          if (r < 0.15) return [];
          if (r < 0.3) return [l, "xyz"[Math.floor(rnd() * 3)] as string];
          if (r < 0.4) return [`${l}~`];
          return [l];
        });
        const before = text(...a);
        const after = text(...b);
        const d = unifiedDiff(before, after, "a", "b");
        if (before === after) assert.equal(d, "");
        else assert.equal(patched(before, d), after, JSON.stringify({ a, b }));
      }
    },
  );

  test("large inputs stay cheap: a few changes in 200k lines", () => {
    const before = textOf(range(1, 200_000));
    const lines = range(1, 200_000);
    lines.splice(100_000, 0, "inserted");
    lines.splice(10, 1);
    const started = Date.now();
    const d = unifiedDiff(before, textOf(lines), "a", "b");
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.deepEqual(headers(d), ["@@ -8,7 +8,6 @@", "@@ -99998,6 +99997,7 @@"]);
  });

  test("texts with nothing in common: one hunk removing all and adding all, in bounded time", () => {
    const before = textOf(range(1, 100_000, "a"));
    const after = textOf(range(1, 100_000, "b"));
    const started = Date.now();
    const d = unifiedDiff(before, after, "a", "b");
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.deepEqual(headers(d), ["@@ -1,100000 +1,100000 @@"]);
    const out = d.split("\n");
    assert.equal(out[3], "-a1");
    assert.equal(out[100_003], "+b1");
  });
});
