// The proof of `config import`: Istio's chart (istio-control/istio-discovery of the pinned
// checkout) is rendered with helm, with its default values and with the values files here;
// `sidecar-injector config import` (the built CLI) reads the rendered ConfigMaps; then, for
// every golden input (test/golden/*.yaml, test/istio-golden/cases/*.yaml, image-types.yaml,
// and a scenario's own inputs), our injector under
// the imported config is compared with Istio's own injector (the oracle, test/oracle) run with
// the same rendered ConfigMaps (--injector-cm, --mesh-cm): both refuse, or both inject and
// the API server would store the same objects (test/support/compare-injected.ts).
//
// The oracle's cluster has kubelets v1.33 and v1.34, so Istio uses native sidecars; that is a
// fact of the cluster, not of Istio's settings, so the imported config is given
// `nativeSidecars: true` beside what the import wrote; the scenario without native sidecars
// runs the oracle with ENABLE_NATIVE_SIDECARS=false and gives `nativeSidecars: false`.
//
// Skips when the oracle (test/oracle/build.sh), the Istio checkout it builds from, or helm is
// absent: none of them is built by the suite's set-up (scripts/test-bins.sh builds helm only
// for the end-to-end tests), so this runs where the oracle has been built.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { InjectionError } from "../../src/injection/types.js";
import { injectManifest } from "../../src/manifest.js";
import { compareInjected, describeDifferences } from "../support/compare-injected.js";
import { run, runCli } from "../support/run.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cache = process.env.SIDECAR_INJECTOR_CACHE ?? join(homedir(), ".cache", "sidecar-injector");
const oracle = process.env.ISTIO_ORACLE ?? join(cache, "bin", "istio-oracle-86c9f01");
const istioSrc = process.env.ISTIO_SRC ?? join(cache, "istio-86c9f01");
const chart = join(istioSrc, "manifests", "charts", "istio-control", "istio-discovery");

function findHelm(): string | undefined {
  if (process.env.HELM) return process.env.HELM;
  const bin = join(cache, "bin");
  if (!existsSync(bin)) return undefined;
  for (const d of readdirSync(bin).sort().reverse()) {
    const h = join(bin, d, "helm");
    if (d.startsWith("k8s-") && existsSync(h)) return h;
  }
  return undefined;
}

const helm = findHelm();
const missing = !existsSync(oracle)
  ? `no oracle at ${oracle} (test/oracle/build.sh builds it)`
  : !existsSync(chart)
    ? `no Istio chart at ${chart}`
    : helm === undefined
      ? "no helm (HELM, or scripts/test-bins.sh)"
      : undefined;

interface Input {
  readonly name: string;
  readonly manifest: string;
}

function goldenInputs(extra: readonly string[] = []): Input[] {
  const dirs = [join(root, "test", "golden"), join(root, "test", "istio-golden", "cases")];
  const golden = dirs.flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".yaml") && !f.endsWith(".config.yaml"))
      .sort()
      .map((f) => ({
        name: `${dir === dirs[0] ? "golden" : "istio-golden"}/${f}`,
        manifest: readFileSync(join(dir, f), "utf8"),
      })),
  );
  // Pods naming image types and images, for the scenarios with a variant or full image names;
  // and what a scenario adds.
  return [
    ...golden,
    ...["image-types.yaml", ...extra].map((f) => ({
      name: `istio-import/${f}`,
      manifest: readFileSync(join(here, f), "utf8"),
    })),
  ];
}

interface OracleAnswer {
  readonly id: string;
  readonly output?: string;
  readonly refusal?: string;
}

/** A difference we know of: which scenario, which differences (by input and path), and why. */
interface Known {
  readonly scenario: string;
  readonly pattern: RegExp;
  readonly cause: string;
}

/**
 * Every difference must match one of these, and each of these must match at least one
 * difference, so that the list only shrinks.
 */
const KNOWN_DIVERGENT: readonly Known[] = [
  ...["default values", "non-default values", "a variant", "istio-init image in full"].map((scenario) => ({
    scenario,
    pattern: /^golden\/reinject\.yaml: Pod\/probes\.template\./,
    cause:
      "a deliberate difference (README, deliberate(reinjection)): re-injecting a Pod injected before with other settings, Istio keeps the old istio-proxy's image and settings and the probes the first injection rewrote; we inject as the current config says",
  })),
  ...["default values", "a variant", "istio-init image in full", "native sidecars off"].map((scenario) => ({
    scenario,
    pattern:
      /^golden\/status-port-zero\.yaml: Pod\/no-status\.template\.((initContainers|containers)\.istio-proxy\.env\.ISTIO_KUBE_APP_PROBERS|containers\.web\.readinessProbe)/,
    cause:
      "a deliberate difference (README, deliberate(status-port-zero)): with status.sidecar.istio.io/port 0 Istio rewrites probes to port 0; we leave them",
  })),
  {
    scenario: "istio-init image in full",
    pattern: /^istio-import\/image-types\.yaml: Pod\/bare-image\.template\.initContainers\.istio-init\.image: /,
    cause:
      "a deliberate difference (README): a sidecar.istio.io/proxyImage without a '/' where the values name the image in full; Istio joins hub, full name and tag into an image no registry serves, we ignore the annotation as Istio does otherwise",
  },
  {
    scenario: "native sidecars off",
    // Istio's Pod: its proxy among the containers, the Pod's own left among the init containers
    // (first, as with native sidecars); ours: one, the Pod's fields over it, recorded.
    pattern:
      /^istio-import\/own-proxy\.yaml: Pod\/[-a-z]+\.template\.(initContainers\.istio-proxy: missing|initContainerOrder:|annotations\.proxy\.istio\.io\/overrides: unexpected|containers\.istio-proxy\.(resources|securityContext\.runAsUser|env\.EXTRA)[.:])/,
    cause:
      "a deliberate difference (README): a Pod's own istio-proxy among its init containers with native sidecars off; Istio leaves it there beside the injected one (two istio-proxy, which the API server refuses), we merge its fields but its restartPolicy over the one injected among the containers",
  },
];

interface Scenario {
  readonly name: string;
  readonly values: string | undefined;
  readonly unsupported: readonly string[];
  /** Native sidecars on both sides (default true, as the oracle's cluster detects them). */
  readonly native?: boolean;
  /** Input files of this folder for this scenario only. */
  readonly inputs?: readonly string[];
}

const SCENARIOS: readonly Scenario[] = [
  { name: "default values", values: undefined, unsupported: [] },
  {
    name: "non-default values",
    values: join(here, "non-default.values.yaml"),
    unsupported: [],
  },
  { name: "a variant", values: join(here, "variant.values.yaml"), unsupported: [] },
  { name: "istio-init image in full", values: join(here, "full-name-init.values.yaml"), unsupported: [] },
  {
    name: "native sidecars off",
    values: undefined,
    unsupported: [],
    native: false,
    inputs: ["own-proxy.yaml"],
  },
];

describe(
  "config import of Istio's rendered chart: our injector equals Istio's on the golden inputs",
  { skip: missing },
  () => {
    let dir = "";
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "istio-import-"));
    });
    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    for (const scenario of SCENARIOS) {
      test(scenario.name, { timeout: 600_000 }, async (t) => {
        const slug = scenario.name.replace(/\W+/g, "-");
        // Istio's chart, rendered as an install would render it.
        const rendered = await run(helm ?? "helm", [
          "template",
          "istiod",
          chart,
          "-n",
          "istio-system",
          ...(scenario.values ? ["-f", scenario.values] : []),
        ]);
        assert.equal(rendered.code, 0, rendered.stderr);
        const renderedFile = join(dir, `${slug}.rendered.yaml`);
        await writeFile(renderedFile, rendered.stdout);
        const maps = new Map<string, unknown>();
        for (const d of parseAllDocuments(rendered.stdout)) {
          const doc: unknown = d.toJS();
          const m = doc as { kind?: unknown; metadata?: { name?: unknown } } | null;
          if (
            m?.kind === "ConfigMap" &&
            (m.metadata?.name === "istio-sidecar-injector" || m.metadata?.name === "istio")
          )
            maps.set(m.metadata.name, doc);
        }
        assert.equal(maps.size, 2, "the rendered chart has both ConfigMaps");
        const injectorCm = join(dir, `${slug}.injector.yaml`);
        const meshCm = join(dir, `${slug}.mesh.yaml`);
        await writeFile(injectorCm, stringify(maps.get("istio-sidecar-injector")));
        await writeFile(meshCm, stringify(maps.get("istio")));

        // Our import of the same render: only the findings expected of it.
        const imported = await runCli(["config", "import", "-f", renderedFile, "--allow-unsupported"]);
        assert.equal(imported.code, 0, imported.stderr);
        const unsupported = [...imported.stderr.matchAll(/^unsupported: ([^:]+):/gm)].map((m) => m[1]);
        assert.deepEqual(unsupported, scenario.unsupported, imported.stderr);
        // The values file itself, imported without helm, gives the same config.
        if (scenario.values !== undefined) {
          const fromValues = await runCli(["config", "import", "-f", scenario.values, "--allow-unsupported"]);
          assert.equal(fromValues.code, 0, fromValues.stderr);
          const body = (text: string): string => text.replace(/^#.*\n/gm, "");
          assert.equal(
            body(fromValues.stdout),
            body(imported.stdout),
            "the values file imports as its rendered ConfigMaps do",
          );
        }
        const native = scenario.native ?? true;
        const config: Config = parseConfig(`${imported.stdout}\nnativeSidecars: ${String(native)}\n`, "(imported)");

        // Istio's answers for every input, in one batch.
        const inputs = goldenInputs(scenario.inputs ?? []);
        assert.ok(inputs.length >= 100, `only ${inputs.length} golden inputs`);
        const batch = join(dir, `${slug}.jsonl`);
        await writeFile(batch, inputs.map((i) => JSON.stringify({ id: i.name, manifest: i.manifest })).join("\n"));
        const answered = await run(oracle, ["--injector-cm", injectorCm, "--mesh-cm", meshCm, "--jsonl", "-f", batch], {
          env: native ? process.env : { ...process.env, ENABLE_NATIVE_SIDECARS: "false" },
        });
        assert.equal(answered.code, 0, answered.stderr);
        const answers = new Map<string, OracleAnswer>();
        for (const line of answered.stdout.split("\n")) {
          if (line.trim() === "") continue;
          const a = JSON.parse(line) as OracleAnswer;
          answers.set(a.id, a);
        }
        assert.equal(answers.size, inputs.length, "the oracle answered every input");

        const differing: string[] = [];
        const used = new Set<Known>();
        let compared = 0;
        for (const input of inputs) {
          const istio = answers.get(input.name);
          assert.ok(istio !== undefined);
          let ours: readonly unknown[] | string;
          try {
            ours = injectManifest(input.manifest, input.name, "default", config).docs;
          } catch (e) {
            if (!(e instanceof InjectionError)) throw e;
            ours = `refused: ${e.message}`;
          }
          let what: string[];
          if (typeof ours === "string" || istio.refusal !== undefined) {
            const oursRefused = typeof ours === "string";
            const istioRefused = istio.refusal !== undefined;
            what =
              oursRefused === istioRefused
                ? []
                : [
                    `Istio ${istioRefused ? `refuses (${istio.refusal ?? ""})` : "injects"}, we ${oursRefused ? String(ours) : "inject"}`,
                  ];
          } else {
            what = describeDifferences(compareInjected(ours, istio.output ?? ""));
          }
          compared++;
          for (const w of what) {
            // istiod's webhook adds injectedAnnotations (webhook.go); kube-inject, which the
            // oracle runs, does not (inject.go): ours, which adds them, is the webhook's answer.
            const annotation = /\.annotations\.(.+): unexpected /.exec(w)?.[1];
            if (annotation !== undefined && Object.hasOwn(config.injectedAnnotations, annotation)) continue;
            const line = `${input.name}: ${w}`;
            const known = KNOWN_DIVERGENT.filter((k) => k.scenario === scenario.name).find((k) => k.pattern.test(line));
            if (known === undefined) differing.push(line);
            else used.add(known);
          }
        }
        for (const k of KNOWN_DIVERGENT.filter((x) => x.scenario === scenario.name)) {
          if (used.has(k)) t.diagnostic(`known divergence (${k.cause})`);
          else
            differing.push(
              `known divergence ${String(k.pattern)} (${k.cause}) no longer occurs: remove it from KNOWN_DIVERGENT`,
            );
        }
        t.diagnostic(`${compared} inputs compared`);
        assert.deepEqual(
          differing,
          [],
          `${differing.length} of ${compared} inputs differ from Istio under the imported config`,
        );
      });
    }
  },
);
