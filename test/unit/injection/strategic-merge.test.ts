// merge.ts against Kubernetes' own strategic merge: test/strategic-merge/cases.jsonl holds Pods
// and patches (the Pod's own containers under templates, several templates, keys shared,
// repeated and reordered) with the Pod that k8s.io/apimachinery's strategicpatch makes of them,
// applied as Istio's injector applies its templates and the Pod's overrides (main.go beside the
// table; test/strategic-merge/regen.sh writes it again). Each patch is merged in turn with
// mergeObject; the result must be Kubernetes', list orders and merged items alike, after the
// empty values Go's JSON writes (`resources: {}`, `status: {}`, an item's key at its zero value)
// are dropped on both sides.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { mergeObject } from "../../../src/injection/merge.js";

type Obj = Record<string, unknown>;

interface Case {
  readonly id: string;
  readonly original: Obj;
  readonly patches: readonly Obj[];
  readonly expected: Obj;
}

const file = join(import.meta.dirname, "../../strategic-merge/cases.jsonl");
const cases: Case[] = readFileSync(file, "utf8")
  .trim()
  .split("\n")
  .map((line) => JSON.parse(line) as Case);

/** Without nulls, empty strings, zeros, empty maps and empty lists. */
function pruned(v: unknown): unknown {
  if (Array.isArray(v)) {
    const out = v.map(pruned).filter((x) => x !== undefined);
    return out.length > 0 ? out : undefined;
  }
  if (typeof v === "object" && v !== null) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      const p = pruned(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v === null || v === "" || v === 0 ? undefined : v;
}

describe("strategic merge: as Kubernetes merges Istio's templates and overrides over a Pod", () => {
  test("the table is Kubernetes' answers, named cases and random ones", () => {
    assert.ok(cases.length >= 100, `${cases.length} cases`);
    assert.ok(cases.every((c) => c.expected !== undefined));
  });
  for (const c of cases) {
    test(c.id, () => {
      const frozen = structuredClone([c.original, c.patches]);
      const got = c.patches.reduce((pod, patch) => mergeObject(pod, patch), c.original);
      assert.deepEqual(pruned(got), pruned(c.expected));
      assert.deepEqual([c.original, c.patches], frozen, "the inputs are left as they were");
    });
  }
});
