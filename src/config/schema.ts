// The shape and the rules of the injector config, stated once. The loader (load.ts) walks this
// table to check and default a config document; json-schema.ts turns the same table into the
// JSON Schema of the chart's `config` value. Every key of `Config` has exactly one rule here
// (the compiler checks it), and every rule says what the API server or Istio would refuse
// in the Pods it ends up in, so that a config is refused at start, not Pod by Pod.

import { MESSAGES } from "../injection/proxy-config-schema.js";
import { withImageType } from "../injection/params.js";
import { meshProxyConfigProblems } from "../injection/proxy-config.js";
import { FORMAT, type StringFormat } from "./formats.js";
import {
  INTERCEPTION_MODES,
  NATIVE_SIDECAR_MODES,
  POLICIES,
  type Config,
  type InterceptionSettings,
  type LabelSelector,
  type LabelSelectorRequirement,
  type ProxySettings,
  type Resources,
} from "./types.js";

/** One refusal, at a key path relative to the rule that finds it. */
export interface RuleProblem {
  /** Path below the rule's own key (".requests.cpu", "[2]"); empty for the key itself. */
  readonly at: string;
  /** The refused value, quoted in the message; absent when the type is wrong. */
  readonly value?: string;
  readonly why: string;
}

interface Described {
  readonly description?: string;
}

export interface StringRule extends Described {
  readonly kind: "string";
  readonly format?: StringFormat;
  /** Numbers (and with "scalar", booleans too) are taken as their string form. */
  readonly accepts?: "number" | "scalar";
  /** The least number accepted where numbers are (JSON Schema `minimum`). */
  readonly minimum?: number;
}

export interface IntegerRule extends Described {
  readonly kind: "integer";
  readonly min: number;
  readonly max: number;
}

export interface BooleanRule extends Described {
  readonly kind: "boolean";
}

export interface EnumRule extends Described {
  readonly kind: "enum";
  readonly values: readonly string[];
  /** true and false are taken as "true" and "false". */
  readonly booleans?: boolean;
}

export interface ListRule extends Described {
  readonly kind: "list";
  readonly item: Rule;
}

export interface MapRule extends Described {
  readonly kind: "map";
  readonly key: StringFormat;
  readonly value: StringRule;
  readonly refine?: (value: Readonly<Record<string, string>>) => RuleProblem[];
}

export interface ObjectRule extends Described {
  readonly kind: "object";
  readonly fields: Readonly<Record<string, Rule>>;
  readonly required?: readonly string[];
  /**
   * A given map replaces the default as a whole instead of being merged key by key
   * (`proxy.resources: {}` means no resources).
   */
  readonly replace?: boolean;
  /** Rules across fields, run on the checked value. */
  readonly refine?: (value: Readonly<Record<string, unknown>>) => RuleProblem[];
  /** The same cross-field rules in JSON Schema, as far as it can say them. */
  readonly jsonSchema?: Readonly<Record<string, unknown>>;
  /**
   * What to say of an unknown key when it means something particular here (refused all the
   * same); undefined: the closest known key is named, if one is close.
   */
  readonly unknownKey?: (key: string) => string | undefined;
}

/**
 * A ProxyConfig map (proxy.proto's fields, by JSON or proto name), checked whole by `check`;
 * kept as written.
 */
export interface ProxyConfigRule extends Described {
  readonly kind: "proxyConfig";
  readonly check: (value: Readonly<Record<string, unknown>>) => RuleProblem[];
  /** The names of the fields it may have, for JSON Schema. */
  readonly fieldNames: readonly string[];
}

export type Rule =
  StringRule | IntegerRule | BooleanRule | EnumRule | ListRule | MapRule | ObjectRule | ProxyConfigRule;

const INT32_MAX = 2147483647;

function str(format?: StringFormat, more: Omit<StringRule, "kind" | "format"> = {}): StringRule {
  return format === undefined ? { kind: "string", ...more } : { kind: "string", format, ...more };
}

function int(min: number, max: number, description?: string): IntegerRule {
  return description === undefined ? { kind: "integer", min, max } : { kind: "integer", min, max, description };
}

const bool: BooleanRule = { kind: "boolean" };

function list(item: Rule): ListRule {
  return { kind: "list", item };
}

/** An object with fixed keys: exactly the keys of `T`, each with its rule. */
function obj<T>(
  fields: { readonly [K in keyof T]-?: Rule },
  more: Omit<ObjectRule, "kind" | "fields"> = {},
): ObjectRule {
  return { kind: "object", fields, ...more };
}

// --- Label selectors, as the API server validates them (ValidateLabelSelector) -----------

const SET_OPERATORS = ["In", "NotIn"];
const EXISTENCE_OPERATORS = ["Exists", "DoesNotExist"];

function requirementValues(r: Readonly<Record<string, unknown>>): RuleProblem[] {
  const values = Array.isArray(r.values) ? r.values : [];
  if (typeof r.operator !== "string") return [];
  if (SET_OPERATORS.includes(r.operator) && values.length === 0) {
    return [{ at: ".values", why: `must list at least one value for operator ${r.operator}` }];
  }
  if (EXISTENCE_OPERATORS.includes(r.operator) && values.length > 0) {
    return [{ at: ".values", why: `must be empty for operator ${r.operator}` }];
  }
  return [];
}

const REQUIREMENT = obj<LabelSelectorRequirement>(
  {
    key: str(FORMAT.labelKey),
    operator: { kind: "enum", values: [...SET_OPERATORS, ...EXISTENCE_OPERATORS] },
    values: list(str(FORMAT.labelValue)),
  },
  {
    required: ["key", "operator"],
    refine: requirementValues,
    jsonSchema: {
      if: { properties: { operator: { enum: SET_OPERATORS } } },
      then: { required: ["values"], properties: { values: { minItems: 1 } } },
      else: { properties: { values: { maxItems: 0 } } },
    },
  },
);

const SELECTOR = obj<LabelSelector>({
  matchLabels: { kind: "map", key: FORMAT.labelKey, value: str(FORMAT.labelValue, { accepts: "scalar" }) },
  matchExpressions: list(REQUIREMENT),
});

// --- Resources: quantities, and no request above its limit (ValidateResourceRequirements) --

const QUANTITY_FORM = /^([+-]?)([0-9]*)(?:[.]([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?$/u;
/** Exponents past this are not compared (the loader refuses them before). */
const MAX_EXPONENT = 400;
const DECIMAL_EXP: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_POWER: Readonly<Record<string, number>> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };

/** A quantity as m * 10^e * 1024^b, or undefined when it is not in a form read here. */
function exact(q: string): { m: bigint; e: number; b: number } | undefined {
  const match = QUANTITY_FORM.exec(q);
  if (!match) return undefined;
  const [, sign = "", whole = "", frac = "", suffix = ""] = match;
  if (whole === "" && frac === "") return undefined;
  let m = BigInt(whole + frac);
  if (sign === "-") m = -m;
  let e = -frac.length;
  let b = 0;
  const binary = BINARY_POWER[suffix];
  const decimal = DECIMAL_EXP[suffix];
  if (binary !== undefined) b = binary;
  else if (decimal !== undefined) e += decimal;
  else if (suffix !== "") e += Number(suffix.slice(1)); // e<exponent> or E<exponent>
  return Math.abs(e) > MAX_EXPONENT ? undefined : { m, e, b };
}

/** -1, 0 or 1 as quantity `a` is below, equal to or above `b`; undefined when unreadable. */
export function compareQuantities(a: string, b: string): number | undefined {
  const x = exact(a);
  const y = exact(b);
  if (x === undefined || y === undefined) return undefined;
  const e = Math.min(x.e, y.e);
  const bin = Math.min(x.b, y.b);
  const left = x.m * 10n ** BigInt(x.e - e) * 1024n ** BigInt(x.b - bin);
  const right = y.m * 10n ** BigInt(y.e - e) * 1024n ** BigInt(y.b - bin);
  return left < right ? -1 : left > right ? 1 : 0;
}

function quantities(list: unknown): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (typeof list !== "object" || list === null) return out;
  for (const [name, q] of Object.entries(list)) if (typeof q === "string") out.set(name, q);
  return out;
}

function requestsWithinLimits(r: Readonly<Record<string, unknown>>): RuleProblem[] {
  const limits = quantities(r.limits);
  const out: RuleProblem[] = [];
  for (const [name, request] of quantities(r.requests)) {
    const limit = limits.get(name);
    if (limit !== undefined && (compareQuantities(request, limit) ?? 0) > 0) {
      out.push({
        at: `.requests.${name}`,
        value: request,
        why: `must be at most the ${name} limit (${JSON.stringify(limit)})`,
      });
    }
  }
  return out;
}

const RESOURCE_LIST = {
  kind: "map",
  key: FORMAT.resourceName,
  value: str(FORMAT.quantity, { accepts: "number", minimum: 0 }),
} as const;

const RESOURCES = obj<Resources>(
  { requests: RESOURCE_LIST, limits: RESOURCE_LIST },
  {
    replace: true,
    refine: requestsWithinLimits,
    description:
      "Resources of istio-proxy; given, it replaces the default as a whole. No request may exceed its limit.",
  },
);

// --- Annotations: the API server's total-size limit (TotalAnnotationSizeLimitB) -----------

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

function annotationsSize(m: Readonly<Record<string, string>>): RuleProblem[] {
  let size = 0;
  for (const [k, v] of Object.entries(m)) size += Buffer.byteLength(k) + Buffer.byteLength(v);
  return size > ANNOTATIONS_MAX_BYTES
    ? [{ at: "", why: `total ${size} bytes, more than the ${ANNOTATIONS_MAX_BYTES} bytes the API server allows` }]
    : [];
}

// --- ProxyConfig: Istio's mesh-wide defaultConfig is this config's proxyConfig --------------

/** ProxyConfig's fields by JSON and proto name (proxy-config-schema.ts), to their JSON name. */
const PROXY_CONFIG_FIELDS: ReadonlyMap<string, string> = new Map(
  (MESSAGES.get("ProxyConfig") ?? []).flatMap(([json, proto]) => [
    [json, json],
    [proto, json],
  ]),
);

/**
 * An unknown key at the top or in `proxy` that names a ProxyConfig field (a mesh config's
 * `defaultConfig` carried over): it belongs in proxyConfig.
 */
function proxyConfigField(key: string): string | undefined {
  if (key === "defaultConfig") return "the mesh's ProxyConfig (meshConfig.defaultConfig) is proxyConfig here";
  const json = PROXY_CONFIG_FIELDS.get(key);
  return json === undefined ? undefined : `ProxyConfig's ${json} is set in proxyConfig`;
}

/**
 * The image types the config names go into the tags of the images they apply to (Istio's
 * updateImageTypeIfPresent): proxyConfig's image.imageType into the proxy's, `variant` into
 * both (the proxy's where a Pod's ProxyConfig clears the mesh's type). Refused here when a tag
 * they make is not a tag, rather than on every Pod.
 */
function imageTypeProblem(config: Readonly<Record<string, unknown>>): RuleProblem[] {
  const pc = config.proxyConfig;
  const image = isRecord(pc) ? pc.image : undefined;
  const pcType = isRecord(image) ? image.imageType : undefined;
  const typed = (settings: unknown): string | undefined =>
    isRecord(settings) && settings.imageTyped !== false && typeof settings.image === "string" && settings.image !== ""
      ? settings.image
      : undefined;
  const proxy = typed(config.proxy);
  const init = isRecord(config.proxyInit) && config.proxyInit.image ? typed(config.proxyInit) : proxy;
  const checks: [at: string, type: unknown, images: (string | undefined)[], what: string][] = [
    ["proxyConfig", pcType, [proxy], "image.imageType would make proxy.image's tag invalid"],
    ["variant", config.variant, [proxy, init], "would make an image's tag invalid"],
  ];
  const problems: RuleProblem[] = [];
  for (const [at, type, images, what] of checks) {
    if (typeof type !== "string") continue;
    try {
      for (const name of images) if (name !== undefined) withImageType(name, type, at);
    } catch {
      problems.push({
        at,
        value: type,
        why: `${what} (a tag is at most 128 letters, digits, '_', '.' or '-')`,
      });
    }
  }
  return problems;
}

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const PROXY_CONFIG: ProxyConfigRule = {
  kind: "proxyConfig",
  check: meshProxyConfigProblems,
  fieldNames: [...PROXY_CONFIG_FIELDS.keys()],
  description:
    "The mesh's ProxyConfig (Istio's meshConfig.defaultConfig), checked as the proxy.istio.io/config annotation is; a Pod's annotation is merged over it.",
};

// --- The config ------------------------------------------------------------------------

const PROXY = obj<ProxySettings>(
  {
    image: str(FORMAT.image),
    imageTyped: {
      kind: "boolean",
      description:
        "false: the image as written, no image type (a Pod's sidecar.istio.io/proxyImageType, the ProxyConfig's image.imageType, variant) in its tag.",
    },
    imagePullPolicy: { kind: "enum", values: ["", "Always", "IfNotPresent", "Never"] },
    uid: int(1, INT32_MAX, "istio-proxy runs as this user, and not as root"),
    gid: int(0, INT32_MAX),
    statusPort: int(0, 65535, "the agent's port; 0 removes the proxy's probes"),
    logLevel: str(FORMAT.logLevel),
    componentLogLevel: str(FORMAT.scopedLogLevels),
    agentLogLevel: str(FORMAT.agentLogLevels),
    holdApplicationUntilProxyStarts: bool,
    privileged: bool,
    readinessInitialDelaySeconds: int(0, INT32_MAX),
    readinessPeriodSeconds: int(0, INT32_MAX),
    readinessFailureThreshold: int(0, INT32_MAX),
    startupProbe: obj<ProxySettings["startupProbe"]>({ enabled: bool, failureThreshold: int(0, INT32_MAX) }),
    resources: RESOURCES,
    proxyMetadata: {
      kind: "map",
      key: FORMAT.envName,
      value: str(undefined, { accepts: "scalar" }),
      description: "Extra environment of istio-proxy.",
    },
  },
  { unknownKey: proxyConfigField },
);

const INTERCEPTION = obj<InterceptionSettings>({
  mode: { kind: "enum", values: INTERCEPTION_MODES },
  includeOutboundIPRanges: str(FORMAT.includeIPRanges),
  excludeOutboundIPRanges: str(FORMAT.excludeIPRanges),
  includeInboundPorts: str(FORMAT.includePorts),
  excludeInboundPorts: str(FORMAT.ports),
  includeOutboundPorts: str(FORMAT.ports),
  excludeOutboundPorts: str(FORMAT.ports),
});

export const CONFIG_SCHEMA: ObjectRule = obj<Config>(
  {
    revision: str(FORMAT.labelValue, { description: "istio.io/rev written into Pods: a label value." }),
    revisionTags: list(
      str(FORMAT.labelValue, {
        description:
          "Revision tags pointing at this revision (the chart's revisionTags): istio.io/rev=<tag> selects this injector too.",
      }),
    ),
    enableNamespacesByDefault: {
      kind: "boolean",
      description:
        "The webhooks also select namespaces with neither istio-injection nor istio.io/rev (the chart's webhook.enableNamespacesByDefault), for explanations.",
    },
    meshId: str(),
    clusterId: str(),
    trustDomain: str(FORMAT.trustDomain),
    clusterDomain: str(FORMAT.dnsSubdomain),
    network: str(),
    discoveryAddress: str(FORMAT.hostPort),
    caAddress: str(FORMAT.hostPort),
    policy: { kind: "enum", values: POLICIES },
    neverInjectSelector: list(SELECTOR),
    alwaysInjectSelector: list(SELECTOR),
    ignoredNamespaces: list(str(FORMAT.dnsLabel)),
    injectedAnnotations: {
      kind: "map",
      key: FORMAT.annotationKey,
      value: str(undefined, { accepts: "scalar" }),
      refine: annotationsSize,
    },
    nativeSidecars: { kind: "enum", values: NATIVE_SIDECAR_MODES, booleans: true },
    rewriteAppProbes: bool,
    prometheusMerge: bool,
    cni: bool,
    imagePullSecrets: list(str(FORMAT.dnsSubdomain, { description: "Secret names." })),
    variant: str(FORMAT.imageType, {
      description:
        "Istio's global.variant: the image type of both images where a Pod (and for the proxy the ProxyConfig's image.imageType) names none.",
    }),
    proxy: PROXY,
    proxyInit: obj<Config["proxyInit"]>({
      image: str(FORMAT.imageOrEmpty, { description: "Empty: proxy.image (and proxy.imageTyped)." }),
      imageTyped: {
        kind: "boolean",
        description: "false: proxyInit.image as written, no image type in its tag.",
      },
    }),
    interception: INTERCEPTION,
    proxyConfig: PROXY_CONFIG,
  },
  { unknownKey: proxyConfigField, refine: imageTypeProblem },
);
