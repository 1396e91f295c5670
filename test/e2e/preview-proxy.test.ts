// The README's in-cluster line, end to end: `kubectl create --raw
// /api/v1/namespaces/NS/services/https:sidecar-injector:admin/proxy/preview -f pod.yaml` with a
// real kubectl, through a real kube-apiserver's service proxy, to the built injector's admin
// port. There is no kubelet or endpoints controller here, so the Service's Endpoints are written
// by hand, naming this machine's own non-loopback address (the API server refuses loopback
// endpoints), where the injector listens.
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { after, before, describe, test } from "node:test";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";
import { findKubectl, runKubectl } from "./kubectl.js";

const NS = "sidecar-injector-system";

/** An IPv4 address of this machine that is not loopback or link-local. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === "IPv4" && !a.internal && !a.address.startsWith("169.254.")) return a.address;
    }
  }
  return undefined;
}

const kubectl = findKubectl();
const address = hostAddress();
const reason =
  "missing" in kubectl
    ? kubectl.missing
    : address === undefined
      ? "no non-loopback IPv4 address for the Service's endpoint"
      : undefined;
const { cluster, skip } =
  reason === undefined
    ? await clusterForSuite("end-to-end preview through the service proxy")
    : { cluster: undefined, skip: reason };

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

describe("kubectl create --raw …/services/https:sidecar-injector:admin/proxy/preview", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "e2e-preview-proxy-"));
  let certs: TestCerts;
  let injector: Injector;
  let adminPort = 0;
  const raw = (path: string, file: string) =>
    runKubectl("path" in kubectl ? kubectl.path : "kubectl", ["create", "--raw", path, "-f", file], {
      ...kube().env,
      HOME: dir,
    });

  before(async () => {
    certs = await testCertificates();
    adminPort = await freePort();
    // Listening on every address, so that the API server reaches it at the endpoint's.
    injector = new Injector(await freePort(), {
      certs,
      args: ["--host", "0.0.0.0", "--admin-port", String(adminPort)],
    });
    await injector.start();
    const c = kube();
    await c.createNamespace(NS);
    const svc = await c.request("POST", `/api/v1/namespaces/${NS}/services`, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "sidecar-injector" },
      spec: { ports: [{ name: "admin", port: 8443, targetPort: adminPort, protocol: "TCP" }] },
    });
    assert.equal(svc.status, 201, svc.text);
    // The proxy only dials an endpoint address that is the IP of the Pod it names (no kubelet
    // here, so a stand-in Pod is given that IP in its status).
    const pod = await c.request("POST", `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "sidecar-injector-0", labels: { "sidecar.istio.io/inject": "false" } },
      spec: { containers: [{ name: "sidecar-injector", image: "example.com/sidecar-injector:0" }] },
    });
    assert.equal(pod.status, 201, pod.text);
    const status = await c.request(
      "PATCH",
      `/api/v1/namespaces/${NS}/pods/sidecar-injector-0/status`,
      { status: { podIP: address, podIPs: [{ ip: address }] } },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(status.status, 200, status.text);
    const eps = await c.request("POST", `/api/v1/namespaces/${NS}/endpoints`, {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "sidecar-injector" },
      subsets: [
        {
          addresses: [{ ip: address, targetRef: { kind: "Pod", namespace: NS, name: "sidecar-injector-0" } }],
          ports: [{ name: "admin", port: adminPort, protocol: "TCP" }],
        },
      ],
    });
    assert.equal(eps.status, 201, eps.text);
    writeFileSync(
      join(dir, "pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: nginx:1.27\n",
    );
    writeFileSync(join(dir, "service.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
  });
  after(async () => {
    await injector?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    await cluster?.stop();
  });

  test("the answer comes back through the API server, and an error is printed as kubectl prints a Status", async () => {
    const path = `/api/v1/namespaces/${NS}/services/https:sidecar-injector:admin/proxy/preview?namespace=shop&namespaceLabels=istio-injection=enabled`;
    const ok = await raw(path, join(dir, "pod.yaml"));
    assert.equal(ok.code, 0, ok.stderr);
    const answer = JSON.parse(ok.stdout) as {
      items: { name: string; decision: { inject: boolean; reasons: string[] } }[];
    };
    assert.equal(answer.items[0]?.name, "web");
    assert.equal(answer.items[0]?.decision.inject, true);
    assert.equal(
      answer.items[0]?.decision.reasons[0],
      "namespace shop has istio-injection=enabled: the API server calls the injector",
    );
    const summary = await raw(`${path}&format=summary`, join(dir, "pod.yaml"));
    assert.equal(summary.code, 0, summary.stderr);
    const lines = summary.stdout.split("\n");
    assert.equal(lines[0], "Pod/web (namespace shop): injected");
    assert.equal(lines[1], "  - namespace shop has istio-injection=enabled: the API server calls the injector");
    assert.ok(
      lines.some((l) => /^ {2}adds istio-init, istio-proxy/.test(l)),
      summary.stdout,
    );
    const refused = await raw(
      `/api/v1/namespaces/${NS}/services/https:sidecar-injector:admin/proxy/preview`,
      join(dir, "service.yaml"),
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^Error from server \(BadRequest\): .*no Pod, workload or AdmissionReview/);
  });
});
