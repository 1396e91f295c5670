// The /preview body both benches send: a List of Pods as close to the 6 MiB body limit (less
// 64 KiB) as equal padding allows. Each Pod carries one env value long enough to fill the body,
// away from the lines injection changes, so each Pod's diff stays small.
import { stringify } from "yaml";

const MIB = 1024 * 1024;
export const PREVIEW_BODY_LIMIT = 6 * MIB;

function pod(i: number, pad: number): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `web-${i}`,
      namespace: "bench",
      labels: { app: "web", tier: `t${i % 7}` },
      annotations: { "example.com/note": `pod ${i}` },
    },
    spec: {
      containers: [
        {
          name: "web",
          image: "nginx:1.27",
          ports: [{ containerPort: 8080 }],
          env: Array.from({ length: 8 }, (_, k) => ({
            name: `VAR_${k}`,
            value: k === 0 ? "x".repeat(pad) : `value-${i}-${k}`,
          })),
          readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 5 },
        },
      ],
    },
  };
}

/** `pods` Pods as a JSON or YAML List, padded to `limit` bytes. */
export function previewListBody(format: "json" | "yaml", pods: number, limit = PREVIEW_BODY_LIMIT - 64 * 1024): string {
  const make = (pad: number): string => {
    const list = { apiVersion: "v1", kind: "List", items: Array.from({ length: pods }, (_, i) => pod(i, pad)) };
    return format === "json" ? JSON.stringify(list) : stringify(list, { lineWidth: 0 });
  };
  return make(Math.max(0, Math.floor((limit - make(0).length) / pods)));
}
