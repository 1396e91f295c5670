// Unquoted annotation values in a manifest, read as istioctl kube-inject reads them
// (sigs.k8s.io/yaml over go-yaml v2 into a string field). The table was produced by
// sigs.k8s.io/yaml v1.6.0 itself, unmarshalling "annotations: {a: <value>}" into a
// map[string]string.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { InjectionError } from "../../../src/injection/types.js";
import { injectManifest, parseManifest } from "../../../src/manifest.js";
import { yaml11Text } from "../../../src/injection/yaml11.js";

const SIGS_YAML: readonly [string, string][] = [
  ["2", "2"],
  ["0.5", "0.5"],
  ["2.50", "2.5"],
  ["100.0", "100"],
  ["1e6", "1e+06"],
  ["1e3", "1000"],
  ["1.5e-5", "1.5e-05"],
  ["123456.0", "123456"],
  ["1234567.0", "1.234567e+06"],
  ["3.14159265", "3.1415927"],
  ["0.1", "0.1"],
  ["yes", "true"],
  ["No", "false"],
  ["on", "true"],
  ["OFF", "false"],
  ["y", "true"],
  ["~", ""],
  ["null", ""],
  ["", ""],
  ["0x1F", "31"],
  ["0o17", "15"],
  ["010", "8"],
  ["08", "8"],
  ["0b101", "5"],
  ["1_000", "1000"],
  ["-0x10", "-16"],
  ["+5", "5"],
  [".5", "0.5"],
  [".inf", "+Inf"],
  ["-.Inf", "-Inf"],
  [".nan", "NaN"],
  ["9223372036854775807", "9223372036854775807"],
  ["9223372036854775808", "9223372036854775808"],
  ["18446744073709551616", "1.8446744e+19"],
  ["2024-01-01", "2024-01-01"],
  ["2024-1-2 10:00:00", "2024-1-2 10:00:00"],
  ["1:30", "1:30"],
  ["100m", "100m"],
  ["1Gi", "1Gi"],
  ["-1", "-1"],
  ["1e39", "+Inf"],
  ["1.0e+2", "100"],
  ["+.5", "0.5"],
  ["-0", "0"],
  ["0", "0"],
  ["00", "0"],
  ["-0.0", "-0"],
  ["1e-7", "1e-07"],
];

test("a plain scalar becomes the text sigs.k8s.io/yaml gives a string field", () => {
  for (const [plain, text] of SIGS_YAML) assert.equal(yaml11Text(plain), text, JSON.stringify(plain));
});

test("unquoted annotation values are strings; quoted ones and block scalars are left as written", () => {
  const [doc] = parseManifest(
    [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: p",
      "  labels: {version: 2}",
      "  annotations:",
      "    sidecar.istio.io/proxyCPU: 2",
      "    sidecar.istio.io/proxyMemory: 1e3",
      "    sidecar.istio.io/inject: yes",
      '    quoted: "010"',
      "    empty:",
      "    block: |",
      "      010",
      "spec:",
      "  containers: [{name: app, image: a, ports: [{containerPort: 8080}]}]",
    ].join("\n"),
    "test",
  );
  assert.deepEqual(doc, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "p",
      // A label value is a Go string too (manifest-yaml11.test.ts).
      labels: { version: "2" },
      annotations: {
        "sidecar.istio.io/proxyCPU": "2",
        "sidecar.istio.io/proxyMemory": "1000",
        "sidecar.istio.io/inject": "true",
        quoted: "010",
        empty: "",
        block: "010\n",
      },
    },
    spec: { containers: [{ name: "app", image: "a", ports: [{ containerPort: 8080 }] }] },
  });
});

test("a Deployment whose annotations are unquoted numbers is injected with them", () => {
  const manifest = [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata: {name: web}",
    "spec:",
    "  selector: {matchLabels: {app: web}}",
    "  template:",
    "    metadata:",
    "      labels: {app: web}",
    "      annotations: {sidecar.istio.io/proxyCPU: 2, sidecar.istio.io/proxyMemoryLimit: 0x40000000, status.sidecar.istio.io/port: 15021}",
    "    spec:",
    "      containers: [{name: web, image: nginx}]",
  ].join("\n");
  const { docs } = injectManifest(manifest, "test", "default", DEFAULT_CONFIG);
  const text = JSON.stringify(docs[0]);
  assert.ok(
    text.includes('"resources":{"requests":{"cpu":"2"},"limits":{"memory":"1073741824"}}'),
    "resources from the annotations",
  );
  assert.ok(
    text.includes('"readinessProbe":{"httpGet":{"path":"/healthz/ready","port":15021}'),
    "status port from the annotation",
  );
});

test("an unquoted value Istio refuses is still refused, naming the annotation", () => {
  const manifest =
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {sidecar.istio.io/interceptionMode: 1}\nspec: {containers: [{name: a, image: a}]}\n";
  assert.throws(
    () => injectManifest(manifest, "test", "default", DEFAULT_CONFIG),
    (e: unknown) =>
      e instanceof InjectionError &&
      e.message === 'invalid annotation sidecar.istio.io/interceptionMode="1": must be REDIRECT, TPROXY or NONE',
  );
});
