// The interception's istio-iptables arguments from the Pod's traffic.sidecar.istio.io/
// includeOutboundIPRanges, excludeOutboundIPRanges, includeInboundPorts, excludeInboundPorts,
// includeOutboundPorts, excludeOutboundPorts, excludeInterfaces and kubevirtInterfaces and
// istio.io/reroute-virtual-interfaces annotations (the engine's interception.ts), in CEL over
// the admitted `object`:
// - the arguments are the program name, then flag and value pairs in the engine's order
//   (IPTABLES_FLAGS), then the rest (the agent's log level...); an annotated setting's value is
//   the annotation's (reroute-virtual-interfaces over kubevirtInterfaces, which set the same
//   one), a pair the config leaves out (-q, -o, -k, -c) is written only when annotated;
// - excludeInboundPorts: the agent's status port is appended unless the value lists it, and
//   the sidecar's own ports lead ("15090,15021," + the value), as the engine writes them;
// - the domain (domain.ts) admits only the plain forms of each (IPv4 CIDRs, port numbers 0 to
//   65535, interface names, "*" where Istio takes it, comma-separated without spaces, or
//   empty): values the webhook admits as they are, so both inject alike; any other value is the
//   webhook's, which refuses what Istio refuses;
// - the model is checked against the engine's own output for probe Pods with sample values of
//   every annotation (a few Pods carrying them all, each alone when one disagrees) and all at
//   once: an annotation that changes anything else (in CNI mode the engine rewrites some into
//   the Pod's annotations), or not as the model says, is left to the webhook.
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/types.js";
import { A } from "../injection/annotations.js";
import { INBOUND_ALWAYS_EXCLUDED, IPTABLES_COMMAND, IPTABLES_FLAGS } from "../injection/interception.js";
import { literal, str } from "./cel.js";
import { containersOf, injectSample, onlyFieldDiffers, samplePod } from "./sample.js";

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const CIDR = `${OCTET}([.]${OCTET}){3}/([0-9]|[12][0-9]|3[0-2])`;
const PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})";
const INTERFACE = "[a-zA-Z][a-zA-Z0-9_.-]{0,14}";
/**
 * The most CIDRs, ports or interfaces a plain value lists. Go's regexp (the API server's) refuses
 * nested repetitions whose counts multiply past 1000: the interface pattern (14 per item) caps it
 * at 71 (at 128 the API server refuses the policy).
 */
export const MAX_TRAFFIC_ITEMS = 32;
const list = (item: string, star: boolean): string =>
  `^(${star ? "[*]|" : ""}${item}(,${item}){0,${MAX_TRAFFIC_ITEMS - 1}})?$`;

/** The annotations, each with the setting it overrides and the values the policy writes (RE2 and JavaScript alike). */
export const TRAFFIC_ANNOTATIONS = [
  {
    key: A.includeOutboundIPRanges,
    setting: "includeOutboundIPRanges",
    pattern: list(CIDR, true),
    what: 'IPv4 CIDRs, comma-separated, or "*"',
  },
  {
    key: A.excludeOutboundIPRanges,
    setting: "excludeOutboundIPRanges",
    pattern: list(CIDR, false),
    what: "IPv4 CIDRs, comma-separated",
  },
  {
    key: A.includeInboundPorts,
    setting: "includeInboundPorts",
    pattern: list(PORT, true),
    what: 'port numbers, comma-separated, or "*"',
  },
  {
    key: A.excludeInboundPorts,
    setting: "excludeInboundPorts",
    pattern: list(PORT, false),
    what: "port numbers, comma-separated",
  },
  {
    key: A.includeOutboundPorts,
    setting: "includeOutboundPorts",
    pattern: list(PORT, false),
    what: "port numbers, comma-separated",
  },
  {
    key: A.excludeOutboundPorts,
    setting: "excludeOutboundPorts",
    pattern: list(PORT, false),
    what: "port numbers, comma-separated",
  },
  {
    key: A.rerouteVirtualInterfaces,
    setting: "rerouteInterfaces",
    pattern: list(INTERFACE, false),
    what: "interface names, comma-separated",
  },
  {
    key: A.kubevirtInterfaces,
    setting: "rerouteInterfaces",
    pattern: list(INTERFACE, false),
    what: "interface names, comma-separated",
  },
  {
    key: A.excludeInterfaces,
    setting: "excludeInterfaces",
    pattern: list(INTERFACE, false),
    what: "interface names, comma-separated",
  },
] as const satisfies readonly { key: string; setting: keyof typeof IPTABLES_FLAGS; pattern: string; what: string }[];

/** The longest value admitted (checked before the pattern, which CEL charges by the value's length). */
export const MAX_TRAFFIC_VALUE = MAX_TRAFFIC_ITEMS * "255.255.255.255/32,".length;

type Setting = keyof typeof IPTABLES_FLAGS;
const SETTINGS: readonly Setting[] = Object.keys(IPTABLES_FLAGS).filter((k): k is Setting =>
  Object.hasOwn(IPTABLES_FLAGS, k),
);

/** One flag and value pair of the arguments. */
export interface ArgPair {
  readonly flag: string;
  /** The value's index in the arguments without annotations; undefined: the pair is written only when annotated. */
  readonly index: number | undefined;
  /** The annotations that set it, the first present winning (none when the policy honours none). */
  readonly annotations: readonly string[];
}

/** The interception container's arguments as the policy writes them. */
export interface TrafficArgs {
  readonly container: string;
  /** The arguments without annotations. */
  readonly configured: readonly string[];
  /** Where the pairs start and the rest begins, in `configured`. */
  readonly pairsFrom: number;
  readonly restFrom: number;
  readonly pairs: readonly ArgPair[];
  /** The agent's status port excludeInboundPorts gains ("" when none). */
  readonly statusPort: string;
  /** The annotations honoured. */
  readonly annotations: readonly string[];
}

const EXCLUDE_INBOUND = A.excludeInboundPorts;

/** excludeInboundPorts' argument for a plain value: the engine's excludeInboundPort, for values without spaces. */
function excludedInbound(value: string, statusPort: string): string {
  const excluded =
    statusPort === "" || `,${value},`.includes(`,${statusPort},`)
      ? value
      : value === ""
        ? statusPort
        : `${value},${statusPort}`;
  return excluded === "" ? INBOUND_ALWAYS_EXCLUDED : `${INBOUND_ALWAYS_EXCLUDED},${excluded}`;
}

/** The arguments the model gives for `annotations` (the TypeScript twin of argsExpression). */
export function modelArgs(t: TrafficArgs, annotations: Readonly<Record<string, string>>): string[] {
  const out = t.configured.slice(0, t.pairsFrom);
  for (const p of t.pairs) {
    const annotation = p.annotations.find((a) => annotations[a] !== undefined);
    const v = annotation === undefined ? undefined : annotations[annotation];
    if (v === undefined) {
      if (p.index !== undefined) out.push(p.flag, t.configured[p.index] ?? "");
      continue;
    }
    out.push(p.flag, annotation === EXCLUDE_INBOUND ? excludedInbound(v, t.statusPort) : v);
  }
  return [...out, ...t.configured.slice(t.restFrom)];
}

const ANNOTATIONS = "variables.annotations";

/** CEL: excludeInboundPorts' argument for the annotation's value `v` (excludedInbound's twin). */
function excludedInboundCel(v: string, statusPort: string): string {
  const lead = str(INBOUND_ALWAYS_EXCLUDED);
  if (statusPort === "") return `(${v} == "" ? ${lead} : ${lead} + "," + ${v})`;
  const s = str(statusPort);
  return (
    `${str(`${INBOUND_ALWAYS_EXCLUDED},`)} + ` +
    `(("," + ${v} + ",").contains(${str(`,${statusPort},`)}) ? ${v} : ${v} == "" ? ${s} : ${v} + "," + ${s})`
  );
}

/**
 * CEL: the container's arguments; `args` are its configured arguments as the policy writes them
 * otherwise (some may be slots, e.g. the log level's).
 */
export function argsExpression(t: TrafficArgs, args: readonly unknown[]): string {
  const parts = [literal(args.slice(0, t.pairsFrom))];
  for (const p of t.pairs) {
    // The first annotation present wins: the ternaries nest from the last one out.
    let expr = literal(p.index === undefined ? [] : [p.flag, args[p.index]]);
    for (const a of [...p.annotations].reverse()) {
      const value = `${ANNOTATIONS}[${str(a)}]`;
      const written = a === EXCLUDE_INBOUND ? excludedInboundCel(value, t.statusPort) : value;
      expr = `(${str(a)} in ${ANNOTATIONS} ? [dyn(${str(p.flag)}), dyn(${written})] : ${expr})`;
    }
    parts.push(expr);
  }
  parts.push(literal(args.slice(t.restFrom)));
  return parts.join(" + ");
}

/** The sample Pod the annotations are checked on: one container with a port. */
const TRAFFIC_POD = samplePod({ ports: [{ containerPort: 8080 }] });

/** The sample values each annotation is checked with (all plain), the status port among them. */
function samples(key: string, statusPort: string): string[] {
  const ports = ["8080,9090", "", "0", statusPort === "" ? "1" : `1,${statusPort},2`, statusPort || "2"];
  if (key === A.includeOutboundIPRanges) return ["10.0.0.0/8,192.168.1.0/24", "*", ""];
  if (key === A.excludeOutboundIPRanges) return ["169.254.169.254/32", "10.96.0.1/32,10.96.0.10/32", ""];
  if (key === A.rerouteVirtualInterfaces || key === A.kubevirtInterfaces || key === A.excludeInterfaces)
    return ["net1", "eth1,net-2.x_y", ""];
  return key === A.includeInboundPorts ? [...ports, "*"] : ports;
}

/**
 * The interception container's arguments and the traffic annotations the policy honours under
 * `config`, or undefined when it honours none (no interception container, arguments not in the
 * engine's form, or no annotation the model follows).
 */
export function trafficArgs(served: Config, nativeSidecarsSupported: boolean): TrafficArgs | undefined {
  // On a copy: the engine memoises its parts per config object, a bounded few per config, and
  // the served config's are for real Pods' values, not these samples.
  const config: Config = { ...served };
  const plain = injectSample({}, config, nativeSidecarsSupported, TRAFFIC_POD);
  const candidates = containersOf(plain).filter((c) => c.args?.[0] === IPTABLES_COMMAND);
  const [c] = candidates;
  if (candidates.length !== 1 || c === undefined) return undefined;
  const args = c.args ?? [];
  const flags = new Map<string, number>();
  let i = 1;
  for (; i + 1 < args.length && /^-[a-z]$/.test(args[i] ?? ""); i += 2) flags.set(args[i] ?? "", i + 1);
  const order = [...flags.keys()];
  if (
    !isDeepStrictEqual(
      order,
      SETTINGS.map((s) => IPTABLES_FLAGS[s]).filter((f) => flags.has(f)),
    )
  )
    return undefined;
  const statusPort = config.proxy.statusPort === 0 ? "" : String(config.proxy.statusPort);
  const model = (honoured: readonly string[]): TrafficArgs => ({
    container: c.name,
    configured: args,
    pairsFrom: 1,
    restFrom: i,
    pairs: SETTINGS.flatMap((s) => {
      const flag = IPTABLES_FLAGS[s];
      const annotations = TRAFFIC_ANNOTATIONS.filter((a) => a.setting === s && honoured.includes(a.key)).map(
        (a) => a.key,
      );
      const index = flags.get(flag);
      return index === undefined && annotations.length === 0 ? [] : [{ flag, index, annotations }];
    }),
    statusPort,
    annotations: honoured,
  });
  const keys = TRAFFIC_ANNOTATIONS.map((a) => a.key);
  const check = (m: TrafficArgs, annotations: Record<string, string>): boolean =>
    onlyFieldDiffers(
      injectSample(annotations, config, nativeSidecarsSupported, TRAFFIC_POD),
      plain,
      annotations,
      m.container,
      "args",
      modelArgs(m, annotations),
    );
  // First all keys in a few Pods (each Pod sets each flag once, each key's samples in turn);
  // when one disagrees, each key alone, to find which.
  const byLayer = TRAFFIC_ANNOTATIONS.map(
    (a, n) => TRAFFIC_ANNOTATIONS.slice(0, n).filter((b) => b.setting === a.setting).length,
  );
  const rounds = [...new Set(byLayer)].flatMap((layer) => {
    const inLayer = keys.filter((_, n) => byLayer[n] === layer);
    const most = Math.max(...inLayer.map((k) => samples(k, statusPort).length));
    return Array.from({ length: most }, (_, j) =>
      Object.fromEntries(
        inLayer.flatMap((k) => {
          const v = samples(k, statusPort)[j];
          return v === undefined ? [] : [[k, v]];
        }),
      ),
    );
  });
  const honoured = rounds.every((r) => check(model(keys), r))
    ? keys
    : keys.filter((key) => samples(key, statusPort).every((v) => check(model([key]), { [key]: v })));
  if (honoured.length === 0) return undefined;
  const all = model(honoured);
  // All at once, neighbours with different samples (so the one of two setting the same flag that wins shows).
  const together = Object.fromEntries(
    honoured.map((k, i) => {
      const xs = samples(k, statusPort);
      return [k, xs[i % xs.length] ?? ""];
    }),
  );
  return onlyFieldDiffers(
    injectSample(together, config, nativeSidecarsSupported, TRAFFIC_POD),
    plain,
    together,
    all.container,
    "args",
    modelArgs(all, together),
  )
    ? all
    : undefined;
}
