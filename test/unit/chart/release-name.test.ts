// Nothing in the chart assumes the release is called `sidecar-injector`: every name one object
// uses to find another (the Service the webhooks call and the certificate names, the Secrets,
// the webhook configuration the injector patches, RBAC's resourceNames, the monitoring's
// selectors) derives from the one fullname. Rendered with a real helm for release names
// `other` and `sidecar-injector`, with fullnameOverride, in each tls.mode; and two releases
// side by side share no object name.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, helmGate, run } from "../../support/helm.js";

const { lookup, skip } = await helmGate("the release-name tests");

const NAMESPACE = "mesh";

interface KubeObject {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: unknown;
  rules?: { resources: string[]; resourceNames?: string[] }[];
  webhooks?: { clientConfig: { service?: { name: string; namespace: string } } }[];
  roleRef?: { name: string };
  subjects?: { name: string; namespace?: string }[];
}

interface PodSpec {
  serviceAccountName: string;
  containers: { args: string[] }[];
  volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
}

async function render(release: string, set: readonly string[]): Promise<KubeObject[]> {
  assert.ok(lookup.ok);
  const args = [
    "template",
    release,
    CHART,
    "--namespace",
    NAMESPACE,
    "--kube-version",
    KUBE_VERSION,
    ...set.flatMap((s) => ["--set", s]),
  ];
  const r = await run(lookup.path, args, HELM_TIMEOUT_MS);
  assert.equal(r.code, 0, `helm ${args.join(" ")}:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as unknown)
    .filter((v): v is KubeObject => typeof v === "object" && v !== null && "kind" in v);
}

function one(objects: readonly KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind} ${name ?? ""}: found ${found.length}`);
  return found[0]!;
}

function argOf(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** Checks that every cross-reference in one rendering agrees; returns the fullname used. */
function assertConsistent(objects: readonly KubeObject[], mode: string): string {
  const deployment = one(objects, "Deployment");
  const fullname = deployment.metadata.name;
  const service = one(objects, "Service");
  const webhookConfig = one(objects, "MutatingWebhookConfiguration");
  const pod = (deployment.spec as { template: { spec: PodSpec } }).template.spec;
  const args = pod.containers[0]?.args ?? [];

  assert.equal(service.metadata.name, fullname);
  assert.equal(webhookConfig.metadata.name, fullname);
  assert.equal(pod.serviceAccountName, one(objects, "ServiceAccount").metadata.name);
  assert.equal(
    pod.volumes.find((v) => v.name === "config")?.configMap?.name,
    one(objects, "ConfigMap", fullname).metadata.name,
  );
  // The webhooks call the release's Service in the release's namespace.
  for (const hook of webhookConfig.webhooks ?? []) {
    assert.deepEqual(
      { name: hook.clientConfig.service?.name, namespace: hook.clientConfig.service?.namespace },
      { name: service.metadata.name, namespace: NAMESPACE },
    );
  }
  // Bindings name the roles rendered and the ServiceAccount the Pods run as.
  for (const b of objects.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    const roleKind = b.kind === "RoleBinding" ? "Role" : "ClusterRole";
    one(objects, roleKind, b.roleRef?.name);
    if (!b.metadata.name.endsWith("-preview"))
      assert.deepEqual(
        b.subjects?.map((s) => [s.name, s.namespace]),
        [[pod.serviceAccountName, NAMESPACE]],
      );
  }
  // The preview Role opens the proxy path of this Service's admin port.
  assert.ok(
    one(objects, "Role", `${fullname}-preview`).rules?.[0]?.resourceNames?.includes(
      `https:${service.metadata.name}:admin`,
    ),
  );

  if (mode === "self") {
    // The injector mints certificates for the Service, patches this webhook configuration and
    // keeps its CA in the Secret RBAC lets it touch.
    assert.equal(argOf(args, "--service"), service.metadata.name);
    assert.equal(argOf(args, "--webhook-config"), webhookConfig.metadata.name);
    const caSecret = argOf(args, "--ca-secret");
    assert.ok(caSecret?.startsWith(fullname), `CA Secret ${String(caSecret)} derives from ${fullname}`);
    const secretRule = one(objects, "Role", fullname).rules?.find(
      (r) => r.resources.includes("secrets") && r.resourceNames,
    );
    assert.deepEqual(secretRule?.resourceNames, [caSecret]);
    const webhookRule = one(objects, "ClusterRole", fullname).rules?.find((r) =>
      r.resources.includes("mutatingwebhookconfigurations"),
    );
    assert.deepEqual(webhookRule?.resourceNames, [webhookConfig.metadata.name]);
  } else {
    const tlsSecret = pod.volumes.find((v) => v.name === "tls")?.secret?.secretName;
    assert.ok(tlsSecret?.startsWith(fullname), `TLS Secret ${String(tlsSecret)} derives from ${fullname}`);
    if (mode === "certManager") {
      const certs = objects.filter((o) => o.kind === "Certificate");
      const serving = certs.find((c) => (c.spec as { secretName: string }).secretName === tlsSecret);
      assert.ok(serving, "a Certificate writes the mounted Secret");
      const dnsNames = (serving.spec as { dnsNames: string[] }).dnsNames;
      assert.ok(
        dnsNames.includes(`${service.metadata.name}.${NAMESPACE}.svc`),
        `SANs ${dnsNames.join(",")} name the Service`,
      );
      assert.equal(
        webhookConfig.metadata.annotations?.["cert-manager.io/inject-ca-from"],
        `${NAMESPACE}/${serving.metadata.name}`,
      );
      for (const issuerName of certs.map((c) => (c.spec as { issuerRef: { name: string } }).issuerRef.name))
        one(objects, "Issuer", issuerName);
      const ca = one(objects, "Issuer", `${fullname}-ca`).spec as { ca: { secretName: string } };
      assert.ok(
        certs.some((c) => (c.spec as { secretName: string }).secretName === ca.ca.secretName),
        "the CA Issuer reads a Secret a Certificate writes",
      );
    }
  }
  // Every object's name derives from the fullname.
  for (const o of objects)
    assert.ok(o.metadata.name.startsWith(fullname), `${o.kind} ${o.metadata.name} derives from ${fullname}`);
  return fullname;
}

const MODES: [string, string[]][] = [
  ["self", []],
  ["secret", ["tls.mode=secret"]],
  ["certManager", ["tls.mode=certManager"]],
];
const EVERYTHING = [
  "monitoring.prometheusRule.enabled=true",
  "monitoring.serviceMonitor.enabled=true",
  "monitoring.dashboard.enabled=true",
  "preview.rbac.subjects[0].kind=Group",
  "preview.rbac.subjects[0].name=platform",
];

describe("names derive from the release, never from a fixed `sidecar-injector`", { skip }, () => {
  for (const [mode, set] of MODES) {
    test(`tls.mode=${mode}: release other, release sidecar-injector, fullnameOverride`, async () => {
      const extra = mode === "secret" ? [...set, "monitoring.serviceMonitor.tlsConfig.insecureSkipVerify=true"] : set;
      assert.equal(assertConsistent(await render("other", [...extra, ...EVERYTHING]), mode), "other-sidecar-injector");
      assert.equal(
        assertConsistent(await render("sidecar-injector", [...extra, ...EVERYTHING]), mode),
        "sidecar-injector",
      );
      assert.equal(
        assertConsistent(await render("other", [...extra, ...EVERYTHING, "fullnameOverride=mesh-inj"]), mode),
        "mesh-inj",
      );
    });
  }

  test("a fullname of 55 to 63 characters: every derived name keeps its suffix, none is another object's", async () => {
    // Kinds whose object of a release is named the fullname itself; every other name is the
    // fullname and a suffix of its own (-dashboard, -serving, -tag-<tag>, -preview, ...).
    const named = [
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "Deployment",
      "MutatingWebhookConfiguration",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "PrometheusRule",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
      "ServiceMonitor",
    ];
    for (const length of [55, 56, 61, 62, 63]) {
      const fullname = `x${"-abcdefghi".repeat(7)}`.slice(0, length - 1) + "z";
      assert.equal(fullname.length, length);
      for (const mode of ["self", "certManager"]) {
        const objects = await render("other", [
          `tls.mode=${mode}`,
          `fullnameOverride=${fullname}`,
          "revisionTags={prod}",
          `istioConfig=${NAMESPACE}`,
          ...EVERYTHING,
        ]);
        const seen = new Map<string, string>();
        for (const o of objects) {
          const key = `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;
          assert.ok(!seen.has(key), `${length} characters, tls.mode=${mode}: two objects are ${key}`);
          seen.set(key, key);
          if (o.metadata.name === fullname)
            assert.ok(named.includes(o.kind), `${length}, ${mode}: ${o.kind} is named the fullname itself`);
          else
            assert.ok(o.metadata.name.startsWith(`${fullname}-`), `${length}, ${mode}: ${o.kind} ${o.metadata.name}`);
        }
        const configMaps = objects.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name);
        assert.deepEqual(configMaps.sort(), [fullname, `${fullname}-dashboard`]);
        if (mode === "certManager")
          assert.ok(
            objects.some((o) => o.kind === "Certificate" && o.metadata.name === `${fullname}-serving`),
            "the serving Certificate keeps its suffix",
          );
      }
    }
  });

  test("changing nameOverride or fullnameOverride in an upgrade: values.yaml says what the renderings show", async () => {
    const values = (await readFile(join(CHART, "values.yaml"), "utf8")).split("\n");
    /** The comment lines right above `key:` at the top level, joined. */
    const described = (key: string): string => {
      const at = values.findIndex((l) => l.startsWith(`${key}:`));
      assert.ok(at > 0, `values.yaml has ${key}`);
      let from = at;
      while (from > 0 && values[from - 1]!.startsWith("#")) from--;
      return values
        .slice(from, at)
        .map((l) => l.replace(/^#\s?/, ""))
        .join(" ");
    };
    const selector = (objects: KubeObject[]): unknown =>
      (one(objects, "Deployment").spec as { selector: unknown }).selector;
    const before = await render("rel", ["fullnameOverride=inj"]);

    // nameOverride with the fullname kept: the same Deployment with another selector, which the
    // API server refuses to change.
    const renamedLabel = await render("rel", ["fullnameOverride=inj", "nameOverride=other"]);
    assert.equal(one(renamedLabel, "Deployment").metadata.name, one(before, "Deployment").metadata.name);
    assert.notDeepEqual(selector(renamedLabel), selector(before));
    assert.match(described("nameOverride"), /Deployment's selector, which is\s+immutable/);
    assert.match(described("nameOverride"), /otherwise renames every object/);

    // fullnameOverride: every object renamed, the CA Secret the injector makes among them.
    const renamed = await render("rel", ["fullnameOverride=inj2"]);
    const names = (objects: KubeObject[]): Set<string> => new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    assert.deepEqual(
      [...names(renamed)].filter((n) => names(before).has(n)),
      [],
      "no object keeps its name",
    );
    const caSecret = (objects: KubeObject[]): string | undefined =>
      argOf(
        (one(objects, "Deployment").spec as { template: { spec: PodSpec } }).template.spec.containers[0]!.args,
        "--ca-secret",
      );
    assert.equal(caSecret(before), "inj-ca");
    assert.equal(caSecret(renamed), "inj2-ca");
    const full = described("fullnameOverride");
    assert.match(full, /changing it in an upgrade renames every object/);
    assert.match(
      full,
      /new CA in the Secret `<new fullname>-ca`, and the old\s+CA Secret, which Helm never owned, stays behind/,
    );
    assert.match(full, /no\s+caBundle until the new Pods publish one/);
  });

  test("two releases side by side share no object name, namespaced or cluster-wide", async () => {
    const a = await render("blue", ["tls.mode=certManager", "monitoring.prometheusRule.enabled=true"]);
    const b = await render("green", ["tls.mode=certManager", "monitoring.prometheusRule.enabled=true"]);
    const names = (objects: KubeObject[]): Set<string> => new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    const shared = [...names(a)].filter((n) => names(b).has(n));
    assert.deepEqual(shared, []);
  });
});
