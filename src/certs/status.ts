// `sidecar-injector certs status`: what a human debugging "x509: certificate signed by unknown
// authority" wants to see: the CA certificates in the Secret, what each webhook's caBundle
// holds, the certificate a running injector actually serves, whether the published caBundle
// contains the CA that signed it, and whether that certificate carries the name each webhook
// is dialled by ("x509: certificate is valid for …, not …", "doesn't contain any IP SANs").
//
// The name the API server verifies: for `clientConfig.service`, `<name>.<namespace>.svc`; for
// `clientConfig.url`, the URL's host. A DNS name must match a DNS SAN (a wildcard only as the
// whole leftmost label, RFC 6125 6.4.3, as Go's crypto/x509 does); an IP address must be an IP
// SAN. The subject's common name is never used (Go ignores it).
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { connect } from "node:tls";
import { quote } from "../injection/quote.js";
import type { KubeApi, WebhookEntry } from "../kube/api.js";
import { fromSecretData, splitPemCertificates, type CaEntry } from "./authority.js";

export interface StatusOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly webhookConfigName: string;
  /** https://host:port of a running injector, to read the certificate it serves. */
  readonly server?: string;
  /**
   * With `server`: the name sent (SNI) and checked as a client's, kubectl's and `preview
   * --server`'s, instead of the URL's host (through a port-forward: <service>.<namespace>.svc).
   */
  readonly tlsServerName?: string;
  /** With `server`: the CA(s) a client trusts (PEM); default: the published caBundle. */
  readonly caPem?: string;
  /** With `server`: no client check of the certificate (the admission checks still run). */
  readonly insecureSkipTlsVerify?: boolean;
  readonly now?: Date;
}

export interface StatusReport {
  readonly text: string;
  /** Problems that would fail admissions (or soon will). */
  readonly problems: readonly string[];
}

function left(notAfter: Date, now: Date): string {
  const ms = notAfter.getTime() - now.getTime();
  if (ms <= 0) return "EXPIRED";
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return d > 0 ? `${d}d ${h}h left` : h > 0 ? `${h}h ${m}m left` : `${m}m ${s}s left`;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * The certificate a TLS server presents (not verified: this is what we want to inspect), for
 * the name `servername` (sent as SNI; default the URL's host, unless it is an IP address).
 */
export function fetchServingCertificate(
  server: string,
  timeoutMs = 5000,
  servername?: string,
): Promise<X509Certificate> {
  const url = new URL(server);
  const sni = servername ?? (/^[\d.:[\]]+$/.test(url.hostname) ? undefined : url.hostname);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || 443),
      rejectUnauthorized: false,
      ...(sni !== undefined ? { servername: sni } : {}),
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake with ${server} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error(`${server} presented no certificate`));
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The host name or IP address the API server dials for a webhook and verifies our certificate against. */
export function dialledName(w: WebhookEntry): { name: string } | { error: string } | undefined {
  const c = w.clientConfig;
  if (c?.service) return { name: `${c.service.name}.${c.service.namespace}.svc` };
  if (c?.url === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(c.url);
  } catch {
    return { error: `clientConfig.url ${quote(c.url)} is not a URL` };
  }
  return { name: url.hostname.replace(/^\[|\]$/g, "") };
}

/** Whether `cert` is valid for `name` as a TLS client verifying a server would check it. */
export function certificateCovers(cert: X509Certificate, name: string): boolean {
  if (isIP(name) !== 0) return cert.checkIP(name) !== undefined;
  const host = name.replace(/\.$/, "");
  return (
    cert.checkHost(host, {
      subject: "never",
      wildcards: true,
      partialWildcards: false,
      multiLabelWildcards: false,
      singleLabelSubdomains: false,
    }) !== undefined
  );
}

function issuedBy(cert: X509Certificate, ca: CaEntry): boolean {
  const caCert = new X509Certificate(ca.certPem);
  return cert.checkIssued(caCert) && cert.verify(caCert.publicKey);
}

/**
 * What a client of `server` (kubectl, `preview --server`) would conclude: whether a CA it trusts
 * issued the certificate and whether the certificate carries the name it asks for. Said, not
 * counted as a problem: the API server's own checks are the dialled names and the caBundle.
 */
function clientCheck(cert: X509Certificate, opts: StatusOptions, publishedPems: readonly string[]): string {
  if (opts.insecureSkipTlsVerify === true) return "as a client: not verified (--insecure-skip-tls-verify)";
  const name = opts.tlsServerName ?? new URL(opts.server ?? "https://localhost").hostname.replace(/^\[|\]$/g, "");
  const from = opts.caPem !== undefined ? "--cacert" : `the caBundle of ${opts.webhookConfigName}`;
  const pems = opts.caPem !== undefined ? splitPemCertificates(opts.caPem) : publishedPems;
  const trusted = pems.some((pem) => {
    const ca = new X509Certificate(pem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
  const covered = certificateCovers(cert, name);
  const said = `as a client of ${quote(name)} trusting ${from}`;
  if (trusted && covered) return `${said}: verified`;
  const why = [
    ...(trusted ? [] : [`not issued by ${pems.length === 0 ? "any CA (none given)" : `a CA in ${from}`}`]),
    ...(covered
      ? []
      : [
          `${quote(name)} is not among its names${opts.tlsServerName === undefined ? " (through a port-forward, give --tls-server-name <service>.<namespace>.svc)" : ""}`,
        ]),
  ];
  return `${said}: NOT verified: ${why.join("; ")}`;
}

export async function certificateStatus(kube: KubeApi, opts: StatusOptions): Promise<StatusReport> {
  const now = opts.now ?? new Date();
  const lines: string[] = [];
  const problems: string[] = [];

  const secret = await kube.readSecret(opts.namespace, opts.secretName);
  let cas: readonly CaEntry[] = [];
  if (!secret) {
    problems.push(`CA Secret ${opts.namespace}/${opts.secretName} does not exist`);
    lines.push(`CA Secret ${opts.namespace}/${opts.secretName}: not found`);
  } else {
    try {
      cas = fromSecretData(secret.data).certs;
      lines.push(`CA Secret ${opts.namespace}/${opts.secretName}: ${cas.length} certificate(s), one key`);
    } catch (e) {
      problems.push(`CA Secret ${opts.namespace}/${opts.secretName} is unusable: ${(e as Error).message}`);
      lines.push(`CA Secret ${opts.namespace}/${opts.secretName}: unusable (${(e as Error).message})`);
    }
  }
  cas.forEach((c, i) =>
    lines.push(
      `  CA #${i + 1}  serial ${c.serial}  ${iso(c.notBefore)} .. ${iso(c.notAfter)}  (${left(c.notAfter, now)})`,
    ),
  );
  if (cas.length > 0 && !cas.some((c) => c.notAfter > now)) problems.push("every CA certificate has expired");

  const cfg = await kube.readWebhookConfig(opts.webhookConfigName);
  const published = new Map<string, Set<string>>();
  /** Every certificate of every caBundle, as a client defaulting to them trusts them. */
  const publishedPems: string[] = [];
  if (!cfg) {
    problems.push(`MutatingWebhookConfiguration ${opts.webhookConfigName} does not exist`);
    lines.push(`MutatingWebhookConfiguration ${opts.webhookConfigName}: not found`);
  } else {
    lines.push(`MutatingWebhookConfiguration ${opts.webhookConfigName}: ${cfg.webhooks.length} webhook(s)`);
    for (const w of cfg.webhooks) {
      const pems = w.caBundle ? splitPemCertificates(Buffer.from(w.caBundle, "base64").toString("utf8")) : [];
      publishedPems.push(...pems);
      const fps = new Set(pems.map((p) => new X509Certificate(p).fingerprint256));
      published.set(w.name, fps);
      const which = cas.map((c, i) => (fps.has(c.fingerprint256) ? `#${i + 1}` : "")).filter(Boolean);
      const foreign = fps.size - which.length;
      lines.push(
        `  ${w.name}: caBundle ${pems.length === 0 ? "EMPTY" : `${pems.length} certificate(s): CA ${which.join(", ") || "none of the Secret's"}${foreign ? ` + ${foreign} other` : ""}`}`,
      );
      if (pems.length === 0) problems.push(`webhook ${w.name} has an empty caBundle`);
    }
  }

  if (opts.server) {
    try {
      const cert = await fetchServingCertificate(opts.server, 5000, opts.tlsServerName);
      const notAfter = new Date(cert.validTo);
      const issuer = cas.findIndex((c) => issuedBy(cert, c));
      lines.push(
        `Serving certificate at ${opts.server}: serial ${cert.serialNumber}  ${iso(new Date(cert.validFrom))} .. ${iso(notAfter)}  (${left(notAfter, now)})`,
      );
      lines.push(`  names: ${cert.subjectAltName ?? "(none)"}`);
      lines.push(`  issued by: ${issuer >= 0 ? `CA #${issuer + 1}` : "none of the Secret's CA certificates"}`);
      if (issuer < 0) problems.push("the serving certificate was not issued by the CA in the Secret");
      const notBefore = new Date(cert.validFrom);
      if (notAfter <= now)
        problems.push(
          `the serving certificate has expired (valid from ${iso(notBefore)} to ${iso(notAfter)}, now ${iso(now)})`,
        );
      if (notBefore > now)
        problems.push(
          `the serving certificate is not valid yet (valid from ${iso(notBefore)} to ${iso(notAfter)}, now ${iso(now)})`,
        );
      for (const w of cfg?.webhooks ?? []) {
        const dialled = dialledName(w);
        if (dialled === undefined) {
          lines.push(`  ${w.name}: no clientConfig service or url, name not checked`);
        } else if ("error" in dialled) {
          lines.push(`  ${w.name}: ${dialled.error}`);
          problems.push(`webhook ${w.name}: ${dialled.error}`);
        } else if (certificateCovers(cert, dialled.name)) {
          lines.push(`  ${w.name}: dials ${quote(dialled.name)}, covered`);
        } else {
          const kind = isIP(dialled.name) !== 0 ? "IP address" : "name";
          lines.push(`  ${w.name}: dials ${quote(dialled.name)}, NOT covered`);
          problems.push(
            `webhook ${w.name} dials the ${kind} ${quote(dialled.name)}, which the serving certificate does not carry (its names: ${quote(cert.subjectAltName ?? "none", 400)})`,
          );
        }
      }
      lines.push(`  ${clientCheck(cert, opts, publishedPems)}`);
      if (cfg && issuer >= 0) {
        const ca = cas[issuer] as CaEntry;
        const missing = [...published].filter(([, fps]) => !fps.has(ca.fingerprint256)).map(([name]) => name);
        lines.push(
          `  published caBundle contains its issuer: ${missing.length === 0 ? "yes, in every webhook" : `NO, missing in ${missing.join(", ")}`}`,
        );
        if (missing.length > 0)
          problems.push(`the issuer of the serving certificate is missing from the caBundle of ${missing.join(", ")}`);
      }
    } catch (e) {
      problems.push(`could not read the serving certificate at ${opts.server}: ${(e as Error).message}`);
      lines.push(`Serving certificate at ${opts.server}: unreachable (${(e as Error).message})`);
    }
  } else {
    lines.push(
      "Serving certificate: not checked (give --server https://HOST:PORT to check its issuer, validity and names)",
    );
  }

  lines.push(problems.length === 0 ? "OK" : `PROBLEMS:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return { text: `${lines.join("\n")}\n`, problems };
}
