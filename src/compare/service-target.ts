// `--compare-with service/NS/NAME[:PORT][/PATH]`: istiod's Service reached through the API
// server's service proxy, with the kubeconfig's cluster, TLS settings and credentials (what
// kubectl uses for `kubectl get --raw /api/v1/namespaces/NS/services/https:NAME:PORT/proxy/…`).
// The caller needs `create` on `services/proxy` in istiod's namespace; the API server does not
// check istiod's certificate on the way (it never does for the service proxy).
import type { RequestOptions } from "node:https";
import { defaultKubeConfig } from "../kube/client.js";
import { CompareError } from "./review.js";
import { serviceProxyTarget, type CompareTarget } from "./client.js";

export async function serviceTarget(
  ref: { namespace: string; name: string; port: number; path: string },
  choice: { kubeconfig?: string; context?: string },
  opts: { timeoutMs?: number },
): Promise<CompareTarget> {
  const kc = defaultKubeConfig(choice);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new CompareError("the kubeconfig names no cluster server to proxy through");
  const request: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(request);
  } catch (e) {
    throw new CompareError(`the kubeconfig's credentials: ${e instanceof Error ? e.message : String(e)}`);
  }
  return serviceProxyTarget(ref, cluster.server, request, opts);
}
