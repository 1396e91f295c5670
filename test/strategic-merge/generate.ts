// The cases of the strategic-merge table (regen.sh): Pods and patches whose keyed lists share
// keys, repeat them and reorder them, for main.go to merge as Istio does. Seeded: the same seed
// gives the same cases, byte for byte.
//
//   node --import tsx test/strategic-merge/generate.ts [--seed N] [--count N]
//       prints the named cases, then N random ones: one {"id","original","patches"} per line
import { parseArgs } from "node:util";
import { Rng } from "../support/rng.js";

type Obj = Record<string, unknown>;

interface Case {
  readonly id: string;
  readonly original: Obj;
  readonly patches: Obj[];
}

const env = (...names: string[]): Obj[] => names.map((name) => ({ name, value: `v-${name}` }));
const mounts = (...paths: string[]): Obj[] => paths.map((p) => ({ name: p.slice(1) || "root", mountPath: p }));
const volumes = (...names: string[]): Obj[] => names.map((name) => ({ name, emptyDir: {} }));
const pod = (spec: Obj): Obj => ({ spec: { containers: [], ...spec } });
const container = (name: string, fields: Obj): Obj => ({ name, ...fields });

/** The shapes the injector meets (the Pod's own istio-proxy, several templates), by name. */
function named(): Case[] {
  const sidecarEnv = env("PILOT_CERT_PROVIDER", "CA_ADDR", "POD_NAME", "TRUST_DOMAIN");
  const own = container("istio-proxy", { env: env("ISTIO_META_X", "CA_ADDR") });
  return [
    {
      id: "own istio-proxy env: under the template's, then over it",
      original: pod({ containers: [container("app", {}), own] }),
      patches: [pod({ containers: [container("istio-proxy", { env: sidecarEnv })] }), pod({ containers: [own] })],
    },
    {
      id: "own istio-proxy env in reverse: the template's items after the Pod's first",
      original: pod({ containers: [container("istio-proxy", { env: env("TRUST_DOMAIN", "CA_ADDR") })] }),
      patches: [pod({ containers: [container("istio-proxy", { env: sidecarEnv })] })],
    },
    {
      id: "own mounts around the template's",
      original: pod({ containers: [container("istio-proxy", { volumeMounts: mounts("/extra", "/etc/istio/proxy") })] }),
      patches: [
        pod({
          containers: [container("istio-proxy", { volumeMounts: mounts("/var/lib/istio/data", "/etc/istio/proxy") })],
        }),
        pod({ containers: [container("istio-proxy", { volumeMounts: mounts("/extra", "/etc/istio/proxy") })] }),
      ],
    },
    {
      id: "two templates' ports over none: the later's first",
      original: pod({ containers: [container("app", {})] }),
      patches: [
        pod({ containers: [container("istio-proxy", { ports: [{ containerPort: 15090, name: "http-envoy-prom" }] })] }),
        pod({ containers: [container("istio-proxy", { ports: [{ containerPort: 15020, name: "mesh-metrics" }] })] }),
      ],
    },
    {
      id: "the Pod's volumes under one template, then another that shares a name",
      original: pod({ volumes: volumes("extra", "workload-socket") }),
      patches: [
        pod({ volumes: volumes("grpc-io-proxyless-bootstrap") }),
        pod({ volumes: volumes("workload-socket", "credential-socket") }),
      ],
    },
    {
      id: "ports 53 TCP and UDP merged over themselves",
      original: pod({
        containers: [
          container("dns", {
            ports: [
              { containerPort: 53, protocol: "TCP", name: "dns-tcp" },
              { containerPort: 53, protocol: "UDP", name: "dns" },
            ],
          }),
        ],
      }),
      patches: [
        pod({
          containers: [
            container("dns", {
              ports: [
                { containerPort: 53, protocol: "TCP", name: "dns-tcp" },
                { containerPort: 53, protocol: "UDP", name: "dns" },
              ],
            }),
          ],
        }),
      ],
    },
    {
      id: "a repeated env name: its items end up together",
      original: pod({ containers: [container("c", { env: env("A", "B", "A", "C") })] }),
      patches: [pod({ containers: [container("c", { env: env("D") })] })],
    },
    {
      id: "a repeated env name in the patch: merged into the first",
      original: pod({ containers: [container("c", { env: env("B") })] }),
      patches: [pod({ containers: [container("c", { env: [...env("A"), { name: "A", value: "again" }] })] })],
    },
    {
      id: "items without their key have its zero value",
      original: pod({ containers: [container("c", { env: [{ value: "1" }, { name: "B" }, { value: "2" }] })] }),
      patches: [pod({ containers: [container("c", { env: env("A", "") })] })],
    },
    {
      id: "an init container under two templates' lists",
      original: pod({ initContainers: [container("setup", {}), container("istio-init", { env: env("I") })] }),
      patches: [
        pod({ initContainers: [container("grpc-bootstrap-init", {})] }),
        pod({ initContainers: [container("istio-init", {})] }),
      ],
    },
  ];
}

const ALPHABETS: Readonly<Record<string, { readonly keys: readonly (string | number)[]; readonly item: string }>> = {
  env: { keys: ["A", "B", "C", "D", "E", "F"], item: "name" },
  ports: { keys: [80, 81, 82, 83, 84], item: "containerPort" },
  volumeMounts: { keys: ["/a", "/b", "/c", "/d", "/e"], item: "mountPath" },
  volumeDevices: { keys: ["/dev/x", "/dev/y", "/dev/z"], item: "devicePath" },
};

function item(rng: Rng, list: string, key: string | number, tag: string): Obj {
  switch (list) {
    case "env":
      return rng.chance(0.2)
        ? { name: key, valueFrom: { fieldRef: { fieldPath: `metadata.${tag}` } } }
        : { name: key, value: `${tag}` };
    case "ports":
      return {
        containerPort: key,
        name: `p${tag}`,
        ...(rng.chance(0.3) ? { protocol: rng.pick(["TCP", "UDP"]) } : {}),
      };
    case "volumeMounts":
      return { mountPath: key, name: `m${tag}`, ...(rng.chance(0.2) ? { readOnly: true } : {}) };
    default:
      return { devicePath: key, name: `d${tag}` };
  }
}

/** A list of up to `max` items: keys mostly distinct, sometimes repeated, in any order. */
function keyed(rng: Rng, list: string, tag: string, max: number): Obj[] {
  const { keys } = ALPHABETS[list] ?? { keys: [] };
  const out: Obj[] = [];
  const n = rng.int(1, max);
  const used = new Set<string | number>();
  for (let i = 0; i < n; i++) {
    const key = rng.pick(keys);
    if (used.has(key) && !rng.chance(0.15)) continue;
    used.add(key);
    out.push(item(rng, list, key, `${tag}${i}`));
  }
  return out;
}

function randomContainer(rng: Rng, name: string, tag: string): Obj {
  const c: Obj = { name };
  for (const list of Object.keys(ALPHABETS))
    if (rng.chance(list === "volumeDevices" ? 0.15 : 0.45)) c[list] = keyed(rng, list, tag, 4);
  if (rng.chance(0.3)) c.image = `img-${tag}`;
  return c;
}

function randomNames(rng: Rng, names: readonly string[], max: number): string[] {
  const out: string[] = [];
  for (let i = rng.int(0, max); i > 0; i--) {
    const n = rng.pick(names);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function randomPod(rng: Rng, tag: string, patch: boolean): Obj {
  const spec: Obj = {};
  const containers = randomNames(rng, ["app", "istio-proxy", "side"], patch ? 2 : 3).map((n) =>
    randomContainer(rng, n, tag),
  );
  if (containers.length > 0 || !patch) spec.containers = containers;
  const init = randomNames(rng, ["istio-init", "setup", "grpc-bootstrap-init"], 2).map((n) =>
    randomContainer(rng, n, tag),
  );
  if (init.length > 0) spec.initContainers = init;
  if (rng.chance(0.5))
    spec.volumes = randomNames(rng, ["v1", "v2", "v3", "v4", "v5"], 4).map((name) => ({ name, emptyDir: {} }));
  if (rng.chance(0.2)) spec.imagePullSecrets = randomNames(rng, ["s1", "s2", "s3"], 2).map((name) => ({ name }));
  // An empty list is no patch here (merge.ts): the templates and Go's JSON leave them out.
  for (const k of Object.keys(spec)) {
    const v = spec[k];
    if (Array.isArray(v) && v.length === 0) delete spec[k];
  }
  return { spec };
}

function main(): void {
  const { values } = parseArgs({ options: { seed: { type: "string" }, count: { type: "string" } } });
  const rng = new Rng(Number(values.seed ?? "20261201"));
  const count = Number(values.count ?? "100");
  const cases = named();
  for (let i = 0; i < count; i++) {
    const patches: Obj[] = [];
    for (let n = rng.int(1, rng.chance(0.3) ? 3 : 2); n > 0; n--)
      patches.push(randomPod(rng, `p${patches.length}.`, true));
    cases.push({ id: `random ${i}`, original: randomPod(rng, "o.", false), patches });
  }
  for (const c of cases) console.log(JSON.stringify(c));
}

main();
