// Istio's control plane beside the test cluster: pilot-discovery (istiod) from
// scripts/istiod-bin.sh, run as a local process against the real kube-apiserver, its
// injection webhook served on 127.0.0.1 with a certificate of the test CA; and Istio's charts
// (base: the CRDs, created; istio-discovery: installed with helm, its webhook reaching istiod
// at 127.0.0.1 through the chart's own `istiodRemote.injectionURL`).
//
//   const istio = await resolveIstiod();            // { binary, charts }
//   await installIstioCrds(cluster, charts);        // then helm install istiod ...
//   const istiod = await startIstiod(cluster, istio.binary, certs, { httpsPort });
//
// istiod runs in a temp dir, so its file defaults (./etc/istio/config/mesh,
// ./var/lib/istio/inject) are absent and it reads the `istio` and `istio-sidecar-injector`
// ConfigMaps of istio-system, as in a cluster. Every listener is on 127.0.0.1 at a free port.
// It patches no webhook configuration (INJECTION_WEBHOOK_CONFIG_NAME and
// VALIDATION_WEBHOOK_CONFIG_NAME empty): the test publishes the caBundle itself.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { ClusterUnavailableError, type Cluster } from "./cluster.js";
import { freePort, httpsRequest, type TestCerts } from "./injector.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCRIPT = join(ROOT, "scripts", "istiod-bin.sh");
/** Exit status of scripts/istiod-bin.sh when it has no way to provide the binary. */
const UNAVAILABLE = 3;

export type Obj = Record<string, unknown>;

export interface IstioAssets {
  /** The pilot-discovery executable. */
  readonly binary: string;
  /** manifests/charts of the same istio.io/istio version. */
  readonly charts: string;
}

let resolved: Promise<IstioAssets> | undefined;

/**
 * pilot-discovery and Istio's charts from scripts/istiod-bin.sh (memoised; `--no-build` under
 * SIDECAR_INJECTOR_E2E_NO_BUILD=1). ClusterUnavailableError when the script cannot provide them.
 */
export function resolveIstiod(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<IstioAssets> {
  resolved ??= new Promise<IstioAssets>((ok, fail) => {
    const noBuild = process.env.SIDECAR_INJECTOR_E2E_NO_BUILD === "1";
    const child = spawn("bash", [SCRIPT, ...(noBuild ? ["--no-build"] : [])], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
      // Progress of a cold build (minutes); Go's download chatter stays out.
      for (const line of c.split("\n")) if (line.startsWith("istiod-bin:")) log(line);
    });
    child.on("error", (e) => fail(new ClusterUnavailableError(`cannot run ${SCRIPT}: ${e.message}`)));
    child.on("close", (code) => {
      const last = (t: string, n: number): string => t.trimEnd().split("\n").slice(-n).join("\n");
      if (code === UNAVAILABLE) {
        fail(new ClusterUnavailableError(`pilot-discovery is not available:\n${last(stderr, 10)}`));
        return;
      }
      const dir = stdout.trimEnd().split("\n").pop()?.trim() ?? "";
      if (code !== 0 || dir === "") {
        fail(new Error(`scripts/istiod-bin.sh failed (exit ${String(code)}):\n${last(stderr, 30)}`));
        return;
      }
      ok({ binary: join(dir, "pilot-discovery"), charts: join(dir, "charts") });
    });
  });
  resolved.catch(() => (resolved = undefined));
  return resolved;
}

/**
 * The charts to install: ISTIO_CHARTS when set; else those of the Istio checkout at the commit
 * this injector follows (86c9f01, src/istio/pinned.ts), which test/oracle/build.sh prepares,
 * when present; else the module's, from scripts/istiod-bin.sh. The module's injection
 * templates differ from the pinned ones (scripts/istiod-bin.sh says how): `pinned` tells.
 */
export function chartsToInstall(assets: IstioAssets): { readonly dir: string; readonly pinned: boolean } {
  if (process.env.ISTIO_CHARTS) return { dir: process.env.ISTIO_CHARTS, pinned: false };
  const cache = process.env.SIDECAR_INJECTOR_CACHE ?? join(homedir(), ".cache", "sidecar-injector");
  const checkout = join(process.env.ISTIO_SRC ?? join(cache, "istio-86c9f01"), "manifests", "charts");
  if (existsSync(join(checkout, "istio-control", "istio-discovery"))) return { dir: checkout, pinned: true };
  return { dir: assets.charts, pinned: false };
}

export function parseDocs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((d): d is Obj => typeof d === "object" && d !== null && !Array.isArray(d));
}

export async function helmTemplate(cluster: Cluster, args: string[]): Promise<{ text: string; docs: Obj[] }> {
  const r = await cluster.helm(["template", ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`helm template ${args.join(" ")} failed: ${r.stderr}`);
  return { text: r.stdout, docs: parseDocs(r.stdout) };
}

async function create(cluster: Cluster, path: string, body: Obj): Promise<void> {
  const r = await cluster.request("POST", path, body, { timeoutMs: 60_000 });
  if (r.status !== 201 && r.status !== 409) throw new Error(`POST ${path}: ${r.status} ${r.text.slice(0, 500)}`);
}

/** Istio's CRDs (the base chart), established. */
export async function installIstioCrds(cluster: Cluster, charts: string): Promise<number> {
  const { docs } = await helmTemplate(cluster, ["istio-base", join(charts, "base"), "-n", "istio-system"]);
  const crds = docs.filter((d) => d.kind === "CustomResourceDefinition");
  for (const crd of crds) await create(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
  return crds.length;
}

/**
 * A MutatingWebhookConfiguration with every webhook calling `url` instead of its service or
 * URL, verified with `caPem`, under the name `name`.
 */
export function callingUrl(mwc: Obj, name: string, url: string, caPem: string): Obj {
  const webhooks = (mwc.webhooks as Obj[]).map((w) => ({
    ...w,
    clientConfig: { url, caBundle: Buffer.from(caPem).toString("base64") },
  }));
  return { ...mwc, metadata: { name }, webhooks };
}

export interface Istiod {
  /** https://127.0.0.1:<port> of the injection webhook (istiod's httpsAddr). */
  readonly url: string;
  /** Its output so far. */
  readonly output: () => string;
  /** Its Prometheus exposition (monitoringAddr /metrics). */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * pilot-discovery against `cluster`, serving its webhook with `certs` (a certificate for
 * 127.0.0.1 and its CA). Resolves when its readiness endpoint answers 200 and the webhook
 * port answers TLS verified with the test CA.
 */
export async function startIstiod(
  cluster: Cluster,
  binary: string,
  certs: TestCerts,
  options: {
    /** Port of the injection webhook (default: a free one), e.g. the one a chart was rendered with. */
    readonly httpsPort?: number;
    readonly readyTimeoutMs?: number;
    readonly env?: NodeJS.ProcessEnv;
  } = {},
): Promise<Istiod> {
  const dir = mkdtempSync(join(tmpdir(), "e2e-istiod-"));
  const [http, https, grpc, secureGrpc, monitoring, ctrlz] = [
    await freePort(),
    options.httpsPort ?? (await freePort()),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const at = (p: number | undefined): string => `127.0.0.1:${String(p)}`;
  const child: ChildProcess = spawn(
    binary,
    [
      "discovery",
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--httpAddr",
      at(http),
      "--httpsAddr",
      at(https),
      "--grpcAddr",
      at(grpc),
      "--secureGRPCAddr",
      at(secureGrpc),
      "--monitoringAddr",
      at(monitoring),
      "--ctrlz_address",
      "127.0.0.1",
      "--ctrlz_port",
      String(ctrlz),
      "--tlsCertFile",
      certs.certFile,
      "--tlsKeyFile",
      certs.keyFile,
      "--caCertFile",
      join(certs.dir, "ca.crt"),
      "--domain",
      "cluster.local",
      "--log_output_level",
      "default:info",
    ],
    {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        POD_NAMESPACE: "istio-system",
        POD_NAME: "istiod-e2e",
        REVISION: "default",
        CLUSTER_ID: "Kubernetes",
        INJECTION_WEBHOOK_CONFIG_NAME: "",
        VALIDATION_WEBHOOK_CONFIG_NAME: "",
        ISTIOD_CUSTOM_HOST: "127.0.0.1",
        PILOT_ENABLE_ANALYSIS: "false",
        ...options.env,
      },
    },
  );
  let log = "";
  const keep = (c: string): void => {
    log += c;
    if (log.length > 4_000_000) log = log.slice(-2_000_000);
  };
  child.stdout?.setEncoding("utf8").on("data", keep);
  child.stderr?.setEncoding("utf8").on("data", keep);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", () => child.kill("SIGKILL"));
  const url = `https://${at(https)}`;
  const metrics = async (): Promise<string> => {
    const r = await fetch(`http://${at(monitoring)}/metrics`);
    if (r.status !== 200) throw new Error(`istiod /metrics: ${r.status}`);
    return r.text();
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  const caPem = readFileSync(join(certs.dir, "ca.crt"), "utf8");
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`istiod exited (${String(child.exitCode ?? child.signalCode)}):\n${log.slice(-6000)}`);
    }
    try {
      const ready = await fetch(`http://${at(http)}/ready`);
      // The webhook answers an empty review with 400 once its handler is in place.
      const hook = await httpsRequest(`${url}/inject`, caPem, { method: "POST", body: "{}" });
      if (ready.status === 200 && hook.status !== 404) return { url, output: () => log, metrics, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`istiod not ready within ${String(options.readyTimeoutMs ?? 120_000)} ms:\n${log.slice(-6000)}`);
}
