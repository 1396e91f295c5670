// A plain HTTP server standing in for the API server, for CLI tests that need a cluster to talk
// to: `route` answers what it knows (and returns true); anything else gets the 404 Kubernetes
// Status the API server answers for an object it does not hold. Its kubeconfig is written into
// `dir` (context `here`; the user has `token` when one is given).
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";

export interface StandInApi {
  readonly kubeconfig: string;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export async function startStandInApi(
  dir: string,
  route: (req: IncomingMessage, res: ServerResponse) => boolean,
  options: { token?: string; namespace?: string } = {},
): Promise<StandInApi> {
  const api = createServer((req, res) => {
    if (route(req, res)) return;
    sendJson(res, 404, {
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "NotFound",
      code: 404,
      message: "not found",
    });
  });
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
  const addr = api.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  const kubeconfig = join(dir, "kubeconfig.yaml");
  const user = options.token !== undefined ? `{token: ${options.token}}` : "{}";
  const namespace = options.namespace !== undefined ? `, namespace: ${options.namespace}` : "";
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:${port}', insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: here, context: {cluster: c, user: u${namespace}}}]\ncurrent-context: here\n`,
  );
  return { kubeconfig, close: () => new Promise<void>((r) => api.close(() => r())) };
}
