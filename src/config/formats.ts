// The string formats of the injector config: each is a JSON-Schema pattern (written so that
// JavaScript and Go's RE2 read it alike: no look-arounds, no back-references, ASCII classes),
// the lengths, and, where a pattern cannot say everything, a check that has the last word.
// The loader applies all three; the chart's values.schema.json carries the pattern and the
// lengths (scripts/config-schema.ts), so helm refuses early what the injector refuses at start.
//
// Where the same setting exists as a Pod annotation, the check is Istio's annotation check
// (injection/validate.ts), so a value means the same in both places. Kubernetes names are
// checked as the API server checks them (apimachinery's validation: IsDNS1123Label,
// IsDNS1123Subdomain, IsQualifiedName, IsValidLabelValue, IsEnvVarName), and quantities
// with parseQuantity, which is what the Pods' resources are written with.

import { A } from "../injection/annotations.js";
import { parseQuantity } from "../injection/quantity.js";
import { QUOTE_MAX_CHARS } from "../injection/quote.js";
import { AGENT_LOG_LEVELS, annotationValueProblem, ENVOY_LOG_LEVELS } from "../injection/validate.js";

/** A string format: what JSON Schema can say about it, and what only code can. */
export interface StringFormat {
  /** What a valid value is, said when the pattern or the lengths refuse one. */
  readonly expect: string;
  /** Anchored pattern (^...$), valid in JavaScript and RE2. */
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** The part of the rule no pattern can say; returns why `value` is refused. */
  readonly check?: (value: string) => string | undefined;
}

// Ports as Istio reads a port list (0 to 65535, leading zeros allowed, space around each).
const PORT = "0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
// A single port where Kubernetes takes one (1 to 65535).
const HOST_PORT = "0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
const PORTS = `${PORT}([ \\t]*,[ \\t]*${PORT})*`;

const V4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const V4 = `${V4_OCTET}(\\.${V4_OCTET}){3}`;
// Prefix lengths as Go's netip.ParsePrefix reads them: no leading zeros.
const V4_BITS = "([0-9]|[12][0-9]|3[0-2])";
// IPv6 addresses only roughly (hex digits, colons, an embedded IPv4); the check is exact.
const V6 = "[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*";
const V6_BITS = "([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])";
// No space around a CIDR: Istio refuses it.
const CIDR = `(${V4}/${V4_BITS}|${V6}/${V6_BITS})`;
const CIDRS = `${CIDR}(,${CIDR})*`;

const LEVEL = `(${ENVOY_LOG_LEVELS.join("|")})`;
const SCOPED_LEVEL = `[^:,]+:${LEVEL}`;
const AGENT_LEVEL = `(${AGENT_LOG_LEVELS.join("|")})`;
const AGENT_SCOPED_LEVEL = `([^:,]+:)?${AGENT_LEVEL}`;

const DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS_SUBDOMAIN = `${DNS_LABEL}(\\.${DNS_LABEL})*`;
const DNS_SUBDOMAIN_ANY_CASE = "[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*";
const QUALIFIED_NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";

// The image reference grammar of the container runtimes (distribution/reference).
const DOMAIN_PART = "([A-Za-z0-9]|[A-Za-z0-9][-A-Za-z0-9]*[A-Za-z0-9])";
const DOMAIN = `(${DOMAIN_PART}(\\.${DOMAIN_PART})*|\\[[0-9A-Fa-f:]+\\])(:[0-9]+)?`;
const PATH_PART = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
const TAG = "[A-Za-z0-9_][-A-Za-z0-9_.]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}";
const IMAGE = `(${DOMAIN}/)?${PATH_PART}(/${PATH_PART})*(:${TAG})?(@${DIGEST})?`;

const MAX_SUBDOMAIN = 253;

/** Longest reason taken from a check; a longer one quotes too much of the value. */
const MAX_REASON_CHARS = 2 * QUOTE_MAX_CHARS + 120;

/**
 * A setting that is also a Pod annotation: checked with Istio's check for the annotation. That
 * reason may quote a whole part of a list; past a bounded length `expect` is said instead.
 */
function annotationFormat(annotation: string, expect: string, pattern: string): StringFormat {
  const check = (value: string): string | undefined => {
    const why = annotationValueProblem(annotation, value);
    return why !== undefined && why.length > MAX_REASON_CHARS ? expect : why;
  };
  return { expect, pattern, check };
}

/** A qualified name's prefix (before the "/") is at most a DNS subdomain's length. */
function prefixLength(value: string): string | undefined {
  const slash = value.indexOf("/");
  return slash > MAX_SUBDOMAIN ? `its prefix is longer than ${MAX_SUBDOMAIN} characters` : undefined;
}

export const FORMAT = {
  dnsLabel: {
    expect:
      "must be a DNS label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)",
    pattern: `^${DNS_LABEL}$`,
    maxLength: 63,
  },
  dnsSubdomain: {
    expect: "must be a DNS subdomain (DNS labels joined by '.', at most 253 characters)",
    pattern: `^${DNS_SUBDOMAIN}$`,
    maxLength: MAX_SUBDOMAIN,
  },
  labelKey: {
    expect:
      "must be a label key ([prefix/]name: a DNS subdomain, then a name of at most 63 letters, digits, '-', '_' or '.')",
    pattern: `^(${DNS_SUBDOMAIN}/)?${QUALIFIED_NAME}$`,
    maxLength: MAX_SUBDOMAIN + 1 + 63,
    check: prefixLength,
  },
  labelValue: {
    expect:
      "must be a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or empty)",
    pattern: "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
    maxLength: 63,
  },
  annotationKey: {
    expect:
      "must be an annotation key ([prefix/]name: a DNS subdomain, then a name of at most 63 letters, digits, '-', '_' or '.')",
    pattern: `^(${DNS_SUBDOMAIN_ANY_CASE}/)?${QUALIFIED_NAME}$`,
    maxLength: MAX_SUBDOMAIN + 1 + 63,
    check: prefixLength,
  },
  envName: {
    expect: "must be an environment variable name (letters, digits, '_', '-' or '.', not starting with a digit)",
    pattern: "^[-._a-zA-Z][-._a-zA-Z0-9]*$",
  },
  image: {
    expect: "must be a container image reference (for example docker.io/istio/proxyv2:1.28.0)",
    pattern: `^${IMAGE}$`,
    minLength: 1,
    maxLength: 4096,
  },
  imageOrEmpty: {
    expect: "must be a container image reference (for example docker.io/istio/proxyv2:1.28.0), or empty",
    pattern: `^(${IMAGE})?$`,
    maxLength: 4096,
  },
  imageType: {
    expect:
      "must be an image type, the suffix of the image tags (for example distroless or debug; default: no suffix), or empty",
    pattern: "^[-A-Za-z0-9_.]*$",
    maxLength: 127,
  },
  hostPort: {
    expect: "must be <host>:<port> with a port from 1 to 65535 (for example istiod.istio-system.svc:15012)",
    pattern: `^(${DNS_SUBDOMAIN_ANY_CASE}|\\[[0-9A-Fa-f:.]+\\]):${HOST_PORT}$`,
    maxLength: MAX_SUBDOMAIN + 8,
  },
  dnsSubdomainOrEmpty: {
    expect: "must be a DNS subdomain (DNS labels joined by '.', at most 253 characters), or empty",
    pattern: `^(${DNS_SUBDOMAIN})?$`,
    maxLength: MAX_SUBDOMAIN,
  },
  trustDomain: {
    expect: "must be a SPIFFE trust domain (lower-case letters, digits, '.', '-' and '_'), or empty",
    pattern: "^[a-z0-9._-]*$",
    maxLength: 255,
  },
  resourceName: {
    expect: "must be cpu, memory or ephemeral-storage",
    pattern: "^(cpu|memory|ephemeral-storage)$",
  },
  quantity: {
    expect: "must be a Kubernetes quantity of at least 0 (for example 100m, 1Gi)",
    pattern: "^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?0*[0-9]{1,2}|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$",
    maxLength: 64,
    check: (value) => {
      // Past any real size, and kept from making the exact arithmetic below costly.
      if (/[eE][-+]?0*[1-9][0-9]{2,}$/u.test(value)) return "has an exponent beyond 99";
      const canonical = parseQuantity(value);
      if (canonical === undefined) return "is not a Kubernetes quantity (for example 100m, 1Gi)";
      return canonical.startsWith("-") ? "must not be negative" : undefined;
    },
  },
  includeIPRanges: annotationFormat(
    A.includeOutboundIPRanges,
    `must be "*", or CIDRs separated by commas (for example 10.0.0.0/8,fd00::/8)`,
    `^(\\*|${CIDRS})?$`,
  ),
  excludeIPRanges: annotationFormat(
    A.excludeOutboundIPRanges,
    "must be CIDRs separated by commas (for example 10.0.0.0/8,fd00::/8)",
    `^(${CIDRS})?$`,
  ),
  includePorts: annotationFormat(
    A.includeInboundPorts,
    `must be "*", or port numbers (0-65535) separated by commas`,
    `^(\\*|[ \\t]*(${PORTS})?[ \\t]*)$`,
  ),
  ports: annotationFormat(
    A.excludeInboundPorts,
    "must be port numbers (0-65535) separated by commas",
    `^[ \\t]*(${PORTS})?[ \\t]*$`,
  ),
  // Istio admits any log level in a Pod annotation (with a warning here); in the config, a level
  // Envoy or pilot-agent does not know would keep every proxy from starting.
  logLevel: { expect: `must be one of ${ENVOY_LOG_LEVELS.join(", ")}`, pattern: `^${LEVEL}$` },
  scopedLogLevels: {
    expect: "must be <component>:<level> pairs separated by commas (for example misc:error,upstream:info)",
    pattern: `^${SCOPED_LEVEL}(,${SCOPED_LEVEL})*$`,
  },
  agentLogLevels: {
    expect: `must be [<scope>:]<level> separated by commas, a level one of ${AGENT_LOG_LEVELS.join(", ")} (for example default:info)`,
    pattern: `^${AGENT_SCOPED_LEVEL}(,${AGENT_SCOPED_LEVEL})*$`,
  },
} as const satisfies Readonly<Record<string, StringFormat>>;

export type FormatName = keyof typeof FORMAT;

const compiled = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, "u");
    compiled.set(pattern, re);
  }
  return re;
}

/** Why `value` is not of `format`, or undefined when it is. */
export function formatProblem(format: StringFormat, value: string): string | undefined {
  const tooLong = format.maxLength !== undefined && value.length > format.maxLength;
  const tooShort = format.minLength !== undefined && value.length < format.minLength;
  if (tooLong || tooShort || (format.pattern !== undefined && !regex(format.pattern).test(value))) {
    // The specific reason of the check, when it has one, says more than the general one.
    return format.check?.(value) ?? format.expect;
  }
  return format.check?.(value);
}
