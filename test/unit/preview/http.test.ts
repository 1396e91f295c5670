// POST /preview over real HTTPS: the server `serve` runs (runServe), its input and output
// forms, its errors and limits, and for every golden case the same patch as POST /inject,
// byte for byte. Then createApp with namespace lookups for callers with and without a token, a failing
// lookup and one that never answers.
import { podReview } from "../../support/review.js";
import { locatePods } from "../../support/pods.js";
import { ServedConfigs } from "../../support/served.js";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import type { Config } from "../../../src/config/types.js";
import type { NamespaceAccess } from "../../../src/admission/preview-lookup.js";
import { costlyAnnotations } from "../../support/costly-annotations.js";
import { INLINE_TEMPLATE_UNITS, TEMPLATE_OWN_UNITS } from "../../../src/injection/inline-cost.js";
import type { Pod } from "../../../src/kube/types.js";
import type { ServeHandle } from "../../../src/main.js";
import { parseManifest } from "../../../src/manifest.js";
import type { PreviewEntry } from "../../../src/preview.js";
import { goldenCases, goldenConfig, goldenInput } from "../../golden/cases.js";
import { send, startTestServer, type ClientResponse, type TestServer } from "../admission/helpers.js";

const served = new ServedConfigs("preview-http-");
const serverFor = (config: Config | undefined): Promise<ServeHandle> => served.serverFor(config);

after(() => served.close());

interface PreviewAnswer {
  items: PreviewEntry[];
}

async function post(
  path: string,
  body: string | Buffer,
  contentType: string | undefined,
  extra: Record<string, string> = {},
  config?: Config,
): Promise<ClientResponse> {
  const s = await serverFor(config);
  return send(s.port, served.ca, {
    path,
    headers: { ...(contentType ? { "content-type": contentType } : {}), ...extra },
    body,
  });
}

function items(res: ClientResponse): PreviewEntry[] {
  assert.equal(res.status, 200, res.body);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  return (JSON.parse(res.body) as PreviewAnswer).items;
}

/**
 * The coded error of a /preview refusal, after checking that the body is also the Kubernetes
 * Status kubectl prints (`Error from server (<reason>): <message>`): same message, the HTTP
 * status as its code. `plain`: an error answered before the /preview route (405), which is not.
 */
function errorOf(res: ClientResponse, plain = false): { code: string; message: string } {
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  const body = res.json() as {
    error: { code: string; message: string };
    kind?: string;
    apiVersion?: string;
    status?: string;
    message?: string;
    reason?: string;
    code?: number;
  };
  if (!plain) {
    assert.deepEqual(
      { kind: body.kind, apiVersion: body.apiVersion, status: body.status, message: body.message, code: body.code },
      { kind: "Status", apiVersion: "v1", status: "Failure", message: body.error.message, code: res.status },
    );
    assert.match(String(body.reason), /^[A-Z][A-Za-z]+$/);
  }
  return body.error;
}

const POD: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", labels: { app: "web" } },
  spec: { containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] },
};

const DEPLOYMENT_YAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: shop, image: example.com/shop:1}]
`;

function reviewOf(
  pod: unknown,
  namespace: string,
  uid = "0d6b4c1e-1111-4222-8333-444455556666",
): Record<string, unknown> {
  return podReview({ object: pod, namespace, uid });
}

/** What /inject answers for the Pod: its decoded patch as text ("[]" when none). */
async function injectPatch(pod: unknown, namespace: string, config?: Config): Promise<string> {
  const res = await post("/inject", JSON.stringify(reviewOf(pod, namespace)), "application/json", {}, config);
  assert.equal(res.status, 200, res.body);
  const response = (res.json() as { response: { allowed: boolean; patch?: string } }).response;
  return response.patch === undefined ? "[]" : Buffer.from(response.patch, "base64").toString("utf8");
}

describe("POST /preview on the server serve runs", () => {
  test("a Pod in JSON: JSON answer, one entry, the patch /inject answers", async () => {
    const entries = items(await post("/preview?namespace=demo", JSON.stringify(POD), "application/json"));
    assert.equal(entries.length, 1);
    const e = entries[0]!;
    assert.deepEqual([e.kind, e.name, e.namespace, e.decision.inject], ["Pod", "web", "demo", true]);
    assert.match(e.decision.reasons[0] ?? "", /^labels of namespace "demo" not known/, "no cluster access: assumed");
    assert.equal(e.decision.reasons.at(-1), "policy enabled: injected");
    assert.equal(JSON.stringify(e.patch), await injectPatch(POD, "demo"));
    assert.equal(e.proxy?.nodeId, "sidecar~<pod IP>~web.demo~demo.svc.cluster.local");
    assert.ok(e.interception.summary.length > 0);
  });

  test("YAML bodies, with every YAML content type, and several documents", async () => {
    const text = `${stringify(POD)}---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n${DEPLOYMENT_YAML}`;
    for (const type of [
      "application/yaml",
      "application/x-yaml",
      "text/yaml",
      "text/x-yaml",
      "application/yaml; charset=utf-8",
    ]) {
      const entries = items(await post("/preview", text, type));
      assert.deepEqual(
        entries.map((e) => `${e.kind}/${e.name}`),
        ["Pod/web", "Deployment/shop"],
        type,
      );
    }
  });

  test("Accept: application/yaml answers YAML, the same document as JSON", async () => {
    const body = JSON.stringify(POD);
    const asJson = JSON.parse((await post("/preview", body, "application/json")).body) as PreviewAnswer;
    for (const accept of ["application/yaml", "text/yaml", "application/json;q=0.5, application/yaml"]) {
      const res = await post("/preview", body, "application/json", { accept });
      assert.equal(res.status, 200);
      assert.match(String(res.headers["content-type"]), /^application\/yaml/, accept);
      assert.ok(res.body.startsWith("items:"), res.body.slice(0, 40));
      assert.deepEqual(parse(res.body), asJson);
    }
  });

  test("an Accept that allows neither, or anything, gets JSON", async () => {
    for (const accept of ["*/*", "application/json", "text/html", "application/yaml;q=0.1, application/json"]) {
      const res = await post("/preview", JSON.stringify(POD), "application/json", { accept });
      assert.equal(res.status, 200);
      assert.match(String(res.headers["content-type"]), /^application\/json/, accept);
      assert.doesNotThrow(() => JSON.parse(res.body));
    }
  });

  test("?format=diff: a unified diff as text/plain", async () => {
    const res = await post("/preview?format=diff&namespace=demo", DEPLOYMENT_YAML, "application/yaml", {
      accept: "application/yaml",
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain/);
    const lines = res.body.split("\n");
    assert.equal(lines[0], "--- Deployment/shop (demo) as given");
    assert.equal(lines[1], "+++ Deployment/shop (demo) as stored");
    assert.match(lines[2] ?? "", /^@@ -\d+(,\d+)? \+\d+(,\d+)? @@$/);
    assert.ok(lines.some((l) => /^\+ +- name: istio-proxy$/.test(l)));
  });

  test("?format=summary: preview -o summary's text, as text/plain, whatever the Accept", async () => {
    const path = "/preview?format=summary&namespace=shop&namespaceLabels=istio-injection%3Denabled";
    const res = await post(path, DEPLOYMENT_YAML, "application/yaml", { accept: "application/json" });
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain/);
    const lines = res.body.split("\n");
    assert.equal(lines[0], "Deployment/shop (namespace shop): injected");
    assert.equal(lines[1], "  - namespace shop has istio-injection=enabled: the API server calls the injector");
    assert.ok(
      lines.some((l) => /^ {2}adds .*istio-proxy/.test(l)),
      res.body,
    );
    assert.ok(!res.body.includes('"patch"'), "no JSON in the summary");
    assert.ok(lines.includes("  policy mode: handled by the MutatingAdmissionPolicy"), res.body);
  });

  test("?namespace= and ?namespaceLabels=: the API server's selection from the given labels", async () => {
    const selected = items(
      await post(
        "/preview?namespace=shop&namespaceLabels=istio-injection%3Denabled,team%3Da",
        JSON.stringify(POD),
        "application/json",
      ),
    )[0]!;
    assert.equal(selected.namespace, "shop");
    assert.deepEqual(selected.decision.reasons, [
      "namespace shop has istio-injection=enabled: the API server calls the injector",
      "policy enabled: injected",
    ]);

    const unlabelled = items(
      await post("/preview?namespace=shop&namespaceLabels=team%3Da", JSON.stringify(POD), "application/json"),
    )[0]!;
    assert.equal(unlabelled.decision.inject, false);
    assert.match(unlabelled.decision.reasons[0] ?? "", /^namespace shop has no istio-injection or istio.io\/rev label/);
    assert.deepEqual(unlabelled.patch, []);

    const canary = items(
      await post(
        "/preview?namespace=shop&namespaceLabels=istio.io/rev%3Dcanary",
        JSON.stringify(POD),
        "application/json",
      ),
    )[0]!;
    assert.equal(canary.decision.inject, false);
    assert.match(canary.decision.reasons[0] ?? "", /istio.io\/rev=canary, this injector serves revision default/);
  });

  test("the given labels are those of the given namespace: a manifest in another one is not judged by them", async () => {
    const elsewhere = { ...POD, metadata: { ...POD.metadata, namespace: "other" } };
    const e = items(
      await post(
        "/preview?namespace=shop&namespaceLabels=istio-injection%3Ddisabled",
        JSON.stringify(elsewhere),
        "application/json",
      ),
    )[0]!;
    assert.equal(e.namespace, "other");
    assert.match(e.decision.reasons[0] ?? "", /^labels of namespace "other" not known/);
  });

  /** `at` is previewed; `past` is refused with 400 ERR_PREVIEW_INPUT, its message matching `says`. */
  const previewedUpTo = async (at: string, past: string, says: string): Promise<void> => {
    assert.equal(items(await post("/preview", at, "application/json")).length, 1);
    const res = await post("/preview", past, "application/json");
    assert.equal(res.status, 400);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_INPUT");
    assert.match(errorOf(res).message, new RegExp(`^Pod/\\S+: ${says}.*sidecar-injector preview -f FILE$`));
  };

  // Each annotation that costs by its length, at its longest inline value and one past it.
  for (const { key, max, valueOf } of costlyAnnotations()) {
    test(`${key} longer than the webhook reads on its event loop: 400, preview it offline`, async () => {
      const annotated = (chars: number): string =>
        JSON.stringify({ ...POD, metadata: { ...POD.metadata, annotations: { [key]: valueOf(chars) } } });
      assert.equal(valueOf(max).length, max);
      await previewedUpTo(annotated(max), annotated(max + 1), `its ${key} is ${max + 1} characters, `);
    });
  }

  test(`templates × (containers + ${TEMPLATE_OWN_UNITS}) past ${INLINE_TEMPLATE_UNITS}: 400, preview it offline`, async () => {
    const pod = (containers: number): string =>
      JSON.stringify({
        ...POD,
        metadata: { ...POD.metadata, annotations: { "inject.istio.io/templates": "sidecar,grpc-agent" } },
        spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: "nginx" })) },
      });
    const most = INLINE_TEMPLATE_UNITS / 2 - TEMPLATE_OWN_UNITS;
    const units = 2 * (most + 1 + TEMPLATE_OWN_UNITS);
    await previewedUpTo(
      pod(most),
      pod(most + 1),
      `its 2 templates and ${most + 1} containers \\(init containers and those its overrides record counted\\) are ${units} units of work `,
    );
  });

  test("a Pod, or a workload's template, whose annotations are null (an empty annotations: in YAML) is previewed", async () => {
    const pod =
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\nspec:\n  containers: [{name: web, image: nginx}]\n";
    const deployment = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, annotations: null}\nspec:\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}, annotations: null}\n    spec: {containers: [{name: shop, image: nginx}]}\n`;
    for (const body of [pod, deployment]) {
      const res = await post("/preview?namespace=demo", body, "application/yaml");
      assert.equal(res.status, 200, res.body);
      assert.equal(items(res).length, 1);
    }
  });

  test("a namespace label that is not key=value: 400", async () => {
    const res = await post("/preview?namespaceLabels=istio-injection", JSON.stringify(POD), "application/json");
    assert.equal(res.status, 400);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_INPUT");
    assert.match(errorOf(res).message, /istio-injection.*key=value/);
  });

  test("Content-Type text/plain or form-encoded: 415, a Status with reason UnsupportedMediaType", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      const res = await post("/preview", JSON.stringify(POD), type);
      assert.equal(res.status, 415, type);
      assert.equal(errorOf(res).code, "ERR_UNSUPPORTED_MEDIA_TYPE");
      assert.equal(res.json().reason, "UnsupportedMediaType");
    }
  });

  test("no Content-Type (kubectl create --raw -f): the body is read as JSON or YAML by its first character", async () => {
    const s = await serverFor(undefined);
    // The request kubectl sends: POST, the file's bytes chunked, no Content-Type, this Accept.
    const kubectl = { accept: "application/json, */*" };
    const asJson = await send(s.port, served.ca, {
      path: "/preview?namespaceLabels=istio-injection=enabled",
      headers: kubectl,
      body: JSON.stringify(POD),
      chunked: true,
    });
    const asYaml = await send(s.port, served.ca, {
      path: "/preview?namespaceLabels=istio-injection=enabled",
      headers: kubectl,
      body: stringify(POD),
      chunked: true,
    });
    const [fromJson] = items(asJson);
    const [fromYaml] = items(asYaml);
    assert.equal(fromJson?.decision.inject, true);
    assert.deepEqual(fromYaml?.patch, fromJson?.patch);
    // One that is neither: a Status kubectl prints as "Error from server (BadRequest): …".
    const bad = await send(s.port, served.ca, {
      path: "/preview",
      headers: kubectl,
      body: "kind: [Pod",
      chunked: true,
    });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).code, "ERR_PREVIEW_INPUT");
    assert.equal(bad.json().reason, "BadRequest");
    assert.match(errorOf(bad).message, /not valid YAML/);
  });

  test("a charset other than UTF-8: 415; UTF-8 spelled either way: accepted", async () => {
    const refused = await post("/preview", JSON.stringify(POD), "application/yaml; charset=latin1");
    assert.equal(refused.status, 415);
    assert.match(errorOf(refused).message, /charset/);
    for (const type of ["application/json; charset=utf-8", 'application/yaml; charset="UTF8"']) {
      assert.equal((await post("/preview", JSON.stringify(POD), type)).status, 200, type);
    }
  });

  test("an empty body: 400 ERR_EMPTY_BODY", async () => {
    for (const type of ["application/json", "application/yaml"]) {
      const res = await post("/preview", "", type);
      assert.equal(res.status, 400);
      assert.equal(errorOf(res).code, "ERR_EMPTY_BODY");
    }
  });

  test("a body with no Pod, workload or AdmissionReview: 400, naming what is missing", async () => {
    for (const [body, type] of [
      ['{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}', "application/json"],
      ["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "application/yaml"],
      ["[1, 2]", "application/json"],
      ["# only a comment\n", "application/yaml"],
    ] as const) {
      const res = await post("/preview", body, type);
      assert.equal(res.status, 400, body);
      assert.equal(errorOf(res).code, "ERR_PREVIEW_INPUT");
      assert.match(errorOf(res).message, /no Pod, workload or AdmissionReview/);
    }
  });

  test("a body that is neither JSON nor YAML: 400", async () => {
    const res = await post("/preview", '{ "kind": [', "application/json");
    assert.equal(res.status, 400);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_INPUT");
  });

  test("an AdmissionReview of a Pod CREATE without the Pod: an entry refused as /inject refuses it, not a crash", async () => {
    const entries = items(await post("/preview", JSON.stringify(reviewOf(undefined, "demo")), "application/json"));
    assert.equal(entries[0]?.error?.code, "ERR_INVALID_POD");
    assert.match(entries[0]?.error?.message ?? "", /^request\.object: /);
  });

  test("a Pod the injector cannot read is an entry with its error, with 200", async () => {
    const entries = items(
      await post(
        "/preview",
        JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "x" }, spec: { containers: "app" } }),
        "application/json",
      ),
    );
    assert.equal(entries[0]?.error?.code, "ERR_INVALID_POD");
  });

  test("an invalid annotation: 200, an entry with the error, as /inject refuses", async () => {
    const bad = { ...POD, metadata: { ...POD.metadata, annotations: { "sidecar.istio.io/proxyCPU": "lots" } } };
    const e = items(await post("/preview?namespace=demo", JSON.stringify(bad), "application/json"))[0]!;
    assert.equal(e.decision.inject, false);
    assert.equal(e.error?.code, "ERR_INVALID_ANNOTATION");
    assert.match(e.decision.reasons.at(-1) ?? "", /the API server would refuse to create the pod$/);
    const res = await post("/inject", JSON.stringify(reviewOf(bad, "demo")), "application/json");
    assert.equal((res.json() as { response: { allowed: boolean } }).response.allowed, false);
  });

  test("over 6 MiB: 413, declared or streamed", async () => {
    const big = JSON.stringify({
      ...POD,
      metadata: { ...POD.metadata, annotations: { filler: "x".repeat(6 * 1024 * 1024) } },
    });
    const s = await serverFor(undefined);
    const declared = await send(s.port, served.ca, {
      path: "/preview",
      headers: { "content-type": "application/json" },
      body: big,
    });
    assert.equal(declared.status, 413);
    assert.equal(errorOf(declared).code, "ERR_BODY_TOO_LARGE");
    const streamed = await send(s.port, served.ca, {
      path: "/preview",
      headers: { "content-type": "application/json" },
      body: big,
      chunked: true,
    });
    assert.equal(streamed.status, 413);
  });

  test("a Pod as large as etcd stores (1.5 MiB) is answered; one near the body limit passes the answer's", async () => {
    // Filled in an env value: annotations are held to the API server's 256 KiB.
    const filled = (n: number): string =>
      JSON.stringify({
        ...POD,
        spec: { containers: [{ name: "app", image: "nginx", env: [{ name: "FILLER", value: "x".repeat(n) }] }] },
      });
    const large = filled(1536 * 1024);
    assert.equal(items(await post("/preview", large, "application/json"))[0]?.decision.inject, true);
    const body = filled(6 * 1024 * 1024 - 1024);
    assert.ok(Buffer.byteLength(body) <= 6 * 1024 * 1024);
    const res = await post("/preview", body, "application/json");
    assert.equal(res.status, 413);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_ANSWER_TOO_LARGE");
    assert.match(errorOf(res).message, /limit of 4194304 bytes \(\d+ bytes after 1 of 1 entries\)/);
  });

  test("GET /preview: 405", async () => {
    const s = await serverFor(undefined);
    const res = await send(s.port, served.ca, { method: "GET", path: "/preview" });
    assert.equal(res.status, 405);
    assert.equal(errorOf(res, true).code, "ERR_METHOD_NOT_ALLOWED");
  });

  test("no side effects: the injection metrics do not move", async () => {
    const s = await serverFor(undefined);
    const metrics = async (): Promise<string> =>
      (await send(s.port, served.ca, { method: "GET", path: "/metrics" })).body
        .split("\n")
        .filter((l) => l.startsWith("sidecar_injection_"))
        .join("\n");
    const before = await metrics();
    items(await post("/preview", JSON.stringify(POD), "application/json"));
    await post("/preview", "", "application/json");
    assert.equal(await metrics(), before);
    await injectPatch(POD, "demo");
    assert.notEqual(await metrics(), before, "while /inject is counted");
  });
});

/** Pods and pod templates of the documents, each as the API server would send it. */
describe("/preview and /inject answer the same patch for every golden case", () => {
  for (const name of goldenCases()) {
    test(name, async () => {
      const config = goldenConfig(name);
      const input = goldenInput(name);
      const pods = locatePods(parseManifest(input, name));
      assert.ok(pods.length > 0);
      // The manifest, as YAML: one entry per Pod, each with /inject's patch for it.
      const entries = items(await post("/preview", input, "application/yaml", {}, config));
      assert.equal(entries.length, pods.length);
      for (const [i, p] of pods.entries()) {
        const fromInject = await injectPatch(p.pod, p.namespace, config);
        assert.equal(JSON.stringify(entries[i]!.patch), fromInject, `${name} ${p.kind}/${p.name}: manifest`);
        // The very AdmissionReview /inject got, sent to /preview.
        const review = items(
          await post("/preview", JSON.stringify(reviewOf(p.pod, p.namespace)), "application/json", {}, config),
        );
        assert.equal(review.length, 1);
        assert.equal(JSON.stringify(review[0]!.patch), fromInject, `${name} ${p.kind}/${p.name}: AdmissionReview`);
      }
    });
  }
});

describe("/preview with namespace lookups for the caller (createApp)", () => {
  let s: TestServer;
  const calls: string[] = [];
  const labels: Record<string, Record<string, string>> = {
    on: { "istio-injection": "enabled" },
    off: { "istio-injection": "disabled" },
    plain: {},
    "mesh-system": { "istio-injection": "enabled" },
  };
  const TOKEN = "alice-token-3f9a";
  let mode: "answer" | "hang" | "fail" = "answer";
  const access: NamespaceAccess = {
    reviewToken: async (token) => {
      calls.push("tokenreview");
      return token === TOKEN ? { username: "alice", groups: ["dev"] } : undefined;
    },
    canGetNamespace: async (user, ns) => {
      calls.push(`access ${ns}`);
      return user.username === "alice" && ns !== "secret";
    },
    readNamespaceLabels: (ns) => {
      calls.push(`labels ${ns}`);
      if (mode === "hang") return new Promise(() => undefined);
      if (mode === "fail") return Promise.reject(new Error('namespaces "x" is forbidden'));
      return Promise.resolve(Object.hasOwn(labels, ns) ? labels[ns] : undefined);
    },
  };

  before(async () => {
    s = await startTestServer({
      ownNamespace: "mesh-system",
      namespaceLookupTimeoutMs: 100,
      namespaceAccess: () => access,
    });
  });
  after(async () => {
    await s.close();
  });

  /** `token` null: no Authorization header. */
  const previewIn = async (namespace: string, query = "", token: string | null = TOKEN): Promise<PreviewEntry> => {
    const res = await s.request({
      path: `/preview?namespace=${namespace}${query}`,
      headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(POD),
    });
    assert.equal(res.status, 200, res.body);
    return (JSON.parse(res.body) as PreviewAnswer).items[0]!;
  };

  test("a caller allowed to get the namespace: its labels decide the selection", async () => {
    mode = "answer";
    calls.length = 0;
    assert.equal(
      (await previewIn("on")).decision.reasons[0],
      "namespace on has istio-injection=enabled: the API server calls the injector",
    );
    assert.match((await previewIn("off")).decision.reasons[0] ?? "", /istio-injection=disabled: no webhook matches/);
    assert.match((await previewIn("plain")).decision.reasons[0] ?? "", /has no istio-injection or istio.io\/rev label/);
    // One token review (cached for the later requests), then access and labels per namespace.
    assert.deepEqual(calls, [
      "tokenreview",
      "access on",
      "labels on",
      "access off",
      "labels off",
      "access plain",
      "labels plain",
    ]);
    calls.length = 0;
    await previewIn("on");
    assert.deepEqual(calls, [], "answered from the cache");
  });

  test("no bearer token: no lookup at all, and the preview says why the labels are not known", async () => {
    calls.length = 0;
    const e = await previewIn("off", "", null);
    assert.deepEqual(calls, []);
    assert.match(e.decision.reasons[0] ?? "", /^labels of namespace "off" not known \(no bearer token presented/);
    assert.equal(e.decision.inject, true, "assumed called, as without cluster access");
    assert.ok(!JSON.stringify(e).includes("disabled"), "nothing of the namespace's labels");
  });

  test("a token the API server does not authenticate: one token review, no access review, no read", async () => {
    calls.length = 0;
    const e = await previewIn("off", "", "mallory-token");
    assert.deepEqual(calls, ["tokenreview"]);
    assert.match(e.decision.reasons[0] ?? "", /not known \(the bearer token presented is not authenticated/);
  });

  test("authenticated but not allowed to get the namespace: not read, said not known", async () => {
    calls.length = 0;
    labels.secret = { "istio-injection": "enabled" };
    const e = await previewIn("secret");
    assert.deepEqual(calls, ["access secret"]);
    assert.match(
      e.decision.reasons[0] ?? "",
      /^labels of namespace "secret" not known \(the caller may not get this namespace\)/,
    );
  });

  test("a namespace that does not exist, for a caller that may get it: said so", async () => {
    mode = "answer";
    const e = await previewIn("ghost");
    assert.match(
      e.decision.reasons[0] ?? "",
      /^labels of namespace "ghost" not known \(the namespace does not exist\)/,
    );
    assert.equal(e.decision.inject, true);
  });

  test("labels given in the request win over the lookup, for that namespace", async () => {
    mode = "answer";
    calls.length = 0;
    const e = await previewIn("off", "&namespaceLabels=istio-injection%3Denabled");
    assert.equal(e.decision.inject, true);
    assert.deepEqual(calls, []);
  });

  test("the injector's own namespace is never selected", async () => {
    mode = "answer";
    const e = await previewIn("mesh-system");
    assert.equal(e.decision.inject, false);
    assert.match(e.decision.reasons[0] ?? "", /namespace mesh-system is excluded/);
  });

  test("a read that never answers: given up at the deadline, labels not known", async () => {
    mode = "hang";
    const e = await previewIn("hanging");
    assert.match(e.decision.reasons[0] ?? "", /^labels of namespace "hanging" not known \(not read within 100 ms\)/);
    assert.equal(e.decision.inject, true);
  });

  test("a read that fails: labels not known, and a warning in the log without the token", async () => {
    mode = "fail";
    const e = await previewIn("failing");
    assert.match(
      e.decision.reasons[0] ?? "",
      /^labels of namespace "failing" not known \(the API server could not be asked\)/,
    );
    const warned = s.logs.lines().find((l) => l.msg === "namespace labels not read for /preview");
    assert.ok(warned, s.logs.text());
    assert.equal(warned.namespace, '"failing"');
    assert.match(String(warned.err), /forbidden/);
    assert.ok(!s.logs.text().includes(TOKEN), "the token is never logged");
  });
});
