// Lists are read a page at a time (client.ts): the nodes' versions (nativeSidecars: auto) and
// `check`'s lists (Pods, Namespaces, Deployments, webhook configurations, Nodes). Against a
// real HTTP server that pages its lists, every page is asked for with the token of the one
// before and the list's own query kept, and every item is counted; a list that never ends is
// given up, saying so; an expired token fails the read.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { describe, test } from "node:test";
import { answerJson, failureStatus, kubeApiForTests } from "./api-at.js";

/** The requests the server was asked: path and query. */
const asked: URL[] = [];
/** The pages it answers by continue token: the names of their items. */
let pages: Record<string, { names: string[]; next?: string }> = {};

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  asked.push(url);
  const page = pages[url.searchParams.get("continue") ?? ""];
  if (page === undefined) {
    answerJson(res, 410, { ...failureStatus(410, "Expired"), message: "the continue token has expired" });
    return;
  }
  answerJson(res, 200, {
    kind: "List",
    apiVersion: "v1",
    metadata: page.next === undefined ? {} : { continue: page.next },
    items: page.names.map((name) => ({
      metadata: { name, namespace: "ns", labels: { app: "x" } },
      spec: {
        containers: [{ name: "c", image: "i" }],
        template: { spec: { containers: [{ name: "c", image: "i" }] } },
      },
      status: { nodeInfo: { kubeletVersion: name } },
      webhooks: [],
    })),
  });
});

const kube = kubeApiForTests(server);

const THREE_PAGES = {
  "": { names: ["v1.33.1", "v1.34.0"], next: "t1" },
  t1: { names: ["v1.32.9"], next: "t2" },
  t2: { names: ["v1.34.2"] },
};
const ALL = ["v1.33.1", "v1.34.0", "v1.32.9", "v1.34.2"];

/** Each paged list: the path it reads, the query it keeps, and the names of what it returns. */
const lists: [string, string, Record<string, string>, () => Promise<string[]>][] = [
  ["the nodes' versions", "/api/v1/nodes", {}, () => kube.api.listKubeletVersions()],
  ["check: Nodes", "/api/v1/nodes", {}, () => kube.inspect.listNodeVersions()],
  [
    "check: Pods of all namespaces",
    "/api/v1/pods",
    { labelSelector: "app=x" },
    async () => (await kube.inspect.listPods(undefined, "app=x")).map((p) => p.name),
  ],
  [
    "check: Pods of a namespace",
    "/api/v1/namespaces/ns/pods",
    {},
    async () => (await kube.inspect.listPods("ns")).map((p) => p.name),
  ],
  ["check: Namespaces", "/api/v1/namespaces", {}, async () => (await kube.inspect.listNamespaces()).map((n) => n.name)],
  [
    "check: Deployments",
    "/apis/apps/v1/deployments",
    { labelSelector: "app=y" },
    async () => (await kube.inspect.listDeployments("app=y")).map((d) => d.name),
  ],
  [
    "check: MutatingWebhookConfigurations",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    {},
    async () => (await kube.inspect.listMutatingWebhookConfigurations()).map((w) => w.name),
  ],
];

for (const [what, path, query, read] of lists) {
  describe(`${what}, a page at a time`, () => {
    test("every page is read, each with the token of the one before and the list's own query", async () => {
      asked.length = 0;
      pages = THREE_PAGES;
      assert.deepEqual(await read(), ALL);
      assert.deepEqual(
        asked.map((u) => [u.pathname, Object.fromEntries(u.searchParams)]),
        [undefined, "t1", "t2"].map((token) => [
          path,
          { ...query, limit: "500", ...(token === undefined ? {} : { continue: token }) },
        ]),
      );
    });

    test("an expired token fails the read, with the API server's word for it", async () => {
      pages = { "": { names: ["v1.34.0"], next: "gone" } };
      await assert.rejects(read(), /: the continue token has expired$/);
    });
  });
}

describe("a list whose pages never end", () => {
  test("the nodes' versions: given up after 100 pages, saying so", async () => {
    asked.length = 0;
    pages = { "": { names: ["v1.34.0"], next: "again" }, again: { names: ["v1.34.0"], next: "again" } };
    await assert.rejects(kube.api.listKubeletVersions(), { message: "list Nodes: more than 50000 nodes" });
    assert.equal(asked.length, 100);
  });

  test("check's Pods: given up after 1,000 pages, saying so", { timeout: 60_000 }, async () => {
    asked.length = 0;
    pages = { "": { names: ["p"], next: "again" }, again: { names: ["p"], next: "again" } };
    await assert.rejects(kube.inspect.listPods(undefined), { message: "list Pods: more than 500000 Pods" });
    assert.equal(asked.length, 1000);
  });
});
