// Proof, against a real kube-apiserver: every golden and differential Pod in the policy's
// domain is stored identically whether the MutatingAdmissionPolicy injected it (webhook not
// installed) or our webhook did (policy not bound). Each config is run in two phases, policy
// then webhook, creating the same Pods under the same names and namespaces, reading back what
// was stored and deleting it. Compared: the whole stored Pod except what the API server makes
// unique per creation —
// - metadata.uid, resourceVersion, creationTimestamp: new for every object;
// - metadata.name of a Pod created by generateName: a random suffix (webhooks see it empty);
// - managedFields[].time: the clock;
// - the ServiceAccount admission's token volume, kube-api-access-<random>, and its mounts:
//   the name is random (the volume itself is compared).
// Pods outside the domain, and the webhook's decision not to inject, are counted, not compared.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { servedRevision } from "../../src/injection/istio.js";
import type { Pod } from "../../src/kube/types.js";
import type { PolicyOptions, RenderedPolicy } from "../../src/policy/render.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { OWN_NAMESPACE, renderChartForUrl, webhookConfigOf } from "./chart.js";
import { freePort, Injector, testCertificates, type TestCerts } from "./injector.js";
import { createAll, createPod, deleteAll, waitUntil } from "./policy-api.js";
import { differentialGroup, goldenGroups, madeGroup, type ConfigGroup, type CorpusPod } from "./policy-corpus.js";
import { PROBE_CASES_OUTSIDE } from "./policy-probe-pods.js";
import { PROMETHEUS_CASES_OUTSIDE } from "./policy-prometheus-pods.js";
import { RESOURCE_CASES_OUTSIDE } from "./policy-resource-pods.js";
import { TRAFFIC_CASES_OUTSIDE } from "./policy-traffic-pods.js";

const PROBE_NAMESPACE = "policy-probe";
const MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

const { cluster, skip } = await clusterForSuite("MutatingAdmissionPolicy proof", {
  mutatingAdmissionPolicy: true,
  serviceAccountAdmission: true,
});

type Obj = Record<string, unknown>;

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const OPTIONS: PolicyOptions = {
  apiVersion: "v1beta1",
  name: "sidecar-injector",
  namespace: OWN_NAMESPACE,
  // No nodes here: the injector's `nativeSidecars: auto` decides "no", and so does the policy.
  nativeSidecarsSupported: false,
  enableNamespacesByDefault: false,
};

/** A Pod in the unlabelled probe namespace that the revision's object webhook (and binding) selects. */
const probeFor = (revision: string): Pod => ({
  metadata: { name: "probe", labels: { "istio.io/rev": revision, "sidecar.istio.io/inject": "true" } },
  spec: { containers: [{ name: "probe", image: "example.com/probe:1" }] },
});
/** A Pod opting in by annotation, which reaches the policy (and webhook) through a labelled namespace's binding. */
const annotatedProbe: Pod = {
  metadata: { name: "probe", annotations: { "sidecar.istio.io/inject": "true" } },
  spec: { containers: [{ name: "probe", image: "example.com/probe:1" }] },
};
const injected = (p: Pod): boolean => p.metadata?.annotations?.["sidecar.istio.io/status"] !== undefined;

const TOKEN_VOLUME = /^kube-api-access-[a-z0-9]+$/;

/** The stored Pod without what is unique to one creation (see the header). */
function comparable(p: Pod, generated: boolean): unknown {
  const text = JSON.stringify(p, (key, value: unknown) => {
    if (typeof value === "string" && TOKEN_VOLUME.test(value)) return "kube-api-access";
    if (key === "time") return undefined;
    return value;
  });
  const copy = JSON.parse(text) as Pod;
  const meta = { ...copy.metadata };
  delete meta.uid;
  delete meta.resourceVersion;
  delete meta.creationTimestamp;
  if (generated) delete meta.name;
  return { ...copy, metadata: meta };
}

/** The paths where two JSON values differ, with both values (for a readable failure). */
function differences(a: unknown, b: unknown, path = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}/${k}`),
    );
  }
  return [`${path}: policy ${JSON.stringify(a)?.slice(0, 300)} webhook ${JSON.stringify(b)?.slice(0, 300)}`];
}

let certs: TestCerts;
let injector: Injector;

async function helmMwc(revision: string): Promise<Obj> {
  return webhookConfigOf(
    await renderChartForUrl(kube(), {
      url: `${injector.url}/inject`,
      caPem: certs.caPem,
      extra: ["--set", `revision=${revision}`],
    }),
  );
}

/**
 * A validation message with its list of errors ("is invalid: [a, b]") sorted: the API server
 * validates a map (e.g. a container's resource requests) in Go's random iteration order, so
 * the same invalid Pod is refused with its errors in either order.
 */
function errorsInOrder(message: string): string {
  const m = /^(.* is invalid: \[)(.*)\]$/s.exec(message);
  return m ? `${m[1] ?? ""}${(m[2] ?? "").split(", ").sort().join(", ")}]` : message;
}

/** What the API server made of one creation: the stored Pod, or its refusal. */
type Outcome = { stored: Pod } | { refused: string };

/** Creates each Pod, reads back what was stored, deletes it; a refusal is kept with its message. */
async function storeAll(pods: readonly CorpusPod[]): Promise<Map<string, Outcome>> {
  const out = new Map<string, Outcome>();
  for (const [i, c] of pods.entries()) {
    const named = Boolean(c.pod.metadata?.name);
    const prefix = `p${i}-`;
    const body: Pod = named ? c.pod : { ...c.pod, metadata: { ...c.pod.metadata, generateName: prefix } };
    const r = await createPod(kube(), c.namespace, body);
    if (r.status !== 201) {
      // A generated name is random: the message is compared without it.
      const message = (r.pod as { message?: string }).message ?? r.text;
      out.set(c.id, {
        refused: `${r.status} ${errorsInOrder(message.replace(new RegExp(`${prefix}[a-z0-9]{5}`, "g"), prefix))}`,
      });
      continue;
    }
    const name = r.pod.metadata?.name ?? "";
    const stored = await kube().request<Pod>("GET", `/api/v1/namespaces/${c.namespace}/pods/${name}`);
    assert.equal(stored.status, 200, stored.text);
    out.set(c.id, { stored: stored.json });
    const d = await kube().request("DELETE", `/api/v1/namespaces/${c.namespace}/pods/${name}?gracePeriodSeconds=0`);
    assert.equal(d.status, 200, d.text);
  }
  return out;
}

interface Tally {
  total: number;
  covered: number;
  compared: number;
  injected: number;
  /** Refused alike by both paths (invalid Pods of the fuzzed corpus). */
  refused: number;
}

/**
 * Waits until Pods reaching the policy or webhook through the object selector and through a
 * labelled namespace are both injected (or both not): the API server loads each binding on
 * its own, so one probe alone may see a new binding before the other is in effect.
 */
async function settled(rev: string, namespace: string | undefined, inject: boolean, what: string): Promise<void> {
  const done = (s: number, p: Pod): boolean => s === 201 && injected(p) === inject;
  await waitUntil(kube(), PROBE_NAMESPACE, probeFor(rev), done, `${what} (object selector)`);
  if (namespace) await waitUntil(kube(), namespace, annotatedProbe, done, `${what} (namespace selector)`);
}

async function prove(group: ConfigGroup, tally: Tally): Promise<void> {
  tally.total += group.pods.length;
  const covered = group.pods.filter((p) => p.outside === undefined);
  tally.covered += covered.length;
  if (covered.length === 0 || typeof group.rendered === "string") return;
  const rendered: RenderedPolicy = group.rendered;
  // The namespaces select the config's revision, as the chart's webhooks (and bindings) expect.
  const rev = servedRevision(group.config.revision);
  const nsLabels =
    rev === "default"
      ? { "istio-injection": "enabled", "istio.io/rev": null }
      : { "istio-injection": null, "istio.io/rev": rev };
  for (const ns of new Set(covered.map((p) => p.namespace))) {
    await kube().createNamespace(ns);
    const accounts = covered.filter((p) => p.namespace === ns).map((p) => p.pod.spec?.serviceAccountName);
    for (const sa of new Set(accounts)) {
      if (!sa) continue;
      const a = await kube().request("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: sa } });
      assert.ok(a.status === 201 || a.status === 409, a.text);
    }
    const r = await kube().request(
      "PATCH",
      `/api/v1/namespaces/${ns}`,
      { metadata: { labels: nsLabels } },
      { contentType: "application/merge-patch+json" },
    );
    assert.equal(r.status, 200, r.text);
  }

  // A covered namespace the config injects in, for the namespace-selected probe.
  const firstNs = covered.map((p) => p.namespace).find((ns) => !group.config.ignoredNamespaces.includes(ns));
  // Phase 1: the policy alone.
  const objects = [rendered.policy, ...rendered.bindings];
  await createAll(kube(), objects);
  await settled(rev, firstNs, true, "the policy injects");

  const byPolicy = await storeAll(covered);
  await deleteAll(kube(), objects);
  await settled(rev, firstNs, false, "the policy is gone");

  // Phase 2: the webhook alone.
  await injector.stop();
  await injector.start(group.configText);
  const created = await kube().request("POST", MWC_PATH, await helmMwc(rev));
  assert.equal(created.status, 201, created.text);
  try {
    await settled(rev, firstNs, true, "the webhook injects");
    const byWebhook = await storeAll(covered);
    for (const c of covered) {
      const a = byPolicy.get(c.id);
      const b = byWebhook.get(c.id);
      assert.ok(a && b, c.id);
      tally.compared++;
      if ("refused" in a || "refused" in b) {
        assert.deepEqual(a, b, `${c.id}: refused by one path only, or differently`);
        tally.refused++;
        continue;
      }
      const generated = !c.pod.metadata?.name;
      const diff = differences(comparable(a.stored, generated), comparable(b.stored, generated));
      assert.deepEqual(diff, [], `${c.id}: stored Pods differ:\n${diff.slice(0, 20).join("\n")}`);
      if (injected(b.stored)) tally.injected++;
    }
  } finally {
    await kube().request("DELETE", `${MWC_PATH}/sidecar-injector`);
    await settled(rev, firstNs, false, "the webhook is gone");
  }
}

describe("the policy stores what the webhook stores", { skip }, () => {
  before(async () => {
    certs = await testCertificates();
    injector = new Injector(await freePort(), certs);
    await injector.start();
    await kube().createNamespace(OWN_NAMESPACE);
    await kube().createNamespace(PROBE_NAMESPACE);
  });
  after(async () => {
    await injector?.dispose();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    await cluster?.stop();
  });

  test("golden cases in the domain: identical", async () => {
    const tally: Tally = { total: 0, covered: 0, compared: 0, injected: 0, refused: 0 };
    for (const group of goldenGroups(OPTIONS)) await prove(group, tally);
    process.stderr.write(`golden: ${JSON.stringify(tally)}\n`);
    assert.equal(tally.compared, tally.covered);
    assert.ok(tally.injected >= 10, `at least 10 golden Pods injected and compared: ${JSON.stringify(tally)}`);
  });

  test("Pods made for the probe rewrite, the annotations and the Prometheus merge: identical, but for those made to fall outside", async () => {
    const group = madeGroup(OPTIONS);
    const outside = [
      ...PROBE_CASES_OUTSIDE,
      ...RESOURCE_CASES_OUTSIDE,
      ...TRAFFIC_CASES_OUTSIDE,
      ...PROMETHEUS_CASES_OUTSIDE,
    ];
    assert.deepEqual(
      group.pods.filter((p) => p.outside !== undefined).map((p) => p.id.split("#")[0]),
      outside,
    );
    const tally: Tally = { total: 0, covered: 0, compared: 0, injected: 0, refused: 0 };
    await prove(group, tally);
    process.stderr.write(`made: ${JSON.stringify(tally)}\n`);
    assert.equal(tally.compared, tally.covered);
    assert.equal(tally.injected, group.pods.length - outside.length, JSON.stringify(tally));
  });

  test("differential corpus Pods in the domain (native sidecars, the oracle's config): identical", async () => {
    const tally: Tally = { total: 0, covered: 0, compared: 0, injected: 0, refused: 0 };
    await prove(differentialGroup(OPTIONS), tally);
    process.stderr.write(`differential: ${JSON.stringify(tally)}\n`);
    assert.equal(tally.compared, tally.covered);
    assert.ok(tally.injected >= 20, `at least 20 differential Pods injected and compared: ${JSON.stringify(tally)}`);
  });
});
