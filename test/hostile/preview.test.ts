// POST /preview against hostile callers, over real HTTPS: requests built to amplify (a
// 5,000-Pod List, thousands of namespaces), callers without the right to read what they ask
// for, and lookups that never answer. Each is refused or bounded by count, and the webhook
// still answers a bystander's AdmissionReview afterwards.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NamespaceAccess } from "../../src/admission/preview-lookup.js";
import type { KubeUser } from "../../src/kube/client.js";
import type { Pod } from "../../src/kube/types.js";
import { MAX_PREVIEW_NAMESPACES, MAX_PREVIEW_PODS, type PreviewEntry } from "../../src/preview.js";
import {
  podReview,
  responseOf,
  startTestServer,
  type ClientResponse,
  type TestServer,
} from "../unit/admission/helpers.js";

const ADMIN = "token-of-a-cluster-admin";
const VIEWER = "token-of-a-viewer-of-shop";

/** An API server that counts what it is asked; "payroll-ns" exists and is labelled, "nowhere-ns" does not. */
class CountingApi implements NamespaceAccess {
  tokenReviews = 0;
  accessReviews = 0;
  reads = 0;
  inFlight = 0;
  maxInFlight = 0;
  hang = false;
  readonly namespaces: Record<string, Record<string, string>> = {
    "payroll-ns": { "istio-injection": "enabled", team: "payments" },
    shop: { "istio-injection": "enabled" },
  };

  private async track<T>(f: () => T): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setImmediate(r));
      if (this.hang) await new Promise(() => undefined);
      return f();
    } finally {
      this.inFlight--;
    }
  }
  reviewToken(token: string): Promise<KubeUser | undefined> {
    this.tokenReviews++;
    return this.track(() =>
      token === ADMIN
        ? { username: "admin", groups: ["system:masters"] }
        : token === VIEWER
          ? { username: "viewer" }
          : undefined,
    );
  }
  canGetNamespace(user: KubeUser, name: string): Promise<boolean> {
    this.accessReviews++;
    return this.track(() => user.username === "admin" || name === "shop");
  }
  readNamespaceLabels(name: string): Promise<Record<string, string> | undefined> {
    this.reads++;
    return this.track(() => (Object.hasOwn(this.namespaces, name) ? this.namespaces[name] : undefined));
  }
  get calls(): number {
    return this.tokenReviews + this.accessReviews + this.reads;
  }
  reset(): void {
    this.tokenReviews = this.accessReviews = this.reads = this.maxInFlight = 0;
  }
}

const pod = (name: string, namespace: string): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace },
  spec: { containers: [{ name: "a", image: "i" }] },
});
const list = (items: readonly Pod[]): string => JSON.stringify({ apiVersion: "v1", kind: "List", items });

describe("/preview against hostile callers", () => {
  const api = new CountingApi();
  let s: TestServer;

  before(async () => {
    s = await startTestServer({ namespaceAccess: () => api, namespaceLookupTimeoutMs: 200 });
  });
  after(async () => {
    await s.close();
  });

  const post = (body: string, token?: string, query = ""): Promise<ClientResponse> =>
    s.request({
      path: `/preview${query}`,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body,
    });
  const errorOf = (res: ClientResponse): { code: string; message: string } =>
    (res.json() as { error: { code: string; message: string } }).error;
  const entries = (res: ClientResponse): PreviewEntry[] => {
    assert.equal(res.status, 200, res.body.slice(0, 500));
    return (res.json() as unknown as { items: PreviewEntry[] }).items;
  };

  test("a 2,000-Pod List (one-line Pods) is refused with its code, a small answer, no lookup", async () => {
    api.reset();
    const body = list(Array.from({ length: 2000 }, (_, i) => pod(`p${i}`, `ns-${i}`)));
    const res = await post(body, ADMIN);
    assert.equal(res.status, 413);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_TOO_MANY_PODS");
    assert.match(errorOf(res).message, new RegExp(`holds 2000 .* limit of ${MAX_PREVIEW_PODS} per request`));
    assert.ok(res.body.length < 1000, `${res.body.length} bytes answered`);
    assert.equal(api.calls, 0);
  });

  test("a 5,000-Pod List (400 KB) is refused before it is read in full: too many values for the event loop", async () => {
    api.reset();
    const body = list(Array.from({ length: 5000 }, (_, i) => pod(`p${i}`, `ns-${i}`)));
    assert.ok(body.length > 400_000, `${body.length} bytes`);
    const res = await post(body, ADMIN);
    assert.equal(res.status, 400);
    assert.equal(errorOf(res).code, "ERR_PREVIEW_INPUT");
    assert.match(errorOf(res).message, /more than 50000 .*limit/);
    assert.ok(res.body.length < 1000, `${res.body.length} bytes answered`);
    assert.equal(api.calls, 0);
  });

  test("Pods in 2,000 namespaces, with a token allowed everything: refused before a single API call", async () => {
    api.reset();
    // The Pods bound trips first for 2,000 Pods; 100 Pods in 100 namespaces trip the namespaces'.
    const many = await post(list(Array.from({ length: 2000 }, (_, i) => pod("p", `ns-${i}`))), ADMIN);
    assert.equal(errorOf(many).code, "ERR_PREVIEW_TOO_MANY_PODS");
    const spread = await post(list(Array.from({ length: MAX_PREVIEW_PODS }, (_, i) => pod("p", `ns-${i}`))), ADMIN);
    assert.equal(spread.status, 413);
    assert.equal(errorOf(spread).code, "ERR_PREVIEW_TOO_MANY_NAMESPACES");
    assert.match(errorOf(spread).message, /100 namespaces .* limit of 20 per request/);
    assert.equal(api.calls, 0);
  });

  test("at the namespaces' limit: one token review, at most two calls a namespace, at most 5 at once", async () => {
    api.reset();
    const got = entries(
      await post(list(Array.from({ length: MAX_PREVIEW_NAMESPACES }, (_, i) => pod("p", `lim-${i}`))), ADMIN),
    );
    assert.equal(got.length, 20);
    assert.equal(api.tokenReviews, 1);
    assert.equal(api.accessReviews, 20);
    assert.equal(api.reads, 20);
    assert.ok(api.maxInFlight <= 5, `${api.maxInFlight} in flight`);
  });

  test("an anonymous caller learns nothing: a labelled namespace and one that does not exist look alike", async () => {
    api.reset();
    const of = async (ns: string, token?: string): Promise<string> => {
      const [e] = entries(await post(JSON.stringify(pod("web", ns)), token));
      return JSON.stringify(e).replaceAll(ns, "NS");
    };
    for (const token of [undefined, "forged-token", VIEWER]) {
      const exists = await of("payroll-ns", token);
      const missing = await of("nowhere-ns", token);
      assert.equal(exists, missing, `caller ${token ?? "without a token"}`);
      assert.ok(!exists.includes("payments") && !exists.includes("istio-injection"), "no label of the namespace");
    }
    assert.equal(api.reads, 0, "nothing was read for them");
    assert.equal(api.tokenReviews, 2, "the forged and the viewer's token were reviewed once each");
  });

  test("lookups that never answer: every request ends at the deadline, said not known", async () => {
    api.hang = true;
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => post(JSON.stringify(pod("web", `slow-${i}`)), ADMIN)),
      );
      for (const [i, res] of answers.entries()) {
        assert.match(
          entries(res)[0]?.decision.reasons[0] ?? "",
          new RegExp(`^labels of namespace "slow-${i}" not known \\(not read within 200 ms\\)`),
        );
      }
    } finally {
      api.hang = false;
    }
  });

  test("a bystander's AdmissionReview is answered afterwards, and while a flood is refused", async () => {
    const flood = list(Array.from({ length: 2000 }, (_, i) => pod(`p${i}`, "default")));
    const [review, ...refused] = await Promise.all([
      s.request({
        path: "/inject",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(podReview({ namespace: "shop", object: pod("bystander", "shop") })),
      }),
      ...Array.from({ length: 4 }, () => post(flood)),
    ]);
    // Each is refused: read and counted, or, on a machine busy enough that the previews before
    // it (here and in the tests before) filled the event loop's share, shed before it is read.
    for (const r of refused) assert.ok(["ERR_PREVIEW_TOO_MANY_PODS", "ERR_OVERLOADED"].includes(errorOf(r).code));
    assert.equal(review?.status, 200);
    assert.equal(responseOf(review!).allowed, true);
    assert.equal(responseOf(review!).patchType, "JSONPatch");
    const after = await s.request({
      path: "/inject",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(podReview({ namespace: "shop", object: pod("later", "shop") })),
    });
    assert.equal(responseOf(after).allowed, true);
    assert.equal(responseOf(after).patchType, "JSONPatch");
  });
});
