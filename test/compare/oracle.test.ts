// `preview --compare-with` against Istio's own webhook: the oracle (test/oracle) serving
// `Webhook.serveInject` over TLS (`--serve`), with the settings of Istio's TestInjection default
// cases; this injector with the equivalent config (test/oracle/injector-config.yaml). Each
// review goes through both webhooks, as the API server would send it.
//
// - Istio's default-settings golden inputs (test/istio-golden/cases), which our conformance
//   finds identical: every Pod identical or equivalent here (by the CLI too, exit 0);
// - Istio's expectedError inputs: both refuse;
// - the deliberate differences (README "Deliberate differences from Istio"; the differential
//   corpus's known-divergences.json): each shows up as a difference or a refusal on one side,
//   but for the two named below, which differ on the kube-inject path only;
// - this project's golden inputs that need no settings of their own: identical or equivalent
//   but for the deliberate differences, and one difference of istiod's webhook from its own
//   kube-inject (named below).
//
// Skips when the oracle (test/oracle/build.sh) or the Istio checkout it reads is absent, as the
// other oracle tests do.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { directTarget, type CompareTarget } from "../../src/compare/client.js";
import { compare, isMismatch, type CompareEntry } from "../../src/compare/compare.js";
import { createCa, mintServingCert } from "../../src/certs/authority.js";
import { parseConfig } from "../../src/config/load.js";
import { parseManifest } from "../../src/manifest.js";
import { loadCorpus } from "../differential/corpus.js";
import { runCli } from "../support/run.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cache = process.env.SIDECAR_INJECTOR_CACHE ?? join(homedir(), ".cache", "sidecar-injector");
const oracle = process.env.ISTIO_ORACLE ?? join(cache, "bin", "istio-oracle-86c9f01");
const istioSrc = process.env.ISTIO_SRC ?? join(cache, "istio-86c9f01");
const missing = !existsSync(oracle)
  ? `no oracle at ${oracle} (test/oracle/build.sh builds it)`
  : !existsSync(join(istioSrc, "manifests"))
    ? `no Istio checkout at ${istioSrc}`
    : undefined;

const ISTIOD_NAME = "istiod.istio-system.svc";
const configFile = join(root, "test", "oracle", "injector-config.yaml");
const config = parseConfig(readFileSync(configFile, "utf8"), configFile);

/**
 * Known divergences (measured on the kube-inject path) on which the two webhooks agree, and
 * how: the re-injected StatefulSet gets the same Pod from both; the re-injected CronJob's Pod
 * carries `proxy.istio.io/config: "terminationDrainDuration: forever"`, which both webhooks
 * refuse (kube-inject reads the CronJob's job template metadata instead, and injects); the
 * DaemonSet in kube-system is left alone by both webhooks (an ignored namespace), where
 * kube-inject injects it; the opted-out Pod whose proxy config does not parse is left alone by
 * both webhooks (they decide before they read it), where kube-inject refuses it.
 */
const WEBHOOKS_AGREE: ReadonlyMap<string, string> = new Map([
  ["r-g0401-statefulset-interceptionMode", "identical"],
  ["r-g0414-cronjob", "both-refused"],
  ["g0865-daemonset", "identical"],
  // Re-injections whose proxy env differs only in order through kube-inject (it merges over
  // the old proxy); istiod's webhook and ours give the same order.
  ["r-g0150-multi", "identical"],
  ["r-g0445-deploymentconfig", "identical"],
  ["fx-opt-out-bad-proxy-config-classic", "identical"],
]);

/**
 * This project's golden inputs (no settings of their own) whose Pods differ through the
 * webhooks: the deliberate differences, and istiod's webhook rewriting probes to the mesh's
 * status port where the Pod's proxy.istio.io/config names another (Istio's kube-inject, and
 * we, take the Pod's: webhook.go applyRewrite reads meshConfig.defaultConfig, which only
 * kube-inject merges the annotation into).
 */
const GOLDEN_MISMATCHES = [
  "probes-agent-port.yaml Pod/agent-port different",
  "reinject.yaml Pod/probes different",
  "status-port-zero.yaml Pod/no-status different",
];

let dir = "";
let child: ChildProcess | undefined;
let url = "";
let caFile = "";
let target: CompareTarget;
let oracleLog = "";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const addr = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof addr === "object" && addr !== null ? addr.port : 0;
}

function ready(ca: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/readyz", ca, servername: ISTIOD_NAME, timeout: 2000, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function compareText(text: string, source: string): Promise<CompareEntry[]> {
  return compare(parseManifest(text, source), { config, target });
}

function summary(e: CompareEntry): string {
  return `${e.kind}/${e.name} ${e.result}`;
}

describe("preview --compare-with against Istio's own webhook (the oracle)", { skip: missing }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "compare-oracle-"));
    const now = new Date();
    const ca = await createCa({ validityMs: 3_600_000, now });
    const issuer = ca.certs[0];
    if (issuer === undefined) throw new Error("no CA certificate");
    const leaf = await mintServingCert(ca, issuer, {
      dnsNames: [ISTIOD_NAME],
      ipAddresses: [],
      validityMs: 3_600_000,
      now,
    });
    caFile = join(dir, "ca.crt");
    writeFileSync(caFile, issuer.certPem);
    writeFileSync(join(dir, "tls.crt"), leaf.certPem);
    writeFileSync(join(dir, "tls.key"), leaf.keyPem);
    const port = await freePort();
    const proc = spawn(
      oracle,
      ["--serve", `127.0.0.1:${port}`, "--tls-cert", join(dir, "tls.crt"), "--tls-key", join(dir, "tls.key")],
      { env: { ...process.env, ISTIO_SRC: istioSrc }, stdio: ["ignore", "ignore", "pipe"] },
    );
    child = proc;
    proc.stderr?.setEncoding("utf8").on("data", (c: string) => (oracleLog += c));
    let exited = false;
    proc.on("exit", () => (exited = true));
    // Ready when /readyz answers (the charts rendered, the webhook built): polled, at most
    // 600 times, giving up at once if the oracle exits.
    for (let i = 0; i < 600 && !exited; i++) {
      if (await ready(issuer.certPem, port)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(!exited && (await ready(issuer.certPem, port)), `the oracle did not serve: ${oracleLog.slice(0, 2000)}`);
    url = `https://127.0.0.1:${port}/inject`;
    target = await directTarget(new URL(url), { caFile, tlsServerName: ISTIOD_NAME });
  });

  after(() => {
    child?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("Istio's golden inputs: every Pod identical or equivalent, as our conformance finds them", async () => {
    const casesDir = join(root, "test", "istio-golden", "cases");
    const files = readdirSync(casesDir)
      .filter((f) => f.endsWith(".yaml"))
      .sort();
    const results = new Map<string, number>();
    let pods = 0;
    for (const f of files) {
      const text = readFileSync(join(casesDir, f), "utf8");
      if (f === "hello-service.yaml") {
        await assert.rejects(compareText(text, f), /no Pod, workload or AdmissionReview/);
        continue;
      }
      for (const e of await compareText(text, f)) {
        pods++;
        results.set(e.result, (results.get(e.result) ?? 0) + 1);
        assert.ok(!isMismatch(e.result), `${f} ${summary(e)}: ${JSON.stringify(e.differences.slice(0, 3))}`);
        if (e.result === "equivalent")
          assert.ok(
            e.differences.every((d) => d.equivalent !== undefined),
            `${f}: every difference says why it changes nothing`,
          );
      }
    }
    assert.ok(pods >= 70, `${pods} Pods compared`);
    assert.ok((results.get("identical") ?? 0) > (results.get("equivalent") ?? 0), JSON.stringify([...results]));

    // The CLI over the whole directory: the same count, exit 0.
    const r = await runCli(
      [
        "preview",
        "-f",
        casesDir,
        "--config",
        configFile,
        "--compare-with",
        url,
        "--compare-ca",
        caFile,
        "--tls-server-name",
        ISTIOD_NAME,
        "-o",
        "json",
      ],
      { env: { ...process.env, KUBECONFIG: join(dir, "none") } },
    );
    assert.equal(r.code, 0, r.stderr);
    const items = (JSON.parse(r.stdout) as { items: CompareEntry[] }).items;
    assert.equal(items.length, pods);
    assert.equal(items.filter((e) => e.result === "identical").length, results.get("identical"));
  });

  test("Istio's expectedError inputs: both refuse, each message given", async () => {
    const cases = readFileSync(join(root, "test", "oracle", "istio-refusal-cases.txt"), "utf8")
      .split("\n")
      .filter((l) => l.trim() && !l.startsWith("#"))
      .map((l) => l.split(/\s+/) as [string, string]);
    assert.equal(cases.length, 5);
    for (const [file, word] of cases) {
      const text = readFileSync(join(istioSrc, "pkg", "kube", "inject", "testdata", "inject", file), "utf8");
      const entries = await compareText(text, file);
      assert.ok(entries.length > 0);
      for (const e of entries) {
        assert.equal(e.result, "both-refused", `${file} ${summary(e)}`);
        assert.match(e.istiod.message ?? "", new RegExp(word, "i"));
        assert.match(e.ours.message ?? "", /^sidecar-injector: invalid annotation /);
      }
    }
  });

  test("the deliberate differences show up: the corpus's known divergences, a mode Istio admits", async () => {
    const known = JSON.parse(
      readFileSync(join(root, "test", "differential", "known-divergences.json"), "utf8"),
    ) as Record<string, string>;
    const corpus = loadCorpus().filter((c) => Object.hasOwn(known, c.id));
    assert.equal(corpus.length, Object.keys(known).length);
    let shown = 0;
    for (const c of corpus) {
      const entries = await compareText(c.manifest, c.id);
      const agree = WEBHOOKS_AGREE.get(c.id);
      if (agree !== undefined) {
        // Each of its workloads.
        assert.ok(entries.length > 0, c.id);
        assert.deepEqual(
          entries.map((e) => e.result),
          entries.map(() => agree),
          c.id,
        );
        continue;
      }
      assert.ok(
        entries.some((e) => isMismatch(e.result)),
        `${c.id} (${known[c.id]}): ${entries.map(summary).join(", ")}`,
      );
      shown++;
    }
    assert.equal(shown, Object.keys(known).length - WEBHOOKS_AGREE.size);

    // README: `proxy.istio.io/config: "interceptionMode: 7"`: Istio admits it, we refuse.
    const [mode7] = await compareText(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: mode7, annotations: {proxy.istio.io/config: 'interceptionMode: 7'}}\nspec: {containers: [{name: app, image: nginx}]}\n",
      "mode7",
    );
    assert.equal(mode7?.result, "refused-by-ours-only");
    assert.equal(mode7?.istiod.answer, "injected");
    assert.match(mode7?.ours.message ?? "", /interceptionMode must be one of REDIRECT, TPROXY, NONE/);
  });

  test("this project's golden inputs: identical or equivalent but for the named differences", async () => {
    const goldenDir = join(root, "test", "golden");
    const mismatches: string[] = [];
    for (const f of readdirSync(goldenDir).sort()) {
      if (
        !f.endsWith(".yaml") ||
        f.endsWith(".config.yaml") ||
        existsSync(join(goldenDir, f.replace(/\.yaml$/, ".config.yaml")))
      )
        continue;
      for (const e of await compareText(readFileSync(join(goldenDir, f), "utf8"), f))
        if (isMismatch(e.result)) mismatches.push(`${f} ${summary(e)}`);
    }
    assert.deepEqual(mismatches, GOLDEN_MISMATCHES);
    const [agentPort] = (
      await compareText(readFileSync(join(goldenDir, "probes-agent-port.yaml"), "utf8"), "p")
    ).filter((e) => e.name === "agent-port");
    assert.deepEqual(
      agentPort?.differences.map((d) => [d.path, d.ours, d.istiod]),
      [
        ['.metadata.annotations["prometheus.io/port"]', "15030", "15020"],
        [".spec.containers[name=web].readinessProbe.httpGet.port", 15030, 15020],
      ],
    );
  });
});
