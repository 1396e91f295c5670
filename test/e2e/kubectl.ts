// A real kubectl for the end-to-end tests: $KUBECTL, else $KUBEBUILDER_ASSETS/kubectl, else
// `kubectl` on PATH. gcloud's `kubectl` is a dispatcher that first asks the server for its
// version and then runs one of the versioned binaries beside it (`kubectl.1.33` …); against
// something that is not an API server it cannot choose, so the newest of those is used directly.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";

function clientVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ["version", "--client"], { encoding: "utf8", timeout: 20_000 });
  return r.status === 0 ? r.stdout : undefined;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The path of a usable kubectl, or why there is none. */
export function findKubectl(): { path: string } | { missing: string } {
  const candidates = [
    process.env.KUBECTL,
    process.env.KUBEBUILDER_ASSETS && join(process.env.KUBEBUILDER_ASSETS, "kubectl"),
    onPath("kubectl"),
  ];
  for (const candidate of candidates) {
    if (!candidate || !existsSync(candidate)) continue;
    const version = clientVersion(candidate);
    if (version === undefined) continue;
    if (!version.includes("dispatcher")) return { path: candidate };
    const dir = dirname(realpathSync(candidate));
    const versioned = readdirSync(dir)
      .map((f) => /^kubectl\.1\.(\d+)$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    for (const m of versioned) {
      const path = join(dir, m[0]);
      if (clientVersion(path) !== undefined) return { path };
    }
  }
  return { missing: "no kubectl found (set KUBECTL, or put kubectl in KUBEBUILDER_ASSETS or on PATH)" };
}

export interface KubectlRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runKubectl(
  path: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): Promise<KubectlRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}
