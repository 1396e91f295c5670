// The differential test: our injector against Istio's own, on the corpus of cases/ (generated
// workloads, Istio's test inputs, and Istio's outputs fed back in; see test/oracle/README.md).
// Istio's answers were recorded by the oracle (Istio's injector with TestInjection's default
// settings), so this runs without Go.
//
// For each case our engine runs the way the CLI does, with the equivalent config
// (test/oracle/injector-config.yaml), and is compared with Istio's answer: both refuse (our
// message must name the annotation Istio names) or both admit, and then the injected manifests
// must be equal after the API server's normalisation (test/support/compare-injected.ts).
// Every difference falls in a bounded class (classify.ts).
//
// known-divergences.json (case id -> class) lists the cases that differ today. An unlisted
// case that differs fails; a listed one that now agrees fails ("remove it from the list"); a
// listed one that differs in another class fails. An entry `deliberate(<reason>): <classes>`
// is a difference kept on purpose (classify.ts, DELIBERATE_REASONS): it is checked the same way.
// `UPDATE_DIVERGENCES=1` rewrites the list (keeping each deliberate reason) and DIVERGENCES.md
// from what the test finds: review the diff, it should only shrink.
//
// Also, for every Pod of every case: the webhook (admit() on the AdmissionReview the API server
// would send), the preview's engine path and the CLI give the same result — one code path.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import { admit, validateAdmissionReview } from "../../src/admission/review.js";
import { parseConfig } from "../../src/config/load.js";
import type { Pod } from "../../src/kube/types.js";
import { inject } from "../../src/injection/inject.js";
import { InjectionError, type InjectResult } from "../../src/injection/types.js";
import { podOf } from "../../src/injection/workloads.js";
import { injectManifest, ManifestError, parseManifest } from "../../src/manifest.js";
import { preview } from "../../src/preview.js";
import { podAsCreated } from "../golden/cases.js";
import { compareInjected, describeDifferences, proxyInBothLists, proxyRefused } from "../support/compare-injected.js";
import { podReview } from "../support/review.js";
import { classOf, classOfDifference, DELIBERATE_REASONS, parseKnown } from "./classify.js";
import { loadCorpus, type CorpusCase } from "./corpus.js";

const here = dirname(fileURLToPath(import.meta.url));
const configFile = join(here, "..", "oracle", "injector-config.yaml");
const config = parseConfig(readFileSync(configFile, "utf8"), configFile);
const knownFile = join(here, "known-divergences.json");
const reportFile = join(here, "DIVERGENCES.md");
const update = process.env.UPDATE_DIVERGENCES === "1";
const known = JSON.parse(readFileSync(knownFile, "utf8")) as Record<string, string>;

/** The deliberate difference of Istio's Pods whose istio-proxy the API server refuses (classify.ts). */
const TWO_PROXIES = "two-proxies";

/** At least this many cases: the corpus is the point. */
const MIN_CASES = 1200;

interface Verdict {
  readonly id: string;
  /** Both refuse or both admit. */
  readonly refusalAgrees: boolean;
  readonly refusedBy: "both" | "neither" | "istio" | "ours";
  /** The class when the case diverges. */
  readonly cls?: string;
  readonly details: readonly string[];
  /** The first difference of each class, for the report. */
  readonly byClass?: ReadonlyMap<string, string>;
  /** Why the API server would refuse the istio-proxy of Istio's answer (proxyRefused). */
  readonly istioProxyRefused?: string;
}

type Ours = { readonly docs: readonly unknown[] } | { readonly refusal: string };

/** Our config, but ignoring no namespace, as Istio's kube-inject ignores none. */
const noIgnoredNamespaces = { ...config, ignoredNamespaces: [] };

function ours(manifest: string, id: string, cfg: typeof config = config): Ours {
  try {
    return { docs: injectManifest(manifest, id, "default", cfg).docs };
  } catch (e) {
    if (e instanceof InjectionError || e instanceof ManifestError) return { refusal: e.message };
    throw e;
  }
}

type Doc = {
  kind?: unknown;
  metadata?: { namespace?: unknown };
  items?: unknown[];
  spec?: { jobTemplate?: { spec?: { template?: { metadata?: { annotations?: unknown } } } } };
};

function documents(manifest: string): Doc[] {
  let docs: unknown[];
  try {
    docs = parseManifest(manifest, "manifest");
  } catch {
    return [];
  }
  const flat = (d: unknown): Doc[] => {
    const doc = (typeof d === "object" && d !== null ? d : {}) as Doc;
    return doc.kind === "List" && Array.isArray(doc.items) ? doc.items.flatMap(flat) : [doc];
  };
  return docs.flatMap(flat);
}

/** The annotation keys on the pod templates of the manifest's CronJobs. */
function cronJobTemplateAnnotations(manifest: string): string[] {
  return documents(manifest)
    .filter((d) => d.kind === "CronJob")
    .flatMap((d) => {
      const a = d.spec?.jobTemplate?.spec?.template?.metadata?.annotations;
      return typeof a === "object" && a !== null ? Object.keys(a) : [];
    });
}

/** Whether a document of the manifest is in a namespace the injector ignores (kube-system …). */
function ignoredNamespaceDocs(manifest: string): boolean {
  return documents(manifest).some(
    (d) => typeof d.metadata?.namespace === "string" && config.ignoredNamespaces.includes(d.metadata.namespace),
  );
}

/** Why a refusal on one side only is deliberate (README, "Deliberate differences from Istio"). */
const DELIBERATE = {
  ignoredNamespace:
    "admitted untouched, its namespace is one the injector ignores (as Istio's webhook ignores it; kube-inject does not look)",
} as const;

/** The annotations Istio's refusal names (`invalid value '…' for annotation '…'`). */
function annotationsNamed(refusal: string): string[] {
  return [...refusal.matchAll(/for annotation '([^']+)'/g)].map((m) => m[1] as string);
}

function judge(c: CorpusCase): Verdict {
  const o = ours(c.manifest, c.id);
  const istioRefused = c.refusal !== undefined;
  const weRefused = "refusal" in o;
  if (istioRefused && weRefused) {
    const named = annotationsNamed(c.refusal!);
    if (named.length > 0 && !named.some((a) => o.refusal.includes(a))) {
      return {
        id: c.id,
        refusalAgrees: true,
        refusedBy: "both",
        cls: "refusal-message",
        details: [`Istio: ${c.refusal!.slice(0, 200)}`, `ours: ${o.refusal.slice(0, 200)}`],
      };
    }
    return { id: c.id, refusalAgrees: true, refusedBy: "both", details: [] };
  }
  if (istioRefused) {
    // Istio's kube-inject does not look at the namespace; its webhook, like ours, leaves a Pod
    // in kube-system alone, unread. Deliberate when we refuse as Istio does once no namespace
    // is ignored.
    const unignored = ignoredNamespaceDocs(c.manifest) ? ours(c.manifest, c.id, noIgnoredNamespaces) : undefined;
    const named = annotationsNamed(c.refusal!);
    if (
      unignored &&
      "refusal" in unignored &&
      (named.length === 0 || named.some((a) => unignored.refusal.includes(a)))
    ) {
      const details = [
        `Istio: ${c.refusal!.slice(0, 200)}`,
        `ours: ${DELIBERATE.ignoredNamespace}; else ${unignored.refusal.slice(0, 200)}`,
      ];
      return { id: c.id, refusalAgrees: false, refusedBy: "istio", cls: "deliberate", details };
    }
    return {
      id: c.id,
      refusalAgrees: false,
      refusedBy: "istio",
      cls: "validation-istio-refuses",
      details: [`Istio: ${c.refusal!.slice(0, 200)}`],
    };
  }
  if (weRefused) {
    return {
      id: c.id,
      refusalAgrees: false,
      refusedBy: "ours",
      cls: "validation-we-refuse",
      details: [`ours: ${o.refusal.slice(0, 200)}`],
    };
  }
  const diffs = compareInjected(o.docs, c.output ?? "");
  if (diffs.length === 0) return { id: c.id, refusalAgrees: true, refusedBy: "neither", details: [] };
  const byClass = new Map<string, string>();
  for (const d of diffs) {
    const cls = classOfDifference(d);
    if (!byClass.has(cls)) byClass.set(cls, describeDifferences([d])[0]!);
  }
  let cls = classOf(diffs, proxyInBothLists(c.output ?? ""));
  if (cls === "skip-decision") {
    // Which side left a Pod alone, and the likely reason.
    if (ignoredNamespaceDocs(c.manifest)) cls = "ignored-namespace";
    else if (cronJobTemplateAnnotations(c.manifest).length > 0) cls = "skip-decision+cronjob-metadata";
  }
  const refused = proxyRefused(c.output ?? "");
  return {
    id: c.id,
    refusalAgrees: true,
    refusedBy: "neither",
    cls,
    details: describeDifferences(diffs, 6),
    byClass,
    ...(refused === undefined ? {} : { istioProxyRefused: refused }),
  };
}

const CONTROLLER_LABELS = ["pod-template-hash", "deploymentconfig"];

/** As JSON, nulls dropped: a null field and an absent one are stored alike. */
function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v), (_k, x: unknown) => (x === null ? undefined : x)) as T;
}

/**
 * A DeploymentConfig's Pod reaches the webhook owned by a ReplicationController (apiVersion v1),
 * so its ISTIO_META_OWNER says `apis/v1/…/deploymentconfigs/NAME`, as Istio's webhook says too;
 * the CLI, like istioctl kube-inject, reads the DeploymentConfig's own apiVersion.
 */
function ownerApiVersionNeutral(spec: unknown): unknown {
  return JSON.parse(
    JSON.stringify(spec).replaceAll("kubernetes://apis/apps.openshift.io/v1/", "kubernetes://apis/v1/"),
  ) as unknown;
}

/**
 * The webhook, the preview and the CLI on every Pod of the case: the same refusal, or the same
 * injected Pod. Returns the number of Pods checked.
 */
async function onePath(c: CorpusCase): Promise<number> {
  let docs: unknown[];
  try {
    docs = parseManifest(c.manifest, c.id);
  } catch (e) {
    if (e instanceof ManifestError) return 0;
    throw e;
  }
  const flat = (d: unknown): unknown[] => {
    const list = d as { kind?: string; items?: unknown[] } | null;
    return list?.kind === "List" && Array.isArray(list.items) ? list.items.flatMap(flat) : [d];
  };
  const located = docs.flatMap(flat).flatMap((d) => podOf(d, "default") ?? []);
  if (located.length === 0) return 0;
  const entries = await preview(docs, { config, givenLabels: { "istio-injection": "enabled" } });
  assert.equal(
    entries.length,
    located.length,
    `${c.id}: the preview finds ${entries.length} Pods, the CLI ${located.length}`,
  );
  for (const [i, l] of located.entries()) {
    const what = `${c.id} ${l.kind}/${l.name}`;
    let cli: InjectResult | undefined;
    let cliError: string | undefined;
    try {
      cli = inject(
        l.pod,
        l.workload ? { namespace: l.namespace, workload: l.workload } : { namespace: l.namespace },
        config,
      );
    } catch (e) {
      if (!(e instanceof InjectionError)) throw e;
      cliError = e.message;
    }
    // The webhook is sent the Pod as the API server would: a workload's as its controller creates it.
    const sent = structuredClone(l.kind === "Pod" ? l.pod : podAsCreated(l.kind, l.name, l.pod));
    const { review } = admit(
      validateAdmissionReview(podReview({ uid: `${c.id}-${i}`, namespace: l.namespace, object: sent })),
      { config },
    );
    const response = review.response!;
    const entry = entries[i]!;
    const previewCalled = entry.decision.reasons.length > 1 || entry.error !== undefined;
    if (cliError !== undefined) {
      assert.equal(response.allowed, false, `${what}: the CLI refuses (${cliError}), the webhook admits`);
      assert.ok(
        response.status?.message?.includes(cliError),
        `${what}: the webhook's refusal is not the CLI's: ${response.status?.message}`,
      );
      if (previewCalled)
        assert.equal(entry.error?.message, cliError, `${what}: the preview does not refuse as the CLI does`);
      continue;
    }
    assert.equal(response.allowed, true, `${what}: the webhook refuses (${response.status?.message}), the CLI admits`);
    const want = plain(cli!.pod);
    let got = structuredClone(sent) as Pod;
    if (cli!.decision.inject) {
      assert.ok(response.patch, `${what}: the CLI injects, the webhook answers no patch`);
      const ops = JSON.parse(Buffer.from(response.patch!, "base64").toString("utf8")) as jsonpatch.Operation[];
      got = jsonpatch.applyPatch(got, ops, true, false).newDocument;
    } else assert.equal(response.patch, undefined, `${what}: the CLI leaves it alone, the webhook patches it`);
    got = plain(got);
    const neutral = l.kind === "DeploymentConfig" ? ownerApiVersionNeutral : (v: unknown): unknown => v;
    assert.deepEqual(neutral(got.spec), neutral(want.spec), `${what}: the webhook's spec is not the CLI's`);
    assert.deepEqual(
      got.metadata?.annotations,
      want.metadata?.annotations,
      `${what}: the webhook's annotations are not the CLI's`,
    );
    const labels = { ...(got.metadata?.labels ?? {}) };
    for (const k of CONTROLLER_LABELS) if (want.metadata?.labels?.[k] === undefined) delete labels[k];
    assert.deepEqual(labels, want.metadata?.labels ?? {}, `${what}: the webhook's labels are not the CLI's`);
    if (previewCalled) {
      assert.equal(entry.error, undefined, `${what}: the preview refuses, the CLI admits`);
      assert.equal(entry.decision.inject, cli!.decision.inject, `${what}: the preview decides otherwise than the CLI`);
      const stored = cli!.decision.inject ? l.replace(cli!.pod) : l.kind === "Pod" ? l.pod : l.replace(l.pod);
      assert.deepEqual(plain(entry.object), plain(stored), `${what}: the preview's object is not the CLI's`);
    }
  }
  return located.length;
}

/** The annotation a refusal names: Istio's `for annotation '…'`, else the first Istio-looking key. */
function annotationOf(message: string): string {
  const m =
    /for annotation '([^']+)'/.exec(message) ??
    /((?:[a-z0-9.-]+\.)?istio\.io\/[A-Za-z0-9.-]+|prometheus\.io\/[a-z]+)/.exec(message);
  return m?.[1] ?? "(no annotation named)";
}

function report(verdicts: readonly Verdict[]): string {
  const n = verdicts.length;
  const equal = verdicts.filter((v) => v.cls === undefined).length;
  const agree = verdicts.filter((v) => v.refusalAgrees).length;
  // A case counts once in each class of its set; a deliberate one only as `deliberate`.
  const deliberateOf = (v: Verdict): string | undefined =>
    v.cls !== undefined && known[v.id] !== undefined ? parseKnown(known[v.id]!).deliberate : undefined;
  // A refusal on one side only is deliberate when judge() says so, or its listed entry does.
  const deliberate = verdicts.filter(
    (v) => !v.refusalAgrees && (v.cls === "deliberate" || deliberateOf(v) !== undefined),
  ).length;
  const byClass = new Map<string, Verdict[]>();
  const byReason = new Map<string, Verdict[]>();
  for (const v of verdicts) {
    const reason = deliberateOf(v);
    if (reason !== undefined) byReason.set(reason, [...(byReason.get(reason) ?? []), v]);
    for (const cls of reason !== undefined ? ["deliberate"] : (v.cls?.split("+") ?? []))
      byClass.set(cls, [...(byClass.get(cls) ?? []), v]);
  }
  const refused = (k: Verdict["refusedBy"]): number => verdicts.filter((v) => v.refusedBy === k).length;
  const rows = [...byClass.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
  const cell = (s: string): string => s.replace(/\s+/g, " ").trim().replace(/\|/g, "\\|").slice(0, 240);
  const byAnnotation = new Map<string, Verdict[]>();
  for (const v of verdicts) {
    if (v.refusedBy !== "istio" && v.refusedBy !== "ours") continue;
    const who = `${v.refusedBy === "ours" ? "we refuse" : "Istio refuses"}${v.cls === "deliberate" || deliberateOf(v) !== undefined ? " (deliberate)" : ""}`;
    const key = `${who} | ${annotationOf(v.details[0] ?? "")}`;
    byAnnotation.set(key, [...(byAnnotation.get(key) ?? []), v]);
  }
  const lines = [
    "# Divergences from Istio's injector",
    "",
    "Written by `UPDATE_DIVERGENCES=1 node --import tsx --test test/differential/differential.test.ts`",
    "from the corpus in `cases/` (see `test/oracle/README.md`); `known-divergences.json` is the",
    "same list, by case (each case's classes joined with `+`). Classes: `classify.ts`.",
    "",
    `- cases: ${n}`,
    `- equal to Istio after normalisation (or both refuse): ${equal} (${pct(equal, n)})`,
    `- divergent: ${n - equal}, of which deliberate (README): ${verdicts.filter((v) => deliberateOf(v) !== undefined).length}`,
    `- equal or a deliberate difference: ${equal + verdicts.filter((v) => deliberateOf(v) !== undefined).length}/${n}`,
    `- refusal agreement: ${agree}/${n} (${pct(agree, n)}); both refuse ${refused("both")}, only Istio ${refused("istio")}, only ours ${refused("ours")}`,
    `- refusal agreement but for the deliberate differences (README): ${agree}/${n - deliberate} (${pct(agree, n - deliberate)}); deliberate ${deliberate}`,
    "",
    "A case counts in every class it shows.",
    "",
    "| class | cases | example | first difference of the example |",
    "|---|---:|---|---|",
    ...rows.map(([cls, vs]) => {
      const ex = vs.find((v) => v.cls === cls) ?? vs.find((v) => v.byClass?.has(cls)) ?? vs[0]!;
      const detail = ex.byClass?.get(cls) ?? ex.details[0] ?? "";
      return `| ${cls} | ${vs.length} | \`${ex.id}\` | ${cell(detail)} |`;
    }),
    "",
    "Deliberate differences (listed as `deliberate(<reason>): <classes>`; reasons in `classify.ts`):",
    "",
    "| reason | cases | example | why we differ |",
    "|---|---:|---|---|",
    ...[...byReason.entries()].map(
      ([reason, vs]) =>
        `| ${reason} | ${vs.length} | \`${vs[0]!.id}\` | ${(DELIBERATE_REASONS[reason] ?? "").replace(/\|/g, "\\|")} |`,
    ),
    "",
    "Refusals on one side only, by annotation:",
    "",
    "| who | annotation | cases | example | message |",
    "|---|---|---:|---|---|",
    ...[...byAnnotation.entries()]
      .sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1))
      .map(([key, vs]) => `| ${key} | ${vs.length} | \`${vs[0]!.id}\` | ${cell(vs[0]!.details[0] ?? "")} |`),
    "",
  ];
  return lines.join("\n");
}

function pct(a: number, b: number): string {
  return b === 0 ? "-" : `${((100 * a) / b).toFixed(1)}%`;
}

describe("differential: our injector against Istio's", () => {
  const corpus = loadCorpus();
  const verdicts: Verdict[] = [];
  let pods = 0;

  test("the corpus is large enough and the list of known divergences names cases", () => {
    assert.ok(corpus.length >= MIN_CASES, `only ${corpus.length} cases: run npm run oracle:regen`);
    const ids = new Set(corpus.map((c) => c.id));
    assert.equal(ids.size, corpus.length, "case ids are unique");
    if (!update)
      for (const id of Object.keys(known))
        assert.ok(ids.has(id), `known-divergences.json names ${id}, which is no case: remove it`);
  });

  // Every case equals Istio's answer or differs on purpose: a difference may be listed only
  // with its deliberate reason (README, "Deliberate differences from Istio"), never as a
  // known defect.
  test("every listed divergence is a deliberate difference", () => {
    const undeliberate = Object.entries(known).filter(([, entry]) => parseKnown(entry).deliberate === undefined);
    assert.deepEqual(undeliberate, [], "fix these, or give the reason Istio's answer is not copied");
  });

  for (const c of corpus) {
    test(c.id, async () => {
      const v = judge(c);
      verdicts.push(v);
      pods += await onePath(c);
      if (update) return;
      const entry = known[c.id] === undefined ? undefined : parseKnown(known[c.id]!);
      if (entry?.deliberate !== undefined)
        assert.ok(
          Object.hasOwn(DELIBERATE_REASONS, entry.deliberate),
          `${c.id}: no deliberate reason ${entry.deliberate} in classify.ts`,
        );
      // The reason is checked, not taken on trust: Istio's Pod is one the API server refuses.
      if (entry?.deliberate === TWO_PROXIES && v.cls !== undefined)
        assert.ok(v.istioProxyRefused, `${c.id} is listed as ${TWO_PROXIES}, but Istio's istio-proxy is a valid one`);
      const listed = entry?.cls;
      if (v.cls === undefined) {
        assert.equal(
          listed,
          undefined,
          `${c.id} now agrees with Istio: remove it from known-divergences.json (class was ${listed})`,
        );
        return;
      }
      assert.equal(
        listed,
        v.cls,
        listed === undefined
          ? `${c.id} diverges from Istio (${v.cls}):\n  ${v.details.join("\n  ")}`
          : `${c.id} diverges in another class than listed (${listed} -> ${v.cls}):\n  ${v.details.join("\n  ")}`,
      );
    });
  }

  test("summary", (t) => {
    assert.equal(verdicts.length, corpus.length, "every case was judged");
    const text = report(verdicts);
    for (const line of text.split("\n").filter((l) => l.startsWith("- ") || l.startsWith("| "))) t.diagnostic(line);
    t.diagnostic(`one code path: webhook, preview and CLI agree on ${pods} Pods`);
    assert.ok(pods >= corpus.length, `only ${pods} Pods were checked on the three paths`);
    if (update) {
      // A listed case keeps its reason; a new one whose Istio answer has an istio-proxy the API
      // server refuses is the deliberate two-proxies difference.
      const reason = (v: Verdict): string | undefined =>
        (known[v.id] === undefined ? undefined : parseKnown(known[v.id]!).deliberate) ??
        (v.istioProxyRefused === undefined ? undefined : TWO_PROXIES);
      const list = Object.fromEntries(
        verdicts
          .filter((v) => v.cls !== undefined)
          .map((v) => [v.id, reason(v) === undefined ? v.cls! : `deliberate(${reason(v)!}): ${v.cls!}`]),
      );
      writeFileSync(knownFile, `${JSON.stringify(list, null, 2)}\n`);
      writeFileSync(reportFile, text);
    }
  });
});
