// The namespace and object selectors of the chart's webhooks
// (charts/sidecar-injector/templates/mutatingwebhookconfiguration.yaml, Istio's), for the
// policy's bindings: one binding per webhook, so a Pod reaches the policy exactly when it would
// reach the webhook. The chart test renders both and compares them.
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

export function chartWebhooks(
  revision: string,
  ownNamespace: string,
  enableNamespacesByDefault: boolean,
): ChartWebhook[] {
  const rev = revision || DEFAULT_REVISION;
  const excludeOwn = req(NAMESPACE_NAME, "NotIn", [...new Set([ownNamespace, "kube-system"])]);
  const notOptedOut = req(L.inject, "NotIn", ["false"]);
  const out: ChartWebhook[] = [
    {
      name: "rev.namespace",
      namespaceSelector: {
        matchExpressions: [req(L.rev, "In", [rev]), req(NAMESPACE_INJECTION, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [notOptedOut] },
    },
    {
      name: "rev.object",
      namespaceSelector: {
        matchExpressions: [req(L.rev, "DoesNotExist"), req(NAMESPACE_INJECTION, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [notOptedOut, req(L.rev, "In", [rev])] },
    },
  ];
  if (rev !== DEFAULT_REVISION) return out;
  out.push(
    {
      name: "namespace",
      namespaceSelector: { matchExpressions: [req(NAMESPACE_INJECTION, "In", ["enabled"]), excludeOwn] },
      objectSelector: { matchExpressions: [notOptedOut] },
    },
    {
      name: "object",
      namespaceSelector: {
        matchExpressions: [req(NAMESPACE_INJECTION, "DoesNotExist"), req(L.rev, "DoesNotExist"), excludeOwn],
      },
      objectSelector: { matchExpressions: [req(L.inject, "In", ["true"]), req(L.rev, "DoesNotExist")] },
    },
  );
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
