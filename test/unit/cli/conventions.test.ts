// The built CLI (dist/cli.js) as kubectl and istioctl users expect it: --version, help
// <command>, -f DIR (and -R) in name order, a document that cannot be injected named by file
// and position, unreadable inputs said in words, and check's and certs status's --kubeconfig
// and --context refused with their names when they cannot be used, and inject --from-cluster's
// arguments.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { run as runProgram, runCli, type Ran } from "../../support/run.js";
import { parseAllDocuments } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const dir = mkdtempSync(join(tmpdir(), "cli-conventions-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: readonly string[]): Promise<Ran> {
  return runCli(args, {
    cwd: dir,
    env: { ...process.env, KUBECONFIG: join(dir, "no-kubeconfig"), KUBERNETES_SERVICE_HOST: "" },
  });
}

const podYaml = (name: string, annotations = "{}") =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, annotations: ${annotations}}\nspec: {containers: [{name: app, image: nginx}]}\n`;
const names = (yamlText: string): string[] =>
  parseAllDocuments(yamlText).map((d) => String((d.toJS() as { metadata: { name: string } }).metadata.name));

describe("--version and help", () => {
  test("--version and version: the package's version", async () => {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    for (const args of [["--version"], ["version"]]) {
      const r = await run(args);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `sidecar-injector ${version}\n`);
    }
  });

  test("help <command> is that command's help; an unknown one exits 2", async () => {
    for (const [command, first] of [
      ["inject", "Usage: sidecar-injector inject"],
      ["check", "Usage: sidecar-injector check"],
      ["certs", "Usage: sidecar-injector certs status"],
    ] as const) {
      const r = await run(["help", command]);
      assert.equal(r.code, 0);
      assert.ok(r.stdout.startsWith(first), r.stdout.slice(0, 80));
      assert.equal(r.stdout, (await run([command, "--help"])).stdout);
    }
    for (const command of ["completion", "version"]) {
      const r = await run(["help", command]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.startsWith(`Usage: sidecar-injector ${command}`), r.stdout.slice(0, 80));
    }
    for (const flag of ["--help", "-h"])
      assert.equal((await run(["completion", flag])).stdout, (await run(["help", "completion"])).stdout);
    const top = await run(["--help"]);
    for (const line of ["policy check", "completion", "version", "help"])
      assert.match(top.stdout, new RegExp(`^  ${line} +\\S`, "m"), line);
    const bad = await run(["help", "nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: help: no command "nope"/);
  });
});

describe("completion", () => {
  test("bash: the script, sourced, completes commands and a command's options", async () => {
    const script = await run(["completion", "bash"]);
    assert.equal(script.code, 0, script.stderr);
    const scriptFile = join(dir, "completion.bash");
    writeFileSync(scriptFile, script.stdout);
    const probe = [
      `source ${JSON.stringify(scriptFile)}`,
      'COMP_WORDS=(sidecar-injector ch); COMP_CWORD=1; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector check --all); COMP_CWORD=2; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector preview --tls); COMP_CWORD=2; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector policy ""); COMP_CWORD=2; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector policy check --file); COMP_CWORD=3; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector completion f); COMP_CWORD=2; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector help po); COMP_CWORD=2; _sidecar_injector; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(sidecar-injector v); COMP_CWORD=1; _sidecar_injector; echo "${COMPREPLY[*]}"',
    ].join("\n");
    const r = await runProgram("bash", ["--norc", "-c", probe]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "check",
      "--all-namespaces",
      "--tls-server-name",
      "render check",
      "--filename",
      "fish",
      "policy",
      "version",
    ]);
  });

  test("fish: one line per command option; another shell: exit 2", async () => {
    const fish = await run(["completion", "fish"]);
    assert.equal(fish.code, 0);
    assert.match(
      fish.stdout,
      /^complete -c sidecar-injector -n "__fish_seen_subcommand_from check" -l all-namespaces$/m,
    );
    assert.match(
      fish.stdout,
      /^complete -c sidecar-injector -n "__fish_seen_subcommand_from policy" -f -a "render check"$/m,
    );
    const other = await run(["completion", "tcsh"]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /the shell must be bash, zsh or fish, not "tcsh"/);
  });
});

describe("inject -f", () => {
  const manifests = join(dir, "manifests");
  mkdirSync(join(manifests, "nested"), { recursive: true });
  writeFileSync(join(manifests, "b.yaml"), podYaml("b"));
  writeFileSync(join(manifests, "a.yml"), `${podYaml("a1")}---\n${podYaml("a2")}`);
  writeFileSync(
    join(manifests, "c.json"),
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "c" },
      spec: { containers: [{ name: "app", image: "nginx" }] },
    }),
  );
  writeFileSync(join(manifests, "notes.txt"), "not a manifest");
  writeFileSync(join(manifests, "nested", "d.yaml"), podYaml("d"));

  test("a directory: its .yaml, .yml and .json files in name order; subdirectories with -R", async () => {
    const flat = await run(["inject", "-f", manifests]);
    assert.equal(flat.code, 0, flat.stderr);
    assert.deepEqual(names(flat.stdout), ["a1", "a2", "b", "c"]);
    assert.match(flat.stdout, /istio-proxy/);
    const deep = await run(["inject", "-f", manifests, "-R"]);
    assert.deepEqual(names(deep.stdout), ["a1", "a2", "b", "c", "d"]);
    const two = await run(["inject", "-f", join(manifests, "b.yaml"), "-f", join(manifests, "c.json")]);
    assert.deepEqual(names(two.stdout), ["b", "c"]);
  });

  test("a refused document: exit 1, every document reported by file, position and object, nothing on stdout", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      `${podYaml("fine")}---\n${podYaml("broken", "{traffic.sidecar.istio.io/includeInboundPorts: http}")}---\n${podYaml("worse", "{sidecar.istio.io/proxyCPU: lots}")}`,
    );
    const r = await run(["inject", "-f", bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "", "nothing half-printed");
    assert.equal(
      r.stderr,
      [
        `Pod/fine (${bad}, document 1): injected`,
        `Pod/broken (${bad}, document 2): refused: invalid annotation traffic.sidecar.istio.io/includeInboundPorts="http": "http" is not a port number (0-65535)`,
        `Pod/worse (${bad}, document 3): refused: invalid annotation sidecar.istio.io/proxyCPU="lots": is not a Kubernetes quantity (for example 100m, 1Gi)`,
        "error: 2 of 3 documents refused; nothing printed",
        "",
      ].join("\n"),
    );
    const quiet = await run(["inject", "-f", bad, "--quiet"]);
    assert.equal(quiet.code, 1);
    assert.doesNotMatch(quiet.stderr, /Pod\/fine/, "--quiet: the refusals only");
    assert.match(
      quiet.stderr,
      /^Pod\/broken \(.*\): refused: .*\nPod\/worse \(.*\): refused: .*\nerror: 2 of 3 documents refused; nothing printed\n$/,
    );
  });

  test("the report on stderr: injected, skipped and why, unchanged, warnings; stdout is the manifests alone", async () => {
    const mixed = join(dir, "mixed.yaml");
    writeFileSync(
      mixed,
      [
        podYaml("web"),
        podYaml("opted-out", '{sidecar.istio.io/inject: "false"}'),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {template: {metadata: {}, spec: {hostNetwork: true, containers: [{name: app, image: nginx}]}}}\n",
      ].join("---\n"),
    );
    const r = await run(["inject", "-f", mixed]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stderr.split("\n"), [
      `Pod/web (${mixed}, document 1): injected`,
      `Pod/opted-out (${mixed}, document 2): skipped: annotation sidecar.istio.io/inject=false on the pod: not injected`,
      "  warning: the sidecar.istio.io/inject annotation is deprecated: use the label, which the webhook's objectSelector also reads",
      `Service/web (${mixed}, document 3): unchanged: not a Pod or a workload`,
      `Deployment/api (${mixed}, document 4): skipped: hostNetwork pods are never injected`,
      "",
    ]);
    assert.deepEqual(names(r.stdout), ["web", "opted-out", "web", "api"]);
    const quiet = await run(["inject", "-f", mixed, "-q"]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "", "--quiet: nothing refused, nothing said");
    assert.equal(quiet.stdout, r.stdout, "the report never changes stdout");
    const stdin = await runCli(["inject", "-f", "-"], { cwd: dir, stdin: podYaml("piped") });
    assert.equal(stdin.stderr, "Pod/piped (stdin, document 1): injected\n");
  });

  test("a path that is not there, and a directory without manifests: exit 2, in words", async () => {
    const missing = await run(["inject", "-f", join(dir, "nope")]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `error: -f ${JSON.stringify(join(dir, "nope"))}: no such file or directory\n`);
    mkdirSync(join(dir, "empty"), { recursive: true });
    const empty = await run(["inject", "-f", join(dir, "empty")]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /a directory with no \.yaml, \.yml or \.json files \(-R reads its subdirectories too\)/);
  });
});

describe("check, certs status: arguments and credentials", () => {
  test("arguments that contradict each other or name no kind: exit 2, said", async () => {
    for (const [args, said] of [
      [["check", "web", "-A"], /a name needs one namespace/],
      [["check", "web", "-l", "app=web"], /-l selects Pods instead of names/],
      [["check", "service/web"], /"service" is not a kind check reads/],
      [["check", "-o", "wide"], /--output must be table, json or yaml/],
    ] as const) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, said);
    }
  });

  test("--kubeconfig that is not there, --context not in it: exit 2, naming them", async () => {
    const kubeconfig = join(dir, "kubeconfig.yaml");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\ncurrent-context: here\n",
    );
    const missing = await run(["check", "-n", "demo", "--kubeconfig", join(dir, "nope.yaml")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot load Kubernetes credentials from --kubeconfig .*nope\.yaml/);
    for (const command of [
      ["check", "-n", "demo"],
      ["certs", "status"],
    ]) {
      const r = await run([...command, "--kubeconfig", kubeconfig, "--context", "elsewhere"]);
      assert.equal(r.code, 2, command.join(" "));
      assert.match(r.stderr, /no context "elsewhere" in --kubeconfig .*kubeconfig\.yaml \(contexts: here\)/);
    }
    // The context that is there: the API server at its address is asked (and is not there).
    const down = await run(["check", "-n", "demo", "--kubeconfig", kubeconfig, "--context", "here"]);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /ECONNREFUSED|connect/);
  });

  test("no kubeconfig anywhere and not in a Pod: exit 2, saying so, for every command that needs the cluster", async (t) => {
    if (existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token")) return t.skip("this runs in a Pod");
    const home = join(dir, "empty-home");
    mkdirSync(home, { recursive: true });
    const env = { ...process.env, KUBECONFIG: "", HOME: home, KUBERNETES_SERVICE_HOST: "" };
    for (const command of [
      ["check", "-A"],
      ["certs", "status"],
      ["inject", "--from-cluster", "-f", "-"],
      ["policy", "render", "--native-sidecars", "auto"],
    ]) {
      const r = await runCli(command, { cwd: dir, env, stdin: "" });
      assert.equal(r.code, 2, command.join(" "));
      assert.match(
        r.stderr,
        /^error: no Kubernetes credentials: KUBECONFIG is not set, ~\/\.kube\/config does not exist, and this is not a Pod with a service account; give --kubeconfig FILE\n$/,
        command.join(" "),
      );
    }
  });
});

describe("inject --from-cluster: arguments and credentials", () => {
  test("with --config, or cluster flags without it: exit 2, said; a cluster that cannot be reached: exit 2, nothing on stdout", async () => {
    writeFileSync(join(dir, "one.yaml"), podYaml("one"));
    writeFileSync(join(dir, "config.yaml"), "{}\n");
    for (const [args, said] of [
      [
        ["inject", "-f", "one.yaml", "--from-cluster", "--config", "config.yaml"],
        /^error: inject: --from-cluster reads the injector's config from the cluster, --config from a file: give one or the other$/m,
      ],
      [
        ["inject", "-f", "one.yaml", "--webhook-config", "x"],
        /^error: inject: --webhook-config, --kubeconfig and --context go with --from-cluster$/m,
      ],
      [["inject", "-f", "one.yaml", "--context", "here"], /go with --from-cluster/],
      [
        ["inject", "-f", "one.yaml", "--from-cluster", "--kubeconfig", join(dir, "nope.yaml")],
        /cannot load Kubernetes credentials from --kubeconfig .*nope\.yaml/,
      ],
    ] as const) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, said);
      assert.equal(r.stdout, "", args.join(" "));
    }
    const kubeconfig = join(dir, "down-kubeconfig.yaml");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\ncurrent-context: here\n",
    );
    const down = await run(["inject", "-f", "one.yaml", "--from-cluster", "--kubeconfig", kubeconfig]);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /^error: list MutatingWebhookConfigurations.*(ECONNREFUSED|connect)/m);
    assert.equal(down.stdout, "");
  });
});
