// What a Pod will cost the engine, read before it is injected (src/injection/inline-cost.ts):
// the templates' work counts the containers an overrides record adds, where the Pod is
// answered and whether it is refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import { inject } from "../../../src/injection/inject.js";
import {
  INLINE_OVERRIDES_CHARS,
  INLINE_TEMPLATE_UNITS,
  inlineCostOver,
  MAX_TEMPLATE_UNITS,
  RECORDED_CONTAINER_CHARS,
  TEMPLATE_OWN_UNITS,
} from "../../../src/injection/inline-cost.js";
import { InjectionError } from "../../../src/injection/types.js";
import type { Pod } from "../../../src/kube/types.js";

const templates = (n: number): string =>
  Array.from({ length: n }, (_, i) => (i % 2 ? "grpc-agent" : "sidecar")).join(",");
/** An overrides record of `n` containers the Pod does not have. */
const recorded = (n: number): string =>
  JSON.stringify({ containers: Array.from({ length: n }, (_, i) => ({ name: `r${i}` })) });
const pod = (annotations: Record<string, string>, containers = 1): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", annotations },
  spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: "nginx" })) },
});

test("inline: the containers an overrides record can add count, as many as its length allows", () => {
  const names = 23;
  assert.ok(names * (1 + TEMPLATE_OWN_UNITS) <= INLINE_TEMPLATE_UNITS);
  assert.equal(inlineCostOver(pod({ "inject.istio.io/templates": templates(names) })), undefined);
  const record = recorded(240);
  assert.ok(record.length <= INLINE_OVERRIDES_CHARS);
  const over = inlineCostOver(
    pod({ "inject.istio.io/templates": templates(names), "proxy.istio.io/overrides": record }),
  );
  const counted = 1 + Math.floor(record.length / RECORDED_CONTAINER_CHARS);
  assert.equal(
    over,
    `its ${names} templates and ${counted} containers (init containers and those its overrides record counted) are ${names * (counted + TEMPLATE_OWN_UNITS)} units of work (templates × (containers + ${TEMPLATE_OWN_UNITS})), more than the ${INLINE_TEMPLATE_UNITS}`,
  );
});

test("inline: a Pod whose annotations or spec are null, or not objects, costs what a Pod without them does", () => {
  for (const odd of [
    { metadata: { annotations: null } },
    { metadata: null, spec: null },
    { metadata: "x", spec: { containers: "x" } },
    null,
    "pod",
  ]) {
    assert.equal(inlineCostOver(odd), undefined, JSON.stringify(odd));
  }
});

test("refused: the templates' work counts the containers the overrides record adds", () => {
  const names = 16;
  const extra = Math.ceil(MAX_TEMPLATE_UNITS / names) - TEMPLATE_OWN_UNITS; // with the Pod's one: one past
  assert.throws(
    () =>
      inject(
        pod({ "inject.istio.io/templates": templates(names), "proxy.istio.io/overrides": recorded(extra) }),
        { namespace: "demo" },
        DEFAULT_CONFIG,
      ),
    (e: unknown) =>
      e instanceof InjectionError &&
      e.code === "ERR_INVALID_ANNOTATION" &&
      e.message.includes(`its ${names} templates and ${extra + 1} containers`),
  );
});

test("refused without a templates annotation: the sidecar template over too many containers, an invalid Pod", () => {
  const containers = MAX_TEMPLATE_UNITS - TEMPLATE_OWN_UNITS + 1;
  assert.throws(
    () => inject(pod({}, containers), { namespace: "demo" }, DEFAULT_CONFIG),
    (e: unknown) =>
      e instanceof InjectionError &&
      e.code === "ERR_INVALID_POD" &&
      e.message.startsWith("too many containers for the sidecar template: its 1 template and "),
  );
});
