// The exit status of every command of the built CLI, against the one table in src/cli.ts:
// 0 done and nothing wrong, 1 done and an object refused or a finding, 2 not done (a usage
// error, or input, config, cluster or injector that could not be read or reached). The
// cluster is a plain HTTP server standing in for the API server: it knows no object (and
// lists no MutatingWebhookConfiguration).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, type Ran } from "../../support/run.js";
import { sendJson, startStandInApi, type StandInApi } from "../../support/stand-in-api.js";

const dir = mkdtempSync(join(tmpdir(), "cli-exit-"));
let api: StandInApi;
/** Paths the stand-in API server was asked, in order. */
const asked: string[] = [];
let kubeconfig = "";

before(async () => {
  api = await startStandInApi(
    dir,
    (req, res) => {
      asked.push(req.url ?? "");
      if (!(req.url ?? "").split("?")[0]?.endsWith("/mutatingwebhookconfigurations")) return false;
      sendJson(res, 200, {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfigurationList",
        metadata: {},
        items: [],
      });
      return true;
    },
    { token: "t", namespace: "demo" },
  );
  kubeconfig = api.kubeconfig;
});
after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: readonly string[], stdin?: string): Promise<Ran> {
  return runCli(args, {
    cwd: dir,
    env: { ...process.env, KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: "" },
    ...(stdin !== undefined ? { stdin } : {}),
  });
}

const pod = (name: string, annotations = "{}") =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, annotations: ${annotations}}\nspec: {containers: [{name: app, image: nginx}]}\n`;
const refusedPod = pod("bad", "{sidecar.istio.io/proxyCPU: lots}");

async function expectStatus(args: readonly string[], code: number, stderr: RegExp, stdin?: string): Promise<Ran> {
  const r = await run(args, stdin);
  assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
  assert.match(r.stderr, stderr, args.join(" "));
  if (code === 2) assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(" ")}: a message, not a stack trace`);
  return r;
}

describe("the table is in the help", () => {
  test("the top-level help states 0, 1 and 2", async () => {
    const r = await run(["--help"]);
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /Exit status, the same for every command:\n {2}0 {2}done, nothing wrong[^]*\n {2}1 {2}done, and something is wrong with the objects[^]*\n {2}2 {2}not done: a usage error/,
    );
  });
});

describe("top level", () => {
  test("no command, an unknown one, help for an unknown one, a shell not known: 2", async () => {
    await expectStatus([], 2, /^$/);
    await expectStatus(["frobnicate"], 2, /^error: unknown command "frobnicate"/);
    await expectStatus(["help", "frobnicate"], 2, /no command "frobnicate"/);
    await expectStatus(["completion"], 2, /name the shell/);
    await expectStatus(["policy"], 2, /^error: policy: name the subcommand: render or check\n/);
  });

  test("an option parseArgs refuses: the command, the option and where the options are listed", async () => {
    await expectStatus(
      ["check", "--bogus"],
      2,
      /^error: check: unknown option --bogus \(see "sidecar-injector help check"\)\n$/,
    );
    await expectStatus(
      ["serve", "--bogus"],
      2,
      /^error: serve: unknown option --bogus \(see "sidecar-injector help serve"\)\n$/,
    );
    await expectStatus(
      ["policy", "render", "--port"],
      2,
      /^error: policy render: unknown option --port \(see "sidecar-injector help policy"\)\n$/,
    );
    await expectStatus(
      ["inject", "-f"],
      2,
      /^error: inject: --filename needs a value \(see "sidecar-injector help inject"\)\n$/,
    );
    await expectStatus(
      ["inject", "--quiet=yes"],
      2,
      /^error: inject: --quiet takes no value \(see "sidecar-injector help inject"\)\n$/,
    );
    await expectStatus(
      ["inject", "-n", "-q", "-f", "x"],
      2,
      /^error: inject: -n needs a value \(one that starts with "-": --namespace=-VALUE or -n-VALUE\) \(see "sidecar-injector help inject"\)\n$/,
    );
    await expectStatus(
      ["inject", "--it's"],
      2,
      /^error: inject: unknown option --it's \(see "sidecar-injector help inject"\)\n$/,
    );
    await expectStatus(
      ["check", "--it's"],
      2,
      /^error: check: unknown option --it's \(see "sidecar-injector help check"\)\n$/,
    );
    await expectStatus(
      ["inject", "-f", "x", "it's"],
      2,
      /^error: inject: unexpected argument "it's" \(see "sidecar-injector help inject"\)\n$/,
    );
    await expectStatus(
      ["inject", "stray"],
      2,
      /^error: inject: unexpected argument "stray" \(see "sidecar-injector help inject"\)\n$/,
    );
  });
});

describe("inject", () => {
  test("0: injected or skipped by policy", async () => {
    await expectStatus(
      ["inject", "-f", "-"],
      0,
      /^Pod\/a \(stdin, document 1\): injected\nPod\/b \(stdin, document 2\): skipped: /,
      `${pod("a")}---\n${pod("b", '{sidecar.istio.io/inject: "false"}')}`,
    );
  });
  test("1: a document refused", async () => {
    await expectStatus(
      ["inject", "-f", "-"],
      1,
      /refused: invalid annotation sidecar\.istio\.io\/proxyCPU/,
      refusedPod,
    );
  });
  test("2: no -f, an unknown option, a bad -o, a missing file, a bad config, YAML that does not parse", async () => {
    writeFileSync(join(dir, "bad-config.yaml"), "policy: sometimes\n");
    await expectStatus(["inject"], 2, /-f FILE .* is required/);
    await expectStatus(["inject", "-f", "-", "--frobnicate"], 2, /frobnicate/, pod("a"));
    await expectStatus(["inject", "-f", "-", "-o", "xml"], 2, /--output must be yaml or json, not "xml"/, pod("a"));
    await expectStatus(["inject", "-f", join(dir, "nope.yaml")], 2, /no such file or directory/);
    await expectStatus(
      ["inject", "-f", "-", "--config", join(dir, "bad-config.yaml")],
      2,
      /policy="sometimes"/,
      pod("a"),
    );
    await expectStatus(["inject", "-f", "-"], 2, /document 1 is not valid YAML/, "a: [\n");
  });
});

describe("preview", () => {
  test("0: every Pod previewed, none refused", async () => {
    await expectStatus(["preview", "-f", "-", "-o", "json"], 0, /^$/, pod("a"));
  });
  test("1: a Pod the injector would refuse, in every offline format", async () => {
    for (const format of ["json", "yaml", "summary", "diff"]) {
      await expectStatus(
        ["preview", "-f", "-", "-o", format],
        1,
        /^error: the injector would refuse 1 of 2 Pods\n$/,
        `${pod("a")}---\n${refusedPod}`,
      );
    }
  });
  test("2: nothing to preview, an unknown -o, an injector that is not there", async () => {
    await expectStatus(
      ["preview", "-f", "-"],
      2,
      /no Pod, workload or AdmissionReview/,
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    );
    await expectStatus(["preview", "-f", "-", "-o", "table"], 2, /--output must be/, pod("a"));
    await expectStatus(
      ["preview", "-f", "-", "--server", "https://127.0.0.1:1", "--anonymous"],
      2,
      /ECONNREFUSED/,
      pod("a"),
    );
  });
});

describe("certs status", () => {
  test("1: a cluster without the CA Secret or the webhook configuration", async () => {
    // Nothing labelled as the chart's either: the default names, and a note that says so.
    const r = await expectStatus(
      ["certs", "status", "-n", "sys"],
      1,
      /^note: no MutatingWebhookConfiguration labelled app\.kubernetes\.io\/part-of=sidecar-injector/,
    );
    assert.match(
      r.stdout,
      /PROBLEMS:\n {2}- CA Secret sys\/sidecar-injector-ca does not exist\n {2}- MutatingWebhookConfiguration sidecar-injector does not exist\n/,
    );
    assert.ok(
      asked.some((p) => p.startsWith("/api/v1/namespaces/sys/secrets/sidecar-injector-ca")),
      asked.join(" "),
    );
  });
  test("2: no subcommand, an unknown one, an option it has not, an API server that is not there", async () => {
    await expectStatus(["certs"], 2, /^error: certs: name the subcommand: status\n/);
    await expectStatus(["certs", "renew"], 2, /^error: certs: the subcommand is status, not "renew"\n/);
    await expectStatus(["certs", "status", "--frobnicate"], 2, /frobnicate/);
    const down = join(dir, "down.yaml");
    writeFileSync(
      down,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1', insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\ncurrent-context: here\n",
    );
    await expectStatus(["certs", "status", "--kubeconfig", down], 2, /ECONNREFUSED|connect/);
  });
});

describe("the command line itself", () => {
  test("2: an option before any command, an argument version does not take, a label list that is not one", async () => {
    await expectStatus(["--bogus"], 2, /^error: "--bogus" is not a command: give the command first/);
    await expectStatus(["version", "--bogus"], 2, /^error: version takes no arguments, not "--bogus"\n$/);
    const help = await run(["version", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: sidecar-injector version/);
    writeFileSync(join(dir, "pod.yaml"), pod("web"));
    await expectStatus(
      ["preview", "-f", join(dir, "pod.yaml"), "--namespace-labels", "foo"],
      2,
      /^error: preview: --namespace-labels: namespace label "foo" is not key=value\n$/,
    );
  });
});

describe("check", () => {
  test("2: an object the cluster does not have", async () => {
    await expectStatus(["check", "web"], 2, /^error: .*web/);
  });
});

describe("serve", () => {
  test("2: a bad option value, and options that need each other (said, not a stack trace)", async () => {
    await expectStatus(["serve", "--port", "http"], 2, /--port must be a port number/);
    await expectStatus(
      ["serve", "--log-format", "pretty"],
      2,
      /^error: serve: --log-format must be text or json, not "pretty"\n$/,
    );
    await expectStatus(
      ["serve", "--cert-mode", "files"],
      2,
      /^error: --cert-mode files needs --tls-cert and --tls-key\n$/,
    );
    // A duration without its unit is not taken as milliseconds.
    await expectStatus(
      ["serve", "--shutdown-delay", "5"],
      2,
      /^error: serve: --shutdown-delay needs a unit: 5s, 5m or 5ms, not 5\n$/,
    );
    await expectStatus(["serve", "--resync", "60"], 2, /^error: serve: --resync needs a unit: 60s, 60m or 60ms/);
    await expectStatus(["serve", "--warm-up", "3"], 2, /^error: serve: --warm-up needs a unit: 3s, 3m or 3ms/);
    // A warm-up holds readiness back: past a minute it is a mistake, not a warm-up.
    await expectStatus(["serve", "--warm-up", "2m"], 2, /^error: serve: --warm-up is at most 60s .*, not 2m\n$/);
    await expectStatus(["serve", "--warm-up", "soon"], 2, /^error: serve: --warm-up must be a duration like 30s/);
  });

  test("2, and the process ends, when it cannot start: a port in use, the admin port on the webhook's, no credentials", async () => {
    // Ended, not half-started: had it kept a listener or a timer, the run would not end.
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      await expectStatus(
        ["serve", "--local", "--cert-dir", join(dir, "certs"), "--port", String(port)],
        2,
        new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${port} \\(--port, --host\\): the port is in use`),
      );
    } finally {
      taken.close();
    }
    const free = await new Promise<number>((r) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => r(p));
      });
    });
    await expectStatus(
      ["serve", "--local", "--cert-dir", join(dir, "certs"), "--port", String(free), "--admin-port", String(free)],
      2,
      new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${free} \\(--admin-port, --host\\): the port is in use`),
    );
    // A certificates folder that cannot be one: said in words, naming the option.
    writeFileSync(join(dir, "a-file"), "x");
    await expectStatus(
      ["serve", "--local", "--port", "0", "--cert-dir", join(dir, "a-file")],
      2,
      /^error: cannot keep local certificates in \S+a-file \(--cert-dir\): a file of that name is in the way/,
    );
    await expectStatus(
      ["serve", "--local", "--port", "0", "--cert-dir", join(dir, "a-file", "certs")],
      2,
      /\(--cert-dir\): a part of the path is a file, not a folder\n/,
    );
    const home = join(dir, "no-home");
    mkdirSync(home, { recursive: true });
    const r = await runCli(["serve", "--cert-mode", "kubernetes", "--port", "0"], {
      cwd: dir,
      env: { ...process.env, KUBECONFIG: "", HOME: home, KUBERNETES_SERVICE_HOST: "" },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: no Kubernetes credentials: [^\n]*; set KUBECONFIG\n/m);
  });
});
