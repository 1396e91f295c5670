// The interception's arguments from the Pod's traffic annotations, without a cluster: which
// annotations the engine lets the policy follow (checked against its output), the arguments the
// model gives, which values the domain admits (never one the webhook refuses), and where the
// rendered policy computes them. That the API server stores what the webhook stores is the e2e
// suite's (policy-proof).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { validateAnnotations } from "../../../src/injection/validate.js";
import { outsideDomain } from "../../../src/policy/domain.js";
import { renderPolicy } from "../../../src/policy/render.js";
import { MAX_TRAFFIC_ITEMS, modelArgs, TRAFFIC_ANNOTATIONS, trafficArgs } from "../../../src/policy/traffic.js";
import { annotatedPod, OPTIONS } from "./support.js";

const T = "traffic.sidecar.istio.io/";

/** The engine's istio-init arguments for a Pod carrying `annotations`. */
function engineArgs(annotations: Record<string, string>): string[] | undefined {
  const base = annotatedPod(annotations);
  const pod = { ...base, metadata: { ...base.metadata, labels: { "sidecar.istio.io/inject": "true" } } };
  const out = inject(pod, { namespace: "demo", nativeSidecarsSupported: false }, DEFAULT_CONFIG).pod;
  return out.spec?.initContainers?.find((c) => c.name === "istio-init")?.args;
}

const INSIDE: Record<string, string[]> = {
  includeOutboundIPRanges: ["*", "", "10.0.0.0/8", "10.96.0.0/12,172.16.0.0/12", "0.0.0.0/0", "255.255.255.255/32"],
  excludeOutboundIPRanges: ["", "169.254.169.254/32", "10.96.0.1/32,10.96.0.10/32"],
  includeInboundPorts: ["*", "", "80,8080", "0", "65535", "0080"],
  excludeInboundPorts: ["", "8080", "15020", "9090,15020", "65530"],
  includeOutboundPorts: ["", "80,443"],
  excludeOutboundPorts: ["", "5432", "3306,6379"],
  excludeInterfaces: ["", "eth1", "net1,net2", "a23456789012345"],
  kubevirtInterfaces: ["net1"],
};

const OUTSIDE: Record<string, string[]> = {
  includeOutboundIPRanges: [
    "10.0.0.0/33",
    "300.0.0.0/8",
    "10.0.0.1",
    "a.b.c.d/8",
    "fd00::/8",
    "01.2.3.4/8",
    "10.0.0.0/08",
  ],
  excludeOutboundIPRanges: ["*", "10.0.0.0/8,", " 10.0.0.0/8", "::1/128"],
  includeInboundPorts: [" 80 ", "65536", "0x50", "80;8080", "http", "00080", "80,,81"],
  excludeInboundPorts: ["*", "99999", "80, 81", ","],
  includeOutboundPorts: ["*", "443 "],
  excludeOutboundPorts: ["abc", "70000", "-1"],
  excludeInterfaces: ["1eth", "eth1, net1", "a234567890123456", "eth:1", ","],
  kubevirtInterfaces: [" net1"],
};

describe("the interception's arguments from the Pod's traffic annotations", () => {
  test("under the default config, all nine are followed, in istio-init's arguments", () => {
    const t = trafficArgs(DEFAULT_CONFIG, false);
    assert.ok(t);
    assert.equal(t.container, "istio-init");
    assert.deepEqual(
      t.annotations,
      TRAFFIC_ANNOTATIONS.map((a) => a.key),
    );
    assert.deepEqual(trafficArgs(DEFAULT_CONFIG, true)?.annotations, t.annotations);
  });

  test("the model writes what the engine writes: values replaced, -q and -o added, the status port appended", () => {
    const t = trafficArgs(DEFAULT_CONFIG, false);
    assert.ok(t);
    const cases: Record<string, string>[] = [
      { [`${T}excludeInboundPorts`]: "8080" },
      { [`${T}excludeInboundPorts`]: "15020,8080" },
      { [`${T}excludeInboundPorts`]: "" },
      { [`${T}includeOutboundPorts`]: "443", [`${T}excludeOutboundPorts`]: "5432" },
      { [`${T}excludeOutboundPorts`]: "" },
      { [`${T}includeOutboundIPRanges`]: "10.0.0.0/8", [`${T}includeInboundPorts`]: "80,8080" },
      { [`${T}kubevirtInterfaces`]: "net1", [`${T}excludeInterfaces`]: "eth1" },
      { [`${T}kubevirtInterfaces`]: "net1", "istio.io/reroute-virtual-interfaces": "net2,net3" },
      { "istio.io/reroute-virtual-interfaces": "" },
    ];
    for (const a of cases) assert.deepEqual(modelArgs(t, a), engineArgs(a), JSON.stringify(a));
    assert.deepEqual(modelArgs(t, { [`${T}excludeInboundPorts`]: "8080", [`${T}excludeOutboundPorts`]: "5432" }), [
      "istio-iptables",
      ...["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*"],
      ...["-d", "15090,15021,8080,15020", "-o", "5432", "--log_output_level=default:info"],
    ]);
  });

  test("plain values are inside, and the webhook admits each; others are outside, naming them", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    for (const [name, values] of Object.entries(INSIDE)) {
      for (const v of values) {
        const a = { [`${T}${name}`]: v };
        assert.equal(outsideDomain(rules, annotatedPod(a)), undefined, `${name}=${v}`);
        assert.doesNotThrow(() => validateAnnotations(a), `${name}=${v}`);
      }
    }
    for (const [name, values] of Object.entries(OUTSIDE)) {
      for (const v of values) {
        const why = outsideDomain(rules, annotatedPod({ [`${T}${name}`]: v })) ?? "";
        const what = /(CIDRs|port numbers|interface names)/;
        assert.match(why, new RegExp(`annotation "${T}${name}" has the value .*${what.source}`), `${name}=${v}`);
      }
    }
  });

  test("at most MAX_TRAFFIC_ITEMS items", () => {
    const { rules } = renderPolicy(DEFAULT_CONFIG, OPTIONS);
    const ranges = (n: number): string => Array.from({ length: n }, () => "255.255.255.255/32").join(",");
    const ports = (n: number): string => Array.from({ length: n }, () => "65535").join(",");
    const at = (k: string, v: string): string | undefined => outsideDomain(rules, annotatedPod({ [`${T}${k}`]: v }));
    assert.equal(at("excludeOutboundIPRanges", ranges(MAX_TRAFFIC_ITEMS)), undefined);
    assert.match(at("excludeOutboundIPRanges", ranges(MAX_TRAFFIC_ITEMS + 1)) ?? "", /CIDRs/);
    assert.equal(at("excludeOutboundPorts", ports(MAX_TRAFFIC_ITEMS)), undefined);
    assert.match(at("excludeOutboundPorts", ports(MAX_TRAFFIC_ITEMS + 1)) ?? "", /port numbers/);
  });

  test("in CNI mode, only those the engine does not rewrite into the Pod's annotations are followed", () => {
    const cni = trafficArgs(parseConfig("cni: true\n"), false);
    assert.deepEqual(cni?.container, "istio-validation");
    assert.deepEqual(cni?.annotations, [
      `${T}excludeOutboundIPRanges`,
      `${T}includeOutboundPorts`,
      `${T}excludeOutboundPorts`,
      "istio.io/reroute-virtual-interfaces",
      `${T}kubevirtInterfaces`,
      `${T}excludeInterfaces`,
    ]);
    const { rules } = renderPolicy(parseConfig("cni: true\n"), OPTIONS);
    assert.match(
      outsideDomain(rules, annotatedPod({ [`${T}includeInboundPorts`]: "80" })) ?? "",
      /only the webhook reads/,
    );
  });

  test("with interception NONE there are no arguments, and the annotations stay the webhook's", () => {
    const config = parseConfig("interception:\n  mode: NONE\n");
    assert.equal(trafficArgs(config, false), undefined);
    const { rules } = renderPolicy(config, OPTIONS);
    assert.match(outsideDomain(rules, annotatedPod({ [`${T}excludeOutboundPorts`]: "1" })) ?? "", /only the webhook/);
  });

  test("the rendered policy computes istio-init's arguments, the config's when the Pod names none", () => {
    const spec = renderPolicy(DEFAULT_CONFIG, OPTIONS).policy.spec as {
      variables: { name: string; expression: string }[];
      matchConditions: { name: string; expression: string }[];
    };
    const init = spec.variables.find((v) => v.name === "injectedInitContainers")?.expression ?? "";
    assert.match(
      init,
      /\("traffic\.sidecar\.istio\.io\/excludeOutboundPorts" in variables\.annotations \? \[dyn\("-o"\)/,
    );
    assert.match(init, /: \[dyn\("-i"\), dyn\("\*"\)\]\)/);
    assert.match(init, /contains\(",15020,"\)/);
    const reroute = 'variables.annotations["istio.io/reroute-virtual-interfaces"])] : ';
    assert.ok(init.includes(`${reroute}("traffic.sidecar.istio.io/kubevirtInterfaces" in variables.annotations ?`));
    const annotations = spec.matchConditions.find((c) => c.name === "policy-domain-annotations")?.expression ?? "";
    assert.match(
      annotations,
      /k == "traffic\.sidecar\.istio\.io\/includeInboundPorts" && size\(object\.metadata\.annotations\[k\]\) <= \d+ && /,
    );
  });
});
