// Istio's two injection ConfigMaps picked out of parsed manifests: what `kubectl get configmap
// -o yaml` prints (one ConfigMap, or a List of them) and what `helm template` renders (many
// documents, most of them not ConfigMaps). Per revision: `istio-sidecar-injector` and `istio`
// are the default revision's, `istio-sidecar-injector-REV` and `istio-REV` revision REV's.
// Several revisions in the input need a choice; the same ConfigMap twice is refused, so that
// which one counts is never a guess. Pure.
import { quote, quoteName } from "../injection/quote.js";
import type { IstioConfigMaps } from "./import.js";

const INJECTOR = "istio-sidecar-injector";
const MESH = "istio";

export class ConfigMapChoiceError extends Error {
  readonly code = "ERR_ISTIO_CONFIGMAPS";
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface Found {
  readonly kind: "injector" | "mesh";
  readonly revision: string;
  readonly name: string;
  readonly data: Readonly<Record<string, string | undefined>>;
}

/** The ConfigMap's role and revision, from its name; undefined when it is neither. */
function role(name: string): { kind: "injector" | "mesh"; revision: string } | undefined {
  if (name === INJECTOR) return { kind: "injector", revision: "" };
  if (name.startsWith(`${INJECTOR}-`)) return { kind: "injector", revision: name.slice(INJECTOR.length + 1) };
  if (name === MESH) return { kind: "mesh", revision: "" };
  // istio-ca-root-cert, istio-ca-crl and istio-leader live beside the mesh ConfigMaps.
  if (
    name.startsWith(`${MESH}-`) &&
    !/^istio-(ca-root-cert|ca-crl|leader|gateway-status-leader|namespace-controller-election|mesh-networks)$/.test(name)
  ) {
    return { kind: "mesh", revision: name.slice(MESH.length + 1) };
  }
  return undefined;
}

function collect(doc: unknown, out: Found[], depth: number): void {
  if (!isPlain(doc) || depth > 4) return;
  if (doc.kind === "List" && Array.isArray(doc.items)) {
    for (const item of doc.items) collect(item, out, depth + 1);
    return;
  }
  if (doc.kind !== "ConfigMap" || !isPlain(doc.metadata) || typeof doc.metadata.name !== "string") return;
  const r = role(doc.metadata.name);
  if (r === undefined) return;
  const data: Record<string, string | undefined> = {};
  if (isPlain(doc.data)) {
    for (const [k, v] of Object.entries(doc.data)) if (typeof v === "string") data[k] = v;
  }
  // A mesh-named ConfigMap without `mesh` is someone else's (istio-mesh-networks and the like).
  if (r.kind === "mesh" && data.mesh === undefined && r.revision !== "") return;
  out.push({ ...r, name: doc.metadata.name, data });
}

/** The revisions that have at least one of the two ConfigMaps in `docs`. */
export function revisionsIn(docs: readonly unknown[]): string[] {
  const found: Found[] = [];
  for (const d of docs) collect(d, found, 0);
  return [...new Set(found.map((f) => f.revision))].sort();
}

/**
 * The injector and mesh ConfigMaps of one revision (`revision` "" or "default" is the default
 * one; undefined: the only revision present). Throws ConfigMapChoiceError when there is
 * nothing to import, several revisions and no choice, or one ConfigMap twice.
 */
export function pickIstioConfigMaps(docs: readonly unknown[], revision?: string): IstioConfigMaps {
  const found: Found[] = [];
  for (const d of docs) collect(d, found, 0);
  const revisions = [...new Set(found.map((f) => f.revision))].sort();
  const named = (r: string): string => (r === "" ? "default" : quoteName(r));
  if (found.length === 0) {
    throw new ConfigMapChoiceError(
      `no ${INJECTOR}[-REV] or ${MESH}[-REV] ConfigMap in the input (kubectl get configmap -n istio-system ${INJECTOR} ${MESH} -o yaml gives them)`,
    );
  }
  let want = revision === "default" ? "" : revision;
  if (want === undefined) {
    if (revisions.length > 1)
      throw new ConfigMapChoiceError(
        `the input holds the ConfigMaps of several revisions (${revisions.map(named).join(", ")}): choose one with --revision`,
      );
    want = revisions[0] ?? "";
  }
  const mine = found.filter((f) => f.revision === want);
  if (mine.length === 0)
    throw new ConfigMapChoiceError(
      `no ConfigMap of revision ${quote(want)} in the input (it has ${revisions.map(named).join(", ")})`,
    );
  const one = (kind: "injector" | "mesh"): Found | undefined => {
    const list = mine.filter((f) => f.kind === kind);
    if (list.length > 1)
      throw new ConfigMapChoiceError(
        `the input holds ConfigMap ${quoteName(list[0]?.name ?? "")} ${list.length} times: give it once`,
      );
    return list[0];
  };
  const injector = one("injector");
  const mesh = one("mesh");
  return {
    ...(injector !== undefined
      ? {
          injector: {
            name: injector.name,
            ...(injector.data.values !== undefined ? { values: injector.data.values } : {}),
            ...(injector.data.config !== undefined ? { config: injector.data.config } : {}),
          },
        }
      : {}),
    ...(mesh !== undefined
      ? { mesh: { name: mesh.name, ...(mesh.data.mesh !== undefined ? { mesh: mesh.data.mesh } : {}) } }
      : {}),
  };
}
