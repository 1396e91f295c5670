// Collects the real-world corpus (cases/inputs.jsonl.gz): the Pod-bearing documents of public,
// Apache-2.0 licensed repositories at pinned commits — plain manifests as their authors wrote
// them, and Helm charts rendered with `helm template` — one case per document, with its origin.
//
//   node --import tsx test/realworld/collect.ts --git-root DIR [--helm PATH] > inputs.jsonl
//
// Each repository is read from a git clone (bare or not) holding its pinned commit, found at
// DIR/<owner>+<name>/repo, DIR/<owner>+<name> or DIR/<owner>/<name>. A document is kept when it
// stands for a Pod (a Pod, or a workload's pod template: what `inject` would inject); Lists are
// split into their items. The same document met twice (by content) is kept once. A document our
// parser refuses is not dropped quietly: it is kept when a tolerant read makes it a Pod (Istio's
// recorded answer then says what it is, and the test compares ours with it), and either way it is
// named on standard error.
// A case is `{"id","manifest","origin"}`: id `<repo>:<path>#<n>` (the n-th document of the file,
// from 1; a chart's as `<repo>:<chart>[<values>]#<n>`), origin the repository, commit, path,
// document and licence. regen.sh runs this, then the oracle.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { podOf } from "../../src/injection/workloads.js";
import { parseWithContinuations } from "../../src/injection/yaml-layout.js";
import { parseManifest } from "../../src/manifest.js";

interface Files {
  readonly repo: string;
  readonly commit: string;
  /** Path prefixes whose .yaml/.yml/.json files are read. */
  readonly under: readonly string[];
  /** Paths (prefixes) left out: test fixtures of the project's own code, not manifests. */
  readonly skip?: readonly string[];
  /** The repository's licence, when not Apache-2.0. */
  readonly licence?: string;
}

interface Chart {
  readonly repo: string;
  readonly commit: string;
  readonly chart: string;
  /** Values files of the chart's directory, one render each; "" for the chart's defaults. */
  readonly values: readonly string[];
  readonly namespace: string;
  /** --set flags, for charts whose release tooling fills values in. */
  readonly set?: readonly string[];
  /** Also one render with each values file of the chart's `ci/` directory (the chart's own CI cases). */
  readonly ci?: boolean;
}

const LICENCE = "Apache-2.0";

export const FILES: readonly Files[] = [
  { repo: "istio/istio", commit: "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c", under: ["samples/"] },
  { repo: "kubernetes/examples", commit: "279e8e4fe314f6cb7bc55fa3fbc21bbeaa48c0ea", under: [""] },
  {
    repo: "GoogleCloudPlatform/microservices-demo",
    commit: "34ffea9175946982c3088ed84994fe6019ad6e92",
    under: ["kubernetes-manifests/", "release/", "kustomize/"],
  },
  {
    repo: "argoproj/argo-cd",
    commit: "37ee0097cf851bc2dd7665fc081bbce61a7e836e",
    under: ["manifests/"],
  },
  {
    repo: "prometheus-operator/kube-prometheus",
    commit: "4d719f1dea8853540b3823ab1fbe6be74a9953b3",
    under: ["manifests/", "examples/"],
  },
  {
    repo: "kubernetes/ingress-nginx",
    commit: "dbb11b92ddb77bee9c35e462479129354c84f939",
    under: ["deploy/", "docs/examples/"],
  },
  {
    repo: "cert-manager/cert-manager",
    commit: "2d0d7f7f74241a9cbf79f0e2a7bb247238ee09fd",
    under: ["deploy/manifests/"],
  },
  {
    repo: "GoogleCloudPlatform/kubernetes-engine-samples",
    commit: "2b5036514162a489145c5e5570bc320efbcb37bf",
    under: [""],
  },
  { repo: "dockersamples/example-voting-app", commit: "63e9150ca17af4ed05880d4245e486481f73fcb4", under: [""] },
  { repo: "tektoncd/pipeline", commit: "3ee1745ae5b2d9175b11917d7c1935eaad44910c", under: ["config/"] },
  { repo: "kubernetes-sigs/metrics-server", commit: "5ed5d3a2cf940a8c7541cfbac19af822f4c97844", under: ["manifests/"] },
  {
    repo: "Azure-Samples/aks-store-demo",
    commit: "7ce10c5110d6a52d3517dfb6d7a7b7b2edf2e5a5",
    under: [""],
    licence: "MIT",
  },
  {
    // Sock Shop: the complete demo, its manifests and the monitoring, logging, tracing, alerting,
    // load-test and autoscaling add-ons (the Helm chart needs a dependency it does not vendor).
    repo: "microservices-demo/microservices-demo",
    commit: "9dff06fae4981921caec6a62393a6ebfce4b3e3f",
    under: ["deploy/kubernetes/"],
  },
];

const PROMETHEUS_COMMUNITY = "cf408a290aec489277a94450bb3511432477a53a";
const OTEL_CHARTS = "dd5665c06f376c00a5e2147aa84b70c3d105ecfb";

export const CHARTS: readonly Chart[] = [
  ...[
    "alertmanager",
    "kube-state-metrics",
    "prometheus-adapter",
    "prometheus-blackbox-exporter",
    "prometheus-node-exporter",
    "prometheus-pushgateway",
    "prometheus-mysql-exporter",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "prometheus-snmp-exporter",
    "prometheus-statsd-exporter",
    "prometheus-operator-admission-webhook",
    "prometheus-elasticsearch-exporter",
    "prometheus-json-exporter",
    "prometheus-nginx-exporter",
  ].map((name): Chart => ({
    repo: "prometheus-community/helm-charts",
    commit: PROMETHEUS_COMMUNITY,
    chart: `charts/${name}`,
    values: [""],
    namespace: "monitoring",
    ci: true,
  })),
  ...["opentelemetry-collector", "opentelemetry-operator", "opentelemetry-target-allocator"].map((name): Chart => ({
    repo: "open-telemetry/opentelemetry-helm-charts",
    commit: OTEL_CHARTS,
    chart: `charts/${name}`,
    values: [""],
    namespace: "observability",
    ci: true,
  })),
  {
    repo: "istio/istio",
    commit: "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c",
    chart: "manifests/charts/gateway",
    values: [""],
    namespace: "istio-ingress",
  },
  {
    repo: "istio/istio",
    commit: "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c",
    chart: "manifests/charts/istio-control/istio-discovery",
    values: [""],
    namespace: "istio-system",
  },
  {
    repo: "kubernetes/ingress-nginx",
    commit: "dbb11b92ddb77bee9c35e462479129354c84f939",
    chart: "charts/ingress-nginx",
    values: [
      "",
      "ci/controller-daemonset-metrics-values.yaml",
      "ci/controller-daemonset-podannotations-values.yaml",
      "ci/controller-deployment-podannotations-values.yaml",
      "ci/admission-webhooks-cert-manager-values.yaml",
    ],
    namespace: "ingress-nginx",
  },
  {
    repo: "cert-manager/cert-manager",
    commit: "2d0d7f7f74241a9cbf79f0e2a7bb247238ee09fd",
    chart: "deploy/charts/cert-manager",
    values: [""],
    namespace: "cert-manager",
    set: ["crds.enabled=false"],
  },
  {
    repo: "istio/istio",
    commit: "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c",
    chart: "manifests/charts/ztunnel",
    values: [""],
    namespace: "istio-system",
  },
  {
    repo: "istio/istio",
    commit: "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c",
    chart: "manifests/charts/istio-cni",
    values: [""],
    namespace: "istio-system",
  },
  {
    repo: "kubernetes-sigs/metrics-server",
    commit: "5ed5d3a2cf940a8c7541cfbac19af822f4c97844",
    chart: "charts/metrics-server",
    values: [""],
    namespace: "kube-system",
  },
  {
    repo: "GoogleCloudPlatform/microservices-demo",
    commit: "34ffea9175946982c3088ed84994fe6019ad6e92",
    chart: "helm-chart",
    values: [""],
    namespace: "onlineboutique",
  },
];

export interface Origin {
  readonly repo: string;
  readonly commit: string;
  readonly path: string;
  /** The document's place in the file (from 1), or in the chart's rendering. */
  readonly document: number;
  readonly licence: string;
  /** For a rendered chart: `helm template` with these values. */
  readonly helm?: { readonly values: string; readonly namespace: string; readonly set: readonly string[] };
}

export interface RealWorldInput {
  readonly id: string;
  readonly manifest: string;
  readonly origin: Origin;
}

function gitDir(root: string, repo: string): string {
  const [owner, name] = repo.split("/") as [string, string];
  for (const d of [join(root, `${owner}+${name}`, "repo"), join(root, `${owner}+${name}`), join(root, owner, name)])
    if (existsSync(d)) return d;
  throw new Error(`no clone of ${repo} under ${root}`);
}

function git(dir: string, args: readonly string[], input?: string): Buffer {
  return execFileSync("git", ["-C", dir, ...args], {
    maxBuffer: 1 << 30,
    ...(input !== undefined ? { input } : {}),
  });
}

/** The blobs at commit:path, read in one `git cat-file --batch`. */
function readBlobs(dir: string, commit: string, paths: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (paths.length === 0) return out;
  const buf = git(dir, ["cat-file", "--batch"], paths.map((p) => `${commit}:${p}\n`).join(""));
  let at = 0;
  for (const p of paths) {
    const nl = buf.indexOf(10, at);
    const header = buf.subarray(at, nl).toString("utf8").split(" ");
    const size = Number(header[2]);
    out.set(p, buf.subarray(nl + 1, nl + 1 + size).toString("utf8"));
    at = nl + 1 + size + 1;
  }
  return out;
}

/**
 * Each document's own text (comments around it included), as its author wrote it. Where the
 * `yaml` parser finds an error in the file, its documents may end early (a quoted scalar or flow
 * collection going on at any indent, as go-yaml reads it: src/injection/yaml-layout.ts), and the
 * rest of the document would be lost: the file is then cut where go-yaml's reader cuts it.
 */
function documentTexts(text: string): string[] {
  const docs = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return separatedTexts(text);
  const out: string[] = [];
  let start = 0;
  for (const doc of docs) {
    const end = doc.range[2];
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

/**
 * The text cut before each `---` line (the marker alone, or with a comment), as Kubernetes' YAML
 * reader cuts it; what comes before the first one belongs to the first document unless it holds
 * more than comments.
 */
function separatedTexts(text: string): string[] {
  const cuts = [...text.matchAll(/^---[ \t]*(#.*)?\r?$/gm)].map((m) => m.index);
  const commentsOnly = (t: string): boolean => t.split("\n").every((l) => /^\s*(#.*)?$/.test(l));
  const starts = cuts[0] !== undefined && commentsOnly(text.slice(0, cuts[0])) ? cuts.slice(1) : cuts;
  const bounds = [0, ...starts.filter((c) => c > 0), text.length];
  return bounds.slice(0, -1).map((b, i) => text.slice(b, bounds[i + 1]));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Whether a document stands for a Pod: a Pod or workload with containers. A strategic-merge
 * patch (kustomize's, shaped like a Deployment without containers, or with `$patch`) is none.
 */
function standsForPod(d: unknown): boolean {
  const located = podOf(d, "default");
  const containers = located?.pod.spec?.containers;
  return Array.isArray(containers) && containers.length > 0 && !JSON.stringify(d).includes('"$patch"');
}

/**
 * A document as a tolerant reader takes it (its continuation lines laid out as our parser does,
 * errors passed over), or undefined when even that yields no value: only to tell whether a
 * document our parser refuses stands for a Pod.
 */
function tolerantRead(text: string): unknown {
  try {
    return parseWithContinuations(text)[0]?.toJS({ maxAliasCount: 100 }) as unknown;
  } catch {
    return undefined;
  }
}

/** The document text without the `---` line that opens it. */
function ownText(t: string): string {
  return t.replace(/^\s*---[^\n]*\n/, "");
}

/**
 * The Pod-bearing documents of one file's text (`where` names it): [n, text] (a List's items each
 * as JSON). A document our parser refuses is said on standard error, and kept when a tolerant
 * read makes it a Pod.
 */
function podDocuments(text: string, where: string): [number, string][] {
  const out: [number, string][] = [];
  documentTexts(text).forEach((t, i) => {
    let docs: unknown[];
    try {
      docs = parseManifest(t, "collect");
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^collect: /, "") : String(e);
      const d = tolerantRead(t);
      const isPod = (v: unknown): boolean => {
        try {
          return standsForPod(v);
        } catch {
          return false;
        }
      };
      let verdict = "left out: no Pod by a tolerant read";
      if (isPlainObject(d) && d.kind === "List" && Array.isArray(d.items) && d.items.some(isPod))
        verdict = "left out: a List, whose items are taken only from what our parser reads";
      else if (isPlainObject(d) && d.kind !== "List" && isPod(d)) {
        verdict = "kept: a Pod by a tolerant read";
        out.push([i + 1, ownText(t)]);
      }
      process.stderr.write(`collect: ${where}#${i + 1}: our parser refuses it (${why}); ${verdict}\n`);
      return;
    }
    const d = docs[0];
    if (docs.length !== 1 || !isPlainObject(d)) return;
    if (d.kind === "List" && Array.isArray(d.items)) {
      for (const item of d.items) if (standsForPod(item)) out.push([i + 1, `${JSON.stringify(item, null, 2)}\n`]);
      return;
    }
    if (standsForPod(d)) out.push([i + 1, ownText(t)]);
  });
  return out;
}

function canonical(manifest: string): string {
  try {
    return JSON.stringify(parseManifest(manifest, "collect"));
  } catch {
    return manifest;
  }
}

function collectFiles(root: string, s: Files, add: (c: RealWorldInput) => void): void {
  const dir = gitDir(root, s.repo);
  const paths = git(dir, ["ls-tree", "-r", "--name-only", s.commit])
    .toString("utf8")
    .split("\n")
    .filter(
      (p) =>
        /\.(ya?ml|json)$/.test(p) &&
        s.under.some((u) => p.startsWith(u)) &&
        !(s.skip ?? []).some((k) => p.startsWith(k)) &&
        // Helm and other templates are rendered, not read (charts below).
        !/(^|\/)templates\//.test(p) &&
        !/(^|\/)\.github\//.test(p),
    );
  const blobs = readBlobs(dir, s.commit, paths);
  for (const p of paths) {
    const text = blobs.get(p) ?? "";
    if (text.includes("{{")) continue;
    for (const [n, manifest] of podDocuments(text, `${s.repo}:${p}`))
      add({
        id: `${s.repo}:${p}#${n}`,
        manifest,
        origin: { repo: s.repo, commit: s.commit, path: p, document: n, licence: s.licence ?? LICENCE },
      });
  }
}

function collectChart(root: string, helm: string, c: Chart, add: (c: RealWorldInput) => void): void {
  const dir = gitDir(root, c.repo);
  const tmp = mkdtempSync(join(tmpdir(), "realworld-chart-"));
  try {
    // A snapshot may lack large blobs elsewhere in the tree: git says so on stderr, the chart is whole.
    const tar = execFileSync("git", ["-C", dir, "archive", "--format=tar", c.commit, c.chart], {
      maxBuffer: 1 << 30,
      stdio: ["ignore", "pipe", "ignore"],
    });
    execFileSync("tar", ["-x", "-C", tmp], { input: tar });
    const chartDir = join(tmp, c.chart);
    const ciDir = join(chartDir, "ci");
    const ci =
      c.ci && existsSync(ciDir)
        ? readdirSync(ciDir)
            .filter((f) => /\.ya?ml$/.test(f))
            .sort()
            .map((f) => `ci/${f}`)
        : [];
    for (const values of [...c.values, ...ci]) {
      const args = ["template", "release", chartDir, "--namespace", c.namespace];
      if (values !== "") args.push("-f", join(chartDir, values));
      for (const s of c.set ?? []) args.push("--set", s);
      let text: string;
      try {
        text = execFileSync(helm, args, { maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "pipe"] }).toString("utf8");
      } catch (e) {
        // A values file that needs what a CI run provides (a secret, a cluster): said, and left out.
        const stderr = (e as { stderr?: Buffer }).stderr?.toString("utf8").split("\n")[0] ?? String(e);
        process.stderr.write(`collect: ${c.repo}:${c.chart} ${values || "(defaults)"}: not rendered: ${stderr}\n`);
        continue;
      }
      const label = values === "" ? "" : `[${values}]`;
      for (const [n, manifest] of podDocuments(text, `${c.repo}:${c.chart}${label}`))
        add({
          id: `${c.repo}:${c.chart}${label}#${n}`,
          manifest,
          origin: {
            repo: c.repo,
            commit: c.commit,
            path: c.chart,
            document: n,
            licence: LICENCE,
            helm: { values, namespace: c.namespace, set: c.set ?? [] },
          },
        });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function main(argv: readonly string[]): void {
  let root = "";
  let helm = "helm";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--git-root") root = argv[++i] ?? "";
    else if (argv[i] === "--helm") helm = argv[++i] ?? "";
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (root === "") throw new Error("--git-root DIR is required");
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  const lines: string[] = [];
  const add = (c: RealWorldInput): void => {
    const key = canonical(c.manifest);
    if (seen.has(key)) return;
    seen.add(key);
    counts.set(c.origin.repo, (counts.get(c.origin.repo) ?? 0) + 1);
    lines.push(JSON.stringify(c));
  };
  for (const s of FILES) collectFiles(root, s, add);
  for (const c of CHARTS) collectChart(root, helm, c, add);
  process.stdout.write(lines.map((l) => `${l}\n`).join(""));
  for (const [repo, n] of counts) process.stderr.write(`collect: ${repo}: ${n} documents\n`);
  process.stderr.write(`collect: ${lines.length} documents\n`);
}

main(process.argv.slice(2));
