// The one cache of served injectors for tests that send a real `serve` many configs: one
// `runServe` per distinct config (undefined: the built-in one), started on first use, its
// local certificates in a temporary folder, all closed and removed by `close`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Config } from "../../src/config/types.js";
import { runServe, type ServeHandle } from "../../src/main.js";

export class ServedConfigs {
  readonly #dir: string;
  readonly #servers = new Map<string, ServeHandle>();
  #ca = "";

  constructor(prefix: string) {
    this.#dir = mkdtempSync(join(tmpdir(), prefix));
  }

  /** The CA every server of the cache is signed by (once one has started). */
  get ca(): string {
    return this.#ca;
  }

  async serverFor(config: Config | undefined): Promise<ServeHandle> {
    const key = JSON.stringify(config ?? null);
    let s = this.#servers.get(key);
    if (!s) {
      let configFile: string | undefined;
      if (config) {
        configFile = join(this.#dir, `config-${this.#servers.size}.yaml`);
        writeFileSync(configFile, stringify(config));
      }
      const certDir = join(this.#dir, "certs");
      s = await runServe({ ...(configFile ? { configFile } : {}), port: 0, certDir, logLevel: "silent" });
      this.#ca = readFileSync(join(certDir, "ca.crt"), "utf8");
      this.#servers.set(key, s);
    }
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.#servers.values()) await s.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
