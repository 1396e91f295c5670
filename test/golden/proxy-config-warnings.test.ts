// The webhook (the real HTTPS server of `serve`) says back an unknown ProxyConfig field as an
// AdmissionResponse warning, which kubectl prints, and still injects: Istio admits the field and
// drops it. A mistyped known field is refused, naming it, as Istio refuses it. /preview, sent
// the same review, shows the same warning.
import { podReview } from "../support/review.js";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runServe, type ServeHandle } from "../../src/main.js";

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const dir = mkdtempSync(join(tmpdir(), "golden-pc-warnings-"));
let server: ServeHandle | undefined;
let ca = "";

function post(path: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = `${server?.url ?? ""}${path}`;
    const req = request(url, { method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

function review(uid: string, proxyConfig: string): ReturnType<typeof podReview> {
  return podReview({
    uid,
    namespace: "shop",
    object: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web", annotations: { "proxy.istio.io/config": proxyConfig } },
      spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
    },
  });
}

interface Response {
  readonly uid: string;
  readonly allowed: boolean;
  readonly patch?: string;
  readonly warnings?: readonly string[];
  readonly status?: { readonly message?: string };
}

function responseOf(a: Answer): Response {
  assert.equal(a.status, 200);
  const r = (a.body as { response?: Response }).response;
  assert.ok(r !== undefined, JSON.stringify(a.body));
  return r;
}

const WARNING =
  'unknown ProxyConfig field "concurrenccy" in proxy.istio.io/config is ignored; did you mean "concurrency"?';

describe("unknown ProxyConfig fields through the webhook", () => {
  before(async () => {
    server = await runServe({ port: 0, certDir: join(dir, "certs"), logLevel: "silent" });
    ca = readFileSync(join(dir, "certs", "ca.crt"), "utf8");
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/inject: "concurrenccy: 2" is injected, with a warning naming the field and concurrency', async () => {
    const r = responseOf(await post("/inject", review("uid-typo", "concurrenccy: 2")));
    assert.equal(r.uid, "uid-typo");
    assert.equal(r.allowed, true);
    assert.deepEqual(r.warnings, [WARNING]);
    const ops = JSON.parse(Buffer.from(r.patch ?? "", "base64").toString("utf8")) as {
      path: string;
      value?: unknown;
    }[];
    const proxy = ops.find((o) => o.path === "/spec/containers/1");
    assert.ok(proxy !== undefined, "the sidecar is added");
    // Dropped from PROXY_CONFIG, as Istio drops it.
    assert.match(JSON.stringify(proxy.value), /"name":"PROXY_CONFIG","value":"\{\}\\n"/);
  });

  test('/inject: "concurrency: two" is refused, naming concurrency; "concurrency: 2" says nothing', async () => {
    const refused = responseOf(await post("/inject", review("uid-type", "concurrency: two")));
    assert.equal(refused.allowed, false);
    assert.match(refused.status?.message ?? "", /proxy\.istio\.io\/config=.*concurrency must be a whole number/);
    const fine = responseOf(await post("/inject", review("uid-fine", "concurrency: 2")));
    assert.equal(fine.allowed, true);
    assert.equal(fine.warnings, undefined);
  });

  test("/preview of the same review shows the same warning", async () => {
    const a = await post("/preview", review("uid-preview", "concurrenccy: 2"));
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 500));
    const entries = (a.body as { items?: { decision?: { inject?: boolean }; warnings?: string[] }[] }).items ?? [];
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.decision?.inject, true);
    assert.deepEqual(entries[0]?.warnings, [WARNING]);
  });
});
