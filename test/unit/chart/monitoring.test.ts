// The chart's monitoring (monitoring.*): the PrometheusRule, the ServiceMonitor and the Grafana
// dashboard, rendered with a real helm and checked against what the injector exports. The
// exported series are read at test time from the registries the injector builds
// (createMetrics in src/telemetry/metrics.ts, createCertMetrics in src/certs/manager.ts), and
// label values from the registries of reasons (ERRORS, SKIP_REASONS, ...): a metric renamed in
// the code, or a reason that no longer exists, fails here.
//
// Every rule's expr and every dashboard query is read with a small PromQL reader (promql.ts):
// balanced brackets, known functions, each metric one we export (or one of the few named
// below from Prometheus itself and kube-state-metrics), each label one that metric has or one
// the scrape adds. When promtool is available (PROMTOOL, else bin/promtool in the test-binary
// cache, else on PATH), `promtool check rules`
// runs over the rendered rules too.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { Metric } from "prom-client";
import { parseAllDocuments, stringify } from "yaml";
import { ERRORS } from "../../../src/admission/errors.js";
import { createCertMetrics } from "../../../src/certs/manager.js";
import {
  CERT_RELOAD_FAILURE_REASONS,
  SKIP_REASONS,
  TLS_HANDSHAKE_FAILURE_REASONS,
  createMetrics,
} from "../../../src/telemetry/metrics.js";
import { CHART, HELM_TIMEOUT_MS, KUBE_VERSION, helmGate, run } from "../../support/helm.js";
import { readPromql, type PromqlShape } from "./promql.js";

const { lookup, skip } = await helmGate("the chart monitoring tests");

const RELEASE = "other";
const NAMESPACE = "mon";
const FULLNAME = "other-sidecar-injector";

// ---------------------------------------------------------------------------
// What the injector exports, read from its own registries

/** Series name -> label names, for every series /metrics can show. */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const metrics = createMetrics();
  createCertMetrics(metrics.registry);
  const out = new Map<string, Set<string>>();
  const add = (name: string, labels: Iterable<string>): void => {
    const set = out.get(name) ?? new Set<string>();
    for (const l of labels) set.add(l);
    out.set(name, set);
  };
  const declared = (m: Metric | undefined): string[] => {
    if (m === undefined || !("labelNames" in m) || !Array.isArray(m.labelNames)) return [];
    return m.labelNames.filter((l): l is string => typeof l === "string");
  };
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const labels = declared(metrics.registry.getSingleMetric(m.name));
    const type = String(m.type);
    if (type === "histogram") {
      add(`${m.name}_bucket`, [...labels, "le"]);
      add(`${m.name}_sum`, labels);
      add(`${m.name}_count`, labels);
    } else if (type === "summary") {
      add(m.name, [...labels, "quantile"]);
      add(`${m.name}_sum`, labels);
      add(`${m.name}_count`, labels);
    } else {
      add(m.name, labels);
    }
    for (const v of m.values) {
      const name = "metricName" in v && typeof v.metricName === "string" ? v.metricName : m.name;
      add(name, Object.keys(v.labels));
    }
  }
  return out;
}

const EXPORTED = await exportedSeries();

/** Not ours, named on purpose: Prometheus's own `up`, and kube-state-metrics' view of the Deployment. */
const EXTERNAL: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["up", new Set<string>()],
  ["kube_deployment_status_replicas_available", new Set(["deployment"])],
  ["kube_deployment_spec_replicas", new Set(["deployment"])],
]);

/** Labels the scrape adds to every series (the Prometheus Operator's, from a ServiceMonitor). */
const TARGET_LABELS: ReadonlySet<string> = new Set([
  "job",
  "instance",
  "namespace",
  "pod",
  "service",
  "container",
  "endpoint",
]);

/** The values a label can take, from the registries the code counts with. */
const LABEL_VALUES: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>> = new Map([
  ["sidecar_injection_failure_total", new Map([["reason", new Set<string>(Object.keys(ERRORS))]])],
  ["sidecar_injection_skip_total", new Map([["reason", new Set<string>(Object.values(SKIP_REASONS))]])],
  [
    "sidecar_injector_tls_handshake_failures_total",
    new Map([["reason", new Set<string>(Object.values(TLS_HANDSHAKE_FAILURE_REASONS))]]),
  ],
  [
    "sidecar_injector_cert_reload_failures_total",
    new Map([["reason", new Set<string>(Object.values(CERT_RELOAD_FAILURE_REASONS))]]),
  ],
]);

function labelsOf(metric: string): ReadonlySet<string> | undefined {
  return EXPORTED.get(metric) ?? EXTERNAL.get(metric);
}

/**
 * What is wrong with a PromQL expression, as messages (empty: nothing). `vars` are Grafana's
 * variables, allowed as label values.
 */
function promqlProblems(expr: string): string[] {
  let shape: PromqlShape;
  try {
    shape = readPromql(expr);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  if (shape.selectors.length === 0) problems.push(`no metric in ${expr}`);
  const present = new Set<string>(TARGET_LABELS);
  for (const s of shape.selectors) {
    const labels = labelsOf(s.metric);
    if (labels === undefined) {
      problems.push(`${s.metric} is not a metric the injector exports`);
      continue;
    }
    for (const l of labels) present.add(l);
    for (const m of s.matchers) {
      if (!labels.has(m.name) && !TARGET_LABELS.has(m.name)) problems.push(`${s.metric} has no label ${m.name}`);
      const domain = LABEL_VALUES.get(s.metric)?.get(m.name);
      if (domain === undefined || m.value.includes("$")) continue;
      const values = m.op === "=~" || m.op === "!~" ? m.value.split("|") : [m.value];
      for (const v of values) if (!domain.has(v)) problems.push(`${s.metric}{${m.name}} is never ${JSON.stringify(v)}`);
    }
  }
  for (const l of shape.groupingLabels)
    if (!present.has(l)) problems.push(`grouping by ${l}, which no series of ${expr} has`);
  return problems;
}

// ---------------------------------------------------------------------------
// Rendering

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, string>;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleGroup {
  name: string;
  rules: Rule[];
}

function helmPath(): string {
  assert.ok(lookup.ok, "helm is not available");
  return lookup.path;
}

async function render(set: readonly string[], release = RELEASE): Promise<KubeObject[]> {
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
  const r = await run(helmPath(), args, HELM_TIMEOUT_MS);
  assert.equal(r.code, 0, `helm ${args.join(" ")} failed:\n${r.stderr}`);
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    assert.deepEqual(doc.errors, [], "helm template printed invalid YAML");
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) continue;
    objects.push(v as KubeObject);
  }
  return objects;
}

function one(objects: readonly KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
}

function groupsOf(objects: readonly KubeObject[]): RuleGroup[] {
  const rule = one(objects, "PrometheusRule");
  assert.equal(rule.apiVersion, "monitoring.coreos.com/v1");
  const spec = rule.spec as { groups: RuleGroup[] };
  return spec.groups;
}

const alertsOf = (groups: readonly RuleGroup[]): Rule[] => groups.flatMap((g) => g.rules);

const RULES_ON = "monitoring.prometheusRule.enabled=true";

/** What every alerting rule must have, and its expr and templates checked; returns the problems. */
function ruleProblems(rule: Rule): string[] {
  const name = rule.alert ?? "(no alert name)";
  const problems = promqlProblems(rule.expr).map((p) => `${name}: ${p}`);
  if (!rule.alert || !/^SidecarInjector[A-Za-z]+$/.test(rule.alert)) problems.push(`${name}: alert name`);
  if (!rule.for || !/^[0-9]+[smh]$/.test(rule.for)) problems.push(`${name}: for ${String(rule.for)}`);
  if (!["critical", "warning", "info"].includes(rule.labels?.severity ?? ""))
    problems.push(`${name}: severity ${String(rule.labels?.severity)}`);
  for (const key of ["summary", "description"]) {
    const text = rule.annotations?.[key] ?? "";
    if (text.trim().length < 20) problems.push(`${name}: ${key} missing or too short`);
    // Prometheus's templates only: $value, or $labels.<a label the alert's series carry>.
    let shape: PromqlShape | undefined;
    try {
      shape = readPromql(rule.expr);
    } catch {
      shape = undefined;
    }
    const carried = new Set<string>();
    if (shape && shape.groupingLabels.length > 0) for (const l of shape.groupingLabels) carried.add(l);
    else if (shape)
      for (const s of shape.selectors)
        for (const l of [...(labelsOf(s.metric) ?? []), ...TARGET_LABELS]) carried.add(l);
    for (const [, inner = ""] of text.matchAll(/\{\{(.*?)\}\}/g)) {
      const m =
        /^\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*(\|\s*(humanize|humanizePercentage|humanizeDuration)\s*)?$/.exec(
          inner,
        );
      if (!m) problems.push(`${name}: ${key} has a template Prometheus cannot fill: {{${inner}}}`);
      else if (m[2] !== undefined && !carried.has(m[2]))
        problems.push(`${name}: ${key} reads $labels.${m[2]}, which the alert's series do not carry`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------

describe("the PromQL check itself", () => {
  test("it reads what the injector exports", () => {
    for (const name of [
      "sidecar_injection_requests_total",
      "sidecar_injection_failure_total",
      "sidecar_injection_duration_seconds_bucket",
      "sidecar_injector_serving_cert_expiry_timestamp_seconds",
      "sidecar_injector_cabundle_write_failures_total",
      "process_resident_memory_bytes",
    ]) {
      assert.ok(EXPORTED.has(name), `${name} is exported (${EXPORTED.size} series read)`);
    }
    assert.ok(EXPORTED.get("sidecar_injection_failure_total")?.has("reason"));
    assert.ok(EXPORTED.get("sidecar_injection_duration_seconds_bucket")?.has("le"));
  });

  test("a good expression passes; each kind of mistake is named", () => {
    assert.deepEqual(
      promqlProblems(
        'sum by (job) (rate(sidecar_injection_failure_total{job="x",reason=~"ERR_INTERNAL|ERR_OVERLOADED"}[5m])) / sum by (job) (rate(sidecar_injection_requests_total{job="x"}[5m])) > 0.05',
      ),
      [],
    );
    const cases: [string, RegExp][] = [
      [
        "rate(sidecar_injection_failures_total[5m])",
        /sidecar_injection_failures_total is not a metric the injector exports/,
      ],
      ["sum(rate(sidecar_injection_requests_total[5m])", /unclosed \(/],
      ["sum(rate(sidecar_injection_requests_total[5m])))", /unbalanced \)/],
      ['rate(sidecar_injection_failure_total{reasn="ERR_INTERNAL"}[5m])', /has no label reasn/],
      ['rate(sidecar_injection_failure_total{reason=~"ERR_INTERNAL|ERR_NOPE"}[5m])', /is never "ERR_NOPE"/],
      ["ratee(sidecar_injection_requests_total[5m])", /unknown function ratee/],
      ["sum by (deployment) (rate(sidecar_injection_requests_total[5m]))", /grouping by deployment/],
      ['{__name__="up"}', /without a metric name/],
      ["rate(sidecar_injection_requests_total[5x])", /bad range|cannot read/],
    ];
    for (const [expr, want] of cases) assert.match(promqlProblems(expr).join("; "), want, expr);
  });

  test("a rule without for, severity or summary, or with a template Prometheus cannot fill, is named", () => {
    const problems = ruleProblems({
      alert: "SidecarInjectorX",
      expr: "up == 0",
      annotations: { description: "the description is long enough, {{ $labels.reason }}" },
    });
    const text = problems.join("\n");
    assert.match(text, /for undefined/);
    assert.match(text, /severity undefined/);
    assert.match(text, /summary missing/);
    assert.match(text, /reads \$labels\.reason/);
    assert.match(
      ruleProblems({
        alert: "SidecarInjectorX",
        expr: "up == 0",
        for: "5m",
        labels: { severity: "info" },
        annotations: { summary: "a summary of the alert here", description: "{{ .Values.x }} is left unrendered" },
      }).join("\n"),
      /cannot fill/,
    );
  });
});

describe("chart monitoring: PrometheusRule, ServiceMonitor, Grafana dashboard", { skip }, () => {
  test("off by default: none of them is rendered", async () => {
    const kinds = new Set((await render([])).map((o) => o.kind));
    assert.ok(!kinds.has("PrometheusRule") && !kinds.has("ServiceMonitor"), [...kinds].join(","));
    assert.equal((await render([])).filter((o) => o.kind === "ConfigMap").length, 1, "only the injector's config");
  });

  test("helm lint --strict passes with all three on", async () => {
    const set =
      "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.dashboard.enabled=true";
    const r = await run(
      helmPath(),
      ["lint", "--strict", CHART, "--kube-version", KUBE_VERSION, "--set", set],
      HELM_TIMEOUT_MS,
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /0 chart\(s\) failed/);
  });

  const modes: [string, string[], string[]][] = [
    [
      "self",
      [],
      [
        "SidecarInjectorServingCertExpiring",
        "SidecarInjectorCaCertExpiring",
        "SidecarInjectorCaBundleWriteFailing",
        "SidecarInjectorKubeApiErrors",
      ],
    ],
    ["certManager", ["tls.mode=certManager"], ["SidecarInjectorCertReloadFailing"]],
    ["secret", ["tls.mode=secret"], ["SidecarInjectorCertReloadFailing"]],
  ];
  for (const [mode, set, certAlerts] of modes) {
    test(`tls.mode=${mode}: every rule is complete, and its expr reads exported metrics and labels only`, async () => {
      const objects = await render([RULES_ON, ...set]);
      const alerts = alertsOf(groupsOf(objects));
      assert.deepEqual(alerts.flatMap(ruleProblems), []);
      const names = alerts.map((a) => a.alert ?? "");
      assert.equal(new Set(names).size, names.length, "alert names are unique");
      const always = [
        "SidecarInjectorDown",
        "SidecarInjectorNoReplicaAvailable",
        "SidecarInjectorReplicasUnavailable",
        "SidecarInjectorTlsHandshakesRefused",
        "SidecarInjectorFailing",
        "SidecarInjectorSlow",
      ];
      assert.deepEqual([...names].sort(), [...always, ...certAlerts].sort());
      // Certificate expiry gauges exist only where the injector manages its certificates.
      const exprs = alerts.map((a) => a.expr).join("\n");
      assert.equal(
        /expiry_timestamp_seconds|cabundle_write/.test(exprs),
        mode === "self",
        "self-mode metrics only in tls.mode self",
      );
    });
  }

  test("every series is picked by the release's job and namespace; kube-state-metrics by its Deployment", async () => {
    const objects = await render([RULES_ON]);
    const deployment = one(objects, "Deployment");
    const service = one(objects, "Service");
    assert.equal(deployment.metadata.name, FULLNAME);
    for (const rule of alertsOf(groupsOf(objects))) {
      for (const s of readPromql(rule.expr).selectors) {
        const m = new Map(s.matchers.map((x) => [x.name, `${x.op}${x.value}`]));
        if (s.metric.startsWith("kube_deployment_")) {
          assert.equal(m.get("deployment"), `=${deployment.metadata.name}`, `${rule.alert}: ${s.metric}`);
          assert.equal(m.get("namespace"), `=${NAMESPACE}`, `${rule.alert}: ${s.metric}`);
        } else {
          // The ServiceMonitor's job is the Service's name.
          assert.equal(m.get("job"), `=${service.metadata.name}`, `${rule.alert}: ${s.metric}`);
          assert.equal(m.get("namespace"), `=${NAMESPACE}`, `${rule.alert}: ${s.metric}`);
        }
      }
    }
  });

  test("thresholds, the selector and kube-state-metrics come from the values", async () => {
    const objects = await render([
      RULES_ON,
      "monitoring.prometheusRule.kubeStateMetrics=false",
      'monitoring.prometheusRule.selector=app="si"',
      "monitoring.prometheusRule.servingCertExpiryHours=6",
      "monitoring.prometheusRule.failureRatio=0.2",
      "monitoring.prometheusRule.latencyP99Seconds=1",
      "monitoring.prometheusRule.labels.release=prom",
    ]);
    assert.equal(one(objects, "PrometheusRule").metadata.labels?.release, "prom");
    const alerts = alertsOf(groupsOf(objects));
    const byName = new Map(alerts.map((a) => [a.alert, a.expr]));
    assert.ok(![...byName.values()].some((e) => /\bkube_deployment_/.test(e)), "no kube-state-metrics");
    assert.match(byName.get("SidecarInjectorServingCertExpiring") ?? "", /< 21600$/);
    assert.match(byName.get("SidecarInjectorFailing") ?? "", />\s*0\.2$/);
    assert.match(byName.get("SidecarInjectorSlow") ?? "", />\s*1$/);
    for (const a of alerts)
      for (const s of readPromql(a.expr).selectors)
        assert.ok(
          s.matchers.some((m) => m.name === "app" && m.value === "si"),
          `${a.alert}: ${s.metric}`,
        );
    // label `app` is not one the injector's series carry: the check says so, the chart renders it as asked.
    assert.match(promqlProblems(byName.get("SidecarInjectorFailing") ?? "").join(";"), /has no label app/);
  });

  test("promtool check rules accepts the rendered rules (when promtool is available)", async (t) => {
    const promtool = await findPromtool();
    if (promtool === undefined) {
      t.skip("no promtool: set PROMTOOL, leave one in the test-binary cache (bin/promtool), or put it on PATH");
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), "chart-rules-"));
    try {
      for (const [mode, set] of modes) {
        const file = join(dir, `${mode}.yaml`);
        await writeFile(file, stringify({ groups: groupsOf(await render([RULES_ON, ...set])) }));
        const r = await run(promtool, ["check", "rules", file], HELM_TIMEOUT_MS);
        const out = r.stdout + r.stderr;
        assert.equal(r.code, 0, `promtool check rules (${mode}):\n${out}`);
        assert.match(out, /SUCCESS/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("ServiceMonitor: selects the Service's admin port, verifies the certificate's name against the CA the mode provides", async () => {
    const on = "monitoring.serviceMonitor.enabled=true";
    for (const [mode, set] of modes.filter(([m]) => m !== "secret")) {
      const objects = await render([on, ...set]);
      const sm = one(objects, "ServiceMonitor");
      const service = one(objects, "Service");
      const spec = sm.spec as {
        selector: { matchLabels: Record<string, string> };
        namespaceSelector: { matchNames: string[] };
        endpoints: {
          port: string;
          path: string;
          scheme: string;
          tlsConfig: { serverName: string; ca: { secret: { name: string; key: string } } };
        }[];
      };
      for (const [k, v] of Object.entries(spec.selector.matchLabels))
        assert.equal(service.metadata.labels?.[k], v, `${mode}: the Service carries ${k}=${v}`);
      assert.deepEqual(spec.namespaceSelector.matchNames, [NAMESPACE]);
      const ep = spec.endpoints[0];
      assert.ok(ep);
      const ports = (service.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      assert.ok(ports.includes(ep.port), `${mode}: Service port ${ep.port}`);
      assert.equal(ep.path, "/metrics");
      assert.equal(ep.scheme, "https");
      assert.equal(ep.tlsConfig.serverName, `${service.metadata.name}.${NAMESPACE}.svc`);
      assert.equal(ep.tlsConfig.ca.secret.key, "ca.crt");
      if (mode === "self") {
        const args =
          (one(objects, "Deployment").spec as { template: { spec: { containers: { args: string[] }[] } } }).template
            .spec.containers[0]?.args ?? [];
        assert.equal(ep.tlsConfig.ca.secret.name, args[args.indexOf("--ca-secret") + 1], "the injector's CA Secret");
        assert.equal(args[args.indexOf("--service") + 1], service.metadata.name, "the certificate names the Service");
      } else {
        const cert = one(objects, "Certificate", `${FULLNAME}-serving`);
        const certSpec = cert.spec as { secretName: string; dnsNames: string[] };
        assert.equal(ep.tlsConfig.ca.secret.name, certSpec.secretName);
        assert.ok(certSpec.dnsNames.includes(ep.tlsConfig.serverName));
      }
    }
    // tls.mode=secret: the chart knows no Secret with the CA; it asks for tlsConfig, or takes it.
    const r = await run(
      helmPath(),
      ["template", RELEASE, CHART, "-n", NAMESPACE, "--kube-version", KUBE_VERSION, "--set", `${on},tls.mode=secret`],
      HELM_TIMEOUT_MS,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /monitoring\.serviceMonitor\.tlsConfig/);
    const given = await render([on, "tls.mode=secret", "monitoring.serviceMonitor.tlsConfig.insecureSkipVerify=true"]);
    assert.deepEqual(
      (one(given, "ServiceMonitor").spec as { endpoints: { tlsConfig: unknown }[] }).endpoints[0]?.tlsConfig,
      { insecureSkipVerify: true },
    );
  });

  describe("Grafana dashboard", () => {
    let file: Record<string, unknown> = {};
    before(async () => {
      file = JSON.parse(await readFile(join(CHART, "dashboards", "sidecar-injector.json"), "utf8")) as Record<
        string,
        unknown
      >;
    });

    interface Target {
      expr?: string;
      refId?: string;
    }
    interface Panel {
      id?: number;
      type?: string;
      title?: string;
      gridPos?: { x: number; y: number; w: number; h: number };
      datasource?: { type?: string; uid?: string };
      targets?: Target[];
    }

    test("the ConfigMap carries the sidecar's label and the file, unchanged", async () => {
      const objects = await render([
        "monitoring.dashboard.enabled=true",
        "monitoring.dashboard.namespace=grafana",
        "monitoring.dashboard.annotations.grafana_folder=Mesh",
      ]);
      const cm = one(objects, "ConfigMap", `${FULLNAME}-dashboard`);
      assert.equal(cm.metadata.namespace, "grafana");
      assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
      assert.equal(cm.metadata.annotations?.grafana_folder, "Mesh");
      const text = cm.data?.["sidecar-injector.json"];
      assert.ok(text !== undefined);
      assert.deepEqual(JSON.parse(text), file);
    });

    test("uid, title, schemaVersion; panels with unique ids, a place on the grid and the datasource variable", () => {
      assert.equal(file.uid, "sidecar-injector");
      assert.equal(typeof file.title, "string");
      assert.ok(
        typeof file.schemaVersion === "number" && file.schemaVersion >= 30,
        `schemaVersion ${String(file.schemaVersion)}`,
      );
      const vars = (file.templating as { list: { name: string; type: string; query: unknown }[] }).list;
      assert.deepEqual(
        vars.map((v) => v.name),
        ["datasource", "namespace", "job", "pod"],
      );
      const panels = file.panels as Panel[];
      assert.ok(panels.length >= 10, `${panels.length} panels`);
      const ids = panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, "unique panel ids");
      for (const p of panels) {
        assert.ok(p.title && p.gridPos, `panel ${String(p.id)}: title and gridPos`);
        assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.title} fits the 24-column grid`);
        if (p.type === "row") continue;
        assert.equal(p.datasource?.uid, "${datasource}", `panel ${p.title}: datasource variable`);
        assert.ok((p.targets ?? []).length > 0, `panel ${p.title}: targets`);
      }
    });

    test("every query reads exported metrics, with their labels, picked by the namespace and job variables", () => {
      const panels = (file.panels as Panel[]).filter((p) => p.type !== "row");
      const problems: string[] = [];
      const seen = new Set<string>();
      for (const p of panels) {
        for (const t of p.targets ?? []) {
          const expr = t.expr ?? "";
          problems.push(...promqlProblems(expr).map((x) => `${p.title ?? "?"} ${t.refId ?? "?"}: ${x}`));
          for (const s of readPromql(expr).selectors) {
            seen.add(s.metric);
            const m = new Map(s.matchers.map((x) => [x.name, x.value]));
            if (m.get("namespace") !== "$namespace" || m.get("job") !== "$job")
              problems.push(`${p.title ?? "?"}: ${s.metric} not picked by $namespace and $job`);
          }
        }
      }
      assert.deepEqual(problems, []);
      // The panels cover what the alerts are about.
      for (const metric of [
        "sidecar_injection_failure_total",
        "sidecar_injection_duration_seconds_bucket",
        "sidecar_injector_serving_cert_expiry_timestamp_seconds",
        "sidecar_injector_ca_expiry_timestamp_seconds",
        "sidecar_injector_cabundle_write_failures_total",
        "sidecar_injector_tls_handshake_failures_total",
        "up",
      ]) {
        assert.ok(seen.has(metric), `a panel shows ${metric}`);
      }
      // The variables' label_values() name exported metrics and labels too.
      const vars = (file.templating as { list: { name: string; query: unknown }[] }).list;
      for (const v of vars) {
        if (
          typeof v.query !== "object" ||
          v.query === null ||
          !("query" in v.query) ||
          typeof v.query.query !== "string"
        )
          continue;
        const lv = /^label_values\((.+),\s*([A-Za-z_]+)\)$/.exec(v.query.query);
        assert.ok(lv, `variable ${v.name}: ${v.query.query}`);
        assert.deepEqual(promqlProblems(lv[1] ?? ""), [], `variable ${v.name}`);
        assert.ok(TARGET_LABELS.has(lv[2] ?? ""), `variable ${v.name} reads label ${lv[2] ?? ""}`);
      }
    });
  });
});

/** PROMTOOL, else one left in the test-binary cache, else promtool on PATH: the first that runs. */
async function findPromtool(): Promise<string | undefined> {
  const cache =
    process.env.SIDECAR_INJECTOR_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "sidecar-injector");
  for (const candidate of [process.env.PROMTOOL, join(cache, "bin", "promtool"), "promtool"]) {
    if (!candidate) continue;
    if ((await run(candidate, ["--version"], HELM_TIMEOUT_MS)).code === 0) return candidate;
  }
  return undefined;
}
