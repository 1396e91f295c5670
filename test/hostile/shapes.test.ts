// A hostile client POSTs AdmissionReviews straight to /inject over real HTTPS: wrong shapes,
// prototype names as keys, huge values. Each gets the documented answer (HTTP 200, an
// AdmissionReview with allowed:false naming the field, or the Pod injected with the key kept
// as data), never the internal error; and a valid review sent right after is injected.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import jsonpatch from "fast-json-patch";
import {
  JSON_HEADERS,
  podReview,
  removeTestCertificates,
  responseOf,
  startTestServer,
  type ClientResponse,
  type TestServer,
} from "../unit/admission/helpers.js";

after(removeTestCertificates);

type Json = Record<string, unknown>;

/** A valid Pod as JSON, fresh each time. */
function validPod(): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", labels: { app: "web" }, annotations: { team: "a" } },
    spec: {
      containers: [
        {
          name: "app",
          image: "nginx",
          ports: [{ containerPort: 80, name: "http" }],
          readinessProbe: { httpGet: { path: "/", port: "http" } },
        },
      ],
      volumes: [{ name: "data", emptyDir: {} }],
    },
  };
}

function withSpec(change: (spec: Json & { containers: Json[] }) => void): Json {
  const pod = validPod();
  change(pod.spec as Json & { containers: Json[] });
  return pod;
}

function withMetadata(change: (meta: Json) => void): Json {
  const pod = validPod();
  change(pod.metadata as Json);
  return pod;
}

/** Metadata given as JSON text, so that `__proto__` is an own key, as a client sends it. */
function withMetadataJson(text: string): Json {
  return { ...validPod(), metadata: JSON.parse(text) as Json };
}

/** JSON text put into a body as it is: a value too deep for JSON.stringify to write. */
class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify, with each RawJson written as its text. */
function toJson(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (!(v instanceof RawJson)) return v;
    raws.push(v.text);
    return `\u0000raw${raws.length - 1}`;
  });
  return text.replace(/"\\u0000raw(\d+)"/g, (_m, i: string) => raws[Number(i)] ?? "null");
}

let seq = 0;
async function post(s: TestServer, object: unknown, path = "/inject"): Promise<{ res: ClientResponse; uid: string }> {
  const uid = `hostile-${++seq}`;
  const res = await s.request({
    path,
    headers: JSON_HEADERS,
    body: toJson(podReview({ uid, namespace: "demo", object })),
  });
  return { res, uid };
}

/** The bystander: a valid Pod right after each hostile review, injected. */
async function assertBystanderInjected(s: TestServer): Promise<void> {
  const { res, uid } = await post(s, validPod());
  assert.equal(res.status, 200);
  const r = responseOf(res);
  assert.equal(r.uid, uid);
  assert.equal(r.allowed, true, JSON.stringify(r.status));
  assert.equal(r.patchType, "JSONPatch");
  const ops = JSON.parse(Buffer.from(String(r.patch), "base64").toString("utf8")) as jsonpatch.Operation[];
  const pod = jsonpatch.applyPatch(validPod(), ops, true, false).newDocument as {
    spec: { containers: { name: string }[] };
  };
  assert.ok(
    pod.spec.containers.some((c) => c.name === "istio-proxy"),
    "the bystander got its sidecar",
  );
}

const REFUSED: readonly [what: string, object: () => unknown, message: string][] = [
  [
    'ports: "x"',
    () => withSpec((s) => void ((s.containers[0] as Json).ports = "x")),
    "spec.containers[0].ports: must be a list",
  ],
  [
    "a port that is a number",
    () => withSpec((s) => void ((s.containers[0] as Json).ports = [80])),
    "spec.containers[0].ports[0]: must be an object",
  ],
  [
    "a port number as a string",
    () => withSpec((s) => void ((s.containers[0] as Json).ports = [{ containerPort: "80" }])),
    "spec.containers[0].ports[0].containerPort: must be a whole number",
  ],
  [
    "an ownerReference whose kind is a number",
    () =>
      withMetadata((m) =>
        Object.assign(m, {
          generateName: "web-",
          ownerReferences: [{ apiVersion: "apps/v1", kind: 1, name: "web-5f6b7c8d9", controller: true }],
        }),
      ),
    "metadata.ownerReferences[0].kind: must be a string",
  ],
  [
    "containers as a map",
    () => withSpec((s) => void ((s as Json).containers = { app: { image: "nginx" } })),
    "spec.containers: must be a list",
  ],
  [
    "a container that is a string",
    () => withSpec((s) => void s.containers.push("sidecar" as unknown as Json)),
    "spec.containers[1]: must be an object",
  ],
  [
    "a label that is a number",
    () => withMetadata((m) => void (m.labels = { app: 1 })),
    'metadata.labels["app"]: must be a string',
  ],
  [
    "hostNetwork as a string",
    () => withSpec((s) => void (s.hostNetwork = "true")),
    "spec.hostNetwork: must be true or false",
  ],
  [
    "a probe that is a string",
    () => withSpec((s) => void ((s.containers[0] as Json).readinessProbe = "GET /")),
    "spec.containers[0].readinessProbe: must be an object",
  ],
  [
    "an env item that is a string",
    () => withSpec((s) => void ((s.containers[0] as Json).env = ["A=1"])),
    "spec.containers[0].env[0]: must be an object",
  ],
  ["volumes as a string", () => withSpec((s) => void (s.volumes = "data")), "spec.volumes: must be a list"],
  [
    "spec missing",
    () => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "web" } }),
    "spec: must be an object with the Pod's containers",
  ],
  ["a Pod that is a list", () => [validPod()], "request.object: must be the Pod being created"],
  [
    "template constructor",
    () => withMetadata((m) => void (m.annotations = { "inject.istio.io/templates": "constructor" })),
    'unknown template "constructor"',
  ],
  [
    "template __proto__",
    () => withMetadata((m) => void (m.annotations = { "inject.istio.io/templates": "sidecar,__proto__" })),
    'unknown template "__proto__"',
  ],
  [
    "template toString",
    () => withMetadata((m) => void (m.annotations = { "inject.istio.io/templates": "toString" })),
    'unknown template "toString"',
  ],
  [
    "overrides of the wrong shape",
    () => withMetadata((m) => void (m.annotations = { "proxy.istio.io/overrides": '{"containers":[5]}' })),
    "proxy.istio.io/overrides: not the JSON this injector writes: containers[0]: must be an object",
  ],
  [
    "a user volume that is no object",
    () => withMetadata((m) => void (m.annotations = { "sidecar.istio.io/userVolume": '{"constructor":"x"}' })),
    '"constructor" must be a non-empty JSON object',
  ],
  [
    "a securityContext 1 000 levels deep",
    () =>
      withSpec(
        (s) =>
          void ((s.containers[0] as Json).securityContext = new RawJson(
            `${'{"a":'.repeat(1_000)}1${"}".repeat(1_000)}`,
          )),
      ),
    "spec.containers[0].securityContext: nests deeper than 100 levels",
  ],
  [
    "a 200 KB invalid port list",
    () =>
      withMetadata(
        (m) => void (m.annotations = { "traffic.sidecar.istio.io/excludeOutboundPorts": `80,${"9".repeat(200_000)}` }),
      ),
    "(200000 characters) is not a port number (0-65535)",
  ],
];

describe("hostile shapes over HTTPS", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  for (const [what, object, message] of REFUSED) {
    it(`${what}: refused inside the review, naming the field; the next review is injected`, async () => {
      const { res, uid } = await post(s, object());
      assert.equal(res.status, 200);
      const r = responseOf(res);
      assert.equal(r.uid, uid);
      assert.equal(r.allowed, false);
      const status = r.status as { code: number; reason: string; message: string };
      assert.equal(status.code, 400, status.message);
      assert.equal(status.reason, "BadRequest");
      assert.ok(status.message.startsWith("sidecar-injector: "), status.message);
      assert.ok(status.message.includes(message), `${status.message} names ${message}`);
      assert.doesNotMatch(status.message, /internal error/);
      assert.ok(res.body.length < 4096, `answer of ${res.body.length} bytes`);
      await assertBystanderInjected(s);
    });
  }

  const ACCEPTED: readonly [
    what: string,
    object: () => Json,
    path: string,
    check: (pod: Json & { metadata: Json; spec: { containers: Json[] } }) => void,
  ][] = [
    [
      "labels: null (absent, as the API server reads it)",
      () => withMetadata((m) => void (m.labels = null)),
      "/inject",
      (p) => {
        assert.equal((p.metadata.labels as Json)["service.istio.io/canonical-name"], "web");
      },
    ],
    [
      "initContainers: null and a null env",
      () =>
        withSpec((s) => Object.assign(s, { initContainers: null, containers: [{ ...s.containers[0], env: null }] })),
      "/inject",
      (p) => {
        assert.ok(Array.isArray((p.spec as Json).initContainers));
      },
    ],
    [
      "what the API server sends for a Pod its validation will refuse: no containers (null), empty names, port 0",
      () =>
        withSpec((s) =>
          Object.assign(s, {
            containers: null,
            initContainers: [{ name: "", env: [{ name: "" }], ports: [{ containerPort: 0 }] }],
          }),
        ),
      "/inject",
      (p) => {
        assert.ok(p.spec.containers.some((c) => c.name === "istio-proxy"));
      },
    ],
    [
      "prototype names as label and annotation keys",
      () =>
        withMetadataJson(
          '{"name":"web","labels":{"__proto__":"a","constructor":"b","app":"web"},"annotations":{"__proto__":"c","valueOf":"d","hasOwnProperty":"e","toString":"f"}}',
        ),
      "/inject",
      (p) => {
        const labels = p.metadata.labels as Json;
        const annotations = p.metadata.annotations as Json;
        for (const [map, key, value] of [
          [labels, "__proto__", "a"],
          [labels, "constructor", "b"],
          [annotations, "__proto__", "c"],
          [annotations, "valueOf", "d"],
          [annotations, "hasOwnProperty", "e"],
          [annotations, "toString", "f"],
        ] as const) {
          assert.equal(Object.getOwnPropertyDescriptor(map, key)?.value, value, `${key}=${value}`);
        }
        assert.ok(Object.hasOwn(annotations, "sidecar.istio.io/status"));
      },
    ],
    [
      "prototype names as path parameters",
      () => validPod(),
      "/inject/__proto__/a/constructor/b/cluster/c1",
      (p) => {
        const proxy = p.spec.containers.find((c) => c.name === "istio-proxy") as {
          env: { name: string; value?: string }[];
        };
        const env = new Map(proxy.env.map((e) => [e.name, e.value]));
        assert.equal(env.get("__PROTO__"), "a");
        assert.equal(env.get("CONSTRUCTOR"), "b");
        assert.equal(env.get("ISTIO_META_CLUSTER_ID"), "c1");
      },
    ],
  ];

  for (const [what, object, path, check] of ACCEPTED) {
    it(`${what}: injected, keys kept as data; the next review is injected`, async () => {
      const sent = object();
      const { res, uid } = await post(s, sent, path);
      assert.equal(res.status, 200);
      const r = responseOf(res);
      assert.equal(r.uid, uid);
      assert.equal(r.allowed, true, JSON.stringify(r.status));
      const ops = JSON.parse(Buffer.from(String(r.patch), "base64").toString("utf8")) as jsonpatch.Operation[];
      // Applied, with validation, to the Pod exactly as sent (JSON, so __proto__ stays a key).
      const stored = jsonpatch.applyPatch(JSON.parse(JSON.stringify(sent)) as Json, ops, true, false).newDocument;
      check(stored as Json & { metadata: Json; spec: { containers: Json[] } });
      await assertBystanderInjected(s);
    });
  }

  it("3 MB of annotations (the API server allows 256 KiB): admitted as it is, unread; the API server refuses it", async () => {
    const sent = withMetadata(
      (m) => void (m.annotations = { "traffic.sidecar.istio.io/excludeOutboundPorts": `80,${"9".repeat(3_000_000)}` }),
    );
    const { res, uid } = await post(s, sent);
    assert.equal(res.status, 200);
    const r = responseOf(res);
    assert.equal(r.uid, uid);
    assert.equal(r.allowed, true, JSON.stringify(r.status));
    assert.equal(r.patch, undefined);
    assert.ok(
      (r.warnings as string[]).some((w) => /annotations are over 262144 bytes in all/.test(w)),
      JSON.stringify(r.warnings),
    );
    await assertBystanderInjected(s);
  });

  it("a hostile name, namespace, uid and operation: the log line stays small", async () => {
    const huge = (c: string): string => c.repeat(1_000_000);
    const review = podReview({
      uid: huge("u"),
      namespace: huge("n"),
      operation: huge("O"),
      object: withMetadata((m) => void (m.name = huge("p"))),
    });
    const res = await s.request({ headers: JSON_HEADERS, body: JSON.stringify(review) });
    assert.equal(res.status, 200);
    assert.equal(responseOf(res).allowed, true);
    await assertBystanderInjected(s);
  });

  it("/preview: a document too deep to show is refused with 400 naming where", async () => {
    const deep = withSpec(
      (s) =>
        void ((s.containers[0] as Json).securityContext = new RawJson(
          `${'{"a":'.repeat(500_000)}1${"}".repeat(500_000)}`,
        )),
    );
    const res = await s.request({ path: "/preview?namespace=demo", headers: JSON_HEADERS, body: toJson(deep) });
    assert.equal(res.status, 400);
    const error = (res.json() as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "ERR_PREVIEW_INPUT");
    assert.equal(error.message, "request body: nests deeper than 64 levels (limit: depth)");
    await assertBystanderInjected(s);
  });

  it("/preview: each malformed Pod is an entry with its error, not a failure of the preview", async () => {
    for (const [what, object, message] of REFUSED) {
      const pod = object();
      if (!pod || typeof pod !== "object" || Array.isArray(pod) || !("spec" in pod) || what.includes("levels deep"))
        continue;
      const body = toJson(pod);
      const res = await s.request({
        path: "/preview?namespace=demo&namespaceLabels=istio-injection=enabled",
        headers: JSON_HEADERS,
        body,
      });
      assert.equal(res.status, 200, `${what}: ${res.body.slice(0, 300)}`);
      const entry = (
        res.json() as { items: { decision: { inject: boolean }; error?: { code: string; message: string } }[] }
      ).items[0];
      assert.equal(entry?.decision.inject, false, what);
      assert.ok(
        entry?.error?.message.includes(message.replace("sidecar-injector: ", "")),
        `${what}: ${entry?.error?.message}`,
      );
      // The entry shows the object as given; around it, nothing grows with the input.
      const sent = body.length;
      assert.ok(res.body.length < sent + 16_384, `${what}: answer of ${res.body.length} bytes for ${sent}`);
    }
    await assertBystanderInjected(s);
  });

  it("no review was answered with, or logged as, an internal error; no log line is large", () => {
    const lines = s.logs.lines();
    assert.ok(lines.length >= REFUSED.length * 2, `${lines.length} log lines`);
    assert.deepEqual(
      lines.filter((l) => Number(l.level) >= 50),
      [],
    );
    const longest = Math.max(
      ...s.logs
        .text()
        .split("\n")
        .map((l) => l.length),
    );
    assert.ok(longest < 2048, `longest log line: ${longest} characters`);
  });
});

describe("a review nested deeper than any Pod", () => {
  it("is refused with 400 before JSON.parse (500 000 levels, 1 MB), and the next review is injected", async () => {
    const s = await startTestServer();
    try {
      const body = JSON.stringify(
        podReview({
          object: {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "x" },
            spec: { containers: [{ name: "a", image: "i" }] },
          },
        }),
      ).replace('"request":{', `"deep":${"[".repeat(500_000)}${"]".repeat(500_000)},"request":{`);
      const res = await s.request({ headers: JSON_HEADERS, body });
      assert.equal(res.status, 400);
      assert.deepEqual(res.json().error, {
        code: "ERR_NOT_ADMISSION_REVIEW",
        message: "request body is not an AdmissionReview: it nests deeper than 110 levels",
      });
      await assertBystanderInjected(s);
    } finally {
      await s.close();
    }
  });
});
