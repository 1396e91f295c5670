// The client (client.ts) of a plain HTTP server on 127.0.0.1 standing in for the API server:
// a token, no TLS, as the kube tests that answer from their own server need.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { createKubeApi } from "../../../src/kube/client.js";
import type { KubeApi } from "../../../src/kube/api.js";

/** Listens `server` on a free port of 127.0.0.1 and returns a KubeApi that calls it. */
export async function kubeApiAt(server: Server): Promise<KubeApi> {
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
  return createKubeApi(kc);
}
