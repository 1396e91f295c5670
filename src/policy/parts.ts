// What the policy adds to a Pod, taken from the engine itself rather than restated: the
// engine injects two probe Pods that differ in everything a covered Pod may differ in (names,
// containers, ports, labels, owner, namespace, the user's init containers, volumes and pull
// secrets), and what it added to each is read back:
// - the labels and annotations it set, the containers it put before or after the user's in
//   each list, the volumes and pull secrets it appended;
// - the values that depend on the Pod are known by name (SLOT_ENV, SLOT_LABELS,
//   SLOT_ANNOTATIONS) and left as slots, for the policy to compute in CEL;
// - everything else must be the same for both probes, and nothing else in the Pod may have
//   changed: otherwise the config makes the sidecar depend on the Pod in a way the policy does
//   not compute, and rendering fails naming where (PolicyRenderError).
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import type { Container, EnvVar, Pod } from "../kube/types.js";
import { A, CONTAINER, L } from "../injection/annotations.js";
import { inject } from "../injection/inject.js";
import { PolicyRenderError } from "./errors.js";

/** The proxy env whose values come from the Pod. */
export const SLOT_ENV = [
  "ISTIO_META_POD_PORTS",
  "ISTIO_META_APP_CONTAINERS",
  "ISTIO_META_WORKLOAD_NAME",
  "ISTIO_META_OWNER",
] as const;
export type SlotEnv = (typeof SLOT_ENV)[number];

/** The labels whose values come from the Pod. */
export const SLOT_LABELS = [L.canonicalName, L.canonicalRevision] as const;
/** The annotations written only when the Pod has none of its own, with its first container's name. */
export const SLOT_ANNOTATIONS = [A.defaultLogsContainer, A.defaultContainer] as const;

/** A list the injection adds to: the items before the user's, and after them. */
export interface ListParts<T> {
  readonly before: readonly T[];
  readonly after: readonly T[];
}

/** A container with its Pod-dependent env values replaced by the env's name (see SLOT_ENV). */
export interface PolicyParts {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly initContainers: ListParts<Container>;
  readonly containers: ListParts<Container>;
  readonly volumes: ListParts<unknown>;
  readonly imagePullSecrets: ListParts<unknown>;
  /** Whether the sidecar runs as a native sidecar (in initContainers). */
  readonly native: boolean;
}

const SLOT_MARK = "\u0000slot-env:";

/** The env value a slot stands for in PolicyParts' containers. */
export function slotEnvName(value: string | undefined): SlotEnv | undefined {
  if (value === undefined || !value.startsWith(SLOT_MARK)) return undefined;
  const name = value.slice(SLOT_MARK.length);
  return SLOT_ENV.find((n) => n === name);
}

interface Probe {
  readonly pod: Pod;
  readonly namespace: string;
}

const PROBES: readonly Probe[] = [
  {
    namespace: "probe-zero",
    pod: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "zero", namespace: "probe-zero", labels: { [L.inject]: "true" } },
      spec: {
        initContainers: [{ name: "setup-zero", image: "example.com/setup:0" }],
        containers: [{ name: "app-zero", image: "example.com/app:0" }],
        volumes: [{ name: "data-zero", emptyDir: {} }],
        imagePullSecrets: [{ name: "pull-zero" }],
      },
    },
  },
  {
    namespace: "probe-one",
    pod: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: "one-7d9f8c-",
        namespace: "probe-one",
        labels: { app: "one", version: "v1", "pod-template-hash": "7d9f8c", tier: "web", [L.inject]: "true" },
        annotations: { "example.com/note": "one" },
        ownerReferences: [
          { apiVersion: "apps/v1", kind: "ReplicaSet", name: "one-7d9f8c", uid: "u1", controller: true },
        ],
      },
      spec: {
        initContainers: [
          { name: "setup-one", image: "example.com/setup:1" },
          { name: "setup-two", image: "example.com/setup:2" },
        ],
        containers: [
          {
            name: "app-one",
            image: "example.com/app:1",
            ports: [
              { name: "http", containerPort: 8080, protocol: "TCP" },
              { containerPort: 9090, protocol: "UDP", hostPort: 9090 },
            ],
          },
          { name: "app-two", image: "example.com/app:2", ports: [{ name: "grpc", containerPort: 7070 }] },
        ],
        volumes: [
          { name: "data-one", emptyDir: {} },
          { name: "cache-one", emptyDir: {} },
        ],
        imagePullSecrets: [{ name: "pull-one" }],
        serviceAccountName: "one",
        nodeSelector: { disk: "ssd" },
      },
    },
  },
];

type Named = { readonly name?: unknown };

function nameOf(x: unknown): string | undefined {
  const n = typeof x === "object" && x !== null ? (x as Named).name : undefined;
  return typeof n === "string" ? n : undefined;
}

/** The injected list split around the user's items, which must be there unchanged and in order. */
function split<T>(what: string, injected: readonly T[] | undefined, user: readonly T[] | undefined): ListParts<T> {
  const all = injected ?? [];
  const mine = user ?? [];
  const userNames = new Set(mine.map(nameOf));
  const at = all.findIndex((x) => userNames.has(nameOf(x)));
  if (mine.length === 0) return { before: [], after: all };
  if (at < 0) throw new PolicyRenderError(`the injection drops the Pod's ${what}`);
  const middle = all.slice(at, at + mine.length);
  if (!isDeepStrictEqual(middle, mine))
    throw new PolicyRenderError(`the injection changes or interleaves the Pod's ${what}`);
  return { before: all.slice(0, at), after: all.slice(at + mine.length) };
}

function masked(c: Container): Container {
  if (c.name !== CONTAINER.proxy) return c;
  const env = (c.env ?? []).map((e): EnvVar => {
    const name = SLOT_ENV.find((n) => n === e.name);
    return name === undefined ? e : { name: e.name, value: `${SLOT_MARK}${name}` };
  });
  return { ...c, env };
}

function maskedList(l: ListParts<Container>): ListParts<Container> {
  return { before: l.before.map(masked), after: l.after.map(masked) };
}

/** The map's entries that `next` adds or changes over `prev`, without the slot keys. */
function added(
  what: string,
  prev: Readonly<Record<string, string>> | undefined,
  next: Readonly<Record<string, string>> | undefined,
  slots: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(next ?? {})) {
    if (slots.includes(k)) continue;
    if (prev && Object.hasOwn(prev, k) && prev[k] === v) continue;
    out[k] = v;
  }
  for (const k of Object.keys(prev ?? {})) {
    if (!next || !Object.hasOwn(next, k)) throw new PolicyRenderError(`the injection removes the ${what} ${k}`);
  }
  return out;
}

function without(o: object | undefined, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

function partsOf(probe: Probe, config: Config, nativeSidecarsSupported: boolean): PolicyParts {
  const result = inject(probe.pod, { namespace: probe.namespace, nativeSidecarsSupported }, config);
  // The probes opt in by label, which every config honours (policy and selectors come after it).
  if (!result.decision.inject) throw new PolicyRenderError("the config does not inject a Pod labelled to be injected");
  const out = result.pod;
  const meta = probe.pod.metadata ?? {};
  const outMeta = out.metadata ?? {};
  const metaKeys = ["labels", "annotations"];
  if (!isDeepStrictEqual(without(meta, metaKeys), without(outMeta, metaKeys)))
    throw new PolicyRenderError("the injection changes the Pod's metadata beyond labels and annotations");
  const specKeys = ["initContainers", "containers", "volumes", "imagePullSecrets"];
  if (!isDeepStrictEqual(without(probe.pod.spec, specKeys), without(out.spec, specKeys)))
    throw new PolicyRenderError("the injection changes the Pod's spec beyond its containers, volumes and pull secrets");
  const spec = out.spec;
  const initContainers = maskedList(split("init containers", spec?.initContainers, probe.pod.spec?.initContainers));
  const containers = maskedList(split("containers", spec?.containers, probe.pod.spec?.containers));
  return {
    labels: added("label", meta.labels, outMeta.labels, SLOT_LABELS),
    annotations: added("annotation", meta.annotations, outMeta.annotations, SLOT_ANNOTATIONS),
    initContainers,
    containers,
    volumes: split("volumes", spec?.volumes, probe.pod.spec?.volumes),
    imagePullSecrets: split("image pull secrets", spec?.imagePullSecrets, probe.pod.spec?.imagePullSecrets),
    native: [...initContainers.before, ...initContainers.after].some((c) => c.name === CONTAINER.proxy),
  };
}

/**
 * What the injection adds to every Pod the policy covers, under `config`, with native sidecars
 * decided as `nativeSidecarsSupported` says for `nativeSidecars: auto`.
 */
export function policyParts(config: Config, nativeSidecarsSupported: boolean): PolicyParts {
  const [first, ...rest] = PROBES.map((p) => partsOf(p, config, nativeSidecarsSupported));
  if (!first) throw new PolicyRenderError("no probe Pods");
  for (const other of rest) {
    for (const key of Object.keys(first) as (keyof PolicyParts)[]) {
      if (!isDeepStrictEqual(first[key], other[key]))
        throw new PolicyRenderError(
          `what the injection adds to a Pod's ${key} depends on the Pod beyond what the policy computes`,
        );
    }
  }
  const proxies = [
    ...first.initContainers.before,
    ...first.initContainers.after,
    ...first.containers.before,
    ...first.containers.after,
  ].filter((c) => c.name === CONTAINER.proxy);
  if (proxies.length !== 1)
    throw new PolicyRenderError(`the injection adds ${proxies.length} ${CONTAINER.proxy} containers, not one`);
  const env = new Set((proxies[0]?.env ?? []).map((e) => e.name));
  for (const name of SLOT_ENV) {
    if (!env.has(name)) throw new PolicyRenderError(`the ${CONTAINER.proxy} container has no ${name}`);
  }
  return first;
}
