// An injector that follows Istio's ConfigMaps (`serve --istio-config NS[/REV]`, the chart's
// istioConfig value), as `check` sees it: the injector's Deployments are found by the chart's
// label (app.kubernetes.io/part-of=sidecar-injector), the argument read from their containers'
// command lines, and the two ConfigMaps it names read with the caller's credentials and
// imported as the injector imports them (src/istio/). Findings, one per setting, by path, with
// what to do instead:
// - `unsupported`: an error when the injector runs without --allow-unsupported (it refuses to
//   start, or keeps its last config on a change), else a warning (it serves what it can);
// - `ignored`: info;
// - an argument that is not NS[/REV], or a ConfigMap that is not there: an error (the injector
//   does not start); a ConfigMap the caller may not read: info, nothing checked.
// The imported config is then that injector's current config (its chart ConfigMap's
// config.yaml is not what it serves).
import type { DeploymentObject, InspectApi } from "../kube/api.js";
import { KubeError } from "../kube/api.js";
import { quoteName } from "../injection/quote.js";
import { importIstioConfig } from "../istio/import.js";
import {
  configFromIstio,
  configMapsOf,
  describeSource,
  IstioConfigError,
  parseIstioConfigSource,
} from "../istio/source.js";
import type { Finding, InjectorConfig } from "./check.js";

/** An injector Deployment that runs with --istio-config, and what is wrong with the config it follows. */
export interface CheckedInjector {
  readonly namespace: string;
  readonly name: string;
  /** The argument, as given: `NS` or `NS/REV`. */
  readonly istioConfig: string;
  readonly allowUnsupported: boolean;
  readonly findings: readonly Finding[];
}

/** The --istio-config argument of a Deployment's `serve` (either spelling), if it has one. */
export function istioConfigArg(d: DeploymentObject): { arg: string; allowUnsupported: boolean } | undefined {
  for (const c of d.containers) {
    const i = c.args.findIndex((a) => a === "--istio-config" || a.startsWith("--istio-config="));
    if (i < 0) continue;
    const at = c.args[i] ?? "";
    const arg = at.includes("=") ? at.slice(at.indexOf("=") + 1) : (c.args[i + 1] ?? "");
    return { arg, allowUnsupported: c.args.includes("--allow-unsupported") };
  }
  return undefined;
}

/** The findings of the Istio config one injector Deployment follows, and the config it gives. */
export async function checkIstioConfig(
  api: Pick<InspectApi, "readConfigMap">,
  d: DeploymentObject,
  given: { arg: string; allowUnsupported: boolean },
): Promise<{ checked: CheckedInjector; config?: InjectorConfig }> {
  const who = `deployment ${quoteName(d.namespace)}/${quoteName(d.name)}`;
  const findings: Finding[] = [];
  const done = (config?: InjectorConfig): { checked: CheckedInjector; config?: InjectorConfig } => ({
    checked: {
      namespace: d.namespace,
      name: d.name,
      istioConfig: given.arg,
      allowUnsupported: given.allowUnsupported,
      findings,
    },
    ...(config ? { config } : {}),
  });
  let source;
  try {
    source = parseIstioConfigSource(given.arg);
  } catch (e) {
    if (!(e instanceof IstioConfigError)) throw e;
    findings.push({ severity: "error", message: `${who}: ${e.message}; the injector does not start` });
    return done();
  }
  let injector, mesh;
  try {
    [injector, mesh] = await Promise.all([
      api.readConfigMap(source.namespace, source.injector),
      api.readConfigMap(source.namespace, source.mesh),
    ]);
  } catch (e) {
    if (!(e instanceof KubeError)) throw e;
    findings.push({
      severity: "info",
      message: `${who} follows Istio's ConfigMaps in namespace ${quoteName(source.namespace)}, which cannot be read here (${e.message}): what it cannot honour is not checked`,
    });
    return done();
  }
  if (injector === undefined || mesh === undefined) {
    const missing = [injector === undefined ? source.injector : "", mesh === undefined ? source.mesh : ""].filter(
      Boolean,
    );
    findings.push({
      severity: "error",
      message: `${who} runs with --istio-config ${quoteName(given.arg)}, but namespace ${quoteName(source.namespace)} has no ConfigMap ${missing.join(" or ")}: the injector does not start (install Istio's chart for that revision, or fix istioConfig)`,
    });
    return done();
  }
  const maps = configMapsOf(source, injector, mesh);
  for (const f of importIstioConfig(maps).findings) {
    const severity = f.severity === "ignored" ? "info" : given.allowUnsupported ? "warning" : "error";
    const effect =
      f.severity === "ignored"
        ? "ignored: it does not change an injected Pod"
        : given.allowUnsupported
          ? "not honoured (--allow-unsupported: the injector serves the rest)"
          : "cannot be honoured: the injector refuses this config (it does not start, or keeps its last one)";
    findings.push({ severity, message: `${f.path}: ${effect}: ${f.problem}; instead: ${f.instead}` });
  }
  try {
    const loaded = configFromIstio(maps, true);
    return done({ config: loaded.config, source: describeSource(source) });
  } catch (e) {
    if (!(e instanceof IstioConfigError)) throw e;
    findings.push({ severity: "error", message: `${who}: ${e.message}` });
    return done();
  }
}
