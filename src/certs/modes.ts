// Where the serving certificate comes from, behind one small interface (CertificateSource):
// - local: a CA and leaf under certs/ (npm start), renewed in place (local.ts);
// - files: --tls-cert/--tls-key, e.g. issued by cert-manager, watched and reloaded (files.ts);
// - kubernetes: self-managed, with the CA in a Secret and the caBundle kept current
//   (manager.ts); until the manager has a pair the API server trusts, a throwaway one answers
//   /healthz and /readyz says not ready.
// Each mode's code is loaded only when that mode is chosen: `npm start` never loads the
// certificate manager or the Kubernetes client.
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { CertManager, CertManagerOptions } from "./manager.js";

export const CERT_MODES = ["local", "files", "kubernetes"] as const;
export type CertMode = (typeof CERT_MODES)[number];

/** Names the chart gives the injector's objects, used when no flag names them. */
export const DEFAULT_NAMES = {
  namespace: "sidecar-injector-system",
  service: "sidecar-injector",
  webhookConfig: "sidecar-injector",
  caSecret: "sidecar-injector-ca",
} as const;

/** A serving certificate: what the server listens with first, and what replaces it later. */
export interface CertificateSource {
  /** The pair to listen with; in kubernetes mode a placeholder until the manager has one. */
  readonly initial: { readonly cert: string; readonly key: string };
  /** Whether the pair served last is one the API server trusts (false for the placeholder). */
  serving(): boolean;
  /** Starts reloading, renewing or rotating; every new pair goes to `push`. */
  start(push: (cert: string, key: string) => void): Promise<void>;
  stop(): void;
}

/** What every source reports through. */
export interface CertificateSourceDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** A mode and what it needs. kubernetes: the manager's options, read when it starts. */
export type CertificateChoice =
  | { readonly mode: "local"; readonly dir: string; readonly extraNames?: readonly string[] }
  | { readonly mode: "files"; readonly certFile: string; readonly keyFile: string }
  | { readonly mode: "kubernetes"; readonly options: () => CertManagerOptions };

export async function openCertificateSource(
  choice: CertificateChoice,
  deps: CertificateSourceDeps,
): Promise<CertificateSource> {
  switch (choice.mode) {
    case "files":
      return (await import("./files.js")).openFileSource(choice.certFile, choice.keyFile, deps);
    case "kubernetes":
      return openManagedSource(choice.options, deps);
    case "local":
      return (await import("./local.js")).openLocalSource(choice.dir, deps, choice.extraNames ?? []);
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** kubernetes mode: a placeholder pair until the certificate manager pushes one the API server trusts. */
async function openManagedSource(
  options: () => CertManagerOptions,
  { logger, metrics }: CertificateSourceDeps,
): Promise<CertificateSource> {
  const { createCa, mintServingCert } = await import("./authority.js");
  const { CertManager, createCertMetrics } = await import("./manager.js");
  const { createKubeApi, defaultKubeConfig } = await import("../kube/client.js");
  const now = new Date();
  const scratch = await createCa({ validityMs: DAY_MS, now, commonName: "sidecar-injector-not-ready" });
  const issuer = scratch.certs[0];
  if (!issuer) throw new Error("could not create a placeholder certificate");
  const placeholder = await mintServingCert(scratch, issuer, {
    dnsNames: ["not-ready.invalid"],
    validityMs: DAY_MS,
    now,
  });
  let manager: CertManager | undefined;
  return {
    initial: { cert: placeholder.certPem, key: placeholder.keyPem },
    serving: () => manager?.certificate !== undefined,
    start: async (push) => {
      const k = options();
      const deps = {
        kube: createKubeApi(defaultKubeConfig({ environmentOnly: true })),
        logger,
        metrics: createCertMetrics(metrics.registry),
        onCertificate: (cert: { certPem: string; keyPem: string }) => push(cert.certPem, cert.keyPem),
      };
      manager = new CertManager(k, deps);
      await manager.start();
      logger.info(
        {
          namespace: k.namespace,
          secret: k.secretName,
          webhookConfig: k.webhookConfigName,
          ready: manager.certificate !== undefined,
        },
        "self-managed certificates started",
      );
    },
    stop: () => manager?.stop(),
  };
}
