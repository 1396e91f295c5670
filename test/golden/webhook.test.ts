// For every golden case, the webhook (the real HTTPS server of `serve`) is sent each Pod as the
// API server would send it, and its patch, applied with validation to that Pod, must give
// exactly what the CLI prints: the webhook, the CLI (and so the preview) agree.
import { JSON_HEADERS, send } from "../support/https.js";
import { podReview } from "../support/review.js";
import { ServedConfigs } from "../support/served.js";
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import jsonpatch from "fast-json-patch";
import type { Pod } from "../../src/kube/types.js";
import { injectManifest } from "../../src/manifest.js";
import { goldenCases, goldenConfig, goldenInput, inputPods, podAsCreated } from "./cases.js";

interface Review {
  response: { uid: string; allowed: boolean; patch?: string; patchType?: string; status?: { message?: string } };
}

const served = new ServedConfigs("golden-webhook-");

async function post(port: number, body: unknown): Promise<Review> {
  const res = await send(port, served.ca, { path: "/inject", headers: JSON_HEADERS, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  return JSON.parse(res.body) as Review;
}

const CONTROLLER_LABELS = ["pod-template-hash", "deploymentconfig"];

describe("webhook agrees with the CLI on every golden case", () => {
  after(() => served.close());

  for (const name of goldenCases()) {
    test(name, async () => {
      const config = goldenConfig(name);
      const input = goldenInput(name);
      const originals = inputPods(name);
      const cli = injectManifest(input, name, "default", config);
      const server = await served.serverFor(config);
      assert.equal(originals.length, cli.injected.length);
      for (const [i, item] of cli.injected.entries()) {
        const original = (originals[i] as (typeof originals)[number]).pod;
        const pod = item.kind === "Pod" ? original : podAsCreated(item.kind, item.name, original);
        const uid = `uid-${name}-${i}`;
        const review = await post(server.port, podReview({ uid, namespace: item.namespace, object: pod }));
        assert.equal(review.response.uid, uid);
        assert.equal(review.response.allowed, true, review.response.status?.message);
        let got: Pod = structuredClone(pod);
        if (item.result.decision.inject) {
          assert.equal(review.response.patchType, "JSONPatch");
          const ops = JSON.parse(
            Buffer.from(review.response.patch ?? "", "base64").toString("utf8"),
          ) as jsonpatch.Operation[];
          got = jsonpatch.applyPatch(got, ops, true, false).newDocument;
        } else {
          assert.equal(review.response.patch, undefined, `${name}: a skipped pod gets no patch`);
        }
        const want = JSON.parse(JSON.stringify(item.result.pod)) as Pod;
        assert.deepEqual(got.spec, want.spec, `${name} ${item.kind}/${item.name}: spec`);
        assert.deepEqual(
          got.metadata?.annotations,
          want.metadata?.annotations,
          `${name} ${item.kind}/${item.name}: annotations`,
        );
        const labels = { ...(got.metadata?.labels ?? {}) };
        for (const l of CONTROLLER_LABELS) if (!want.metadata?.labels?.[l]) delete labels[l];
        // The CLI writes a CronJob's job template metadata (as kube-inject does); its Pods also carry their template's
        // labels.
        if (item.kind === "CronJob")
          for (const l of Object.keys(original.metadata?.labels ?? {}))
            if (!want.metadata?.labels?.[l]) delete labels[l];
        assert.deepEqual(labels, want.metadata?.labels ?? {}, `${name} ${item.kind}/${item.name}: labels`);
      }
    });
  }
});
