// The reviews a serving process answers to warm itself up (warm-up.ts): AdmissionReviews of
// Pod CREATEs like the ones a cluster sends, made once, as the bytes of a request's body.
//
// Several kinds, taken in turn, so that the code compiled for them has seen the shapes real
// traffic brings, not one Pod's: a Deployment's Pod with HTTP probes (its probes rewritten), a
// Pod of two containers and an init container with TCP and exec probes, a Pod that opts out
// (answered without a patch), and a Pod whose proxy is customised by annotations. Their values
// are made up; none is a real workload's.

const SERVICE_ACCOUNT_VOLUME = "kube-api-access-w4rm8";

const serviceAccountVolume = {
  name: SERVICE_ACCOUNT_VOLUME,
  projected: {
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
      { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      {
        downwardAPI: {
          items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
        },
      },
    ],
    defaultMode: 420,
  },
};

const serviceAccountMount = {
  name: SERVICE_ACCOUNT_VOLUME,
  readOnly: true,
  mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
};

/** What the API server's defaulting leaves on every container. */
const containerDefaults = {
  terminationMessagePath: "/dev/termination-log",
  terminationMessagePolicy: "File",
  imagePullPolicy: "IfNotPresent",
};

/** What the API server's defaulting leaves on every Pod's spec. */
const specDefaults = {
  restartPolicy: "Always",
  terminationGracePeriodSeconds: 30,
  dnsPolicy: "ClusterFirst",
  serviceAccountName: "default",
  serviceAccount: "default",
  securityContext: {},
  schedulerName: "default-scheduler",
  tolerations: [
    { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
    { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
  ],
  priority: 0,
  enableServiceLinks: true,
  preemptionPolicy: "PreemptLowerPriority",
};

const httpProbe = (path: string, port: string | number, period: number): Record<string, unknown> => ({
  httpGet: { path, port, scheme: "HTTP" },
  initialDelaySeconds: 5,
  timeoutSeconds: 1,
  periodSeconds: period,
  successThreshold: 1,
  failureThreshold: 3,
});

const deploymentPod = {
  metadata: {
    generateName: "web-6f9c7b8d5d-",
    namespace: "shop",
    labels: { app: "web", version: "v1", "pod-template-hash": "6f9c7b8d5d" },
    annotations: { "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z" },
    ownerReferences: [
      {
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        name: "web-6f9c7b8d5d",
        uid: "5b1f2e0c-0000-4000-8000-000000000001",
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  },
  spec: {
    volumes: [serviceAccountVolume],
    containers: [
      {
        name: "web",
        image: "registry.example/shop/web:1.4.2",
        ports: [
          { name: "http", containerPort: 8080, protocol: "TCP" },
          { name: "metrics", containerPort: 9090, protocol: "TCP" },
        ],
        env: [
          { name: "LOG_LEVEL", value: "info" },
          { name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
        ],
        resources: { limits: { cpu: "1", memory: "512Mi" }, requests: { cpu: "100m", memory: "128Mi" } },
        volumeMounts: [serviceAccountMount],
        readinessProbe: httpProbe("/ready", "http", 5),
        livenessProbe: httpProbe("/healthz", 8080, 10),
        ...containerDefaults,
      },
    ],
    ...specDefaults,
  },
};

const twoContainerPod = {
  metadata: {
    generateName: "orders-0-",
    namespace: "shop",
    labels: { app: "orders", "app.kubernetes.io/name": "orders", "statefulset.kubernetes.io/pod-name": "orders-0" },
    annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9102" },
  },
  spec: {
    volumes: [{ name: "data", emptyDir: {} }, serviceAccountVolume],
    initContainers: [
      {
        name: "migrate",
        image: "registry.example/shop/orders-migrate:2.0.0",
        args: ["--to", "latest"],
        resources: {},
        volumeMounts: [{ name: "data", mountPath: "/data" }, serviceAccountMount],
        ...containerDefaults,
      },
    ],
    containers: [
      {
        name: "orders",
        image: "registry.example/shop/orders:2.0.0",
        ports: [{ name: "grpc", containerPort: 7070, protocol: "TCP" }],
        resources: { requests: { cpu: "250m", memory: "256Mi" } },
        volumeMounts: [{ name: "data", mountPath: "/data" }, serviceAccountMount],
        readinessProbe: { tcpSocket: { port: 7070 }, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 },
        livenessProbe: { exec: { command: ["/bin/healthcheck"] }, periodSeconds: 10, failureThreshold: 3 },
        ...containerDefaults,
      },
      {
        name: "exporter",
        image: "registry.example/tools/exporter:0.9",
        ports: [{ containerPort: 9102, protocol: "TCP" }],
        resources: {},
        volumeMounts: [serviceAccountMount],
        ...containerDefaults,
      },
    ],
    ...specDefaults,
  },
};

const optedOutPod = {
  metadata: {
    generateName: "batch-",
    namespace: "jobs",
    labels: { "job-name": "batch" },
    annotations: { "sidecar.istio.io/inject": "false" },
  },
  spec: {
    volumes: [serviceAccountVolume],
    containers: [
      {
        name: "batch",
        image: "registry.example/jobs/batch:3",
        command: ["/bin/run"],
        resources: {},
        volumeMounts: [serviceAccountMount],
        ...containerDefaults,
      },
    ],
    ...specDefaults,
    restartPolicy: "Never",
  },
};

const customisedPod = {
  metadata: {
    generateName: "gateway-",
    namespace: "edge",
    labels: { app: "gateway", "service.istio.io/canonical-name": "gateway" },
    annotations: {
      "sidecar.istio.io/proxyCPU": "200m",
      "sidecar.istio.io/proxyMemory": "256Mi",
      "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
      "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\n",
    },
  },
  spec: {
    volumes: [serviceAccountVolume],
    containers: [
      {
        name: "gateway",
        image: "registry.example/edge/gateway:5.1",
        ports: [{ name: "https", containerPort: 8443, protocol: "TCP" }],
        resources: {},
        volumeMounts: [serviceAccountMount],
        readinessProbe: httpProbe("/ready", 8443, 5),
        ...containerDefaults,
      },
    ],
    ...specDefaults,
  },
};

function review(index: number, pod: { readonly metadata: { readonly namespace: string } }): string {
  return JSON.stringify({
    kind: "AdmissionReview",
    apiVersion: "admission.k8s.io/v1",
    request: {
      uid: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      namespace: pod.metadata.namespace,
      operation: "CREATE",
      userInfo: {
        username: "system:serviceaccount:kube-system:replicaset-controller",
        uid: "00000000-0000-4000-8000-00000000000a",
        groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
      },
      object: { kind: "Pod", apiVersion: "v1", ...pod },
      oldObject: null,
      dryRun: false,
      options: { kind: "CreateOptions", apiVersion: "meta.k8s.io/v1" },
    },
  });
}

/**
 * The warm-up's request bodies, in the order they are sent round: the common kinds more often
 * than the rare ones.
 */
export function warmUpReviews(): readonly Buffer[] {
  const kinds = [deploymentPod, twoContainerPod, deploymentPod, customisedPod, deploymentPod, optedOutPod];
  return kinds.map((pod, i) => Buffer.from(review(i + 1, pod), "utf8"));
}
