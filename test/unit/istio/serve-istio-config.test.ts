// `serve --istio-config`, the process: its start refused (a ConfigMap missing, a setting that
// cannot be honoured, no API server) with exit 2 and the reason; and with `--workers 2`, a change
// of Istio's ConfigMap pushed to every worker and answered with at once, a bad change counted and
// the last good config kept. The API server is a fake (plain HTTP, named by KUBECONFIG) that
// serves the two ConfigMaps and streams their watch events.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PINNED_VALUES } from "../../../src/istio/pinned.js";
import { runCli } from "../../support/run.js";
import { JSON_HEADERS, podReview, responseOf, send } from "../admission/helpers.js";
import { serve, type Served } from "../admission/served.js";

const NS = "istio-system";
const CONFIG_TEXT = "defaultTemplates: [sidecar]\npolicy: enabled\nalwaysInjectSelector: []\nneverInjectSelector: []\n";
const MESH = "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\ntrustDomain: cluster.local\n";

function values(hub: string, proxy: Record<string, unknown> = {}): string {
  const v = structuredClone(PINNED_VALUES) as { global: Record<string, unknown> };
  v.global.hub = hub;
  v.global.tag = "1.0";
  Object.assign(v.global.proxy as Record<string, unknown>, proxy);
  return JSON.stringify(v);
}

/** The API server's side: two ConfigMaps by name, and watches of them that stay open. */
class FakeConfigMapApi {
  readonly maps = new Map<string, Record<string, string>>();
  private rv = 1;
  private readonly watches: { name: string; res: ServerResponse }[] = [];
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "", "http://x");
      const json = (status: number, o: unknown): void => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
      };
      const one = new RegExp(`^/api/v1/namespaces/${NS}/configmaps/([^/]+)$`).exec(url.pathname);
      if (req.method === "GET" && one?.[1] !== undefined) {
        const data = this.maps.get(one[1]);
        if (data === undefined)
          return json(404, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" });
        return json(200, this.object(one[1], data));
      }
      if (req.method === "GET" && url.pathname === `/api/v1/namespaces/${NS}/configmaps`) {
        const name = /^metadata\.name=(.+)$/.exec(url.searchParams.get("fieldSelector") ?? "")?.[1];
        if (url.searchParams.get("watch") === "true" && name !== undefined) {
          res.writeHead(200, { "content-type": "application/json" });
          const data = this.maps.get(name);
          if (data !== undefined) res.write(`${JSON.stringify({ type: "ADDED", object: this.object(name, data) })}\n`);
          this.watches.push({ name, res });
          return;
        }
      }
      json(404, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" });
    });
    await new Promise<void>((r) => this.server?.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private object(name: string, data: Record<string, string>): unknown {
    return {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: NS, resourceVersion: String(this.rv) },
      data,
    };
  }

  /** Changes a ConfigMap; every watch of it gets the event. */
  modify(name: string, data: Record<string, string>): void {
    this.rv++;
    this.maps.set(name, data);
    for (const w of this.watches)
      if (w.name === name) w.res.write(`${JSON.stringify({ type: "MODIFIED", object: this.object(name, data) })}\n`);
  }

  watching(): number {
    return this.watches.filter((w) => !w.res.writableEnded).length;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

async function kubeconfigFor(dir: string, server: string): Promise<string> {
  const file = join(dir, "kubeconfig");
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "injector", user: { token: "injector-token" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "injector" } }],
      "current-context": "fake",
    }),
  );
  return file;
}

/** The proxy image of the sidecar a review's patch adds. */
function injectedImage(response: Record<string, unknown>): string | undefined {
  const patch = JSON.parse(Buffer.from(String(response.patch), "base64").toString("utf8")) as {
    value?: { name?: string; image?: string } | { name?: string; image?: string }[];
  }[];
  for (const op of patch) {
    for (const c of Array.isArray(op.value) ? op.value : [op.value]) if (c?.name === "istio-proxy") return c.image;
  }
  return undefined;
}

const POD_REVIEW = JSON.stringify(
  podReview({
    object: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-1" },
      spec: { containers: [{ name: "app", image: "nginx" }] },
    },
  }),
);

describe("serve --istio-config: the start", () => {
  let root: string;
  const api = new FakeConfigMapApi();
  let env: NodeJS.ProcessEnv;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-istio-start-"));
    env = { ...process.env, KUBECONFIG: await kubeconfigFor(root, await api.start()) };
  });
  after(async () => {
    await api.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("refuses to start without a ConfigMap, naming it (exit 2)", async () => {
    api.maps.clear();
    api.maps.set("istio-sidecar-injector", { values: values("reg.example"), config: CONFIG_TEXT });
    const r = await runCli(["serve", "--istio-config", NS, "--port", "0", "--cert-dir", join(root, "c")], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --istio-config istio-system: no ConfigMap istio in namespace istio-system/m);
  });

  it("refuses a setting it cannot honour unless --allow-unsupported, the finding logged by path", async () => {
    api.maps.set("istio", { mesh: MESH });
    api.maps.set("istio-sidecar-injector", {
      values: values("reg.example", { lifecycle: { preStop: { exec: { command: ["sleep", "1"] } } } }),
      config: CONFIG_TEXT,
    });
    const r = await runCli(["serve", "--istio-config", NS, "--port", "0", "--cert-dir", join(root, "c")], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /1 setting of Istio's ConfigMaps cannot be honoured/);
    const finding = r.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.path === "istio-sidecar-injector.values.global.proxy.lifecycle");
    assert.equal(finding?.severity, "unsupported");
    assert.equal(typeof finding?.instead, "string");
  });

  it("refuses to start when the API server does not answer, and names bad arguments", async () => {
    const gone = await kubeconfigFor(await mkdtemp(join(root, "gone-")), "http://127.0.0.1:1");
    const r = await runCli(["serve", "--istio-config", NS, "--port", "0"], { env: { ...env, KUBECONFIG: gone } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: read ConfigMap istio-system\/istio(-sidecar-injector)?: /m);
    const both = await runCli(["serve", "--istio-config", NS, "--config", "x.yaml"], { env });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--config and --istio-config exclude each other/);
    const bad = await runCli(["serve", "--istio-config", "Istio/../x"], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--istio-config must be NAMESPACE or NAMESPACE\/REVISION/);
    for (const [args, why] of [
      [
        ["--revision-tag", "prod"],
        /--revision-tag goes with --istio-config \(with a config file, set revisionTags in it\)/,
      ],
      [
        ["--enable-namespaces-by-default"],
        /--enable-namespaces-by-default goes with --istio-config \(with a config file, set enableNamespacesByDefault in it\)/,
      ],
    ] as const) {
      const alone = await runCli(["serve", ...args], { env });
      assert.equal(alone.code, 2);
      assert.match(alone.stderr, why);
    }
  });
});

describe("serve --istio-config --workers 2: a change of Istio's ConfigMaps", () => {
  const api = new FakeConfigMapApi();
  let root: string;
  let s: Served;
  let ca: string;
  const inject = async (): Promise<string | undefined> => {
    const res = await send(s.port, ca, { body: POD_REVIEW, headers: JSON_HEADERS });
    assert.equal(res.status, 200, res.body);
    return injectedImage(responseOf(res));
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-istio-workers-"));
    api.maps.set("istio-sidecar-injector", { values: values("first.example"), config: CONFIG_TEXT });
    api.maps.set("istio", { mesh: MESH });
    const kubeconfig = await kubeconfigFor(root, await api.start());
    const certs = join(root, "certs");
    s = await serve(["--workers", "2", "--cert-dir", certs, "--istio-config", NS], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    ca = await readFile(join(certs, "ca.crt"), "utf8");
  });
  after(async () => {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await api.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("serves Istio's config, then a change in every worker without a restart; a bad one is counted and not applied", async () => {
    assert.equal(
      s.lines().find((l) => l.msg === "sidecar injector serving")?.configSource,
      "istio-config istio-system",
    );
    for (let i = 0; i < 4; i++) assert.equal(await inject(), "first.example/proxyv2:1.0");
    // Both watches open before the change, so it comes as an event.
    await s.waitFor(() => api.watching() === 2);
    const pidsBefore = s.pids;

    api.modify("istio-sidecar-injector", { values: values("second.example"), config: CONFIG_TEXT });
    const changed = await s.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("config changed"));
    assert.deepEqual(changed.changes, ['proxy.image: "first.example/proxyv2:1.0" → "second.example/proxyv2:1.0"']);
    await s.waitFor((l) => l.msg === "config in effect in every worker" && l.generation === 2);
    for (let i = 0; i < 4; i++) assert.equal(await inject(), "second.example/proxyv2:1.0");

    api.modify("istio-sidecar-injector", { values: "{not json", config: CONFIG_TEXT });
    const refused = await s.waitFor((l) => typeof l.msg === "string" && l.msg.includes("not applied"));
    assert.equal(refused.level, 50);
    for (let i = 0; i < 4; i++) assert.equal(await inject(), "second.example/proxyv2:1.0");
    const metrics = await send(s.port, ca, { method: "GET", path: "/metrics" });
    assert.match(metrics.body, /^sidecar_injector_config_reload_total\{result="applied"\} 1$/m);
    assert.match(metrics.body, /^sidecar_injector_config_reload_total\{result="failed"\} 1$/m);
    // No worker was replaced: the config came over the channel.
    assert.equal(s.lines().filter((l) => l.msg === "worker replaced").length, 0, `workers ${pidsBefore.join(",")}`);
  });
});
