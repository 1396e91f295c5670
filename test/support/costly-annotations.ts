// A valid value of each annotation whose reading costs by its length (INLINE_ANNOTATION_CHARS,
// injection/inline-cost.ts), of exactly the length asked for: for the tests of where a review
// with one is answered, and of what /preview takes.
import { INLINE_ANNOTATION_CHARS } from "../../src/injection/inline-cost.js";

/** `{"<name>":<entry>,...}` of as many numbered entries as fit in `chars`, padded with spaces. */
function entries(chars: number, entry: (name: string) => string): string {
  const items: string[] = [];
  let length = 2;
  for (let i = 0; ; i++) {
    const name = `v${String(i).padStart(6, "0")}`;
    const item = `"${name}":${entry(name)}`;
    if (length + item.length + (items.length > 0 ? 1 : 0) > chars) break;
    length += item.length + (items.length > 0 ? 1 : 0);
    items.push(item);
  }
  return `{${items.join(",")}}`.padEnd(chars, " ");
}

const VALUES: Readonly<Record<string, (chars: number) => string>> = {
  // A list of tags: 10-20 µs an item to read.
  "proxy.istio.io/config": (chars) => `extraStatTags: [${"a,".repeat(Math.floor((chars - 18) / 2))}a]`.padEnd(chars),
  // A template rendered and merged per name.
  "inject.istio.io/templates": (chars) => `${"sidecar,".repeat(Math.floor((chars - 7) / 8))}sidecar`.padEnd(chars, " "),
  "sidecar.istio.io/userVolume": (chars) => entries(chars, () => `{"emptyDir":{}}`),
  "sidecar.istio.io/userVolumeMount": (chars) => entries(chars, (name) => `{"mountPath":"/mnt/${name}"}`),
  // The Pod's own istio-proxy, recorded with as many env vars as fit.
  "proxy.istio.io/overrides": (chars) => {
    const head = '{"containers":[{"name":"istio-proxy","env":[';
    const tail = "]}]}";
    const env: string[] = [];
    for (let i = 0, length = head.length + tail.length; ; i++) {
      const item = `{"name":"E${String(i).padStart(6, "0")}","value":"x"}`;
      const more = item.length + (env.length > 0 ? 1 : 0);
      if (length + more > chars) break;
      length += more;
      env.push(item);
    }
    return `${head}${env.join(",")}${tail}`.padEnd(chars, " ");
  },
};

/** Each such annotation, its longest inline length, and its values by length. */
export function costlyAnnotations(): { key: string; max: number; valueOf: (chars: number) => string }[] {
  return Object.entries(INLINE_ANNOTATION_CHARS).map(([key, max]) => {
    const valueOf = VALUES[key];
    if (valueOf === undefined) throw new Error(`test/support/costly-annotations.ts: no value for ${key}`);
    return { key, max, valueOf };
  });
}
