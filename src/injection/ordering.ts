// Where the injected containers go, as Istio orders them (reorderPod):
// - native sidecars: istio-init/istio-validation, then istio-proxy, then the user's init
//   containers, so those already have the mesh;
// - classic: istio-validation first, the user's init containers, then istio-init last, so the
//   user's init containers still have the network before iptables redirects it; istio-proxy is
//   the last container, or the first when the application must wait for it.
import type { Container } from "../kube/types.js";
import { CONTAINER } from "./annotations.js";

function move(list: readonly Container[], name: string, where: "first" | "last"): Container[] {
  const i = list.findIndex((c) => c.name === name);
  if (i < 0) return [...list];
  const item = list[i] as Container;
  const rest = [...list.slice(0, i), ...list.slice(i + 1)];
  return where === "first" ? [item, ...rest] : [...rest, item];
}

export function orderContainers(
  initContainers: readonly Container[],
  containers: readonly Container[],
  hold: boolean,
): { initContainers: Container[]; containers: Container[] } {
  const main = move(containers, CONTAINER.proxy, hold ? "first" : "last");
  let init: Container[];
  if (initContainers.some((c) => c.name === CONTAINER.proxy)) {
    init = move(initContainers, CONTAINER.coreDump, "first");
    init = move(init, CONTAINER.proxy, "first");
    init = move(init, CONTAINER.validation, "first");
    init = move(init, CONTAINER.init, "first");
  } else {
    init = move(initContainers, CONTAINER.coreDump, "last");
    init = move(init, CONTAINER.validation, "first");
    init = move(init, CONTAINER.init, "last");
  }
  return { initContainers: init, containers: main };
}
