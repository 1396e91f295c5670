// A map behind a Proxy that counts how often it is listed and how many of its entries are read
// (a value, or a key's descriptor, which Object.keys reads for each key): for tests that the
// work per review stays bounded by what it touches, counted rather than timed.

export interface Counts {
  listings: number;
  reads: number;
}

export function countedMap(target: Record<string, string>, counts: Counts): Record<string, string> {
  return new Proxy(target, {
    ownKeys(t) {
      counts.listings += 1;
      return Reflect.ownKeys(t);
    },
    get(t, key, receiver) {
      counts.reads += 1;
      return Reflect.get(t, key, receiver) as unknown;
    },
    getOwnPropertyDescriptor(t, key) {
      counts.reads += 1;
      return Reflect.getOwnPropertyDescriptor(t, key);
    },
  });
}
