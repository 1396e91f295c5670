// A container as Go's encoding/json writes it once decoded into corev1.Container: a field
// tagged `omitempty` at its zero value ("", 0, false, an empty list or map, null) is left out;
// a pointer field (SecurityContext's, a Probe's terminationGracePeriodSeconds, restartPolicy)
// only when null; a field with no `omitempty` (a name, a port, a mount path) never.
//
// Why: Istio merges a Pod's own istio-proxy (or istio-init, or an app container a template also
// writes) over the template's as that JSON. `image: ""`, `capabilities: null`, `args: []` or an
// env var's `value: ""` (what a Helm value left unset renders) are then absent, and the
// template's image, drop ALL, args or value stay; taken as written, they would blank them (an
// image "" the API server refuses, a proxy that keeps every capability).
//
// One table per type of the Container tree (k8s.io/api core/v1), the fields whose rule is not
// the default `omitempty` by value: `keep` (no omitempty), `pointer`, or a nested type. Any
// other field is omitempty by value, as Kubernetes' own are; one unknown to Kubernetes (which
// Go's decoding drops whatever its value) is left out the same way when zero, else kept.
import { isMap } from "./own.js";

type Rule = "keep" | "pointer" | { readonly type: string; readonly pointer?: true };
type Table = Readonly<Record<string, Rule>>;

const ptr = (type: string): Rule => ({ type, pointer: true });
const items = (type: string): Rule => ({ type });

const TYPES: Readonly<Record<string, Table>> = {
  Container: {
    name: "keep",
    ports: items("ContainerPort"),
    envFrom: items("EnvFromSource"),
    env: items("EnvVar"),
    resources: items("ResourceRequirements"),
    resizePolicy: items("Keep"),
    restartPolicy: "pointer",
    restartPolicyRules: items("Keep"),
    volumeMounts: items("VolumeMount"),
    volumeDevices: items("Keep"),
    livenessProbe: ptr("Probe"),
    readinessProbe: ptr("Probe"),
    startupProbe: ptr("Probe"),
    lifecycle: ptr("Lifecycle"),
    securityContext: ptr("SecurityContext"),
  },
  ContainerPort: { containerPort: "keep" },
  EnvVar: { name: "keep", valueFrom: ptr("EnvVarSource") },
  EnvVarSource: {
    fieldRef: ptr("ObjectFieldSelector"),
    resourceFieldRef: ptr("ResourceFieldSelector"),
    configMapKeyRef: ptr("KeySelector"),
    secretKeyRef: ptr("KeySelector"),
    fileKeyRef: ptr("Keep"),
  },
  ObjectFieldSelector: { fieldPath: "keep" },
  ResourceFieldSelector: { resource: "keep", divisor: "keep" },
  KeySelector: { key: "keep", optional: "pointer" },
  EnvFromSource: { configMapRef: ptr("EnvSource"), secretRef: ptr("EnvSource") },
  EnvSource: { optional: "pointer" },
  // A struct, which Go writes even when empty; left out here when empty, as overrides.ts writes
  // `resources` on every recorded container anyway.
  ResourceRequirements: {},
  VolumeMount: { name: "keep", mountPath: "keep", recursiveReadOnly: "pointer", mountPropagation: "pointer" },
  Probe: {
    exec: ptr("ExecAction"),
    httpGet: ptr("HTTPGetAction"),
    tcpSocket: ptr("TCPSocketAction"),
    grpc: ptr("GRPCAction"),
    terminationGracePeriodSeconds: "pointer",
  },
  Lifecycle: { postStart: ptr("LifecycleHandler"), preStop: ptr("LifecycleHandler"), stopSignal: "pointer" },
  LifecycleHandler: {
    exec: ptr("ExecAction"),
    httpGet: ptr("HTTPGetAction"),
    tcpSocket: ptr("TCPSocketAction"),
    sleep: ptr("Keep"),
  },
  ExecAction: {},
  HTTPGetAction: { port: "keep", httpHeaders: items("Keep") },
  TCPSocketAction: { port: "keep" },
  // service is a *string without omitempty: written null when unset.
  GRPCAction: { port: "keep", service: "keep" },
  SecurityContext: {
    capabilities: ptr("Capabilities"),
    privileged: "pointer",
    seLinuxOptions: ptr("SELinuxOptions"),
    windowsOptions: ptr("WindowsOptions"),
    runAsUser: "pointer",
    runAsGroup: "pointer",
    runAsNonRoot: "pointer",
    readOnlyRootFilesystem: "pointer",
    allowPrivilegeEscalation: "pointer",
    procMount: "pointer",
    seccompProfile: ptr("Profile"),
    appArmorProfile: ptr("Profile"),
  },
  Capabilities: {},
  SELinuxOptions: {},
  WindowsOptions: {
    gmsaCredentialSpecName: "pointer",
    gmsaCredentialSpec: "pointer",
    runAsUserName: "pointer",
    hostProcess: "pointer",
  },
  Profile: { type: "keep", localhostProfile: "pointer" },
};

/** Go's zero value of an omitempty field, as JSON gives it. */
function isZero(v: unknown): boolean {
  if (v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return isMap(v) && Object.keys(v).length === 0;
}

/** `v`, a value of `type` (a struct; "Keep": left as it is), with its zero omitempty fields left out. */
function marshalled(v: unknown, type: string): unknown {
  const table = TYPES[type];
  if (table === undefined || !isMap(v)) return v;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(v)) {
    const value = v[key];
    const rule = Object.hasOwn(table, key) ? table[key] : undefined;
    let next: unknown = value;
    if (rule === "keep") continue;
    if (rule === "pointer") {
      if (value !== null) continue;
      next = undefined;
    } else if (rule === undefined) {
      if (isZero(value)) next = undefined;
    } else if (value === null || (rule.pointer !== true && isZero(value))) {
      next = undefined;
    } else if (Array.isArray(value)) {
      const list = value.map((item: unknown) => marshalled(item, rule.type));
      next = list.some((item, i) => item !== value[i]) ? list : value;
    } else {
      next = marshalled(value, rule.type);
    }
    if (next === value) continue;
    out ??= { ...v };
    if (next === undefined) delete out[key];
    else out[key] = next;
  }
  return out ?? v;
}

/**
 * The container's fields as Go writes them after decoding it (see the header), as a map: the
 * caller picks them in Go's order. The container itself when nothing is left out.
 */
export function goMarshalledFields(c: object): Readonly<Record<string, unknown>> {
  const out = marshalled(c, "Container");
  return isMap(out) ? out : {};
}
