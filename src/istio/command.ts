// `sidecar-injector config import -f FILE...`: Istio's injection ConfigMaps in, our config file
// out (stdout or -o FILE), findings on stderr. Exit status: 0 imported; 1 a setting cannot be
// honoured (nothing is written, unless --allow-unsupported) or a file cannot be read; 2 bad
// arguments, input without the ConfigMaps, or an imported config our injector would refuse.
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { buildConfig } from "../config/load.js";
import { quote } from "../injection/quote.js";
import { MANIFEST_LIMITS, parseYamlDocuments, YamlLimitError, YamlSyntaxError } from "../injection/yaml-limits.js";
import { ConfigMapChoiceError, pickIstioConfigMaps, revisionsIn } from "./configmaps.js";
import { importIstioConfig, type Finding, type IstioConfigMaps } from "./import.js";
import { ISTIO_COMMIT } from "./pinned.js";
import { CONFIG_IMPORT_USAGE } from "./usage.js";
import { configMapsFromValues, isIstioOperator, isIstioValues, mergeValues, operatorValues } from "./values-file.js";
import { fileProblem } from "../file-problem.js";
import { parseArgsProblem } from "../args-problem.js";

/** Where the command writes; the CLI passes the process's streams, tests their own. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readInput: (file: string) => Promise<string>;
}

/** A finding as one stderr line (two with what to do). */
export function formatFinding(f: Finding): string {
  return `${f.severity}: ${f.path}: ${f.problem}\n  instead: ${f.instead}\n`;
}

export async function runConfigImport(argv: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        filename: { type: "string", short: "f", multiple: true },
        revision: { type: "string" },
        output: { type: "string", short: "o" },
        "allow-unsupported": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr(`error: ${parseArgsProblem("config import", e)}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(CONFIG_IMPORT_USAGE);
    return 0;
  }
  const files = values.filename ?? [];
  if (files.length === 0) {
    io.stderr("error: config import: -f FILE (or -f - for standard input) is required\n");
    return 2;
  }
  const docs: unknown[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await io.readInput(file);
    } catch (e) {
      io.stderr(`error: -f ${quote(file)}: ${fileProblem(e)}\n`);
      return 2;
    }
    try {
      docs.push(...parseYamlDocuments(text, MANIFEST_LIMITS));
    } catch (e) {
      if (e instanceof YamlSyntaxError)
        io.stderr(`error: ${quote(file)}: document ${e.document} is not valid YAML: ${e.message}\n`);
      else if (e instanceof YamlLimitError) io.stderr(`error: ${quote(file)}: ${e.message}\n`);
      else throw e;
      return 2;
    }
  }
  let maps: IstioConfigMaps;
  let from: string | undefined;
  const operators = docs.filter(isIstioOperator);
  const valueFiles = docs.filter(isIstioValues);
  if (revisionsIn(docs).length === 0 && (operators.length > 0 || valueFiles.length > 0)) {
    // No ConfigMaps: what Istio's chart would render from the values (several values files
    // merge in order, as helm -f a -f b does; an IstioOperator is its spec's values).
    if (operators.length > 0 && valueFiles.length > 0) {
      io.stderr("error: config import: give Helm values files or an IstioOperator, not both\n");
      return 2;
    }
    if (operators.length > 1) {
      io.stderr(`error: config import: ${operators.length} IstioOperators in the input: give one\n`);
      return 2;
    }
    const merged =
      operators.length === 1 && operators[0] !== undefined
        ? operatorValues(operators[0])
        : valueFiles.reduce<Record<string, unknown>>((a, v) => mergeValues(a, v), {});
    maps = configMapsFromValues(merged, operators.length === 1 ? "istio-operator" : "helm-values");
    from = `${operators.length === 1 ? "an IstioOperator" : "Helm values"}, as Istio's chart at ${ISTIO_COMMIT.slice(0, 7)} renders them`;
  } else {
    try {
      maps = pickIstioConfigMaps(docs, values.revision);
    } catch (e) {
      if (!(e instanceof ConfigMapChoiceError)) throw e;
      io.stderr(`error: config import: ${e.message}\n`);
      return 2;
    }
  }
  const result = importIstioConfig(maps);
  for (const f of result.findings) io.stderr(formatFinding(f));
  const unsupported = result.findings.filter((f) => f.severity === "unsupported").length;
  // What our injector would refuse to start with is no config to write.
  try {
    buildConfig(result.config, "(imported)");
  } catch (e) {
    io.stderr(
      `error: config import: the imported settings are not a valid config of this injector: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return 2;
  }
  if (unsupported > 0 && values["allow-unsupported"] !== true) {
    io.stderr(
      `error: config import: ${unsupported} setting${unsupported === 1 ? "" : "s"} cannot be honoured (listed above); nothing written. --allow-unsupported writes what can be honoured\n`,
    );
    return 1;
  }
  const sources = [maps.injector?.name, maps.mesh?.name].filter((n): n is string => n !== undefined);
  const header = [
    `# sidecar-injector config imported from ${from ?? `Istio's ConfigMaps ${sources.join(" and ")}`}`,
    `# (compared with Istio ${ISTIO_COMMIT.slice(0, 7)}). Keys left out are this injector's defaults, which are Istio's.`,
    ...(unsupported > 0
      ? [
          `# ${unsupported} setting${unsupported === 1 ? "" : "s"} could not be honoured: see the findings of config import.`,
        ]
      : []),
  ];
  const body = Object.keys(result.config).length === 0 ? "{}\n" : stringify(result.config, { lineWidth: 0 });
  const text = `${header.join("\n")}\n${body}`;
  if (values.output !== undefined) {
    try {
      await writeFile(values.output, text);
    } catch (e) {
      io.stderr(`error: -o ${quote(values.output)}: ${fileProblem(e)}\n`);
      return 1;
    }
  } else {
    io.stdout(text);
  }
  return 0;
}

/** The process's own streams and files. */
export const PROCESS_IO: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readInput: async (file) => {
    if (file !== "-") return readFile(file, "utf8");
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  },
};
