import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Config } from "../../../src/config/types.js";
import { KubeError } from "../../../src/kube/api.js";
import { IstioConfigFollower, type Schedule } from "../../../src/istio/live.js";
import { PINNED_VALUES } from "../../../src/istio/pinned.js";
import {
  configChanges,
  IstioConfigError,
  MAX_LISTED_CHANGES,
  parseIstioConfigSource,
  type IstioSelection,
} from "../../../src/istio/source.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { createMetrics } from "../../../src/telemetry/metrics.js";
import { FakeKube } from "../certs/fake-kube.js";

const NS = "istio-system";
const CONFIG_TEXT = "defaultTemplates: [sidecar]\npolicy: enabled\nalwaysInjectSelector: []\nneverInjectSelector: []\n";
const MESH = "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\ntrustDomain: cluster.local\n";

function values(hub = "reg.example/mesh", extra: Record<string, unknown> = {}): string {
  const v = structuredClone(PINNED_VALUES) as { global: Record<string, unknown> };
  v.global.hub = hub;
  v.global.tag = "1.0";
  const proxy = v.global.proxy as Record<string, unknown>;
  Object.assign(proxy, extra);
  return JSON.stringify(v);
}

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A follower over a fake API server, its log lines, its metric and its scheduled restarts. */
function setup(o: { allowUnsupported?: boolean; revision?: string; selection?: IstioSelection } = {}) {
  const kube = new FakeKube();
  const suffix = o.revision === undefined ? "" : `-${o.revision}`;
  kube.putConfigMap(NS, `istio-sidecar-injector${suffix}`, { values: values(), config: CONFIG_TEXT });
  kube.putConfigMap(NS, `istio${suffix}`, { mesh: MESH });
  const lines: Line[] = [];
  const logger = createLogger({
    level: "debug",
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) },
  });
  const metrics = createMetrics();
  const applied: Config[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const schedule: Schedule = (fn, ms) => {
    const t = { fn, ms, cancelled: false };
    timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  const follower = new IstioConfigFollower(
    parseIstioConfigSource(o.revision === undefined ? NS : `${NS}/${o.revision}`),
    {
      kube,
      logger,
      reloads: metrics.configReloads,
      allowUnsupported: o.allowUnsupported ?? false,
      ...(o.selection === undefined ? {} : { selection: o.selection }),
      schedule,
    },
  );
  const start = async (): Promise<Config> => {
    const config = await follower.load();
    follower.follow((c) => applied.push(c));
    return config;
  };
  const reloads = async (result: string): Promise<number> =>
    (await metrics.configReloads.get()).values.find((v) => v.labels.result === result)?.value ?? -1;
  return { kube, lines, follower, start, applied, timers, reloads, suffix };
}

/** Lets the fake's awaited calls (one setImmediate each) run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("--istio-config NS[/REV]", () => {
  test("names the ConfigMaps of the default revision and of a revision; refuses what is no name", () => {
    assert.deepEqual(parseIstioConfigSource("istio-system"), {
      namespace: "istio-system",
      revision: "",
      injector: "istio-sidecar-injector",
      mesh: "istio",
    });
    assert.deepEqual(parseIstioConfigSource("istio-system/canary"), {
      namespace: "istio-system",
      revision: "canary",
      injector: "istio-sidecar-injector-canary",
      mesh: "istio-canary",
    });
    assert.equal(parseIstioConfigSource("istio-system/default").injector, "istio-sidecar-injector");
    for (const bad of ["", "Istio", "a/b/c", "ns/", "/rev", "ns/Rev_1", `ns/${"x".repeat(200)}`]) {
      assert.throws(
        () => parseIstioConfigSource(bad),
        (e: unknown) => e instanceof IstioConfigError && /NAMESPACE or NAMESPACE\/REVISION/.test(e.message),
        bad,
      );
    }
  });
});

describe("IstioConfigFollower", () => {
  test("revision tags and Istio's auto webhook, which the ConfigMaps do not say, are in every config it makes", async () => {
    const plain = await setup().start();
    assert.deepEqual([plain.revisionTags, plain.enableNamespacesByDefault], [[], false]);
    const { kube, start, applied } = setup({ selection: { revisionTags: ["prod"], enableNamespacesByDefault: true } });
    const config = await start();
    assert.deepEqual([config.revisionTags, config.enableNamespacesByDefault], [["prod"], true]);
    await settle();
    kube.putConfigMap(NS, "istio-sidecar-injector", { values: values("other.example/mesh"), config: CONFIG_TEXT });
    await settle();
    assert.equal(applied.length, 1);
    assert.deepEqual([applied[0]?.revisionTags, applied[0]?.enableNamespacesByDefault], [["prod"], true]);
    // A tag the config refuses (no label value) stops the start, naming it.
    await assert.rejects(setup({ selection: { revisionTags: ["not a label!"] } }).start(), /revisionTags/);
  });

  test("start: the config of Istio's ConfigMaps, then a change to either takes effect, said by path", async () => {
    const { kube, lines, follower, start, applied, reloads } = setup();
    const config = await start();
    assert.equal(config.proxy.image, "reg.example/mesh/proxyv2:1.0");
    assert.ok(lines.some((l) => l.msg === "config loaded from Istio's ConfigMaps"));
    await settle();
    // The watches' first event is the ConfigMap as read: nothing changes.
    assert.equal(applied.length, 0);
    assert.equal(kube.configMapWatches.length, 2);

    kube.putConfigMap(NS, "istio-sidecar-injector", { values: values("other.example/mesh"), config: CONFIG_TEXT });
    assert.equal(applied.length, 1);
    assert.equal(applied[0]?.proxy.image, "other.example/mesh/proxyv2:1.0");
    assert.equal(follower.current()?.proxy.image, "other.example/mesh/proxyv2:1.0");
    const line = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("config changed"));
    assert.deepEqual(line?.changes, ['proxy.image: "reg.example/mesh/proxyv2:1.0" → "other.example/mesh/proxyv2:1.0"']);
    assert.equal(line?.configMap, `${NS}/istio-sidecar-injector`);

    kube.putConfigMap(NS, "istio-sidecar-injector", {
      values: values("other.example/mesh"),
      config: `${CONFIG_TEXT.replace("neverInjectSelector: []", "neverInjectSelector: [{matchLabels: {skip: x}}]")}`,
    });
    assert.equal(applied.length, 2);
    assert.deepEqual(applied[1]?.neverInjectSelector, [{ matchLabels: { skip: "x" } }]);
    kube.putConfigMap(NS, "istio", { mesh: MESH.replace("trustDomain: cluster.local", "trustDomain: corp.example") });
    assert.equal(applied.length, 3);
    assert.equal(applied[2]?.trustDomain, "corp.example");
    assert.equal(await reloads("applied"), 3);
    assert.equal(await reloads("failed"), 0);
    follower.stop();
    assert.equal(kube.configMapWatches.length, 0);
  });

  test("a change that cannot be imported keeps the last good config, logged as an error and counted", async () => {
    const { kube, lines, follower, start, applied, reloads } = setup();
    await start();
    await settle();
    kube.putConfigMap(NS, "istio-sidecar-injector", { values: "{not json", config: CONFIG_TEXT });
    // An unsupported setting, without --allow-unsupported.
    kube.putConfigMap(NS, "istio-sidecar-injector", {
      values: values("reg.example/mesh", { lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } } }),
      config: CONFIG_TEXT,
    });
    kube.deleteConfigMap(NS, "istio");
    assert.equal(applied.length, 0);
    assert.equal(follower.current()?.proxy.image, "reg.example/mesh/proxyv2:1.0");
    assert.equal(await reloads("failed"), 3);
    assert.equal(await reloads("applied"), 0);
    const errors = lines.filter((l) => l.level === 50).map((l) => l.msg);
    assert.equal(errors.length, 3, errors.join("\n"));
    assert.match(errors[0] ?? "", /not applied, the last good config stays in effect/);
    assert.match(errors[1] ?? "", /1 setting of Istio's ConfigMaps cannot be honoured/);
    assert.match(errors[2] ?? "", /istio-system\/istio was deleted/);
    assert.ok(lines.some((l) => l.path === "istio-sidecar-injector.values.global.proxy.lifecycle" && l.level === 40));

    // Back, and good: applied again (the same config as before the bad ones: no change to push).
    kube.putConfigMap(NS, "istio", { mesh: MESH });
    kube.putConfigMap(NS, "istio-sidecar-injector", { values: values("fixed.example"), config: CONFIG_TEXT });
    assert.equal(applied.length, 1);
    assert.equal(applied[0]?.proxy.image, "fixed.example/proxyv2:1.0");
    follower.stop();
  });

  test("start refuses an unsupported setting unless allowed, and a missing ConfigMap, naming it", async () => {
    const refused = setup();
    refused.kube.putConfigMap(NS, "istio-sidecar-injector", {
      values: values("reg.example/mesh", { lifecycle: { preStop: {} } }),
      config: CONFIG_TEXT,
    });
    await assert.rejects(refused.start(), (e: unknown) => {
      assert.ok(e instanceof IstioConfigError);
      assert.equal(e.code, "ERR_ISTIO_CONFIG");
      assert.deepEqual(
        e.findings.map((f) => f.path),
        ["istio-sidecar-injector.values.global.proxy.lifecycle"],
      );
      return true;
    });
    assert.ok(refused.lines.some((l) => l.path === "istio-sidecar-injector.values.global.proxy.lifecycle"));
    assert.equal(refused.kube.configMapWatchesStarted, 0, "nothing is followed after a refused start");

    const allowed = setup({ allowUnsupported: true });
    allowed.kube.putConfigMap(NS, "istio-sidecar-injector", {
      values: values("reg.example/mesh", { lifecycle: { preStop: {} } }),
      config: CONFIG_TEXT,
    });
    assert.equal((await allowed.start()).proxy.image, "reg.example/mesh/proxyv2:1.0");
    assert.ok(allowed.lines.some((l) => l.level === 40 && l.severity === "unsupported"));
    allowed.follower.stop();

    const missing = setup({ revision: "canary" });
    missing.kube.deleteConfigMap(NS, "istio-canary");
    await assert.rejects(missing.start(), /no ConfigMap istio-canary in namespace istio-system/);

    const down = setup();
    down.kube.down = true;
    await assert.rejects(down.start(), (e: unknown) => e instanceof KubeError && /ECONNREFUSED/.test(e.message));
  });

  test("a dropped watch is started again with a bounded, doubling delay; a change meanwhile is not missed", async () => {
    const { kube, follower, start, applied, timers } = setup();
    await start();
    await settle();
    assert.equal(kube.configMapWatchesStarted, 2);
    kube.down = true;
    kube.dropConfigMapWatches(new Error("connection reset"));
    // Each watch: one restart scheduled after the initial delay (the watches had delivered).
    assert.deepEqual(
      timers.map((t) => t.ms),
      [1000, 1000],
    );
    // The API server stays away: each failed restart doubles the delay, up to the bound.
    for (let round = 0; round < 8; round++) {
      const due = timers.filter((t) => !t.cancelled).splice(-2);
      for (const t of due) {
        t.cancelled = true;
        t.fn();
      }
      await settle();
      await settle();
    }
    const delays = timers.map((t) => t.ms);
    assert.deepEqual(delays.slice(2, 12), [2000, 2000, 4000, 4000, 8000, 8000, 16000, 16000, 30000, 30000]);
    assert.equal(Math.max(...delays), 30000);

    // A change while no watch runs, then the API server is back: the restarted watch delivers it.
    kube.down = false;
    kube.putConfigMap(NS, "istio-sidecar-injector", { values: values("later.example"), config: CONFIG_TEXT });
    assert.equal(applied.length, 0);
    for (const t of timers.filter((x) => !x.cancelled)) {
      t.cancelled = true;
      t.fn();
    }
    await settle();
    await settle();
    assert.equal(applied.length, 1);
    assert.equal(applied[0]?.proxy.image, "later.example/proxyv2:1.0");
    assert.equal(kube.configMapWatches.length, 2);
    follower.stop();
    assert.equal(kube.configMapWatches.length, 0);
    assert.ok(timers.every((t) => t.cancelled));
  });
});

describe("configChanges", () => {
  test("lists changed paths old → new, values quoted and bounded, at most MAX_LISTED_CHANGES", async () => {
    const { buildConfig } = await import("../../../src/config/load.js");
    const a = buildConfig({}, "a");
    assert.deepEqual(configChanges(a, buildConfig({}, "b")), []);
    const long = `reg.example/${"x".repeat(500)}`;
    const changes = configChanges(a, buildConfig({ proxy: { image: long, uid: 1000 } }, "b"));
    assert.equal(changes.length, 2);
    assert.match(changes[0] ?? "", /^proxy\.image: ".*" → "reg\.example\/x+…" \(512 characters\)$/);
    assert.equal(changes[1], "proxy.uid: 1337 → 1000");
    const many: Record<string, string> = {};
    for (let i = 0; i < 50; i++) many[`K${i}`] = String(i);
    const capped = configChanges(a, buildConfig({ proxy: { proxyMetadata: many } }, "c"));
    assert.equal(capped.length, MAX_LISTED_CHANGES);
    assert.equal(capped.at(-1), `and ${50 - (MAX_LISTED_CHANGES - 1)} more`);
  });

  test("a change of the mesh's defaultConfig is named by its proxyConfig path", async () => {
    const { buildConfig } = await import("../../../src/config/load.js");
    const before = buildConfig({ proxyConfig: { concurrency: 2, proxyMetadata: { A: "1" } } }, "a");
    const after = buildConfig(
      { proxyConfig: { concurrency: 4, holdApplicationUntilProxyStarts: true, proxyMetadata: { A: "2" } } },
      "b",
    );
    assert.deepEqual(configChanges(before, after), [
      "proxyConfig.concurrency: 2 → 4",
      "proxyConfig.holdApplicationUntilProxyStarts: (none) → true",
      'proxyConfig.proxyMetadata.A: "1" → "2"',
    ]);
  });
});
