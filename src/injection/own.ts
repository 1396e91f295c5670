// Keys from users (label and annotation names, container fields, names in JSON annotations)
// are data, never property names: reading `map[key]` for a key such as `constructor` finds
// Object.prototype's member, and assigning `obj[key] = v` for `__proto__` sets the prototype
// instead of a property. These two helpers read and write own properties only; lists of
// known names are Maps.

/** Whether `v` is a map of data (a JSON or YAML object): an object, not null, not an array. */
export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The JSON object `text` holds (user data, read by own key); undefined when it is not JSON or not an object. */
export function jsonMap(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isMap(v) ? v : undefined;
}

/** The value of `key` in a map of user data, `undefined` when the map does not have it as its own. */
export function own<T>(map: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return map !== undefined && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** Sets `key` as an own, enumerable data property, `__proto__` included. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__")
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}

/**
 * `{ ...obj }`, for an object that will be given keys it does not have: V8 makes adding a key to
 * a spread copy of a parsed object cost microseconds (each time: the copy's hidden class has no
 * room and no cached transition), and a copy assigned key by key takes one in tens of nanoseconds.
 * Own enumerable keys, in their order (what JSON data has); `__proto__` stays a property (assign
 * would set the copy's prototype, so such an object is spread, rarely enough for its cost).
 */
export function copyOwn<T extends object>(obj: T): T {
  return Object.hasOwn(obj, "__proto__") ? { ...obj } : Object.assign({}, obj);
}
