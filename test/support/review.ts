// AdmissionReviews for tests, shaped as the API server sends them (compare test/fixtures).

/** A Pod CREATE review; every field can be overridden. */
export function podReview(
  opts: {
    apiVersion?: string;
    uid?: string;
    operation?: string;
    namespace?: string;
    kind?: { group: string; version: string; kind: string };
    resource?: { group: string; version: string; resource: string };
    object?: unknown;
    /** Any other request fields (subResource, dryRun, ...), set last. */
    request?: Record<string, unknown>;
  } = {},
): { apiVersion: string; kind: "AdmissionReview"; request: { uid: string } & Record<string, unknown> } {
  return {
    apiVersion: opts.apiVersion ?? "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: opts.uid ?? "uid-1",
      kind: opts.kind ?? { group: "", version: "v1", kind: "Pod" },
      resource: opts.resource ?? { group: "", version: "v1", resource: "pods" },
      operation: opts.operation ?? "CREATE",
      namespace: opts.namespace ?? "shop",
      object:
        "object" in opts
          ? opts.object
          : {
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "web-1", annotations: { "sidecar.istio.io/inject": "false" } },
              spec: { containers: [{ name: "app", image: "nginx" }] },
            },
      ...opts.request,
    },
  };
}
