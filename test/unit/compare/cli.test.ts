// `sidecar-injector preview --compare-with` (the built CLI) against a stand-in istiod over
// real TLS: every outcome and its exit status — identical (0), different (1, each path with
// both values), a refusal on one side (1, which side and the message) or both (0), and the
// troubles (2, naming the URL): no answer in time, an answer over the size limit, an answer
// that is no AdmissionReview, an HTTP error, a certificate that does not name the host, a
// peer that refuses connections; the service form through a stand-in API server's proxy; and
// the usage errors.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { runCli, type Ran } from "../../support/run.js";
import { startStandInApi, sendJson as sendApiJson } from "../../support/stand-in-api.js";
import { asOurs, ISTIOD_NAME, ourAnswer, sendJson, startStandInIstiod, type StandInIstiod } from "./stand-in-istiod.js";

const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: shop}
spec:
  containers: [{name: sh, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
`;

let istiod: StandInIstiod;
let dir = "";
let file = "";

before(async () => {
  istiod = await startStandInIstiod();
  dir = mkdtempSync(join(tmpdir(), "compare-cli-"));
  file = join(dir, "app.yaml");
  writeFileSync(file, MANIFEST);
});
after(async () => {
  await istiod.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  istiod.handler = asOurs();
  istiod.received.length = 0;
});

/** The CLI with the stand-in's CA and name, no kubeconfig (nothing else to trust). */
function compare(args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runCli(
    [
      "preview",
      "-f",
      file,
      "--compare-with",
      istiod.url,
      "--compare-ca",
      istiod.caFile,
      "--tls-server-name",
      ISTIOD_NAME,
      ...args,
    ],
    { env: { ...process.env, KUBECONFIG: join(dir, "none"), ...env } },
  );
}

interface Entry {
  kind: string;
  name: string;
  namespace: string;
  result: string;
  ours: { answer: string; message?: string; patchOperations: number };
  istiod: { answer: string; message?: string };
  differences: { path: string; ours?: unknown; istiod?: unknown; equivalent?: string }[];
  differencesTotal: number;
  differencesEssential: number;
}

function items(r: Ran): Entry[] {
  const parsed = JSON.parse(r.stdout) as { comparedWith: string; items: Entry[] };
  assert.equal(parsed.comparedWith, istiod.url);
  return parsed.items;
}

describe("preview --compare-with: outcomes", () => {
  test("identical: istiod answers as this injector does; each Pod sent once, as the API server sends it", async () => {
    const r = await compare(["-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const got = items(r);
    assert.deepEqual(
      got.map((e) => [e.kind, e.name, e.namespace, e.result, e.ours.answer, e.istiod.answer]),
      [
        ["Deployment", "web", "shop", "identical", "injected", "injected"],
        ["Pod", "debug", "shop", "identical", "injected", "injected"],
      ],
    );
    // The Service is not sent; the Deployment's Pod is its ReplicaSet's, as the controller makes it.
    assert.equal(istiod.received.length, 2);
    const sent = istiod.received as { request: Record<string, unknown> & { object: Record<string, unknown> } }[];
    const deployment = sent.find((s) => s.request.name === undefined);
    assert.ok(deployment, "the Deployment's Pod has no name, a generateName");
    assert.equal(deployment.request.operation, "CREATE");
    assert.equal(deployment.request.namespace, "shop");
    assert.equal(deployment.request.dryRun, true);
    assert.deepEqual(deployment.request.kind, { group: "", version: "v1", kind: "Pod" });
    assert.match(String(deployment.request.uid), /^[0-9a-f-]{36}$/);
    const meta = deployment.request.object.metadata as Record<string, unknown>;
    assert.equal(meta.generateName, "web-5f6b7c8d9-");
    assert.deepEqual(meta.labels, { app: "web", "pod-template-hash": "5f6b7c8d9" });
    assert.equal((meta.ownerReferences as { kind: string }[])[0]?.kind, "ReplicaSet");
    const spec = deployment.request.object.spec as { containers: Record<string, unknown>[] };
    assert.deepEqual(spec.containers[0]?.resources, {}, "containers carry resources: {} as Go writes them");
  });

  test("summary: one line per Pod and the count", async () => {
    const r = await compare(["-o", "summary"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `Deployment/web (namespace shop): identical\nPod/debug (namespace shop): identical\n2 Pods compared with ${istiod.url}: 2 identical\n`,
    );
  });

  test("different: each path with ours and istiod's value; exit 1", async () => {
    istiod.handler = (review, req, res) => {
      const answer = ourAnswer(review);
      const object = (review as { request: { name?: string } }).request;
      if (object.name === "debug" && answer.response?.patch) {
        const ops = JSON.parse(Buffer.from(answer.response.patch, "base64").toString()) as unknown[];
        ops.push({ op: "add", path: "/metadata/labels/extra", value: "istiod" });
        ops.push({ op: "replace", path: "/spec/containers/0/image", value: "busybox:istiod" });
        answer.response.patch = Buffer.from(JSON.stringify(ops)).toString("base64");
      }
      sendJson(res, answer);
    };
    const r = await compare(["-o", "json"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: 1 of 2 Pods would not be stored or refused as istiod stores or refuses them\n$/);
    const [web, debug] = items(r);
    assert.equal(web?.result, "identical");
    assert.equal(debug?.result, "different");
    assert.equal(debug?.differencesEssential, 2);
    assert.deepEqual(debug?.differences, [
      { path: ".metadata.labels.extra", istiod: "istiod" },
      { path: ".spec.containers[name=sh].image", ours: "busybox", istiod: "busybox:istiod" },
    ]);
    const summary = await compare(["-o", "summary"]);
    assert.match(summary.stdout, /^Pod\/debug \(namespace shop\): different: 2 differences\n/m);
    assert.match(
      summary.stdout,
      /^ {2}\.spec\.containers\[name=sh\]\.image: ours "busybox", istiod "busybox:istiod"$/m,
    );
    const diff = await compare(["-o", "diff"]);
    assert.equal(diff.code, 1);
    assert.match(
      diff.stdout,
      /^--- Pod\/debug \(namespace shop\) by istiod\n\+\+\+ Pod\/debug \(namespace shop\) by sidecar-injector\n/m,
    );
    assert.match(diff.stdout, /^-\s+(- )?image: busybox:istiod\n\+\s+(- )?image: busybox$/m);
    assert.match(diff.stdout, /^# Deployment\/web \(namespace shop\): identical$/m);
  });

  test("refused by istiod only, and by both: which side, each message; exit 1, then 0", async () => {
    const refuse = (review: unknown): unknown => ({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid: (review as { request: { uid: string } }).request.uid,
        allowed: false,
        status: { code: 400, message: "injection failed: istiod says no" },
      },
    });
    istiod.handler = (review, _req, res) => sendJson(res, refuse(review));
    const r = await compare(["-o", "summary"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /^Pod\/debug \(namespace shop\): refused by istiod only\n {2}istiod: refused: "injection failed: istiod says no"\n {2}ours: {3}injected \(\d+ patch operations\)\n/m,
    );

    // A Pod both refuse: an invalid annotation this injector refuses too.
    const bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, annotations: {sidecar.istio.io/proxyCPU: lots}}\nspec: {containers: [{name: a, image: a}]}\n",
    );
    const both = await runCli(
      [
        "preview",
        "-f",
        bad,
        "--compare-with",
        istiod.url,
        "--compare-ca",
        istiod.caFile,
        "--tls-server-name",
        ISTIOD_NAME,
        "-o",
        "json",
      ],
      { env: { ...process.env, KUBECONFIG: join(dir, "none") } },
    );
    assert.equal(both.code, 0, both.stderr);
    const [entry] = JSON.parse(both.stdout).items as Entry[];
    assert.equal(entry?.result, "both-refused");
    assert.equal(entry?.istiod.message, "injection failed: istiod says no");
    assert.match(
      entry?.ours.message ?? "",
      /^sidecar-injector: invalid annotation sidecar\.istio\.io\/proxyCPU="lots"/,
    );

    // Refused by this injector only.
    istiod.handler = asOurs((a) => {
      if (a.response) a.response = { uid: a.response.uid, allowed: true };
    });
    const ours = await runCli(
      [
        "preview",
        "-f",
        bad,
        "--compare-with",
        istiod.url,
        "--compare-ca",
        istiod.caFile,
        "--tls-server-name",
        ISTIOD_NAME,
        "-o",
        "summary",
      ],
      { env: { ...process.env, KUBECONFIG: join(dir, "none") } },
    );
    assert.equal(ours.code, 1);
    assert.match(
      ours.stdout,
      /^Pod\/bad \(namespace default\): refused by this injector only\n {2}istiod: allowed unchanged\n {2}ours: {3}refused: /m,
    );
  });

  test("istiod's patch that does not apply to the Pod sent is a difference naming the operation", async () => {
    istiod.handler = asOurs((a) => {
      if (a.response?.patch)
        a.response.patch = Buffer.from(
          JSON.stringify([{ op: "replace", path: "/spec/nothing/here", value: 1 }]),
        ).toString("base64");
    });
    const r = await compare(["-o", "json"]);
    assert.equal(r.code, 1);
    const [web] = items(r);
    assert.equal(web?.result, "different");
    assert.equal(web?.istiod.answer, "invalid-patch");
    assert.match(
      web?.istiod.message ?? "",
      /^operation 0 \(replace "\/spec\/nothing\/here"\) does not apply to the Pod sent: /,
    );
  });
});

describe("preview --compare-with: istiod unreachable or not answering a review (exit 2, naming the URL)", () => {
  const troubles: [string, (res: ServerResponse, review: unknown) => void, RegExp][] = [
    [
      "an HTML page",
      (res) => (res.writeHead(200, { "content-type": "text/html" }), res.end("<html>hello</html>")),
      /the answer is not JSON \(it starts "<html>hello<\/html>"\)/,
    ],
    [
      "JSON that is no AdmissionReview",
      (res) => sendJson(res, { kind: "Status" }),
      /the answer is not an AdmissionReview/,
    ],
    [
      "another uid",
      (res, review) => sendJson(res, { ...ourAnswer(review, (a) => a.response && (a.response.uid = "someone-else")) }),
      /the response's uid "someone-else" is not the request's [0-9a-f-]{36}/,
    ],
    [
      "a patch that is not base64",
      (res, review) =>
        sendJson(
          res,
          ourAnswer(review, (a) => a.response && (a.response.patch = "%%%")),
        ),
      /response\.patch is not base64/,
    ],
    [
      "an operation that is no JSON Patch",
      (res, review) =>
        sendJson(
          res,
          ourAnswer(
            review,
            (a) => a.response && (a.response.patch = Buffer.from('[{"op":"merge","path":"/x"}]').toString("base64")),
          ),
        ),
      /response\.patch\[0\]\.op: "merge" is not a JSON Patch operation/,
    ],
    [
      "an HTTP error",
      (res) => sendJson(res, { message: "internal trouble" }, 500),
      /answered HTTP 500: "internal trouble"/,
    ],
  ];
  for (const [what, answer, message] of troubles) {
    test(what, async () => {
      istiod.handler = (review, _req, res) => answer(res, review);
      const r = await compare(["-o", "json"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, "");
      assert.ok(r.stderr.startsWith(`error: ${istiod.url}`), r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
    });
  }

  test("no answer within --compare-timeout", async () => {
    istiod.handler = () => {
      // never answers; the connection is closed by the client's deadline
    };
    const r = await compare(["--compare-timeout", "300ms"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /: no answer within 300 ms\n$/);
  });

  test("an answer over 6 MiB is cut there, declared or streamed", async () => {
    const big = "x".repeat(6 * 1024 * 1024 + 1);
    istiod.handler = (_review, _req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(big) });
      res.end(big);
    };
    const declared = await compare();
    assert.equal(declared.code, 2);
    assert.match(declared.stderr, /: the answer is larger than 6291456 bytes; cut there\n$/);
    istiod.handler = (_review, _req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < 7; i++) res.write("x".repeat(1024 * 1024));
      res.end();
    };
    const streamed = await compare();
    assert.equal(streamed.code, 2);
    assert.match(streamed.stderr, /: the answer is larger than 6291456 bytes; cut there\n$/);
  });

  test("a certificate that does not name the host: said, with the flag that fixes it", async () => {
    const r = await runCli(["preview", "-f", file, "--compare-with", istiod.url, "--compare-ca", istiod.caFile], {
      env: { ...process.env, KUBECONFIG: join(dir, "none") },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Hostname\/IP does not match certificate's altnames/);
    assert.match(
      r.stderr,
      /give the name istiod's certificate carries with --tls-server-name, e.g\. istiod\.istio-system\.svc/,
    );
    const wrongName = await compare(["--tls-server-name", "istiod.other.svc"]);
    assert.equal(wrongName.code, 2);
    assert.match(wrongName.stderr, /does not match certificate's altnames/);
    assert.equal(istiod.received.length, 0, "nothing was sent over an unverified connection");
  });

  test("a certificate from another CA; --insecure-skip-tls-verify checks nothing", async () => {
    const other = join(dir, "other-ca.crt");
    const { createCa } = await import("../../../src/certs/authority.js");
    const ca = await createCa({ validityMs: 3_600_000, now: new Date() });
    writeFileSync(other, ca.certs[0]?.certPem ?? "");
    const r = await compare(["--compare-ca", other]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unable to verify the first certificate|self.signed|unable to get local issuer/i);
    assert.match(r.stderr, /verified against --compare-ca /);
    const insecure = await runCli(
      ["preview", "-f", file, "--compare-with", istiod.url, "--insecure-skip-tls-verify", "-o", "json"],
      { env: { ...process.env, KUBECONFIG: join(dir, "none") } },
    );
    assert.equal(insecure.code, 0, insecure.stderr);
  });

  test("nothing listening", async () => {
    const r = await runCli(
      ["preview", "-f", file, "--compare-with", "https://127.0.0.1:1/inject", "--insecure-skip-tls-verify"],
      { env: { ...process.env, KUBECONFIG: join(dir, "none") } },
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: https:\/\/127\.0\.0\.1:1\/inject: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  });
});

describe("preview --compare-with service/NS/NAME: through the API server's service proxy", () => {
  test("the review goes to /api/v1/namespaces/NS/services/https:NAME:PORT/proxy/PATH with the kubeconfig's token", async () => {
    const seen: { url: string; auth: string | undefined }[] = [];
    const api = await startStandInApi(
      dir,
      (req, res) => {
        if (req.method !== "POST") return false;
        seen.push({ url: req.url ?? "", auth: req.headers.authorization });
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => sendApiJson(res, 200, ourAnswer(JSON.parse(Buffer.concat(chunks).toString()))));
        return true;
      },
      { token: "t0ken" },
    );
    try {
      const env = { ...process.env, KUBECONFIG: api.kubeconfig };
      const r = await runCli(
        ["preview", "-f", file, "--compare-with", "service/istio-system/istiod", "-o", "summary"],
        { env },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^2 Pods compared with service istio-system\/istiod:443\/inject \(through the API server's proxy at http:\/\/127\.0\.0\.1:\d+\): 2 identical$/m,
      );
      assert.deepEqual(
        seen.map((s) => [s.url, s.auth]),
        [
          ["/api/v1/namespaces/istio-system/services/https:istiod:443/proxy/inject", "Bearer t0ken"],
          ["/api/v1/namespaces/istio-system/services/https:istiod:443/proxy/inject", "Bearer t0ken"],
        ],
      );
      // A port and a path (Istio's path parameters) are kept.
      seen.length = 0;
      const withPath = await runCli(
        ["preview", "-f", file, "--compare-with", "service/istio-system/istiod:15017/inject/cluster/c1", "-o", "json"],
        { env },
      );
      assert.equal(withPath.code, 0, withPath.stderr);
      assert.equal(seen[0]?.url, "/api/v1/namespaces/istio-system/services/https:istiod:15017/proxy/inject/cluster/c1");
    } finally {
      await api.close();
    }
  });
});

describe("preview --compare-with: usage", () => {
  const cases: [string[], RegExp][] = [
    [
      ["--compare-with", "http://istiod/inject"],
      /--compare-with must be an https:\/\/ URL or service\/NAMESPACE\/NAME\[:PORT\]/,
    ],
    [
      ["--compare-with", "service/istio-system"],
      /--compare-with service\/NAMESPACE\/NAME\[:PORT\]\[\/PATH\], not "service\/istio-system"/,
    ],
    [["--compare-with", "https://x/inject", "--server", "https://y"], /--compare-with and --server exclude each other/],
    [
      ["--compare-with", "https://x/inject", "--cacert", "ca.crt"],
      /istiod's CA is given with --compare-ca, not --cacert/,
    ],
    [
      ["--compare-with", "https://x/inject", "--namespace-labels", "a=b"],
      /--namespace-labels does not go with --compare-with/,
    ],
    [
      ["--compare-with", "https://x/inject", "--compare-timeout", "soon"],
      /--compare-timeout must be a duration such as 500ms or 30s/,
    ],
    [
      ["--compare-with", "https://x/inject", "--insecure-skip-tls-verify", "--compare-ca", "ca.crt"],
      /--insecure-skip-tls-verify and --compare-ca exclude each other/,
    ],
    [["--compare-with", "service/istio-system/istiod", "--compare-ca", "ca.crt"], /go with a --compare-with URL/],
    [["--compare-ca", "ca.crt"], /--compare-ca and --compare-timeout go with --compare-with/],
  ];
  for (const [args, message] of cases) {
    test(args.join(" "), async () => {
      const r = await runCli(["preview", "-f", file, ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    });
  }

  test("--compare-ca that holds no certificate, or is missing", async () => {
    const empty = join(dir, "empty.crt");
    writeFileSync(empty, "");
    const r = await runCli(["preview", "-f", file, "--compare-with", istiod.url, "--compare-ca", empty]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--compare-ca .*empty\.crt: no PEM certificate in it/);
    const gone = await runCli([
      "preview",
      "-f",
      file,
      "--compare-with",
      istiod.url,
      "--compare-ca",
      join(dir, "gone.crt"),
    ]);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /--compare-ca .*gone\.crt: ENOENT/);
  });

  test("a manifest with no Pod", async () => {
    const svc = join(dir, "svc.yaml");
    writeFileSync(svc, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n");
    const r = await runCli([
      "preview",
      "-f",
      svc,
      "--compare-with",
      istiod.url,
      "--compare-ca",
      istiod.caFile,
      "--tls-server-name",
      ISTIOD_NAME,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: no Pod, workload or AdmissionReview of a Pod CREATE found in the input\n$/);
  });
});
