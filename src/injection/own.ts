// Keys from users (label and annotation names, container fields, names in JSON annotations)
// are data, never property names: reading `map[key]` for a key such as `constructor` finds
// Object.prototype's member, and assigning `obj[key] = v` for `__proto__` sets the prototype
// instead of a property. These two helpers read and write own properties only; lists of
// known names are Maps.

/** The value of `key` in a map of user data, `undefined` when the map does not have it as its own. */
export function own<T>(map: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return map !== undefined && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** Sets `key` as an own, enumerable data property, `__proto__` included. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}
