// Helpers for the MutatingAdmissionPolicy end-to-end tests: create or delete a policy and its
// bindings through the real API server, and wait until its admission plugin has picked the
// change up (it watches policies and bindings and acts on them asynchronously).
import type { Pod } from "../../src/kube/types.js";
import type { Cluster } from "./cluster.js";

type Obj = Record<string, unknown>;

export const MAP_GROUP = "admissionregistration.k8s.io";

function collection(apiVersion: string, kind: string): string {
  const plural = kind === "MutatingAdmissionPolicy" ? "mutatingadmissionpolicies" : "mutatingadmissionpolicybindings";
  return `/apis/${apiVersion}/${plural}`;
}

function nameOf(o: Obj): string {
  const meta = o.metadata;
  const name = typeof meta === "object" && meta !== null ? (meta as { name?: unknown }).name : undefined;
  if (typeof name !== "string") throw new Error(`object without metadata.name: ${JSON.stringify(o).slice(0, 200)}`);
  return name;
}

/** Creates each object (a MutatingAdmissionPolicy or a binding), or fails naming the API server's answer. */
export async function createAll(cluster: Cluster, objects: readonly Obj[]): Promise<void> {
  for (const o of objects) {
    const r = await cluster.request("POST", collection(String(o.apiVersion), String(o.kind)), o);
    if (r.status !== 201)
      throw new Error(`creating ${String(o.kind)} ${nameOf(o)}: ${r.status} ${r.text.slice(0, 2000)}`);
  }
}

/** Deletes each object; absent ones are fine. */
export async function deleteAll(cluster: Cluster, objects: readonly Obj[]): Promise<void> {
  for (const o of objects) {
    const r = await cluster.request("DELETE", `${collection(String(o.apiVersion), String(o.kind))}/${nameOf(o)}`);
    if (r.status !== 200 && r.status !== 404)
      throw new Error(`deleting ${String(o.kind)} ${nameOf(o)}: ${r.status} ${r.text}`);
  }
}

/** Creates `pod` in `ns` (dry run unless `store`), answering the API server's status and object. */
export async function createPod(
  cluster: Cluster,
  ns: string,
  pod: Pod,
  store = true,
): Promise<{ status: number; pod: Pod; text: string }> {
  const body = { apiVersion: "v1", kind: "Pod", ...pod, metadata: { ...pod.metadata, namespace: ns } };
  const r = await cluster.request<Pod>("POST", `/api/v1/namespaces/${ns}/pods${store ? "" : "?dryRun=All"}`, body);
  return { status: r.status, pod: r.json, text: r.text };
}

/**
 * Polls with dry-run creations of `probe` until `done` holds for the created Pod (the policy
 * or webhook took effect, or stopped taking effect); fails after 30 s naming the last answer.
 */
export async function waitUntil(
  cluster: Cluster,
  ns: string,
  probe: Pod,
  done: (status: number, pod: Pod) => boolean,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    const r = await createPod(cluster, ns, probe, false);
    if (done(r.status, r.pod)) return;
    last = `${r.status} ${r.text.slice(0, 300)}`;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new Error(`${what}: not within 30 s (last: ${last})`);
}
