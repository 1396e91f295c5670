#!/usr/bin/env node
// `sidecar-injector inject | serve`: argument parsing only; the work is done elsewhere.
import { readdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { extname, join } from "node:path";
import { parseArgs } from "node:util";
import { exitStatusOf } from "./admission/errors.js";
import type { Config } from "./config/types.js";
import { InjectionError } from "./injection/types.js";
import { quote, quoteName } from "./injection/quote.js";
import { CERT_MODES, DEFAULT_NAMES, type CertMode } from "./certs/modes.js";
import type { InjectedTemplate } from "./injection/workloads.js";
import type { PreviewEntry } from "./preview.js";
import { CONFIG_IMPORT_USAGE } from "./istio/usage.js";
import { fileProblem } from "./file-problem.js";
import { isParseArgsError, parseArgsProblem } from "./args-problem.js";
// Each command imports what it uses when it runs: `--help` and `certs status` never load the
// YAML parser or the injection engine, and `serve` loads them once, through main.ts.

/** The items of a /preview answer, as the injector (this same program) writes them. */
type PreviewEntryList = readonly PreviewEntry[];

const USAGE = `Usage: sidecar-injector <command> [options]

Commands:
  inject        inject the sidecar into manifests, offline or with the cluster's injector
                config (--from-cluster; like istioctl kube-inject)
  serve         run the admission webhook over HTTPS
  preview       show what would be injected into manifests, and why
  certs status  show the CA, the published caBundle and the serving certificate
  check         which injectors the cluster would call for stored Pods and workloads, and why
  config import write this injector's config from Istio's injector ConfigMaps
  policy render print the injection as a MutatingAdmissionPolicy and its bindings
  policy check  which Pods of manifests that policy would inject, and which it leaves to
                the webhook, and why
  completion    print a shell completion script: bash, zsh or fish
  version       print the version (also --version)
  help          print a command's options (also <command> --help)

Exit status, the same for every command:
  0  done, nothing wrong: every document injected or skipped by policy, no Pod refused,
     no error finding (check), no problem (certs status)
  1  done, and something is wrong with the objects: a document refused (inject), a Pod the
     injector would refuse (preview), an error finding (check), a problem that would fail
     admissions (certs status)
  2  not done: a usage error (unknown command or option, missing or bad value, options that
     exclude each other), or a file, config, cluster or injector that could not be read or
     reached
  141  stopped: the output's reader closed the pipe (e.g. "| head"), as Unix tools do

Run "sidecar-injector help <command>" (or "<command> --help") for a command's options,
"sidecar-injector --version" for the version, "sidecar-injector completion bash|zsh|fish"
for a shell completion script.
`;

const INJECT_USAGE = `Usage: sidecar-injector inject -f FILE|DIR|- [options]

Reads Pods and workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob, DeploymentConfig, List; several YAML documents
in one file) and prints them injected, in the same order. Other documents are printed
unchanged. A manifest without a namespace is in the --namespace one.

For each Pod or workload, one line on standard error, like kubectl's: KIND/NAME (FILE,
document N): injected, skipped: why, or refused: why (naming the annotation), and its
warnings. When a document is refused, every one is still reported, nothing is printed on
standard output, and the exit status is 1.

Options:
  -f, --filename FILE   a manifest file, a directory (its .yaml, .yml and .json files, in
                        name order, like kubectl), or - for standard input; repeatable (required)
  -R, --recursive       with a directory: its subdirectories too
      --config FILE     injector config (YAML); defaults apply to keys left out
      --from-cluster    instead of --config: the config of the injector installed in the
                        cluster (the config.yaml of the ConfigMap named as the Service its
                        webhooks call, as check reads it), with nativeSidecars: auto decided
                        by the nodes' kubelet versions; said on standard error
      --webhook-config NAME
                        with --from-cluster: the injector's MutatingWebhookConfiguration
                        (default: the one labelled app.kubernetes.io/part-of=sidecar-injector,
                        whatever the release is called; none: sidecar-injector)
      --kubeconfig FILE
                        with --from-cluster: kubeconfig to use (default: KUBECONFIG,
                        ~/.kube/config, in-cluster)
      --context NAME    with --from-cluster: context of the kubeconfig (default: its
                        current-context)
  -n, --namespace NS    namespace of manifests that name none (default: default)
  -o, --output FORMAT   yaml (default) or json
  -q, --quiet           report only the refused documents on standard error
  -h, --help            this help
`;

const SERVE_USAGE = `Usage: sidecar-injector serve [options]

Runs the admission webhook: POST /inject, POST /preview, GET /healthz, /readyz, /metrics.

Options:
      --config FILE     injector config (YAML)
      --istio-config NS[/REV]
                        instead of --config: import the config from Istio's ConfigMaps in
                        namespace NS (istio-sidecar-injector[-REV] and istio[-REV]; KUBECONFIG
                        or the in-cluster account) and follow them: a change takes effect
                        without a restart; one that cannot be honoured is logged and the last
                        good config kept. Every finding is logged; a setting that cannot be
                        honoured stops the start (exit 2)
      --allow-unsupported
                        with --istio-config: serve what can be honoured instead
      --revision-tag TAG
                        with --istio-config: a revision tag that points at this injector
                        (repeatable; a config file's revisionTags), for /preview's answers
      --enable-namespaces-by-default
                        with --istio-config: Istio's auto webhook calls this injector too
                        (a config file's enableNamespacesByDefault), for /preview's answers
      --host HOST       address to listen on (default: 127.0.0.1)
      --port PORT       port to listen on (default: 9443)
      --admin-port PORT serve /preview and /metrics on this second port instead, leaving
                        /inject and health on --port (default: one port for everything)
      --tls-cert FILE   serving certificate (PEM); with --tls-key, reloaded when it changes
      --tls-key FILE    its private key (PEM)
      --cert-dir DIR    where local certificates are kept when no --tls-cert is given
                        (default: certs/)
      --local           local mode (what npm start runs): certificates under --cert-dir
      --log-level LEVEL trace | debug | info | warn | error | fatal | silent (default: info)
      --log-format F    text (HH:MM:SS level msg key=value) or json (one object a line);
                        default: text when standard output is a terminal, else json (or
                        SIDECAR_INJECTOR_LOG_FORMAT)
      --shutdown-delay D
                        after SIGTERM, keep accepting connections this long while not
                        ready (default: 0; the chart's preStop sleep does this)
      --warm-up D       before saying it is ready, answer reviews of its own on a loopback
                        port for up to D (or 10000 reviews), so that the first real ones
                        meet compiled code (default: 0, ready as soon as it listens; the
                        chart sets 5s)
      --max-requests N  requests in flight at once; past it 503, not worked on (default: 256)
      --max-connections N
                        open connections at once; past it new ones are answered 503
                        with Retry-After (default: 256)
      --workers N       processes that serve, on the same ports (default: 1); with more, a
                        primary process keeps the certificates and forks N workers;
                        0 or auto: one per available core. --max-requests and
                        --max-connections are per worker
  -h, --help            this help

Self-managed certificates (--cert-mode kubernetes; KUBECONFIG or the in-cluster account):
      --cert-mode MODE  local (default), files (default with --tls-cert), kubernetes
      --namespace NS    where the CA Secret lives (default: POD_NAMESPACE, else the
                        service account's namespace)
      --service NAME    Service the API server calls (default: sidecar-injector); its
                        DNS names go into the serving certificate
      --webhook-config NAME
                        MutatingWebhookConfiguration whose caBundle is kept current
                        (default: sidecar-injector)
      --ca-secret NAME  Secret holding the CA key and certificates (default: sidecar-injector-ca)
      --tls-san NAME    extra DNS name or IP for the serving certificate (repeatable;
                        local mode too)
      --ca-validity D   CA lifetime (default: 5y; renewed when a third is left)
      --serving-validity D
                        serving certificate lifetime (default: 7d; renewed at two thirds)
      --webhook-config-selector LABELS
                        instead of --webhook-config: every MutatingWebhookConfiguration
                        with these labels (e.g. app.kubernetes.io/name=sidecar-injector);
                        needs list/watch on them
      --ca-renew-when-left F
                        renew the CA when less than this fraction of its life is left
                        (default: 1/3)
      --serving-renew-after F
                        renew serving certificates once this fraction of their life has
                        passed (default: 2/3)
      --ca-bundle-propagation D
                        how long a new CA is in the published caBundle before serving
                        certificates it signs are used (default: 10s)
      --resync D        full re-check interval (default: 1m)
  Durations: 30s, 10m, 12h, 7d, 5y, 1h30m.
`;

const PREVIEW_USAGE = `Usage: sidecar-injector preview -f FILE|DIR|- [options]

For each Pod of the manifests (Pods, workloads, Lists, several YAML documents, or an
AdmissionReview): the decision with its reasons (including whether the API server would call
the injector at all), the JSON patch the webhook would answer, the object as it would be
stored, the warnings, what the init container captures and what the proxy starts with, and
which injector takes it once the chart's policy mode is on (the MutatingAdmissionPolicy, or
the webhook and why).
Offline with the same engine as the webhook, or asked of a running injector with --server.
Exit status 1 when the injector would refuse a Pod (not known with --server -o diff), 2 when
the manifests, the config or the injector cannot be read.

Options:
  -f, --filename FILE         a manifest, a directory of them (.yaml, .yml, .json), or - for
                              standard input; repeatable (required)
  -R, --recursive             with a directory: its subdirectories too
      --config FILE           injector config (offline)
  -n, --namespace NS          namespace of manifests that name none (default: default)
      --namespace-labels K=V,...
                              that namespace's labels (e.g. istio-injection=enabled);
                              without them the API server's choice is assumed to be "call"
      --server URL            ask a running injector (POST URL/preview) instead; it sends
                              the bearer token of your kubeconfig's current user, if it has
                              one, so the injector reads the labels of the namespaces you
                              may get (and only those)
      --anonymous             with --server: send no token (labels not given are not known)
      --kubeconfig FILE       with --server: the kubeconfig whose token is sent (default:
                              KUBECONFIG, ~/.kube/config)
      --context NAME          with --server: its context (default: its current-context)
      --cacert FILE           CA to trust for --server (e.g. certs/ca.crt for npm start);
                              default: the caBundle of --webhook-config in the cluster of
                              your kubeconfig (what the API server trusts the injector with),
                              else the system's CAs
      --webhook-config NAME   with --server: the MutatingWebhookConfiguration whose caBundle is
                              trusted by default (default: the one labelled
                              app.kubernetes.io/part-of=sidecar-injector; none: sidecar-injector)
      --tls-server-name NAME  with --server: the name the injector's certificate must carry,
                              instead of the URL's host (through kubectl port-forward to the
                              chart's Service: sidecar-injector.<namespace>.svc)
      --insecure-skip-tls-verify
                              with --server: do not verify the certificate at all
  -o, --output FORMAT         summary (the default on a terminal: decision, reasons, what is
                              added, warnings), json (the default otherwise: everything),
                              yaml, or diff (unified diff of each object)
  -h, --help                  this help

Comparing with istiod before switching (--compare-with): each Pod (a workload's as its
controller creates it) is sent to istiod's injection endpoint in the AdmissionReview the API
server would send, and answered by this injector with --config; both patches are applied to
that Pod and the results compared as the API server stores them. Per Pod: identical,
equivalent (differences that change nothing: the same JSON written differently, volumes in
another order), different (each path, ours and istiod's), both refuse, or refused by one only
(each message). Exit status 0 when no Pod is different nor refused by one side only, 1 when
one is, 2 when istiod cannot be reached or does not answer an AdmissionReview.
      --compare-with URL|service/NS/NAME[:PORT][/PATH]
                              istiod's injection endpoint: a URL (the webhook's, or
                              https://127.0.0.1:15017/inject through kubectl port-forward -n
                              istio-system svc/istiod 15017:443), or its Service through the
                              API server's proxy with your kubeconfig (service/istio-system/
                              istiod: port 443, path /inject)
      --compare-ca FILE       CA to trust for a --compare-with URL; default: the caBundle of
                              --webhook-config (default: istio-sidecar-injector) in the
                              cluster of your kubeconfig, else the system's CAs
      --tls-server-name NAME  the name istiod's certificate must carry instead of the URL's
                              host (through a port-forward: istiod.istio-system.svc)
      --insecure-skip-tls-verify
                              do not verify istiod's certificate
      --compare-timeout D     per review sent (default: 10s; e.g. 500ms, 30s)
  -o, --output FORMAT         summary (default on a terminal), json, yaml, or diff (istiod's
                              Pod against ours, per Pod)
`;

const CERTS_USAGE = `Usage: sidecar-injector certs status [options]

Reads the CA Secret and the MutatingWebhookConfiguration (KUBECONFIG or in-cluster), and
with --server the certificate a running injector serves; says whether the published
caBundle contains the CA that signed it. Exit status 1 when something would fail
admissions, 2 when the cluster or the injector cannot be read.

Which injector: the chart's, found by the label it puts on its MutatingWebhookConfiguration
(app.kubernetes.io/part-of=sidecar-injector), whatever the release is called; its namespace is
the one of the Service its webhooks call, its CA Secret <name>-ca. A flag always wins. Several
installed: an error listing them (exit 2); pick one with --webhook-config or --namespace.
None: the names sidecar-injector, sidecar-injector-system and sidecar-injector-ca.

Options:
  -n, --namespace NS         namespace of the CA Secret (default: that of the injector's
                             Service; with several injectors, picks the one there)
      --ca-secret NAME       default: <webhook configuration>-ca (the chart's name; set it
                             when tls.caSecretName was)
      --webhook-config NAME  the injector's MutatingWebhookConfiguration (default: found by
                             the label, see above)
      --server URL           a running injector, e.g. https://127.0.0.1:9443
                             (kubectl port-forward -n NS svc/sidecar-injector 9443:443):
                             its certificate is checked as the API server checks it, and as
                             a client of URL would (against --cacert, else the caBundle)
      --tls-server-name NAME with --server: the name sent and checked instead of the URL's
                             host (through a port-forward: sidecar-injector.NS.svc)
      --cacert FILE          with --server: the CA a client trusts (default: the caBundle)
      --insecure-skip-tls-verify
                             with --server: no client check (the API server's checks remain)
      --kubeconfig FILE      kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME         context of the kubeconfig to use (default: its current-context)
  -h, --help                 this help
`;

const CHECK_USAGE = `Usage: sidecar-injector check [TYPE/]NAME... | -l SELECTOR | -A [options]

Reads the Pods or workloads named (TYPE: pod, the default, deployment, statefulset, daemonset,
replicaset, job, cronjob), or every Pod of the namespace (or of all with -A), their namespaces
and every MutatingWebhookConfiguration of the cluster, with your kubeconfig. For each: which
sidecar injector webhooks the API server would call on its next creation (namespaceSelector,
objectSelector and matchConditions evaluated; a condition outside the CEL subset injectors
write is said not evaluated, quoted), whether each would inject and why (WEBHOOK, REVISION,
INJECTED, REASON), whether a stored Pod is already injected and whether its sidecar is stale
(what differs from what its injector would inject now: image, args, env...). Findings: two
injectors for one Pod or one namespace (error); an istio-injection value other than
enabled/disabled, a namespace labelled for injection that no injector selects, a Pod that a
restart would inject, strip or refresh (warning).

With this chart's MutatingAdmissionPolicy installed (policy.enabled): for each object, whether
the policy or the webhook takes its next creation and why ("policy mode: ..."). With this
chart's injector following Istio's ConfigMaps (the chart's istioConfig): each of their settings
it cannot honour, by path, with what to do instead (an error; a warning when it is told to
serve the rest).

Exit status: 0 no error finding; 1 an error finding (e.g. two injectors for one Pod);
2 bad arguments, an object or namespace not found, or the API server refused or failed.

Your user needs get/list on namespaces and pods, get on the workload kinds named, and list on
mutatingwebhookconfigurations; get on configmaps in the injector's namespace to compare
sidecars with its config (else give it with --config); list on mutatingadmissionpolicies and
their bindings, list on deployments and get on Istio's ConfigMaps for the two above.

Options:
  -n, --namespace NS     namespace of the objects (default: the context's, else default)
  -A, --all-namespaces   every Pod of every namespace
  -l, --selector LABELS  only Pods with these labels (e.g. app=web)
      --config FILE      the current injector config, for every injector: its policy, and
                         what injected sidecars are compared with (default: each of this
                         chart's injectors' own, read from the ConfigMap beside its Service;
                         for others, the defaults' policy and no comparison)
  -o, --output FORMAT    table (default), json or yaml
      --kubeconfig FILE  kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME     context of the kubeconfig to use (default: its current-context)
  -h, --help             this help
`;

/**
 * The exit status, one table for every command (grep's and diff's convention: 1 is an answer,
 * 2 is trouble), written out in USAGE and in the README:
 *   ok       0  done, and nothing is wrong: every document injected or skipped by policy, every
 *              Pod previewed, no error finding (check), no problem (certs status)
 *   finding  1  done, and something is wrong with the objects: a document refused (inject), a
 *              Pod the injector would refuse (preview), an error finding (check), a problem
 *              that would fail admissions (certs status)
 *   usage    2  not done: a usage error (an unknown command or option, a missing or bad value,
 *              options that exclude each other), or a file, config, cluster or injector that
 *              could not be read or reached
 */
const EXIT = { ok: 0, finding: 1, usage: 2 } as const;
/** `serve --warm-up` at most: readiness held back longer than this is a mistake, not a warm-up. */
const MAX_WARM_UP_MS = 60_000;

class UsageError extends Error {}

/** --kubeconfig and --context, as given. */
function kubeConfigChoice(values: { kubeconfig?: string | undefined; context?: string | undefined }): {
  kubeconfig?: string;
  context?: string;
} {
  return {
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context !== undefined ? { context: values.context } : {}),
  };
}

/** A file or directory given with -f that cannot be read: exit 2, naming it. */
class InputError extends Error {}

/** Options of the commands that read manifests (inject, preview). */
const MANIFEST_OPTIONS = {
  filename: { type: "string", short: "f", multiple: true },
  recursive: { type: "boolean", short: "R" },
  config: { type: "string" },
  namespace: { type: "string", short: "n" },
  help: { type: "boolean", short: "h" },
} as const;

/** The extensions kubectl reads in a directory given with -f. */
const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/**
 * The files of -f: each file as given, `-` for standard input, a directory's manifest files in
 * name order (its subdirectories' too with -R, as kubectl does).
 */
async function manifestFiles(filenames: readonly string[], recursive: boolean): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (recursive) await walk(path, false);
      } else if (MANIFEST_EXTENSIONS.has(extname(e.name).toLowerCase())) {
        files.push(path);
      }
    }
    if (top && files.length === 0)
      throw new InputError(
        `-f ${quote(dir)}: a directory with no .yaml, .yml or .json files${recursive ? "" : " (-R reads its subdirectories too)"}`,
      );
  };
  for (const f of filenames) {
    if (f === "-") {
      files.push(f);
      continue;
    }
    let isDir: boolean;
    try {
      isDir = (await stat(f)).isDirectory();
    } catch (e) {
      throw new InputError(`-f ${quote(f)}: ${fileProblem(e)}`);
    }
    if (!isDir) {
      files.push(f);
      continue;
    }
    try {
      await walk(f, true);
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`-f ${quote(f)}: ${fileProblem(e)}`);
    }
  }
  return files;
}

/** Each manifest file of -f with its text. */
async function manifestSources(
  command: string,
  filenames: readonly string[] | undefined,
  recursive: boolean,
): Promise<{ source: string; text: string }[]> {
  if (!filenames || filenames.length === 0)
    throw new UsageError(`${command}: -f FILE (or -f - for standard input) is required`);
  const sources: { source: string; text: string }[] = [];
  for (const file of await manifestFiles(filenames, recursive)) {
    try {
      sources.push({ source: file, text: await readInput(file) });
    } catch (e) {
      throw new InputError(`-f ${quote(file)}: ${fileProblem(e)}`);
    }
  }
  return sources;
}

/** The manifests of -f as one text (several files: their documents one after the other). */
async function manifestText(
  command: string,
  filenames: readonly string[] | undefined,
  recursive: boolean,
): Promise<string> {
  const sources = await manifestSources(command, filenames, recursive);
  return sources.length === 1 ? (sources[0]?.text ?? "") : sources.map((s) => s.text).join("\n---\n");
}

/** The kind and name a document states ("" for what it does not). */
function documentKindName(doc: unknown): { kind: string; name: string } {
  if (typeof doc !== "object" || doc === null) return { kind: "", name: "" };
  const { kind, metadata } = doc as { kind?: unknown; metadata?: { name?: unknown } };
  const name = typeof metadata === "object" && metadata !== null ? metadata.name : undefined;
  return { kind: typeof kind === "string" ? kind : "", name: typeof name === "string" ? name : "" };
}

/** A fraction strictly between 0 and 1, written 0.25 or 1/4. */
function fraction(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const f = m ? Number(m[1]) / Number(m[2]) : /^(0?\.\d+)$/.test(v.trim()) ? Number(v) : NaN;
  if (!(f > 0 && f < 1))
    throw new UsageError(`serve: --${flag} must be a fraction between 0 and 1 (like 1/3 or 0.25), not ${v}`);
  return f;
}

function optional<K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, number>);
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

async function loadConfig(file: string | undefined): Promise<Config> {
  const { loadConfig: load } = await import("./config/load.js");
  return load(file);
}

async function readInput(file: string): Promise<string> {
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }
  return readFile(file, "utf8");
}

/** A file name as given when it reads as one, else quote()d. */
function fileName(path: string): string {
  return path === "-" ? "stdin" : /^[\w./@+-]{1,200}$/.test(path) ? path : quote(path);
}

/** `Kind/name` of a document or Pod, as kubectl names a resource (just `Kind` without a name). */
function resourceName(kind: string, name: string): string {
  return `${quoteName(kind || "(no kind)")}${name ? `/${quoteName(name)}` : ""}`;
}

/**
 * One line per Pod or workload on stderr, as kubectl reports each resource it applied: what was
 * done to it and why, where it came from (file and document), and its warnings. The injected
 * manifests alone go to stdout.
 */
function reportLine(t: InjectedTemplate, where: string): string {
  const { decision, warnings } = t.result;
  const done = decision.inject ? "injected" : `skipped: ${decision.reasons.at(-1) ?? decision.code}`;
  const lines = [`${resourceName(t.kind, t.name)} (${where}): ${done}`, ...warnings.map((w) => `  warning: ${w}`)];
  return `${lines.join("\n")}\n`;
}

async function runInject(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MANIFEST_OPTIONS,
      output: { type: "string", short: "o", default: "yaml" },
      quiet: { type: "boolean", short: "q" },
      "from-cluster": { type: "boolean" },
      "webhook-config": { type: "string" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(INJECT_USAGE);
    return EXIT.ok;
  }
  if (values.output !== "yaml" && values.output !== "json")
    throw new UsageError(`inject: --output must be yaml or json, not ${quote(values.output)}`);
  const fromCluster = values["from-cluster"] === true;
  if (fromCluster && values.config !== undefined)
    throw new UsageError(
      "inject: --from-cluster reads the injector's config from the cluster, --config from a file: give one or the other",
    );
  if (
    !fromCluster &&
    (values["webhook-config"] !== undefined || values.kubeconfig !== undefined || values.context !== undefined)
  ) {
    throw new UsageError("inject: --webhook-config, --kubeconfig and --context go with --from-cluster");
  }
  const quiet = values.quiet === true;
  const sources = await manifestSources("inject", values.filename, values.recursive === true);
  let config: Config;
  let report = "";
  if (fromCluster) {
    const { createInspectApi, createKubeApi, defaultKubeConfig } = await import("./kube/client.js");
    const { clusterInjectorConfig, CheckNotFoundError } = await import("./check/check.js");
    const kc = defaultKubeConfig(kubeConfigChoice(values));
    const given = values["webhook-config"];
    const names =
      given === undefined
        ? await (await import("./check/find-injector.js")).findInjector(createKubeApi(kc), {})
        : undefined;
    let found;
    try {
      found = await clusterInjectorConfig(createInspectApi(kc), given ?? names?.webhookConfig ?? "");
    } catch (e) {
      // The default name, not there either: say what was looked for first.
      if (e instanceof CheckNotFoundError && names?.note !== undefined)
        throw new CheckNotFoundError(`${names.note}; ${e.message}`);
      throw e;
    }
    config = found.config;
    if (!quiet) report += `${found.summary}\n`;
  } else {
    config = await loadConfig(values.config);
  }
  const { formatManifest, parseManifest } = await import("./manifest.js");
  const { injectDocument } = await import("./injection/workloads.js");
  const docs: unknown[] = [];
  const injected: InjectedTemplate[] = [];
  let refused = 0;
  for (const { source, text } of sources) {
    for (const [i, doc] of parseManifest(text, source).entries()) {
      const where = `${fileName(source)}, document ${i + 1}`;
      const before = injected.length;
      try {
        docs.push(injectDocument(doc, values.namespace ?? "default", config, injected).doc);
      } catch (e) {
        if (!(e instanceof InjectionError)) throw e;
        refused += 1;
        const { kind, name } = documentKindName(doc);
        report += `${resourceName(kind, name)} (${where}): refused: ${e.message}\n`;
        continue;
      }
      if (quiet) continue;
      const found = injected.slice(before);
      if (found.length === 0) {
        const { kind, name } = documentKindName(doc);
        report += `${resourceName(kind, name)} (${where}): unchanged: not a Pod or a workload\n`;
      }
      for (const t of found) report += reportLine(t, where);
    }
  }
  if (refused > 0) {
    // Nothing on stdout: `inject | kubectl apply -f -` must not apply the rest without them.
    process.stderr.write(`${report}error: ${refused} of ${docs.length + refused} documents refused; nothing printed\n`);
    return EXIT.finding;
  }
  process.stderr.write(report);
  process.stdout.write(formatManifest(docs, values.output));
  return EXIT.ok;
}

/**
 * The bearer token of the kubeconfig's current user (KUBECONFIG, ~/.kube/config or in-cluster:
 * a token, a token file, or what an exec or auth-provider plugin returns); undefined when it
 * authenticates otherwise (e.g. a client certificate) or there is no kubeconfig.
 */
async function kubeconfigBearerToken(choice: { kubeconfig?: string; context?: string }): Promise<string | undefined> {
  const { defaultKubeConfig } = await import("./kube/client.js");
  // A --kubeconfig or --context that cannot be used is said; without them, no kubeconfig is no token.
  const explicit = choice.kubeconfig !== undefined || choice.context !== undefined;
  let kc;
  try {
    kc = defaultKubeConfig(choice);
  } catch (e) {
    if (explicit) throw e;
    return undefined;
  }
  try {
    const opts: { headers?: Record<string, unknown> } = {};
    await kc.applyToHTTPSOptions(opts);
    const auth = opts.headers?.Authorization;
    const { bearerToken } = await import("./admission/preview-lookup.js");
    return typeof auth === "string" ? bearerToken(auth) : undefined;
  } catch {
    return undefined;
  }
}

/** Options of the commands that reach a running injector over HTTPS (preview, certs status). */
const SERVER_TLS_OPTIONS = {
  cacert: { type: "string" },
  "tls-server-name": { type: "string" },
  "insecure-skip-tls-verify": { type: "boolean" },
} as const;

/** The TLS options of --server, checked as kubectl checks its own. */
function serverTls(
  command: string,
  values: {
    server?: string | undefined;
    cacert?: string | undefined;
    "tls-server-name"?: string | undefined;
    "insecure-skip-tls-verify"?: boolean | undefined;
  },
): { tlsServerName?: string; insecure: boolean } {
  const tlsServerName = values["tls-server-name"];
  const insecure = values["insecure-skip-tls-verify"] === true;
  if (values.server === undefined && (values.cacert !== undefined || tlsServerName !== undefined || insecure)) {
    throw new UsageError(`${command}: --cacert, --tls-server-name and --insecure-skip-tls-verify go with --server`);
  }
  // As kubectl refuses them together: a CA that is then not used would be a false assurance.
  if (insecure && values.cacert !== undefined)
    throw new UsageError(`${command}: --insecure-skip-tls-verify and --cacert exclude each other`);
  if (tlsServerName !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(tlsServerName)) {
    throw new UsageError(`${command}: --tls-server-name must be a DNS name, not ${quote(tlsServerName)}`);
  }
  return { ...(tlsServerName !== undefined ? { tlsServerName } : {}), insecure };
}

/** How long reading the caBundle may take before the system's CAs are used instead. */
const CLUSTER_CA_TIMEOUT_MS = 10_000;

/**
 * The CA a client of the injector trusts when no --cacert is given: the caBundle of the chart's
 * MutatingWebhookConfiguration (what the API server itself trusts the injector with), read
 * with the kubeconfig. Undefined (the system's CAs then) when there is no kubeconfig, no such
 * configuration, no caBundle in it, or no answer; a --kubeconfig or --context given that
 * cannot be used is said.
 */
async function clusterCa(
  choice: { kubeconfig?: string; context?: string },
  given: string | undefined,
): Promise<{ pem: string; from: string } | undefined> {
  const { createKubeApi, defaultKubeConfig } = await import("./kube/client.js");
  let kc;
  try {
    kc = defaultKubeConfig(choice);
  } catch (e) {
    if (choice.kubeconfig !== undefined || choice.context !== undefined) throw e;
    return undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  let webhookConfig = given ?? "";
  try {
    const api = createKubeApi(kc);
    const read = async () => {
      // Without --webhook-config: the chart's, found by its label (several or none: no CA from here).
      webhookConfig = given ?? (await (await import("./check/find-injector.js")).findInjector(api, {})).webhookConfig;
      return api.readWebhookConfig(webhookConfig);
    };
    const cfg = await Promise.race([
      read(),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), CLUSTER_CA_TIMEOUT_MS))),
    ]);
    const pems = [
      ...new Set(
        (cfg?.webhooks ?? [])
          .map((w) => (w.caBundle ? Buffer.from(w.caBundle, "base64").toString("utf8").trim() : ""))
          .filter((p) => p.includes("BEGIN CERTIFICATE")),
      ),
    ];
    return pems.length === 0
      ? undefined
      : {
          pem: `${pems.join("\n")}\n`,
          from: `the caBundle of MutatingWebhookConfiguration ${quoteName(webhookConfig)}`,
        };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

async function runPreviewCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MANIFEST_OPTIONS,
      "namespace-labels": { type: "string" },
      server: { type: "string" },
      anonymous: { type: "boolean" },
      ...SERVER_TLS_OPTIONS,
      "webhook-config": { type: "string" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      output: { type: "string", short: "o" },
      "compare-with": { type: "string" },
      "compare-ca": { type: "string" },
      "compare-timeout": { type: "string" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(PREVIEW_USAGE);
    return 0;
  }
  // A person at a terminal gets the summary; a pipe or a file, the whole answer as before.
  const format = values.output ?? (process.stdout.isTTY ? "summary" : "json");
  if (format !== "json" && format !== "yaml" && format !== "diff" && format !== "summary")
    throw new UsageError(`preview: --output must be summary, json, yaml or diff, not ${quote(format)}`);
  if (values["compare-with"] !== undefined) return runCompare(values["compare-with"], values, format);
  if (values["compare-ca"] !== undefined || values["compare-timeout"] !== undefined)
    throw new UsageError("preview: --compare-ca and --compare-timeout go with --compare-with");
  if (
    values.server === undefined &&
    (values.kubeconfig !== undefined || values.context !== undefined || values["webhook-config"] !== undefined)
  ) {
    throw new UsageError(
      "preview: --cacert, --tls-server-name, --insecure-skip-tls-verify, --webhook-config, --kubeconfig and --context go with --server",
    );
  }
  const { tlsServerName, insecure } = serverTls("preview", values);
  const text = await manifestText("preview", values.filename, values.recursive === true);
  if (values.server !== undefined) {
    if (!/^https:\/\//.test(values.server))
      throw new UsageError(`preview: --server must be an https:// URL, not ${values.server}`);
    // Relative to the URL given, so a path in front of the injector (a proxy's) is kept.
    const url = new URL("preview", values.server.endsWith("/") ? values.server : `${values.server}/`);
    if (values.namespace) url.searchParams.set("namespace", values.namespace);
    if (values["namespace-labels"] !== undefined) url.searchParams.set("namespaceLabels", values["namespace-labels"]);
    if (format === "diff") url.searchParams.set("format", "diff");
    const { remotePreview } = await import("./preview-client.js");
    const token = values.anonymous ? undefined : await kubeconfigBearerToken(kubeConfigChoice(values));
    const ca =
      values.cacert === undefined && !insecure
        ? await clusterCa(kubeConfigChoice(values), values["webhook-config"])
        : undefined;
    const answer = await remotePreview(url, text, {
      accept: format === "yaml" ? "application/yaml" : "application/json",
      ...(values.cacert !== undefined ? { caFile: values.cacert } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(tlsServerName !== undefined ? { tlsServerName } : {}),
      insecureSkipTlsVerify: insecure,
      ...(token !== undefined ? { bearerToken: token } : {}),
    });
    if (format === "diff") {
      // A diff says no more than the text: whether a Pod would be refused is not known here.
      process.stdout.write(answer);
      return EXIT.ok;
    }
    let parsed: unknown;
    try {
      parsed = format === "yaml" ? (await import("yaml")).parse(answer) : JSON.parse(answer);
    } catch {
      throw new UsageError(`preview: ${url.origin} did not answer ${format === "yaml" ? "YAML" : "JSON"}`);
    }
    const items =
      typeof parsed === "object" && parsed !== null && "items" in parsed && Array.isArray(parsed.items)
        ? (parsed.items as PreviewEntryList)
        : undefined;
    if (items === undefined) throw new UsageError(`preview: ${url.origin} answered no items`);
    if (format === "summary") process.stdout.write((await import("./preview-summary.js")).formatPreviewSummary(items));
    else process.stdout.write(answer);
    return refusedStatus(items);
  }
  const { formatPreview, parseLabelList, parsePreviewInput, preview } = await import("./preview.js");
  const config = await loadConfig(values.config);
  let labels: Record<string, string> | undefined;
  try {
    labels = values["namespace-labels"] !== undefined ? parseLabelList(values["namespace-labels"]) : undefined;
  } catch (e) {
    throw new UsageError(`preview: --namespace-labels: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { MANIFEST_LIMITS } = await import("./injection/yaml-limits.js");
  // A local file: held to the limits of `inject`, not to the server's.
  const entries = await preview(parsePreviewInput(text, "yaml", MANIFEST_LIMITS), {
    config,
    ...(values.namespace ? { namespace: values.namespace } : {}),
    // As the server takes them: the labels of --namespace (of every namespace without it).
    ...(labels ? { givenLabels: labels } : {}),
    // Offline, the file and the memory are the user's own: no bound on the Pods previewed.
    maxPods: Infinity,
  });
  if (format === "summary") process.stdout.write((await import("./preview-summary.js")).formatPreviewSummary(entries));
  else process.stdout.write(formatPreview(entries, format));
  return refusedStatus(entries);
}

/** A --compare-timeout: milliseconds or seconds, at least 1 ms, at most 10 minutes. */
function compareTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,6})(ms|s)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : Number.NaN;
  if (!(ms >= 1 && ms <= 600_000))
    throw new UsageError(
      `preview: --compare-timeout must be a duration such as 500ms or 30s (at most 600s), not ${quote(text)}`,
    );
  return ms;
}

/**
 * `preview --compare-with`: this injector (offline, --config) against istiod, Pod by Pod
 * (src/compare/). Exit 1 when a Pod would be stored differently or refused by one side only.
 */
async function runCompare(
  target: string,
  values: {
    filename?: string[] | undefined;
    recursive?: boolean | undefined;
    config?: string | undefined;
    namespace?: string | undefined;
    "namespace-labels"?: string | undefined;
    server?: string | undefined;
    anonymous?: boolean | undefined;
    cacert?: string | undefined;
    "tls-server-name"?: string | undefined;
    "insecure-skip-tls-verify"?: boolean | undefined;
    "webhook-config"?: string | undefined;
    kubeconfig?: string | undefined;
    context?: string | undefined;
    "compare-ca"?: string | undefined;
    "compare-timeout"?: string | undefined;
  },
  format: "summary" | "json" | "yaml" | "diff",
): Promise<number> {
  if (values.server !== undefined)
    throw new UsageError(
      "preview: --compare-with and --server exclude each other: the comparison runs this injector here, with --config",
    );
  if (values.anonymous === true) throw new UsageError("preview: --anonymous goes with --server, not --compare-with");
  if (values["namespace-labels"] !== undefined)
    throw new UsageError(
      "preview: --namespace-labels does not go with --compare-with: both injectors are asked as if the API server called them",
    );
  if (values.cacert !== undefined)
    throw new UsageError("preview: with --compare-with, istiod's CA is given with --compare-ca, not --cacert");
  const timeoutMs = compareTimeout(values["compare-timeout"]);
  const { parseServiceRef, directTarget } = await import("./compare/client.js");
  const service = target.startsWith("service/") ? parseServiceRef(target) : undefined;
  if (target.startsWith("service/") && service === undefined)
    throw new UsageError(`preview: --compare-with service/NAMESPACE/NAME[:PORT][/PATH], not ${quote(target)}`);
  if (service === undefined && !/^https:\/\//.test(target))
    throw new UsageError(
      `preview: --compare-with must be an https:// URL or service/NAMESPACE/NAME[:PORT], not ${quote(target)}`,
    );
  if (
    service !== undefined &&
    (values["compare-ca"] !== undefined ||
      values["tls-server-name"] !== undefined ||
      values["insecure-skip-tls-verify"] === true ||
      values["webhook-config"] !== undefined)
  )
    throw new UsageError(
      "preview: --compare-ca, --tls-server-name, --insecure-skip-tls-verify and --webhook-config go with a --compare-with URL; through the service proxy the kubeconfig's own TLS settings are used",
    );
  const { tlsServerName, insecure } = serverTls("preview", { ...values, server: target });
  if (insecure && values["compare-ca"] !== undefined)
    throw new UsageError("preview: --insecure-skip-tls-verify and --compare-ca exclude each other");
  const text = await manifestText("preview", values.filename, values.recursive === true);
  const config = await loadConfig(values.config);
  const { parsePreviewInput } = await import("./preview.js");
  const { MANIFEST_LIMITS } = await import("./injection/yaml-limits.js");
  const docs = parsePreviewInput(text, "yaml", MANIFEST_LIMITS);
  const choice = kubeConfigChoice(values);
  const timeout = timeoutMs !== undefined ? { timeoutMs } : {};
  let compareTarget;
  if (service !== undefined) {
    const { serviceTarget } = await import("./compare/service-target.js");
    compareTarget = await serviceTarget(service, choice, timeout);
  } else {
    const ca =
      values["compare-ca"] === undefined && !insecure
        ? await clusterCa(choice, values["webhook-config"] ?? "istio-sidecar-injector")
        : undefined;
    compareTarget = await directTarget(new URL(target), {
      ...(values["compare-ca"] !== undefined ? { caFile: values["compare-ca"] } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(tlsServerName !== undefined ? { tlsServerName } : {}),
      insecureSkipTlsVerify: insecure,
      ...timeout,
    });
  }
  const { compare, isMismatch } = await import("./compare/compare.js");
  const { formatCompare } = await import("./compare/format.js");
  const entries = await compare(docs, {
    config,
    target: compareTarget,
    ...(values.namespace ? { namespace: values.namespace } : {}),
  });
  process.stdout.write(formatCompare(entries, format, compareTarget.name));
  const mismatches = entries.filter((e) => isMismatch(e.result)).length;
  if (mismatches === 0) return EXIT.ok;
  process.stderr.write(
    `error: ${mismatches} of ${entries.length} Pods would not be stored or refused as istiod stores or refuses them\n`,
  );
  return EXIT.finding;
}

/** A preview's exit status: 1 when the injector would refuse a Pod (and so would the API server). */
function refusedStatus(entries: PreviewEntryList): number {
  const refused = entries.filter((e) => typeof e === "object" && e !== null && e.error !== undefined).length;
  if (refused === 0) return EXIT.ok;
  process.stderr.write(`error: the injector would refuse ${refused} of ${entries.length} Pods\n`);
  return EXIT.finding;
}

async function runCertsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "-h" || sub === "--help") {
    process.stdout.write(CERTS_USAGE);
    return EXIT.ok;
  }
  if (sub !== "status")
    throw new UsageError(
      `${sub === undefined ? "certs: name the subcommand: status" : `certs: the subcommand is status, not ${quote(sub)}`}\n\n${CERTS_USAGE}`,
    );
  const { values } = parseArgs({
    args: rest,
    options: {
      namespace: { type: "string", short: "n" },
      "ca-secret": { type: "string" },
      "webhook-config": { type: "string" },
      server: { type: "string" },
      ...SERVER_TLS_OPTIONS,
      kubeconfig: { type: "string" },
      context: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(CERTS_USAGE);
    return 0;
  }
  if (values.server !== undefined && !/^https:\/\//.test(values.server))
    throw new UsageError(`certs status: --server must be an https:// URL, not ${values.server}`);
  const { tlsServerName, insecure } = serverTls("certs status", values);
  let caPem: string | undefined;
  if (values.cacert !== undefined) {
    try {
      caPem = await readFile(values.cacert, "utf8");
    } catch (e) {
      throw new InputError(`--cacert ${quote(values.cacert)}: ${fileProblem(e)}`);
    }
    const { splitPemCertificates } = await import("./certs/authority.js");
    if (splitPemCertificates(caPem).length === 0)
      throw new InputError(`--cacert ${quote(values.cacert)}: no PEM certificate in it`);
  }
  const { certificateStatus } = await import("./certs/status.js");
  const { createKubeApi, defaultKubeConfig } = await import("./kube/client.js");
  const api = createKubeApi(defaultKubeConfig(kubeConfigChoice(values)));
  // Flags win; what they leave out is the chart's injector, found by its label (check/find-injector.ts).
  const names = await (
    await import("./check/find-injector.js")
  ).findInjector(api, {
    webhookConfig: values["webhook-config"],
    namespace: values.namespace,
    caSecret: values["ca-secret"],
  });
  if (names.namespace === undefined)
    throw new UsageError(
      `certs status: the webhooks of MutatingWebhookConfiguration ${quoteName(names.webhookConfig)} call a URL, not a Service, so the namespace of its CA Secret is not known: give it with --namespace`,
    );
  const report = await certificateStatus(api, {
    namespace: names.namespace,
    secretName: names.caSecret,
    webhookConfigName: names.webhookConfig,
    ...(values.server !== undefined ? { server: values.server } : {}),
    ...(tlsServerName !== undefined ? { tlsServerName } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    insecureSkipTlsVerify: insecure,
  });
  process.stdout.write(report.text);
  if (report.problems.length > 0 && names.note !== undefined) process.stderr.write(`note: ${names.note}\n`);
  return report.problems.length === 0 ? EXIT.ok : EXIT.finding;
}

/** kubectl's resource names for the kinds `check` reads. */
const CHECK_KINDS: Readonly<
  Record<string, "Pod" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob">
> = {
  pod: "Pod",
  pods: "Pod",
  po: "Pod",
  deployment: "Deployment",
  deployments: "Deployment",
  deploy: "Deployment",
  statefulset: "StatefulSet",
  statefulsets: "StatefulSet",
  sts: "StatefulSet",
  daemonset: "DaemonSet",
  daemonsets: "DaemonSet",
  ds: "DaemonSet",
  replicaset: "ReplicaSet",
  replicasets: "ReplicaSet",
  rs: "ReplicaSet",
  job: "Job",
  jobs: "Job",
  cronjob: "CronJob",
  cronjobs: "CronJob",
  cj: "CronJob",
};

async function runCheckCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      namespace: { type: "string", short: "n" },
      "all-namespaces": { type: "boolean", short: "A" },
      selector: { type: "string", short: "l" },
      config: { type: "string" },
      output: { type: "string", short: "o", default: "table" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(CHECK_USAGE);
    return 0;
  }
  const format = values.output;
  if (format !== "table" && format !== "json" && format !== "yaml")
    throw new UsageError(`check: --output must be table, json or yaml, not ${quote(format)}`);
  const targets = positionals.map((arg) => {
    const slash = arg.indexOf("/");
    const type = slash < 0 ? "pod" : arg.slice(0, slash).toLowerCase();
    const name = slash < 0 ? arg : arg.slice(slash + 1);
    const kind = Object.hasOwn(CHECK_KINDS, type) ? CHECK_KINDS[type] : undefined;
    if (kind === undefined)
      throw new UsageError(
        `check: ${quote(type)} is not a kind check reads (pod, deployment, statefulset, daemonset, replicaset, job, cronjob)`,
      );
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(name))
      throw new UsageError(`check: ${quote(name)} is not an object name`);
    return { kind, name };
  });
  const all = values["all-namespaces"] === true;
  if (all && targets.length > 0) throw new UsageError("check: a name needs one namespace (-n), not -A");
  if (values.selector !== undefined && targets.length > 0)
    throw new UsageError("check: -l selects Pods instead of names: give one or the other");
  if (all && values.namespace !== undefined) throw new UsageError("check: -n and -A exclude each other");
  const { createInspectApi, contextNamespace, defaultKubeConfig } = await import("./kube/client.js");
  const kc = defaultKubeConfig(kubeConfigChoice(values));
  const config = await loadConfig(values.config);
  const { check, formatCheckTable } = await import("./check/check.js");
  const report = await check(createInspectApi(kc), {
    config,
    configGiven: values.config !== undefined,
    targets,
    namespace: values.namespace ?? contextNamespace(kc) ?? "default",
    allNamespaces: all,
    ...(values.selector !== undefined ? { labelSelector: values.selector } : {}),
  });
  if (format === "table") process.stdout.write(formatCheckTable(report));
  else if (format === "json") process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write((await import("yaml")).stringify(report));
  return report.errors > 0 ? EXIT.finding : EXIT.ok;
}

async function runServeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      "istio-config": { type: "string" },
      "allow-unsupported": { type: "boolean" },
      "revision-tag": { type: "string", multiple: true },
      "enable-namespaces-by-default": { type: "boolean" },
      host: { type: "string" },
      port: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "cert-dir": { type: "string" },
      local: { type: "boolean" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      "cert-mode": { type: "string" },
      namespace: { type: "string" },
      service: { type: "string" },
      "webhook-config": { type: "string" },
      "webhook-config-selector": { type: "string" },
      "ca-secret": { type: "string" },
      "tls-san": { type: "string", multiple: true },
      "ca-renew-when-left": { type: "string" },
      "serving-renew-after": { type: "string" },
      "ca-validity": { type: "string" },
      "serving-validity": { type: "string" },
      "ca-bundle-propagation": { type: "string" },
      resync: { type: "string" },
      "shutdown-delay": { type: "string" },
      "warm-up": { type: "string" },
      "admin-port": { type: "string" },
      "max-requests": { type: "string" },
      "max-connections": { type: "string" },
      workers: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw new UsageError(`serve: --port must be a port number, not ${values.port}`);
  const adminPort = values["admin-port"] === undefined ? undefined : Number(values["admin-port"]);
  if (adminPort !== undefined && (!/^\d+$/.test(values["admin-port"] ?? "") || adminPort > 65535))
    throw new UsageError(`serve: --admin-port must be a port number, not ${values["admin-port"]}`);
  if (Boolean(values["tls-cert"]) !== Boolean(values["tls-key"]))
    throw new UsageError("serve: --tls-cert and --tls-key go together");
  if (values.config !== undefined && values["istio-config"] !== undefined)
    throw new UsageError("serve: --config and --istio-config exclude each other: the config comes from one of them");
  if (values["allow-unsupported"] === true && values["istio-config"] === undefined)
    throw new UsageError("serve: --allow-unsupported goes with --istio-config");
  for (const [option, given, key] of [
    ["--revision-tag", values["revision-tag"] !== undefined, "revisionTags"],
    ["--enable-namespaces-by-default", values["enable-namespaces-by-default"] === true, "enableNamespacesByDefault"],
  ] as const) {
    if (given && values["istio-config"] === undefined)
      throw new UsageError(`serve: ${option} goes with --istio-config (with a config file, set ${key} in it)`);
  }
  if (values["istio-config"] !== undefined) {
    const { parseIstioConfigSource, IstioConfigError } = await import("./istio/source.js");
    try {
      parseIstioConfigSource(values["istio-config"]);
    } catch (e) {
      if (e instanceof IstioConfigError) throw new UsageError(`serve: ${e.message}`);
      throw e;
    }
  }
  const level = values["log-level"];
  if (level !== undefined && !LOG_LEVELS.includes(level))
    throw new UsageError(`serve: --log-level must be one of ${LOG_LEVELS.join(", ")}, not ${level}`);
  const logFormat = values["log-format"];
  if (logFormat !== undefined && logFormat !== "text" && logFormat !== "json")
    throw new UsageError(`serve: --log-format must be text or json, not ${quote(logFormat)}`);
  const mode = values["cert-mode"];
  if (mode !== undefined && !(CERT_MODES as readonly string[]).includes(mode))
    throw new UsageError(`serve: --cert-mode must be one of ${CERT_MODES.join(", ")}, not ${mode}`);
  const { parseDuration } = await import("./certs/authority.js");
  const duration = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    // A number alone would be milliseconds: --shutdown-delay 5 meant 5 ms, not 5 s.
    if (/^\s*\d+\s*$/.test(v) && Number(v) !== 0)
      throw new UsageError(`serve: --${flag} needs a unit: ${v.trim()}s, ${v.trim()}m or ${v.trim()}ms, not ${v}`);
    try {
      return parseDuration(v);
    } catch {
      throw new UsageError(`serve: --${flag} must be a duration like 30s, 10m, 7d or 5y, not ${v}`);
    }
  };
  const kubernetes = {
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    ...(values.service !== undefined ? { serviceName: values.service } : {}),
    ...(values["webhook-config"] !== undefined ? { webhookConfigName: values["webhook-config"] } : {}),
    ...(values["webhook-config-selector"] !== undefined
      ? { webhookConfigSelector: values["webhook-config-selector"] }
      : {}),
    ...(values["ca-secret"] !== undefined ? { secretName: values["ca-secret"] } : {}),
    ...optional("caRenewWhenLeft", fraction("ca-renew-when-left", values["ca-renew-when-left"])),
    ...optional("servingRenewAfter", fraction("serving-renew-after", values["serving-renew-after"])),
    ...(values["tls-san"] !== undefined ? { extraSans: values["tls-san"] } : {}),
    ...optional("caValidityMs", duration("ca-validity", values["ca-validity"])),
    ...optional("servingValidityMs", duration("serving-validity", values["serving-validity"])),
    ...optional("propagationMs", duration("ca-bundle-propagation", values["ca-bundle-propagation"])),
    ...optional("resyncMs", duration("resync", values.resync)),
  };
  const count = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^[1-9]\d{0,6}$/.test(v))
      throw new UsageError(`serve: --${flag} must be a whole number from 1 to 9999999, not ${v}`);
    return Number(v);
  };
  const workersArg = values.workers;
  if (workersArg !== undefined && workersArg !== "auto" && !/^\d{1,3}$/.test(workersArg)) {
    throw new UsageError(
      `serve: --workers must be a number of processes (0 or auto: one per core), not ${quote(workersArg)}`,
    );
  }
  const workers = workersArg === undefined ? undefined : workersArg === "auto" ? ("auto" as const) : Number(workersArg);
  const shutdownDelay = values["shutdown-delay"];
  const warmUpArg = values["warm-up"];
  const warmUpMs = warmUpArg === "0" ? 0 : duration("warm-up", warmUpArg);
  if (warmUpMs !== undefined && warmUpMs > MAX_WARM_UP_MS)
    throw new UsageError(
      `serve: --warm-up is at most ${MAX_WARM_UP_MS / 1000}s (the readiness it holds back), not ${warmUpArg}`,
    );
  // Through the environment, which the logger reads and the worker processes inherit.
  if (logFormat !== undefined) process.env[(await import("./telemetry/logger.js")).LOG_FORMAT_ENV] = logFormat;
  const { runServe } = await import("./main.js");
  await runServe({
    ...optional("adminPort", adminPort),
    ...optional("shutdownDelayMs", shutdownDelay === "0" ? 0 : duration("shutdown-delay", shutdownDelay)),
    ...optional("warmUpMs", warmUpMs),
    ...optional("maxConcurrentRequests", count("max-requests", values["max-requests"])),
    ...optional("maxConnections", count("max-connections", values["max-connections"])),
    ...(workers === undefined ? {} : { workers }),
    ...(mode !== undefined ? { certMode: mode as CertMode } : {}),
    kubernetes,
    configFile: values.config,
    ...(values["istio-config"] !== undefined ? { istioConfig: values["istio-config"] } : {}),
    ...(values["allow-unsupported"] === true ? { allowUnsupported: true } : {}),
    ...(values["revision-tag"] !== undefined || values["enable-namespaces-by-default"] === true
      ? {
          istioSelection: {
            ...(values["revision-tag"] !== undefined ? { revisionTags: values["revision-tag"] } : {}),
            ...(values["enable-namespaces-by-default"] === true ? { enableNamespacesByDefault: true } : {}),
          },
        }
      : {}),
    host: values.host,
    port,
    tlsCert: values["tls-cert"],
    tlsKey: values["tls-key"],
    certDir: values["cert-dir"],
    logLevel: values["log-level"],
  });
  return 0;
}

/** Each command's help, for `help <command>`. */
// --- policy render -----------------------------------------------------------------------

const POLICY_USAGE = `Usage: sidecar-injector policy render [options]
       sidecar-injector policy check -f FILE|DIR|- [-R] [options]

Prints, as one YAML List, the injection as a Kubernetes MutatingAdmissionPolicy and one
MutatingAdmissionPolicyBinding per webhook of the chart (same namespace and object
selectors): the API server then injects the Pods the policy covers itself, identically to
the webhook, with no call to the injector. The Pods it does not cover (annotations that
override the injection, probes it rewrites, ...: see the README) still go to the webhook:
the policy carries, in its annotation sidecar-injector.dev/webhook-match-condition, the
matchCondition the webhook needs so that each Pod has exactly one injector (the chart sets
it with policy.enabled).

Options:
      --config FILE     injector config (YAML); defaults apply to keys left out
      --api-version V   v1beta1 (Kubernetes 1.34-1.35, with the MutatingAdmissionPolicy
                        feature gate; default), v1 (1.36 and later), or auto: the one the
                        cluster serves (discovery of admissionregistration.k8s.io: v1, else
                        v1beta1, else an error saying what it serves); said on standard error
      --native-sidecars true|false|auto
                        whether the cluster's kubelets run native sidecars (1.33 or later),
                        as the injector decides nativeSidecars: auto; required with auto.
                        auto: read the nodes' kubelet versions, as serve does; said on
                        standard error
      --kubeconfig FILE with an auto: kubeconfig to use (default: KUBECONFIG,
                        ~/.kube/config, in-cluster)
      --context NAME    with an auto: context of the kubeconfig (default: its
                        current-context)
      --name NAME       name of the policy, and prefix of its bindings (default:
                        sidecar-injector)
  -n, --namespace NS    the injector's namespace, which the bindings leave out as the
                        webhooks do (default: sidecar-injector-system)
      --enable-namespaces-by-default
                        as the chart's webhook.enableNamespacesByDefault
  -f, --filename FILE   policy check: a manifest file, a directory or - (as inject reads
                        them); repeatable (required)
  -R, --recursive       policy check: with a directory, its subdirectories too
  -h, --help            this help

policy check reads Pods and workloads as inject does (-f, -R, -n) and says, one line each,
which injector their Pods get with that policy installed: "handled by the MutatingAdmissionPolicy", or
"falls to the webhook: " and why. Same --config and --native-sidecars (--api-version does
not change the verdicts, and auto reads nothing there).
`;

async function runPolicyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "-h" || sub === "--help") {
    process.stdout.write(POLICY_USAGE);
    return EXIT.ok;
  }
  if (sub !== "render" && sub !== "check")
    throw new UsageError(
      `${sub === undefined ? "policy: name the subcommand: render or check" : `policy: the subcommand is render or check, not ${quote(sub)}`}\n\n${POLICY_USAGE}`,
    );
  const { values } = parseArgs({
    args: rest,
    options: {
      ...(sub === "check" ? { filename: MANIFEST_OPTIONS.filename, recursive: MANIFEST_OPTIONS.recursive } : {}),
      config: { type: "string" },
      "api-version": { type: "string" },
      "native-sidecars": { type: "string" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      name: { type: "string" },
      namespace: { type: "string", short: "n" },
      "enable-namespaces-by-default": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(POLICY_USAGE);
    return EXIT.ok;
  }
  const { POLICY_API_VERSIONS, policyList, renderPolicy } = await import("./policy/render.js");
  const wanted = values["api-version"] ?? "v1beta1";
  if (wanted !== "auto" && !POLICY_API_VERSIONS.some((v) => v === wanted))
    throw new UsageError(`policy ${sub}: --api-version is v1, v1beta1 or auto, not ${quote(wanted)}`);
  const native = values["native-sidecars"];
  if (native !== undefined && native !== "true" && native !== "false" && native !== "auto")
    throw new UsageError(`policy ${sub}: --native-sidecars is true, false or auto, not ${quote(native)}`);
  if ((values.kubeconfig !== undefined || values.context !== undefined) && wanted !== "auto" && native !== "auto")
    throw new UsageError(
      `policy ${sub}: --kubeconfig and --context go with --api-version auto or --native-sidecars auto`,
    );
  const config = await loadConfig(values.config);
  if (config.nativeSidecars === "auto" && native === undefined)
    throw new UsageError(
      `policy ${sub}: the config says nativeSidecars: auto, which the injector decides from the nodes' kubelets: ` +
        "say what they run with --native-sidecars true|false, or read them with --native-sidecars auto",
    );
  // What the cluster decides (only what this command needs): read with the caller's kubeconfig.
  const askApiVersion = wanted === "auto" && sub === "render";
  const askNodes = native === "auto" && config.nativeSidecars === "auto";
  let apiVersion = POLICY_API_VERSIONS.find((v) => v === wanted) ?? "v1beta1";
  let nativeSidecarsSupported = native === "true";
  if (askApiVersion || askNodes) {
    const { createInspectApi, defaultKubeConfig } = await import("./kube/client.js");
    const api = createInspectApi(defaultKubeConfig(kubeConfigChoice(values)));
    if (askApiVersion) {
      const { ADMISSION_GROUP, chooseApiVersion } = await import("./policy/api-version.js");
      const choice = chooseApiVersion(await api.listServedVersions(ADMISSION_GROUP));
      apiVersion = choice.apiVersion;
      process.stderr.write(`policy ${sub}: --api-version auto: ${choice.reason}\n`);
    }
    if (askNodes) {
      const { NATIVE_SIDECAR_MIN_MINOR, nativeSidecarsSupported: supported } = await import("./kube/nodes.js");
      const versions = await api.listNodeVersions();
      nativeSidecarsSupported = supported(versions);
      const why =
        versions.length === 0
          ? "no nodes"
          : `${versions.length} node${versions.length === 1 ? "" : "s"}, ${nativeSidecarsSupported ? "every" : "not every"} kubelet v1.${NATIVE_SIDECAR_MIN_MINOR} or later`;
      process.stderr.write(
        `policy ${sub}: --native-sidecars auto: ${nativeSidecarsSupported ? "true" : "false"} (${why})\n`,
      );
    }
  }
  const rendered = renderPolicy(config, {
    apiVersion,
    name: values.name ?? DEFAULT_NAMES.webhookConfig,
    namespace: values.namespace ?? DEFAULT_NAMES.namespace,
    nativeSidecarsSupported,
    enableNamespacesByDefault: values["enable-namespaces-by-default"] === true,
  });
  if (sub === "check") {
    const filenames = "filename" in values && Array.isArray(values.filename) ? values.filename.map(String) : undefined;
    const recursive = "recursive" in values && values.recursive === true;
    const sources = await manifestSources("policy check", filenames, recursive);
    const { parseManifest } = await import("./manifest.js");
    const { podOf } = await import("./injection/workloads.js");
    const { verdict, verdictText } = await import("./policy/verdict.js");
    const namespace = values.namespace ?? "default";
    for (const { source, text } of sources) {
      for (const [i, doc] of parseManifest(text, source).entries()) {
        const list = doc as { kind?: unknown; items?: unknown };
        const items = list?.kind === "List" && Array.isArray(list.items) ? (list.items as unknown[]) : [doc];
        for (const item of items) {
          const dp = podOf(item, namespace);
          if (!dp) continue;
          const v = verdict(rendered.rules, dp.pod, dp.workload);
          process.stdout.write(
            `${resourceName(dp.kind, dp.name)} (${fileName(source)}, document ${i + 1}): ${verdictText(v)}\n`,
          );
        }
      }
    }
    return EXIT.ok;
  }
  const { yamlText } = await import("./yaml-emit.js");
  process.stdout.write(yamlText(policyList(rendered)));
  return EXIT.ok;
}

const COMPLETION_USAGE = `Usage: sidecar-injector completion bash|zsh|fish

Prints a completion script for the shell: commands, subcommands and each command's options
(files complete otherwise).
  bash, zsh:  source <(sidecar-injector completion bash)   (or zsh)
  fish:       sidecar-injector completion fish | source
`;

const VERSION_USAGE = `Usage: sidecar-injector version   (or --version)

Prints the version of this injector.
`;

const COMMAND_USAGE: Readonly<Record<string, string>> = {
  inject: INJECT_USAGE,
  serve: SERVE_USAGE,
  preview: PREVIEW_USAGE,
  certs: CERTS_USAGE,
  check: CHECK_USAGE,
  config: CONFIG_IMPORT_USAGE,
  policy: POLICY_USAGE,
  completion: COMPLETION_USAGE,
  version: VERSION_USAGE,
};

/** Commands that take a subcommand, and theirs. */
const SUBCOMMANDS: ReadonlyMap<string, readonly string[]> = new Map([
  ["certs", ["status"]],
  ["config", ["import"]],
  ["policy", ["render", "check"]],
]);

/** Each command's long options, read from its help. */
function commandFlags(): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(COMMAND_USAGE).map(([command, usage]) => [
      command,
      [...new Set(usage.match(/--[a-z][a-z-]*/g) ?? [])].sort(),
    ]),
  );
}

/** What completes a command's first argument: its subcommands, shells, commands. */
function firstWords(command: string): readonly string[] {
  if (command === "completion") return ["bash", "zsh", "fish"];
  if (command === "help") return Object.keys(COMMAND_USAGE);
  return SUBCOMMANDS.get(command) ?? [];
}

/**
 * A shell completion script: commands; a command's subcommands (or shells, or commands for
 * help) as its first argument; its options for a word that starts with `-`; files otherwise.
 */
function completionScript(shell: string): string {
  const commands = [...Object.keys(COMMAND_USAGE), "help"];
  const flags = commandFlags();
  if (shell === "bash" || shell === "zsh") {
    const cases = (words: (command: string) => readonly string[]): string =>
      commands
        .filter((c) => words(c).length > 0)
        .map((c) => `    ${c}) words="${words(c).join(" ")}" ;;`)
        .join("\n");
    const zsh = shell === "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" : "";
    return `${zsh}# sidecar-injector completion for ${shell}: source <(sidecar-injector completion ${shell})
_sidecar_injector() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.join(" ")}" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    case "\${COMP_WORDS[1]}" in
${cases((c) => flags[c] ?? [])}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return
  fi
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "\${COMP_WORDS[1]}" in
${cases(firstWords)}
    esac
    if [ -n "$words" ]; then
      COMPREPLY=($(compgen -W "$words" -- "$cur"))
      return
    fi
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _sidecar_injector sidecar-injector
`;
  }
  if (shell === "fish") {
    const lines = [
      "# sidecar-injector completion for fish: sidecar-injector completion fish | source",
      `complete -c sidecar-injector -n __fish_use_subcommand -f -a "${commands.join(" ")}"`,
      ...commands
        .filter((c) => firstWords(c).length > 0)
        .map(
          (c) =>
            `complete -c sidecar-injector -n "__fish_seen_subcommand_from ${c}" -f -a "${firstWords(c).join(" ")}"`,
        ),
      ...Object.entries(flags).flatMap(([c, f]) =>
        f.map((flag) => `complete -c sidecar-injector -n "__fish_seen_subcommand_from ${c}" -l ${flag.slice(2)}`),
      ),
    ];
    return `${lines.join("\n")}\n`;
  }
  throw new UsageError(`completion: the shell must be bash, zsh or fish, not ${quote(shell)}`);
}

/** The version in package.json (beside src/ and dist/ alike). */
function version(): string {
  const pkg: unknown = createRequire(import.meta.url)("../package.json");
  return typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string"
    ? pkg.version
    : "unknown";
}

/** The status of a command whose reader closed the pipe: 128 + SIGPIPE. */
const EXIT_SIGPIPE = 141;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "inject":
        return await runInject(rest);
      case "serve":
        return await runServeCommand(rest);
      case "certs":
        return await runCertsCommand(rest);
      case "preview":
        return await runPreviewCommand(rest);
      case "check":
        return await runCheckCommand(rest);
      case "config": {
        const [sub, ...args] = rest;
        if (sub === "-h" || sub === "--help") {
          process.stdout.write(CONFIG_IMPORT_USAGE);
          return 0;
        }
        if (sub !== "import")
          throw new UsageError(
            `${sub === undefined ? "config: name the subcommand: import" : `config: the subcommand is import, not ${quote(sub)}`}\n\n${CONFIG_IMPORT_USAGE}`,
          );
        const { PROCESS_IO, runConfigImport } = await import("./istio/command.js");
        return await runConfigImport(args, PROCESS_IO);
      }
      case "policy":
        return await runPolicyCommand(rest);
      case "completion": {
        const [shell] = rest;
        if (shell === "-h" || shell === "--help") {
          process.stdout.write(COMPLETION_USAGE);
          return 0;
        }
        if (shell === undefined)
          throw new UsageError(`completion: name the shell: bash, zsh or fish\n\n${COMPLETION_USAGE}`);
        process.stdout.write(completionScript(shell));
        return 0;
      }
      case "--version":
      case "version":
        if (rest.length === 1 && (rest[0] === "--help" || rest[0] === "-h")) {
          process.stdout.write(VERSION_USAGE);
          return 0;
        }
        if (rest.length > 0) throw new UsageError(`version takes no arguments, not ${quote(rest.join(" "))}`);
        process.stdout.write(`sidecar-injector ${version()}\n`);
        return 0;
      case "help": {
        const [topic] = rest;
        if (topic === undefined) {
          process.stdout.write(USAGE);
          return 0;
        }
        const usage = Object.hasOwn(COMMAND_USAGE, topic) ? COMMAND_USAGE[topic] : undefined;
        if (usage === undefined) throw new UsageError(`help: no command ${quote(topic)}\n\n${USAGE}`);
        process.stdout.write(usage);
        return 0;
      }
      case undefined:
      case "-h":
      case "--help":
        process.stdout.write(USAGE);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(
          command.startsWith("-")
            ? `${quote(command)} is not a command: give the command first (sidecar-injector COMMAND [options])\n\n${USAGE}`
            : `unknown command ${JSON.stringify(command)}\n\n${USAGE}`,
        );
    }
  } catch (e) {
    // Every error a command throws is said in one line (no stack trace). A coded error exits
    // with its registry's status (admission/errors.ts, EXIT_ERRORS); anything else with 2: the
    // command could not do its work. A refused object or a finding is an answer (exit 1),
    // which the commands return themselves.
    const said = isParseArgsError(e)
      ? parseArgsProblem(
          SUBCOMMANDS.has(command ?? "") && rest[0] !== undefined ? `${command} ${rest[0]}` : String(command),
          e,
        )
      : e instanceof Error
        ? e.message
        : String(e);
    process.stderr.write(`error: ${said}\n`);
    const status = e instanceof Error && "code" in e ? exitStatusOf(e.code) : undefined;
    return status ?? EXIT.usage;
  }
}

// A reader that stops early (`... | head`) closes the pipe: a command then stops quietly with
// the status a shell gives a process SIGPIPE ended (128 + 13), as Unix tools do, instead of an
// unhandled 'error' event and a stack trace. `serve` keeps its own handling of its log stream.
if (process.argv[2] !== "serve")
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
      process.exit(EXIT_SIGPIPE);
    });

// A promise chain rather than a top-level await: dist/ bundles this file as CommonJS
// (scripts/build.mjs). What main throws is an unhandled rejection: printed, exit status 1.
void main(process.argv.slice(2)).then((code) => {
  // A serve that could not start (a port in use, no credentials) may have begun some of its
  // work (a listener, a timer): it ends now, with its status, rather than half-started.
  if (code !== 0 && process.argv[2] === "serve") process.exit(code);
  if (code !== 0 || process.argv[2] !== "serve") process.exitCode = code;
});
