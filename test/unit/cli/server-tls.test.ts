// `certs status --server` and `preview --server` verify the injector as kubectl verifies a
// server: --tls-server-name is the name sent (SNI) and checked, --cacert the CA trusted, and
// by default the caBundle of the chart's MutatingWebhookConfiguration in the cluster of the
// kubeconfig; --insecure-skip-tls-verify checks nothing. The injector here is an HTTPS server
// with a certificate naming only the Service, as the chart's do; the cluster is a plain HTTP
// server standing in for the API server.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import {
  createCa,
  mintServingCert,
  toSecretData,
  type CaState,
  type ServingCert,
} from "../../../src/certs/authority.js";
import { certificateStatus } from "../../../src/certs/status.js";
import { FakeKube } from "../certs/fake-kube.js";
import { runCli, type Ran } from "../../support/run.js";
import { sendJson, startStandInApi, type StandInApi } from "../../support/stand-in-api.js";

const SERVICE_NAME = "sidecar-injector.sys.svc";
const OPTS = { namespace: "sys", secretName: "sidecar-injector-ca", webhookConfigName: "sidecar-injector" };

const dir = mkdtempSync(join(tmpdir(), "cli-server-tls-"));
let ca: CaState;
let other: CaState;
let leaf: ServingCert;
let injector: Server;
let injectorUrl = "";
/** The SNI of each TLS connection the injector accepted. */
const sniSeen: (string | false | null)[] = [];
let api: StandInApi;
/** The caBundle the stand-in API server publishes (base64), undefined: no configuration. */
let published: string | undefined;
const apiAsked: string[] = [];
let kubeconfig = "";

before(async () => {
  const now = new Date();
  ca = await createCa({ validityMs: 3_600_000, now });
  other = await createCa({ validityMs: 3_600_000, now });
  const issuer = ca.certs[0];
  if (issuer === undefined) throw new Error("no CA certificate");
  leaf = await mintServingCert(ca, issuer, { dnsNames: [SERVICE_NAME], ipAddresses: [], validityMs: 600_000, now });
  injector = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items: [] }));
    });
  });
  injector.on("secureConnection", (s: TLSSocket) => sniSeen.push(s.servername));
  await new Promise<void>((r) => injector.listen(0, "127.0.0.1", r));
  const addr = injector.address();
  injectorUrl = `https://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;

  api = await startStandInApi(dir, (req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    apiAsked.push(path);
    const name = path.split("/").at(-1);
    if (
      !path.startsWith("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/") ||
      published === undefined ||
      name !== "sidecar-injector"
    ) {
      return false;
    }
    sendJson(res, 200, {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name, resourceVersion: "1" },
      webhooks: [
        {
          name: "a.example",
          clientConfig: { caBundle: published, service: { name: "sidecar-injector", namespace: "sys" } },
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
        },
      ],
    });
    return true;
  });
  kubeconfig = api.kubeconfig;
  writeFileSync(
    join(dir, "pod.yaml"),
    "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: nginx}]}\n",
  );
  writeFileSync(join(dir, "other-ca.crt"), other.certs[0]?.certPem ?? "");
});
after(async () => {
  await new Promise<void>((r) => injector.close(() => r()));
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function fakeCluster(): FakeKube {
  const kube = new FakeKube();
  kube.secret = {
    metadata: { name: OPTS.secretName, namespace: OPTS.namespace, resourceVersion: "1" },
    data: toSecretData(ca),
  };
  const bundle = Buffer.from(ca.certs[0]?.certPem ?? "").toString("base64");
  kube.webhook = {
    name: OPTS.webhookConfigName,
    resourceVersion: 1,
    webhooks: [
      {
        name: "a.example",
        caBundle: bundle,
        clientConfig: { service: { name: "sidecar-injector", namespace: "sys" } },
      },
    ],
  };
  return kube;
}

/** The report's line about what a client would conclude. */
const clientLine = (text: string): string => text.split("\n").find((l) => l.includes("as a client")) ?? "";

describe("certs status --server: the client's view", () => {
  test("through a port-forward, the URL's host is not among the names; --tls-server-name is sent and verified", async () => {
    const kube = fakeCluster();
    sniSeen.length = 0;
    const plain = await certificateStatus(kube, { ...OPTS, server: injectorUrl });
    assert.equal(
      clientLine(plain.text),
      `  as a client of "127.0.0.1" trusting the caBundle of sidecar-injector: NOT verified: "127.0.0.1" is not among its names (through a port-forward, give --tls-server-name <service>.<namespace>.svc)`,
    );
    assert.deepEqual(
      plain.problems,
      [],
      "the API server dials the Service name, not the port-forward: no admission problem",
    );
    const named = await certificateStatus(kube, { ...OPTS, server: injectorUrl, tlsServerName: SERVICE_NAME });
    assert.equal(
      clientLine(named.text),
      `  as a client of "${SERVICE_NAME}" trusting the caBundle of sidecar-injector: verified`,
    );
    // The server sees a handshake end after the client does: wait for both (the test's timeout bounds it).
    while (sniSeen.length < 2) await new Promise((r) => setImmediate(r));
    assert.deepEqual(sniSeen, [false, SERVICE_NAME], "no SNI for an IP address; the name given is sent");
    assert.match(named.text, /published caBundle contains its issuer: yes/);
  });

  test("--cacert of another CA: not verified, said; --insecure-skip-tls-verify: not checked", async () => {
    const kube = fakeCluster();
    const otherCa = await certificateStatus(kube, {
      ...OPTS,
      server: injectorUrl,
      tlsServerName: SERVICE_NAME,
      caPem: other.certs[0]?.certPem ?? "",
    });
    assert.equal(
      clientLine(otherCa.text),
      `  as a client of "${SERVICE_NAME}" trusting --cacert: NOT verified: not issued by a CA in --cacert`,
    );
    const insecure = await certificateStatus(kube, { ...OPTS, server: injectorUrl, insecureSkipTlsVerify: true });
    assert.equal(clientLine(insecure.text), "  as a client: not verified (--insecure-skip-tls-verify)");
  });

  test("the CLI: flags without --server, --cacert with --insecure-skip-tls-verify, a --cacert with no certificate: exit 2", async () => {
    const run = (args: readonly string[]): Promise<Ran> =>
      runCli(args, { cwd: dir, env: { ...process.env, KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: "" } });
    const noServer = await run(["certs", "status", "--tls-server-name", SERVICE_NAME]);
    assert.equal(noServer.code, 2);
    assert.match(
      noServer.stderr,
      /^error: certs status: --cacert, --tls-server-name and --insecure-skip-tls-verify go with --server\n$/,
    );
    const both = await run([
      "certs",
      "status",
      "--server",
      injectorUrl,
      "--insecure-skip-tls-verify",
      "--cacert",
      join(dir, "other-ca.crt"),
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exclude each other/);
    writeFileSync(join(dir, "empty.crt"), "nothing\n");
    const empty = await run(["certs", "status", "--server", injectorUrl, "--cacert", join(dir, "empty.crt")]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--cacert .*empty\.crt.*: no PEM certificate in it/);
    const badName = await run(["certs", "status", "--server", injectorUrl, "--tls-server-name", "a b"]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--tls-server-name must be a DNS name, not "a b"/);
  });
});

describe("preview --server: the cluster's caBundle is the default CA", () => {
  const run = (args: readonly string[]): Promise<Ran> =>
    runCli(["preview", "-f", join(dir, "pod.yaml"), "-o", "json", "--server", injectorUrl, "--anonymous", ...args], {
      cwd: dir,
      env: { ...process.env, KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: "" },
    });

  test("published: verified against it, with --tls-server-name", async () => {
    published = Buffer.from(ca.certs[0]?.certPem ?? "").toString("base64");
    apiAsked.length = 0;
    const r = await run(["--tls-server-name", SERVICE_NAME]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { items: [] });
    // No configuration labelled as the chart's is listed (this stand-in serves no list): the default name.
    assert.deepEqual(apiAsked, [
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/sidecar-injector",
    ]);
  });

  test("another --webhook-config, or none published: the system's CAs, which do not know the injector's", async () => {
    published = Buffer.from(ca.certs[0]?.certPem ?? "").toString("base64");
    apiAsked.length = 0;
    const elsewhere = await run(["--tls-server-name", SERVICE_NAME, "--webhook-config", "istio-sidecar-injector"]);
    assert.equal(elsewhere.code, 2);
    assert.match(elsewhere.stderr, /^error: https:\/\/127\.0\.0\.1:\d+: .*(self[- ]signed|unable to verify|issuer)/i);
    assert.deepEqual(apiAsked, [
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector",
    ]);
    published = undefined;
    const none = await run(["--tls-server-name", SERVICE_NAME]);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /\(verified against the system's CAs; give the injector's CA with --cacert FILE: certs\/ca\.crt for npm start\)\n$/,
    );
  });

  test("a caBundle of another CA: refused, saying which CA was trusted", async () => {
    published = Buffer.from(other.certs[0]?.certPem ?? "").toString("base64");
    const r = await run(["--tls-server-name", SERVICE_NAME]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /\(verified against the caBundle of MutatingWebhookConfiguration sidecar-injector; give --cacert FILE for another CA\)\n$/,
    );
    const insecure = await run(["--insecure-skip-tls-verify"]);
    assert.equal(insecure.code, 0, insecure.stderr);
  });
});
