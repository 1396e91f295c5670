// End-to-end: the injector's watches (src/kube/watch.ts) against a real kube-apiserver. A
// watch asks the API server to end it after a few seconds here (5-10 min as shipped); the API
// server does, and the watch goes on from where it was: every change after it is delivered,
// nothing is delivered twice, and its caller never sees it end.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { createKubeApi } from "../../src/kube/client.js";
import { clusterForSuite, type Cluster } from "./cluster.js";

const { cluster, skip } = await clusterForSuite("watch end-to-end tests");
const NS = "e2e-watch";
/** The least time each watch asks the API server for: it asks 2 or 3 s. */
const ASKED_S = 2;

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

after(async () => {
  await cluster?.stop();
});

/** Resolves once `check` holds, polled every 50 ms; fails after `ms`. */
async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

describe("a watch of the real API server", { skip }, () => {
  test("outlives the API server's ends at the time it asked, missing and repeating nothing", async () => {
    await kube().createNamespace(NS);
    const secret = (v: string): object => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "ca", namespace: NS },
      data: { v: Buffer.from(v).toString("base64") },
    });
    const created = await kube().request("POST", `/api/v1/namespaces/${NS}/secrets`, secret("1"));
    assert.equal(created.status, 201, created.text);

    const kc = new KubeConfig();
    kc.loadFromFile(kube().kubeconfigPath);
    const api = createKubeApi(kc, { watchTimeoutSeconds: ASKED_S });
    const seen: (string | undefined)[] = [];
    const ends: unknown[] = [];
    const stop = await api.watchSecret(
      NS,
      "ca",
      (s) => seen.push(s === undefined ? undefined : Buffer.from(s.data?.v ?? "", "base64").toString()),
      (err) => ends.push(err ?? "ended"),
    );
    try {
      await until("the Secret as it is", () => seen.length === 1);
      // Past the longest time a watch asks (3 s), twice: the API server has ended it at least
      // twice meanwhile, and it went on each time.
      await new Promise((done) => setTimeout(done, 2 * (2 * ASKED_S - 1) * 1000 + 500));
      const replaced = await kube().request("PUT", `/api/v1/namespaces/${NS}/secrets/ca`, secret("2"));
      assert.equal(replaced.status, 200, replaced.text);
      await until("the change", () => seen.length === 2);
      const deleted = await kube().request("DELETE", `/api/v1/namespaces/${NS}/secrets/ca`);
      assert.equal(deleted.status, 200, deleted.text);
      await until("the deletion", () => seen.length === 3);
      assert.deepEqual(seen, ["1", "2", undefined]);
      assert.deepEqual(ends, [], "the watch ended for its caller");
    } finally {
      stop();
    }
  });
});
