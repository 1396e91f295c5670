// Lists from the Pod can hold many thousand items (a 6 MiB body): merging them by name reads
// each item's key a bounded number of times, not once per item of the other list. Counted,
// not timed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeList } from "../../../src/injection/merge.js";
import { overrideFinder } from "../../../src/injection/overrides.js";
import type { Params } from "../../../src/injection/params.js";
import { withPathEnv } from "../../../src/injection/sidecar.js";
import type { Container, EnvVar } from "../../../src/kube/types.js";

/** Items whose `name` counts its reads. */
function counted(n: number, prefix: string, reads: { count: number }): { name: string }[] {
  return Array.from({ length: n }, (_, i) => {
    const item = {};
    Object.defineProperty(item, "name", {
      enumerable: true,
      get() {
        reads.count += 1;
        return `${prefix}${i}`;
      },
    });
    return item as { name: string };
  });
}

const N = 3000;

test("mergeList reads each key a bounded number of times, and merges as before", () => {
  const reads = { count: 0 };
  const base = counted(N, "v", reads);
  const patch = [...counted(N, "u", reads), ...counted(10, "v", reads), { name: "u1", extra: true }];
  const out = mergeList(base, patch, "name") as Record<string, unknown>[];
  assert.ok(reads.count <= 4 * (2 * N + 11), `${reads.count} reads of the key for ${2 * N + 11} items`);
  assert.equal(out.length, 2 * N, "same-named items are merged, not appended");
  assert.equal(out[N + 1]?.extra, true, "merged over the first item of that name, one appended from the patch");
});

test("override lookup indexes the containers once", () => {
  const reads = { count: 0 };
  const user = counted(N, "c", reads) as Container[];
  const find = overrideFinder({ containers: [{ name: "c5", image: "recorded" }] }, user);
  for (let i = 0; i < N; i++) assert.ok(find(`c${i}`));
  assert.equal(find("c5")?.image, "recorded", "the recorded override comes first");
  assert.equal(find("none"), undefined);
  assert.ok(reads.count <= 2 * N, `${reads.count} reads for ${N} lookups`);
});

test("path parameters replace env vars by name without scanning the env for each", () => {
  const reads = { count: 0 };
  const env = counted(N, "E", reads) as EnvVar[];
  const pathEnv = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`P${i}`, "v"]));
  const out = withPathEnv(env, { pathEnv: { ...pathEnv, E7: "path" } } as unknown as Params);
  assert.ok(reads.count <= 2 * N, `${reads.count} reads for ${N} env vars and 501 parameters`);
  assert.deepEqual(out[7], { name: "E7", value: "path" });
  assert.equal(out.length, N + 500);
});
