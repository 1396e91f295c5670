// Which injector a command means when no flag names it (`certs status`, `inject --from-cluster`,
// `preview --server`'s CA): the chart's MutatingWebhookConfiguration, found by the label every
// release of the chart writes (app.kubernetes.io/part-of=sidecar-injector, _helpers.tpl), so a
// release installed as `helm install mesh-inj ...` is found as well as one called
// `sidecar-injector`. The configurations of revision tags (labelled istio.io/tag) are the same
// injector's and are left out.
//
// - A flag always wins: --webhook-config names the configuration (its namespace is that of the
//   Service its webhooks call, its CA Secret `<name>-ca`); --namespace names the namespace (and
//   picks among several labelled ones); --ca-secret the CA Secret.
// - Exactly one labelled configuration (in --namespace, when given): its name; the namespace of
//   the Service its webhooks call (none when they call a URL); the CA Secret `<name>-ca`, as the
//   chart names it unless `tls.caSecretName` says otherwise.
// - None: the old default names (DEFAULT_NAMES), with a note that says what was looked for and
//   which flag to pass, for the command to show when they are not there either.
// - Several: CheckNotFoundError listing them (names and namespaces) and the flag that picks
//   one (exit 2, a usage error).

import { DEFAULT_NAMES } from "../certs/modes.js";
import { quoteName } from "../injection/quote.js";
import { KubeError, type KubeApi, type WebhookConfigObject } from "../kube/api.js";

/** The label every release of the chart puts on its configuration, and the tag configurations' label left out. */
export const INJECTOR_SELECTOR = "app.kubernetes.io/part-of=sidecar-injector,!istio.io/tag";

/** A request that names something that is not there, or that matches more than one thing. */
export class CheckNotFoundError extends Error {
  readonly code = "ERR_CHECK_NOT_FOUND";
}

export interface InjectorNames {
  readonly webhookConfig: string;
  /** The namespace of its Service (where the chart puts the CA Secret); undefined when its webhooks call a URL. */
  readonly namespace: string | undefined;
  readonly caSecret: string;
  /** How the configuration was found: named by a flag, by the chart's label, or the default name. */
  readonly found: "flag" | "label" | "default";
  /** With found "default": what was looked for, and which flags name the injector. */
  readonly note?: string;
}

export interface GivenNames {
  readonly webhookConfig?: string | undefined;
  readonly namespace?: string | undefined;
  readonly caSecret?: string | undefined;
}

/** The namespace of the Service a configuration's webhooks call (the first that names one). */
export function serviceNamespace(config: WebhookConfigObject | undefined): string | undefined {
  return config?.webhooks.find((w) => w.clientConfig?.service !== undefined)?.clientConfig?.service?.namespace;
}

function describe(config: WebhookConfigObject): string {
  const ns = serviceNamespace(config);
  return `${quoteName(config.name)} (${ns === undefined ? "calls a URL" : `namespace ${quoteName(ns)}`})`;
}

/** The CA Secret the chart gives a configuration named `name`. */
export function caSecretOf(name: string): string {
  return `${name}-ca`;
}

/**
 * The injector's names (see the header). Reads the named configuration, or lists the labelled
 * ones; a list the user may not make (403) or the server does not serve (404) is taken as none
 * found (the note says so). Throws
 * CheckNotFoundError when several match, KubeError when the API server fails otherwise.
 */
export async function findInjector(
  api: Pick<KubeApi, "readWebhookConfig" | "listWebhookConfigs">,
  given: GivenNames,
): Promise<InjectorNames> {
  if (given.webhookConfig !== undefined) {
    // Not there: the default namespace, for the command to say what it then does not find.
    const named = given.namespace === undefined ? await api.readWebhookConfig(given.webhookConfig) : undefined;
    const namespace = given.namespace ?? (named === undefined ? DEFAULT_NAMES.namespace : serviceNamespace(named));
    return {
      webhookConfig: given.webhookConfig,
      namespace,
      caSecret: given.caSecret ?? caSecretOf(given.webhookConfig),
      found: "flag",
    };
  }
  let listed: WebhookConfigObject[];
  let refused = "";
  try {
    listed = await api.listWebhookConfigs(INJECTOR_SELECTOR);
  } catch (e) {
    if (!(e instanceof KubeError) || (e.status !== 403 && e.status !== 404)) throw e;
    listed = [];
    refused = ` (listing MutatingWebhookConfigurations ${e.status === 403 ? "was refused" : "is not served"})`;
  }
  const candidates =
    given.namespace === undefined ? listed : listed.filter((c) => serviceNamespace(c) === given.namespace);
  const [only] = candidates;
  if (only !== undefined && candidates.length === 1) {
    return {
      webhookConfig: only.name,
      namespace: given.namespace ?? serviceNamespace(only),
      caSecret: given.caSecret ?? caSecretOf(only.name),
      found: "label",
    };
  }
  if (candidates.length > 1 || listed.length > 0) {
    const where = given.namespace === undefined ? "" : ` in namespace ${quoteName(given.namespace)}`;
    const what =
      candidates.length > 1
        ? `${candidates.length} sidecar injectors are installed${where}: ${candidates.map(describe).join(", ")}`
        : `no sidecar injector is installed${where}; there are: ${listed.map(describe).join(", ")}`;
    const flags = given.namespace === undefined ? "--webhook-config NAME or --namespace NS" : "--webhook-config NAME";
    throw new CheckNotFoundError(`${what}; pick one with ${flags}`);
  }
  return {
    webhookConfig: DEFAULT_NAMES.webhookConfig,
    namespace: given.namespace ?? DEFAULT_NAMES.namespace,
    caSecret: given.caSecret ?? DEFAULT_NAMES.caSecret,
    found: "default",
    note: `no MutatingWebhookConfiguration labelled app.kubernetes.io/part-of=sidecar-injector (the chart's)${refused}, so the default name ${DEFAULT_NAMES.webhookConfig} was used; name the injector's with --webhook-config NAME`,
  };
}
