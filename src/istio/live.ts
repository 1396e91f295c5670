// `serve --istio-config NS[/REV]`: the injector's config taken from Istio's live ConfigMaps
// (source.ts names them), and followed.
//
// - load(): reads both; a ConfigMap missing, the API server unreachable or refusing, or a
//   config that cannot be served (source.ts) rejects, and `serve` does not start: it never
//   serves with a half config. Every finding is logged at warn, by path, with what to do.
// - follow(onConfig), once serving: each ConfigMap is watched (by name: RBAC resourceNames;
//   the watch's first event is the ConfigMap as it is, so a change since load() is not
//   missed). A change is imported; if it gives a config, that config is handed to onConfig
//   (the listeners, or the primary, which pushes it to every worker), one line says what
//   changed (config paths, old → new) and each new finding is logged;
//   `sidecar_injector_config_reload_total{result="applied"}` counts it.
//   A change that cannot be served (bad YAML, an unsupported finding without
//   --allow-unsupported, a ConfigMap deleted) is logged as an error and counted as
//   `result="failed"`; the last good config stays in effect. A change that gives the same
//   config (a comment, a key we do not read) is applied as nothing, and said so.
// - A watch that ends is started again after a delay that doubles from RESTART_BACKOFF.initialMs
//   to maxMs, back to initialMs once a restarted watch delivers the ConfigMap (which every
//   watch does first, so nothing changed meanwhile is missed). The delay is scheduled through
//   `schedule` (tests step it by hand).
import type { Counter } from "prom-client";
import type { Config } from "../config/types.js";
import type { ConfigMapObject, KubeApi } from "../kube/api.js";
import type { Logger } from "../telemetry/logger.js";
import type { Finding } from "./import.js";
import {
  configChanges,
  configFromIstio,
  configMapsOf,
  describeSource,
  findingKey,
  IstioConfigError,
  type IstioConfigSource,
  type IstioSelection,
} from "./source.js";

export const RESTART_BACKOFF = { initialMs: 1_000, maxMs: 30_000 } as const;

/** Runs `fn` after `ms`; the returned function cancels it. */
export type Schedule = (fn: () => void, ms: number) => () => void;

const realSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

export interface IstioConfigFollowerDeps {
  readonly kube: KubeApi;
  readonly logger: Logger;
  /** `sidecar_injector_config_reload_total`, by result. */
  readonly reloads?: Counter<"result">;
  readonly allowUnsupported: boolean;
  /** Revision tags and `auto`, which Istio's ConfigMaps do not say (source.ts IstioSelection). */
  readonly selection?: IstioSelection;
  readonly schedule?: Schedule;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

type Role = "injector" | "mesh";

function logFinding(logger: Logger, source: string, f: Finding): void {
  logger.warn(
    { source, severity: f.severity, path: f.path, problem: f.problem, instead: f.instead },
    `istio config finding: ${f.path}`,
  );
}

export class IstioConfigFollower {
  readonly description: string;
  private config: Config | undefined;
  private findings = new Set<string>();
  private readonly held: Record<Role, ConfigMapObject | undefined> = { injector: undefined, mesh: undefined };
  /** The data last imported (applied or refused): the same again is not imported twice. */
  private lastSeen: string | undefined;
  private running = false;
  private readonly stops = new Set<() => void>();
  private readonly schedule: Schedule;
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  private onConfig: (config: Config) => void = () => undefined;

  constructor(
    readonly source: IstioConfigSource,
    private readonly deps: IstioConfigFollowerDeps,
  ) {
    this.description = describeSource(source);
    this.schedule = deps.schedule ?? realSchedule;
    this.backoff = deps.backoff ?? RESTART_BACKOFF;
  }

  /** The config in effect (the last good one); undefined before load() resolves. */
  current(): Config | undefined {
    return this.config;
  }

  /**
   * Reads both ConfigMaps and imports them; resolves with the config. Rejects with
   * IstioConfigError (missing, refused) or KubeError (the API server).
   */
  async load(): Promise<Config> {
    const { kube, logger } = this.deps;
    const { namespace } = this.source;
    const [injector, mesh] = await Promise.all([
      kube.readConfigMap(namespace, this.source.injector),
      kube.readConfigMap(namespace, this.source.mesh),
    ]);
    const missing = [
      ...(injector === undefined ? [this.source.injector] : []),
      ...(mesh === undefined ? [this.source.mesh] : []),
    ];
    if (injector === undefined || mesh === undefined) {
      throw new IstioConfigError(
        `--istio-config ${this.source.namespace}${this.source.revision === "" ? "" : `/${this.source.revision}`}: no ConfigMap ${missing.join(" or ")} in namespace ${namespace} (Istio's chart installs istio-sidecar-injector[-REV] and istio[-REV] there)`,
      );
    }
    this.held.injector = injector;
    this.held.mesh = mesh;
    this.lastSeen = this.key();
    let loaded;
    try {
      loaded = configFromIstio(
        configMapsOf(this.source, injector.data, mesh.data),
        this.deps.allowUnsupported,
        this.deps.selection,
      );
    } catch (e) {
      if (e instanceof IstioConfigError) for (const f of e.findings) logFinding(logger, this.description, f);
      throw e;
    }
    for (const f of loaded.findings) logFinding(logger, this.description, f);
    this.findings = new Set(loaded.findings.map(findingKey));
    this.config = loaded.config;
    logger.info(
      {
        source: this.description,
        configMaps: [injector, mesh].map((c) => `${namespace}/${c.name}@${c.resourceVersion ?? "?"}`),
        findings: loaded.findings.length,
        revision: loaded.config.revision,
      },
      "config loaded from Istio's ConfigMaps",
    );
    return loaded.config;
  }

  /** Watches both ConfigMaps until stop(); `onConfig` gets each new config. After load(). */
  follow(onConfig: (config: Config) => void): void {
    if (this.config === undefined) throw new Error("follow() before load()");
    if (this.running) return;
    this.onConfig = onConfig;
    this.running = true;
    this.watch("injector");
    this.watch("mesh");
  }

  stop(): void {
    this.running = false;
    for (const s of this.stops) s();
    this.stops.clear();
  }

  /** The data import.ts reads, of both: what decides whether a change is one. */
  private key(): string {
    const { injector, mesh } = this.held;
    return JSON.stringify([
      injector?.data.values ?? null,
      injector?.data.config ?? null,
      mesh?.data.mesh ?? null,
      injector === undefined,
      mesh === undefined,
    ]);
  }

  private changed(role: Role, obj: ConfigMapObject | undefined): void {
    if (!this.running) return;
    this.held[role] = obj;
    const key = this.key();
    if (key === this.lastSeen) return;
    this.lastSeen = key;
    const { logger, reloads } = this.deps;
    const name = role === "injector" ? this.source.injector : this.source.mesh;
    const where = `${this.source.namespace}/${name}`;
    const { injector, mesh } = this.held;
    if (injector === undefined || mesh === undefined) {
      reloads?.inc({ result: "failed" });
      logger.error(
        { source: this.description, configMap: where, code: "ERR_ISTIO_CONFIG" },
        `ConfigMap ${where} was deleted: the last good config stays in effect until it is back`,
      );
      return;
    }
    let loaded;
    try {
      loaded = configFromIstio(
        configMapsOf(this.source, injector.data, mesh.data),
        this.deps.allowUnsupported,
        this.deps.selection,
      );
    } catch (e) {
      if (!(e instanceof IstioConfigError)) throw e;
      reloads?.inc({ result: "failed" });
      for (const f of e.findings) if (f.severity === "unsupported") logFinding(logger, this.description, f);
      logger.error(
        { source: this.description, configMap: where, code: e.code, resourceVersion: obj?.resourceVersion },
        `change of ConfigMap ${where} not applied, the last good config stays in effect: ${e.message}`,
      );
      return;
    }
    const before = this.config;
    const changes = before === undefined ? [] : configChanges(before, loaded.config);
    const fresh = loaded.findings.filter((f) => !this.findings.has(findingKey(f)));
    this.findings = new Set(loaded.findings.map(findingKey));
    for (const f of fresh) logFinding(logger, this.description, f);
    reloads?.inc({ result: "applied" });
    if (changes.length === 0) {
      logger.info(
        {
          source: this.description,
          configMap: where,
          resourceVersion: obj?.resourceVersion,
          newFindings: fresh.length,
        },
        `ConfigMap ${where} changed; the config it gives is the same`,
      );
      return;
    }
    this.config = loaded.config;
    logger.info(
      {
        source: this.description,
        configMap: where,
        resourceVersion: obj?.resourceVersion,
        changes,
        newFindings: fresh.length,
      },
      `config changed by ConfigMap ${where}: ${changes.join("; ")}`,
    );
    this.onConfig(loaded.config);
  }

  /** Watches one ConfigMap until stop(), starting the watch again whenever it ends. */
  private watch(role: Role, delayMs = this.backoff.initialMs): void {
    if (!this.running) return;
    const { kube, logger } = this.deps;
    const name = role === "injector" ? this.source.injector : this.source.mesh;
    let stop: (() => void) | undefined;
    let ended = false;
    let delivered = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      if (stop !== undefined) this.stops.delete(stop);
      if (!this.running) return;
      const wait = delivered ? this.backoff.initialMs : delayMs;
      const next = Math.min(this.backoff.maxMs, wait * 2);
      const fields = {
        source: this.description,
        configMap: `${this.source.namespace}/${name}`,
        retryInMs: wait,
        ...(err === undefined || err === null ? {} : { err: err instanceof Error ? err.message : String(err) }),
      };
      if (err === undefined || err === null) logger.debug(fields, "ConfigMap watch ended; starting it again");
      else logger.warn(fields, "ConfigMap watch failed; starting it again");
      const cancel = this.schedule(() => {
        this.stops.delete(cancel);
        this.watch(role, next);
      }, wait);
      this.stops.add(cancel);
    };
    kube
      .watchConfigMap(
        this.source.namespace,
        name,
        (obj) => {
          if (ended) return;
          delivered = true;
          try {
            this.changed(role, obj);
          } catch (err) {
            logger.error({ err, source: this.description }, "ConfigMap change not handled");
          }
        },
        end,
      )
      .then(
        (s) => {
          stop = s;
          if (ended || !this.running) s();
          else this.stops.add(s);
        },
        (err: unknown) => end(err ?? new Error("watch failed")),
      );
  }
}
