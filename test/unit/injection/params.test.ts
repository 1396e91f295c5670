import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { buildParams, withImageType } from "../../../src/injection/params.js";
import { InjectionError } from "../../../src/injection/types.js";
import type { Pod } from "../../../src/kube/types.js";

const F = "sidecar.istio.io/proxyImageType";

describe("withImageType (Istio's updateImageTypeIfPresent cases)", () => {
  const cases: [string, string | undefined, string][] = [
    ["registry.istio.io/release/proxyv2:11", undefined, "registry.istio.io/release/proxyv2:11"],
    ["registry.istio.io/release/proxyv2:1.12", "distroless", "registry.istio.io/release/proxyv2:1.12-distroless"],
    ["gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17", "debug", "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17-debug"],
    ["gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17", "default", "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17"],
    [
      "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17-distroless",
      "default",
      "gcr.io/gke-release/asm/proxyv2:1.11.2-asm.17",
    ],
    ["registry.istio.io/release/proxyv2:1.12-debug", "distroless", "registry.istio.io/release/proxyv2:1.12-distroless"],
    [
      "registry.istio.io/release/proxyv2:1.12-distroless",
      "distroless",
      "registry.istio.io/release/proxyv2:1.12-distroless",
    ],
    [
      "private-repo/istio/proxyv2:1.12-this-is-unusual-tag-distroless",
      "default",
      "private-repo/istio/proxyv2:1.12-this-is-unusual-tag",
    ],
    [
      "private-repo/istio/proxyv2:1.12-this-is-unusual-tag",
      "distroless",
      "private-repo/istio/proxyv2:1.12-this-is-unusual-tag-distroless",
    ],
    // A registry port is not a tag; an image without a tag or named by digest stays as it is.
    ["localhost:5000/istio/proxyv2:1.12", "debug", "localhost:5000/istio/proxyv2:1.12-debug"],
    ["localhost:5000/istio/proxyv2", "debug", "localhost:5000/istio/proxyv2"],
    ["docker.io/istio/proxyv2@sha256:0123456789abcdef", "debug", "docker.io/istio/proxyv2@sha256:0123456789abcdef"],
    ["docker.io/istio/proxyv2:1.12", "", "docker.io/istio/proxyv2:1.12"],
  ];
  for (const [image, type, want] of cases) {
    test(`${image} + ${String(type)}`, () => assert.equal(withImageType(image, type, F), want));
  }

  test("a type that would make an invalid tag is refused, naming where it came from", () => {
    assert.throws(
      () => withImageType("docker.io/istio/proxyv2:1.12", "dist roless", F),
      (e: unknown) =>
        e instanceof InjectionError &&
        e.field === F &&
        e.message.startsWith(`invalid annotation ${F}="dist roless"`) &&
        e.message.includes("not a valid tag"),
    );
  });
});

describe("buildParams: image type and the agent's status port", () => {
  const config = buildConfig({ proxy: { image: "docker.io/istio/proxyv2:1.27.0" } });
  const params = (annotations: Record<string, string>) => {
    const pod: Pod = { metadata: { name: "p", annotations }, spec: { containers: [{ name: "app" }] } };
    return buildParams(pod, { namespace: "demo" }, config, undefined);
  };

  test("the annotation types both images; the ProxyConfig's image.imageType the proxy only", () => {
    const a = params({ "sidecar.istio.io/proxyImageType": "distroless" });
    assert.equal(a.proxyImage, "docker.io/istio/proxyv2:1.27.0-distroless");
    assert.equal(a.initImage, "docker.io/istio/proxyv2:1.27.0-distroless");
    const pc = params({ "proxy.istio.io/config": "image: {imageType: debug}" });
    assert.equal(pc.proxyImage, "docker.io/istio/proxyv2:1.27.0-debug");
    assert.equal(pc.initImage, "docker.io/istio/proxyv2:1.27.0");
    const both = params({
      "proxy.istio.io/config": "image: {imageType: debug}",
      "sidecar.istio.io/proxyImageType": "distroless",
    });
    assert.equal(both.proxyImage, "docker.io/istio/proxyv2:1.27.0-distroless");
  });

  test("agentStatusPort: the ProxyConfig's statusPort, else the config's", () => {
    assert.equal(params({}).agentStatusPort, 15020);
    assert.equal(params({ "proxy.istio.io/config": "statusPort: 15030" }).agentStatusPort, 15030);
    assert.equal(params({ "status.sidecar.istio.io/port": "15031" }).agentStatusPort, 15020);
  });
});

describe("buildParams: the variant and images used as written (Istio's ProxyImage, ProxyInitImage)", () => {
  const image = "registry.example/istio/proxyv2:1.28.0";
  const params = (settings: Parameters<typeof buildConfig>[0], annotations: Record<string, string> = {}) => {
    const pod: Pod = { metadata: { name: "p", annotations }, spec: { containers: [{ name: "app" }] } };
    return buildParams(pod, { namespace: "demo" }, buildConfig(settings), undefined);
  };
  const images = (p: ReturnType<typeof params>) => [p.proxyImage, p.initImage];

  test("the variant types both images when the Pod names no type", () => {
    assert.deepEqual(images(params({ proxy: { image }, variant: "distroless" })), [
      `${image}-distroless`,
      `${image}-distroless`,
    ]);
  });

  test("an empty sidecar.istio.io/proxyImageType is a type, none: it clears the variant on both", () => {
    const variant = { proxy: { image }, variant: "distroless", proxyConfig: { image: { imageType: "distroless" } } };
    assert.deepEqual(images(params(variant, { [F]: "" })), [image, image]);
    // A tag that already ends in a type keeps it: no type is added, none is taken off.
    const debugTag = { proxy: { image: `${image}-debug` }, variant: "distroless" };
    assert.deepEqual(images(params(debugTag, { [F]: "" })), [`${image}-debug`, `${image}-debug`]);
    assert.deepEqual(images(params(debugTag)), [`${image}-distroless`, `${image}-distroless`]);
  });

  test("the ProxyConfig's image.imageType types the proxy over the variant; cleared by the Pod's, the variant", () => {
    const settings = { proxy: { image }, variant: "distroless", proxyConfig: { image: { imageType: "debug" } } };
    assert.deepEqual(images(params(settings)), [`${image}-debug`, `${image}-distroless`]);
    assert.deepEqual(images(params(settings, { "proxy.istio.io/config": 'image: {imageType: ""}' })), [
      `${image}-distroless`,
      `${image}-distroless`,
    ]);
  });

  test("an image with imageTyped: false is used as written, whatever type the Pod or the mesh names", () => {
    const initImage = "my.reg/proxyinit:1.0";
    const settings = {
      proxy: { image },
      proxyInit: { image: initImage, imageTyped: false },
      variant: "distroless",
    };
    assert.deepEqual(images(params(settings)), [`${image}-distroless`, initImage]);
    assert.deepEqual(images(params(settings, { [F]: "debug" })), [`${image}-debug`, initImage]);
    const proxyWhole = {
      proxy: { image: "my.reg/proxy:2.0", imageTyped: false },
      proxyInit: { image },
      variant: "debug",
      proxyConfig: { image: { imageType: "debug" } },
    };
    assert.deepEqual(images(params(proxyWhole)), ["my.reg/proxy:2.0", `${image}-debug`]);
    assert.deepEqual(images(params(proxyWhole, { [F]: "distroless" })), ["my.reg/proxy:2.0", `${image}-distroless`]);
    // Without an image of its own, istio-init has the proxy's, as written too.
    const both = { proxy: { image: "my.reg/proxy:2.0", imageTyped: false }, variant: "debug" };
    assert.deepEqual(images(params(both, { [F]: "distroless" })), ["my.reg/proxy:2.0", "my.reg/proxy:2.0"]);
  });

  test("sidecar.istio.io/proxyImage: a full name replaces both; another value is ignored (Istio: see README)", () => {
    const settings = { proxy: { image: "my.reg/proxy:2.0", imageTyped: false }, proxyInit: { image } };
    assert.deepEqual(images(params(settings, { "sidecar.istio.io/proxyImage": "other.reg/p:3" })), [
      "other.reg/p:3",
      "other.reg/p:3",
    ]);
    assert.deepEqual(images(params(settings, { "sidecar.istio.io/proxyImage": "foo", [F]: "debug" })), [
      "my.reg/proxy:2.0",
      `${image}-debug`,
    ]);
  });
});

describe("sidecar.istio.io/nativeSidecar", () => {
  const pod = (value: string | undefined): Pod => ({
    metadata: { name: "n", annotations: value === undefined ? {} : { "sidecar.istio.io/nativeSidecar": value } },
    spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
  });
  // The template's `index … | default (printf "%t" .NativeSidecars) | ne "false"`: empty is unset.
  for (const [setting, value, native] of [
    ["false", "", false],
    ["true", "", true],
    ["false", undefined, false],
    ["false", "true", true],
    ["false", "TRUE", true],
    ["true", "false", false],
  ] as const) {
    test(`config ${setting}, annotation ${JSON.stringify(value)}: native ${native}`, () => {
      const p = buildParams(pod(value), { namespace: "demo" }, buildConfig({ nativeSidecars: setting }), undefined);
      assert.equal(p.native, native);
    });
  }
});

describe("a Pod's image type that makes an invalid tag", () => {
  const config = buildConfig({ proxy: { image: "docker.io/istio/proxyv2:1.27.0" } });
  const params = (type: string) =>
    buildParams(
      {
        metadata: { name: "i", annotations: { [F]: type } },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      },
      { namespace: "demo" },
      config,
      undefined,
    );

  test("is written as Istio writes it, with a warning (Istio admits the Pod)", () => {
    for (const type of ["distroless:v2", "dist roless", "a/b", "x".repeat(130)]) {
      const p = params(type);
      assert.equal(p.proxyImage, `docker.io/istio/proxyv2:1.27.0-${type}`);
      assert.equal(p.initImage, `docker.io/istio/proxyv2:1.27.0-${type}`);
      assert.equal(p.warnings.length, 1, type);
      assert.match(p.warnings[0] ?? "", /not a valid tag: it will not pull/);
    }
  });

  test("is refused where the image would end in a blank, which the API server refuses", () => {
    assert.throws(
      () => params("distroless "),
      (e: unknown) => e instanceof InjectionError && e.field === F,
    );
  });
});
