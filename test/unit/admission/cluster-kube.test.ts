// `serve --workers 2` with cluster access: only the primary loads @kubernetes/client-node (about
// 78 MiB per process); it watches the nodes for `nativeSidecars: auto` and pushes the state to
// every worker, and answers the workers' /preview lookups with one cache for all of them. The
// API server is a fake (plain HTTP, named by KUBECONFIG) that counts what it is asked; which
// modules each process loads is recorded by record-loads.ts, one file per pid.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { send } from "./helpers.js";
import { serve, type LogLine, type Served } from "./served.js";

const RECORD_LOADS = resolve("test/unit/admission/record-loads.ts");
const CLIENT = "/node_modules/@kubernetes/client-node/";
const TOKEN = "alice-token";

const POD = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "shop" },
  spec: { containers: [{ name: "app", image: "nginx" }] },
};

interface PreviewAnswer {
  items: Array<{ decision: { inject: boolean; reasons: string[] }; patch: unknown[] }>;
}

/** The API server's side: what /preview and the node watch ask, each call counted. */
class FakeApiServer {
  readonly calls: string[] = [];
  /** Node lists, since the start. */
  nodeReads = 0;
  private server: Server | undefined;
  private release: (() => void) | undefined;
  /** Token reviews are answered only once this resolves (see hold()). */
  private held: Promise<void> = Promise.resolve();

  /** Token reviews wait until the returned function is called. */
  hold(): () => void {
    this.held = new Promise((r) => (this.release = r));
    return () => this.release?.();
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((r) => this.server?.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.release?.();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body =
      chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
    const path = (req.url ?? "").split("?")[0] ?? "";
    const json = (status: number, o: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
    };
    if (req.method === "POST" && path === "/apis/authentication.k8s.io/v1/tokenreviews") {
      this.calls.push("tokenreview");
      await this.held;
      const token = (body.spec as { token?: string } | undefined)?.token;
      const status =
        token === TOKEN
          ? { authenticated: true, user: { username: "alice", groups: ["dev"] } }
          : { authenticated: false };
      return json(201, { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: {}, status });
    }
    if (req.method === "POST" && path === "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
      const ns = (body.spec as { resourceAttributes?: { name?: string } } | undefined)?.resourceAttributes?.name;
      this.calls.push(`access ${ns}`);
      return json(201, {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {},
        status: { allowed: true },
      });
    }
    const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    if (req.method === "GET" && ns) {
      this.calls.push(`labels ${ns[1]}`);
      return json(200, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns[1], labels: { "istio-injection": "enabled" } },
      });
    }
    if (req.method === "GET" && path === "/api/v1/nodes") {
      this.calls.push("nodes");
      this.nodeReads += 1;
      return json(200, {
        apiVersion: "v1",
        kind: "NodeList",
        metadata: {},
        items: [{ metadata: { name: "n1" }, status: { nodeInfo: { kubeletVersion: "v1.33.1" } } }],
      });
    }
    this.calls.push(`unexpected ${req.method} ${path}`);
    json(404, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" });
  }
}

/** The modules process `pid` loaded, as record-loads.ts wrote them. */
async function loaded(dir: string, pid: number): Promise<string[]> {
  return (await readFile(join(dir, String(pid)), "utf8")).split("\n").filter(Boolean);
}

/** A /preview of POD on a new connection; `sent` resolves once the whole request is written. */
function previewRequest(
  port: number,
  ca: string,
  token: string | undefined,
): { sent: Promise<void>; answer: Promise<{ status: number; body: string }> } {
  let sent: () => void = () => undefined;
  const written = new Promise<void>((r) => (sent = r));
  const answer = new Promise<{ status: number; body: string }>((ok, fail) => {
    const body = JSON.stringify(POD);
    const headers = {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    };
    const r = request(
      { host: "127.0.0.1", port, ca, method: "POST", path: "/preview?namespace=shop", headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", fail);
      },
    );
    r.on("error", fail);
    r.on("finish", () => sent());
    r.end(body);
  });
  return { sent: written, answer };
}

/** Whether the preview's patch adds the proxy as a native sidecar (an init container that restarts). */
function nativeSidecar(answer: PreviewAnswer): boolean {
  return JSON.stringify(answer.items[0]?.patch ?? []).includes('"restartPolicy":"Always"');
}

function clusterEnv(kubeconfig: string, loads: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SIDECAR_INJECTOR_LOAD_LOG: loads,
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBECONFIG: kubeconfig,
    POD_NAMESPACE: "mesh-system",
  };
}

describe("serve --workers 2 with cluster access", () => {
  const api = new FakeApiServer();
  let root: string;
  let loads: string;
  let s: Served;
  let ca: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-cluster-kube-"));
    loads = join(root, "loads");
    await mkdir(loads);
    const server = await api.start();
    const kubeconfig = join(root, "kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "fake", cluster: { server, "insecure-skip-tls-verify": true } }],
        users: [{ name: "injector", user: { token: "injector-token" } }],
        contexts: [{ name: "fake", context: { cluster: "fake", user: "injector" } }],
        "current-context": "fake",
      }),
    );
    const config = join(root, "config.yaml");
    await writeFile(config, "nativeSidecars: auto\n");
    const certs = join(root, "certs");
    s = await serve(["--workers", "2", "--cert-dir", certs, "--config", config], {
      env: clusterEnv(kubeconfig, loads),
      nodeArgs: ["--import", RECORD_LOADS],
    });
    ca = await readFile(join(certs, "ca.crt"), "utf8");
  });
  after(async () => {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await api.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("loads the Kubernetes client in the primary only", async () => {
    assert.equal(s.pids.length, 2);
    const primary = s.child.pid ?? -1;
    assert.deepEqual(
      (await readdir(loads)).map(Number).sort(),
      [primary, ...s.pids].sort(),
      "every process recorded what it loads",
    );
    assert.ok(
      (await loaded(loads, primary)).some((u) => u.includes(CLIENT)),
      "the primary loads the client (the record works)",
    );
    for (const pid of s.pids) {
      const urls = await loaded(loads, pid);
      assert.ok(
        urls.some((u) => u.endsWith("/src/admission/server.ts")),
        `worker ${pid} recorded the server it runs`,
      );
      assert.deepEqual(
        urls.filter((u) => u.includes(CLIENT) || u.endsWith("/src/kube/client.ts") || u.endsWith("/src/kube/nodes.ts")),
        [],
        `worker ${pid} loads no Kubernetes client`,
      );
    }
    // One node watch for the pod, in the primary.
    assert.equal(api.nodeReads, 1);
  });

  it("answers two workers' lookups from one cache in the primary: one TokenReview, access review and read", async () => {
    api.calls.length = 0;
    const release = api.hold();
    // Two connections open at once: the second goes to the worker without one (least connections).
    const requests = [previewRequest(s.port, ca, TOKEN), previewRequest(s.port, ca, TOKEN)];
    await Promise.all(requests.map((r) => r.sent));
    release();
    const answers = await Promise.all(requests.map((r) => r.answer));
    for (const a of answers) {
      assert.equal(a.status, 200, a.body);
      const item = (JSON.parse(a.body) as PreviewAnswer).items[0];
      assert.equal(
        item?.decision.reasons[0],
        "namespace shop has istio-injection=enabled: the API server calls the injector",
      );
    }
    // Each answer's log line, with the pid of the worker that wrote it.
    const previewLines = (): LogLine[] => s.lines().filter((l) => l.msg === "preview");
    await s.waitFor(() => previewLines().length >= 2);
    const byPid = previewLines();
    assert.deepEqual([...new Set(byPid.map((l) => l.pid))].sort(), [...s.pids].sort(), "each worker answered one");
    assert.deepEqual(api.calls, ["tokenreview", "access shop", "labels shop"]);
    // No token: nothing is asked of the API server.
    const anonymous = previewRequest(s.port, ca, undefined);
    assert.equal((await anonymous.answer).status, 200);
    assert.equal(api.calls.length, 3);
  });

  it("pushes the nodes' native sidecar support to each worker, and to a replacement at its start", async () => {
    const nativeIn = async (): Promise<boolean> => {
      const a = await previewRequest(s.port, ca, undefined).answer;
      assert.equal(a.status, 200, a.body);
      return nativeSidecar(JSON.parse(a.body) as PreviewAnswer);
    };
    // New connections, each closed before the next: ties go to the workers in turn; both use native sidecars.
    for (let i = 0; i < 4; i++) assert.equal(await nativeIn(), true);

    const [victim, survivor] = s.pids;
    assert.ok(victim !== undefined && survivor !== undefined);
    process.kill(victim, "SIGKILL");
    const replaced = await s.waitFor((l) => l.msg === "worker replaced");
    const fresh = Number(replaced.workerPid);
    await s.waitFor((l) => l.msg === "every worker ready" && Array.isArray(l.pids) && l.pids.includes(fresh));
    // The node list is read every 5 minutes: the replacement has the state from its init.
    assert.equal(api.nodeReads, 1);
    const seen = new Set<number>();
    for (let i = 0; i < 6 && !seen.has(fresh); i++) {
      const before = s.lines().length;
      assert.equal(await nativeIn(), true);
      const line = await s.waitFor((l) => l.msg === "preview" && s.lines().indexOf(l) >= before);
      seen.add(Number(line.pid));
    }
    assert.ok(seen.has(fresh), "the replacement answered a preview");
    assert.deepEqual(await loaded(loads, fresh).then((urls) => urls.filter((u) => u.includes(CLIENT))), []);
  });
});

describe("serve (one process), local mode", () => {
  let root: string;
  let s: Served;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sidecar-injector-local-loads-"));
    const env: NodeJS.ProcessEnv = { ...process.env, SIDECAR_INJECTOR_LOAD_LOG: root };
    delete env.KUBERNETES_SERVICE_HOST;
    s = await serve(["--local", "--cert-dir", join(root, "certs")], { env, nodeArgs: ["--import", RECORD_LOADS] });
  });
  after(async () => {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  });

  it("never loads the Kubernetes client", async () => {
    const urls = await loaded(root, s.child.pid ?? -1);
    assert.ok(urls.some((u) => u.endsWith("/src/admission/server.ts")));
    assert.deepEqual(
      urls.filter((u) => u.includes(CLIENT) || u.includes("/src/kube/client.ts")),
      [],
    );
    assert.equal(
      (await send(s.port, await readFile(join(root, "certs", "ca.crt"), "utf8"), { method: "GET", path: "/readyz" }))
        .status,
      200,
    );
  });
});
