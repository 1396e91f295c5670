// What the chart tells people: NOTES.txt (what `helm install` prints) rendered for each
// tls.mode with a real helm, saying what that mode installed; and the chart README's table of
// defaults checked against values.yaml, so neither can drift from what is installed.
//
// helm renders NOTES.txt only on install, which needs a cluster; here a copy of the chart holds
// the same text as a file and a ConfigMap template renders it with `tpl`, the same engine with
// the same values.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, helmGate, run } from "../../support/helm.js";

const { lookup, skip } = await helmGate("the NOTES.txt tests");

describe("NOTES.txt, per tls.mode", { skip }, () => {
  let chart = "";
  before(async () => {
    chart = await mkdtemp(join(tmpdir(), "chart-notes-"));
    await cp(CHART, chart, { recursive: true });
    await writeFile(join(chart, "notes.txt"), await readFile(join(CHART, "templates", "NOTES.txt"), "utf8"));
    await writeFile(
      join(chart, "templates", "zz-notes.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n',
    );
  });
  after(async () => {
    await rm(chart, { recursive: true, force: true });
  });

  async function notes(set: readonly string[], release = "sidecar-injector"): Promise<string> {
    const [text] = await notesAnd(set, release, []);
    return text;
  }

  /** NOTES.txt and the objects of the other templates named, from one rendering. */
  async function notesAnd(
    set: readonly string[],
    release: string,
    templates: readonly string[],
  ): Promise<[string, Record<string, unknown>[]]> {
    if (!lookup.ok) throw new Error(lookup.reason);
    const only = ["templates/zz-notes.yaml", ...templates].flatMap((t) => ["--show-only", t]);
    const args = [
      "template",
      release,
      chart,
      "--namespace",
      "sidecar-injector-system",
      "--kube-version",
      KUBE_VERSION,
      ...only,
      ...set.flatMap((s) => ["--set", s]),
    ];
    const r = await run(lookup.path, args, HELM_TIMEOUT_MS);
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((d): d is Record<string, unknown> => d !== null);
    const notesDoc = docs.find((d) => (d.metadata as { name?: string } | undefined)?.name === "notes");
    assert.ok(notesDoc);
    return [(notesDoc.data as { notes: string }).notes, docs.filter((d) => d !== notesDoc)];
  }

  test("default (tls.mode=self): the injector's own CA Secret and caBundle; nothing to create, no empty-caBundle warning", async () => {
    const text = await notes([]);
    assert.match(text, /Serving certificate \(tls\.mode=self\)/);
    assert.match(text, /creates its CA in the Secret "sidecar-injector-ca"/);
    assert.match(text, /writes the CA\s+into the webhook configuration's caBundle itself/);
    assert.match(text, /certs status --namespace sidecar-injector-system --ca-secret sidecar-injector-ca/);
    // Through the port-forward the client dials 127.0.0.1; the certificate names the Service.
    assert.match(
      text,
      /port-forward svc\/sidecar-injector 9443:443 &\n.*certs status .*\\\n.*--server https:\/\/127\.0\.0\.1:9443 \\\n\s+--tls-server-name sidecar-injector\.sidecar-injector-system\.svc\n/,
    );
    assert.doesNotMatch(text, /create secret tls/);
    assert.doesNotMatch(text, /WARNING/);
    assert.doesNotMatch(text, /cert-manager/);
  });

  test("a grace period that does not cover the preStop sleep and the drain is warned about", async () => {
    const warning =
      /WARNING: terminationGracePeriodSeconds \((\d+)\) does not cover preStopSleepSeconds \((\d+)\) and\s+the drain after SIGTERM \(up to (\d+) s\).*set terminationGracePeriodSeconds to (\d+) or more/s;
    const said = async (set: string[]): Promise<string[] | undefined> => warning.exec(await notes(set))?.slice(1);
    assert.deepEqual(await said(["terminationGracePeriodSeconds=20"]), ["20", "5", "15", "21"]);
    assert.deepEqual(await said(["terminationGracePeriodSeconds=6"]), ["6", "5", "15", "21"]);
    assert.deepEqual(await said(["preStopSleepSeconds=0", "terminationGracePeriodSeconds=10"]), [
      "10",
      "0",
      "15",
      "16",
    ]);
    // With several workers the drain's bound is 20 s.
    assert.deepEqual(await said(["workers=2", "resources.limits.memory=1Gi", "terminationGracePeriodSeconds=25"]), [
      "25",
      "5",
      "20",
      "26",
    ]);
    assert.equal(await said([]), undefined, "the defaults (30 > 5 + 15) are not warned about");
    assert.equal(await said(["terminationGracePeriodSeconds=21"]), undefined);
  });

  test("tls.caSecretName is the name said", async () => {
    assert.match(await notes(["tls.caSecretName=my-ca"]), /Secret "my-ca"/);
  });

  test("tls.mode=secret: the Secret to create, and the warning when no caBundle is given", async () => {
    const text = await notes(["tls.mode=secret"]);
    assert.match(text, /create secret tls sidecar-injector-tls/);
    assert.match(text, /WARNING: webhook\.caBundle is empty/);
    assert.doesNotMatch(
      await notes(["tls.mode=secret", `webhook.caBundle=${Buffer.from("ca").toString("base64")}`]),
      /WARNING/,
    );
  });

  test("release other: every name said derives from the release, and is the name installed", async () => {
    const [text, [deployment]] = await notesAnd([], "other", ["templates/deployment.yaml"]);
    const args =
      (deployment?.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]
        ?.args ?? [];
    const caSecret = args[args.indexOf("--ca-secret") + 1] ?? "";
    assert.equal(caSecret, "other-sidecar-injector-ca");
    assert.match(text, /installed as "other-sidecar-injector"/);
    assert.match(text, /rollout status deployment\/other-sidecar-injector/);
    assert.ok(
      text.includes(`--ca-secret ${caSecret}`) &&
        text.includes(`--webhook-config ${args[args.indexOf("--webhook-config") + 1] ?? ""}`),
      text,
    );
    assert.match(text, /helm uninstall other -n sidecar-injector-system/);
    const service = args[args.indexOf("--service") + 1] ?? "";
    assert.equal(service, "other-sidecar-injector");
    assert.ok(text.includes(`--tls-server-name ${service}.sidecar-injector-system.svc\n`), text);
    assert.ok(
      text.includes(`kubectl -n sidecar-injector-system delete secret ${caSecret}\n`),
      "uninstall removes the CA Secret the injector uses",
    );
    // No name of the default release left behind.
    assert.doesNotMatch(
      text,
      /(?<![-\w])sidecar-injector-(ca|tls)\b|deployment\/sidecar-injector\b|svc\/sidecar-injector\b/,
    );
  });

  test("revision tags: each said with the configuration installed for it", async () => {
    const [text, configs] = await notesAnd(["revision=canary", "revisionTags={prod,default}"], "mesh", [
      "templates/revision-tags.yaml",
    ]);
    const names = configs.map((c) => (c.metadata as { name: string }).name);
    assert.deepEqual(names, ["mesh-sidecar-injector-tag-prod", "mesh-sidecar-injector-tag-default"]);
    assert.match(text, /Revision tag prod → canary \(MutatingWebhookConfiguration mesh-sidecar-injector-tag-prod\):/);
    assert.match(
      text,
      /Revision tag default → canary \(MutatingWebhookConfiguration mesh-sidecar-injector-tag-default\):\n.*istio\.io\/rev=default.*\n.*as are istio-injection=enabled namespaces\./,
    );
    assert.doesNotMatch(await notes([]), /Revision tag/);
  });

  test("uninstall, per tls.mode: the Secrets left behind are the ones the chart's certificates write", async () => {
    const [cm, certs] = await notesAnd(["tls.mode=certManager"], "other", ["templates/certmanager.yaml"]);
    const written = certs
      .filter((o) => o.kind === "Certificate")
      .map((c) => (c.spec as { secretName: string }).secretName)
      .sort();
    assert.deepEqual(written, ["other-sidecar-injector-root-ca", "other-sidecar-injector-tls"]);
    assert.ok(cm.includes(`delete secret ${written[1] ?? ""} ${written[0] ?? ""}\n`), cm);
    const [external, externalCerts] = await notesAnd(
      [
        "tls.mode=certManager",
        "tls.certManager.issuerRef.name=corp-ca",
        "tls.certManager.issuerRef.kind=ClusterIssuer",
      ],
      "other",
      ["templates/certmanager.yaml"],
    );
    assert.deepEqual(
      externalCerts.filter((o) => o.kind === "Certificate").map((c) => (c.spec as { secretName: string }).secretName),
      ["other-sidecar-injector-tls"],
    );
    assert.match(external, /delete secret other-sidecar-injector-tls\n/);
    const secret = await notes(["tls.mode=secret"], "other");
    assert.match(secret, /The Secret "other-sidecar-injector-tls" is yours: it stays/);
    assert.doesNotMatch(secret, /delete secret/);
  });

  test("monitoring: what was rendered is named, and a NetworkPolicy that would block the scrape is warned about", async () => {
    assert.doesNotMatch(await notes([]), /Monitoring/);
    const all = [
      "monitoring.serviceMonitor.enabled=true",
      "monitoring.prometheusRule.enabled=true",
      "monitoring.dashboard.enabled=true",
    ];
    const [text, objects] = await notesAnd(all, "other", [
      "templates/servicemonitor.yaml",
      "templates/prometheusrule.yaml",
      "templates/dashboard.yaml",
    ]);
    for (const o of objects) {
      const m = o.metadata as { name: string; namespace: string };
      assert.ok(
        text.includes(`${String(o.kind)} ${o.kind === "ConfigMap" ? `${m.namespace}/` : ""}${m.name}:`),
        `NOTES name ${String(o.kind)} ${m.name}:\n${text}`,
      );
    }
    assert.match(text, /needs the Prometheus Operator's CRDs, and Grafana's dashboard sidecar/);
    assert.match(text, /WARNING: the NetworkPolicy closes the admin port/);
    assert.match(text, /scrapes fail, and\s+SidecarInjectorDown fires\./);
    // Without the PrometheusRule no alert can fire: the warning does not say one does.
    const noRule = await notes(["monitoring.serviceMonitor.enabled=true"]);
    assert.match(noRule, /WARNING: the NetworkPolicy closes the admin port.*scrapes fail\. Name Prometheus there/s);
    assert.doesNotMatch(noRule, /SidecarInjectorDown/);
    assert.doesNotMatch(
      await notes([...all, "networkPolicy.admin.from[0].podSelector.matchLabels.app=prometheus"]),
      /WARNING/,
    );
    assert.doesNotMatch(await notes([...all, "networkPolicy.enabled=false"]), /WARNING/);
    const dashboardOnly = await notes(["monitoring.dashboard.enabled=true", "networkPolicy.enabled=false"]);
    assert.match(dashboardOnly, /Monitoring \(needs Grafana's dashboard sidecar\)/);
    assert.doesNotMatch(dashboardOnly, /ServiceMonitor|PrometheusRule|Operator/);
  });

  test("the namespace demo is created before it is labelled, in NOTES and in both READMEs alike", async () => {
    const commands = (text: string): string[] =>
      text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^kubectl (create|label) namespace demo\b/.test(l));
    const create = "kubectl create namespace demo";
    const defaultRevision = [create, "kubectl label namespace demo istio-injection=enabled"];
    assert.deepEqual(commands(await notes([])), defaultRevision);
    assert.deepEqual(commands(await notes(["revision=canary"])), [
      create,
      "kubectl label namespace demo istio.io/rev=canary",
    ]);
    for (const readme of [join(CHART, "..", "..", "README.md"), join(CHART, "README.md")])
      assert.deepEqual(commands(await readFile(readme, "utf8")), defaultRevision, readme);
  });

  test("tls.mode=certManager: cert-manager's certificate", async () => {
    const text = await notes(["tls.mode=certManager"]);
    assert.match(text, /cert-manager issues it/);
    assert.doesNotMatch(text, /create secret tls|creates its CA/);
  });
});

describe("the chart README's defaults are values.yaml's", () => {
  test("every row of the values table names a value that exists, with its default", async () => {
    const readme = await readFile(join(CHART, "README.md"), "utf8");
    const values = parse(await readFile(join(CHART, "values.yaml"), "utf8")) as Record<string, unknown>;
    const rows = [...readme.matchAll(/^\| `([A-Za-z0-9.]+)` \| ([^|]+) \|/gm)];
    assert.ok(rows.length >= 10, `values table found (${rows.length} rows)`);
    let literal = 0;
    for (const [, key = "", cell = ""] of rows) {
      let v: unknown = values;
      for (const part of key.split(".")) {
        assert.ok(
          typeof v === "object" && v !== null && Object.hasOwn(v, part),
          `README names ${key}, which values.yaml does not have`,
        );
        v = (v as Record<string, unknown>)[part];
      }
      // A default written as one literal (`Fail`, `2`, `""`, `{}`) must be the value's.
      const m = /^`([^`]*)`$/.exec(cell.trim());
      if (!m) continue;
      literal++;
      const said = m[1] ?? "";
      const actual = typeof v === "string" ? (v === "" ? '""' : v) : JSON.stringify(v);
      assert.equal(said, actual, `README says ${key} defaults to ${said}; values.yaml has ${actual}`);
    }
    assert.ok(literal >= 8, `literal defaults checked: ${literal}`);
  });
});
