// For every golden case, the webhook (the real HTTPS server of `serve`) is sent each Pod as the
// API server would send it, and its patch, applied with validation to that Pod, must give
// exactly what the CLI prints: the webhook, the CLI (and so the preview) agree.
import { podReview } from "../support/review.js";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import jsonpatch from "fast-json-patch";
import { stringify } from "yaml";
import type { Config } from "../../src/config/types.js";
import type { Pod } from "../../src/kube/types.js";
import { runServe, type ServeHandle } from "../../src/main.js";
import { injectManifest } from "../../src/manifest.js";
import { goldenCases, goldenConfig, goldenInput, inputPods, podAsCreated } from "./cases.js";

interface Review {
  response: { uid: string; allowed: boolean; patch?: string; patchType?: string; status?: { message?: string } };
}

const dir = mkdtempSync(join(tmpdir(), "golden-webhook-"));
const servers = new Map<string, ServeHandle>();
let ca = "";

async function serverFor(config: Config, name: string): Promise<ServeHandle> {
  const key = JSON.stringify(config);
  let s = servers.get(key);
  if (!s) {
    const configFile = join(dir, `${name}.config.yaml`);
    writeFileSync(configFile, stringify(config));
    s = await runServe({ configFile, port: 0, certDir: join(dir, "certs"), logLevel: "silent" });
    ca = readFileSync(join(dir, "certs", "ca.crt"), "utf8");
    servers.set(key, s);
  }
  return s;
}

function post(url: string, body: unknown): Promise<Review> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/inject`,
      { method: "POST", ca, headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          try {
            assert.equal(res.statusCode, 200);
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Review);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const CONTROLLER_LABELS = ["pod-template-hash", "deploymentconfig"];

describe("webhook agrees with the CLI on every golden case", () => {
  after(async () => {
    for (const s of servers.values()) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const name of goldenCases()) {
    test(name, async () => {
      const config = goldenConfig(name);
      const input = goldenInput(name);
      const originals = inputPods(name);
      const cli = injectManifest(input, name, "default", config);
      const server = await serverFor(config, name);
      assert.equal(originals.length, cli.injected.length);
      for (const [i, item] of cli.injected.entries()) {
        const original = (originals[i] as (typeof originals)[number]).pod;
        const pod = item.kind === "Pod" ? original : podAsCreated(item.kind, item.name, original);
        const uid = `uid-${name}-${i}`;
        const review = await post(server.url, podReview({ uid, namespace: item.namespace, object: pod }));
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
