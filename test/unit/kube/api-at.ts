// The client (client.ts) of a plain HTTP server on 127.0.0.1 standing in for the API server:
// a token, no TLS, as the kube tests that answer from their own server need.
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { createInspectApi, createKubeApi, type KubeApiOptions } from "../../../src/kube/client.js";
import type { InspectApi, KubeApi } from "../../../src/kube/api.js";

/** Listens `server` on a free port of 127.0.0.1 and returns a kubeconfig for it (token "t", no TLS). */
export async function kubeConfigAt(server: Server): Promise<KubeConfig> {
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

/** Listens `server` on a free port of 127.0.0.1 and returns a KubeApi that calls it. */
export async function kubeApiAt(server: Server, options: KubeApiOptions = {}): Promise<KubeApi> {
  return createKubeApi(await kubeConfigAt(server), options);
}

/**
 * For a test file: `server` listens before its tests and is closed after them; `kube.api` is
 * the KubeApi that calls it, `kube.inspect` the InspectApi (`check`'s), both set once the
 * tests start.
 */
export function kubeApiForTests(server: Server, options: KubeApiOptions = {}): { api: KubeApi; inspect: InspectApi } {
  const kube = { api: undefined as unknown as KubeApi, inspect: undefined as unknown as InspectApi };
  before(async () => {
    const kc = await kubeConfigAt(server);
    kube.api = createKubeApi(kc, options);
    kube.inspect = createInspectApi(kc, options);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return kube;
}

/** Answers as the API server does, with a JSON body: `body`, or for a failure a Status of `code` and `reason`. */
export function answerJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A failure's Status, as the API server words it. */
export function failureStatus(code: number, reason: string): object {
  return { kind: "Status", apiVersion: "v1", status: "Failure", reason, code };
}
