import assert from "node:assert/strict";
import { test } from "node:test";
import { nativeSidecarsSupported } from "../../../src/kube/nodes.js";

test("native sidecars need every kubelet at 1.33 or later", () => {
  assert.equal(nativeSidecarsSupported(["v1.33.0", "v1.34.2-gke.100"]), true);
  assert.equal(nativeSidecarsSupported(["v1.33.0", "v1.32.9"]), false);
  assert.equal(nativeSidecarsSupported(["v2.0.0"]), true);
  assert.equal(nativeSidecarsSupported([]), false, "no nodes: nothing to go on");
  assert.equal(nativeSidecarsSupported(["unknown"]), false);
});
