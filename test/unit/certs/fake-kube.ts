import { KubeError, type KubeApi, type SecretObject, type WebhookConfigObject } from "../../../src/kube/client.js";

/** An in-memory API server for one Secret and one MutatingWebhookConfiguration. */
export class FakeKube implements KubeApi {
  secret: SecretObject | undefined;
  webhook: { name: string; resourceVersion: number; webhooks: { name: string; caBundle?: string }[] } | undefined = {
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
      this.secret = this.secret && { ...this.secret, metadata: { ...this.secret.metadata, resourceVersion: String(++this.rv) } };
      throw new KubeError("conflict", 409);
    }
    if (!this.secret || s.metadata.resourceVersion !== this.secret.metadata.resourceVersion) throw new KubeError("conflict", 409);
    this.secret = { ...s, metadata: { ...s.metadata, resourceVersion: String(++this.rv) } };
    this.writes.secret++;
    return this.secret;
  }
  async readWebhookConfig(): Promise<WebhookConfigObject | undefined> {
    await this.gate();
    const w = this.webhook;
    return w && { name: w.name, resourceVersion: String(w.resourceVersion), webhooks: w.webhooks.map((x) => ({ ...x })) };
  }
  async patchCaBundles(_name: string, rv: string | undefined, updates: readonly { index: number; caBundle: string }[]): Promise<WebhookConfigObject> {
    await this.gate();
    const w = this.webhook;
    if (!w) throw new KubeError("not found", 404);
    if (rv !== String(w.resourceVersion)) throw new KubeError("test failed", 422);
    for (const u of updates) {
      const hook = w.webhooks[u.index];
      if (hook) hook.caBundle = u.caBundle;
    }
    w.resourceVersion++;
    this.writes.bundle++;
    return (await this.readWebhookConfig()) as WebhookConfigObject;
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
}

