// The injected Pod's annotations: the Pod's own, with the few the injection sets or removes,
// recorded over them rather than applied to a copy. A Pod may carry hundreds of annotations
// (256 KiB); past about a hundred keys V8 copies such a map key by key (a third of the engine's
// time for 298 annotations), and the patch then compared every key to find the few that changed.
// Reads, writes and the patch (editPatch, in patch.ts) cost the keys the injection touched;
// `keys()` and `toObject()` read the Pod's, for the steps that list them and the callers that
// want the Pod itself.
//
// Semantics: those of a plain object copied from `base` and then edited (what the steps did
// before), order included: a key set that `base` has keeps its place; a key set that it has
// not, or set again after a delete, goes after the others, in the order set. Keys that read as
// array indexes are ordered first by objects whatever the order set: `indexKeys` says when
// there are any, and the patch then compares whole maps (patch.ts).
import { own, setOwn } from "./own.js";

/** A key objects order first (an array index): such keys do not keep their insertion order. */
export const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

export class MapEdit {
  /** Keys of `base` set to another value, in place. */
  readonly #inPlace = new Map<string, string>();
  /** Keys `base` does not have (or had, and were deleted first), in the order set. */
  readonly #appended = new Map<string, string>();
  /** Keys of `base` deleted. */
  readonly #removed = new Set<string>();

  constructor(readonly base: Readonly<Record<string, string>>) {}

  get(key: string): string | undefined {
    const added = this.#appended.get(key);
    if (added !== undefined) return added;
    if (this.#removed.has(key)) return undefined;
    return this.#inPlace.get(key) ?? own(this.base, key);
  }

  set(key: string, value: string): void {
    if (this.#appended.has(key)) this.#appended.set(key, value);
    else if (!this.#removed.has(key) && Object.hasOwn(this.base, key)) this.#inPlace.set(key, value);
    else this.#appended.set(key, value);
  }

  /** Sets each own key of `source`, in its order (Object.assign's). */
  assign(source: Readonly<Record<string, string>>): void {
    for (const key in source) {
      const value = source[key];
      if (Object.hasOwn(source, key) && value !== undefined) this.set(key, value);
    }
  }

  delete(key: string): void {
    if (this.#appended.delete(key)) return;
    if (!Object.hasOwn(this.base, key)) return;
    this.#removed.add(key);
    this.#inPlace.delete(key);
  }

  /** Keys of `base` deleted (none: every key of `base` is still there, in its place). */
  get removedCount(): number {
    return this.#removed.size;
  }

  /** Keys of `base` whose value was set, with the value (maybe the same). */
  inPlace(): ReadonlyMap<string, string> {
    return this.#inPlace;
  }

  /** Keys `base` does not have, in the order set (with no key deleted, none of them is `base`'s). */
  appended(): ReadonlyMap<string, string> {
    return this.#appended;
  }

  /** Whether a key set reads as an array index (then key order is the object's, not the order set). */
  indexKeys(): boolean {
    for (const key of this.#appended.keys()) if (ARRAY_INDEX.test(key)) return true;
    return false;
  }

  /** The edited map's keys, in its order. */
  keys(): string[] {
    if (this.indexKeys()) return Object.keys(this.toObject());
    const out: string[] = [];
    for (const key of Object.keys(this.base)) if (!this.#removed.has(key)) out.push(key);
    for (const key of this.#appended.keys()) out.push(key);
    return out;
  }

  /** The edited map as a new object (built key by key: own data properties, `__proto__` included). */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const key of Object.keys(this.base)) {
      const value = this.#removed.has(key) ? undefined : (this.#inPlace.get(key) ?? this.base[key]);
      if (value !== undefined) setOwn(out, key, value);
    }
    for (const [key, value] of this.#appended) setOwn(out, key, value);
    return out;
  }
}
