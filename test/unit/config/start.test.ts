// A config is refused at start, or it injects Pods: the injector never starts on a config it
// would then fail Pods with, and every config the loader accepts renders a Pod.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { buildConfig } from "../../../src/config/load.js";
import { inject } from "../../../src/injection/inject.js";
import type { Pod } from "../../../src/kube/types.js";
import { ACCEPTED } from "./cases.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** Only a bound for a hung process; nothing is asserted about time. */
const SERVE_EXIT_BOUND_MS = 120_000;

/**
 * The built CLI (`npm test` builds first), as a user runs it: tsc's output, not the test
 * loader's, so a construct tsc emits differently (parameter properties around a super() in a
 * branch once made every config error a ReferenceError) fails here.
 */
async function serveWithConfig(
  text: string,
): Promise<{ code: number | string | null | undefined; stderr: string; killed: boolean }> {
  const dir = await mkdtemp(join(tmpdir(), "config-start-"));
  try {
    const file = join(dir, "config.yaml");
    await writeFile(file, text);
    return await new Promise((done) => {
      execFile(
        process.execPath,
        [join(REPO_ROOT, "dist", "cli.js"), "serve", "--config", file, "--host", "127.0.0.1", "--port", "0"],
        { cwd: dir, timeout: SERVE_EXIT_BOUND_MS, encoding: "utf8" },
        (err, _stdout, stderr) => done({ code: err === null ? 0 : err.code, stderr, killed: err?.killed === true }),
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("serve refuses to start on a bad config: exit 2 and every problem on stderr", async () => {
  const r = await serveWithConfig(
    'proxy:\n  resources:\n    requests: {cpu: "100 m"}\ninterception:\n  includeInboundPorts: http\n  excludeOutboundIPRanges: 10.0.0.0/33\n',
  );
  assert.equal(r.killed, false, "serve did not exit");
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /config .*config\.yaml: 3 errors:/);
  assert.match(r.stderr, /proxy\.resources\.requests\.cpu="100 m": is not a Kubernetes quantity/);
  assert.match(r.stderr, /interception\.includeInboundPorts="http": "http" is not a port number/);
  assert.match(r.stderr, /interception\.excludeOutboundIPRanges="10\.0\.0\.0\/33": "10\.0\.0\.0\/33" is not a CIDR/);
  assert.doesNotMatch(r.stderr, /ReferenceError|\n\s+at /, "a message, not a stack trace");
});

test("serve refuses to start on a config with one problem: exit 2, the problem on stderr, no stack", async () => {
  const r = await serveWithConfig("policy: bogus\n");
  assert.equal(r.killed, false, "serve did not exit");
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /config .*config\.yaml: policy="bogus": must be one of enabled \| disabled/);
  assert.doesNotMatch(r.stderr, /ReferenceError|\n\s+at /, "a message, not a stack trace");
});

describe("every accepted config injects a Pod, with a patch that applies", () => {
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "demo", labels: { app: "p" } },
    spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080 }] }] },
  };
  for (const row of ACCEPTED) {
    test(row.name, () => {
      const config = buildConfig(row.config);
      // The policy of the row may say no; ask for injection explicitly.
      const input: Pod = { ...pod, metadata: { ...pod.metadata, annotations: { "sidecar.istio.io/inject": "true" } } };
      const r = inject(input, { namespace: "demo" }, config);
      assert.equal(r.decision.inject, true);
      const out = jsonpatch.applyPatch(
        structuredClone(input),
        structuredClone(r.patch) as jsonpatch.Operation[],
        true,
        false,
      ).newDocument;
      assert.deepEqual(out, JSON.parse(JSON.stringify(r.pod)));
      const containers = [...(r.pod.spec?.initContainers ?? []), ...(r.pod.spec?.containers ?? [])];
      const proxy = containers.find((c) => c.name === "istio-proxy");
      assert.ok(proxy, "no istio-proxy");
      assert.equal(proxy.image, config.proxy.image);
    });
  }
});
