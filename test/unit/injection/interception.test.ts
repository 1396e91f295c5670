import assert from "node:assert/strict";
import { test } from "node:test";
import { excludeInboundPort } from "../../../src/injection/interception.js";

test("the status port is excluded from inbound capture once", () => {
  assert.equal(excludeInboundPort("15020", ""), "15020");
  assert.equal(excludeInboundPort("15020", "4, 5"), "4,5,15020");
  assert.equal(excludeInboundPort("15020", "15020,4"), "15020,4");
  assert.equal(excludeInboundPort("0", "4"), "4");
});
