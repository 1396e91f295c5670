// Istio's own injector configuration read into ours, with everything we cannot honour said.
//
// Input: the two ConfigMaps Istio's chart (istio-control/istio-discovery) renders, as text —
// `istio-sidecar-injector[-REV]` (`values`: JSON, the chart's values picked for injection;
// `config`: YAML, policy, selectors, injectedAnnotations, defaultTemplates, templates) and
// `istio[-REV]` (`mesh`: YAML MeshConfig). Either may be missing; what it would have said keeps
// Istio's default, which is ours.
//
// Output: a config document (src/config/types.ts keys, only those that differ from our
// defaults, so the file reads as "what this istiod changes") and findings. A finding names its
// source by path (`istio-sidecar-injector.values.global.proxy.lifecycle`), says what is wrong
// and what to do instead. Severities:
// - `unsupported`: the setting changes what Istio injects and we cannot do the same (a custom
//   or modified injection template compared with the pinned commit's, by SHA-256; a value our
//   engine has no counterpart for; a value that is not Istio's; text that does not parse);
//   `config import` exits 1 on one unless told to go on.
// - `ignored`: the setting is Istio's but does not change a sidecar-injected Pod (istiod's own
//   Deployment, gateways' Deployments, the webhook registration, which our chart owns); said
//   only when it differs from the chart's default, so a default install imports silently.
//
// Rules, in the order applied:
// - values: each leaf path is handled by HANDLERS when it has a counterpart; else compared
//   with the chart's default (pinned.ts): equal is nothing; a path the injection templates read
//   (TEMPLATE_VALUES) is unsupported; a path the chart knows but the templates do not read is
//   ignored; a path the chart does not have is unsupported (unknown).
// - config: policy, selectors, injectedAnnotations are copied (checked for shape);
//   defaultTemplates must be [sidecar]; each template's text must be the pinned one; the
//   `template` key (the chart's version-mismatch guard) is skipped; other keys are unknown.
// - mesh: trustDomain and enablePrometheusMerge have counterparts; defaultConfig is the mesh's
//   ProxyConfig: its discoveryAddress is `discoveryAddress` (with the addresses), every other
//   field goes to `proxyConfig` as written (Istio writes the merged ProxyConfig into every Pod's
//   PROXY_CONFIG; the engine merges a Pod's proxy.istio.io/config over it as istiod does); a
//   field ProxyConfig does not have is dropped by istiod, so it is reported (ignored) and left
//   out; a defaultConfig istiod refuses is unsupported. Other MeshConfig fields do not reach
//   the Pod (proxyListenPort and proxyInboundListenPort only at their defaults) and are not
//   reported.
//
// Pure: no I/O, no clock. Every text is read within bounds (yaml-limits.ts); a user value in a
// message goes through quote().
import { createHash } from "node:crypto";
import { DEFAULT_CONFIG } from "../config/defaults.js";
import {
  knownProxyConfigFields,
  meshProxyConfigProblems,
  unknownProxyConfigFields,
} from "../injection/proxy-config.js";
import { quote } from "../injection/quote.js";
import { canonicalResources } from "../injection/quantity.js";
import { parseYamlDocuments, YamlLimitError, YamlSyntaxError, type YamlLimits } from "../injection/yaml-limits.js";
import { PINNED_TEMPLATES, PINNED_VALUES } from "./pinned.js";

export const FINDING_SEVERITIES = ["unsupported", "ignored"] as const;
export type FindingSeverity = (typeof FINDING_SEVERITIES)[number];

export interface Finding {
  readonly severity: FindingSeverity;
  /** Where, e.g. `istio-sidecar-injector.values.global.proxy.lifecycle`. */
  readonly path: string;
  /** What is wrong, with the value quoted. */
  readonly problem: string;
  /** What to do instead. */
  readonly instead: string;
}

/** The ConfigMaps' data, as text; a key left out is a key the ConfigMap does not have. */
export interface IstioConfigMaps {
  readonly injector?: { readonly name: string; readonly values?: string; readonly config?: string };
  readonly mesh?: { readonly name: string; readonly mesh?: string };
}

/** A config document: keys of src/config/types.ts, nested as in the YAML file. */
export type ConfigDocument = { [key: string]: unknown };

export interface ImportResult {
  readonly config: ConfigDocument;
  readonly findings: readonly Finding[];
}

/**
 * Each ConfigMap key is Istio's own, a few KiB (the templates: some 100 KiB in all); far larger
 * is not a chart's output. Depth and nodes hold a hostile text to a bounded parse.
 */
export const ISTIO_CONFIG_LIMITS: YamlLimits = {
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  maxNodes: 50_000,
  maxAliases: 100,
  maxDocuments: 1,
};

/** How many findings one import lists; past it, one finding counts the rest. */
export const MAX_FINDINGS = 200;

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value in a message: scalars as JSON, quoted and bounded; containers by their kind. */
function shown(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return v.length === 0 ? "[]" : `a list of ${v.length}`;
  if (isPlain(v)) return Object.keys(v).length === 0 ? "{}" : "a map";
  if (typeof v === "string") return quote(v);
  return quote(JSON.stringify(v) ?? String(v));
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (isPlain(a) && isPlain(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]));
  }
  return false;
}

function at(root: unknown, path: readonly string[]): unknown {
  let v = root;
  for (const k of path) {
    if (!isPlain(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/** Sets an own property, even one named __proto__. */
function put(m: Plain, k: string, v: unknown): void {
  Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Sets a key of the config document, creating the maps above it; own properties only. */
function setPath(doc: ConfigDocument, path: string, value: unknown): void {
  const keys = path.split(".");
  let m: Plain = doc;
  for (const k of keys.slice(0, -1)) {
    const next = Object.hasOwn(m, k) ? m[k] : undefined;
    if (isPlain(next)) m = next;
    else {
      const made: Plain = {};
      put(m, k, made);
      m = made;
    }
  }
  put(m, keys[keys.length - 1] ?? "", value);
}

class Findings {
  readonly list: Finding[] = [];
  private extra = 0;

  add(severity: FindingSeverity, path: string, problem: string, instead: string): void {
    if (this.list.length >= MAX_FINDINGS) {
      this.extra += 1;
      return;
    }
    this.list.push({ severity, path, problem, instead });
  }

  done(): readonly Finding[] {
    if (this.extra === 0) return this.list;
    const unsupported = this.list.some((f) => f.severity === "unsupported");
    return [
      ...this.list,
      {
        severity: unsupported ? "unsupported" : "ignored",
        path: "(more)",
        problem: `${this.extra} more findings not listed`,
        instead: "fix the ones listed and import again",
      },
    ];
  }
}

/** One text of a ConfigMap parsed within bounds; a finding and undefined when it cannot be. */
function parseText(text: string, path: string, what: string, findings: Findings): unknown {
  try {
    const docs = parseYamlDocuments(text, ISTIO_CONFIG_LIMITS);
    return docs[0] ?? {};
  } catch (e) {
    const why = e instanceof YamlLimitError || e instanceof YamlSyntaxError ? e.message : "cannot be read";
    findings.add(
      "unsupported",
      path,
      `is not valid ${what}: ${why}`,
      `give the ConfigMap as istiod reads it (kubectl get configmap -o yaml, or helm template)`,
    );
    return undefined;
  }
}

// --- values ---------------------------------------------------------------------------------

/** Everything the import has read so far, for the rules that combine several values. */
interface State {
  readonly doc: ConfigDocument;
  readonly findings: Findings;
  readonly values: Plain;
  readonly mesh: Plain;
  readonly injectorName: string;
  readonly meshName: string;
}

type Handler = (v: unknown, path: string, s: State) => void;

/** The values the injection templates read (a value set to other than its default matters). */
const TEMPLATE_VALUES: readonly string[] = [
  "gateways.securityContext",
  "gateways.seccompProfile",
  "global.caAddress",
  "global.caName",
  "global.imagePullPolicy",
  "global.imagePullSecrets",
  "global.istioNamespace",
  "global.logAsJson",
  "global.logging.level",
  "global.meshID",
  "global.mountMtlsCerts",
  "global.multiCluster.clusterName",
  "global.nativeNftables",
  "global.network",
  "global.pilotCertProvider",
  "global.proxy",
  "global.proxy_init",
  "global.sds.token.aud",
  "global.sts.servicePort",
  "global.trustBundleName",
  "global.trustDomain",
  "global.hub",
  "global.tag",
  "global.variant",
  "pilot.cni",
  "pilot.env",
  "pilot.crlConfigMapName",
  "revision",
  "sidecarInjectorWebhook.rewriteAppHTTPProbe",
  "sidecarInjectorWebhook.templates",
  "sidecarInjectorWebhook.defaultTemplates",
];

/** Values that only shape the webhook registration, which our chart renders itself. */
const WEBHOOK_VALUES: readonly string[] = [
  "sidecarInjectorWebhook.enableNamespacesByDefault",
  "sidecarInjectorWebhook.reinvocationPolicy",
];

function underAny(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => path === p || path.startsWith(`${p}.`));
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

function wrongType(s: State, path: string, v: unknown, want: string): void {
  s.findings.add(
    "unsupported",
    path,
    `must be ${want}, got ${shown(v)}`,
    "correct the value in Istio's values, or write this key of our config by hand",
  );
}

/** A value copied to a key of ours when it is of the type we take. */
function copy(ours: string, want: "string" | "boolean" | "integer"): Handler {
  return (v, path, s) => {
    if (want === "string") {
      const t = str(v);
      if (t === undefined) return wrongType(s, path, v, "a string");
      setPath(s.doc, ours, t);
    } else if (want === "boolean") {
      if (typeof v !== "boolean") return wrongType(s, path, v, "true or false");
      setPath(s.doc, ours, v);
    } else {
      if (typeof v !== "number" || !Number.isInteger(v)) return wrongType(s, path, v, "a whole number");
      setPath(s.doc, ours, v);
    }
  };
}

/** A value read by another rule (images, addresses), or one with nothing to do. */
const handledElsewhere: Handler = () => undefined;

/** A value whose only honoured setting is its default: anything else is unsupported. */
function onlyDefault(expected: unknown, instead: string): Handler {
  return (v, path, s) => {
    if (!sameValue(v, expected))
      s.findings.add(
        "unsupported",
        path,
        `is ${shown(v)}; this injector only does what ${shown(expected)} does`,
        instead,
      );
  };
}

function resourcesHandler(v: unknown, path: string, s: State): void {
  if (!isPlain(v)) return wrongType(s, path, v, "a map of requests and limits");
  const out: Plain = {};
  for (const [kind, list] of Object.entries(v)) {
    if (list === null || list === undefined) continue;
    if (kind !== "requests" && kind !== "limits") {
      s.findings.add(
        "unsupported",
        `${path}.${kind}`,
        "is not requests or limits",
        "leave it out: Kubernetes has only requests and limits here",
      );
      continue;
    }
    if (!isPlain(list)) {
      wrongType(s, `${path}.${kind}`, list, "a map of resource quantities");
      continue;
    }
    const q: Plain = {};
    for (const [name, amount] of Object.entries(list)) {
      const t = str(amount);
      if (name !== "cpu" && name !== "memory" && name !== "ephemeral-storage") {
        s.findings.add(
          "unsupported",
          `${path}.${kind}.${name}`,
          "is a resource this injector does not set on the proxy",
          "request it per Pod, or drop it",
        );
      } else if (t === undefined) {
        wrongType(s, `${path}.${kind}.${name}`, amount, "a quantity");
      } else {
        put(q, name, t);
      }
    }
    out[kind] = q;
  }
  setPath(s.doc, "proxy.resources", out);
}

function pullSecretsHandler(v: unknown, path: string, s: State): void {
  if (!Array.isArray(v)) return wrongType(s, path, v, "a list of Secret names");
  const names: string[] = [];
  for (const [i, item] of v.entries()) {
    // The chart takes names, or {name: ...} as a Pod does.
    const name =
      typeof item === "string" ? item : isPlain(item) && typeof item.name === "string" ? item.name : undefined;
    if (name === undefined) wrongType(s, `${path}[${i}]`, item, "a Secret name");
    else names.push(name);
  }
  if (names.length > 0) setPath(s.doc, "imagePullSecrets", names);
}

function cniHandler(v: unknown, path: string, s: State): void {
  if (typeof v !== "boolean") return wrongType(s, path, v, "true or false");
  if (v) setPath(s.doc, "cni", true);
}

const UNSUPPORTED_PROXY =
  "our config has no counterpart: set it with a Pod annotation where Istio has one, or leave it out (Pods injected here will not have it)";

/** Handlers for values with a counterpart (or a rule of their own), by path. */
const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ["global.hub", handledElsewhere],
  ["global.tag", handledElsewhere],
  ["global.variant", handledElsewhere],
  // Read by the chart's mesh ConfigMap only (defaultConfig.image.imageType), read there.
  ["global.proxy.variant", handledElsewhere],
  ["global.proxy.image", handledElsewhere],
  ["global.proxy_init.image", handledElsewhere],
  ["global.caAddress", handledElsewhere],
  ["global.istioNamespace", handledElsewhere],
  ["global.meshID", handledElsewhere],
  ["global.trustDomain", handledElsewhere],
  ["revision", handledElsewhere],
  ["global.imagePullPolicy", copy("proxy.imagePullPolicy", "string")],
  ["global.imagePullSecrets", pullSecretsHandler],
  ["global.logging.level", copy("proxy.agentLogLevel", "string")],
  ["global.multiCluster.clusterName", (v, p, s) => (str(v) === "" ? undefined : copy("clusterId", "string")(v, p, s))],
  ["global.network", copy("network", "string")],
  ["global.proxy.autoInject", handledElsewhere], // the chart renders it as config.policy
  ["global.proxy.clusterDomain", copy("clusterDomain", "string")],
  ["global.proxy.componentLogLevel", copy("proxy.componentLogLevel", "string")],
  ["global.proxy.logLevel", copy("proxy.logLevel", "string")],
  ["global.proxy.excludeIPRanges", copy("interception.excludeOutboundIPRanges", "string")],
  ["global.proxy.includeIPRanges", copy("interception.includeOutboundIPRanges", "string")],
  ["global.proxy.excludeInboundPorts", copy("interception.excludeInboundPorts", "string")],
  ["global.proxy.includeInboundPorts", copy("interception.includeInboundPorts", "string")],
  ["global.proxy.excludeOutboundPorts", copy("interception.excludeOutboundPorts", "string")],
  ["global.proxy.includeOutboundPorts", copy("interception.includeOutboundPorts", "string")],
  ["global.proxy.privileged", copy("proxy.privileged", "boolean")],
  ["global.proxy.holdApplicationUntilProxyStarts", copy("proxy.holdApplicationUntilProxyStarts", "boolean")],
  ["global.proxy.readinessFailureThreshold", copy("proxy.readinessFailureThreshold", "integer")],
  ["global.proxy.readinessInitialDelaySeconds", copy("proxy.readinessInitialDelaySeconds", "integer")],
  ["global.proxy.readinessPeriodSeconds", copy("proxy.readinessPeriodSeconds", "integer")],
  ["global.proxy.startupProbe.enabled", copy("proxy.startupProbe.enabled", "boolean")],
  ["global.proxy.startupProbe.failureThreshold", copy("proxy.startupProbe.failureThreshold", "integer")],
  ["global.proxy.statusPort", copy("proxy.statusPort", "integer")],
  ["global.proxy.resources", resourcesHandler],
  [
    "global.proxy.tracer",
    onlyDefault(
      "none",
      "Istio's other tracers add Pod mounts and env our templates do not: configure tracing in the mesh (Telemetry API) instead",
    ),
  ],
  ["global.proxy.seccompProfile", onlyDefault({}, UNSUPPORTED_PROXY)],
  ["global.proxy.outlierLogPath", onlyDefault("", UNSUPPORTED_PROXY)],
  ["global.proxy.lifecycle", onlyDefault({}, UNSUPPORTED_PROXY)],
  [
    "global.proxy.capNetBindService",
    onlyDefault(false, "set sidecar.istio.io/capNetBindService on the Pods that need it"),
  ],
  ["global.proxy_init.forceApplyIptables", onlyDefault(false, UNSUPPORTED_PROXY)],
  ["global.logAsJson", onlyDefault(false, UNSUPPORTED_PROXY)],
  ["global.nativeNftables", onlyDefault(false, "this injector writes iptables rules only; leave native nftables off")],
  [
    "global.pilotCertProvider",
    onlyDefault("istiod", "this injector writes PILOT_CERT_PROVIDER=istiod; keep istiod as the certificate provider"),
  ],
  ["global.caName", onlyDefault("", UNSUPPORTED_PROXY)],
  ["global.mountMtlsCerts", onlyDefault(false, UNSUPPORTED_PROXY)],
  ["global.sds.token.aud", onlyDefault("istio-ca", "this injector projects the token for audience istio-ca")],
  ["global.sts.servicePort", onlyDefault(0, UNSUPPORTED_PROXY)],
  ["global.trustBundleName", onlyDefault("", "this injector mounts the ConfigMap istio-ca-root-cert")],
  ["pilot.crlConfigMapName", onlyDefault("", "this injector mounts the ConfigMap istio-ca-crl")],
  ["pilot.cni.enabled", cniHandler],
  [
    "pilot.cni.provider",
    onlyDefault("default", "with Multus, add default/istio-cni to k8s.v1.cni.cncf.io/networks on the Pods"),
  ],
  ["sidecarInjectorWebhook.rewriteAppHTTPProbe", copy("rewriteAppProbes", "boolean")],
  // Rendered into `config`, read from there.
  ["sidecarInjectorWebhook.alwaysInjectSelector", handledElsewhere],
  ["sidecarInjectorWebhook.neverInjectSelector", handledElsewhere],
  ["sidecarInjectorWebhook.injectedAnnotations", handledElsewhere],
  ["sidecarInjectorWebhook.defaultTemplates", handledElsewhere],
  ["sidecarInjectorWebhook.templates", handledElsewhere],
]);

/** istiod's own env: the few that change injection, by name. */
function pilotEnvHandler(v: unknown, path: string, s: State): void {
  if (!isPlain(v)) return wrongType(s, path, v, "a map of environment variables");
  for (const [name, value] of Object.entries(v)) {
    const p = `${path}.${name}`;
    if (name === "ENABLE_NATIVE_SIDECARS") {
      const t = typeof value === "boolean" ? String(value) : str(value);
      if (t === "true" || t === "false" || t === "auto") setPath(s.doc, "nativeSidecars", t);
      else wrongType(s, p, value, "true, false or auto");
    } else if (name === "ENABLE_CLUSTER_TRUST_BUNDLE_API" && (value === true || value === "true")) {
      s.findings.add(
        "unsupported",
        p,
        "mounts Istio's root certificate from a ClusterTrustBundle",
        "this injector mounts the ConfigMap istio-ca-root-cert: keep it published",
      );
    } else {
      s.findings.add(
        "ignored",
        p,
        `is istiod's environment (${shown(value)}), not read by this injector`,
        "nothing to do unless it changes injection; check Istio's documentation of it",
      );
    }
  }
}

function walkValues(v: unknown, def: unknown, path: readonly string[], prefix: string, s: State): void {
  const key = path.join(".");
  const full = `${prefix}.${key}`;
  const handler = HANDLERS.get(key);
  if (handler !== undefined) {
    if (v !== null && v !== undefined) handler(v, full, s);
    return;
  }
  if (key === "pilot.env") return pilotEnvHandler(v, full, s);
  // A map with no handler of its own: its keys, one by one (the chart's default map, when it
  // has one, says what each should be).
  if (isPlain(v) && (def === undefined || isPlain(def)) && Object.keys(v).length > 0) {
    for (const [k, sub] of Object.entries(v))
      walkValues(sub, isPlain(def) && Object.hasOwn(def, k) ? def[k] : undefined, [...path, k], prefix, s);
    return;
  }
  if (def !== undefined && sameValue(v, def)) return;
  if (def === undefined && (v === null || (isPlain(v) && Object.keys(v).length === 0))) return;
  if (underAny(key, WEBHOOK_VALUES)) {
    s.findings.add(
      "ignored",
      full,
      `is ${shown(v)}: it shapes istiod's webhook registration`,
      "set the counterpart in our chart's values (its namespaceSelector, objectSelector and reinvocationPolicy)",
    );
  } else if (underAny(key, TEMPLATE_VALUES)) {
    s.findings.add(
      "unsupported",
      full,
      `is ${shown(v)}, which Istio's injection templates read; this injector has no counterpart`,
      UNSUPPORTED_PROXY,
    );
  } else if (def === undefined && at(PINNED_VALUES, path.slice(0, 1)) === undefined) {
    s.findings.add(
      "unsupported",
      full,
      "is not a value of Istio's chart",
      "remove it, or check its spelling against Istio's values.yaml",
    );
  } else {
    s.findings.add(
      "ignored",
      full,
      `is ${shown(v)}; it does not change an injected Pod`,
      "nothing to do: it is istiod's or a gateway's setting",
    );
  }
}

/**
 * Istio's image naming (pkg/kube/inject ProxyImage, ProxyInitImage): hub/name:tag, the image
 * type added to the tag per Pod (the Pod's annotation, the ProxyConfig's, global.variant); a
 * name with a slash is a whole image reference, which the template uses as written.
 */
function images(s: State): void {
  const v = s.values;
  // Without a hub there is no image to name (values not given, or not a chart's).
  if (str(at(v, ["global", "hub"])) === undefined && !String(at(v, ["global", "proxy", "image"]) ?? "").includes("/"))
    return;
  const tag = (() => {
    const t = at(v, ["global", "tag"]);
    return t === undefined || t === null ? "" : (str(t) ?? String(t));
  })();
  const hub = str(at(v, ["global", "hub"])) ?? "";
  const image = (name: string): { image: string; imageTyped: boolean } =>
    name.includes("/") ? { image: name, imageTyped: false } : { image: `${hub}/${name}:${tag}`, imageTyped: true };
  const proxy = image(str(at(v, ["global", "proxy", "image"])) || "proxyv2");
  const init = image(str(at(v, ["global", "proxy_init", "image"])) || "proxyv2");
  setPath(s.doc, "proxy.image", proxy.image);
  if (!proxy.imageTyped) setPath(s.doc, "proxy.imageTyped", false);
  if (init.image !== proxy.image || init.imageTyped !== proxy.imageTyped) {
    setPath(s.doc, "proxyInit.image", init.image);
    if (!init.imageTyped) setPath(s.doc, "proxyInit.imageTyped", false);
  }
  const variant = str(at(v, ["global", "variant"])) ?? "";
  if (variant !== "") setPath(s.doc, "variant", variant);
}

// --- mesh -----------------------------------------------------------------------------------

/** MeshConfig fields that do not reach an injected Pod. */
function meshHandler(mesh: Plain, s: State): void {
  const prefix = `${s.meshName}.mesh`;
  for (const [k, v] of Object.entries(mesh)) {
    const path = `${prefix}.${k}`;
    if (v === null || v === undefined) continue;
    if (k === "trustDomain") {
      const t = str(v);
      if (t === undefined || t === "") wrongType(s, path, v, "a domain");
      continue;
    }
    if (k === "enablePrometheusMerge") {
      if (typeof v !== "boolean") wrongType(s, path, v, "true or false");
      else setPath(s.doc, "prometheusMerge", v);
      continue;
    }
    if (k === "defaultConfig") {
      defaultConfigHandler(v, `${prefix}.defaultConfig`, s);
      continue;
    }
    if (k === "proxyListenPort" || k === "proxyInboundListenPort") {
      const def = k === "proxyListenPort" ? 15001 : 15006;
      if (v !== 0 && v !== def)
        s.findings.add(
          "unsupported",
          path,
          `is ${shown(v)}; this injector redirects to ${def}`,
          "leave it at its default",
        );
      continue;
    }
    // Everything else configures istiod and the proxies through xDS, not the Pod.
  }
}

/**
 * The mesh's ProxyConfig into `proxyConfig`, every field pilot-agent reads (discoveryAddress is
 * `discoveryAddress`, read with the addresses). istiod drops an unknown field (jsonpb with
 * AllowUnknownFields): it is reported, as ignored, and left out; a ProxyConfig istiod refuses
 * (agent.ValidateMeshConfig) is unsupported and left out whole.
 */
function defaultConfigHandler(v: unknown, path: string, s: State): void {
  if (!isPlain(v)) return wrongType(s, path, v, "a ProxyConfig map");
  const given: Plain = {};
  for (const [k, value] of Object.entries(v)) {
    if (value === null || value === undefined || k === "discoveryAddress") continue;
    put(given, k, value);
  }
  const unknown = unknownProxyConfigFields(given);
  for (const f of unknown.named) {
    s.findings.add(
      "ignored",
      path,
      `has ${quote(f.path)}, which is not a ProxyConfig field: istiod drops it`,
      f.closest === undefined
        ? "remove it, or check its spelling against ProxyConfig's"
        : `remove it, or correct it: did you mean ${quote(f.closest)}?`,
    );
  }
  if (unknown.total > unknown.named.length)
    s.findings.add(
      "ignored",
      path,
      `has ${unknown.total - unknown.named.length} more fields that are not ProxyConfig's: istiod drops them`,
      "remove them",
    );
  const known = knownProxyConfigFields(given);
  const refused = meshProxyConfigProblems(known)[0];
  if (refused !== undefined) {
    s.findings.add(
      "unsupported",
      path,
      `is refused by istiod: ${refused.why}`,
      "correct meshConfig.defaultConfig: istiod does not accept this mesh config either",
    );
    return;
  }
  if (Object.keys(known).length > 0) setPath(s.doc, "proxyConfig", known);
}

// --- config ---------------------------------------------------------------------------------

function selectorList(v: unknown, path: string, ours: string, s: State): void {
  if (v === null || v === undefined) return;
  if (!Array.isArray(v)) return wrongType(s, path, v, "a list of label selectors");
  const out: unknown[] = [];
  for (const [i, sel] of v.entries()) {
    if (!isPlain(sel)) wrongType(s, `${path}[${i}]`, sel, "a label selector (matchLabels, matchExpressions)");
    else out.push(sel);
  }
  if (out.length > 0) setPath(s.doc, ours, out);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Templates this injector renders (src/injection/template.ts). */
const RENDERED_TEMPLATES = new Set(["sidecar", "gateway", "grpc-simple", "grpc-agent"]);

function templatesHandler(v: unknown, path: string, s: State): void {
  if (!isPlain(v)) return wrongType(s, path, v, "a map of template name to template text");
  const gatewayOnly: string[] = [];
  for (const [name, text] of Object.entries(v)) {
    const p = `${path}.${name}`;
    const pinned = PINNED_TEMPLATES.get(name);
    if (typeof text !== "string") {
      wrongType(s, p, text, "a template's text");
    } else if (pinned === undefined) {
      s.findings.add(
        "unsupported",
        p,
        `is a custom injection template (${text.length} characters)`,
        "Pods that select it with inject.istio.io/templates are refused here; express the change with Pod annotations or our config, or keep those Pods on istiod",
      );
    } else if (sha256(text) !== pinned.sha256) {
      s.findings.add(
        "unsupported",
        p,
        `differs from Istio's ${name} template at the pinned commit (files/${pinned.file})`,
        "this injector renders Istio's template as it is at the pinned commit: express the change with Pod annotations or our config, or keep those Pods on istiod",
      );
    } else if (!RENDERED_TEMPLATES.has(name)) {
      gatewayOnly.push(name);
    }
  }
  if (gatewayOnly.length > 0) {
    s.findings.add(
      "ignored",
      path,
      `${gatewayOnly.join(", ")}: Istio's templates for the gateways istiod's controllers deploy, not for Pod injection; this injector does not render them`,
      "nothing to do, unless Pods select them with inject.istio.io/templates: those are refused here",
    );
  }
}

function configHandler(cfg: Plain, s: State): void {
  const prefix = `${s.injectorName}.config`;
  for (const [k, v] of Object.entries(cfg)) {
    const path = `${prefix}.${k}`;
    switch (k) {
      case "policy":
        if (v === "enabled" || v === "disabled") setPath(s.doc, "policy", v);
        else
          s.findings.add(
            "unsupported",
            path,
            `is ${shown(v)}; Istio injects no Pod under it`,
            "use enabled or disabled (policy in our config)",
          );
        break;
      case "alwaysInjectSelector":
      case "neverInjectSelector":
        selectorList(v, path, k, s);
        break;
      case "injectedAnnotations": {
        if (v === null || v === undefined) break;
        if (!isPlain(v)) {
          wrongType(s, path, v, "a map of annotations");
          break;
        }
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(v)) {
          const t = str(value) ?? (typeof value === "boolean" ? String(value) : undefined);
          if (t === undefined) wrongType(s, `${path}.${quote(name)}`, value, "a string");
          else put(out, name, t);
        }
        if (Object.keys(out).length > 0) setPath(s.doc, "injectedAnnotations", out);
        break;
      }
      case "defaultTemplates":
        if (!sameValue(v, ["sidecar"]) && v !== null && v !== undefined) {
          s.findings.add(
            "unsupported",
            path,
            `is ${Array.isArray(v) ? quote(v.map(String).join(",")) : shown(v)}; this injector's default is [sidecar]`,
            "name the templates on the Pods with inject.istio.io/templates",
          );
        }
        break;
      case "templates":
        templatesHandler(v, path, s);
        break;
      case "template":
        // The chart's guard against an istiod older than its templates; nothing to import.
        break;
      case "aliases":
        if (isPlain(v) && Object.keys(v).length > 0)
          s.findings.add(
            "unsupported",
            path,
            "names template aliases",
            "name the templates themselves with inject.istio.io/templates",
          );
        break;
      default:
        s.findings.add(
          "unsupported",
          path,
          "is not a key of Istio's injection config",
          "remove it, or check its spelling",
        );
    }
  }
}

// --- all of it ------------------------------------------------------------------------------

/** Reads a ConfigMap key: the parsed map, or undefined (with a finding when it is no map). */
function readMap(text: string | undefined, path: string, what: string, findings: Findings): Plain | undefined {
  if (text === undefined) return undefined;
  const v = parseText(text, path, what, findings);
  if (v === undefined) return undefined;
  if (!isPlain(v)) {
    findings.add("unsupported", path, `must be a map, got ${shown(v)}`, "give the ConfigMap as istiod reads it");
    return undefined;
  }
  return v;
}

/**
 * Our config from Istio's two ConfigMaps, with the findings. Never throws on input: a text that
 * cannot be read is a finding, and the rest is imported.
 */
export function importIstioConfig(input: IstioConfigMaps): ImportResult {
  const findings = new Findings();
  const injectorName = input.injector?.name ?? "istio-sidecar-injector";
  const meshName = input.mesh?.name ?? "istio";
  if (input.injector === undefined) {
    findings.add(
      "unsupported",
      "istio-sidecar-injector",
      "was not given",
      "give the istio-sidecar-injector[-REV] ConfigMap too: its values and templates are most of the injection settings",
    );
  }
  if (input.mesh === undefined) {
    findings.add(
      "unsupported",
      "istio",
      "was not given",
      "give the istio[-REV] ConfigMap too: it holds the trust domain and the mesh's ProxyConfig",
    );
  }
  const valuesPath = `${injectorName}.values`;
  // The values are JSON; JSON is YAML, and the bounded YAML reader keeps a hostile text bounded.
  const values = readMap(input.injector?.values, valuesPath, "JSON", findings) ?? {};
  const config = readMap(input.injector?.config, `${injectorName}.config`, "YAML", findings) ?? {};
  const meshDoc = readMap(input.mesh?.mesh, `${meshName}.mesh`, "YAML", findings) ?? {};
  if (input.injector !== undefined && input.injector.values === undefined)
    findings.add("unsupported", valuesPath, "is missing", "give the whole ConfigMap");
  if (input.injector !== undefined && input.injector.config === undefined)
    findings.add("unsupported", `${injectorName}.config`, "is missing", "give the whole ConfigMap");
  if (input.mesh !== undefined && input.mesh.mesh === undefined)
    findings.add("unsupported", `${meshName}.mesh`, "is missing", "give the whole ConfigMap");

  const s: State = { doc: {}, findings, values, mesh: meshDoc, injectorName, meshName };

  // Revision and the addresses istiod's Service gives.
  const revision = str(values.revision) ?? "";
  if (revision !== "") setPath(s.doc, "revision", revision);
  const namespace = str(at(values, ["global", "istioNamespace"])) || "istio-system";
  const istiod = `istiod${revision === "" ? "" : `-${revision}`}.${namespace}.svc:15012`;
  const caAddress = str(at(values, ["global", "caAddress"])) || istiod;
  setPath(s.doc, "caAddress", caAddress);
  const discovery = str(at(meshDoc, ["defaultConfig", "discoveryAddress"])) || istiod;
  setPath(s.doc, "discoveryAddress", discovery);
  // The trust domain: the mesh's, else the values'; the mesh ID: global.meshID, else the trust domain.
  const trustDomain = str(meshDoc.trustDomain) || str(at(values, ["global", "trustDomain"])) || "cluster.local";
  setPath(s.doc, "trustDomain", trustDomain);
  setPath(s.doc, "meshId", str(at(values, ["global", "meshID"])) || trustDomain);

  for (const [k, v] of Object.entries(values)) walkValues(v, at(PINNED_VALUES, [k]), [k], valuesPath, s);
  images(s);
  configHandler(config, s);
  meshHandler(meshDoc, s);
  return { config: withoutDefaults(s.doc, DEFAULT_CONFIG), findings: findings.done() };
}

function withoutDefaults(doc: Plain, defaults: unknown): ConfigDocument {
  const out: ConfigDocument = {};
  for (const [k, v] of Object.entries(doc)) {
    const d = isPlain(defaults) && Object.hasOwn(defaults, k) ? defaults[k] : undefined;
    // Quantities as the API server stores them: Istio's 2000m and 1024Mi are our 2 and 1Gi.
    if (k === "resources" ? sameValue(canonicalResources(v), canonicalResources(d)) : sameValue(v, d)) continue;
    // Maps that our defaults merge key by key (proxy, interception...) keep only what differs;
    // resources and proxyMetadata replace the default whole.
    if (isPlain(v) && isPlain(d) && k !== "resources" && k !== "proxyMetadata" && k !== "injectedAnnotations") {
      const sub = withoutDefaults(v, d);
      if (Object.keys(sub).length > 0) put(out, k, sub);
    } else {
      put(out, k, v);
    }
  }
  return out;
}
