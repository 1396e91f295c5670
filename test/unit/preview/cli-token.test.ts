// `sidecar-injector preview --server` sends the bearer token of the kubeconfig's current user
// (so the injector reads the labels that user may read), none with --anonymous or when the
// user has no token, and never prints it; offline, the CLI has no bound on the Pods it
// previews. The built CLI (dist/cli.js) against a small HTTPS server that records headers.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, type Ran } from "../../support/run.js";
import { MAX_PREVIEW_PODS } from "../../../src/preview.js";
import { removeTestCertificates, testCertificates } from "../admission/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "preview-cli-token-"));
const TOKEN = "kubeconfig-token-7c1e0f";

const POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx}]\n";

function kubeconfig(name: string, user: Record<string, unknown>): string {
  const path = join(dir, name);
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
    users: [{ name: "u", user }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
    "current-context": "x",
  };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

function run(args: readonly string[], env: Record<string, string>, stdin = ""): Promise<Ran> {
  return runCli(args, { cwd: dir, env: { ...process.env, KUBERNETES_SERVICE_HOST: "", ...env }, stdin });
}

describe("preview --server and the kubeconfig's token", () => {
  let server: Server;
  let url = "";
  let caFile = "";
  const seen: (string | undefined)[] = [];

  before(async () => {
    const certs = await testCertificates();
    caFile = join(dir, "ca.crt");
    writeFileSync(caFile, certs.ca);
    server = createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
      seen.push(req.headers.authorization);
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"items":[]}\n'));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await removeTestCertificates();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a user with a token: sent as a bearer token, never printed", async () => {
    seen.length = 0;
    const r = await run(
      ["preview", "-f", "-", "--server", url, "--cacert", caFile],
      { KUBECONFIG: kubeconfig("token.json", { token: TOKEN }) },
      POD,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen, [`Bearer ${TOKEN}`]);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN));
  });

  test("--anonymous: no token", async () => {
    seen.length = 0;
    const r = await run(
      ["preview", "-f", "-", "--server", url, "--cacert", caFile, "--anonymous"],
      { KUBECONFIG: kubeconfig("token.json", { token: TOKEN }) },
      POD,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen, [undefined]);
  });

  test("a user without a token (a client certificate), or no kubeconfig: no Authorization header", async () => {
    seen.length = 0;
    const cert = await run(
      ["preview", "-f", "-", "--server", url, "--cacert", caFile],
      { KUBECONFIG: kubeconfig("cert.json", { "client-certificate-data": "", "client-key-data": "" }) },
      POD,
    );
    assert.equal(cert.code, 0, cert.stderr);
    const none = await run(
      ["preview", "-f", "-", "--server", url, "--cacert", caFile],
      { KUBECONFIG: join(dir, "does-not-exist.json"), HOME: dir },
      POD,
    );
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(seen, [undefined, undefined]);
  });

  test("offline, a List over the server's Pod bound is previewed whole", async () => {
    const n = MAX_PREVIEW_PODS + 50;
    const items = Array.from({ length: n }, (_, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `p${i}` },
      spec: { containers: [{ name: "a", image: "i" }] },
    }));
    const r = await run(["preview", "-f", "-"], {}, JSON.stringify({ apiVersion: "v1", kind: "List", items }));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { items: unknown[] }).items.length, n);
  });
});
