// Parts built once (or once per config) and shared by every Pod's injection: frozen to the
// bottom so that no step can change one in place, and kept per config and key (ConfigMemo).
// A module of its own, importing nothing of the engine's, so that any module may use it
// without an import cycle.
import type { Config } from "../config/types.js";

/**
 * A part every Pod shares (built once, or once per config), frozen to the bottom: the steps
 * after the templates copy what they change, and one that changed a shared part in place
 * instead would throw (an engine failure naming the step) rather than alter the next Pod's.
 */
export function shared<T extends object>(value: T): T {
  if (Object.isFrozen(value)) return value;
  Object.freeze(value);
  let deep = true;
  for (const v of Object.values(value)) {
    if (typeof v !== "object" || v === null) continue;
    shared(v);
    // Frozen before, by other means, it may hold something that still changes.
    if (!SHARED.has(v)) deep = false;
  }
  if (deep) SHARED.add(value);
  return value;
}

/** The objects `shared` froze to the bottom: each, and all it holds, stays as it is while it lives. */
const SHARED = new WeakSet<object>();

/**
 * Whether `shared` froze this object (and so everything under it): its JSON text is the same
 * whenever it is written, so a writer may keep that text for the next answer.
 */
export function isShared(value: object): boolean {
  return SHARED.has(value);
}

/** What a part built once per config depends on besides the config: settings, annotation values. */
export type KeyPart = string | number | boolean | null | undefined;

/**
 * Parts built once per config and key, each shared (frozen). The key is a short list of
 * values; the last call's list is compared value by value first (most Pods of a cluster ask
 * for the same part as the one before), and only when it differs is the list made text for a
 * lookup: the text and its hash cost more than the part's other work. A key can carry a Pod's
 * annotation values: past `limit` keys of one config, a part is built anew each time instead
 * of kept (the last one aside), so that Pods cannot grow the cache.
 */
export class ConfigMemo<T extends object> {
  private readonly byConfig = new WeakMap<Config, Map<string, T>>();
  // The last call's config, key and part. Holding the config keeps at most one config from
  // being collected after a reload, until the next call.
  private lastConfig: Config | undefined;
  private lastKey: readonly KeyPart[] = [];
  private lastPart: T | undefined;
  constructor(private readonly limit = 64) {}

  /** The part for `config` and `key`, built by `build` when none is kept. */
  get(config: Config, key: readonly KeyPart[], build: () => T): T {
    const last = this.lastPart;
    if (last !== undefined && config === this.lastConfig && sameKey(key, this.lastKey)) return last;
    let parts = this.byConfig.get(config);
    if (parts === undefined) {
      parts = new Map();
      this.byConfig.set(config, parts);
    }
    // null and undefined alike: a setting left out is one set to null.
    const text = JSON.stringify(key);
    let part = parts.get(text);
    if (part === undefined) {
      part = shared(build());
      if (parts.size < this.limit) parts.set(text, part);
    }
    this.lastConfig = config;
    this.lastKey = key.slice(); // the caller's list may change after the call
    this.lastPart = part;
    return part;
  }
}

function sameKey(a: readonly KeyPart[], b: readonly KeyPart[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
