// Where the injected containers go, as Istio orders them (reorderPod):
// - native sidecars: istio-init/istio-validation, then istio-proxy, then the user's init
//   containers, so those already have the mesh;
// - classic: istio-validation first, the user's init containers, then istio-init, so the
//   user's init containers still have the network before iptables redirects it, and
//   enable-core-dump after it, last; istio-proxy is the last container, or the first when the
//   application must wait for it.
import type { Container } from "../kube/types.js";
import { CONTAINER } from "./annotations.js";

/** Moves the first container named `name` to the front or the end of `list`, in place. */
function move(list: Container[], name: string, where: "first" | "last"): Container[] {
  const i = list.findIndex((c) => c.name === name);
  const item = list[i];
  if (item === undefined) return list;
  list.splice(i, 1);
  if (where === "first") list.unshift(item);
  else list.push(item);
  return list;
}

export function orderContainers(
  initContainers: readonly Container[],
  containers: readonly Container[],
  hold: boolean,
): { initContainers: Container[]; containers: Container[] } {
  // One copy of each list, moved in place: the lists are the Pod's, of any length.
  const main = move([...containers], CONTAINER.proxy, hold ? "first" : "last");
  let init: Container[] = [...initContainers];
  if (init.some((c) => c.name === CONTAINER.proxy)) {
    init = move(init, CONTAINER.coreDump, "first");
    init = move(init, CONTAINER.proxy, "first");
    init = move(init, CONTAINER.validation, "first");
    init = move(init, CONTAINER.init, "first");
  } else {
    init = move(init, CONTAINER.validation, "first");
    init = move(init, CONTAINER.init, "last");
    init = move(init, CONTAINER.coreDump, "last");
  }
  return { initContainers: init, containers: main };
}
