// Where the serving certificate comes from.
// - local: a CA and leaf under certs/ (npm start), renewed in place;
// - files: --tls-cert/--tls-key, e.g. issued by cert-manager, watched and reloaded;
// - kubernetes: self-managed, with the CA in a Secret and the caBundle kept current.
export const CERT_MODES = ["local", "files", "kubernetes"] as const;
export type CertMode = (typeof CERT_MODES)[number];

/** Names the chart gives the injector's objects, used when no flag names them. */
export const DEFAULT_NAMES = {
  namespace: "sidecar-injector-system",
  service: "sidecar-injector",
  webhookConfig: "sidecar-injector",
  caSecret: "sidecar-injector-ca",
} as const;
