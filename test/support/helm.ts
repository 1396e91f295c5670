// The helm the chart tests run: HELM, else the one scripts/test-bins.sh provides (it may build
// it with Go the first time). One locator, one way to run it, for every test that renders the chart.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CHART = join(REPO_ROOT, "charts", "sidecar-injector");
const TEST_BINS = join(REPO_ROOT, "scripts", "test-bins.sh");
export const HELM_TIMEOUT_MS = 60_000;
/** scripts/test-bins.sh may build kube-apiserver, etcd and helm from source the first time. */
const TEST_BINS_TIMEOUT_MS = 45 * 60_000;
/**
 * The Kubernetes version helm renders for. Given explicitly: a helm built without its
 * Makefile's version stamps assumes an old one, below the chart's kubeVersion.
 */
export const KUBE_VERSION = "1.34.0";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<ExecResult> {
  return new Promise((resolvePromise) => {
    execFile(
      file,
      args,
      { cwd: REPO_ROOT, env: env ?? process.env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) {
          resolvePromise({ code: 0, stdout, stderr });
          return;
        }
        const code = typeof err.code === "number" ? err.code : -1;
        const why = err.killed
          ? `killed after ${timeoutMs} ms (${String(err.signal)})`
          : typeof err.code === "string"
            ? err.code
            : "";
        resolvePromise({ code, stdout, stderr: why ? `${stderr}\n${why}: ${err.message}` : stderr });
      },
    );
  });
}

export type HelmLookup = { ok: true; path: string } | { ok: false; reason: string };

async function works(helm: string): Promise<string | undefined> {
  try {
    await access(helm, constants.X_OK);
  } catch {
    return `${helm} is not an executable file`;
  }
  const r = await run(helm, ["version", "--short"], HELM_TIMEOUT_MS);
  return r.code === 0 ? undefined : `${helm} version failed (exit ${r.code}): ${r.stderr.trim()}`;
}

export async function locateHelm(): Promise<HelmLookup> {
  const fromEnv = process.env.HELM;
  if (fromEnv) {
    const problem = await works(fromEnv);
    return problem === undefined ? { ok: true, path: fromEnv } : { ok: false, reason: `HELM=${fromEnv}: ${problem}` };
  }
  const r = await run("bash", [TEST_BINS], TEST_BINS_TIMEOUT_MS);
  if (r.code !== 0) {
    const tail = r.stderr.trimEnd().split("\n").slice(-10).join("\n");
    return { ok: false, reason: `scripts/test-bins.sh failed (exit ${r.code}):\n${tail}` };
  }
  const dir = r.stdout.trimEnd().split("\n").pop()?.trim() ?? "";
  if (!dir) return { ok: false, reason: "scripts/test-bins.sh printed no directory" };
  const path = join(dir, "helm");
  const problem = await works(path);
  return problem === undefined ? { ok: true, path } : { ok: false, reason: problem };
}

/**
 * The one skip gate of the tests that run helm: helm found; else, with
 * SIDECAR_INJECTOR_E2E_REQUIRED=1, a failing test saying why; else a loud notice on standard
 * error and one skipped test (counted in the run's "skipped" total, which a skipped suite is
 * not). `skip` is the option for the suite that needs helm; `what` names that suite.
 */
export async function helmGate(what: string): Promise<{ lookup: HelmLookup; skip: string | false }> {
  const lookup = await locateHelm();
  if (lookup.ok) return { lookup, skip: false };
  if (process.env.SIDECAR_INJECTOR_E2E_REQUIRED === "1") {
    test("helm is available (SIDECAR_INJECTOR_E2E_REQUIRED=1)", () => {
      assert.fail(`helm is required but not available: ${lookup.reason}`);
    });
  } else {
    const bar = "!".repeat(78);
    process.stderr.write(
      `\n${bar}\n!! SKIPPING ${what}: no helm.\n!! ${lookup.reason.replaceAll("\n", "\n!! ")}\n` +
        `!! Set HELM to a helm binary, or let scripts/test-bins.sh build one (needs Go);\n` +
        `!! SIDECAR_INJECTOR_E2E_REQUIRED=1 turns this skip into a failure.\n${bar}\n\n`,
    );
    test(what, { skip: `no helm: ${lookup.reason}` }, () => {});
  }
  return { lookup, skip: `no helm: ${lookup.reason}` };
}
