// Stale sidecars: a stored Pod injected by the engine with one config, checked against another
// (the injector's ConfigMap, or --config): the field that changed is named (image, args, env,
// place), what the API server adds on storing is not a change, nor what its admission plugins
// add to the injected containers after the injector answered (the ServiceAccount token mount,
// LimitRanger's defaults, AlwaysPullImages), and a config that cannot be read is said instead of
// guessed. Also a Deployment's template carrying an old sidecar.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { check, type CheckReport } from "../../../src/check/check.js";
import { compareSidecar, formatDrift } from "../../../src/check/stale.js";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { KubeError } from "../../../src/kube/api.js";
import type { Container, Pod } from "../../../src/kube/types.js";
import { FakeInspect, istiod, ours } from "./fake-inspect.js";

const OLD = "docker.io/istio/proxyv2:1.27.0";
const NEW = "docker.io/istio/proxyv2:1.28.0";
const defaults = buildConfig({});
const CONFIGMAP = "sidecar-injector-system/sidecar-injector";

function app(name: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "demo", labels: { app: name }, annotations: {} },
    spec: {
      containers: [
        {
          name: "app",
          image: "example.com/app:1",
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
        },
      ],
    },
  };
}

/** `pod` as the engine injects it with `config` (what a webhook with that config stored). */
function injected(pod: Pod, config = buildConfig({ proxy: { image: OLD } }), native = false): Pod {
  const r = inject(pod, { namespace: "demo", nativeSidecarsSupported: native }, config);
  assert.equal(r.decision.inject, true);
  return structuredClone(r.pod);
}

/** What the API server adds when it stores a Pod: defaults the engine never writes. */
function asStored(pod: Pod): Pod {
  const p = structuredClone(pod);
  const fill = (c: Container): void => {
    c.terminationMessagePath = "/dev/termination-log";
    c.terminationMessagePolicy = "File";
    c.imagePullPolicy ??= "IfNotPresent";
    for (const port of c.ports ?? []) port.protocol ??= "TCP";
    // A limit without a request is the request too (SetDefaults_Pod).
    const limits = c.resources?.limits;
    if (typeof limits === "object" && limits !== null && !Array.isArray(limits)) {
      const requests = c.resources?.requests;
      c.resources = {
        ...c.resources,
        requests: { ...limits, ...(typeof requests === "object" && requests !== null ? requests : {}) },
      };
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.fieldRef;
      if (typeof ref === "object" && ref !== null && !Array.isArray(ref))
        e.valueFrom = { fieldRef: { apiVersion: "v1", ...ref } };
    }
    for (const probe of [c.readinessProbe, c.startupProbe, c.livenessProbe]) {
      if (!probe) continue;
      probe.timeoutSeconds ??= 1;
      probe.periodSeconds ??= 10;
      probe.successThreshold ??= 1;
      probe.failureThreshold ??= 3;
      if (probe.httpGet) probe.httpGet.scheme ??= "HTTP";
    }
  };
  p.spec?.containers.forEach(fill);
  p.spec?.initContainers?.forEach(fill);
  return p;
}

/** The path the ServiceAccount admission plugin mounts the Pod's API token at (DefaultAPITokenMountPath). */
const TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The token volume the ServiceAccount admission plugin adds (its TokenVolumeSource). */
function tokenVolume(name: string): NonNullable<NonNullable<Pod["spec"]>["volumes"]>[number] {
  return {
    name,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
          },
        },
      ],
    },
  };
}

/**
 * What kube-apiserver's ServiceAccount admission plugin (on by default) does to a Pod, as it runs
 * again after a mutating webhook changed it: the default serviceAccountName, the ServiceAccount's
 * pull secrets, and its token volume mounted read-only into every init and regular container
 * that mounts nothing at the token path (plugin/pkg/admission/serviceaccount, mountServiceAccountToken).
 */
function serviceAccountAdmitted(pod: Pod, volume = "kube-api-access-5ss2g"): Pod {
  const p = structuredClone(pod);
  const spec = p.spec;
  assert.ok(spec);
  spec.serviceAccountName ??= "default";
  spec.imagePullSecrets ??= [{ name: "registry-credentials" }];
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if (c.volumeMounts?.some((m) => m.mountPath === TOKEN_PATH)) continue;
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: volume, readOnly: true, mountPath: TOKEN_PATH }];
  }
  if (!spec.volumes?.some((v) => v.name.startsWith("kube-api-access-")))
    spec.volumes = [...(spec.volumes ?? []), tokenVolume(volume)];
  return p;
}

type Quantities = Record<string, string>;

/**
 * What kube-apiserver's LimitRanger admission plugin (on by default) does to a Pod in a namespace
 * with a LimitRange of type Container: each container gets the default limit and request of each
 * resource it sets none of, and the Pod's kubernetes.io/limit-ranger annotation says which
 * (plugin/pkg/admission/limitranger, mergePodResourceRequirements).
 */
function limitRanged(pod: Pod, limitRange: { limits?: Quantities; requests?: Quantities }): Pod {
  // The LimitRange as stored: a default limit without a default request is the default request too.
  const defaults = { limits: limitRange.limits, requests: { ...limitRange.limits, ...limitRange.requests } };
  const p = structuredClone(pod);
  const said: string[] = [];
  const merge = (c: Container, prefix: string): void => {
    // Its own copy: the engine's containers may share one resources object (structuredClone keeps that).
    const resources = structuredClone(c.resources ?? {}) as { limits?: Quantities; requests?: Quantities };
    const set = { limits: [] as string[], requests: [] as string[] };
    for (const list of ["limits", "requests"] as const) {
      const have = { ...resources[list] };
      for (const [k, v] of Object.entries(defaults[list] ?? {})) {
        if (k in have) continue;
        have[k] = v;
        set[list].push(k);
      }
      resources[list] = have;
    }
    c.resources = resources;
    if (set.requests.length) said.push(`${set.requests.sort().join(", ")} request for ${prefix} ${c.name}`);
    if (set.limits.length) said.push(`${set.limits.sort().join(", ")} limit for ${prefix} ${c.name}`);
  };
  p.spec?.containers.forEach((c) => merge(c, "container"));
  p.spec?.initContainers?.forEach((c) => merge(c, "init container"));
  if (said.length)
    p.metadata = {
      ...p.metadata,
      annotations: {
        ...p.metadata?.annotations,
        "kubernetes.io/limit-ranger": `LimitRanger plugin set: ${said.join("; ")}`,
      },
    };
  return p;
}

function cluster(stored: Pod, configYaml?: string | Error): FakeInspect {
  const k = new FakeInspect();
  k.configs = [ours()];
  k.namespaces = [{ name: "demo", labels: { "istio-injection": "enabled" } }];
  const name = stored.metadata?.name ?? "";
  k.objects = [{ kind: "Pod", namespace: "demo", name, pod: stored, stored }];
  if (configYaml instanceof Error) k.configMaps.set(CONFIGMAP, configYaml);
  else if (configYaml !== undefined) k.configMaps.set(CONFIGMAP, { "config.yaml": configYaml });
  return k;
}

const messages = (r: CheckReport): string[] => r.objects[0]?.findings.map((f) => `${f.severity}: ${f.message}`) ?? [];

describe("stale sidecar", () => {
  test("the same config: compared, no drift, no warning, though the API server added its defaults", async () => {
    const stored = asStored(injected(app("web")));
    const r = await check(cluster(stored, `proxy:\n  image: ${OLD}\n`), {
      config: defaults,
      targets: [],
      namespace: "demo",
    });
    assert.deepEqual(r.objects[0]?.sidecar, { compared: true, config: `configmap ${CONFIGMAP}`, drift: [] });
    assert.deepEqual(messages(r), ["info: already injected (revision default)"]);
  });

  test("a new proxy image in the injector's ConfigMap: a warning naming the image, old and new, and the restart", async () => {
    const stored = asStored(injected(app("web")));
    const r = await check(cluster(stored, `proxy:\n  image: ${NEW}\n`), {
      config: defaults,
      targets: [],
      namespace: "demo",
    });
    const drift = r.objects[0]?.sidecar?.compared === true ? r.objects[0].sidecar.drift : [];
    // The proxy and istio-init both run the proxy image.
    assert.deepEqual(
      drift.map((d) => `${d.container} ${d.field}`),
      ["istio-proxy image", "istio-init image"],
    );
    assert.deepEqual(messages(r), [
      "info: already injected (revision default)",
      `warning: stale sidecar (against configmap ${CONFIGMAP}): istio-proxy image "${OLD}" → "1.28.0"; istio-init image "${OLD}" → "1.28.0"; restart the workload to get the current one`,
    ]);
    assert.equal(r.errors, 0, "stale is a warning");
  });

  test("a template change: the args and env that differ are named", () => {
    const stored = asStored(injected(app("web")));
    const changed = buildConfig({
      proxy: { image: OLD, logLevel: "debug" },
      interception: { excludeOutboundPorts: "9999" },
    });
    const result = compareSidecar(stored, "demo", changed);
    assert.equal(result.compared, true);
    const drift = result.compared ? result.drift : [];
    const fields = drift.map((d) => `${d.container} ${d.field}`);
    assert.ok(fields.includes("istio-proxy args"), fields.join(", "));
    assert.ok(fields.includes("istio-init args"), fields.join(", "));
    const proxyArgs = drift.find((d) => d.container === "istio-proxy" && d.field === "args");
    assert.match(String(proxyArgs?.now), /adds "--proxyLogLevel=debug"/);
    assert.match(String(proxyArgs?.now), /drops "--proxyLogLevel=warning"/);
    assert.match(
      formatDrift(drift),
      /istio-proxy args \d+ args → adds "--proxyLogLevel=debug", drops "--proxyLogLevel=warning"/,
    );
  });

  test("resources: the same quantity spelled otherwise is no change; another one is", () => {
    const stored = asStored(injected(app("web")));
    const proxy = stored.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.ok(proxy);
    proxy.resources = { requests: { cpu: "0.1", memory: "128Mi" }, limits: { cpu: "2000m", memory: "1Gi" } };
    const same = compareSidecar(stored, "demo", buildConfig({ proxy: { image: OLD } }));
    assert.deepEqual(same, { compared: true, drift: [] });
    const more = compareSidecar(
      stored,
      "demo",
      buildConfig({
        proxy: {
          image: OLD,
          resources: { limits: { cpu: "4", memory: "1Gi" }, requests: { cpu: "100m", memory: "128Mi" } },
        },
      }),
    );
    // istio-init runs with the proxy's resources too; its own stored ones were "2" as written.
    assert.deepEqual(more.compared ? more.drift : [], [
      { container: "istio-proxy", field: "resources.limits.cpu", stored: '"2"', now: '"4"' },
      { container: "istio-init", field: "resources.limits.cpu", stored: '"2"', now: '"4"' },
    ]);
  });

  test("native sidecars: the stored Pod's own choice stands for the nodes; a config that turns them off moves the proxy", () => {
    const stored = asStored(injected(app("web"), buildConfig({ proxy: { image: OLD } }), true));
    assert.ok(stored.spec?.initContainers?.some((c) => c.name === "istio-proxy"));
    assert.deepEqual(compareSidecar(stored, "demo", buildConfig({ proxy: { image: OLD } })), {
      compared: true,
      drift: [],
    });
    const off = compareSidecar(stored, "demo", buildConfig({ proxy: { image: OLD }, nativeSidecars: "false" }));
    const place = off.compared ? off.drift.find((d) => d.field === "place") : undefined;
    assert.deepEqual(place, {
      container: "istio-proxy",
      field: "place",
      stored: "initContainers (restartPolicy Always)",
      now: "containers",
    });
  });

  test("cni: true drops istio-init: its absence is the drift", () => {
    const stored = asStored(injected(app("web")));
    const r = compareSidecar(stored, "demo", buildConfig({ proxy: { image: OLD }, cni: true }));
    assert.ok(
      r.compared &&
        r.drift.some(
          (d) => d.container === "istio-init" && d.field === "presence" && d.stored === "present" && d.now === "absent",
        ),
    );
  });

  test("--config: every injector's config; the ConfigMap is not read", async () => {
    const stored = asStored(injected(app("web")));
    const k = cluster(stored);
    const r = await check(k, {
      config: buildConfig({ proxy: { image: NEW } }),
      configGiven: true,
      targets: [],
      namespace: "demo",
    });
    assert.equal(r.objects[0]?.sidecar?.compared, true);
    assert.match(messages(r).join("\n"), /warning: stale sidecar \(against --config\): istio-proxy image/);
    assert.ok(!k.calls.some((c) => c.startsWith("readConfigMap")));
  });

  test("a ConfigMap that cannot be read, or holds a bad config: not compared, and why", async () => {
    const stored = asStored(injected(app("web")));
    const forbidden = await check(cluster(stored, new KubeError(`read ConfigMap ${CONFIGMAP}: forbidden`, 403)), {
      config: defaults,
      targets: [],
      namespace: "demo",
    });
    assert.deepEqual(forbidden.objects[0]?.sidecar, {
      compared: false,
      reason: `the config of sidecar-injector is not known (read ConfigMap ${CONFIGMAP}: forbidden): give it with --config`,
    });
    const bad = await check(cluster(stored, "proxy:\n  image: 42\n"), {
      config: defaults,
      targets: [],
      namespace: "demo",
    });
    const reason = bad.objects[0]?.sidecar?.compared === false ? bad.objects[0].sidecar.reason : "";
    assert.match(reason, /configmap sidecar-injector-system\/sidecar-injector config\.yaml/);
    assert.match(reason, /proxy\.image/);
  });

  test("injected by an injector whose config is not ours to read (istiod): said, not guessed", async () => {
    const stored = asStored(injected(app("web")));
    const k = cluster(stored);
    k.configs = [istiod()];
    const r = await check(k, { config: defaults, targets: [], namespace: "demo" });
    assert.equal(r.objects[0]?.sidecar?.compared, false);
    assert.ok(!k.calls.some((c) => c.startsWith("readConfigMap")), "istiod's configuration is not this chart's");
    assert.match(
      messages(r)[0] ?? "",
      /its sidecar was not compared: the config of istio-sidecar-injector is not known: give it with --config/,
    );
  });

  test("a Deployment whose template carries a sidecar: named as its workload; an old one is stale, and inject it again", async () => {
    const config = buildConfig({ proxy: { image: OLD } });
    const workload = { name: "shop", namespace: "demo", kind: "Deployment", apiVersion: "apps/v1" };
    const current = asStored(structuredClone(inject(app(""), { namespace: "demo", workload }, config).pod));
    const fresh = cluster(app("unused"), `proxy:\n  image: ${OLD}\n`);
    fresh.objects = [{ kind: "Deployment", namespace: "demo", name: "shop", pod: current, stored: current }];
    const same = await check(fresh, {
      config: defaults,
      targets: [{ kind: "Deployment", name: "shop" }],
      namespace: "demo",
    });
    assert.deepEqual(
      same.objects[0]?.sidecar,
      { compared: true, config: `configmap ${CONFIGMAP}`, drift: [] },
      "the workload's name in the env is the Deployment's",
    );
    const template = asStored(injected(app("shop")));
    const k = cluster(app("unused"), `proxy:\n  image: ${NEW}\n`);
    k.objects = [{ kind: "Deployment", namespace: "demo", name: "shop", pod: template, stored: template }];
    const r = await check(k, { config: defaults, targets: [{ kind: "Deployment", name: "shop" }], namespace: "demo" });
    assert.match(
      messages(r).join("\n"),
      /warning: stale sidecar \(against configmap [^)]+\): istio-proxy image .*; inject the template again with the current config$/m,
    );
  });

  test("a stored Pod the engine refuses (a bad annotation): not compared, the refusal said", () => {
    const stored = asStored(injected(app("web")));
    stored.metadata = {
      ...stored.metadata,
      annotations: { ...stored.metadata?.annotations, "sidecar.istio.io/proxyCPU": "lots" },
    };
    const r = compareSidecar(stored, "demo", defaults);
    assert.equal(r.compared, false);
    assert.match(r.compared ? "" : r.reason, /^the engine refuses it: .*proxyCPU/);
  });
});

describe("what the API server's admission adds after the injector answered is not a stale sidecar", () => {
  const config = buildConfig({ proxy: { image: OLD } });

  test("ServiceAccount admission: the token volume mounted into istio-proxy and istio-init is not drift", async () => {
    for (const native of [false, true]) {
      const stored = asStored(serviceAccountAdmitted(injected(app("fresh"), config, native)));
      const proxy = [...(stored.spec?.initContainers ?? []), ...(stored.spec?.containers ?? [])].find(
        (c) => c.name === "istio-proxy",
      );
      assert.equal(proxy?.volumeMounts?.at(-1)?.mountPath, TOKEN_PATH, "the plugin mounted it into the proxy");
      assert.deepEqual(compareSidecar(stored, "demo", config), { compared: true, drift: [] }, `native ${native}`);
    }
    // As the bug was seen: `check pod/fresh` warned of a stale sidecar on a Pod injected a moment before.
    const stored = asStored(serviceAccountAdmitted(injected(app("fresh"), config)));
    const r = await check(cluster(stored, `proxy:\n  image: ${OLD}\n`), {
      config: defaults,
      targets: [],
      namespace: "demo",
    });
    assert.deepEqual(messages(r), ["info: already injected (revision default)"]);
  });

  test("the token mount is known by its path and its volume (a projected ServiceAccount token), not by a name", () => {
    // Under another name (a volume the Pod had, reused by the plugin): still the plugin's.
    const renamed = asStored(serviceAccountAdmitted(injected(app("web"), config), "kube-api-access-custom"));
    assert.deepEqual(compareSidecar(renamed, "demo", config), { compared: true, drift: [] });
    // The same name on a volume that is not a token: not the plugin's, so a change.
    const emptyDir = structuredClone(renamed);
    const volume = emptyDir.spec?.volumes?.find((v) => v.name === "kube-api-access-custom");
    assert.ok(volume);
    delete volume.projected;
    volume.emptyDir = {};
    const drift = compareSidecar(emptyDir, "demo", config);
    assert.deepEqual(drift.compared ? drift.drift.map((d) => `${d.container} ${d.field}`) : [], [
      "istio-proxy volumeMounts",
      "istio-init volumeMounts",
    ]);
    // The token volume mounted at another path: not what the plugin does, so a change.
    const elsewhere = structuredClone(renamed);
    const proxy = elsewhere.spec?.containers.find((c) => c.name === "istio-proxy");
    const mount = proxy?.volumeMounts?.find((m) => m.mountPath === TOKEN_PATH);
    assert.ok(mount);
    mount.mountPath = "/var/run/secrets/other";
    const moved = compareSidecar(elsewhere, "demo", config);
    assert.deepEqual(moved.compared ? moved.drift.map((d) => `${d.container} ${d.field}`) : [], [
      "istio-proxy volumeMounts",
    ]);
  });

  test("defaulting: a limit the injector gives without a request is stored as the request too, not drift", () => {
    const limitsOnly = buildConfig({ proxy: { image: OLD, resources: { limits: { cpu: "1", memory: "1024Mi" } } } });
    const stored = asStored(injected(app("web"), limitsOnly));
    const proxy = stored.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.deepEqual(proxy?.resources, { limits: { cpu: "1", memory: "1Gi" }, requests: { cpu: "1", memory: "1Gi" } });
    assert.deepEqual(compareSidecar(stored, "demo", limitsOnly), { compared: true, drift: [] });
    // A request of its own that is not the limit is still compared with the limit the injector gives now.
    assert.ok(proxy?.resources);
    proxy.resources.requests = { cpu: "500m", memory: "1Gi" };
    const r = compareSidecar(stored, "demo", limitsOnly);
    assert.deepEqual(r.compared ? r.drift : [], [
      { container: "istio-proxy", field: "resources.requests.cpu", stored: '"500m"', now: '"1"' },
    ]);
  });

  test("LimitRanger: a namespace's default resources, set where the injector sets none, are not drift", () => {
    const lr = {
      limits: { cpu: "500m", memory: "256Mi", "ephemeral-storage": "1Gi" },
      requests: { cpu: "50m", memory: "64Mi" },
    };
    for (const native of [false, true]) {
      // The default config gives requests and limits of cpu and memory: only ephemeral-storage is the namespace's.
      const stored = asStored(limitRanged(serviceAccountAdmitted(injected(app("web"), config, native)), lr));
      assert.match(
        stored.metadata?.annotations?.["kubernetes.io/limit-ranger"] ?? "",
        new RegExp(`ephemeral-storage limit for ${native ? "init container" : "container"} istio-proxy`),
      );
      assert.deepEqual(compareSidecar(stored, "demo", config), { compared: true, drift: [] }, `native ${native}`);
    }
    // A config that gives only a cpu request: the namespace gives the rest.
    const cpuOnly = buildConfig({ proxy: { image: OLD, resources: { requests: { cpu: "100m" } } } });
    const fresh = asStored(limitRanged(injected(app("web"), cpuOnly), lr));
    assert.deepEqual(compareSidecar(fresh, "demo", cpuOnly), { compared: true, drift: [] });
    // The config now gives a memory limit of its own: a restart gets it (and it as the request), not the namespace's.
    const withMemory = buildConfig({
      proxy: { image: OLD, resources: { requests: { cpu: "100m" }, limits: { memory: "512Mi" } } },
    });
    const r = compareSidecar(fresh, "demo", withMemory);
    assert.deepEqual(r.compared ? r.drift.filter((d) => d.container === "istio-proxy") : [], [
      { container: "istio-proxy", field: "resources.requests.memory", stored: '"64Mi"', now: '"512Mi"' },
      { container: "istio-proxy", field: "resources.limits.memory", stored: '"256Mi"', now: '"512Mi"' },
    ]);
  });

  test("resources the injector does not give, with no LimitRanger annotation naming them: drift", () => {
    const cpuOnly = buildConfig({ proxy: { image: OLD, resources: { requests: { cpu: "100m" } } } });
    const stored = asStored(limitRanged(injected(app("web"), cpuOnly), { limits: { memory: "256Mi" } }));
    const annotations = { ...stored.metadata?.annotations };
    delete annotations["kubernetes.io/limit-ranger"];
    stored.metadata = { ...stored.metadata, annotations };
    const r = compareSidecar(stored, "demo", cpuOnly);
    assert.deepEqual(r.compared ? r.drift.map((d) => `${d.container} ${d.field}`) : [], [
      "istio-proxy resources.requests.memory",
      "istio-proxy resources.limits.memory",
      "istio-init resources.requests.memory",
      "istio-init resources.limits.memory",
    ]);
  });

  test("AlwaysPullImages: Always on every container is the plugin's, not drift; on the sidecar alone it is", () => {
    const alwaysPulled = (pod: Pod): Pod => {
      const p = structuredClone(pod);
      for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]) c.imagePullPolicy = "Always";
      return p;
    };
    for (const native of [false, true]) {
      const stored = asStored(alwaysPulled(serviceAccountAdmitted(injected(app("web"), config, native))));
      assert.deepEqual(compareSidecar(stored, "demo", config), { compared: true, drift: [] }, `native ${native}`);
    }
    // The app pulls as it asked: not the plugin; the sidecar's Always is compared.
    const stored = asStored(alwaysPulled(injected(app("web"), config)));
    const appContainer = stored.spec?.containers.find((c) => c.name === "app");
    assert.ok(appContainer);
    appContainer.imagePullPolicy = "IfNotPresent";
    const r = compareSidecar(stored, "demo", config);
    assert.deepEqual(r.compared ? r.drift : [], [
      { container: "istio-proxy", field: "imagePullPolicy", stored: "Always", now: "IfNotPresent" },
      { container: "istio-init", field: "imagePullPolicy", stored: "Always", now: "IfNotPresent" },
    ]);
  });

  test("defaulting: an image pinned as :latest@digest is pulled Always by default, as the API server stores it", () => {
    const pinned = buildConfig({ proxy: { image: `docker.io/istio/proxyv2:latest@sha256:${"a".repeat(64)}` } });
    const stored = asStored(injected(app("web"), pinned));
    // kube-apiserver v1.34 stores Always for `x:latest@sha256:…` (its tag is latest), IfNotPresent for `x@sha256:…`.
    for (const c of [...(stored.spec?.initContainers ?? []), ...(stored.spec?.containers ?? [])])
      if (c.name !== "app") c.imagePullPolicy = "Always";
    assert.deepEqual(compareSidecar(stored, "demo", pinned), { compared: true, drift: [] });
    const digestOnly = buildConfig({ proxy: { image: `docker.io/istio/proxyv2@sha256:${"a".repeat(64)}` } });
    assert.deepEqual(compareSidecar(asStored(injected(app("web"), digestOnly)), "demo", digestOnly), {
      compared: true,
      drift: [],
    });
  });

  test("a Pod as a whole API server stores it, the injector's webhook called again or not: no drift", () => {
    const lr = { limits: { "ephemeral-storage": "1Gi" } };
    /** The built-in mutating plugins that reach a Pod's containers, and DefaultTolerationSeconds. */
    const plugins = (pod: Pod): Pod => {
      const p = limitRanged(serviceAccountAdmitted(pod), lr);
      assert.ok(p.spec);
      p.spec.tolerations ??= [
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
      ];
      p.spec.priority ??= 0;
      return p;
    };
    const webhook = (pod: Pod): Pod => asStored(structuredClone(inject(pod, { namespace: "demo" }, config).pod));
    for (const reinvoked of [false, true]) {
      // Defaulting, the plugins, the webhook (its answer defaulted), the plugins again since it changed the Pod,
      // and with reinvocationPolicy IfNeeded the webhook again, since they changed it.
      const once = plugins(webhook(plugins(asStored(app("web")))));
      const stored = reinvoked ? webhook(once) : once;
      // With reinvocation the webhook's second answer drops the token mount from its own containers.
      const proxy = stored.spec?.containers.find((c) => c.name === "istio-proxy");
      assert.equal(
        proxy?.volumeMounts?.some((m) => m.mountPath === TOKEN_PATH),
        !reinvoked,
      );
      assert.deepEqual(compareSidecar(stored, "demo", config), { compared: true, drift: [] }, `reinvoked ${reinvoked}`);
      // Later: an ephemeral container (kubectl debug), which no admission plugin gives a token mount.
      assert.ok(stored.spec);
      stored.spec.ephemeralContainers = [{ name: "debugger", image: "busybox:1", targetContainerName: "app" }];
      assert.deepEqual(compareSidecar(stored, "demo", config), { compared: true, drift: [] });
    }
  });

  test("a token mount where the injector now mounts something at that path is compared", () => {
    const stored = asStored(serviceAccountAdmitted(injected(app("web"), config)));
    // The Pod now asks for a volume of its own at the token path in the proxy (the plugin then leaves the proxy alone).
    stored.metadata = {
      ...stored.metadata,
      annotations: {
        ...stored.metadata?.annotations,
        "sidecar.istio.io/userVolume": JSON.stringify({ own: { emptyDir: {} } }),
        "sidecar.istio.io/userVolumeMount": JSON.stringify({ own: { mountPath: TOKEN_PATH } }),
      },
    };
    const r = compareSidecar(stored, "demo", config);
    assert.ok(r.compared);
    const mounts = r.drift.find((d) => d.container === "istio-proxy" && d.field === "volumeMounts");
    assert.match(
      String(mounts?.stored),
      /kube-api-access-5ss2g:\/var\/run\/secrets\/kubernetes\.io\/serviceaccount:ro$/,
    );
    assert.match(String(mounts?.now), /own:\/var\/run\/secrets\/kubernetes\.io\/serviceaccount$/);
  });
});
