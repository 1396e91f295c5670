import {
  KubeError,
  type ConfigMapObject,
  type KubeApi,
  type KubeUser,
  type SecretObject,
  type WebhookClientConfig,
  type WebhookConfigObject,
} from "../../../src/kube/client.js";

interface ConfigMapWatch {
  readonly key: string;
  readonly onChange: (c: ConfigMapObject | undefined) => void;
  readonly end: (err?: unknown) => void;
}

/** An in-memory API server for one Secret and one MutatingWebhookConfiguration. */
export class FakeKube implements KubeApi {
  secret: SecretObject | undefined;
  webhook:
    | {
        name: string;
        resourceVersion: number;
        webhooks: { name: string; caBundle?: string; clientConfig?: WebhookClientConfig }[];
      }
    | undefined = {
    name: "sidecar-injector",
    resourceVersion: 1,
    webhooks: [{ name: "a.example" }, { name: "b.example" }],
  };
  rv = 1;
  down = false;
  conflictsOnReplace = 0;
  writes = { secret: 0, bundle: 0 };

  private async gate(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.down) throw new KubeError("connect ECONNREFUSED 127.0.0.1:6443", undefined);
  }
  async readSecret(): Promise<SecretObject | undefined> {
    await this.gate();
    return this.secret && structuredClone(this.secret);
  }
  async createSecret(_ns: string, s: SecretObject): Promise<SecretObject> {
    await this.gate();
    if (this.secret) throw new KubeError("already exists", 409);
    this.secret = { ...s, metadata: { ...s.metadata, resourceVersion: String(++this.rv) } };
    this.writes.secret++;
    return this.secret;
  }
  async replaceSecret(_ns: string, s: SecretObject): Promise<SecretObject> {
    await this.gate();
    if (this.conflictsOnReplace > 0) {
      this.conflictsOnReplace--;
      this.secret = this.secret && {
        ...this.secret,
        metadata: { ...this.secret.metadata, resourceVersion: String(++this.rv) },
      };
      throw new KubeError("conflict", 409);
    }
    if (!this.secret || s.metadata.resourceVersion !== this.secret.metadata.resourceVersion)
      throw new KubeError("conflict", 409);
    this.secret = { ...s, metadata: { ...s.metadata, resourceVersion: String(++this.rv) } };
    this.writes.secret++;
    return this.secret;
  }
  async readWebhookConfig(name = "sidecar-injector"): Promise<WebhookConfigObject | undefined> {
    await this.gate();
    const w = name === this.webhook?.name ? this.webhook : this.others.find((c) => c.name === name);
    return (
      w && { name: w.name, resourceVersion: String(w.resourceVersion), webhooks: w.webhooks.map((x) => ({ ...x })) }
    );
  }
  async patchCaBundles(
    name: string,
    rv: string | undefined,
    updates: readonly { index: number; caBundle: string }[],
  ): Promise<WebhookConfigObject> {
    await this.gate();
    const w = name === this.webhook?.name ? this.webhook : this.others.find((c) => c.name === name);
    if (!w) throw new KubeError("not found", 404);
    if (rv !== String(w.resourceVersion)) throw new KubeError("test failed", 422);
    for (const u of updates) {
      const hook = w.webhooks[u.index];
      if (hook) hook.caBundle = u.caBundle;
    }
    w.resourceVersion++;
    this.writes.bundle++;
    return (await this.readWebhookConfig(name)) as WebhookConfigObject;
  }
  /** Other configurations, with labels, for selection by label. */
  others: {
    name: string;
    labels: Record<string, string>;
    resourceVersion: number;
    webhooks: { name: string; caBundle?: string; clientConfig?: WebhookClientConfig }[];
  }[] = [];
  webhookLabels: Record<string, string> = {};
  async listWebhookConfigs(selector: string): Promise<WebhookConfigObject[]> {
    await this.gate();
    // key=value, and !key (the label absent), as the API server reads them.
    const terms = selector.split(",");
    const want = Object.fromEntries(
      terms.filter((t) => !t.startsWith("!")).map((kv) => kv.split("=") as [string, string]),
    );
    const absent = terms.filter((t) => t.startsWith("!")).map((t) => t.slice(1));
    const all = [...(this.webhook ? [{ ...this.webhook, labels: this.webhookLabels }] : []), ...this.others];
    return all
      .filter((c) => Object.entries(want).every(([k, v]) => c.labels[k] === v))
      .filter((c) => absent.every((k) => !Object.hasOwn(c.labels, k)))
      .map((c) => ({
        name: c.name,
        resourceVersion: String(c.resourceVersion),
        webhooks: c.webhooks.map((x) => ({ ...x })),
      }));
  }
  async watchWebhookConfig(): Promise<() => void> {
    return () => undefined;
  }
  async watchSecret(): Promise<() => void> {
    return () => undefined;
  }
  namespaces: Record<string, Record<string, string>> = {};
  async readNamespaceLabels(name: string): Promise<Record<string, string> | undefined> {
    await this.gate();
    return this.namespaces[name];
  }
  async listKubeletVersions(): Promise<string[]> {
    return [];
  }
  /** Bearer tokens and who they authenticate; namespaces each user may get. */
  tokens: Record<string, KubeUser> = {};
  mayGet: Record<string, string[]> = {};
  async reviewToken(token: string): Promise<KubeUser | undefined> {
    await this.gate();
    return Object.hasOwn(this.tokens, token) ? this.tokens[token] : undefined;
  }
  async canGetNamespace(user: KubeUser, name: string): Promise<boolean> {
    await this.gate();
    return this.mayGet[user.username]?.includes(name) ?? false;
  }
  /** ConfigMaps by `namespace/name`; change them with putConfigMap / deleteConfigMap, which the watches see. */
  configMaps = new Map<string, ConfigMapObject>();
  /** Open ConfigMap watches: `end` ends one as a dropped connection does. */
  configMapWatches: ConfigMapWatch[] = [];
  /** Watches started, over time (restarts included). */
  configMapWatchesStarted = 0;
  async readConfigMap(namespace: string, name: string): Promise<ConfigMapObject | undefined> {
    await this.gate();
    const c = this.configMaps.get(`${namespace}/${name}`);
    return c && structuredClone(c);
  }
  putConfigMap(namespace: string, name: string, data: Record<string, string>): void {
    const c: ConfigMapObject = { name, namespace, resourceVersion: String(++this.rv), data: { ...data } };
    this.configMaps.set(`${namespace}/${name}`, c);
    for (const w of this.configMapWatches) if (w.key === `${namespace}/${name}`) w.onChange(structuredClone(c));
  }
  deleteConfigMap(namespace: string, name: string): void {
    this.configMaps.delete(`${namespace}/${name}`);
    for (const w of this.configMapWatches) if (w.key === `${namespace}/${name}`) w.onChange(undefined);
  }
  /** Ends every open ConfigMap watch with this error, as the API server closing them does. */
  dropConfigMapWatches(err: unknown = new Error("watch closed")): void {
    const open = this.configMapWatches;
    this.configMapWatches = [];
    for (const w of open) w.end(err);
  }
  async watchConfigMap(
    namespace: string,
    name: string,
    onChange: (c: ConfigMapObject | undefined) => void,
    onEnd: (err?: unknown) => void,
  ): Promise<() => void> {
    await this.gate();
    this.configMapWatchesStarted++;
    const key = `${namespace}/${name}`;
    const w = { key, onChange, end: onEnd };
    this.configMapWatches.push(w);
    // As the API server does for a watch without a resourceVersion: the object as it is, first.
    const now = this.configMaps.get(key);
    if (now) onChange(structuredClone(now));
    return () => {
      this.configMapWatches = this.configMapWatches.filter((x) => x !== w);
    };
  }
}
