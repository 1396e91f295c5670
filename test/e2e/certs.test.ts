// End-to-end: the injector managing its own certificates (`serve --cert-mode kubernetes`)
// against a real kube-apiserver. The chart's MutatingWebhookConfiguration is installed in its
// development (URL) mode WITHOUT a caBundle: the injector must create its CA Secret, publish
// the caBundle and keep it current while its CA and serving certificates rotate, while other
// replicas race it, and while the Secret, the caBundle or the API server itself go away.
//
// Each scenario has its own CA namespace (so it starts from an empty one) and re-creates the
// webhook configuration pointing at its own injector process.
import { podReview } from "../support/review.js";
import assert from "node:assert/strict";
import { X509Certificate, createPublicKey } from "node:crypto";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { connect, checkServerIdentity, type PeerCertificate } from "node:tls";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { Pod } from "../../src/kube/types.js";
import { clusterForSuite, type Cluster } from "./cluster.js";
import { freePort, httpsRequest, Injector, metricValue } from "./injector.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHART = join(ROOT, "charts", "sidecar-injector");
const CHART_NAMESPACE = "sidecar-injector-system";
const MWC = "sidecar-injector";
const CA_SECRET = "sidecar-injector-ca";
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC}`;

const { cluster, skip } = await clusterForSuite("end-to-end certificate tests", { serviceAccountAdmission: true });

type Obj = Record<string, unknown>;
interface Webhook {
  name: string;
  clientConfig: { url?: string; caBundle?: string };
}
interface WebhookConfiguration {
  metadata: { name: string; resourceVersion?: string };
  webhooks: Webhook[];
}
interface Secret {
  metadata: { resourceVersion?: string; uid?: string };
  data?: Record<string, string>;
}

function kube(): Cluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number): string => (ms / 1000).toFixed(1);

// ---------------------------------------------------------------------------
// Certificates

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_KEY = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/g;

function certsOf(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

const fingerprint = (cert: X509Certificate): string => cert.fingerprint256;
const expired = (cert: X509Certificate, slackMs = 0): boolean =>
  new Date(cert.validTo).getTime() + slackMs < Date.now();

/** Whether `leaf` is signed by one of `cas` (issuer name and signature). */
function issuedByOneOf(leaf: X509Certificate, cas: X509Certificate[]): boolean {
  return cas.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
}

function describeCert(cert: X509Certificate): string {
  return `subject=${cert.subject.replace(/\n/g, ",")} issuer=${cert.issuer.replace(/\n/g, ",")} ${cert.validFrom} → ${cert.validTo} sha256=${cert.fingerprint256.slice(0, 17)}`;
}

interface Handshake {
  cert: X509Certificate;
  /** Chain verified against the given CA bundle. */
  authorized: boolean;
  authorizationError: string | undefined;
  /** Error of the 127.0.0.1 identity check, when the certificate does not name it. */
  identityError: string | undefined;
}

/**
 * A TLS handshake with the injector on 127.0.0.1:`port`, verified against `ca` as the API
 * server would (chain to the caBundle, identity 127.0.0.1). Never rejects on a verification
 * failure: the result says what failed.
 */
function handshake(port: number, ca: string): Promise<Handshake> {
  return new Promise((ok, fail) => {
    // No servername: SNI carries no IP addresses; the identity is checked against the host.
    const socket = connect({ host: "127.0.0.1", port, ca, rejectUnauthorized: false, timeout: 3000 });
    socket.once("secureConnect", () => {
      // Read once: in Node 20 a second read (getPeerCertificate or getPeerX509Certificate)
      // comes back without subjectaltname, which fails checkServerIdentity.
      const peerCert: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      if (!peerCert.raw) return fail(new Error("no peer certificate"));
      const identity = checkServerIdentity("127.0.0.1", peerCert);
      ok({
        cert: new X509Certificate(peerCert.raw),
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        identityError: identity?.message,
      });
    });
    socket.once("timeout", () => socket.destroy(new Error("TLS handshake timed out")));
    socket.once("error", fail);
  });
}

// ---------------------------------------------------------------------------
// The cluster objects the injector manages

async function helmWebhookConfiguration(url: string): Promise<Obj> {
  const r = await kube().helm([
    "template",
    "sidecar-injector",
    CHART,
    "--namespace",
    CHART_NAMESPACE,
    "--set",
    `webhook.url=${url}`,
    "--set",
    "fullnameOverride=sidecar-injector",
  ]);
  assert.equal(r.code, 0, `helm template failed: ${r.stderr}`);
  const mwc = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .find((d) => d?.kind === "MutatingWebhookConfiguration");
  assert.ok(mwc, "the chart renders a MutatingWebhookConfiguration");
  return mwc;
}

/** Replaces the webhook configuration with the chart's, calling `url`, without a caBundle. */
async function installWebhookConfiguration(url: string): Promise<void> {
  const mwc = await helmWebhookConfiguration(url);
  const webhooks = mwc.webhooks as Webhook[];
  assert.ok(webhooks.length > 0);
  for (const w of webhooks) {
    assert.equal(w.clientConfig.url, url);
    assert.equal(w.clientConfig.caBundle, undefined, `${w.name}: rendered without a caBundle`);
  }
  const del = await kube().request("DELETE", MWC_PATH);
  assert.ok(del.status === 200 || del.status === 404, del.text);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await kube().request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);
    if (r.status === 201) return;
    // 409 while the old one is still being deleted.
    assert.ok(r.status === 409 && Date.now() < deadline, `creating the webhook configuration: ${r.status} ${r.text}`);
    await sleep(100);
  }
}

async function removeWebhookConfiguration(): Promise<void> {
  if (cluster?.apiServerRunning()) await cluster.request("DELETE", MWC_PATH).catch(() => undefined);
}

async function readWebhookConfiguration(): Promise<WebhookConfiguration> {
  const r = await kube().request<WebhookConfiguration>("GET", MWC_PATH);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/**
 * The published caBundle as PEM ("" when unset). Throws when the webhooks disagree: the
 * injector writes the same bundle into every webhook.
 */
function bundleOf(mwc: WebhookConfiguration): string {
  const bundles = mwc.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString("utf8"));
  const distinct = new Set(bundles);
  assert.equal(
    distinct.size,
    1,
    `every webhook carries the same caBundle (${mwc.webhooks.map((w) => `${w.name}: ${certsOf(Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString()).length} certs`).join(", ")})`,
  );
  return bundles[0] ?? "";
}

async function publishedBundle(): Promise<string> {
  return bundleOf(await readWebhookConfiguration());
}

/** Waits until every webhook has a non-empty caBundle and returns it (PEM). */
async function waitForBundle(timeoutMs: number): Promise<{ pem: string; afterMs: number }> {
  const started = Date.now();
  for (;;) {
    const mwc = await readWebhookConfiguration();
    if (mwc.webhooks.every((w) => (w.clientConfig.caBundle ?? "") !== ""))
      return { pem: bundleOf(mwc), afterMs: Date.now() - started };
    assert.ok(Date.now() - started < timeoutMs, `no caBundle published within ${seconds(timeoutMs)} s`);
    await sleep(100);
  }
}

/** Empties every caBundle with a PUT of the whole configuration, as a re-applied manifest does. */
async function wipeBundle(): Promise<void> {
  const mwc = await readWebhookConfiguration();
  for (const w of mwc.webhooks) w.clientConfig.caBundle = "";
  const r = await kube().request<WebhookConfiguration>("PUT", MWC_PATH, mwc);
  assert.equal(r.status, 200, r.text);
  assert.ok(
    r.json.webhooks.every((w) => (w.clientConfig.caBundle ?? "") === ""),
    "the PUT stored empty caBundles",
  );
}

interface CaSecret {
  certs: X509Certificate[];
  keys: string[];
  resourceVersion: string;
  uid: string;
}

async function readCaSecret(namespace: string): Promise<CaSecret | undefined> {
  const r = await kube().request<Secret>("GET", `/api/v1/namespaces/${namespace}/secrets/${CA_SECRET}`);
  if (r.status === 404) return undefined;
  assert.equal(r.status, 200, r.text);
  const decode = (k: string): string => Buffer.from(r.json.data?.[k] ?? "", "base64").toString("utf8");
  return {
    certs: certsOf(decode("ca.crt")),
    keys: decode("ca.key").match(PEM_KEY) ?? [],
    resourceVersion: r.json.metadata.resourceVersion ?? "",
    uid: r.json.metadata.uid ?? "",
  };
}

const publicKeyOf = (privatePem: string): string =>
  createPublicKey(privatePem).export({ type: "spki", format: "pem" }).toString();
const certKey = (cert: X509Certificate): string => cert.publicKey.export({ type: "spki", format: "pem" }).toString();

// ---------------------------------------------------------------------------
// Pods

const hasSidecar = (p: Pod): boolean =>
  [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].some((c) => c.name === "istio-proxy");

interface Creation {
  startedAt: number;
  endedAt: number;
  status: number;
  injected: boolean;
  message: string;
}

async function createPod(
  namespace: string,
  options: { dryRun?: boolean; timeoutMs?: number; prefix?: string } = {},
): Promise<Creation> {
  const startedAt = Date.now();
  const prefix = options.prefix ?? "load";
  const body = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: `${prefix}-`, namespace, labels: { app: prefix } },
    spec: { containers: [{ name: "app", image: "example.com/app:1", ports: [{ containerPort: 8080, name: "http" }] }] },
  };
  try {
    const r = await kube().request<Pod & { message?: string }>(
      "POST",
      `/api/v1/namespaces/${namespace}/pods${options.dryRun ? "?dryRun=All" : ""}`,
      body,
      {
        timeoutMs: options.timeoutMs ?? 15_000,
      },
    );
    const injected = r.status === 201 && hasSidecar(r.json);
    return {
      startedAt,
      endedAt: Date.now(),
      status: r.status,
      injected,
      message: r.status === 201 ? "" : (r.json?.message ?? r.text.slice(0, 300)),
    };
  } catch (e) {
    return { startedAt, endedAt: Date.now(), status: 0, injected: false, message: (e as Error).message };
  }
}

/** Until the API server calls the injector successfully (it applies configuration changes asynchronously). */
async function waitForInjection(namespace: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let last: Creation | undefined;
  while (Date.now() - started < timeoutMs) {
    last = await createPod(namespace, { dryRun: true, prefix: "probe", timeoutMs: 12_000 });
    if (last.injected) return Date.now() - started;
    await sleep(100);
  }
  throw new Error(`no injected Pod within ${seconds(timeoutMs)} s (last: ${last?.status} ${last?.message})`);
}

/** A steady stream of Pod creations from `concurrency` creators until stop(). */
class PodStream {
  readonly results: Creation[] = [];
  private running = true;
  private readonly workers: Promise<void>[];

  constructor(
    namespace: string,
    concurrency: number,
    options: { pauseMs?: number; dryRun?: boolean; maxMs?: number } = {},
  ) {
    const until = Date.now() + (options.maxMs ?? 120_000);
    this.workers = Array.from({ length: concurrency }, async () => {
      while (this.running && Date.now() < until) {
        const r = await createPod(namespace, { dryRun: options.dryRun ?? false });
        this.results.push(r);
        // Do not spin while everything fails fast (API server down).
        await sleep(r.status === 201 ? (options.pauseMs ?? 0) : 100);
      }
    });
  }

  async stop(): Promise<Creation[]> {
    this.running = false;
    await Promise.all(this.workers);
    return this.results;
  }
}

function summarize(failures: Creation[]): string {
  return failures
    .slice(0, 5)
    .map((f) => `${new Date(f.startedAt).toISOString()} ${f.status} ${f.message}`)
    .join("\n");
}

// ---------------------------------------------------------------------------
// Injectors

const injectors: Injector[] = [];

function certInjector(port: number, namespace: string, extra: string[] = []): Injector {
  const injector = new Injector(port, {
    args: [
      "--cert-mode",
      "kubernetes",
      "--namespace",
      namespace,
      "--webhook-config",
      MWC,
      "--ca-secret",
      CA_SECRET,
      "--tls-san",
      "127.0.0.1",
      ...extra,
    ],
    env: kube().env,
    logLevel: "info",
    readyTimeoutMs: 30_000,
  });
  injectors.push(injector);
  return injector;
}

/** The end of an injector's log, without the one line per admission review. */
function logTail(injector: Injector, lines = 40): string {
  return injector.output
    .trimEnd()
    .split("\n")
    .filter((l) => !l.includes('"msg":"admission review"'))
    .slice(-lines)
    .join("\n");
}

/**
 * The injector serves: a certificate the bundle trusts (chain, 127.0.0.1, unexpired), /readyz,
 * and an injected answer to a review sent directly. Adds the certificate's fingerprint to `seen`.
 */
async function checkServing(injector: Injector, bundle: string, seen?: Set<string>): Promise<void> {
  assert.ok(injector.running, "the injector is still running");
  const h = await handshake(injector.port, bundle);
  seen?.add(fingerprint(h.cert));
  assert.ok(
    h.authorized && !h.identityError,
    `certificate presented: ${h.authorizationError ?? h.identityError ?? ""} ${describeCert(h.cert)}`,
  );
  const ready = await httpsRequest(`${injector.url}/readyz`, bundle);
  assert.equal(ready.status, 200, `/readyz: ${ready.body}`);
  const answer = await httpsRequest(`${injector.url}/inject`, bundle, { method: "POST", body: review("recovery") });
  assert.equal(answer.status, 200, answer.body);
  const response = (JSON.parse(answer.body) as { response?: { allowed?: boolean; patch?: string } }).response;
  assert.equal(response?.allowed, true);
  assert.ok(response?.patch, "a patch");
}

/** Minimal AdmissionReview for a Pod CREATE, as the API server sends it. */
function review(namespace: string): string {
  return JSON.stringify(
    podReview({
      uid: "b3a1c2d4-0000-4000-8000-000000000001",
      namespace,
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "direct", namespace, labels: { app: "direct" } },
        spec: { containers: [{ name: "app", image: "example.com/app:1" }] },
      },
    }),
  );
}

// ---------------------------------------------------------------------------

describe("self-managed certificates (--cert-mode kubernetes) against a real kube-apiserver", { skip }, () => {
  before(async () => {
    const help = spawnSync(process.execPath, [join(ROOT, "dist", "cli.js"), "serve", "--help"], { encoding: "utf8" });
    assert.match(
      help.stdout,
      /--cert-mode/,
      "the built injector (dist/cli.js) has no --cert-mode: run `npm run build`",
    );
    await kube().createNamespace(CHART_NAMESPACE);
  });

  after(async () => {
    await Promise.all(injectors.map((i) => i.dispose()));
    await removeWebhookConfiguration();
    await cluster?.stop();
  });

  test("rotation under load: serving certificates and the CA rotate while Pods are created, and no creation fails", async () => {
    const workloads = "rotation";
    await kube().createNamespace(workloads, { "istio-injection": "enabled" });
    const injector = certInjector(await freePort(), CHART_NAMESPACE, [
      "--serving-validity",
      "8s",
      "--ca-validity",
      "30s",
      "--ca-bundle-propagation",
      "2s",
    ]);
    try {
      await installWebhookConfiguration(`${injector.url}/inject`);
      await injector.start();
      await waitForBundle(15_000);
      await waitForInjection(workloads, 30_000);
      // Rotations counted during the load only (the first CA and certificate count as rotations too).
      const initial = await injector.metrics(await publishedBundle());
      const servingBefore = metricValue(initial, "sidecar_injector_cert_rotations_total", { kind: "serving" }) ?? 0;
      const caBefore = metricValue(initial, "sidecar_injector_cert_rotations_total", { kind: "ca" }) ?? 0;

      // Watch what a new connection from the API server would see: the published bundle, and
      // the certificate the injector presents, which must chain to it.
      const servingSeen = new Set<string>();
      const casSeen = new Set<string>();
      const untrusted: string[] = [];
      let handshakes = 0;
      let maxBundleCerts = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          try {
            const bundle = await publishedBundle();
            const cas = certsOf(bundle);
            maxBundleCerts = Math.max(maxBundleCerts, cas.length);
            for (const ca of cas) casSeen.add(fingerprint(ca));
            const h = await handshake(injector.port, bundle);
            handshakes++;
            servingSeen.add(fingerprint(h.cert));
            if (!h.authorized || h.identityError) {
              untrusted.push(
                `${new Date().toISOString()} ${h.authorizationError ?? h.identityError} leaf: ${describeCert(h.cert)}; bundle: ${cas.map(describeCert).join(" | ")}`,
              );
            }
          } catch (e) {
            untrusted.push(`${new Date().toISOString()} sampler: ${(e as Error).message}`);
          }
          await sleep(250);
        }
      })();

      const loadMs = 50_000;
      const started = Date.now();
      const stream = new PodStream(workloads, 4, { maxMs: loadMs });
      await sleep(loadMs);
      const results = await stream.stop();
      sampling = false;
      await sampler;
      const elapsed = Date.now() - started;

      const bundle = await publishedBundle();
      const metrics = await injector.metrics(bundle);
      const servingRotations =
        (metricValue(metrics, "sidecar_injector_cert_rotations_total", { kind: "serving" }) ?? 0) - servingBefore;
      const caRotations =
        (metricValue(metrics, "sidecar_injector_cert_rotations_total", { kind: "ca" }) ?? 0) - caBefore;
      const writes = metricValue(metrics, "sidecar_injector_cabundle_writes_total") ?? 0;
      const writeFailures = metricValue(metrics, "sidecar_injector_cabundle_write_failures_total") ?? 0;
      const apiErrors = metricValue(metrics, "sidecar_injector_kube_api_errors_total") ?? 0;
      const failures = results.filter((r) => r.status !== 201);
      const notInjected = results.filter((r) => r.status === 201 && !r.injected);
      const admissions = results.length - failures.length - notInjected.length;
      const finalCas = certsOf(bundle);
      const expiredInBundle = finalCas.filter((c) => expired(c)).length;
      const secret = await readCaSecret(CHART_NAMESPACE);
      process.stderr.write(
        `ROTATION RESULT: duration=${seconds(elapsed)}s creations=${results.length} admissions=${admissions} failures=${failures.length} ` +
          `not_injected=${notInjected.length} rate=${(results.length / (elapsed / 1000)).toFixed(1)}/s ` +
          `serving_rotations=${servingRotations} ca_rotations=${caRotations} serving_certs_seen=${servingSeen.size} ` +
          `cas_seen=${casSeen.size} max_bundle_certs=${maxBundleCerts} final_bundle_certs=${finalCas.length} expired_in_bundle=${expiredInBundle} ` +
          `secret_ca_certs=${secret?.certs.length ?? 0} handshakes=${handshakes} untrusted_handshakes=${untrusted.length} ` +
          `cabundle_writes=${writes} cabundle_write_failures=${writeFailures} kube_api_errors=${apiErrors}\n`,
      );

      assert.equal(
        failures.length,
        0,
        `failed creations:\n${summarize(failures)}\ninjector log:\n${logTail(injector)}`,
      );
      assert.equal(notInjected.length, 0, "every Pod created is injected");
      assert.ok(admissions >= 100, `a steady stream of admissions (${admissions})`);
      assert.deepEqual(
        untrusted,
        [],
        "every serving certificate presented chains to the published caBundle and names 127.0.0.1",
      );
      assert.ok(servingRotations >= 3, `serving rotations during the load, from /metrics: ${servingRotations}`);
      assert.ok(caRotations >= 1, `CA rotations during the load, from /metrics: ${caRotations}`);
      assert.ok(servingSeen.size >= 4, `distinct serving certificates presented: ${servingSeen.size}`);
      assert.ok(casSeen.size >= 2, `distinct CA certificates published: ${casSeen.size}`);
      // The published bundle is the Secret's unexpired CA certificates.
      assert.ok(secret, "the CA Secret exists");
      assert.equal(secret.keys.length, 1, "one CA key (renewals reuse it)");
      const unexpiredInSecret = secret.certs
        .filter((c) => !expired(c))
        .map(fingerprint)
        .sort();
      assert.deepEqual(
        finalCas
          .filter((c) => !expired(c))
          .map(fingerprint)
          .sort(),
        unexpiredInSecret,
        "the caBundle holds the Secret's unexpired CA certificates",
      );
      // Expired CA certificates are pruned; allow for the pruning pass to come round.
      assert.equal(
        finalCas.filter((c) => expired(c, 15_000)).length,
        0,
        `no CA certificate expired for over 15 s in the caBundle: ${finalCas.map(describeCert).join(" | ")}`,
      );
    } finally {
      await injector.stop();
    }
  });

  test("two replicas started at once against an empty namespace converge on one CA that the caBundle trusts", async () => {
    const namespace = "ca-race";
    const workloads = "race";
    await kube().createNamespace(namespace);
    await kube().createNamespace(workloads, { "istio-injection": "enabled" });
    assert.equal(await readCaSecret(namespace), undefined, "no CA Secret yet");
    const [portA, portB] = [await freePort(), await freePort()];
    assert.notEqual(portA, portB);
    const a = certInjector(portA, namespace, ["--ca-bundle-propagation", "2s"]);
    const b = certInjector(portB, namespace, ["--ca-bundle-propagation", "2s"]);
    try {
      await installWebhookConfiguration(`${a.url}/inject`);
      // Both processes are spawned in the same tick.
      await Promise.all([a.start(), b.start()]);

      // Converged: one CA key in the Secret, both leaves signed by it and trusted by the bundle.
      const deadline = Date.now() + 30_000;
      let state = "";
      let converged = false;
      while (!converged && Date.now() < deadline) {
        const secret = await readCaSecret(namespace);
        const bundle = await publishedBundle();
        if (secret && bundle) {
          const [ha, hb] = await Promise.all([handshake(portA, bundle), handshake(portB, bundle)]);
          const chains = [ha, hb].map((h) => issuedByOneOf(h.cert, secret.certs));
          state =
            `secret: ${secret.keys.length} keys, ${secret.certs.length} certs; bundle: ${certsOf(bundle).length} certs; ` +
            `A: authorized=${ha.authorized} ${ha.authorizationError ?? ""} chains=${chains[0]}; B: authorized=${hb.authorized} ${hb.authorizationError ?? ""} chains=${chains[1]}`;
          converged =
            secret.keys.length === 1 &&
            ha.authorized &&
            hb.authorized &&
            !ha.identityError &&
            !hb.identityError &&
            chains.every(Boolean);
        } else state = `secret: ${secret ? "present" : "absent"}; bundle: ${bundle ? "published" : "empty"}`;
        if (!converged) await sleep(250);
      }
      assert.ok(converged, `not converged within 30 s: ${state}\nA:\n${logTail(a)}\nB:\n${logTail(b)}`);

      const secret = (await readCaSecret(namespace))!;
      assert.equal(secret.keys.length, 1, "the Secret holds exactly one CA key");
      const caPublic = publicKeyOf(secret.keys[0]!);
      assert.ok(secret.certs.length >= 1);
      for (const cert of secret.certs)
        assert.equal(certKey(cert), caPublic, `CA certificate of the Secret's key: ${describeCert(cert)}`);
      const bundle = await publishedBundle();
      const bundleCas = certsOf(bundle).map(fingerprint).sort();
      assert.deepEqual(bundleCas, secret.certs.map(fingerprint).sort(), "the caBundle is the Secret's CA");
      for (const [name, port] of [
        ["A", portA],
        ["B", portB],
      ] as const) {
        const h = await handshake(port, bundle);
        assert.ok(h.authorized, `${name}: ${h.authorizationError}`);
        assert.equal(h.identityError, undefined, `${name}: certificate names 127.0.0.1`);
        assert.ok(
          issuedByOneOf(h.cert, secret.certs),
          `${name}: serving certificate signed by the Secret's CA: ${describeCert(h.cert)}`,
        );
      }

      // Settled, not fighting: neither the Secret nor the configuration keeps changing.
      const mwcVersion = (await readWebhookConfiguration()).metadata.resourceVersion;
      await sleep(3_000);
      assert.equal(
        (await readWebhookConfiguration()).metadata.resourceVersion,
        mwcVersion,
        "the webhook configuration is not rewritten once converged",
      );
      assert.equal(
        (await readCaSecret(namespace))?.resourceVersion,
        secret.resourceVersion,
        "the CA Secret is not rewritten once converged",
      );

      // And the API server admits through it.
      await waitForInjection(workloads, 30_000);
      const created = await createPod(workloads, { prefix: "race" });
      assert.equal(created.status, 201, created.message);
      assert.ok(created.injected);
      const writesA = metricValue(await a.metrics(bundle), "sidecar_injector_cabundle_writes_total") ?? 0;
      const writesB = metricValue(await b.metrics(bundle), "sidecar_injector_cabundle_writes_total") ?? 0;
      process.stderr.write(
        `RACE RESULT: ca_certs=${secret.certs.length} ca_keys=${secret.keys.length} cabundle_writes A=${writesA} B=${writesB}\n`,
      );
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("--workers 2: the primary alone manages the certificates, every rotation reaches both workers, and every Pod created is injected", async () => {
    const namespace = "ca-workers";
    const workloads = "workers";
    await kube().createNamespace(namespace);
    await kube().createNamespace(workloads, { "istio-injection": "enabled" });
    const injector = certInjector(await freePort(), namespace, [
      "--workers",
      "2",
      "--serving-validity",
      "8s",
      "--ca-validity",
      "30s",
      "--ca-bundle-propagation",
      "2s",
    ]);
    type Line = { msg?: string; pid?: number; pids?: number[]; generation?: number; role?: string };
    const lines = (): Line[] =>
      injector.output
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Line);
    const firstLine = async (msg: string, timeoutMs: number): Promise<Line | undefined> => {
      const started = Date.now();
      for (;;) {
        const found = lines().find((l) => l.msg === msg);
        if (found !== undefined || Date.now() - started > timeoutMs) return found;
        await sleep(50);
      }
    };
    try {
      await installWebhookConfiguration(`${injector.url}/inject`);
      await injector.start();
      await waitForBundle(15_000);
      await waitForInjection(workloads, 30_000);
      // Log lines reach stdout in batches (at most 100 ms late): wait for the line, not for luck.
      const serving = await firstLine("sidecar injector serving", 10_000);
      const primary = injector.pid;
      const workers = serving?.pids ?? [];
      assert.equal(workers.length, 2, `two workers: ${JSON.stringify(serving)}`);
      assert.ok(primary !== undefined && !workers.includes(primary));

      // New connections go to the workers in turn: each handshake must present a certificate
      // the published bundle trusts. A worker left with an older pair would present it past its
      // 8 s validity, and be caught here or fail the API server's calls.
      const untrusted: string[] = [];
      const servingSeen = new Set<string>();
      let handshakes = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          try {
            const bundle = await publishedBundle();
            const h = await handshake(injector.port, bundle);
            handshakes++;
            servingSeen.add(fingerprint(h.cert));
            if (!h.authorized || h.identityError)
              untrusted.push(
                `${new Date().toISOString()} ${h.authorizationError ?? h.identityError} leaf: ${describeCert(h.cert)}`,
              );
          } catch (e) {
            untrusted.push(`${new Date().toISOString()} sampler: ${(e as Error).message}`);
          }
          await sleep(200);
        }
      })();
      const loadMs = 40_000;
      const stream = new PodStream(workloads, 4, { maxMs: loadMs });
      await sleep(loadMs);
      const results = await stream.stop();
      sampling = false;
      await sampler;

      const bundle = await publishedBundle();
      const metrics = await injector.metrics(bundle);
      const failures = results.filter((r) => r.status !== 201);
      const notInjected = results.filter((r) => r.status === 201 && !r.injected);
      const all = lines();
      const rotations = all.filter((l) => l.msg === "serving certificate rotated");
      const published = all.filter((l) => l.msg === "caBundle published");
      // Each new pair makes the primary not ready until every worker has taken it: "every
      // worker ready" comes once per pair, with its generation.
      const readyGenerations = all.filter((l) => l.msg === "every worker ready").map((l) => l.generation ?? 0);
      const reviewsBy = new Map<number, number>();
      for (const l of all)
        if (l.msg === "admission review" && l.pid !== undefined) reviewsBy.set(l.pid, (reviewsBy.get(l.pid) ?? 0) + 1);
      process.stderr.write(
        `WORKERS RESULT: creations=${results.length} failures=${failures.length} not_injected=${notInjected.length} ` +
          `serving_rotations=${rotations.length} serving_certs_seen=${servingSeen.size} handshakes=${handshakes} untrusted=${untrusted.length} ` +
          `ready_generations=${readyGenerations.join(",")} cabundle_publications=${published.length} ` +
          `cabundle_writes=${metricValue(metrics, "sidecar_injector_cabundle_writes_total") ?? 0} reviews_by_pid=${JSON.stringify(Object.fromEntries(reviewsBy))}\n`,
      );

      assert.equal(
        failures.length,
        0,
        `failed creations:\n${summarize(failures)}\ninjector log:\n${logTail(injector)}`,
      );
      assert.equal(notInjected.length, 0, "every Pod created is injected");
      assert.ok(results.length >= 50, `a steady stream of creations (${results.length})`);
      assert.deepEqual(
        untrusted,
        [],
        "every certificate presented, by either worker, chains to the published caBundle",
      );
      assert.ok(rotations.length >= 4, `serving rotations: ${rotations.length}`);
      assert.ok(servingSeen.size >= 4, `distinct serving certificates presented: ${servingSeen.size}`);
      // One certificate manager, in the primary: every rotation and caBundle write is its.
      assert.ok(published.length >= 1);
      assert.deepEqual(
        [...new Set([...rotations, ...published].map((l) => l.pid))],
        [primary],
        "only the primary rotates certificates and writes the caBundle",
      );
      assert.ok(
        (metricValue(metrics, "sidecar_injector_cabundle_writes_total") ?? 0) >= published.length,
        "the caBundle writes counted are the primary's",
      );
      // Every pair pushed after the first serving one reached both workers.
      const last = readyGenerations.at(-1) ?? 0;
      assert.ok(
        readyGenerations.length >= rotations.length - 1,
        `both workers took each pair: ready at generations ${readyGenerations.join(",")}, ${rotations.length} rotations`,
      );
      assert.ok(last >= rotations.length, `the last pair (generation ${last}) is served by both workers`);
      // The API server called both workers.
      assert.deepEqual(
        [...reviewsBy.keys()].sort(),
        [...workers].sort(),
        `reviews answered by each worker: ${JSON.stringify(Object.fromEntries(reviewsBy))}`,
      );
    } finally {
      await injector.stop();
    }
  });

  describe("recovery", () => {
    const namespace = "ca-recovery";
    const workloads = "recovery";
    let injector: Injector;

    before(async () => {
      await kube().createNamespace(namespace);
      await kube().createNamespace(workloads, { "istio-injection": "enabled" });
      injector = certInjector(await freePort(), namespace, ["--ca-bundle-propagation", "2s"]);
      await installWebhookConfiguration(`${injector.url}/inject`);
      await injector.start();
      await waitForBundle(15_000);
      await waitForInjection(workloads, 30_000);
    });

    after(async () => {
      await injector?.stop();
    });

    test("a deleted CA Secret is recreated with the same CA within seconds, and admissions keep succeeding", async () => {
      const original = await readCaSecret(namespace);
      assert.ok(original, "the CA Secret exists");
      const stream = new PodStream(workloads, 2, { pauseMs: 50 });
      try {
        await sleep(1_000);
        const del = await kube().request("DELETE", `/api/v1/namespaces/${namespace}/secrets/${CA_SECRET}`);
        assert.equal(del.status, 200, del.text);
        const deleted = Date.now();
        let recreated: CaSecret | undefined;
        while (Date.now() - deleted < 15_000) {
          recreated = await readCaSecret(namespace);
          if (recreated && recreated.uid !== original.uid) break;
          recreated = undefined;
          await sleep(100);
        }
        const tookMs = Date.now() - deleted;
        assert.ok(recreated, `the CA Secret is recreated within 15 s of its deletion\n${logTail(injector)}`);
        process.stderr.write(`RECOVERY RESULT: secret recreated after ${seconds(tookMs)} s\n`);
        assert.ok(tookMs <= 10_000, `recreated within 10 s (took ${seconds(tookMs)} s)`);
        assert.deepEqual(recreated.certs.map(fingerprint), original.certs.map(fingerprint), "the same CA certificates");
        assert.deepEqual(recreated.keys.map(publicKeyOf), original.keys.map(publicKeyOf), "the same CA key");
        await sleep(3_000);
      } finally {
        await stream.stop();
      }
      const failures = stream.results.filter((r) => r.status !== 201 || !r.injected);
      assert.ok(stream.results.length >= 10, `admissions during the test: ${stream.results.length}`);
      assert.equal(
        failures.length,
        0,
        `failed or uninjected creations while the Secret was gone:\n${summarize(failures)}`,
      );
    });

    test("a wiped caBundle is restored within 10 s, and admissions succeed again", async () => {
      const published = await publishedBundle();
      assert.ok(published, "a caBundle is published");
      await wipeBundle();
      const wiped = Date.now();
      const { pem, afterMs } = await waitForBundle(15_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${logTail(injector)}`);
      });
      assert.equal(pem, published, "the same bundle is restored");
      const admittedAfterMs = await waitForInjection(workloads, 30_000);
      process.stderr.write(
        `RECOVERY RESULT: caBundle restored after ${seconds(afterMs)} s, injecting again ${seconds(admittedAfterMs)} s later (${seconds(Date.now() - wiped)} s after the wipe)\n`,
      );
      assert.ok(afterMs <= 10_000, `restored within 10 s (took ${seconds(afterMs)} s)`);
      for (let i = 0; i < 10; i++) {
        const r = await createPod(workloads, { prefix: "restored" });
        assert.equal(r.status, 201, r.message);
        assert.ok(r.injected);
      }
    });

    test("the API server restarts: the injector keeps serving, and once it is back Pods are injected, nothing fails and the configuration is watched again", async () => {
      const bundle = await publishedBundle();
      const errorsBefore = metricValue(await injector.metrics(bundle), "sidecar_injector_kube_api_errors_total") ?? 0;
      const stream = new PodStream(workloads, 2, { pauseMs: 50 });
      let back = 0;
      let directChecks = 0;
      try {
        await sleep(1_000);
        await kube().stopApiServer({ graceMs: 3_000 });
        const downAt = Date.now();
        // While it is down: the injector keeps answering, with a certificate the published
        // caBundle trusts.
        while (Date.now() - downAt < 5_000) {
          await checkServing(injector, bundle).catch((e: Error) => {
            throw new Error(
              `${seconds(Date.now() - downAt)} s into the API server outage: ${e.message}\n${logTail(injector)}`,
              { cause: e },
            );
          });
          directChecks++;
          await sleep(300);
        }
        await kube().startApiServer();
        back = Date.now();
        await sleep(8_000);
      } finally {
        if (!kube().apiServerRunning()) await kube().startApiServer();
        await stream.stop();
      }
      const afterBack = stream.results.filter((r) => r.startedAt >= back);
      const failedAfterBack = afterBack.filter((r) => r.status !== 201 || !r.injected);
      const errorsAfter = metricValue(await injector.metrics(bundle), "sidecar_injector_kube_api_errors_total") ?? 0;
      process.stderr.write(
        `RECOVERY RESULT: API server down 5 s: ${directChecks} direct reviews answered; after it was back ${afterBack.length} creations, ` +
          `${failedAfterBack.length} failed; kube_api_errors ${errorsBefore} -> ${errorsAfter}\n`,
      );
      assert.ok(afterBack.length >= 10, `creations after the API server was back: ${afterBack.length}`);
      assert.equal(
        failedAfterBack.length,
        0,
        `failed or uninjected creations after the API server was back:\n${summarize(failedAfterBack)}`,
      );

      // The injector watches the configuration again after the outage.
      await wipeBundle();
      const { pem, afterMs } = await waitForBundle(15_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${logTail(injector)}`, { cause: e });
      });
      process.stderr.write(`RECOVERY RESULT: caBundle wiped after the restart, restored in ${seconds(afterMs)} s\n`);
      assert.equal(pem, bundle);
      assert.ok(afterMs <= 10_000, `restored within 10 s after the restart (took ${seconds(afterMs)} s)`);
      await waitForInjection(workloads, 30_000);
    });

    test("a serving certificate that comes due while the API server is down is renewed on time, from the CA in hand", async () => {
      // The same replica again (same port, Secret and webhook configuration), now with serving
      // certificates short enough to come up for renewal (at 4 s) during a 10 s outage.
      await injector.stop();
      injector = certInjector(injector.port, namespace, ["--ca-bundle-propagation", "2s", "--serving-validity", "6s"]);
      await injector.start();
      const bundle = await publishedBundle();
      await waitForInjection(workloads, 30_000);
      const errorsBefore = metricValue(await injector.metrics(bundle), "sidecar_injector_kube_api_errors_total") ?? 0;
      const served = new Set<string>();
      let downAt = 0;
      try {
        await kube().stopApiServer({ graceMs: 3_000 });
        downAt = Date.now();
        while (Date.now() - downAt < 10_000) {
          await checkServing(injector, bundle, served).catch((e: Error) => {
            throw new Error(
              `${seconds(Date.now() - downAt)} s into the API server outage: ${e.message}\n${logTail(injector)}`,
              { cause: e },
            );
          });
          await sleep(250);
        }
      } finally {
        await kube().startApiServer();
      }
      const back = Date.now();
      await checkServing(injector, bundle, served).catch((e: Error) => {
        throw new Error(
          `${seconds(Date.now() - back)} s after the API server came back: ${e.message}\n${logTail(injector)}`,
          { cause: e },
        );
      });
      const injectingAfterMs = await waitForInjection(workloads, 15_000);
      const errorsAfter = metricValue(await injector.metrics(bundle), "sidecar_injector_kube_api_errors_total") ?? 0;
      process.stderr.write(
        `RECOVERY RESULT: 10 s outage with 6 s serving certificates: ${served.size} certificates presented, injecting ${seconds(injectingAfterMs)} s after it was back; ` +
          `kube_api_errors ${errorsBefore} -> ${errorsAfter}\n`,
      );
      assert.ok(served.size >= 2, `the serving certificate was renewed during the outage (${served.size} presented)`);
      assert.ok(
        errorsAfter > errorsBefore,
        `the failed reconciles show in sidecar_injector_kube_api_errors_total (${errorsBefore} -> ${errorsAfter})`,
      );
    });
  });
});
