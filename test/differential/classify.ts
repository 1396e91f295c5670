// Bounded classes of divergence between our injector and Istio's, for the differential test's
// list of known divergences and its summary. A case's class is the sorted, `+`-joined set of
// the classes of its differences (e.g. `probe-rewrite+prometheus`), so a fix that removes one
// class from a case, or a change that adds one, shows in the list.
import type { Difference } from "../support/compare-injected.js";

export const DIVERGENCE_CLASSES = [
  // Refusals.
  "validation-we-refuse",
  "validation-istio-refuses",
  "refusal-message",
  // A refusal on one side only that we keep on purpose (README, "Deliberate differences from Istio").
  "deliberate",
  // Whether the Pod is injected at all (the second: its namespace is one the injector ignores,
  // which Istio's kube-inject does not look at for a workload's template).
  "skip-decision",
  "ignored-namespace",
  // Istio's Pod holds istio-proxy twice, among the init containers and among the containers
  // (which the API server refuses); ours holds it once.
  "duplicate-proxy",
  // Where a CronJob's injected metadata goes (Istio: the job template's metadata).
  "cronjob-metadata",
  // What is injected.
  "template",
  "probe-rewrite",
  "prometheus",
  "image",
  "owner-name",
  "canonical-labels",
  "iptables-args",
  "init-uid",
  "proxy-config",
  "proxy-args",
  "proxy-env",
  "native-sidecar",
  "container-order",
  "security-context",
  "resources",
  "volumes",
  "lifecycle",
  "status-annotation",
  "annotations",
  "user-containers",
  "pod-spec",
  "workload",
  "other",
] as const;
export type DivergenceClass = (typeof DIVERGENCE_CLASSES)[number];

const INJECTED = "(istio-proxy|istio-init|istio-validation)";

/** The class of one difference, by where it is. First match wins. */
const RULES: readonly (readonly [RegExp, DivergenceClass])[] = [
  [/^CronJob\/[^.]*\.rest\.spec\.jobTemplate/, "cronjob-metadata"],
  // Istio writes a CronJob's labels and annotations on its job template, not its pod template.
  [/^CronJob\/[^.]*\.template\.(labels|annotations)(\.|$)/, "cronjob-metadata"],
  [/\.annotations\.(prometheus\.io\/|prometheus\.istio\.io\/)|\.env\.ISTIO_PROMETHEUS_ANNOTATIONS/, "prometheus"],
  [/\.annotations\.sidecar\.istio\.io\/status\./, "status-annotation"],
  [/\.env\.ISTIO_KUBE_APP_PROBERS|\.(readinessProbe|livenessProbe|startupProbe)(\.|$)/, "probe-rewrite"],
  [/\.env\.(ISTIO_META_OWNER|ISTIO_META_WORKLOAD_NAME)$/, "owner-name"],
  [/\.labels\.service\.istio\.io\/canonical-(name|revision)$/, "canonical-labels"],
  [/\.initContainers\.(istio-init|istio-validation)\.args\.-u$/, "init-uid"],
  [new RegExp(`\\.initContainers\\.(istio-init|istio-validation)\\.args`), "iptables-args"],
  [new RegExp(`\\.${INJECTED}\\.image$`), "image"],
  [new RegExp(`\\.initContainers\\.istio-init\\.securityContext\\.(runAsUser|runAsGroup)`), "init-uid"],
  [/\.env\.PROXY_CONFIG/, "proxy-config"],
  [new RegExp(`\\.${INJECTED}\\.args`), "proxy-args"],
  [new RegExp(`\\.${INJECTED}\\.env\\.`), "proxy-env"],
  [new RegExp(`\\.${INJECTED}\\.envOrder$`), "proxy-env"],
  [new RegExp(`\\.${INJECTED}\\.restartPolicy$`), "native-sidecar"],
  [/\.(initContainerOrder|containerOrder)$/, "container-order"],
  [new RegExp(`\\.${INJECTED}\\.securityContext`), "security-context"],
  [new RegExp(`\\.${INJECTED}\\.resources`), "resources"],
  [new RegExp(`\\.${INJECTED}\\.volumeMount|\\.template\\.volume`), "volumes"],
  [new RegExp(`\\.${INJECTED}\\.lifecycle`), "lifecycle"],
  [new RegExp(`\\.(initContainers|containers)\\.(${INJECTED}|grpc-bootstrap-init)($|\\.)`), "template"],
  [/\.template\.annotations|\.template\.labels/, "annotations"],
  [/\.template\.(initContainers|containers)\./, "user-containers"],
  [/\.template\.(spec|metadata)/, "pod-spec"],
  [/\.rest(\.|$)/, "workload"],
  [/^\(documents\)$/, "workload"],
];

export function classOfDifference(d: Difference): DivergenceClass {
  for (const [re, cls] of RULES) if (re.test(d.path)) return cls;
  return "other";
}

const PROXY_AT = /^(.*)\.template\.(initContainers|containers)\.istio-proxy$/;

/**
 * Where istio-proxy is on one side only: in the other list on the other side (native sidecar
 * or not), in one list where Istio's Pod holds it in both (`istioHoldsTwo`), or nowhere (one
 * side injected, the other did not).
 */
function proxyPlacement(diffs: readonly Difference[], istioHoldsTwo: boolean): DivergenceClass | undefined {
  const seen = new Map<string, Set<string>>();
  for (const d of diffs) {
    const m = PROXY_AT.exec(d.path);
    if (!m || d.kind === "changed") continue;
    const doc = m[1] as string;
    seen.set(doc, (seen.get(doc) ?? new Set()).add(`${d.kind}:${m[2] as string}`));
  }
  let out: DivergenceClass | undefined;
  for (const kinds of seen.values()) {
    if (kinds.has("missing:containers") && kinds.has("unexpected:initContainers")) out ??= "native-sidecar";
    else if (kinds.has("missing:initContainers") && kinds.has("unexpected:containers")) out ??= "native-sidecar";
    else if (
      istioHoldsTwo &&
      kinds.size === 1 &&
      (kinds.has("missing:containers") || kinds.has("missing:initContainers"))
    )
      out ??= "duplicate-proxy";
    else return "skip-decision";
  }
  return out;
}

/**
 * The case's class: its differences' classes, sorted and joined with `+`. `istioHoldsTwo`: a
 * Pod of Istio's output holds istio-proxy among its init containers and its containers both.
 */
export function classOf(diffs: readonly Difference[], istioHoldsTwo = false): string {
  const placement = proxyPlacement(diffs, istioHoldsTwo);
  // When one side did not inject, every other difference follows from that.
  if (placement === "skip-decision") return placement;
  const classes = new Set(diffs.filter((d) => !PROXY_AT.test(d.path) || d.kind === "changed").map(classOfDifference));
  if (placement) classes.add(placement);
  return [...classes].sort((a, b) => DIVERGENCE_CLASSES.indexOf(a) - DIVERGENCE_CLASSES.indexOf(b)).join("+");
}

/**
 * Differences kept on purpose, where Istio's injector is plainly wrong. A case listed as
 * `deliberate(<reason>): <classes>` in known-divergences.json must still diverge, in those
 * classes; the reason is one of these.
 */
export const DELIBERATE_REASONS: Readonly<Record<string, string>> = {
  reinjection:
    "Re-injecting an injected Pod: Istio merges the new template over the previously injected Pod (RunTemplate merges into params.pod, not the stripped Pod), so the previous injection's containers and fields stay — with nativeSidecar turned off, istio-proxy is left in initContainers as well as added to containers (a duplicate name the API server refuses); with interceptionMode NONE, the old istio-init still redirects traffic; with proxyCPU changed, the old limits and memory request stay — and the customization of an injected container (istio-proxy or istio-init: image, args, resources, securityContext) recorded in proxy.istio.io/overrides is dropped, so re-injecting Istio's own output unchanged gives a different Pod. We remove the previous injection first and re-apply the recorded customization, so re-injecting gives what injecting the original gives. Likewise with prometheus.istio.io/merge-metrics turned off, Istio leaves the merged prometheus.io annotations and the old ISTIO_PROMETHEUS_ANNOTATIONS in place; we give the app's own annotations back. Where a grpc-agent or grpc-simple injection's overrides record is gone (removed, or null), Istio's templates see none of the app containers its status names (ISTIO_META_APP_CONTAINERS empty); ours see the Pod's. And the env vars written after the templates come in the order a first injection writes them (the network, then the Prometheus annotations and the app probers), where Istio leaves the old ones in their places and appends the network again after them.",
  "two-proxies":
    "Templates that leave Istio's istio-proxy one the API server refuses, with native sidecars. `sidecar,grpc-agent` (or `sidecar,gateway`): the later template writes the proxy among the containers after the native sidecar template wrote it among the init containers, and Istio emits two containers named istio-proxy. With a template after those (`sidecar,grpc-agent,grpc-simple`, `sidecar,gateway,sidecar`), RunTemplate moves the later proxy to the end of the init containers and reorderPod keeps only the last istio-proxy there: one proxy, the later template's, among the init containers without restartPolicy: Always, whose readiness probe and lifecycle hooks the API server refuses (and which would never complete). We merge the later templates' proxy into the native sidecar, as the templates merge without native sidecars. The test checks that Istio's answer for each such case is refused so (proxyRefused).",
  "kube-inject-opt-out":
    'A workload that opts out (sidecar.istio.io/inject: "false", label or annotation) whose proxy.istio.io/config does not parse: istioctl kube-inject (the oracle) reads the ProxyConfig before it decides, and refuses it; istiod\'s webhook decides first and admits it unchanged, and so do we, through the CLI, the webhook and the preview alike (one path).',
  "probe-on-status-port":
    "An app probe on a numeric port that is the Pod's own status.sidecar.istio.io/port: Istio takes as already rewritten only a probe on the mesh's status port (15020), so it hands this one to the agent, which listens on that port itself and would answer the probe in the app's place; we take it as already rewritten and leave it out of ISTIO_KUBE_APP_PROBERS.",
  "status-port-zero":
    'status.sidecar.istio.io/port: "0" (no agent status server): Istio still rewrites every httpGet/tcpSocket/grpc probe and lifecycle hook to an httpGet on port 0 and hands the originals to the agent — the API server refuses a probe on port 0 — so we leave the probes and hooks as they are, with no ISTIO_KUBE_APP_PROBERS. Re-injected, Istio also keeps the previous injection\'s proxy probes (see reinjection).',
};

const DELIBERATE_ENTRY = /^deliberate\(([a-z-]+)\): (.+)$/;

/** A known-divergences.json entry: the classes, and the reason when it is deliberate. */
export function parseKnown(entry: string): { readonly cls: string; readonly deliberate?: string } {
  const m = DELIBERATE_ENTRY.exec(entry);
  return m ? { cls: m[2] as string, deliberate: m[1] as string } : { cls: entry };
}
