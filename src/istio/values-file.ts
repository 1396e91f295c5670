// A Helm values file of Istio's istiod chart, or an IstioOperator, turned into the ConfigMaps
// the chart at the pinned commit would render from it, so that `config import` reads them as it
// reads rendered ones. What the chart does (templates/istiod-injector-configmap.yaml,
// templates/configmap.yaml), done here:
// - `values`: the chart's defaults (pinned.ts) with the file's `global`,
//   `sidecarInjectorWebhook`, `revision`, `pilot.cni`, `pilot.env` and `gateways`'s
//   securityContext and seccompProfile merged over them, maps key by key, other values whole
//   (as helm merges a values file);
// - `config`: policy from `global.proxy.autoInject`, the selectors, injectedAnnotations and
//   defaultTemplates of `sidecarInjectorWebhook`, and its `templates` (custom ones); Istio's own
//   templates are the pinned commit's, so they are not written;
// - `mesh`: the chart's default mesh (its defaultConfig's meshId from `global.meshID`, image type
//   from `global.proxy.variant` or `global.variant`, and the discovery address of istiod[-REV]
//   in the release's namespace; Prometheus merge on, the trust domain cluster.local) with
//   `meshConfig` over it.
// An IstioOperator's `spec.values`, `spec.meshConfig`, `spec.hub`, `spec.tag` and
// `spec.revision` are those values. Pure.
import type { IstioConfigMaps } from "./import.js";
import { PINNED_VALUES } from "./pinned.js";
import { DEFAULT_PROXY_IMAGE } from "../config/defaults.js";

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function put(m: Plain, k: string, v: unknown): void {
  Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Values files merged in order, as helm merges `-f a -f b`. */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const m = merge(base, over);
  return isPlain(m) ? m : {};
}

/** `over` merged into a copy of `base`: maps key by key, anything else replaces. */
function merge(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over === undefined ? base : over;
  const out: Plain = {};
  for (const [k, v] of Object.entries(base)) put(out, k, v);
  for (const [k, v] of Object.entries(over)) put(out, k, v === null ? undefined : merge(out[k], v));
  return out;
}

function pick(v: unknown, keys: readonly string[]): Plain {
  const out: Plain = {};
  if (!isPlain(v)) return out;
  for (const k of keys) if (Object.hasOwn(v, k)) put(out, k, v[k]);
  return out;
}

/** Whether a document reads as a values file of Istio's chart (no kind, one of its keys). */
export function isIstioValues(doc: unknown): doc is Plain {
  return (
    isPlain(doc) &&
    doc.kind === undefined &&
    ["global", "meshConfig", "sidecarInjectorWebhook", "revision", "pilot"].some((k) => Object.hasOwn(doc, k))
  );
}

/** Whether a document is an IstioOperator. */
export function isIstioOperator(doc: unknown): doc is Plain {
  return isPlain(doc) && doc.kind === "IstioOperator";
}

/** The chart values an IstioOperator stands for. */
export function operatorValues(iop: Plain): Plain {
  const spec = isPlain(iop.spec) ? iop.spec : {};
  let values: Plain = isPlain(spec.values) ? { ...spec.values } : {};
  const global: Plain = isPlain(values.global) ? { ...values.global } : {};
  if (spec.hub !== undefined) put(global, "hub", spec.hub);
  if (spec.tag !== undefined) put(global, "tag", spec.tag);
  values = { ...values, global };
  if (spec.revision !== undefined) put(values, "revision", spec.revision);
  if (spec.meshConfig !== undefined) put(values, "meshConfig", spec.meshConfig);
  return values;
}

/** The two ConfigMaps the pinned chart renders from `values` (release namespace `namespace`). */
/**
 * The hub and tag a values file gets when it gives none: a values file is written for a
 * released chart, whose defaults name that release's images (Istio 1.28.0's, this injector's
 * default proxy image), not the development hub and tag of the pinned commit's chart
 * (registry.istio.io/testing, latest).
 */
const RELEASE_IMAGE_VALUES: Plain = (() => {
  const m = /^(.+)\/proxyv2:([^:/]+)$/.exec(DEFAULT_PROXY_IMAGE);
  if (!m) throw new Error(`${DEFAULT_PROXY_IMAGE}: not hub/proxyv2:tag`);
  return { global: { hub: m[1], tag: m[2] } };
})();

export function configMapsFromValues(values: Plain, label: string, namespace = "istio-system"): IstioConfigMaps {
  const picked = pick(values, ["global", "sidecarInjectorWebhook", "revision"]);
  const pilot = pick(values.pilot, ["cni", "env"]);
  const gateways = pick(values.gateways, ["securityContext", "seccompProfile"]);
  const rendered = merge(merge(PINNED_VALUES, RELEASE_IMAGE_VALUES), { ...picked, pilot, gateways });
  const r = isPlain(rendered) ? rendered : {};
  const webhook = isPlain(r.sidecarInjectorWebhook) ? r.sidecarInjectorWebhook : {};
  const proxy = isPlain(r.global) && isPlain(r.global.proxy) ? r.global.proxy : {};
  const config: Plain = {
    defaultTemplates:
      Array.isArray(webhook.defaultTemplates) && webhook.defaultTemplates.length > 0
        ? webhook.defaultTemplates
        : ["sidecar"],
    policy: proxy.autoInject ?? "enabled",
    alwaysInjectSelector: webhook.alwaysInjectSelector ?? [],
    neverInjectSelector: webhook.neverInjectSelector ?? [],
    injectedAnnotations: webhook.injectedAnnotations ?? {},
    ...(isPlain(webhook.templates) && Object.keys(webhook.templates).length > 0
      ? { templates: webhook.templates }
      : {}),
  };
  const revision = typeof r.revision === "string" ? r.revision : "";
  // The chart's defaultConfig: global.meshID, the proxy's image type (global.proxy.variant, else
  // global.variant), then the discovery address.
  const global = isPlain(r.global) ? r.global : {};
  const defaultConfig: Plain = {};
  if (typeof global.meshID === "string" && global.meshID !== "") put(defaultConfig, "meshId", global.meshID);
  const imageType = [proxy.variant, global.variant].find((v) => typeof v === "string" && v !== "");
  if (imageType !== undefined) put(defaultConfig, "image", { imageType });
  put(defaultConfig, "discoveryAddress", `istiod${revision === "" ? "" : `-${revision}`}.${namespace}.svc:15012`);
  const defaultMesh = {
    defaultConfig,
    defaultProviders: { metrics: ["prometheus"] },
    enablePrometheusMerge: true,
    rootNamespace: namespace,
    trustDomain: "cluster.local",
  };
  const mesh = merge(defaultMesh, values.meshConfig);
  // JSON is YAML: the importer reads all three texts with its bounded YAML reader.
  return {
    injector: { name: label, values: JSON.stringify(rendered), config: JSON.stringify(config) },
    mesh: { name: `${label}.meshConfig`, mesh: JSON.stringify(mesh) },
  };
}
