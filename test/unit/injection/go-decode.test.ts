// Reading a userVolume or userVolumeMount entry as Go's encoding/json reads it into a
// corev1.Volume or VolumeMount and writes it back (go-decode.ts). Each expectation is what
// Istio's injector (the oracle, test/oracle/) answers for the same entry.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { goDecode } from "../../../src/injection/go-decode.js";
import { inject } from "../../../src/injection/inject.js";
import { InjectionError } from "../../../src/injection/types.js";
import type { Container, JsonValue, Pod } from "../../../src/kube/types.js";

const volume = (json: JsonValue, dropNulls = false): unknown => {
  const r = goDecode(json, "v1.Volume", dropNulls);
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.value;
};
const mount = (json: JsonValue, dropNulls = false): unknown => {
  const r = goDecode(json, "v1.VolumeMount", dropNulls);
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.value;
};
const refusal = (json: JsonValue, root = "v1.Volume"): { error: string; at: string } => {
  const r = goDecode(json, root);
  assert.ok(!r.ok, `admitted: ${JSON.stringify(r.ok ? r.value : "")}`);
  return { error: r.error, at: r.at };
};

describe("goDecode: field names", () => {
  test("a key names its field whatever its case: configmap, readonly, mountpath, Secret/SecretName", () => {
    assert.deepEqual(volume({ name: "wasm", configmap: { name: "wasm" } }), {
      name: "wasm",
      configMap: { name: "wasm" },
    });
    assert.deepEqual(mount({ name: "wasm", mountpath: "/w", readonly: true, subpath: "x" }), {
      name: "wasm",
      readOnly: true,
      mountPath: "/w",
      subPath: "x",
    });
    assert.deepEqual(volume({ name: "c", Secret: { SecretName: "certs", DEFAULTMODE: 256 } }), {
      name: "c",
      secret: { secretName: "certs", defaultMode: 256 },
    });
    assert.deepEqual(volume({ name: "e", emptydir: { sizelimit: "64Mi" } }), {
      name: "e",
      emptyDir: { sizeLimit: "64Mi" },
    });
  });

  test("Go's folding: ASCII letters, and ſ (U+017F) and K (U+212A), which fold to s and k; no other letter", () => {
    assert.deepEqual(volume({ name: "a", ſecret: { items: [{ "\u212aey": "k", path: "p" }] } }), {
      name: "a",
      secret: { items: [{ key: "k", path: "p" }] },
    });
    // Fullwidth R and an accented o fold to letters that name no field.
    assert.deepEqual(mount({ name: "a", mountPath: "/a", ＲeadOnly: true, readÓnly: true }), {
      name: "a",
      mountPath: "/a",
    });
  });

  test("keys naming no field are dropped, at any depth", () => {
    assert.deepEqual(volume({ name: "v", bogus: 1, emptyDir: { bogus: { a: [1] } } }), { name: "v", emptyDir: {} });
    const own: JsonValue = JSON.parse('{"name":"v","mountPath":"/v","bogus":"x","__proto__":1}');
    assert.deepEqual(mount(own), { name: "v", mountPath: "/v" });
  });

  test("of two keys naming one field, the later in sorted order wins, wherever the annotation wrote it", () => {
    // "readOnly" sorts before "readonly" (M < m).
    assert.deepEqual(mount({ name: "a", mountPath: "/a", readonly: true, readOnly: false }), {
      name: "a",
      readOnly: true,
      mountPath: "/a",
    });
    assert.deepEqual(mount({ name: "b", mountPath: "/b", readOnly: true, readonly: false }), {
      name: "b",
      mountPath: "/b",
    });
  });

  test("the later of two spellings is read into what the first made: a struct field by field, a list's elements", () => {
    assert.deepEqual(volume({ name: "c", configMap: { name: "c" }, configmap: { optional: true } }), {
      name: "c",
      configMap: { name: "c", optional: true },
    });
    // "Items" first: two elements; then "items": one, read into the first.
    assert.deepEqual(
      volume({
        name: "c",
        configMap: { items: [{ key: "k" }], Items: [{ path: "p", mode: 1 }, { path: "q" }] },
      }),
      { name: "c", configMap: { items: [{ key: "k", path: "p", mode: 1 }] } },
    );
  });

  test("written back in Go's field order", () => {
    const out = mount({ subPathExpr: "$(X)", mountPath: "/m", readOnly: true, name: "m", mountPropagation: "None" });
    assert.deepEqual(Object.keys(out as object), ["name", "readOnly", "mountPath", "mountPropagation", "subPathExpr"]);
  });
});

describe("goDecode: null", () => {
  test("null sets a pointer to nil, a map entry to its zero; leaves a plain field as it was", () => {
    assert.deepEqual(volume({ name: "c", configMap: { name: "c", Optional: false, optional: null } }), {
      name: "c",
      configMap: { name: "c" },
    });
    assert.deepEqual(mount({ name: "a", mountPath: "/a", readOnly: true, readonly: null }), {
      name: "a",
      readOnly: true,
      mountPath: "/a",
    });
    const claim = {
      name: "e",
      ephemeral: {
        volumeClaimTemplate: {
          metadata: { labels: { a: null, b: "c" } },
          spec: { resources: { requests: { storage: null } } },
        },
      },
    };
    assert.deepEqual(volume(claim), {
      name: "e",
      ephemeral: {
        volumeClaimTemplate: {
          metadata: { labels: { a: "", b: "c" } },
          spec: { resources: { requests: { storage: "0" } } },
        },
      },
    });
  });

  test("where Istio's merge adds the whole list, the null members are dropped first; null list elements stay", () => {
    assert.deepEqual(volume({ name: "c", configMap: { name: "c", Optional: false, optional: null } }, true), {
      name: "c",
      configMap: { name: "c", optional: false },
    });
    assert.deepEqual(
      volume(
        {
          name: "e",
          ephemeral: {
            volumeClaimTemplate: {
              metadata: { labels: { a: null, b: "c" } },
              spec: { accessModes: ["x", null], resources: { requests: { storage: null, cpu: "1" } } },
            },
          },
        },
        true,
      ),
      {
        name: "e",
        ephemeral: {
          volumeClaimTemplate: {
            metadata: { labels: { b: "c" } },
            spec: { accessModes: ["x", ""], resources: { requests: { cpu: "1" } } },
          },
        },
      },
    );
    assert.deepEqual(volume({ name: "p", projected: { sources: [null, { secret: { name: "s" } }] } }, true), {
      name: "p",
      projected: { sources: [{}, { secret: { name: "s" } }] },
    });
  });
});

describe("goDecode: values", () => {
  test("omitempty: a plain field's zero is left out, a pointer's is written; a field without omitempty always", () => {
    assert.deepEqual(
      volume({
        name: "c",
        configMap: { name: "", items: [], optional: false, defaultMode: 0 },
        emptyDir: { medium: "" },
      }),
      { name: "c", emptyDir: {}, configMap: { defaultMode: 0, optional: false } },
    );
    assert.deepEqual(mount({ name: "m", mountPath: "/m", readOnly: false }), { name: "m", mountPath: "/m" });
    assert.deepEqual(mount({ name: "m" }), { name: "m", mountPath: "" });
    assert.deepEqual(volume({ name: "h", hostPath: {} }), { name: "h", hostPath: { path: "" } });
    assert.deepEqual(volume({ name: "p", projected: {} }), { name: "p", projected: { sources: null } });
    assert.deepEqual(volume({ name: "e", ephemeral: { volumeClaimTemplate: {} } }), {
      name: "e",
      ephemeral: { volumeClaimTemplate: { metadata: {}, spec: { resources: {} } } },
    });
    assert.deepEqual(
      volume({ name: "d", downwardAPI: { items: [{ path: "cpu", resourceFieldRef: { resource: "limits.cpu" } }] } }),
      {
        name: "d",
        downwardAPI: { items: [{ path: "cpu", resourceFieldRef: { resource: "limits.cpu", divisor: "0" } }] },
      },
    );
  });

  test("integers: whole numbers in range; a fraction, an overflow or 1e21 refused with Go's message", () => {
    assert.deepEqual(volume({ name: "s", secret: { defaultMode: -2147483648 } }), {
      name: "s",
      secret: { defaultMode: -2147483648 },
    });
    assert.deepEqual(refusal({ name: "s", secret: { defaultMode: 1.5 } }), {
      error:
        "json: cannot unmarshal number 1.5 into Go struct field SecretVolumeSource.VolumeSource.secret.defaultMode of type int32",
      at: "secret.defaultMode",
    });
    assert.match(refusal({ name: "s", secret: { defaultMode: 2147483648 } }).error, /number 2147483648 into .* int32$/);
    const token = (expirationSeconds: number): JsonValue => ({
      name: "p",
      projected: { sources: [{ serviceAccountToken: { path: "t", expirationSeconds } }] },
    });
    assert.deepEqual(refusal(token(1e21)), {
      error:
        "json: cannot unmarshal number 1e+21 into Go struct field ServiceAccountTokenProjection.VolumeSource.projected.sources.serviceAccountToken.expirationSeconds of type int64",
      at: "projected.sources[0].serviceAccountToken.expirationSeconds",
    });
    assert.match(refusal(token(2 ** 63)).error, /number 9223372036854776000 into .* int64$/);
    assert.ok(goDecode(token(2 ** 62), "v1.Volume").ok);
  });

  test("a value of the wrong type: Go's UnmarshalTypeError, naming the Go type and the path Go writes", () => {
    assert.equal(
      refusal({ name: "v", mountPath: "/v", readOnly: "true" }, "v1.VolumeMount").error,
      "json: cannot unmarshal string into Go struct field VolumeMount.readOnly of type bool",
    );
    assert.equal(
      refusal({ name: "v", mountPath: "/v", readonly: 1 }, "v1.VolumeMount").error,
      "json: cannot unmarshal number into Go struct field VolumeMount.readOnly of type bool",
    );
    assert.equal(
      refusal({ name: "v", mountPath: "/v", mountPropagation: true }, "v1.VolumeMount").error,
      "json: cannot unmarshal bool into Go struct field VolumeMount.mountPropagation of type v1.MountPropagationMode",
    );
    assert.equal(
      refusal({ name: 5 }).error,
      "json: cannot unmarshal number into Go struct field Volume.name of type string",
    );
    assert.equal(
      refusal({ name: "a", secret: "my-secret" }).error,
      "json: cannot unmarshal string into Go struct field Volume.VolumeSource.secret of type v1.SecretVolumeSource",
    );
    assert.equal(
      refusal({ name: "a", configMap: { items: { key: "k" } } }).error,
      "json: cannot unmarshal object into Go struct field ConfigMapVolumeSource.VolumeSource.configMap.items of type []v1.KeyToPath",
    );
    assert.equal(
      refusal({ name: "a", configMap: { name: true } }).error,
      "json: cannot unmarshal bool into Go struct field ConfigMapVolumeSource.VolumeSource.configMap.LocalObjectReference.name of type string",
    );
    assert.deepEqual(refusal({ name: "e", ephemeral: { volumeClaimTemplate: { metadata: { labels: { a: 5 } } } } }), {
      error:
        "json: cannot unmarshal number into Go struct field ObjectMeta.VolumeSource.ephemeral.volumeClaimTemplate.metadata.labels of type string",
      at: "ephemeral.volumeClaimTemplate.metadata.labels.a",
    });
  });

  test("quantities: a string (trimmed) or a number, written in canonical form; anything else refused", () => {
    const size = (sizeLimit: JsonValue): unknown => volume({ name: "e", emptyDir: { sizeLimit } });
    assert.deepEqual(size(1.5), { name: "e", emptyDir: { sizeLimit: "1500m" } });
    assert.deepEqual(size(" 1000 "), { name: "e", emptyDir: { sizeLimit: "1k" } });
    assert.deepEqual(size("1e3"), { name: "e", emptyDir: { sizeLimit: "1e3" } });
    assert.deepEqual(size(1073741824), { name: "e", emptyDir: { sizeLimit: "1073741824" } });
    const wrong = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    for (const bad of [true, {}, "\t5", "5 x"]) {
      assert.equal(
        refusal({ name: "e", emptyDir: { sizeLimit: bad } }).error,
        `Go struct field EmptyDirVolumeSource.VolumeSource.emptyDir.sizeLimit: ${wrong}`,
      );
    }
    assert.match(refusal({ name: "e", emptyDir: { sizeLimit: "5KM" } }).error, /unable to parse quantity's suffix$/);
  });

  test("a quantity Go cannot parse stops Go at once: its error wins over a type error met before", () => {
    // "configMap" sorts before "emptyDir".
    assert.match(
      refusal({ name: "a", configMap: { name: 5 }, emptyDir: { sizeLimit: true } }).error,
      /quantities must/,
    );
    // Two type errors: the first met.
    assert.match(
      refusal({ name: "a", configMap: { name: 5 }, secret: { secretName: 5 } }).error,
      /ConfigMapVolumeSource/,
    );
  });

  test("a time: RFC 3339, written in UTC to the second; the zero time is left out (omitzero); else refused", () => {
    const claim = (creationTimestamp: JsonValue): JsonValue => ({
      name: "e",
      ephemeral: { volumeClaimTemplate: { metadata: { creationTimestamp } } },
    });
    const meta = (v: unknown): unknown =>
      (v as { ephemeral: { volumeClaimTemplate: { metadata: unknown } } }).ephemeral.volumeClaimTemplate.metadata;
    assert.deepEqual(meta(volume(claim("2024-02-29T23:30:05.5-01:00"))), { creationTimestamp: "2024-03-01T00:30:05Z" });
    assert.deepEqual(meta(volume(claim("0001-01-01T00:00:00Z"))), {});
    assert.match(refusal(claim("yesterday")).error, /creationTimestamp: parsing time "yesterday"/);
    assert.match(refusal(claim("2023-02-29T00:00:00Z")).error, /parsing time/);
    assert.match(refusal(claim(5)).error, /cannot unmarshal number into Go value of type string$/);
  });

  test("a map keeps any key, __proto__ too, as its own key; a lone surrogate is read as U+FFFD", () => {
    const out = volume(
      JSON.parse('{"name":"e","ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"__proto__":"x"}}}}}'),
    );
    const labels = (out as { ephemeral: { volumeClaimTemplate: { metadata: { labels: object } } } }).ephemeral
      .volumeClaimTemplate.metadata.labels;
    assert.deepEqual(Object.entries(labels), [["__proto__", "x"]]);
    assert.deepEqual(volume({ name: "b", configMap: { name: "\ud800x" } }), {
      name: "b",
      configMap: { name: "\ufffdx" },
    });
  });
});

describe("userVolume and userVolumeMount through the injector", () => {
  const pod = (annotations: Record<string, string>, spec: Partial<NonNullable<Pod["spec"]>> = {}): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "demo", annotations },
    spec: { containers: [{ name: "app", image: "nginx" }], ...spec },
  });
  const WASM = {
    "sidecar.istio.io/userVolume": '[{"name":"wasm","configmap":{"name":"wasm"}}]',
    "sidecar.istio.io/userVolumeMount": '[{"name":"wasm","mountPath":"/var/local/lib/wasm-filters","readonly":true}]',
  };
  const proxyOf = (p: Pod): Container | undefined =>
    [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === "istio-proxy");

  for (const nativeSidecars of ["true", "false"]) {
    test(`Istio's wasm example, lower-case keys: a ConfigMap volume mounted read-only (native sidecars ${nativeSidecars})`, () => {
      const out = inject(pod(WASM), { namespace: "demo" }, buildConfig({ nativeSidecars })).pod;
      assert.deepEqual(
        out.spec?.volumes?.find((v) => v.name === "wasm"),
        { name: "wasm", configMap: { name: "wasm" } },
      );
      assert.deepEqual(
        proxyOf(out)?.volumeMounts?.find((m) => m.name === "wasm"),
        { name: "wasm", readOnly: true, mountPath: "/var/local/lib/wasm-filters" },
      );
    });

    test(`a value Go cannot read refuses the Pod, naming the annotation, the entry and Go's error (native sidecars ${nativeSidecars})`, () => {
      const annotations = {
        "sidecar.istio.io/userVolumeMount": '[{"name":"wasm","mountPath":"/w","readOnly":"true"}]',
      };
      assert.throws(
        () => inject(pod(annotations), { namespace: "demo" }, buildConfig({ nativeSidecars })),
        (e: unknown) =>
          e instanceof InjectionError &&
          e.field === "sidecar.istio.io/userVolumeMount" &&
          e.message.endsWith(
            ": entry 0, readOnly: json: cannot unmarshal string into Go struct field VolumeMount.readOnly of type bool",
          ),
      );
    });
  }

  test("grpc-agent's mounts are read the same way", () => {
    const annotations = { ...WASM, "inject.istio.io/templates": "grpc-agent" };
    const out = inject(pod(annotations), { namespace: "demo" }, buildConfig({})).pod;
    assert.deepEqual(
      proxyOf(out)?.volumeMounts?.find((m) => m.name === "wasm"),
      { name: "wasm", readOnly: true, mountPath: "/var/local/lib/wasm-filters" },
    );
  });

  test("null members: dropped where the Pod has no volumes (no init containers, for a native sidecar's mounts)", () => {
    const annotations = {
      "sidecar.istio.io/userVolume": '{"c":{"configMap":{"name":"c","Optional":false,"optional":null}}}',
      "sidecar.istio.io/userVolumeMount": '{"c":{"mountPath":"/c","mountPropagation":"None","mountpropagation":null}}',
    };
    const native = buildConfig({ nativeSidecars: "true" });
    const bare = inject(pod(annotations), { namespace: "demo" }, native).pod;
    assert.deepEqual(
      bare.spec?.volumes?.find((v) => v.name === "c"),
      { name: "c", configMap: { name: "c", optional: false } },
    );
    assert.deepEqual(
      proxyOf(bare)?.volumeMounts?.find((m) => m.name === "c"),
      { name: "c", mountPath: "/c", mountPropagation: "None" },
    );
    const lists = {
      volumes: [{ name: "data", emptyDir: {} }],
      initContainers: [{ name: "init", image: "busybox" }],
    };
    for (const [config, spec] of [
      [native, lists],
      [buildConfig({ nativeSidecars: "false" }), {}],
    ] as const) {
      const out = inject(pod(annotations, spec), { namespace: "demo" }, config).pod;
      assert.deepEqual(
        proxyOf(out)?.volumeMounts?.find((m) => m.name === "c"),
        { name: "c", mountPath: "/c" },
      );
      if (spec === lists) {
        assert.deepEqual(
          out.spec?.volumes?.find((v) => v.name === "c"),
          { name: "c", configMap: { name: "c" } },
        );
      }
    }
  });
});

test("the schema is generated from the k8s.io/api version Istio 86c9f01 builds with", () => {
  const root = join(import.meta.dirname, "../../..");
  const version = (file: string): string | undefined =>
    /^\tk8s\.io\/api (v\S+)$/m.exec(readFileSync(join(root, file), "utf8"))?.[1];
  const oracle = version("test/oracle/go.mod");
  assert.ok(oracle);
  assert.equal(version("scripts/kube-schema/go.mod"), oracle);
  assert.match(readFileSync(join(root, "src/injection/kube-schema.ts"), "utf8"), new RegExp(`k8s\\.io/api ${oracle} `));
});
