// The nodes' versions (nativeSidecars: auto) are read a page at a time (client.ts): against a
// real HTTP server that pages its Node list, every page is asked for with the token of the one
// before, and every node's version is counted; a list that never ends is given up, saying so.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { describe, test } from "node:test";
import { answerJson, failureStatus, kubeApiForTests } from "./api-at.js";

/** The queries the server was asked, and the pages it answers by continue token. */
const asked: URLSearchParams[] = [];
let pages: Record<string, { versions: string[]; next?: string }> = {};

const server = createServer((req, res) => {
  const query = new URL(req.url ?? "/", "http://x").searchParams;
  asked.push(query);
  const page = pages[query.get("continue") ?? ""];
  if (page === undefined) {
    answerJson(res, 410, failureStatus(410, "Expired"));
    return;
  }
  answerJson(res, 200, {
    kind: "NodeList",
    apiVersion: "v1",
    metadata: page.next === undefined ? {} : { continue: page.next },
    items: page.versions.map((v, i) => ({
      metadata: { name: `node-${i}` },
      status: { nodeInfo: { kubeletVersion: v } },
    })),
  });
});

const kube = kubeApiForTests(server);

describe("the nodes' versions, a page at a time", () => {
  test("every page is read, each with the token of the one before", async () => {
    asked.length = 0;
    pages = {
      "": { versions: ["v1.33.1", "v1.34.0"], next: "t1" },
      t1: { versions: ["v1.32.9"], next: "t2" },
      t2: { versions: ["v1.34.2"] },
    };
    assert.deepEqual(await kube.api.listKubeletVersions(), ["v1.33.1", "v1.34.0", "v1.32.9", "v1.34.2"]);
    assert.deepEqual(
      asked.map((q) => [q.get("limit"), q.get("continue")]),
      [
        ["500", null],
        ["500", "t1"],
        ["500", "t2"],
      ],
    );
  });

  test("a list whose pages never end is given up after 100 pages, saying so", async () => {
    asked.length = 0;
    pages = { "": { versions: ["v1.34.0"], next: "again" }, again: { versions: ["v1.34.0"], next: "again" } };
    await assert.rejects(kube.api.listKubeletVersions(), { message: "list Nodes: more than 50000 nodes" });
    assert.equal(asked.length, 100);
  });

  test("an expired token fails the read: it is read again whole at the next poll", async () => {
    pages = { "": { versions: ["v1.34.0"], next: "gone" } };
    await assert.rejects(kube.api.listKubeletVersions(), /list Nodes/);
  });
});
