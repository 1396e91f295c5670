// The values of an injected Pod that depend on the Pod, as CEL over the admitted `object`
// (and `request`), each computing what the engine computes (the file named beside each):
// - the workload (owner.ts): a Pod with generateName and a controller reference belongs to
//   that controller, a ReplicaSet named <deployment>-<pod-template-hash> to the Deployment, one
//   named with rollouts-pod-template-hash to the Rollout, a ReplicationController with a
//   deploymentconfig label to the DeploymentConfig, a Job named <cronjob>-<8 to 10 digits> to
//   the CronJob; otherwise the Pod itself;
// - ISTIO_META_WORKLOAD_NAME (params.ts): the service.istio.io/workload-name label, else the
//   workload's name; ISTIO_META_OWNER (template-parts.ts): its kubernetes:// URL;
// - ISTIO_META_POD_PORTS (template-parts.ts): every port of every container as a JSON object
//   of name, hostPort, containerPort, protocol, hostIP (each only when set), one per line, the
//   comma leading every line after the first (POD_PORTS_SEPARATOR);
// - ISTIO_META_APP_CONTAINERS: the containers' names joined by commas;
// - the canonical labels (template-parts.ts): the first non-empty of the canonical label,
//   app.kubernetes.io/name and app, else the workload's name, cut to 63 characters and trimmed
//   of leading and trailing "-", "_" and "."; the revision likewise, else "latest";
// - kubectl's default container: the first container's name.
// They are the policy's variables: each is evaluated once per admission, when first read.
import { A, L } from "../injection/annotations.js";
import { ROLLOUT_HASH_LABEL } from "../injection/owner.js";
import { POD_PORTS_SEPARATOR } from "../injection/template-parts.js";
import { str } from "./cel.js";
import type { SlotEnv } from "./parts.js";

/** A MutatingAdmissionPolicy variable. */
export interface PolicyVariable {
  readonly name: string;
  readonly expression: string;
}

const v = (name: string): string => `variables.${name}`;
const label = (key: string): string => `${v("labels")}[?${str(key)}].orValue("")`;
const firstNonEmpty = (values: readonly string[], fallback: string): string => {
  const xs = `[${values.join(", ")}].filter(s, s != "")`;
  return `size(${xs}) == 0 ? ${fallback} : ${xs}[0]`;
};
const trimSuffix = (s: string, suffix: string): string =>
  `(${s}.endsWith(${suffix}) ? ${s}.substring(0, size(${s}) - size(${suffix})) : ${s})`;

/** The variables, in the order they may refer to each other. */
export const POD_VARIABLES: readonly PolicyVariable[] = [
  { name: "labels", expression: "object.metadata.?labels.orValue({})" },
  { name: "annotations", expression: "object.metadata.?annotations.orValue({})" },
  {
    name: "podNamespace",
    expression: 'object.metadata.?namespace.orValue("") != "" ? object.metadata.namespace : request.namespace',
  },
  {
    name: "controller",
    expression:
      'object.metadata.?generateName.orValue("") != "" ? ' +
      "object.metadata.?ownerReferences.orValue([]).filter(r, r.?controller.orValue(false)) : []",
  },
  { name: "podTemplateHash", expression: label(L.podTemplateHash) },
  { name: "rolloutHash", expression: label(ROLLOUT_HASH_LABEL) },
  { name: "deploymentConfig", expression: label(L.deploymentConfig) },
  {
    name: "workload",
    expression: (() => {
      const r = `${v("controller")}[0]`;
      const hash = v("podTemplateHash");
      const rollout = v("rolloutHash");
      const dc = v("deploymentConfig");
      const ref = (apiVersion: string, kind: string, name: string): string =>
        `{"apiVersion": string(${apiVersion}), "kind": string(${kind}), "name": string(${name})}`;
      return (
        `size(${v("controller")}) == 0 ? ${ref('"v1"', '"Pod"', 'object.metadata.?name.orValue("")')} : ` +
        `${r}.kind == "ReplicaSet" && ${hash} != "" && ${r}.name.endsWith(${hash}) ? ` +
        `${ref(`${r}.apiVersion`, '"Deployment"', trimSuffix(`${r}.name`, `"-" + ${hash}`))} : ` +
        `${r}.kind == "ReplicaSet" && ${rollout} != "" && ${r}.name.endsWith(${rollout}) ? ` +
        `${ref('"v1alpha1"', '"Rollout"', trimSuffix(`${r}.name`, `"-" + ${rollout}`))} : ` +
        `${r}.kind == "ReplicationController" && ${dc} != "" ? ` +
        `${ref(`${r}.apiVersion`, '"DeploymentConfig"', dc)} : ` +
        `${r}.kind == "Job" && ${r}.name.matches("^.+-[0-9]{8,10}$") ? ` +
        `${ref('"batch/v1"', '"CronJob"', `${r}.name.substring(0, ${r}.name.lastIndexOf("-"))`)} : ` +
        ref(`${r}.apiVersion`, `${r}.kind`, `${r}.name`)
      );
    })(),
  },
  {
    name: "workloadName",
    expression: `${v("workload")}.name != "" ? ${v("workload")}.name : object.metadata.?name.orValue("")`,
  },
  {
    name: "canonicalName",
    expression: firstNonEmpty(
      [label(L.canonicalName), label("app.kubernetes.io/name"), label("app")],
      v("workloadName"),
    ),
  },
  {
    name: "canonicalNameTrimmed",
    expression:
      `(size(${v("canonicalName")}) > 63 ? ${v("canonicalName")}.substring(0, 63) : ${v("canonicalName")})` +
      `.find("(?s)[^-_.](.*[^-_.])?")`,
  },
  {
    name: "canonicalRevision",
    expression: firstNonEmpty(
      [label(L.canonicalRevision), label("app.kubernetes.io/version"), label("version")],
      '"latest"',
    ),
  },
  {
    name: "portLines",
    expression:
      "object.spec.containers.map(c, c.?ports.orValue([]).map(p, " +
      '"{" + [' +
      `p.?name.orValue("") != "" ? "\\"name\\":\\"" + p.name + "\\"" : "", ` +
      `p.?hostPort.orValue(0) != 0 ? "\\"hostPort\\":" + string(p.hostPort) : "", ` +
      `has(p.containerPort) ? "\\"containerPort\\":" + string(p.containerPort) : "", ` +
      `p.?protocol.orValue("") != "" ? "\\"protocol\\":\\"" + p.protocol + "\\"" : "", ` +
      `p.?hostIP.orValue("") != "" ? "\\"hostIP\\":\\"" + p.hostIP + "\\"" : ""` +
      '].filter(s, s != "").join(",") + "}").join(' +
      str(POD_PORTS_SEPARATOR) +
      ')).filter(s, s != "")',
  },
  {
    name: "podPorts",
    expression: `size(${v("portLines")}) == 0 ? "[\\n]" : "[\\n    " + ${v("portLines")}.join(${str(POD_PORTS_SEPARATOR)}) + "\\n]"`,
  },
  { name: "appContainers", expression: 'object.spec.containers.map(c, c.name).join(",")' },
];

/** The CEL of each Pod-dependent proxy env value. */
export const ENV_VALUE: Readonly<Record<SlotEnv, string>> = {
  ISTIO_META_POD_PORTS: v("podPorts"),
  ISTIO_META_APP_CONTAINERS: v("appContainers"),
  ISTIO_META_WORKLOAD_NAME: `${v("labels")}[?${str(L.workloadName)}].orValue("") != "" ? ${v("labels")}[${str(L.workloadName)}] : ${v("workloadName")}`,
  ISTIO_META_OWNER:
    `"kubernetes://apis/" + ${v("workload")}.apiVersion + "/namespaces/" + ${v("podNamespace")} + "/" + ` +
    `${v("workload")}.kind.lowerAscii() + "s/" + ${v("workloadName")}`,
};

/** The CEL of each Pod-dependent label value. */
export const LABEL_VALUE: Readonly<Record<string, string>> = {
  [L.canonicalName]: v("canonicalNameTrimmed"),
  [L.canonicalRevision]: v("canonicalRevision"),
};

/** kubectl's default container annotations: written when absent, with the first container's name. */
export const DEFAULT_CONTAINER_ANNOTATIONS: readonly string[] = [A.defaultLogsContainer, A.defaultContainer];
export const FIRST_CONTAINER = "object.spec.containers[0].name";
export const ANNOTATIONS_VAR = v("annotations");
