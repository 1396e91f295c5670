// Istio's own answers: istio-validation.jsonl holds [annotation, value, ADMIT|REFUSE] as
// pkg/kube/inject's AnnotationValidation table (istio/istio 86c9f01) answered them, built
// from that commit's source and run on each value. We must answer the same, but for the
// differences listed (and why) in KNOWN.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { parseProxyConfig } from "../../../src/injection/proxy-config.js";
import { validateAnnotations } from "../../../src/injection/validate.js";

const ROWS = readFileSync(new URL("istio-validation.jsonl", import.meta.url), "utf8")
  .split("\n")
  .filter((l) => l !== "")
  .map((l) => JSON.parse(l) as [string, string, "ADMIT" | "REFUSE"]);

const KNOWN = new Map([
  // A number that names no interception mode: Istio writes it into istio-init's -m, which fails.
  ["proxy.istio.io/config interceptionMode: 7", "REFUSE"],
  ["proxy.istio.io/config interceptionMode: -1", "REFUSE"],
  // readiness.status.sidecar.istio.io past int32: the table admits it, as here; the sidecar and
  // grpc-agent templates then write it into the probe's int32 field, where Istio fails decoding
  // the Pod, and so does the engine (template-parts.ts, probeSeconds; validate.test.ts).
]);

function ours(key: string, value: string): "ADMIT" | "REFUSE" {
  try {
    if (key === "proxy.istio.io/config") parseProxyConfig(value, DEFAULT_CONFIG);
    else validateAnnotations({ [key]: value });
    return "ADMIT";
  } catch {
    return "REFUSE";
  }
}

test("every value Istio's validation admits we admit, every one it refuses we refuse", () => {
  assert.ok(ROWS.length > 500);
  assert.ok(ROWS.some((r) => r[2] === "ADMIT") && ROWS.some((r) => r[2] === "REFUSE"));
  const differ: string[] = [];
  let knownSeen = 0;
  for (const [key, value, istio] of ROWS) {
    const known = KNOWN.get(`${key} ${value}`);
    if (known !== undefined) knownSeen += 1;
    const answer = ours(key, value);
    if (answer !== (known ?? istio)) differ.push(`${key}=${JSON.stringify(value)}: Istio ${istio}, we ${answer}`);
  }
  assert.deepEqual(differ, []);
  assert.equal(knownSeen, KNOWN.size, "every known difference is still in the table");
});
