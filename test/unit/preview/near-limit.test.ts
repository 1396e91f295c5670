// /preview of a body near the 6 MiB body limit: what it costs is bounded by sizes, not by luck.
// A List of 100 Pods (the Pod limit) whose bulk is one long value per Pod: the diff answer holds
// only the lines injection changes and their context (never the long values), the JSON and YAML
// answers, which repeat every Pod, are refused once past the answer limit with no more than one
// entry built beyond it; and the YAML answer, built entry by entry, is the text of all entries
// written at once.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { buildConfig } from "../../../src/config/load.js";
import {
  formatPreview,
  MAX_PREVIEW_ANSWER_BYTES,
  MAX_PREVIEW_PODS,
  parsePreviewInput,
  preview,
  PreviewLimitError,
  type PreviewEntry,
} from "../../../src/preview.js";

const MIB = 1024 * 1024;
const BODY_LIMIT = 6 * MIB;
const config = buildConfig({});

function pod(i: number, padding: string): unknown {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `web-${i}`, namespace: "shop", labels: { app: "web" } },
    spec: {
      containers: [
        {
          name: "web",
          image: "nginx:1.27",
          ports: [{ containerPort: 8080 }],
          env: [
            { name: "BLOB", value: padding || "small" },
            ...Array.from({ length: 7 }, (_, k) => ({ name: `VAR_${k}`, value: `v${k}` })),
          ],
          readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
        },
      ],
    },
  };
}

function listBody(padBytes: number): string {
  const pad = padBytes > 0 ? "x".repeat(padBytes) : "";
  return JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: Array.from({ length: MAX_PREVIEW_PODS }, (_, i) => pod(i, pad)),
  });
}

async function entriesOf(body: string): Promise<PreviewEntry[]> {
  return preview(parsePreviewInput(body, "json"), { config, givenLabels: { "istio-injection": "enabled" } });
}

const pad = Math.floor((BODY_LIMIT - 64 * 1024 - listBody(0).length) / MAX_PREVIEW_PODS);
const large = listBody(pad);

describe("/preview of a List near the body limit", () => {
  test("the body is near 6 MiB and every Pod is injected", async () => {
    assert.ok(large.length > BODY_LIMIT - 128 * 1024 && large.length < BODY_LIMIT, `${large.length} bytes`);
    const entries = await entriesOf(large);
    assert.equal(entries.length, MAX_PREVIEW_PODS);
    assert.ok(entries.every((e) => e.decision.inject));
  });

  test("the diff answer holds the changed lines, never the long values, and as many lines as without them", async () => {
    const diff = formatPreview(await entriesOf(large), "diff", MAX_PREVIEW_ANSWER_BYTES);
    const small = formatPreview(await entriesOf(listBody(0)), "diff", MAX_PREVIEW_ANSWER_BYTES);
    assert.ok(!diff.includes("x".repeat(1024)), "no long value in any hunk");
    assert.equal(
      diff.split("\n").length,
      small.split("\n").length,
      "the same lines as the List without the long values",
    );
    assert.equal(diff.match(/^--- Pod\/web-\d+ \(shop\) as given$/gm)?.length, MAX_PREVIEW_PODS);
    assert.ok(
      Buffer.byteLength(diff) < MIB,
      `${Buffer.byteLength(diff)} bytes of diff for a ${large.length}-byte body`,
    );
  });

  test("the JSON and YAML answers are refused past the answer limit, at most one entry beyond it built", async () => {
    const entries = await entriesOf(large);
    const entryBytes = Buffer.byteLength(JSON.stringify(entries[0], null, 2)) * 1.2;
    for (const format of ["json", "yaml"] as const) {
      let refused: PreviewLimitError | undefined;
      try {
        formatPreview(entries, format, MAX_PREVIEW_ANSWER_BYTES);
      } catch (e) {
        if (!(e instanceof PreviewLimitError)) throw e;
        refused = e;
      }
      assert.equal(refused?.code, "ERR_PREVIEW_ANSWER_TOO_LARGE", format);
      assert.ok(
        (refused?.count ?? Infinity) <= MAX_PREVIEW_ANSWER_BYTES + entryBytes,
        `${format}: ${refused?.count} bytes built`,
      );
      assert.match(refused?.message ?? "", / after \d+ of 100 entries\)/);
    }
  });

  test("the YAML answer, entry by entry, is the text of all entries at once (multi-line and blank-line values too)", async () => {
    const entries = await preview(
      [pod(1, "line one\n\nline three\n  indented\n"), pod(2, "  leading and trailing  "), pod(3, "")],
      { config, givenLabels: { "istio-injection": "enabled" } },
    );
    assert.equal(
      formatPreview(entries, "yaml"),
      stringify({ items: entries }, { lineWidth: 0, aliasDuplicateObjects: false }),
    );
  });
});
