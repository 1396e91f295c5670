// Kubernetes strategic merge, for the shapes the injector merges: a container over a
// container, a list of named things over another. Lists the API merges by key (env by name,
// ports by containerPort, volumeMounts by mountPath, ...) are merged item by item; other lists
// are replaced; maps merge recursively; scalars from the patch win. Nothing is mutated.

const MERGE_KEYS: Readonly<Record<string, string>> = {
  env: "name",
  ports: "containerPort",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  sysctls: "name",
  containers: "name",
  initContainers: "name",
  volumes: "name",
  imagePullSecrets: "name",
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function mergeList(base: readonly unknown[], patch: readonly unknown[], key: string): unknown[] {
  const out = [...base];
  for (const item of patch) {
    const id = isObj(item) ? item[key] : undefined;
    const i = id === undefined ? -1 : out.findIndex((x) => isObj(x) && x[key] === id);
    if (i >= 0) out[i] = mergeValue(out[i], item);
    else out.push(item);
  }
  return out;
}

export function mergeObject<T extends object>(base: T, patch: object): T {
  const out: Obj = { ...(base as Obj) };
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) {
      delete out[k];
      continue;
    }
    const b = out[k];
    const key = MERGE_KEYS[k];
    if (key && Array.isArray(b) && Array.isArray(v)) out[k] = mergeList(b, v, key);
    else out[k] = mergeValue(b, v);
  }
  return out as T;
}

function mergeValue(base: unknown, patch: unknown): unknown {
  if (isObj(base) && isObj(patch)) return mergeObject(base, patch);
  return patch;
}
