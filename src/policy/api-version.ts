// The apiVersion a MutatingAdmissionPolicy is rendered at when the cluster decides
// (`policy render --api-version auto`), from its discovery of admissionregistration.k8s.io:
// - v1 when a served v1 has mutatingadmissionpolicies and their bindings (Kubernetes 1.36 and
//   later: GA);
// - else v1beta1 when a served v1beta1 has them (1.34-1.35, with the MutatingAdmissionPolicy
//   feature gate and --runtime-config=admissionregistration.k8s.io/v1beta1=true);
// - else an error naming what the cluster serves of the group (its versions, and whether they
//   hold the policies; names from the cluster through quoteName) and what is needed.
// v1alpha1 (1.32-1.33) is never chosen: the policy is proven on the beta and GA APIs only.
// The objects are the same at v1 and v1beta1 (render.ts): only the apiVersion is chosen here.
import { quoteName } from "../injection/quote.js";
import { PolicyRenderError } from "./errors.js";
import { POLICY_API_VERSIONS, type PolicyApiVersion } from "./render.js";

export const ADMISSION_GROUP = "admissionregistration.k8s.io";
/** The resources the rendered List creates: both must be served at the version chosen. */
export const POLICY_RESOURCES = ["mutatingadmissionpolicies", "mutatingadmissionpolicybindings"] as const;

/** One version of the group as discovery answers it: its name and its resources' names. */
export interface ServedVersion {
  readonly version: string;
  readonly resources: readonly string[];
}

export interface ApiVersionChoice {
  readonly apiVersion: PolicyApiVersion;
  /** One line: what the cluster serves, and so what was chosen. */
  readonly reason: string;
}

const holdsPolicies = (v: ServedVersion): boolean => POLICY_RESOURCES.every((r) => v.resources.includes(r));

/** The version to render at, for a cluster whose discovery of the group is `served` (its order is not relied on). */
export function chooseApiVersion(served: readonly ServedVersion[]): ApiVersionChoice {
  const withPolicies = served.filter(holdsPolicies).map((v) => v.version);
  const apiVersion = POLICY_API_VERSIONS.find((v) => withPolicies.includes(v));
  if (apiVersion !== undefined)
    return {
      apiVersion,
      reason: `the cluster serves MutatingAdmissionPolicy at ${withPolicies.map((v) => `${ADMISSION_GROUP}/${v}`).join(", ")}: ${ADMISSION_GROUP}/${apiVersion}`,
    };
  const what =
    served.length === 0
      ? `no version of ${ADMISSION_GROUP}`
      : `${ADMISSION_GROUP} ${served
          .map((v) => `${quoteName(v.version)} (${holdsPolicies(v) ? "with" : "without"} MutatingAdmissionPolicy)`)
          .join(", ")}`;
  throw new PolicyRenderError(
    `the cluster serves no MutatingAdmissionPolicy at ${POLICY_API_VERSIONS.join(" or ")}: it serves ${what}. ` +
      `Kubernetes 1.36 and later serve v1; 1.34 and 1.35 serve v1beta1 only with the kube-apiserver flags ` +
      `--feature-gates=MutatingAdmissionPolicy=true and --runtime-config=${ADMISSION_GROUP}/v1beta1=true`,
  );
}
