// The namespace and object selectors of the chart's webhooks
// (charts/sidecar-injector/templates/mutatingwebhookconfiguration.yaml, Istio's), for the
// policy's bindings: one binding per webhook, the revision tags' (revision-tags.yaml) included,
// so a Pod reaches the policy exactly when it would reach a webhook. The chart test renders both
// and compares them.
import type { LabelSelector, LabelSelectorRequirement } from "../config/types.js";
import { L } from "../injection/annotations.js";
import { DEFAULT_REVISION } from "../injection/istio.js";

export interface ChartWebhook {
  /** The webhook's prefix in the chart (e.g. `rev.namespace`), as a binding name suffix. */
  readonly name: string;
  readonly namespaceSelector: LabelSelector;
  readonly objectSelector: LabelSelector;
}

const NAMESPACE_INJECTION = "istio-injection";
const NAMESPACE_NAME = "kubernetes.io/metadata.name";
const SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

const req = (
  key: string,
  operator: LabelSelectorRequirement["operator"],
  values?: string[],
): LabelSelectorRequirement => (values ? { key, operator, values } : { key, operator });

/** Selectors of the webhooks selecting `value` as istio.io/rev (a revision, or a tag of one). */
function revisionWebhooks(value: string, excludeOwn: LabelSelectorRequirement): ChartWebhook[] {
  const notOptedOut = req(L.inject, "NotIn", ["false"]);
  return [
    {
      name: "rev.namespace",
      namespaceSelector: {
        matchExpressions: [req(L.rev, "In", [value]), req(NAMESPACE_INJECTION, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [notOptedOut] },
    },
    {
      name: "rev.object",
      namespaceSelector: {
        matchExpressions: [req(L.rev, "DoesNotExist"), req(NAMESPACE_INJECTION, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [notOptedOut, req(L.rev, "In", [value])] },
    },
  ];
}

/** What the default revision selects beyond istio.io/rev=default (its own, or the tag default's). */
function defaultWebhooks(excludeOwn: LabelSelectorRequirement, enableNamespacesByDefault: boolean): ChartWebhook[] {
  const out: ChartWebhook[] = [
    {
      name: "namespace",
      namespaceSelector: { matchExpressions: [req(NAMESPACE_INJECTION, "In", ["enabled"]), excludeOwn] },
      objectSelector: { matchExpressions: [req(L.inject, "NotIn", ["false"])] },
    },
    {
      name: "object",
      namespaceSelector: {
        matchExpressions: [req(NAMESPACE_INJECTION, "DoesNotExist"), req(L.rev, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [req(L.inject, "In", ["true"]), req(L.rev, "DoesNotExist")] },
    },
  ];
  if (enableNamespacesByDefault) {
    out.push({
      name: "auto",
      namespaceSelector: {
        matchExpressions: [
          req(NAMESPACE_INJECTION, "DoesNotExist"),
          req(L.rev, "DoesNotExist"),
          req(NAMESPACE_NAME, "NotIn", SYSTEM_NAMESPACES),
          excludeOwn,
        ],
      },
      objectSelector: { matchExpressions: [req(L.inject, "DoesNotExist"), req(L.rev, "DoesNotExist")] },
    });
  }
  return out;
}

/**
 * Every webhook the chart renders for the revision: its own configuration's, then each revision
 * tag's (revision-tags.yaml), named `tag-<tag>.<prefix>`.
 */
export function chartWebhooks(
  revision: string,
  ownNamespace: string,
  enableNamespacesByDefault: boolean,
  tags: readonly string[] = [],
): ChartWebhook[] {
  const rev = revision || DEFAULT_REVISION;
  const excludeOwn = req(NAMESPACE_NAME, "NotIn", [...new Set([ownNamespace, "kube-system"])]);
  const out = revisionWebhooks(rev, excludeOwn);
  if (rev === DEFAULT_REVISION) out.push(...defaultWebhooks(excludeOwn, enableNamespacesByDefault));
  for (const tag of tags) {
    const own = revisionWebhooks(tag, excludeOwn);
    if (tag === DEFAULT_REVISION) own.push(...defaultWebhooks(excludeOwn, enableNamespacesByDefault));
    out.push(...own.map((w) => ({ ...w, name: `tag-${tag}.${w.name}` })));
  }
  return out;
}

/**
 * What the chart's webhooks select, as one line: the policy carries it (SELECTS_ANNOTATION),
 * and the chart refuses a policy rendered for other selectors, whose bindings would miss Pods
 * its webhooks leave to the policy, or one rendered for another namespace (the injector's own,
 * which the webhooks leave out and the bindings would not).
 */
export function selectorsKey(
  revision: string,
  tags: readonly string[],
  enableNamespacesByDefault: boolean,
  namespace: string,
): string {
  return `revision=${revision || DEFAULT_REVISION};revisionTags=${tags.join(",")};enableNamespacesByDefault=${String(enableNamespacesByDefault)};namespace=${namespace}`;
}
