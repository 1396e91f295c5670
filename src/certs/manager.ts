// Self-managed serving certificates (kubernetes mode). Each replica:
// 1. keeps the CA (key + certificates) in one Secret: created if absent (on AlreadyExists the
//    winner's CA is adopted), renewed by appending a certificate for the same key when a third
//    of its life is left, expired certificates pruned; updates carry the resourceVersion, so
//    replicas converge on one CA; a deleted Secret is recreated from the CA held in memory;
// 2. publishes the union of unexpired CA certificates as the caBundle of every webhook of our
//    MutatingWebhookConfiguration, touching nothing else and only when it differs, and watches
//    the configuration so a wiped caBundle is restored at once;
// 3. mints its own serving certificate in memory and swaps it into the running server, and
//    moves to a leaf of a new CA only once that CA has been in the published bundle for the
//    propagation delay, so the API server never meets a certificate it does not trust.
// When the API server cannot be reached, the replica keeps serving (and renewing its leaf from
// the CA it holds) and retries with backoff.
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { KubeApi, SecretObject, WebhookConfigObject } from "../kube/api.js";
import { KubeError } from "../kube/api.js";
import {
  caBundlePem,
  caNeedsRenewal,
  createCa,
  currentCa,
  CA_SECRET_KEYS,
  fromSecretData,
  intendedLifetimeMs,
  leafNeedsRenewal,
  mintServingCert,
  pruneExpired,
  renewCa,
  servingDnsNames,
  splitSans,
  toSecretData,
  type CaEntry,
  type CaState,
  type ServingCert,
} from "./authority.js";

export interface CertManagerOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly webhookConfigName: string;
  /** When set, every MutatingWebhookConfiguration with these labels gets the caBundle (not the name). */
  readonly webhookConfigSelector?: string;
  readonly serviceName: string;
  readonly clusterDomain: string;
  readonly extraSans: readonly string[];
  readonly caValidityMs: number;
  readonly servingValidityMs: number;
  /** How long a CA must have been in the published caBundle before leaves it signed are served. */
  readonly propagationMs: number;
  /** Full re-check interval, whatever else happens. */
  readonly resyncMs: number;
  /** The CA is renewed when less than this fraction of its life is left (default 1/3). */
  readonly caRenewWhenLeft?: number;
  /** A serving certificate is renewed once this fraction of its life has passed (default 2/3). */
  readonly servingRenewAfter?: number;
}

export interface CertMetrics {
  readonly caExpiry: Gauge;
  readonly servingExpiry: Gauge;
  readonly rotations: Counter<"kind">;
  readonly bundleWrites: Counter;
  readonly bundleWriteFailures: Counter;
  readonly apiErrors: Counter;
}

export function createCertMetrics(registry: Registry): CertMetrics {
  const registers = [registry];
  const rotations = new Counter({
    name: "sidecar_injector_cert_rotations_total",
    help: "Certificates renewed (not the first one issued), by kind (ca, serving).",
    labelNames: ["kind"] as const,
    registers,
  });
  rotations.inc({ kind: "ca" }, 0);
  rotations.inc({ kind: "serving" }, 0);
  return {
    caExpiry: new Gauge({
      name: "sidecar_injector_ca_expiry_timestamp_seconds",
      help: "Expiry of the newest CA certificate (Unix seconds).",
      registers,
    }),
    servingExpiry: new Gauge({
      name: "sidecar_injector_serving_cert_expiry_timestamp_seconds",
      help: "Expiry of the serving certificate in use (Unix seconds).",
      registers,
    }),
    rotations,
    bundleWrites: new Counter({
      name: "sidecar_injector_cabundle_writes_total",
      help: "caBundle updates written to the MutatingWebhookConfiguration.",
      registers,
    }),
    bundleWriteFailures: new Counter({
      name: "sidecar_injector_cabundle_write_failures_total",
      help: "caBundle updates that failed.",
      registers,
    }),
    apiErrors: new Counter({
      name: "sidecar_injector_kube_api_errors_total",
      help: "Failed reconciles and watches against the Kubernetes API.",
      registers,
    }),
  };
}

export interface CertManagerDeps {
  readonly kube: KubeApi;
  readonly logger: Logger;
  readonly metrics: CertMetrics;
  /** Called with every new serving certificate (swap it into the server). */
  readonly onCertificate: (cert: ServingCert) => void;
  readonly now?: () => Date;
}

export interface CertStatus {
  readonly caCerts: readonly CaEntry[];
  readonly serving: ServingCert | undefined;
  readonly publishedBundle: string | undefined;
  readonly lastError: string | undefined;
}

const MAX_BACKOFF_MS = 30_000;
const WATCH_RESTART_MS = 2000;
const CONFLICT_RETRIES = 5;

export class CertManager {
  private ca: CaState | undefined;
  private serving: ServingCert | undefined;
  /** When each CA (by fingerprint) was first seen in the published caBundle. */
  private readonly publishedSince = new Map<string, number>();
  private publishedBundle: string | undefined;
  private webhookMissing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly stopWatches = new Set<() => void>();
  private running = false;
  private busy: Promise<void> | undefined;
  private again = false;
  private backoffMs = 1000;
  private lastError: string | undefined;
  private readonly now: () => Date;
  private readonly caRenewWhenLeft: number;
  private readonly servingRenewAfter: number;
  private readonly dns: string[];
  private readonly ips: string[];

  constructor(
    private readonly opts: CertManagerOptions,
    private readonly deps: CertManagerDeps,
  ) {
    this.now = deps.now ?? (() => new Date());
    this.caRenewWhenLeft = opts.caRenewWhenLeft ?? 1 / 3;
    this.servingRenewAfter = opts.servingRenewAfter ?? 2 / 3;
    const extra = splitSans(opts.extraSans);
    this.dns = [...servingDnsNames(opts.serviceName, opts.namespace, opts.clusterDomain), ...extra.dnsNames];
    this.ips = extra.ipAddresses;
  }

  get certificate(): ServingCert | undefined {
    return this.serving;
  }

  status(): CertStatus {
    return {
      caCerts: this.ca?.certs ?? [],
      serving: this.serving,
      publishedBundle: this.publishedBundle,
      lastError: this.lastError,
    };
  }

  /** Starts reconciling; resolves after the first pass (which may have failed and be retrying). */
  async start(): Promise<void> {
    this.running = true;
    this.watch();
    await this.kick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    for (const stop of this.stopWatches) stop();
    this.stopWatches.clear();
  }

  /** Runs a reconcile now (coalescing with one already running). */
  kick(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    this.busy = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && this.running);
    })().finally(() => {
      this.busy = undefined;
    });
    return this.busy;
  }

  private async pass(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    let failed = false;
    try {
      await this.reconcileCa();
      await this.publishBundle();
      this.lastError = undefined;
      this.backoffMs = 1000;
    } catch (e) {
      failed = true;
      this.lastError = e instanceof Error ? e.message : String(e);
      this.deps.metrics.apiErrors.inc();
      this.deps.logger.warn(
        { err: this.lastError, retryInMs: this.backoffMs },
        this.serving === undefined
          ? "certificate reconcile failed; no certificate yet, not ready until one is issued"
          : "certificate reconcile failed; serving with the certificate in hand",
      );
    }
    try {
      await this.reconcileLeaf();
    } catch (e) {
      failed = true;
      this.deps.logger.error({ err: e instanceof Error ? e.message : String(e) }, "serving certificate not issued");
    }
    if (!this.running) return;
    // After a failure, retry with backoff, but never later than the next renewal is due: a
    // serving certificate is renewed from the CA in memory even while the API server is away.
    const delay = failed ? Math.min(this.backoffMs, this.nextDelay()) : this.nextDelay();
    if (failed) this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.timer = setTimeout(() => void this.kick(), Math.max(100, delay));
    this.timer.unref();
  }

  // --- CA -------------------------------------------------------------------------------

  private async reconcileCa(): Promise<void> {
    const { kube } = this.deps;
    const { namespace, secretName } = this.opts;
    for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
      const now = this.now();
      const secret = await kube.readSecret(namespace, secretName);
      if (!secret) {
        const recreating = this.ca !== undefined;
        const state = this.ca ? this.ca : await createCa({ validityMs: this.opts.caValidityMs, now });
        try {
          await kube.createSecret(namespace, this.secretFor(state));
          this.adopt(state);
          this.deps.logger.info(
            { secret: `${namespace}/${secretName}`, recreated: recreating },
            recreating ? "CA Secret recreated from memory" : "CA created",
          );
        } catch (e) {
          if (e instanceof KubeError && e.status === 409) continue; // another replica won: adopt its CA
          throw e;
        }
        continue; // re-read, then renew or prune as needed
      }
      let state: CaState;
      try {
        state = fromSecretData(secret.data);
      } catch (e) {
        // A Secret we cannot use is replaced with the CA we hold (or a new one).
        const replacement = this.ca ?? (await createCa({ validityMs: this.opts.caValidityMs, now }));
        this.deps.logger.error(
          { secret: `${namespace}/${secretName}`, err: (e as Error).message },
          "CA Secret unusable; replacing it",
        );
        if (await this.write(secret, replacement)) this.adopt(replacement);
        continue;
      }
      const cur = currentCa(state, now);
      let next = state;
      let renewed = false;
      if (caNeedsRenewal(cur, now, this.caRenewWhenLeft)) {
        next = renewCa(state, { validityMs: this.opts.caValidityMs, now });
        renewed = true;
      }
      next = pruneExpired(next, now);
      if (next.certs.length === state.certs.length && !renewed) {
        this.adopt(state);
        return;
      }
      if (await this.write(secret, next)) {
        this.adopt(next);
        if (renewed) {
          this.deps.metrics.rotations.inc({ kind: "ca" });
          this.deps.logger.info(
            { notAfter: currentCa(next, now)?.notAfter, certificates: next.certs.length },
            "CA renewed (same key, new certificate appended)",
          );
        }
        return;
      }
      // conflict: someone else changed it; read again
    }
    throw new Error(`CA Secret ${namespace}/${secretName}: still conflicting after ${CONFLICT_RETRIES} attempts`);
  }

  private secretFor(state: CaState, resourceVersion?: string): SecretObject {
    return {
      metadata: {
        name: this.opts.secretName,
        namespace: this.opts.namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
        labels: { "app.kubernetes.io/managed-by": "sidecar-injector", "app.kubernetes.io/component": "webhook-ca" },
      },
      type: "Opaque",
      data: toSecretData(state),
    };
  }

  /** Replaces the Secret with `state` under its resourceVersion; false on a conflict. */
  private async write(current: SecretObject, state: CaState): Promise<boolean> {
    try {
      await this.deps.kube.replaceSecret(this.opts.namespace, this.secretFor(state, current.metadata.resourceVersion));
      return true;
    } catch (e) {
      if (e instanceof KubeError && e.status === 409) return false;
      throw e;
    }
  }

  private adopt(state: CaState): void {
    this.ca = state;
    const newest = state.certs[state.certs.length - 1];
    if (newest) this.deps.metrics.caExpiry.set(Math.floor(newest.notAfter.getTime() / 1000));
  }

  // --- caBundle -------------------------------------------------------------------------

  private desiredBundle(): string | undefined {
    if (!this.ca) return undefined;
    const pem = caBundlePem(this.ca, this.now());
    return pem ? Buffer.from(pem).toString("base64") : undefined;
  }

  private async publishBundle(): Promise<void> {
    const bundle = this.desiredBundle();
    if (!bundle) return;
    const { webhookConfigName: name, webhookConfigSelector: selector } = this.opts;
    const configs = selector
      ? await this.deps.kube.listWebhookConfigs(selector)
      : [await this.deps.kube.readWebhookConfig(name)].filter((c) => c !== undefined);
    if (configs.length === 0) {
      const what = selector ? { webhookConfigSelector: selector } : { webhookConfig: name };
      if (!this.webhookMissing)
        this.deps.logger.warn(what, "MutatingWebhookConfiguration not found; caBundle not published");
      this.webhookMissing = true;
      return;
    }
    this.webhookMissing = false;
    for (const cfg of configs) await this.publishTo(cfg, bundle);
    this.notePublished(bundle);
  }

  /** Writes `bundle` into every webhook of `cfg` that lacks it, re-reading on conflicts. */
  private async publishTo(first: WebhookConfigObject, bundle: string): Promise<void> {
    let cfg: WebhookConfigObject | undefined = first;
    for (let attempt = 0; attempt < CONFLICT_RETRIES && cfg; attempt++) {
      const updates = cfg.webhooks.flatMap((w, index) => (w.caBundle === bundle ? [] : [{ index, caBundle: bundle }]));
      if (updates.length === 0) return;
      try {
        await this.deps.kube.patchCaBundles(cfg.name, cfg.resourceVersion, updates);
        this.deps.metrics.bundleWrites.inc();
        this.deps.logger.info(
          { webhookConfig: cfg.name, webhooks: updates.length, caCertificates: this.ca?.certs.length },
          "caBundle published",
        );
        return;
      } catch (e) {
        this.deps.metrics.bundleWriteFailures.inc();
        if (!(e instanceof KubeError && e.conflict)) throw e;
        cfg = await this.deps.kube.readWebhookConfig(first.name);
      }
    }
    if (cfg) throw new Error(`caBundle of ${first.name}: still conflicting after ${CONFLICT_RETRIES} attempts`);
  }

  private notePublished(bundle: string): void {
    this.publishedBundle = bundle;
    const now = this.now().getTime();
    const inBundle = new Set(
      (this.ca?.certs ?? []).filter((c) => c.notAfter.getTime() > now).map((c) => c.fingerprint256),
    );
    for (const fp of inBundle) if (!this.publishedSince.has(fp)) this.publishedSince.set(fp, now);
    for (const fp of [...this.publishedSince.keys()]) if (!inBundle.has(fp)) this.publishedSince.delete(fp);
  }

  /** A CA whose leaves the API server will trust: published long enough (or nothing to publish to). */
  private trusted(ca: CaEntry, nowMs: number): boolean {
    if (this.webhookMissing) return true;
    const since = this.publishedSince.get(ca.fingerprint256);
    return since !== undefined && nowMs - since >= this.opts.propagationMs;
  }

  // --- serving certificate ---------------------------------------------------------------

  private async reconcileLeaf(): Promise<void> {
    const ca = this.ca;
    if (!ca) return;
    const now = this.now();
    const nowMs = now.getTime();
    const valid = ca.certs.filter((c) => c.notBefore.getTime() <= nowMs && c.notAfter.getTime() > nowMs);
    const target = currentCa(ca, now);
    if (!target) return;
    // Newest CA the API server trusts; with no certificate yet, the newest published one (or
    // the target when nothing could be published: nobody can call us before it is).
    const trustedCa = [...valid].reverse().find((c) => this.trusted(c, nowMs));
    const publishedCa = [...valid].reverse().find((c) => this.publishedSince.has(c.fingerprint256));
    const current = this.serving;
    const issuerValid = current !== undefined && valid.some((c) => c.fingerprint256 === current.issuerFingerprint256);
    let issuer: CaEntry | undefined;
    let reason = "";
    if (!current) {
      issuer = trustedCa ?? publishedCa ?? target;
      reason = "first certificate";
    } else if (leafNeedsRenewal(current, now, this.servingRenewAfter) || !issuerValid) {
      issuer =
        trustedCa ??
        (issuerValid ? valid.find((c) => c.fingerprint256 === current.issuerFingerprint256) : undefined) ??
        publishedCa ??
        target;
      reason = issuerValid ? "renewal" : "issuer expired";
    } else if (
      trustedCa &&
      trustedCa.fingerprint256 !== current.issuerFingerprint256 &&
      trustedCa.notBefore >
        (valid.find((c) => c.fingerprint256 === current.issuerFingerprint256)?.notBefore ?? new Date(0))
    ) {
      issuer = trustedCa;
      reason = "new CA";
    }
    if (!issuer) return;
    const cert = await mintServingCert(ca, issuer, {
      dnsNames: this.dns,
      ipAddresses: this.ips,
      validityMs: this.opts.servingValidityMs,
      now,
    });
    this.serving = cert;
    this.deps.onCertificate(cert);
    if (current) this.deps.metrics.rotations.inc({ kind: "serving" });
    this.deps.metrics.servingExpiry.set(Math.floor(cert.notAfter.getTime() / 1000));
    this.deps.logger.info(
      { reason, serial: cert.serial, notAfter: cert.notAfter, issuer: issuer.serial },
      "serving certificate rotated",
    );
  }

  /** Until the next thing to do: leaf renewal, a CA becoming trusted, CA renewal, or resync. */
  private nextDelay(): number {
    const nowMs = this.now().getTime();
    const at: number[] = [nowMs + this.opts.resyncMs];
    const s = this.serving;
    // When what is left of a certificate's life drops to `left` of it.
    const when = (c: { notBefore: Date; notAfter: Date }, left: number): number =>
      c.notAfter.getTime() - Math.round(intendedLifetimeMs(c.notBefore, c.notAfter) * left);
    if (s) at.push(when(s, 1 - this.servingRenewAfter), s.notAfter.getTime());
    for (const c of this.ca?.certs ?? []) {
      const since = this.publishedSince.get(c.fingerprint256);
      if (since !== undefined && s && c.fingerprint256 !== s.issuerFingerprint256)
        at.push(since + this.opts.propagationMs);
      at.push(when(c, this.caRenewWhenLeft) + 1, c.notAfter.getTime());
    }
    const next = Math.min(...at.filter((t) => t > nowMs));
    return Number.isFinite(next) ? next - nowMs + 50 : this.opts.resyncMs;
  }

  // --- watch ------------------------------------------------------------------------------

  private watch(): void {
    // The webhook configuration: a caBundle wiped or changed by someone else is put back.
    this.keepWatching("webhook configuration", (onEnd) =>
      this.deps.kube.watchWebhookConfig(
        this.opts.webhookConfigSelector
          ? { labelSelector: this.opts.webhookConfigSelector }
          : { name: this.opts.webhookConfigName },
        (cfg: WebhookConfigObject | undefined) => {
          const bundle = this.desiredBundle();
          if (!cfg || !bundle) return;
          if (cfg.webhooks.some((w) => w.caBundle !== bundle)) {
            this.deps.logger.info({ webhookConfig: cfg.name }, "caBundle changed by someone else; restoring it");
            void this.kick();
          }
        },
        onEnd,
      ),
    );
    // The CA Secret: deleted, it is recreated from memory at once; changed by another replica
    // (a renewal), it is adopted.
    this.keepWatching("CA Secret", (onEnd) =>
      this.deps.kube.watchSecret(
        this.opts.namespace,
        this.opts.secretName,
        (secret: SecretObject | undefined) => {
          const held = this.ca ? toSecretData(this.ca) : undefined;
          const same = secret?.data && held && secret.data[CA_SECRET_KEYS.cert] === held[CA_SECRET_KEYS.cert];
          if (same) return;
          this.deps.logger.info(
            { secret: `${this.opts.namespace}/${this.opts.secretName}`, deleted: secret === undefined },
            "CA Secret changed; reconciling",
          );
          void this.kick();
        },
        onEnd,
      ),
    );
  }

  /** Runs a watch, restarting it (after a pause) whenever it ends, until stop(). */
  private keepWatching(what: string, start: (onEnd: (err?: unknown) => void) => Promise<() => void>): void {
    if (!this.running) return;
    let stop: (() => void) | undefined;
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      if (stop) this.stopWatches.delete(stop);
      if (!this.running) return;
      if (err) {
        this.deps.metrics.apiErrors.inc();
        this.deps.logger.debug({ err: String(err), watch: what }, "watch ended; restarting");
      }
      setTimeout(() => this.keepWatching(what, start), WATCH_RESTART_MS).unref();
    };
    start(end).then(
      (s) => {
        stop = s;
        if (ended || !this.running) s();
        else this.stopWatches.add(s);
      },
      (err: unknown) => end(err ?? new Error("watch failed")),
    );
  }
}
