// go-zero.ts: a container as Go's encoding/json writes it after decoding it into corev1.Container.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { goMarshalledFields } from "../../../src/injection/go-zero.js";
import { inject } from "../../../src/injection/inject.js";
import type { Container, Pod } from "../../../src/kube/types.js";

describe("goMarshalledFields", () => {
  test("omitempty fields at their zero value are left out, at every depth", () => {
    const c = {
      name: "istio-proxy",
      image: "",
      args: [],
      workingDir: "",
      stdin: false,
      ports: [{ containerPort: 15090, name: "", hostPort: 0, protocol: "" }],
      env: [
        { name: "CA_ADDR", value: "" },
        { name: "X", valueFrom: null },
      ],
      resources: { limits: {}, requests: { cpu: "100m" } },
      readinessProbe: { httpGet: { path: "", port: 15021, scheme: "" }, periodSeconds: 0 },
      lifecycle: { preStop: null },
      securityContext: { capabilities: { drop: [] } },
    };
    assert.deepEqual(goMarshalledFields(c), {
      name: "istio-proxy",
      ports: [{ containerPort: 15090 }],
      env: [{ name: "CA_ADDR" }, { name: "X" }],
      resources: { requests: { cpu: "100m" } },
      readinessProbe: { httpGet: { port: 15021 } },
      lifecycle: {},
      securityContext: { capabilities: {} },
    });
  });

  test("pointer fields keep their zero value, and only null is left out", () => {
    const c = {
      name: "p",
      restartPolicy: "",
      securityContext: {
        runAsUser: 0,
        privileged: false,
        readOnlyRootFilesystem: false,
        capabilities: null,
        seccompProfile: { type: "RuntimeDefault", localhostProfile: "" },
      },
      livenessProbe: { exec: { command: ["true"] }, terminationGracePeriodSeconds: 0 },
      volumeMounts: [{ name: "v", mountPath: "/v", readOnly: false, subPath: "", mountPropagation: "" }],
    };
    assert.deepEqual(goMarshalledFields(c), {
      name: "p",
      restartPolicy: "",
      securityContext: {
        runAsUser: 0,
        privileged: false,
        readOnlyRootFilesystem: false,
        seccompProfile: { type: "RuntimeDefault", localhostProfile: "" },
      },
      livenessProbe: { exec: { command: ["true"] }, terminationGracePeriodSeconds: 0 },
      volumeMounts: [{ name: "v", mountPath: "/v", mountPropagation: "" }],
    });
  });

  test("fields without omitempty are kept whatever their value; an object with nothing to leave out is the same object", () => {
    const c = {
      name: "",
      env: [{ name: "", value: "v" }],
      ports: [{ containerPort: 0 }],
      lifecycle: { preStop: { sleep: { seconds: 0 } } },
      readinessProbe: {
        grpc: { port: 0, service: null },
        httpGet: { port: 0, httpHeaders: [{ name: "", value: "" }] },
      },
    };
    assert.deepEqual(goMarshalledFields(c), c);
    const plain = { name: "a", image: "b", ports: [{ containerPort: 1, name: "http" }] };
    assert.equal(goMarshalledFields(plain), plain);
  });
});

describe("a Pod's own istio-proxy with zero values merged over the injected one", () => {
  const config = buildConfig({ nativeSidecars: "false" });
  const proxyOf = (own: Container): Container | undefined => {
    const pod: Pod = {
      metadata: { name: "z" },
      spec: { containers: [{ name: "app", image: "example.com/app:1" }, own] },
    };
    return inject(pod, { namespace: "demo" }, config).pod.spec?.containers.find((c) => c.name === "istio-proxy");
  };
  const injected = proxyOf({ name: "istio-proxy", image: "auto" });

  test("leaves the template's values where Go leaves the field out (what a Helm value left unset renders)", () => {
    const proxy = proxyOf({
      name: "istio-proxy",
      image: "",
      args: [],
      env: [{ name: "CA_ADDR", value: "" }],
      securityContext: { capabilities: null, runAsUser: 1234 } as Container["securityContext"],
    });
    assert.equal(proxy?.image, injected?.image);
    assert.ok(proxy?.image);
    assert.deepEqual(proxy?.args, injected?.args);
    const ca = (c: Container | undefined) => c?.env?.find((e) => e.name === "CA_ADDR");
    assert.deepEqual(ca(proxy), ca(injected));
    assert.deepEqual(proxy?.securityContext?.capabilities, { drop: ["ALL"] });
    assert.equal(proxy?.securityContext?.runAsUser, 1234);
  });

  test("a pointer's zero value still overrides: privileged false, runAsUser 0", () => {
    const proxy = proxyOf({
      name: "istio-proxy",
      image: "auto",
      securityContext: { runAsUser: 0, readOnlyRootFilesystem: false },
    });
    assert.equal(proxy?.securityContext?.runAsUser, 0);
    assert.equal(proxy?.securityContext?.readOnlyRootFilesystem, false);
  });
});
