// With an admin port, the webhook listener serves /inject and health only, and the admin
// listener /preview, /metrics and health only.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { JSON_HEADERS, podReview, removeTestCertificates, startTestServer } from "./helpers.js";

after(removeTestCertificates);

const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web" },
  spec: { containers: [{ name: "app", image: "nginx" }] },
};

describe("separate listeners", () => {
  it("the webhook listener answers /inject and health, and 404 for /preview and /metrics", async () => {
    const s = await startTestServer({ endpoints: "webhook" });
    try {
      assert.equal(
        (await s.request({ headers: JSON_HEADERS, body: JSON.stringify(podReview({ object: pod })) })).status,
        200,
      );
      assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
      assert.equal((await s.request({ method: "GET", path: "/readyz" })).status, 200);
      for (const [method, path] of [
        ["POST", "/preview"],
        ["GET", "/metrics"],
      ] as const) {
        const res = await s.request({ method, path, headers: JSON_HEADERS, body: JSON.stringify(pod) });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal((res.json().error as { code: string }).code, "ERR_NOT_FOUND");
      }
    } finally {
      await s.close();
    }
  });

  it("the admin listener answers /preview, /metrics and health, and 404 for /inject", async () => {
    const s = await startTestServer({ endpoints: "admin" });
    try {
      const preview = await s.request({
        path: "/preview?namespaceLabels=istio-injection=enabled",
        headers: JSON_HEADERS,
        body: JSON.stringify(pod),
      });
      assert.equal(preview.status, 200);
      assert.equal((await s.request({ method: "GET", path: "/metrics" })).status, 200);
      assert.equal((await s.request({ method: "GET", path: "/healthz" })).status, 200);
      const inject = await s.request({ headers: JSON_HEADERS, body: JSON.stringify(podReview({ object: pod })) });
      assert.equal(inject.status, 404);
    } finally {
      await s.close();
    }
  });
});
