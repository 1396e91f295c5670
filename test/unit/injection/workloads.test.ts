import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildConfig } from "../../../src/config/load.js";
import { injectDocument, podOf } from "../../../src/injection/workloads.js";
import type { Container } from "../../../src/kube/types.js";

const config = buildConfig({});
type Doc = Record<string, unknown>;
const app = [{ name: "app", image: "example.com/app:1" }];
const deployment = (meta: Doc, templateMeta: Doc): Doc => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: meta,
  spec: { selector: { matchLabels: { app: "a" } }, template: { metadata: templateMeta, spec: { containers: app } } },
});
const cronJob = (jobTemplateMeta: Doc | undefined, templateMeta: Doc): Doc => ({
  apiVersion: "batch/v1",
  kind: "CronJob",
  metadata: { name: "nightly" },
  spec: {
    schedule: "0 3 * * *",
    jobTemplate: {
      ...(jobTemplateMeta ? { metadata: jobTemplateMeta } : {}),
      spec: { template: { metadata: templateMeta, spec: { containers: app } } },
    },
  },
});
const injected = (doc: Doc, ns = "default"): boolean =>
  injectDocument(doc, ns, config).injected[0]?.result.decision.inject === true;
const names = (list: Container[] | undefined): string[] => (list ?? []).map((c) => c.name);

describe("offline injection as kube-inject", () => {
  test("ignored namespaces are judged on the template's own namespace", () => {
    assert.equal(injected(deployment({ name: "d", namespace: "kube-system" }, { labels: { app: "a" } })), true);
    assert.equal(injected(deployment({ name: "d" }, { namespace: "kube-system", labels: { app: "a" } })), false);
    assert.equal(
      injected(deployment({ name: "d" }, {}), "kube-system"),
      true,
      "the default namespace is not the template's",
    );
    assert.equal(
      injected({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace: "kube-public" },
        spec: { containers: app },
      }),
      false,
    );
  });

  test("the workload keeps the document's namespace", () => {
    const r = injectDocument(deployment({ name: "d", namespace: "kube-system" }, {}), "default", config).injected[0];
    assert.equal(r?.namespace, "kube-system");
    const proxy = r?.result.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.equal(
      proxy?.env?.find((e) => e.name === "ISTIO_META_OWNER")?.value,
      "kubernetes://apis/apps/v1/namespaces/kube-system/deployments/d",
    );
  });

  test("a CronJob: the job template's metadata is read and written, the pod template's spec injected", () => {
    const doc = injectDocument(cronJob({ labels: { team: "x" } }, { labels: { app: "nightly" } }), "default", config)
      .doc as Doc;
    const jobTemplate = (doc.spec as Doc).jobTemplate as {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: { template: { metadata: Doc; spec: { containers: Container[]; initContainers?: Container[] } } };
    };
    assert.equal(jobTemplate.metadata.labels["security.istio.io/tlsMode"], "istio");
    assert.equal(jobTemplate.metadata.labels.team, "x");
    assert.ok(jobTemplate.metadata.annotations["sidecar.istio.io/status"]);
    assert.deepEqual(
      jobTemplate.spec.template.metadata,
      { labels: { app: "nightly" } },
      "the pod template's metadata is left as it is",
    );
    assert.deepEqual(names(jobTemplate.spec.template.spec.containers), ["app", "istio-proxy"]);
    assert.deepEqual(names(jobTemplate.spec.template.spec.initContainers), ["istio-init"]);
    assert.equal(Object.keys(jobTemplate)[0], "metadata");
  });

  test("a CronJob's opt-out is read from the job template's metadata, not its pod template's", () => {
    assert.equal(injected(cronJob(undefined, { annotations: { "sidecar.istio.io/inject": "false" } })), true);
    assert.equal(injected(cronJob({ annotations: { "sidecar.istio.io/inject": "false" } }, {})), false);
  });

  test("a CronJob whose pod template has an annotation the webhook refuses: injected, with a warning naming it", () => {
    const bad = cronJob({}, { annotations: { "sidecar.istio.io/proxyCPU": "lots" } });
    const r = injectDocument(bad, "default", config).injected[0]?.result;
    assert.equal(r?.decision.inject, true, "kube-inject reads the job template's metadata, not the pod template's");
    assert.deepEqual(names(r.pod.spec?.containers), ["app", "istio-proxy"]);
    assert.deepEqual(
      r.warnings.filter((w) => w.startsWith("the webhook would refuse")),
      [
        'the webhook would refuse each Pod this CronJob creates (where its namespace is injected): invalid annotation sidecar.istio.io/proxyCPU="lots": is not a Kubernetes quantity (for example 100m, 1Gi)',
      ],
    );
    const fine = injectDocument(
      cronJob({}, { annotations: { "sidecar.istio.io/proxyCPU": "100m" } }),
      "default",
      config,
    );
    assert.deepEqual(
      fine.injected[0]?.result.warnings.filter((w) => w.startsWith("the webhook would refuse")),
      [],
    );
  });

  test("a workload named by generateName alone has no name yet: no workload name, owner or canonical name from it", () => {
    // kube-inject's deploymentMetadata is the workload's metadata.name, "" here (a Job created
    // with generateName, as Kueue's samples are).
    const job: Doc = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { generateName: "batch-run-", namespace: "team-a" },
      spec: { template: { metadata: {}, spec: { containers: app, restartPolicy: "Never" } } },
    };
    const located = podOf(job, "default");
    assert.equal(located?.name, "batch-run-", "still shown by its generateName");
    assert.deepEqual(located?.workload, { name: "", namespace: "team-a", kind: "Job", apiVersion: "batch/v1" });
    const result = injectDocument(job, "default", config).injected[0]?.result;
    assert.equal(result?.decision.inject, true);
    const pod = result.pod;
    const proxy = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (c) => c.name === "istio-proxy",
    );
    const env = new Map((proxy?.env ?? []).map((e) => [e.name, e.value]));
    assert.ok(proxy, "injected");
    assert.equal(env.has("ISTIO_META_WORKLOAD_NAME"), false);
    assert.equal(env.has("ISTIO_META_OWNER"), false);
    assert.equal(pod.metadata?.labels?.["service.istio.io/canonical-name"], "");
    // With a name, it is the workload.
    const named = injectDocument({ ...job, metadata: { name: "batch-run", namespace: "team-a" } }, "default", config);
    const namedProxy = named.injected[0]?.result.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    assert.equal(namedProxy?.env?.find((e) => e.name === "ISTIO_META_WORKLOAD_NAME")?.value, "batch-run");
  });

  test("podOf (what the webhook sees, what the preview shows) is still the pod template", () => {
    const located = podOf(cronJob({ labels: { team: "x" } }, { labels: { app: "nightly" } }), "default");
    assert.deepEqual(located?.pod.metadata, { labels: { app: "nightly" } });
  });
});
