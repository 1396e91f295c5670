// A workload's plain (unquoted) scalars, read as istioctl kube-inject reads them: decoded into
// the Go type by sigs.k8s.io/yaml over go-yaml v2, so by YAML 1.1 rules (octal `0400`,
// `yes`/`on` booleans, `1_000`), and as their text where the Go field is a string (an env
// value, a command or args item, a label or node selector value). Istio prints what it
// decoded; our reading must give the same Pod. Other documents keep the YAML 1.2 reading.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import type { Pod } from "../../../src/kube/types.js";
import { formatManifest, injectManifest, parseManifest } from "../../../src/manifest.js";

const deployment = (podSpec: string[], extra: string[] = []): string =>
  [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata: {name: web}",
    "spec:",
    ...extra,
    "  selector: {matchLabels: {app: web}}",
    "  template:",
    "    metadata:",
    "      labels: {app: web, version: 1.10}",
    "    spec:",
    ...podSpec.map((l) => `      ${l}`),
  ].join("\n");

function podSpecOf(doc: unknown): NonNullable<Pod["spec"]> {
  const d = doc as { spec: { template: Pod } };
  return d.spec.template.spec!;
}

test("numbers with a leading zero in a workload are octal, as a file mode written 0400 means", () => {
  const [doc] = parseManifest(
    deployment([
      "containers: [{name: app, image: a}]",
      "volumes:",
      "- {name: key, secret: {secretName: key, defaultMode: 0400}}",
      "- {name: conf, configMap: {name: conf, defaultMode: 0755, items: [{key: k, path: k, mode: 0o644}]}}",
    ]),
    "test",
  );
  const volumes = podSpecOf(doc).volumes as { secret?: unknown; configMap?: unknown }[];
  assert.deepEqual(volumes[0]?.secret, { secretName: "key", defaultMode: 256 });
  assert.deepEqual(volumes[1]?.configMap, {
    name: "conf",
    defaultMode: 493,
    items: [{ key: "k", path: "k", mode: 420 }],
  });
});

test("YAML 1.1 booleans in a workload's boolean fields and octal integers are read as Go reads them", () => {
  const [doc] = parseManifest(
    deployment(
      [
        "containers:",
        "- name: app",
        "  image: a",
        "  stdin: yes",
        "  tty: off",
        "  volumeMounts: [{name: v, mountPath: /v, readOnly: on}]",
        "volumes: [{name: v, emptyDir: {}}]",
      ],
      ["  replicas: 010", "  revisionHistoryLimit: ~"],
    ),
    "test",
  );
  const d = doc as { spec: Record<string, unknown> };
  assert.equal(d.spec.replicas, 8);
  assert.equal(d.spec.revisionHistoryLimit, null);
  const app = podSpecOf(doc).containers[0] as unknown as Record<string, unknown>;
  assert.equal(app.stdin, true);
  assert.equal(app.tty, false);
  assert.deepEqual(app.volumeMounts, [{ name: "v", mountPath: "/v", readOnly: true }]);
});

test("a YAML 1.1 boolean word in a string field is the text of the boolean, as istioctl prints it", () => {
  const [doc] = parseManifest(
    deployment(["containers: [{name: y, image: on, imagePullPolicy: yes, stdin: yes}]"]),
    "test",
  );
  assert.deepEqual(podSpecOf(doc).containers[0], {
    name: "true",
    image: "true",
    imagePullPolicy: "true",
    stdin: true,
  });
});

test("a scalar in a Go string field of a workload is its text: env values, command and args, labels, node selectors", () => {
  const [doc] = parseManifest(
    deployment([
      "nodeSelector: {gpu: yes, zone: 010}",
      "containers:",
      "- name: app",
      "  image: a",
      "  command: [run, 8080, on]",
      "  args: [--ratio, 1e6, --flag, true]",
      "  env:",
      "  - {name: ALLOW, value: true}",
      "  - {name: PORT, value: 8080}",
      "  - {name: MODE, value: 0755}",
      "  - {name: EMPTY, value: ~}",
      '  - {name: QUOTED, value: "0755"}',
    ]),
    "test",
  );
  const spec = podSpecOf(doc);
  assert.deepEqual(spec.nodeSelector, { gpu: "true", zone: "8" });
  const app = spec.containers[0]!;
  assert.deepEqual(app.command, ["run", "8080", "true"]);
  assert.deepEqual(app.args, ["--ratio", "1e+06", "--flag", "true"]);
  assert.deepEqual(
    app.env?.map((e) => e.value),
    ["true", "8080", "493", "", "0755"],
  );
  assert.deepEqual((doc as { spec: { template: Pod } }).spec.template.metadata?.labels, {
    app: "web",
    version: "1.1",
  });
  assert.deepEqual((doc as { spec: { selector: unknown } }).spec.selector, { matchLabels: { app: "web" } });
});

test("a workload with an unquoted boolean env value is injected, the value as the string Istio gives it", () => {
  const { docs } = injectManifest(
    deployment(["containers: [{name: app, image: a, env: [{name: ALLOW, value: true}]}]"]),
    "test",
    "default",
    DEFAULT_CONFIG,
  );
  const containers = podSpecOf(docs[0]).containers;
  assert.deepEqual(
    containers.map((c) => c.name),
    ["app", "istio-proxy"],
  );
  assert.deepEqual(containers[0]?.env, [{ name: "ALLOW", value: "true" }]);
});

test("workloads in a List are read the same way; documents that are no workload keep the YAML 1.2 reading", () => {
  const docs = parseManifest(
    [
      "apiVersion: v1",
      "kind: List",
      "items:",
      "- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: a, stdin: yes}]}}",
      "- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {mode: 0755}}",
      "---",
      "apiVersion: example.com/v1",
      "kind: Widget",
      "spec: {mode: 0755, enabled: yes}",
    ].join("\n"),
    "test",
  );
  const list = docs[0] as { items: { spec?: { containers: { stdin: unknown }[] }; data?: unknown }[] };
  assert.equal(list.items[0]?.spec?.containers[0]?.stdin, true);
  assert.deepEqual(list.items[1]?.data, { mode: 755 });
  assert.deepEqual((docs[1] as { spec: unknown }).spec, { mode: 755, enabled: "yes" });
});

test("the printed manifest quotes a string a YAML 1.1 reader (kubectl, istioctl) would read as something else", () => {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", labels: { enabled: "yes", switch: "on", count: "1_000", day: "2024-01-01", plain: "web" } },
    spec: {
      containers: [
        {
          name: "a",
          image: "a",
          env: [
            { name: "MODE", value: "0755" },
            { name: "N", value: "n" },
          ],
        },
      ],
    },
  };
  const text = formatManifest([pod], "yaml");
  for (const line of [
    'enabled: "yes"',
    'switch: "on"',
    'count: "1_000"',
    'day: "2024-01-01"',
    "plain: web",
    'value: "0755"',
    'value: "n"',
  ])
    assert.ok(text.includes(line), `${line} in:\n${text}`);
  assert.deepEqual(parseManifest(text, "printed"), [pod], "read back as written");
});

test("YAML 1.1 merge keys (<<) are merged, as go-yaml merges them, in a manifest and in a ProxyConfig annotation", () => {
  const text = [
    "x-common: &common",
    "  image: example.com/app:1",
    "  ports: [{containerPort: 80}]",
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    "  name: p",
    "  annotations:",
    "    proxy.istio.io/config: |",
    "      base: &b {A: '1'}",
    "      <<: {concurrency: 2}",
    "      proxyMetadata:",
    "        <<: *b",
    "        C: '3'",
    "spec:",
    "  containers:",
    "  - <<: *common",
    "    name: app",
  ].join("\n");
  const [pod] = parseManifest(text, "merge.yaml") as Pod[];
  assert.deepEqual(pod?.spec?.containers[0], {
    image: "example.com/app:1",
    ports: [{ containerPort: 80 }],
    name: "app",
  });
  const injected = injectManifest(text, "merge.yaml", "default", DEFAULT_CONFIG).docs[0] as Pod;
  const proxy = [...(injected.spec?.initContainers ?? []), ...(injected.spec?.containers ?? [])].find(
    (c) => c.name === "istio-proxy",
  );
  const env = (name: string): string | undefined => proxy?.env?.find((e) => e.name === name)?.value;
  assert.equal(env("A"), "1");
  assert.equal(env("C"), "3");
  assert.deepEqual(JSON.parse(env("PROXY_CONFIG") ?? "{}"), { concurrency: 2, proxyMetadata: { A: "1", C: "3" } });
});

test("a numeric field takes what only YAML 1.1 reads as a number: 8_080, 0b11 (Istio admits them as numbers)", () => {
  const text = deployment(
    [
      "terminationGracePeriodSeconds: 3_0",
      "containers:",
      "- name: app",
      "  image: example.com/app:1",
      "  ports: [{containerPort: 8_080, name: http}]",
      "  readinessProbe: {httpGet: {port: 8_080, path: /r}, periodSeconds: 1_0}",
      "  livenessProbe: {tcpSocket: {port: 0b1111110010000}}",
      "  env: [{name: A, value: 8_080}]",
    ],
    ["  replicas: 0b11"],
  );
  const [doc] = parseManifest(text, "n.yaml") as { spec: { replicas: unknown; template: { spec: unknown } } }[];
  assert.equal(doc?.spec.replicas, 3);
  assert.deepEqual(doc?.spec.template.spec, {
    terminationGracePeriodSeconds: 30,
    containers: [
      {
        name: "app",
        image: "example.com/app:1",
        ports: [{ containerPort: 8080, name: "http" }],
        readinessProbe: { httpGet: { port: 8080, path: "/r" }, periodSeconds: 10 },
        livenessProbe: { tcpSocket: { port: 8080 } },
        // A string field takes the YAML 1.1 scalar's text, as before.
        env: [{ name: "A", value: "8080" }],
      },
    ],
  });
});

test("a ReplicationController's selector is a map of strings: YAML 1.1 words are their text", () => {
  const text = [
    "apiVersion: v1",
    "kind: ReplicationController",
    "metadata: {name: web}",
    "spec:",
    "  selector: {app: web, live: yes}",
    "  template:",
    "    metadata: {labels: {app: web, live: yes}}",
    "    spec: {containers: [{name: app, image: example.com/app:1}]}",
  ].join("\n");
  const [doc] = parseManifest(text, "rc.yaml") as { spec: { selector: unknown } }[];
  assert.deepEqual(doc?.spec.selector, { app: "web", live: "true" });
});

test("a number or boolean in a string field the engine reads is its text, as sigs.k8s.io/yaml writes it", () => {
  // Istio's kube-inject injects this Deployment (each value turned into its text); the engine
  // reads these fields as strings and refused them as values of the wrong type.
  const manifest = deployment([
    "containers:",
    "- name: 0x1F",
    "  image: true",
    "  imagePullPolicy: 5",
    "  restartPolicy: 1e3",
    "  ports: [{containerPort: 80, protocol: 6, hostIP: 7}]",
    "  volumeMounts: [{name: yes, mountPath: 1_000}]",
  ]);
  const { docs } = injectManifest(manifest, "test", "default", DEFAULT_CONFIG);
  const app = podSpecOf(docs[0]).containers.find((c) => c.name === "31");
  assert.ok(app, "the container named 0x1F is named 31");
  assert.equal(app.image, "true");
  assert.equal(app.imagePullPolicy, "5");
  assert.equal(app.restartPolicy, "1000");
  assert.deepEqual(app.ports, [{ containerPort: 80, protocol: "6", hostIP: "7" }]);
  assert.deepEqual(app.volumeMounts, [{ name: "true", mountPath: "1000" }]);
});

test("a Pod or pod template without a spec is injected as Go's zero PodSpec, as kube-inject does", () => {
  for (const manifest of [
    "apiVersion: v1\nkind: Pod\nmetadata: {name: web}",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {metadata: {labels: {app: web}}}}",
    "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: web}\nspec: {jobTemplate: {spec: {template: {spec: null}}}}",
  ]) {
    const { docs, injected } = injectManifest(manifest, "test", "default", DEFAULT_CONFIG);
    assert.equal(injected[0]?.result.decision.inject, true, manifest);
    assert.match(JSON.stringify(docs[0]), /"name":"istio-proxy"/, manifest);
  }
});

test("a null in a string field stays null, as Go leaves a pointer nil (a gRPC probe's service)", () => {
  const [doc] = parseManifest(
    deployment([
      "containers: [{name: app, image: a, readinessProbe: {grpc: {port: 9090, service: ~}}, workingDir: null}]",
    ]),
    "test",
  );
  const app = podSpecOf(doc).containers[0] as unknown as Record<string, unknown>;
  assert.deepEqual(app.readinessProbe, { grpc: { port: 9090, service: null } });
});

test("a YAML directive before a document's --- (%YAML, %TAG) is read as YAML reads it: the workload injected as without it", () => {
  const pod = (value: string): string =>
    deployment([`containers: [{name: app, image: a, env: [{name: A, value: ${value}}]}]`]);
  for (const [text, plain] of [
    [`%YAML 1.1\n---\n${pod("yes")}`, pod("yes")],
    [`%YAML 1.2\n---\n${pod("yes")}`, pod("yes")],
    [`%TAG !k! tag:yaml.org,2002:\n---\n${pod("!k!str yes")}`, pod("!!str yes")],
  ] as const) {
    const directive = text.split("\n", 1)[0];
    const { docs, injected } = injectManifest(text, "test", "demo", DEFAULT_CONFIG);
    assert.equal(injected.length, 1, `${directive}: injected`);
    assert.deepEqual(docs, injectManifest(plain, "test", "demo", DEFAULT_CONFIG).docs, directive);
  }
});
