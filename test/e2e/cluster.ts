/**
 * Real-cluster harness for the end-to-end suite.
 *
 * Runs etcd and kube-apiserver as plain processes on 127.0.0.1 (the way
 * controller-runtime's envtest does; there is no scheduler, controller-manager
 * or kubelet, so Pods stay Pending). The binaries come from
 * scripts/test-bins.sh: KUBEBUILDER_ASSETS when set, otherwise built once from
 * Go modules into a cache outside the repository.
 *
 *   const cluster = await startCluster();
 *   after(() => cluster.stop());
 *   const res = await cluster.request("POST", "/api/v1/namespaces", { ... });
 *
 * The API server can be stopped and started again (same port, flags, certificates
 * and etcd, so its data and CA survive) to test how clients ride out an outage:
 *
 *   await cluster.restartApiServer();
 *   // or: await cluster.stopApiServer(); ...; await cluster.startApiServer();
 */
import { test } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { X509Certificate, generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { request as httpsRequest } from "../support/https.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TEST_BINS_SCRIPT = join(REPO_ROOT, "scripts", "test-bins.sh");
/** The kube-apiserver flags that serve MutatingAdmissionPolicy v1beta1 (Kubernetes 1.34-1.35). */
export const MUTATING_ADMISSION_POLICY_ARGS: readonly string[] = [
  "--feature-gates=MutatingAdmissionPolicy=true",
  "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
];
/** Exit status of scripts/test-bins.sh when it has no way to provide binaries. */
const TEST_BINS_UNAVAILABLE = 3;

/**
 * The binaries cannot be provided on this machine: neither KUBEBUILDER_ASSETS
 * nor a Go toolchain is available (or building was turned off). Callers
 * usually skip real-cluster tests on this error.
 */
export class ClusterUnavailableError extends Error {
  override readonly name = "ClusterUnavailableError";
}

/** etcd or kube-apiserver failed to start; the message carries its log tail. */
export class ClusterStartError extends Error {
  override readonly name = "ClusterStartError";
}

export interface StartClusterOptions {
  /** Use this folder (kube-apiserver, etcd, helm) instead of running scripts/test-bins.sh. */
  binDir?: string;
  /**
   * Fail with ClusterUnavailableError instead of building missing binaries
   * (a cold build takes many minutes). Default: env SIDECAR_INJECTOR_E2E_NO_BUILD=1.
   */
  noBuild?: boolean;
  /** Limit for scripts/test-bins.sh, which may build from source. Default 45 minutes. */
  binariesTimeoutMs?: number;
  /** Limit for etcd + kube-apiserver to become ready. Default 90 seconds. */
  startTimeoutMs?: number;
  /**
   * Keep the ServiceAccount admission plugin enabled, as in a real cluster
   * (Pods get the kube-api-access volume). There is no controller-manager, so
   * every namespace then needs a `default` ServiceAccount: use
   * Cluster.createNamespace. Default false (disabled, like envtest).
   */
  serviceAccountAdmission?: boolean;
  /**
   * Serve MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1, behind the
   * MutatingAdmissionPolicy feature gate in Kubernetes 1.34-1.35) and run its admission
   * plugin. Default false.
   */
  mutatingAdmissionPolicy?: boolean;
  /** Extra kube-apiserver flags, appended last (later flags win). */
  apiServerArgs?: string[];
  /** Keep the temp dir (logs, data) after stop(), for debugging. */
  keepTempDir?: boolean;
  /** Progress messages; default writes to stderr. */
  log?: (message: string) => void;
}

export interface KubeResponse<T = unknown> {
  status: number;
  /** Parsed JSON body, or null when the body is empty or not JSON. */
  json: T;
  /** Raw body text. */
  text: string;
  headers: http.IncomingHttpHeaders;
}

export interface RequestOptions {
  /** Content-Type for the body; default application/json (use e.g. application/merge-patch+json for PATCH). */
  contentType?: string;
  /** Abort after this many milliseconds; default 30 s. */
  timeoutMs?: number;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  /** https://127.0.0.1:<port> */
  server: string;
  /** Admin kubeconfig (token + CA); usable by helm, kubectl and client libraries. */
  kubeconfigPath: string;
  /** Bearer token of the admin user (group system:masters). */
  token: string;
  /** CA certificate (PEM) that signed the API server's serving certificate. */
  caPem: string;
  /** Folder holding kube-apiserver, etcd and helm. */
  binDir: string;
  helmPath: string;
  /** etcd client URL (http://127.0.0.1:<port>). */
  etcdUrl: string;
  /** Temp dir with logs (etcd.log, kube-apiserver.log), data and certs; removed by stop(). */
  tmpDir: string;
  /**
   * Environment for child processes that talk to the cluster: KUBECONFIG and
   * HELM_* homes inside tmpDir, so nothing is written to the user's home.
   */
  env: NodeJS.ProcessEnv;
  /** Authenticated request to the API server as the admin user. */
  request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ): Promise<KubeResponse<T>>;
  /** Create a namespace and its `default` ServiceAccount (idempotent). */
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
  /** Run helm with `env` against this cluster. */
  helm(args: string[], options?: { timeoutMs?: number; cwd?: string }): Promise<ExecResult>;
  /**
   * Stop only kube-apiserver (SIGTERM, then SIGKILL after `graceMs`, default
   * 10 s; it stops listening within about a second but may linger while
   * clients hold watches); etcd keeps running. Requests fail (connection
   * refused) until startApiServer(). No-op when it is already stopped.
   */
  stopApiServer(options?: { graceMs?: number }): Promise<void>;
  /**
   * Start kube-apiserver again with the same flags, port, certificates and
   * etcd, and wait for /readyz (limit: startTimeoutMs). No-op when it is running.
   */
  startApiServer(): Promise<void>;
  /** stopApiServer() then startApiServer(). */
  restartApiServer(): Promise<void>;
  /** Whether the kube-apiserver process is running (it may not be ready yet). */
  apiServerRunning(): boolean;
  /** Stop both processes (SIGTERM, then SIGKILL) and remove tmpDir. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Binaries

const binDirCache = new Map<string, Promise<string>>();

function defaultLog(message: string): void {
  process.stderr.write(`[cluster] ${message}\n`);
}

function tail(text: string, lines = 40): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

/**
 * Folder holding kube-apiserver, etcd and helm, from scripts/test-bins.sh
 * (memoised per process). Throws ClusterUnavailableError when the script
 * reports it has no way to provide them.
 */
export function resolveBinDir(
  options: Pick<StartClusterOptions, "noBuild" | "binariesTimeoutMs" | "log"> = {},
): Promise<string> {
  const noBuild = options.noBuild ?? process.env.SIDECAR_INJECTOR_E2E_NO_BUILD === "1";
  const key = noBuild ? "no-build" : "build";
  let pending = binDirCache.get(key);
  if (!pending) {
    pending = runTestBins(noBuild, options.binariesTimeoutMs ?? 45 * 60_000, options.log ?? defaultLog);
    binDirCache.set(key, pending);
    // A failure is not cached: a later call may succeed (e.g. after a transient network error).
    pending.catch(() => binDirCache.delete(key));
  }
  return pending;
}

function runTestBins(noBuild: boolean, timeoutMs: number, log: (message: string) => void): Promise<string> {
  return new Promise<string>((resolvePromise, reject) => {
    const args = [TEST_BINS_SCRIPT, ...(noBuild ? ["--no-build"] : [])];
    let child: ChildProcess;
    try {
      child = spawn("bash", args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      reject(new ClusterUnavailableError(`cannot run ${TEST_BINS_SCRIPT}: ${String(err)}`));
      return;
    }
    let stdout = "";
    let stderr = "";
    let lineBuf = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    // Forward progress lines (a cold build takes minutes; show it is alive),
    // but keep Go's per-module download chatter out of the test output.
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      lineBuf += chunk;
      const lines = lineBuf.split("\n");
      lineBuf = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("test-bins:")) log(line);
      }
    });
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`scripts/test-bins.sh did not finish within ${timeoutMs} ms\n${tail(stderr)}`));
    }, timeoutMs);
    timer.unref();
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new ClusterUnavailableError(`cannot run ${TEST_BINS_SCRIPT} (is bash installed?): ${err.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === TEST_BINS_UNAVAILABLE) {
        reject(
          new ClusterUnavailableError(
            "kube-apiserver/etcd/helm are not available: set KUBEBUILDER_ASSETS to a folder holding " +
              "kube-apiserver and etcd (e.g. `setup-envtest use -p path`), or install Go so " +
              "scripts/test-bins.sh can build them.\n" +
              tail(stderr, 10),
          ),
        );
        return;
      }
      if (code !== 0) {
        reject(new Error(`scripts/test-bins.sh failed (exit ${String(code)}):\n${tail(stderr)}`));
        return;
      }
      const dir = stdout.trimEnd().split("\n").pop()?.trim() ?? "";
      if (!dir) {
        reject(new Error(`scripts/test-bins.sh printed no directory\n${tail(stderr)}`));
        return;
      }
      resolvePromise(dir);
    });
  });
}

// ---------------------------------------------------------------------------
// Process bookkeeping: nothing is left running when a test fails, throws or
// the process is interrupted.

interface Managed {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
  /** Tells the watchdog the process is being stopped normally. */
  disarm(): void;
}

const liveClusters = new Set<{ killSync(): void }>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", () => {
    for (const cluster of liveClusters) cluster.killSync();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      for (const cluster of liveClusters) cluster.killSync();
      process.removeListener(signal, onSignal);
      // Keep the default behaviour (terminate) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// The exit and signal hooks cannot run when this process is killed with
// SIGKILL (e.g. a test runner's hard timeout). For that case each server gets
// a watchdog: a shell in its own process group that blocks reading a pipe from
// this process. The pipe reaches EOF only when this process dies; unless told
// "stop" first, the watchdog then kills the server and removes `cleanupDir`.
const WATCHDOG_SCRIPT = `read -r line || true
[ "$line" = stop ] && exit 0
kill -KILL "$1" 2>/dev/null
[ -n "$2" ] && { sleep 1; rm -rf -- "$2"; }
exit 0`;

function startWatchdog(pid: number, cleanupDir: string): () => void {
  let watchdog: ChildProcess;
  try {
    watchdog = spawn("sh", ["-c", WATCHDOG_SCRIPT, "watchdog", String(pid), cleanupDir], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
  } catch {
    return () => {};
  }
  watchdog.on("error", () => {});
  watchdog.stdin?.on("error", () => {});
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  let disarmed = false;
  return () => {
    if (disarmed) return;
    disarmed = true;
    // Pipe writes are synchronous on POSIX, so this also works in an 'exit' hook.
    watchdog.stdin?.end("stop\n");
  };
}

function startProcess(name: string, command: string, args: string[], logPath: string, cleanupDir = ""): Managed {
  const fd = openSync(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    child.once("exit", () => resolveExit());
    child.once("error", () => resolveExit());
  });
  const disarm = child.pid === undefined ? () => {} : startWatchdog(child.pid, cleanupDir);
  void exited.then(disarm);
  return { name, child, logPath, exited, disarm };
}

function isRunning(proc: Managed): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null && proc.child.pid !== undefined;
}

async function stopProcess(proc: Managed, graceMs: number): Promise<void> {
  proc.disarm();
  if (!isRunning(proc)) return;
  proc.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(true), graceMs);
  });
  const done = await Promise.race([proc.exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (done && isRunning(proc)) {
    proc.child.kill("SIGKILL");
    await proc.exited;
  }
}

/** What was appended to a log file after byte `offset` (a restarted process appends to its old log). */
function logSince(path: string, offset: number): string {
  let fd: number | undefined;
  try {
    const size = statSync(path).size;
    if (size <= offset) return "";
    const buf = Buffer.alloc(size - offset);
    fd = openSync(path, "r");
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function logTail(proc: Managed, lines = 30): string {
  try {
    return tail(readFileSync(proc.logPath, "utf8"), lines);
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------
// Helpers

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((r, j) => {
        server.once("error", j);
        server.listen(0, "127.0.0.1", () => r());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** GET `url`, answered within 2 s: etcd over plain HTTP, the API server through the tests' HTTPS client. */
function httpGetStatus(
  url: string,
  options: { readonly ca?: string; readonly headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  if (url.startsWith("https:")) return httpsRequest(url, { ...options, timeoutMs: 2000, agent: https.globalAgent });
  return new Promise((resolveGet, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolveGet({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** Poll `check` until it returns true; fail early if one of `procs` exits. */
async function waitFor(what: string, deadline: number, procs: Managed[], check: () => Promise<boolean>): Promise<void> {
  let lastError = "";
  for (;;) {
    for (const proc of procs) {
      if (!isRunning(proc)) {
        throw new ClusterStartError(
          `${proc.name} exited (code ${String(proc.child.exitCode)}, signal ${String(proc.child.signalCode)}) ` +
            `while waiting for ${what}; log ${proc.logPath}:\n${logTail(proc)}`,
        );
      }
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `--- ${p.name} (${p.logPath}):\n${logTail(p)}`).join("\n");
      throw new ClusterStartError(
        `timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ""}\n${logs}`,
      );
    }
    await sleep(100);
  }
}

/**
 * kube-apiserver's self-signed apiserver.crt holds the serving certificate
 * followed by the CA that signed it; return the CA (or the whole bundle).
 */
function caFromBundle(bundle: string): string {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  for (const block of blocks) {
    if (new X509Certificate(block).ca) return block.endsWith("\n") ? block : `${block}\n`;
  }
  return bundle;
}

function execFile(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  cwd?: string,
): Promise<ExecResult> {
  return new Promise((resolveExec, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveExec({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------
// startCluster

/**
 * Start etcd and kube-apiserver on 127.0.0.1 and return a handle with an
 * admin client. Always call stop() (e.g. in an after() hook); the process
 * exit/signal hooks are only a safety net.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? defaultLog;
  const binDir = options.binDir ?? (await resolveBinDir(options));
  for (const bin of ["kube-apiserver", "etcd", "helm"]) {
    if (!existsSync(join(binDir, bin))) {
      throw new ClusterUnavailableError(`${join(binDir, bin)} does not exist`);
    }
  }

  // Free ports are picked before the processes bind them; on the rare clash
  // with another process, start again with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binDir, options, log);
    } catch (err) {
      const clash = err instanceof ClusterStartError && /address already in use/i.test(err.message);
      if (!clash || attempt >= 3) throw err;
      log(`port clash, retrying (${err.message.split("\n")[0]})`);
    }
  }
}

async function startOnce(
  binDir: string,
  options: StartClusterOptions,
  log: (message: string) => void,
): Promise<Cluster> {
  const started = Date.now();
  const deadline = started + (options.startTimeoutMs ?? 90_000);
  const tmpDir = mkdtempSync(join(tmpdir(), "sidecar-injector-e2e-"));
  const certDir = join(tmpDir, "certs");
  const helmPath = join(binDir, "helm");
  const procs: Managed[] = [];
  let stopped = false;

  const handle = {
    killSync(): void {
      for (const proc of procs) {
        proc.disarm();
        if (isRunning(proc)) proc.child.kill("SIGKILL");
      }
      if (!options.keepTempDir) rmSync(tmpDir, { recursive: true, force: true });
    },
  };
  installExitHooks();
  liveClusters.add(handle);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // API server first: it holds connections to etcd.
    for (const proc of [...procs].reverse()) await stopProcess(proc, 10_000);
    liveClusters.delete(handle);
    if (!options.keepTempDir) rmSync(tmpDir, { recursive: true, force: true });
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiPort] = (await freePorts(3)) as [number, number, number];
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;

    // --- etcd
    const etcd = startProcess(
      "etcd",
      join(binDir, "etcd"),
      [
        "--name=default",
        `--data-dir=${join(tmpDir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      join(tmpDir, "etcd.log"),
      options.keepTempDir ? "" : tmpDir,
    );
    procs.push(etcd);

    // --- credentials for kube-apiserver (generated while etcd starts)
    const token = randomBytes(24).toString("hex");
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const saKeyPath = join(tmpDir, "sa.key");
    const saPubPath = join(tmpDir, "sa.pub");
    const tokensPath = join(tmpDir, "tokens.csv");
    await writeFile(saKeyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    await writeFile(saPubPath, publicKey.export({ type: "spki", format: "pem" }));
    // token,user,uid,"groups"
    await writeFile(tokensPath, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });

    await waitFor("etcd /health", deadline, [etcd], async () => {
      const res = await httpGetStatus(`${etcdUrl}/health`);
      return res.status === 200 && res.body.includes('"health":"true"');
    });

    // --- kube-apiserver (flags after envtest's defaults)
    const apiArgs = [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${certDir}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${saPubPath}`,
      `--service-account-signing-key-file=${saKeyPath}`,
      `--token-auth-file=${tokensPath}`,
      "--authorization-mode=RBAC",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      ...(options.serviceAccountAdmission ? [] : ["--disable-admission-plugins=ServiceAccount"]),
      ...(options.mutatingAdmissionPolicy ? MUTATING_ADMISSION_POLICY_ARGS : []),
      ...(options.apiServerArgs ?? []),
    ];
    const apiLogPath = join(tmpDir, "kube-apiserver.log");
    const launchApiServer = (): Managed => {
      const proc = startProcess("kube-apiserver", join(binDir, "kube-apiserver"), apiArgs, apiLogPath);
      procs.push(proc);
      return proc;
    };
    let apiserver = launchApiServer();

    const server = `https://127.0.0.1:${apiPort}`;
    const servingCertPath = join(certDir, "apiserver.crt");
    let caPem = "";
    await waitFor("kube-apiserver serving certificate", deadline, procs, async () => {
      if (!existsSync(servingCertPath)) return false;
      caPem = caFromBundle(await readFile(servingCertPath, "utf8"));
      return caPem.length > 0;
    });
    const auth = { ca: caPem, headers: { Authorization: `Bearer ${token}` } };
    await waitFor(
      "kube-apiserver /readyz",
      deadline,
      procs,
      async () => (await httpGetStatus(`${server}/readyz`, auth)).status === 200,
    );
    // The bootstrap controller creates the default namespace shortly after readiness.
    await waitFor(
      "namespace default",
      deadline,
      procs,
      async () => (await httpGetStatus(`${server}/api/v1/namespaces/default`, auth)).status === 200,
    );

    // --- admin kubeconfig (JSON is valid YAML for every kubeconfig reader)
    const kubeconfigPath = join(tmpDir, "kubeconfig");
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "e2e", cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") } },
      ],
      users: [{ name: "admin", user: { token } }],
      contexts: [{ name: "e2e", context: { cluster: "e2e", user: "admin", namespace: "default" } }],
      "current-context": "e2e",
    };
    await writeFile(kubeconfigPath, `${JSON.stringify(kubeconfig, null, 2)}\n`, { mode: 0o600 });

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      HELM_CACHE_HOME: join(tmpDir, "helm", "cache"),
      HELM_CONFIG_HOME: join(tmpDir, "helm", "config"),
      HELM_DATA_HOME: join(tmpDir, "helm", "data"),
    };

    const request = async <T = unknown>(
      method: string,
      path: string,
      body?: unknown,
      reqOptions: RequestOptions = {},
    ): Promise<KubeResponse<T>> => {
      const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      const res = await httpsRequest(new URL(path, server), {
        method,
        ca: caPem,
        // Connections kept alive across the suite's many calls, as Node's default agent does.
        agent: https.globalAgent,
        timeoutMs: reqOptions.timeoutMs ?? 30_000,
        headers: {
          ...auth.headers,
          Accept: "application/json",
          ...(payload === undefined ? {} : { "Content-Type": reqOptions.contentType ?? "application/json" }),
        },
        ...(payload === undefined ? {} : { body: payload }),
      });
      let json: unknown = null;
      if (res.body.length > 0) {
        try {
          json = JSON.parse(res.body);
        } catch {
          json = null;
        }
      }
      return { status: res.status, json: json as T, text: res.body, headers: res.headers };
    };

    const createNamespace = async (name: string, labels: Record<string, string> = {}): Promise<void> => {
      const ns = await request("POST", "/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels },
      });
      if (ns.status !== 201 && ns.status !== 409)
        throw new Error(`creating namespace ${name}: ${ns.status} ${ns.text}`);
      const sa = await request("POST", `/api/v1/namespaces/${encodeURIComponent(name)}/serviceaccounts`, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default" },
      });
      if (sa.status !== 201 && sa.status !== 409)
        throw new Error(`creating ServiceAccount ${name}/default: ${sa.status} ${sa.text}`);
    };

    const helm = (args: string[], helmOptions: { timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> =>
      execFile(helmPath, args, env, helmOptions.timeoutMs ?? 120_000, helmOptions.cwd);

    // --- stopping and starting kube-apiserver alone. Calls are serialised, so a
    // restart never overlaps a stop or another start.
    let lifecycle: Promise<void> = Promise.resolve();
    const serialised = (what: string, step: () => Promise<void>): Promise<void> => {
      const run = lifecycle.then(() => {
        if (stopped) throw new Error(`cannot ${what}: the cluster is stopped`);
        return step();
      });
      lifecycle = run.catch(() => {});
      return run;
    };

    const stopApiServer = (stopOptions: { graceMs?: number } = {}): Promise<void> =>
      serialised("stop kube-apiserver", async () => {
        if (!isRunning(apiserver)) return;
        const stopStarted = Date.now();
        await stopProcess(apiserver, stopOptions.graceMs ?? 10_000);
        log(`kube-apiserver stopped in ${Date.now() - stopStarted} ms`);
      });

    const startApiServer = (): Promise<void> =>
      serialised("start kube-apiserver", async () => {
        if (isRunning(apiserver)) return;
        const restartStarted = Date.now();
        const restartDeadline = restartStarted + (options.startTimeoutMs ?? 90_000);
        // The port was free while it was ours, but an outgoing connection may
        // briefly hold it as its local port: try again on that clash.
        for (let attempt = 1; ; attempt++) {
          const logOffset = fileSize(apiLogPath);
          const previous = apiserver;
          procs.splice(procs.indexOf(previous), 1);
          apiserver = launchApiServer();
          try {
            await waitFor(
              "restarted kube-apiserver /readyz",
              restartDeadline,
              procs,
              async () => (await httpGetStatus(`${server}/readyz`, auth)).status === 200,
            );
            break;
          } catch (err) {
            if (stopped) throw new Error("cannot start kube-apiserver: the cluster is stopped", { cause: err });
            const clash = /address already in use/i.test(logSince(apiLogPath, logOffset));
            await stopProcess(apiserver, 5_000);
            if (!clash || attempt >= 3 || Date.now() > restartDeadline) throw err;
            log(`kube-apiserver port ${apiPort} is busy, retrying`);
            await sleep(500);
          }
        }
        log(`kube-apiserver ready again in ${Date.now() - restartStarted} ms`);
      });

    const restartApiServer = async (): Promise<void> => {
      await stopApiServer();
      await startApiServer();
    };

    const apiServerRunning = (): boolean => isRunning(apiserver);

    log(`cluster ready at ${server} in ${Date.now() - started} ms (logs in ${tmpDir})`);
    return {
      server,
      kubeconfigPath,
      token,
      caPem,
      binDir,
      helmPath,
      etcdUrl,
      tmpDir,
      env,
      request,
      createNamespace,
      helm,
      stopApiServer,
      startApiServer,
      restartApiServer,
      apiServerRunning,
      stop,
    };
  } catch (err) {
    // Include the logs before they are removed with the temp dir.
    await stop();
    throw err;
  }
}

/**
 * A cluster for one test file, or why its tests are skipped: when the binaries cannot be had
 * the suite is skipped with a loud message, unless SIDECAR_INJECTOR_E2E_REQUIRED=1 (CI), where
 * that is an error.
 */
export async function clusterForSuite(
  suite: string,
  options: StartClusterOptions = {},
): Promise<{ cluster: Cluster | undefined; skip: string | false }> {
  try {
    return { cluster: await startCluster(options), skip: false };
  } catch (e) {
    if (e instanceof ClusterUnavailableError && process.env.SIDECAR_INJECTOR_E2E_REQUIRED !== "1") {
      const skip = `no test cluster: ${e.message}`;
      process.stderr.write(
        `\n*** ${suite.toUpperCase()} SKIPPED ***\n${skip}\nSet KUBEBUILDER_ASSETS or install Go to run them.\n\n`,
      );
      // Counted in the run's "skipped" total (a skipped suite is not).
      test(suite, { skip }, () => undefined);
      return { cluster: undefined, skip };
    }
    throw e;
  }
}
