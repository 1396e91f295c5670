import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import { rewriteProbes } from "../../../src/injection/probes.js";
import type { Container } from "../../../src/kube/types.js";

const web = (extra: Partial<Container>): Container => ({
  name: "web",
  ports: [{ name: "http", containerPort: 8080 }],
  ...extra,
});
const probers = (json: string): Record<string, unknown> => (json ? (JSON.parse(json) as Record<string, unknown>) : {});

describe("rewriteProbes", () => {
  test("the probers are listed by path as sorted strings, whatever the containers' names and order; a name given twice hands over its last", () => {
    // Names where sorting the names alone would order their paths otherwise (`a` begins `a-b`
    // and `a.b`, whose next characters sort before `/`), names with `/`, escapes, surrogate
    // pairs, and a name given twice (in the init containers and the containers).
    const names = ["a.b", "a", "app-10", "a/b", "a-b", 'q"', "\u{1F600}", "é", "app-2", "a/", "\u0001", "ab", "app-1"];
    const probed = (name: string, port: number): Container => ({
      name,
      readinessProbe: { httpGet: { path: "/r", port } },
      livenessProbe: { tcpSocket: { port } },
      lifecycle: { preStop: { httpGet: { path: "/s", port } }, postStart: { tcpSocket: { port } } },
    });
    for (const [withSlash, twice] of [
      [false, false],
      [false, true],
      [true, false],
    ]) {
      const list = names.filter((n) => withSlash || !n.includes("/"));
      for (let turn = 0; turn < list.length; turn++) {
        const order = [...list.slice(turn), ...list.slice(0, turn)].reverse();
        const r = rewriteProbes(
          twice ? [probed("a", 1)] : [],
          order.map((n, i) => probed(n, 8000 + i)),
          15020,
        );
        const keys = Object.keys(probers(r.probers));
        const paths = list.flatMap((n) => [
          ...["livez", "readyz"].map((s) => `/app-health/${n}/${s}`),
          ...["poststartz", "prestopz"].map((s) => `/app-lifecycle/${n}/${s}`),
        ]);
        assert.deepEqual(keys, [...keys].sort(), r.probers);
        assert.deepEqual(new Set(keys), new Set(paths));
        assert.equal(keys.length, paths.length);
        // The text is JSON.stringify's of the sorted entries.
        assert.equal(r.probers, JSON.stringify(Object.fromEntries(keys.map((k) => [k, probers(r.probers)[k]]))));
        // "a" is named twice: its container in the list, not the init container, is handed over.
        assert.deepEqual(probers(r.probers)["/app-health/a/readyz"], {
          httpGet: { path: "/r", port: 8000 + order.indexOf("a") },
        });
      }
    }
  });

  test("a named port the container declares is resolved and handed over", () => {
    const r = rewriteProbes([], [web({ readinessProbe: { httpGet: { path: "/ready", port: "http" } } })], 15020);
    assert.deepEqual(probers(r.probers), { "/app-health/web/readyz": { httpGet: { path: "/ready", port: 8080 } } });
    assert.deepEqual(r.containers[0]?.readinessProbe, { httpGet: { path: "/app-health/web/readyz", port: 15020 } });
  });

  test("an unresolvable named port: the probe is still rewritten, but not handed over", () => {
    const r = rewriteProbes(
      [],
      [
        web({
          livenessProbe: { httpGet: { path: "/live", port: "admin" } },
          lifecycle: { preStop: { tcpSocket: { port: "gone" } } },
        }),
      ],
      15020,
    );
    assert.equal(r.probers, "");
    assert.deepEqual(r.containers[0]?.livenessProbe, { httpGet: { path: "/app-health/web/livez", port: 15020 } });
    assert.deepEqual(r.containers[0]?.lifecycle?.preStop, {
      httpGet: { path: "/app-lifecycle/web/prestopz", port: 15020 },
    });
  });

  test("the rewrite port and the agent's port differ: probes go to the former; either one counts as rewritten", () => {
    const r = rewriteProbes(
      [],
      [
        web({
          readinessProbe: { httpGet: { path: "/r", port: 8080 } },
          livenessProbe: { httpGet: { path: "/l", port: 15020 } },
          startupProbe: { tcpSocket: { port: 15031 } },
        }),
      ],
      15031,
      15020,
    );
    assert.deepEqual(Object.keys(probers(r.probers)), ["/app-health/web/readyz"]);
    for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"] as const)
      assert.equal(r.containers[0]?.[kind]?.httpGet?.port, 15031);
  });

  test("exec probes and istio-proxy are left alone; nothing rewritten gives the same lists back", () => {
    const init: Container[] = [
      { name: "istio-proxy", readinessProbe: { httpGet: { path: "/healthz/ready", port: 15021 } } },
    ];
    const main: Container[] = [web({ livenessProbe: { exec: { command: ["true"] } } })];
    const r = rewriteProbes(init, main, 15020);
    assert.equal(r.probers, "");
    assert.equal(r.initContainers, init);
    assert.equal(r.containers, main);
  });

  test("grpc probes are handed over as grpc, rewritten to httpGet", () => {
    const r = rewriteProbes([], [web({ readinessProbe: { grpc: { port: 9000 }, timeoutSeconds: 3 } })], 15020);
    assert.deepEqual(probers(r.probers), { "/app-health/web/readyz": { grpc: { port: 9000 }, timeoutSeconds: 3 } });
    assert.deepEqual(r.containers[0]?.readinessProbe, {
      timeoutSeconds: 3,
      httpGet: { path: "/app-health/web/readyz", port: 15020 },
    });
  });
});

describe("inject: probe rewriting when nothing is handed to the agent", () => {
  test("a probe on the agent's own port is rewritten all the same, with no ISTIO_KUBE_APP_PROBERS (Istio's patchRewriteProbe runs whatever DumpAppProbers gives)", () => {
    const cache: Container = {
      name: "cache",
      image: "redis:7",
      ports: [{ name: "http", containerPort: 15020 }],
      readinessProbe: { httpGet: { path: "/status/ok", port: 15020 }, timeoutSeconds: 5 },
    };
    const r = inject(
      { metadata: { name: "p" }, spec: { containers: [cache] } },
      { namespace: "demo" },
      buildConfig({}),
    );
    const all = [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])];
    assert.deepEqual(all.find((c) => c.name === "cache")?.readinessProbe, {
      timeoutSeconds: 5,
      httpGet: { path: "/app-health/cache/readyz", port: 15020 },
    });
    assert.equal(
      all.find((c) => c.name === "istio-proxy")?.env?.some((e) => e.name === "ISTIO_KUBE_APP_PROBERS"),
      false,
    );
  });
});

describe("inject: the proxy's readiness probe", () => {
  /** The proxy's readiness probe for a Pod with these annotations. */
  const readinessOf = (annotations: Record<string, string>): Container["readinessProbe"] => {
    const r = inject(
      { metadata: { name: "p", annotations }, spec: { containers: [{ name: "web", image: "web:1" }] } },
      { namespace: "demo" },
      buildConfig({}),
    );
    return [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])].find(
      (c) => c.name === "istio-proxy",
    )?.readinessProbe;
  };

  test("a 0 failureThreshold or periodSeconds is left out, as Istio's rendering leaves it out (the API server defaults it)", () => {
    const probe = readinessOf({
      "readiness.status.sidecar.istio.io/failureThreshold": "0",
      "readiness.status.sidecar.istio.io/periodSeconds": "0",
    });
    assert.deepEqual(probe, { httpGet: { path: "/healthz/ready", port: 15021 }, timeoutSeconds: 3 });
  });

  test("the values are read as the template's YAML 1.1 reads them, unquoted: a leading 0 then octal digits is octal", () => {
    const probe = readinessOf({
      "readiness.status.sidecar.istio.io/initialDelaySeconds": "0009",
      "readiness.status.sidecar.istio.io/periodSeconds": "010",
      "readiness.status.sidecar.istio.io/failureThreshold": "0777",
    });
    assert.deepEqual(probe, {
      httpGet: { path: "/healthz/ready", port: 15021 },
      initialDelaySeconds: 9,
      periodSeconds: 8,
      timeoutSeconds: 3,
      failureThreshold: 511,
    });
  });
});

describe("inject: re-injecting gives the probers injecting the original gives", () => {
  test("a probe on a port name that resolves to the agent's port is handed over, and handed over again on re-injection", () => {
    const config = buildConfig({});
    const web: Container = {
      name: "web",
      image: "web:1",
      ports: [{ name: "admin", containerPort: 15020 }],
      livenessProbe: { tcpSocket: { port: "admin" } },
    };
    const first = inject({ metadata: { name: "p" }, spec: { containers: [web] } }, { namespace: "demo" }, config);
    const probersOf = (p: typeof first.pod): string | undefined =>
      [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]
        .find((c) => c.name === "istio-proxy")
        ?.env?.find((e) => e.name === "ISTIO_KUBE_APP_PROBERS")?.value;
    assert.equal(probersOf(first.pod), '{"/app-health/web/livez":{"tcpSocket":{"port":15020}}}');
    const again = inject(first.pod, { namespace: "demo" }, config);
    assert.equal(probersOf(again.pod), probersOf(first.pod));
    assert.deepEqual(again.pod.spec?.containers.find((c) => c.name === "web")?.livenessProbe, {
      httpGet: { path: "/app-health/web/livez", port: 15020 },
    });
  });
});

describe("inject: the gateway template's readiness probe", () => {
  test("read from the config only, as Istio's gateway template: the readiness annotations and a status port of 0 change nothing", () => {
    const annotations = {
      "inject.istio.io/templates": "gateway",
      "readiness.status.sidecar.istio.io/failureThreshold": "10",
      "readiness.status.sidecar.istio.io/periodSeconds": "7",
      "status.sidecar.istio.io/port": "0",
    };
    const r = inject(
      { metadata: { name: "p", annotations }, spec: { containers: [{ name: "istio-proxy", image: "auto" }] } },
      { namespace: "demo" },
      buildConfig({}),
    );
    const proxy = r.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.deepEqual(proxy?.readinessProbe, {
      httpGet: { path: "/healthz/ready", port: 15021 },
      periodSeconds: 15,
      timeoutSeconds: 3,
      failureThreshold: 4,
    });
  });
});
