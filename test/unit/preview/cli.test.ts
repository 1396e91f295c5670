// `sidecar-injector preview`, the built CLI (dist/cli.js; `npm test` builds it first) run as
// a process: offline with each output form, from standard input, against a running injector
// with --server and --cacert, and its usage errors.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { buildConfig } from "../../../src/config/load.js";
import { runServe, type ServeHandle } from "../../../src/main.js";
import { formatManifest, injectManifest } from "../../../src/manifest.js";
import { formatPreview, parsePreviewInput, preview, type PreviewEntry } from "../../../src/preview.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = join(root, "dist", "cli.js");
const dir = mkdtempSync(join(tmpdir(), "preview-cli-"));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...process.env, KUBERNETES_SERVICE_HOST: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) =>
      resolveRun({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
    );
    child.stdin.end(stdin ?? "");
  });
}

const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: store}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: shop, image: example.com/shop:1}]
`;
const file = join(dir, "app.yaml");
writeFileSync(file, MANIFEST);

const itemsOf = (r: Run): PreviewEntry[] => {
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: PreviewEntry[] }).items;
};

before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: build first (npx tsc -p tsconfig.build.json, or npm test)`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("preview offline", () => {
  test("-o json (the default): what the preview engine gives, byte for byte", async () => {
    const r = await run(["preview", "-f", file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const want = formatPreview(await preview(parsePreviewInput(MANIFEST, "yaml"), { config: buildConfig({}) }), "json");
    assert.equal(r.stdout, want);
    assert.deepEqual(
      itemsOf(r).map((e) => `${e.kind}/${e.name}@${e.namespace}:${e.decision.inject}`),
      ["Pod/web@default:true", "Deployment/shop@store:true"],
    );
    assert.deepEqual((await run(["preview", "-f", file, "-o", "json"])).stdout, r.stdout);
  });

  test("-o yaml: the same answer in YAML", async () => {
    const r = await run(["preview", "-f", file, "-o", "yaml"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith("items:"));
    assert.deepEqual(parse(r.stdout), JSON.parse((await run(["preview", "-f", file])).stdout));
  });

  test("-o diff: a unified diff per object", async () => {
    const r = await run(["preview", "-f", file, "-o", "diff"]);
    assert.equal(r.code, 0, r.stderr);
    const headers = r.stdout.split("\n").filter((l) => l.startsWith("--- ") || l.startsWith("+++ "));
    assert.deepEqual(headers, [
      "--- Pod/web (default) as given",
      "+++ Pod/web (default) as stored",
      "--- Deployment/shop (store) as given",
      "+++ Deployment/shop (store) as stored",
    ]);
    assert.match(r.stdout, /^\+ +- name: istio-proxy$/m);
  });

  test("-f - reads standard input", async () => {
    const r = await run(["preview", "-f", "-"], MANIFEST);
    assert.equal(r.stdout, (await run(["preview", "-f", file])).stdout);
  });

  test("--namespace and --namespace-labels decide what the API server does", async () => {
    const off = itemsOf(
      await run(["preview", "-f", file, "-n", "shop", "--namespace-labels", "istio-injection=disabled"]),
    );
    assert.equal(off[0]?.namespace, "shop");
    assert.deepEqual(off[0]?.decision, {
      inject: false,
      reasons: [
        "namespace shop has istio-injection=disabled: no webhook matches, the API server does not call the injector",
      ],
    });
    assert.deepEqual(off[0]?.patch, []);
    // The Deployment names its own namespace: the labels given are not its namespace's.
    assert.equal(off[1]?.namespace, "store");
    assert.match(off[1]?.decision.reasons[0] ?? "", /^labels of namespace "store" not known/);
    assert.equal(off[1]?.decision.inject, true);

    const on = itemsOf(await run(["preview", "-f", file, "--namespace-labels", "istio-injection=enabled"]));
    assert.ok(
      on.every((e) =>
        e.decision.reasons[0]?.endsWith("has istio-injection=enabled: the API server calls the injector"),
      ),
      "without -n: every namespace",
    );
  });

  test("--config is the injector's config", async () => {
    const cfg = join(dir, "disabled.yaml");
    writeFileSync(cfg, "policy: disabled\n");
    const entries = itemsOf(await run(["preview", "-f", file, "--config", cfg]));
    assert.deepEqual(
      entries.map((e) => e.decision.inject),
      [false, false],
    );
    assert.match(entries[0]?.decision.reasons.at(-1) ?? "", /policy disabled/);
  });

  test("an invalid annotation is shown, not a failure", async () => {
    const bad = MANIFEST.replace(
      "labels: {app: web}",
      "labels: {app: web}\n  annotations: {sidecar.istio.io/proxyCPU: lots}",
    );
    const r = await run(["preview", "-f", "-"], bad);
    assert.equal(r.code, 1, "a Pod the injector would refuse: exit 1");
    assert.equal(r.stderr, "error: the injector would refuse 1 of 2 Pods\n");
    const entries = (JSON.parse(r.stdout) as { items: PreviewEntry[] }).items;
    assert.equal(entries[0]?.error?.code, "ERR_INVALID_ANNOTATION");
    assert.equal(entries[1]?.decision.inject, true);
    const inject = await run(["inject", "-f", "-"], bad);
    assert.equal(inject.code, 1, "inject still refuses it");
  });

  test("inject keeps printing only the injected manifests", async () => {
    const r = await run(["inject", "-f", file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, formatManifest(injectManifest(MANIFEST, file, "default", buildConfig({})).docs, "yaml"));
    assert.doesNotMatch(r.stdout, /decision|reasons|interception/);
  });

  test("--help", async () => {
    const r = await run(["preview", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: sidecar-injector preview -f FILE\|DIR\|- \[options\]/);
    assert.match(r.stdout, /--namespace-labels/);
  });
});

describe("preview errors", () => {
  test("missing -f: exit 2 with the reason", async () => {
    const r = await run(["preview"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^error: preview: -f FILE \(or -f - for standard input\) is required\n$/);
  });

  test("a bad -o: exit 2 naming it", async () => {
    const r = await run(["preview", "-f", file, "-o", "table"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output must be summary, json, yaml or diff, not "table"/);
  });

  test("an unknown option: exit 2", async () => {
    const r = await run(["preview", "-f", file, "--frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /frobnicate/);
  });

  test("a namespace label that is not key=value: exit 2", async () => {
    const r = await run(["preview", "-f", file, "--namespace-labels", "istio-injection"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not key=value/);
  });

  test("nothing to preview: exit 2", async () => {
    const r = await run(["preview", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no Pod, workload or AdmissionReview/);
  });

  test("a file that does not exist: exit 2, named, in words", async () => {
    const r = await run(["preview", "-f", join(dir, "nope.yaml")]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `error: -f ${JSON.stringify(join(dir, "nope.yaml"))}: no such file or directory\n`);
  });

  test("--server must be https", async () => {
    const r = await run(["preview", "-f", file, "--server", "http://127.0.0.1:9443"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--server must be an https:\/\/ URL/);
  });
});

describe("preview --server", () => {
  let server: ServeHandle;
  let cacert: string;

  before(async () => {
    server = await runServe({ port: 0, certDir: join(dir, "certs"), logLevel: "silent" });
    cacert = join(dir, "certs", "ca.crt");
  });
  after(async () => {
    await server.close();
  });

  test("asks the running injector: the same answer as offline, in each output form", async () => {
    for (const o of ["json", "yaml", "diff"]) {
      const remote = await run(["preview", "-f", file, "--server", server.url, "--cacert", cacert, "-o", o]);
      assert.equal(remote.code, 0, remote.stderr);
      assert.equal(remote.stdout, (await run(["preview", "-f", file, "-o", o])).stdout, o);
    }
  });

  test("with -f -, --namespace and --namespace-labels", async () => {
    const args = ["-n", "shop", "--namespace-labels", "istio-injection=enabled"];
    const remote = await run(
      ["preview", "-f", "-", "--server", `${server.url}/`, "--cacert", cacert, ...args],
      MANIFEST,
    );
    const entries = itemsOf(remote);
    assert.equal(
      entries[0]?.decision.reasons[0],
      "namespace shop has istio-injection=enabled: the API server calls the injector",
    );
    assert.equal(
      remote.stdout,
      (await run(["preview", "-f", file, ...args])).stdout,
      "offline and remote take the labels alike",
    );
  });

  test("the injector's errors are reported with exit 2", async () => {
    const r = await run(
      ["preview", "-f", "-", "--server", server.url, "--cacert", cacert],
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /answered 400: ERR_PREVIEW_INPUT .*no Pod, workload or AdmissionReview/);
  });

  test("without --cacert the self-signed injector is not trusted", async () => {
    const r = await run(["preview", "-f", file, "--server", server.url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /certificate/);
  });

  test("a path in --server is kept", async () => {
    const r = await run(["preview", "-f", file, "--server", `${server.url}/behind/a/proxy`, "--cacert", cacert]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /answered 404/, "POST /behind/a/proxy/preview, which this server does not have");
  });

  test("--tls-server-name: the certificate is checked against that name, not the URL's host", async () => {
    // The local certificate names localhost and 127.0.0.1, not the chart's Service.
    const named = await run([
      "preview",
      "-f",
      file,
      "--server",
      server.url,
      "--cacert",
      cacert,
      "--tls-server-name",
      "localhost",
    ]);
    assert.equal(named.code, 0, named.stderr);
    assert.ok(itemsOf(named).length > 0);
    const wrong = await run([
      "preview",
      "-f",
      file,
      "--server",
      server.url,
      "--cacert",
      cacert,
      "--tls-server-name",
      "sidecar-injector.sidecar-injector-system.svc",
    ]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /sidecar-injector\.sidecar-injector-system\.svc/);
    assert.doesNotMatch(wrong.stderr, /--tls-server-name, e\.g\./, "the hint is for those who gave none");
  });

  test("--insecure-skip-tls-verify: no CA needed; refused with --cacert, and either without --server", async () => {
    const r = await run(["preview", "-f", file, "--server", server.url, "--insecure-skip-tls-verify"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(itemsOf(r).length > 0);
    const both = await run([
      "preview",
      "-f",
      file,
      "--server",
      server.url,
      "--insecure-skip-tls-verify",
      "--cacert",
      cacert,
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--insecure-skip-tls-verify and --cacert exclude each other/);
    for (const flag of [["--insecure-skip-tls-verify"], ["--tls-server-name", "localhost"], ["--cacert", cacert]]) {
      const offline = await run(["preview", "-f", file, ...flag]);
      assert.equal(offline.code, 2, flag.join(" "));
      assert.match(offline.stderr, /go with --server/);
    }
  });

  test("a --cacert that is not there: exit 2 naming it", async () => {
    const r = await run(["preview", "-f", file, "--server", server.url, "--cacert", join(dir, "nope.crt")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--cacert .*nope\.crt/);
  });

  test("-o summary: a few lines per object, the same offline and from the server", async () => {
    const manifest = join(dir, "summary.yaml");
    writeFileSync(
      manifest,
      MANIFEST.replace("labels: {app: web}", 'labels: {app: web}\n  annotations: {sidecar.istio.io/proxyCpu: "1"}'),
    );
    const offline = await run([
      "preview",
      "-f",
      manifest,
      "-o",
      "summary",
      "--namespace-labels",
      "istio-injection=enabled",
    ]);
    assert.equal(offline.code, 0, offline.stderr);
    const lines = offline.stdout.split("\n");
    assert.equal(lines[0], "Pod/web (namespace default): injected");
    assert.equal(lines[1], "  - namespace default has istio-injection=enabled: the API server calls the injector");
    assert.match(offline.stdout, /^ {2}adds istio-init, istio-proxy, proxy image \S+; \d+ patch operation\(s\)$/m);
    assert.match(
      offline.stdout,
      /^ {2}warning: unknown annotation "sidecar\.istio\.io\/proxyCpu" is ignored; did you mean sidecar\.istio\.io\/proxyCPU\?$/m,
    );
    assert.match(offline.stdout, /^Deployment\/shop \(namespace store\): injected$/m);
    assert.doesNotMatch(offline.stdout, /"op"|apiVersion/, "no patch, no object");
    const remote = await run([
      "preview",
      "-f",
      manifest,
      "-o",
      "summary",
      "--namespace-labels",
      "istio-injection=enabled",
      "--server",
      server.url,
      "--cacert",
      cacert,
    ]);
    assert.equal(remote.code, 0, remote.stderr);
    assert.equal(remote.stdout, offline.stdout);
  });

  test("a server that is not there", async () => {
    const r = await run(["preview", "-f", file, "--server", "https://127.0.0.1:1", "--cacert", cacert]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ECONNREFUSED/);
  });
});
