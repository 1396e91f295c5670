// `kubectl create --raw <path>/preview -f pod.yaml`, the line the README gives for asking the
// injector in a cluster, run with a real kubectl against the built injector: kubectl sends the
// file's bytes with no Content-Type, and prints an error only when the answer is a Kubernetes
// Status. (Through the API server's service proxy the request and the answer pass unchanged;
// here kubectl's server is the injector itself, so no cluster is needed.)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { findKubectl, runKubectl } from "./kubectl.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";

const found = findKubectl();
const skip = "missing" in found ? found.missing : false;

describe("kubectl create --raw …/preview against the built injector", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "e2e-kubectl-preview-"));
  let certs: TestCerts;
  let injector: Injector;
  let env: NodeJS.ProcessEnv;
  const kubectl = (args: readonly string[]) => runKubectl("path" in found ? found.path : "kubectl", args, env);

  before(async () => {
    certs = await testCertificates();
    injector = new Injector(await freePort(), certs);
    await injector.start();
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "injector",
            cluster: {
              server: injector.url,
              "certificate-authority-data": Buffer.from(certs.caPem).toString("base64"),
            },
          },
        ],
        // A user with a token: one with no credentials at all makes kubectl prompt for a password.
        users: [{ name: "someone", user: { token: "not-checked-by-a-local-injector" } }],
        contexts: [{ name: "injector", context: { cluster: "injector", user: "someone" } }],
        "current-context": "injector",
      }),
    );
    env = { ...process.env, KUBECONFIG: kubeconfig, HOME: dir };
    writeFileSync(
      join(dir, "pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: nginx:1.27\n",
    );
    writeFileSync(
      join(dir, "pod.json"),
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "api" },
        spec: { containers: [{ name: "api", image: "nginx:1.27" }] },
      }),
    );
    writeFileSync(join(dir, "broken.yaml"), "kind: [Pod\n");
  });
  after(async () => {
    await injector.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test("a YAML and a JSON manifest: answered, printed as JSON", async () => {
    for (const [file, name] of [
      ["pod.yaml", "web"],
      ["pod.json", "api"],
    ] as const) {
      const r = await kubectl([
        "create",
        "--raw",
        "/preview?namespace=shop&namespaceLabels=istio-injection=enabled",
        "-f",
        join(dir, file),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const answer = JSON.parse(r.stdout) as {
        items: { name: string; namespace: string; decision: { inject: boolean; reasons: string[] } }[];
      };
      assert.equal(answer.items.length, 1);
      assert.equal(answer.items[0]?.name, name);
      assert.equal(answer.items[0]?.namespace, "shop");
      assert.equal(answer.items[0]?.decision.inject, true, JSON.stringify(answer.items[0]?.decision));
    }
  });

  test("errors are printed by kubectl with their reason and message", async () => {
    const label = await kubectl([
      "create",
      "--raw",
      "/preview?namespaceLabels=istio-injection",
      "-f",
      join(dir, "pod.yaml"),
    ]);
    assert.equal(label.code, 1);
    assert.equal(
      label.stderr.trim(),
      'Error from server (BadRequest): namespace label "istio-injection" is not key=value',
    );
    const broken = await kubectl(["create", "--raw", "/preview", "-f", join(dir, "broken.yaml")]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^Error from server \(BadRequest\): request body: document 1 is not valid YAML/);
    assert.doesNotMatch(broken.stderr, /unknown/);
  });
});
