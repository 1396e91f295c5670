import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { parseConfig } from "../../../src/config/load.js";
import { runConfigImport, type CommandIo } from "../../../src/istio/command.js";
import { runCli } from "../../support/run.js";

const VALUES = JSON.stringify({
  global: { hub: "reg.example/istio", tag: "1.28.0", proxy: { logLevel: "debug" } },
  revision: "",
});

function configMaps(o: { mesh?: string; config?: string } = {}): string {
  const injector = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "istio-sidecar-injector" },
    data: { values: VALUES, config: o.config ?? "policy: disabled\n" },
  };
  const mesh = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "istio" },
    data: { mesh: o.mesh ?? "trustDomain: example.org\n" },
  };
  return `${JSON.stringify(injector)}\n---\n${JSON.stringify(mesh)}\n`;
}

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function importWith(argv: string[], files: Record<string, string>): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  const io: CommandIo = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readInput: (f) => {
      const text = files[f];
      if (text === undefined) return Promise.reject(Object.assign(new Error("nope"), { code: "ENOENT" }));
      return Promise.resolve(text);
    },
  };
  const code = await runConfigImport(argv, io);
  return { code, stdout, stderr };
}

describe("config import (command)", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "config-import-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("writes our config, which our loader takes, and exits 0", async () => {
    const r = await importWith(["-f", "cms.yaml"], { "cms.yaml": configMaps() });
    assert.equal(r.code, 0, r.stderr);
    const config = parseConfig(r.stdout, "(imported)");
    assert.equal(config.policy, "disabled");
    assert.equal(config.trustDomain, "example.org");
    assert.equal(config.meshId, "example.org");
    assert.equal(config.proxy.image, "reg.example/istio/proxyv2:1.28.0");
    assert.equal(config.proxy.logLevel, "debug");
    assert.match(
      r.stdout,
      /^# sidecar-injector config imported from Istio's ConfigMaps istio-sidecar-injector and istio/,
    );
  });

  test("several files are read together", async () => {
    const [a, b] = configMaps().split("\n---\n");
    const r = await importWith(["-f", "a.yaml", "-f", "b.yaml"], { "a.yaml": a ?? "", "b.yaml": b ?? "" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parse(r.stdout).trustDomain, "example.org");
  });

  test("a setting that cannot be honoured: findings on stderr, nothing written, exit 1", async () => {
    const r = await importWith(["-f", "cms.yaml"], {
      "cms.yaml": configMaps({ mesh: "defaultConfig:\n  drainDuration: 1500ms\n" }),
    });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^unsupported: istio\.mesh\.defaultConfig: is refused by istiod: drainDuration must be whole seconds\n {2}instead: correct meshConfig\.defaultConfig/m,
    );
    assert.match(r.stderr, /1 setting cannot be honoured .*nothing written/);
  });

  test("--allow-unsupported writes what can be honoured, and says so in the file", async () => {
    const out = join(dir, "imported.yaml");
    const r = await importWith(["-f", "cms.yaml", "--allow-unsupported", "-o", out], {
      "cms.yaml": configMaps({ mesh: "defaultConfig:\n  drainDuration: 1500ms\n" }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    const text = await readFile(out, "utf8");
    assert.match(text, /# 1 setting could not be honoured/);
    assert.equal(parseConfig(text).policy, "disabled");
  });

  const refusals: readonly {
    name: string;
    argv: string[];
    files: Record<string, string>;
    code: number;
    message: RegExp;
  }[] = [
    { name: "no -f", argv: [], files: {}, code: 2, message: /-f FILE .* is required/ },
    {
      name: "an unknown option",
      argv: ["-f", "x", "--bogus"],
      files: {},
      code: 2,
      message: /^error: config import: unknown option --bogus \(see "sidecar-injector help config"\)$/m,
    },
    {
      name: "a file that cannot be read",
      argv: ["-f", "missing.yaml"],
      files: {},
      code: 2,
      message: /-f "missing.yaml": no such file or directory/,
    },
    {
      name: "invalid YAML",
      argv: ["-f", "bad.yaml"],
      files: { "bad.yaml": "a: [\n" },
      code: 2,
      message: /"bad.yaml": document 1 is not valid YAML/,
    },
    {
      name: "no ConfigMaps",
      argv: ["-f", "x.yaml"],
      files: { "x.yaml": "kind: Deployment\n" },
      code: 2,
      message: /no istio-sidecar-injector\[-REV\] or istio\[-REV\] ConfigMap/,
    },
    {
      name: "an import our injector would refuse",
      argv: ["-f", "x.yaml"],
      files: {
        "x.yaml": configMaps({ config: "neverInjectSelector:\n- matchExpressions: [{key: a, operator: Sometimes}]\n" }),
      },
      code: 2,
      message: /not a valid config of this injector: .*neverInjectSelector\[0\]/,
    },
  ];
  for (const c of refusals) {
    test(`refused: ${c.name}`, async () => {
      const r = await importWith(c.argv, c.files);
      assert.equal(r.code, c.code, r.stderr);
      assert.match(r.stderr, c.message);
      assert.equal(r.stdout, "");
    });
  }

  test("the built CLI: config import from standard input, help, and a wrong subcommand", async () => {
    const ok = await runCli(["config", "import", "-f", "-"], { stdin: configMaps() });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(parse(ok.stdout).policy, "disabled");
    const help = await runCli(["help", "config"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /config import -f FILE/);
    const wrong = await runCli(["config", "export"]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /the subcommand is import, not "export"/);
  });
});
