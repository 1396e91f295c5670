// Lists from the Pod can hold many thousand items (a 6 MiB body): merging them by name reads
// each item's key a bounded number of times, not once per item of the other list. Counted,
// not timed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { mergeListStrategic } from "../../../src/injection/merge.js";
import { orderContainers } from "../../../src/injection/ordering.js";
import { overrideFinder } from "../../../src/injection/overrides.js";
import type { Params } from "../../../src/injection/params.js";
import { listPatch, mapPatch, overlaid, overlayPatch } from "../../../src/injection/patch.js";
import { rewriteProbes } from "../../../src/injection/probes.js";
import { validateAnnotations } from "../../../src/injection/validate.js";
import { withPathEnv } from "../../../src/injection/template-parts.js";
import { MAX_POD_DEPTH, nestedDeeperThan, readPod } from "../../../src/injection/shape.js";
import type { PatchOperation } from "../../../src/injection/types.js";
import type { Container, EnvVar, Pod } from "../../../src/kube/types.js";
import { countedMap, type Counts } from "../../support/counted.js";

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

test("a strategic merge of keyed lists reads each key a bounded number of times, and merges as before", () => {
  const reads = { count: 0 };
  const base = counted(N, "v", reads);
  const patch = [...counted(N, "u", reads), ...counted(10, "v", reads), { name: "u1", extra: true }];
  const out = mergeListStrategic(base, patch, "name") as Record<string, unknown>[];
  assert.ok(reads.count <= 4 * (2 * N + 11), `${reads.count} reads of the key for ${2 * N + 11} items`);
  assert.equal(out.length, 2 * N, "same-named items are merged, not appended");
  assert.equal(out[1]?.extra, true, "merged over the first item of that name, in the patch's place");
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

// --- The whole review: work per label, per container, per list item, counted. ---

/** A map of `n` labels behind a Proxy that counts how often it is listed and how many entries are read. */
function countedLabels(n: number, counts: Counts): Record<string, string> {
  const target: Record<string, string> = {};
  for (let i = 0; i < n; i++) target[`l${i}`] = "v";
  return countedMap(target, counts);
}

const config = buildConfig({});

function labelledPod(labels: Record<string, string>): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", labels },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  };
}

test("a Pod's labels are listed once (one walk checks depth and shape) however many, and neither copied nor compared", () => {
  const at = (n: number): { listings: number; reads: number; ops: string[] } => {
    const counts = { listings: 0, reads: 0 };
    const r = inject(labelledPod(countedLabels(n, counts)), { namespace: "demo" }, config);
    const ops = r.patch.filter((o) => o.path.startsWith("/metadata/labels")).map((o) => `${o.op} ${o.path}`);
    return { ...counts, ops };
  };
  const small = at(N);
  const large = at(4 * N);
  assert.equal(small.listings, 1, "listed by the shape check only, which checks depth too");
  assert.equal(large.listings, 1, "as many listings at 4n as at n");
  // Object.keys reads a descriptor per key, and the shape check reads the value: 2 per label.
  assert.ok(large.reads <= 2 * 4 * N + 100, `${large.reads} reads for ${4 * N} labels`);
  assert.ok(large.reads - small.reads <= 2 * 3 * N, `${large.reads - small.reads} more reads for ${3 * N} more labels`);
  assert.deepEqual(large.ops, [
    "add /metadata/labels/security.istio.io~1tlsMode",
    "add /metadata/labels/service.istio.io~1canonical-name",
    "add /metadata/labels/service.istio.io~1canonical-revision",
  ]);
});

test("checking a Pod's annotations reads each once, and copies none of them for the checks that read another", () => {
  const at = (n: number, extra: Record<string, string>): number => {
    const counts = { listings: 0, reads: 0 };
    const target: Record<string, string> = { ...extra };
    for (let i = 0; i < n; i++) target[`example.com/note-${i}`] = "v";
    const annotations = countedMap(target, counts);
    validateAnnotations(annotations);
    return counts.reads;
  };
  // A check that reads another annotation (the proxy image's), and one of the table's, among many others.
  const extra = {
    "readiness.status.sidecar.istio.io/periodSeconds": "10",
    "sidecar.istio.io/proxyImageType": "distroless",
  };
  const small = at(N, extra);
  const large = at(4 * N, extra);
  // Object.keys reads a descriptor per key, and the loop reads the value: 2 per annotation.
  assert.ok(large - small <= 2 * 3 * N, `${large - small} more reads for ${3 * N} more annotations`);
  assert.ok(large <= 2 * 4 * N + 100, `${large} reads for ${4 * N} annotations`);
  // A '"' in the image type breaks the template's quoted string, unless the proxy image is a full name.
  assert.throws(() => validateAnnotations({ "sidecar.istio.io/proxyImageType": 'a"b' }), /proxyImageType/);
  assert.doesNotThrow(
    () =>
      validateAnnotations({
        "sidecar.istio.io/proxyImageType": 'a"b',
        "sidecar.istio.io/proxyImage": "example.com/proxy:1",
      }),
    "a check that reads another annotation still reads it",
  );
});

test("the injected Pod, when asked for, holds every label and the template's", () => {
  const labels: Record<string, string> = Object.fromEntries(Array.from({ length: N }, (_, i) => [`l${i}`, "v"]));
  const r = inject(labelledPod(labels), { namespace: "demo" }, config);
  const out = r.pod.metadata?.labels ?? {};
  assert.equal(Object.keys(out).length, N + 3);
  assert.equal(out["security.istio.io/tlsMode"], "istio");
  assert.equal(r.pod, r.pod, "put together once");
});

test("overlayPatch writes exactly mapPatch's operations over the merged map", () => {
  const cases: [Record<string, string> | undefined, Record<string, string>][] = [
    [undefined, { a: "1" }],
    [{}, { a: "1" }],
    [
      { a: "1", b: "2", c: "3" },
      { c: "x", a: "y", d: "4" },
    ], // replacements in the base's order
    [
      { a: "1", b: "2" },
      { a: "1", b: "2" },
    ], // nothing changes
    [{ "x/y~": "1", b: "2" }, { "x/y~": "3" }],
    [
      { 2: "a", b: "2", 1: "c" },
      { 1: "d", 0: "e", z: "f" },
    ], // array-index keys order first
    [
      JSON.parse('{"__proto__":"p","k":"v"}') as Record<string, string>,
      JSON.parse('{"__proto__":"q","n":"w"}') as Record<string, string>,
    ],
  ];
  for (const [before, overlay] of cases) {
    const base = before ?? {};
    const expected: PatchOperation[] = [];
    mapPatch("/m", before, overlaid({ base, overlay }), expected);
    const got: PatchOperation[] = [];
    overlayPatch("/m", before, { base, overlay }, got);
    assert.deepEqual(got, expected, JSON.stringify({ before, overlay }));
  }
});

test("a strategic merge reads each key of a long base once when the patch is short", () => {
  const reads = { count: 0 };
  const base = counted(4 * N, "v", reads);
  const out = mergeListStrategic(base, [{ name: "v7", extra: true }, { name: "new" }], "name") as Record<
    string,
    unknown
  >[];
  assert.equal(reads.count, 4 * N + 1, "each key once (and the match's once more, to merge it)");
  assert.equal(out.length, 4 * N + 1);
  assert.equal(out[7]?.extra, true);
  assert.equal(out[8]?.name, "new", "the patch's new item right after the one it follows there");
});

test("containers are ordered in a bounded number of passes over each list", () => {
  const reads = { count: 0 };
  const main = counted(N, "c", reads) as Container[];
  const init = counted(N, "i", reads) as Container[];
  const out = orderContainers(
    [...init, { name: "istio-init" } as Container],
    [{ name: "istio-proxy" } as Container, ...main],
    false,
  );
  assert.ok(reads.count <= 5 * 2 * N, `${reads.count} reads of a name for ${2 * N} containers`);
  assert.equal(out.containers.at(-1)?.name, "istio-proxy");
  assert.equal(out.initContainers.at(-1)?.name, "istio-init");
});

test("injecting a Pod of many containers reads each container's name a bounded number of times", () => {
  const at = (n: number): number => {
    const reads = { count: 0 };
    const containers = counted(n, "c", reads).map((c) =>
      Object.defineProperty(c, "image", { value: "example.com/app:1", enumerable: true }),
    ) as Container[];
    const r = inject(
      { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers } },
      { namespace: "demo" },
      config,
    );
    assert.equal(
      r.patch.filter((o) => o.path.startsWith("/spec/containers")).length,
      1,
      "the proxy added, the others left alone",
    );
    return reads.count;
  };
  const small = at(N);
  const large = at(4 * N);
  assert.ok(large <= 16 * 4 * N, `${large} reads of a name for ${4 * N} containers`);
  assert.ok(large <= 4 * small + 100, `${small} reads at ${N}, ${large} at ${4 * N}: linear`);
});

test("a container's ports are not indexed unless a probe names one", () => {
  const reads = { count: 0 };
  const ports = Array.from({ length: N }, (_, i) => {
    const port = { containerPort: i + 1 };
    Object.defineProperty(port, "name", { enumerable: true, get: () => ((reads.count += 1), `p${i}`) });
    return port;
  });
  const probe = { httpGet: { path: "/healthz", port: 8080 } };
  const r = rewriteProbes([], [{ name: "app", image: "x", ports, readinessProbe: probe }], 15020);
  assert.equal(reads.count, 0, "a numbered probe port needs no names");
  assert.match(r.probers, /"port":8080/);
  rewriteProbes(
    [],
    [{ name: "app", image: "x", ports, readinessProbe: { httpGet: { path: "/", port: "p7" } } }],
    15020,
  );
  assert.equal(reads.count, 2 * N, "a named one indexes them once (the name read to test it, then to key it)");
});

// --- One walk checks the Pod's shape and its depth: the answers of the two walks it replaced. ---

/** `levels` objects, one inside the other. */
function nestedObject(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/** A Pod with `value` at `where`: a field read for its shape, or one carried through. */
const PLACES: Record<string, (value: unknown) => Record<string, unknown>> = {
  status: (v) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p" },
    spec: { containers: [{ name: "a" }] },
    status: v,
  }),
  "spec.securityContext": (v) => ({
    metadata: { name: "p" },
    spec: { containers: [{ name: "a" }], securityContext: v },
  }),
  "env valueFrom": (v) => ({ spec: { containers: [{ name: "a", env: [{ name: "E", valueFrom: v }] }] } }),
  "a probe's unread field": (v) => ({
    spec: { containers: [{ name: "a", readinessProbe: { httpGet: { port: 80, x: v } } }] },
  }),
  "an init container's hook": (v) => ({
    spec: {
      containers: [{ name: "a" }],
      initContainers: [{ name: "i", lifecycle: { preStop: { exec: { command: ["x"] }, y: v } } }],
    },
  }),
  "a volume": (v) => ({ spec: { containers: [{ name: "a" }], volumes: [{ name: "v", configMap: v }] } }),
  "an owner reference": (v) => ({
    metadata: { ownerReferences: [{ apiVersion: "v1", kind: "K", name: "n", x: v }] },
    spec: { containers: [{ name: "a" }] },
  }),
};

const refusal = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
};

test("the one walk refuses exactly the Pods nested deeper than MAX_POD_DEPTH, wherever, naming the depth walk's path", () => {
  for (const [where, place] of Object.entries(PLACES)) {
    // The most levels the depth walk allows there, and one more.
    let fits = 1;
    while (nestedDeeperThan(place(nestedObject(fits + 1)), MAX_POD_DEPTH) === undefined) fits++;
    assert.ok(fits > 80 && fits < MAX_POD_DEPTH, `${where}: ${fits}`);
    assert.equal(
      refusal(() => readPod(place(nestedObject(fits)))),
      undefined,
      `${where}: ${fits} levels`,
    );
    const deep = nestedDeeperThan(place(nestedObject(fits + 1)), MAX_POD_DEPTH);
    assert.equal(
      refusal(() => readPod(place(nestedObject(fits + 1)))),
      `${deep}: nests deeper than ${MAX_POD_DEPTH} levels (a Pod from the API server nests a dozen)`,
      where,
    );
  }
});

test("a Pod too deep and of a wrong type is refused for its depth, even when the wrong type comes first", () => {
  const pod = {
    metadata: { name: "p", labels: "x" },
    spec: { containers: [{ name: "a", ports: "x" }], securityContext: nestedObject(200) },
  };
  assert.equal(
    refusal(() => readPod(pod)),
    `spec.securityContext.a.a: nests deeper than ${MAX_POD_DEPTH} levels (a Pod from the API server nests a dozen)`,
  );
  // Not too deep: the first wrong type, as before.
  const shallow = { ...pod, spec: { ...pod.spec, securityContext: nestedObject(5) } };
  assert.equal(
    refusal(() => readPod(shallow)),
    "metadata.labels: must be a map of strings",
  );
  // A wrong type that is itself deep (an object where a string goes): the depth is named.
  const deepLabel = { metadata: { labels: { k: nestedObject(150) } }, spec: { containers: [{ name: "a" }] } };
  assert.match(refusal(() => readPod(deepLabel)) ?? "", /^metadata\.labels\.k\.a: nests deeper/);
});

// --- The patch pairs changed items with the input's by name: a bounded number of reads each. ---

/** `n` containers, each with a probe the injection rewrites, whose `name` counts its reads. */
function probedContainers(n: number, reads: { count: number }): Container[] {
  return counted(n, "c", reads).map((c, i) =>
    Object.defineProperties(c, {
      image: { value: "registry.example.com/team/app:1.2.3", enumerable: true },
      ports: { value: [{ name: "http", containerPort: 8080 + i, protocol: "TCP" }], enumerable: true },
      env: {
        value: [
          { name: "MODE", value: "production" },
          { name: "REGION", value: "eu-west-1" },
        ],
        enumerable: true,
      },
      resources: { value: { requests: { cpu: "100m", memory: "128Mi" } }, enumerable: true },
      readinessProbe: {
        value: {
          httpGet: { path: "/ready", port: 8080 + i },
          periodSeconds: 10,
          timeoutSeconds: 1,
          failureThreshold: 3,
        },
        enumerable: true,
      },
    }),
  ) as Container[];
}

test("a Pod whose every container's probe is rewritten is patched probe by probe, reading each container's name a bounded number of times", () => {
  const at = (n: number): { reads: number; ops: PatchOperation[] } => {
    const reads = { count: 0 };
    const r = inject(
      { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: probedContainers(n, reads) } },
      { namespace: "demo" },
      config,
    );
    return { reads: reads.count, ops: r.patch.filter((o) => o.path.startsWith("/spec/containers")) };
  };
  const small = at(N / 10);
  const large = at((4 * N) / 10);
  // One operation per rewritten probe (its kept keys reordered, so the probe whole), and the proxy added.
  assert.equal(large.ops.length, (4 * N) / 10 + 1);
  assert.ok(
    large.ops.slice(0, -1).every((o, i) => o.op === "replace" && o.path === `/spec/containers/${i}/readinessProbe`),
  );
  assert.deepEqual(large.ops.at(-1)?.path, `/spec/containers/${(4 * N) / 10}`);
  assert.ok(
    large.reads <= 4 * small.reads + 100,
    `${small.reads} reads at ${N / 10}, ${large.reads} at ${(4 * N) / 10}: linear`,
  );
});

test("listPatch pairs the items of long lists in linear time: each changed item's name read a bounded number of times, reordered or not", () => {
  for (const reorder of [false, true]) {
    const at = (n: number): { reads: number; ops: number } => {
      const reads = { count: 0 };
      // Items of some size, so that patching them is smaller than replacing the list.
      const before = counted(n, "v", reads).map((item) => Object.assign(item, { data: "d".repeat(100) }));
      const after = before.map((item) => ({ ...item, changed: true }));
      if (reorder) after.push(after.shift() as (typeof after)[number]);
      reads.count = 0;
      const ops: PatchOperation[] = [];
      listPatch("/l", before, after, ops);
      return { reads: reads.count, ops: ops.length };
    };
    const small = at(N);
    const large = at(4 * N);
    // To pair it by name, and to compare its fields with the changed copy's.
    assert.ok(large.reads <= 8 * 4 * N, `${large.reads} reads of a name for ${4 * N} items`);
    assert.ok(large.reads <= 4 * small.reads + 100, `${small.reads} reads at ${N}, ${large.reads} at ${4 * N}: linear`);
    assert.equal(
      large.ops,
      reorder ? 4 * N + 1 : 4 * N,
      "a field added to each (the moved item removed and added again)",
    );
  }
});
