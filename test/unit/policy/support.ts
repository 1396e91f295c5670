// What the policy unit tests share: the options `policy render` is given without a cluster, and
// a one-container Pod carrying annotations.
import type { Pod } from "../../../src/kube/types.js";
import type { PolicyOptions } from "../../../src/policy/render.js";

export const OPTIONS: PolicyOptions = {
  apiVersion: "v1beta1",
  name: "sidecar-injector",
  namespace: "sidecar-injector-system",
  nativeSidecarsSupported: false,
  enableNamespacesByDefault: false,
};

export const annotatedPod = (annotations: Record<string, string>): Pod => ({
  metadata: { name: "web", annotations },
  spec: { containers: [{ name: "web", image: "example.com/web:1" }] },
});
