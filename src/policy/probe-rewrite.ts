// The probe rewrite (the engine's probes.ts) in CEL, over the admitted `object` — which the
// API server has defaulted before mutating admission (a probe's timeoutSeconds, an httpGet's
// path "/" and scheme "HTTP", a grpc action's service ""), as the webhook sees it:
// - every liveness, readiness and startup probe with an httpGet, tcpSocket or grpc action, and
//   every preStop or postStart hook with an httpGet or tcpSocket action, of every container
//   and init container, is pointed at the agent: its tcpSocket and grpc removed, its httpGet's
//   path and port replaced (scheme HTTPS made HTTP), or an httpGet of path and port added;
// - the originals go to the agent in ISTIO_KUBE_APP_PROBERS, appended to the sidecar's env
//   when there is at least one: a JSON object keyed by the paths in sorted order, each the
//   engine's prober — grpc as the Pod states it (when the probe has no httpGet or tcpSocket),
//   else the httpGet (path, port, host, scheme, headers, each when set) or the tcpSocket
//   (port, host), then the probe's timeoutSeconds when not 0. A port name resolves to the
//   containerPort of the container's last port of that name; an unknown name, or a number that
//   is the agent's port, hands nothing over (the probe is still rewritten);
// - the JSON is built by concatenation: the domain (domain.ts) keeps out every string that JSON
//   would escape, and container names that would not sort as the engine sorts them;
// - CEL has no sort: the paths sort by container name + "/" (a name has no "/"), then by the
//   fixed suffixes, and every health path sorts before every lifecycle one, so each container
//   with probers is ranked by how many names sort before its own;
// - CEL has no flatten: the ops of the containers, one list per container, are concatenated
//   index by index up to the domain's bound (MAX_CONTAINERS).
// The agent's port is read from the engine's own output for a probe Pod, not restated.
import type { Config } from "../config/types.js";
import type { Container } from "../kube/types.js";
import { CONTAINER } from "../injection/annotations.js";
import { inject } from "../injection/inject.js";
import { APP_PROBERS_ENV, hookPath, probePath } from "../injection/probes.js";
import { str } from "./cel.js";
import { PolicyRenderError } from "./errors.js";
import type { PolicyVariable } from "./pod-values.js";
import { samplePod } from "./sample.js";

/** The probes, in the order their paths sort within a container. */
export const REWRITTEN_PROBES = [
  ["livenessProbe", "livez"],
  ["readinessProbe", "readyz"],
  ["startupProbe", "startupz"],
] as const;
/** The hooks, likewise. */
export const REWRITTEN_HOOKS = [
  ["postStart", "poststartz"],
  ["preStop", "prestopz"],
] as const;

const v = (name: string): string => `variables.${name}`;
const MARK = "\u0000";

/** The CEL of `path(container, suffix)` for the container `c`. */
function pathOf(path: (container: string, suffix: string) => string, suffix: string): string {
  const [head = "", tail = ""] = path(MARK, suffix).split(MARK);
  return `${str(head)} + c.name + ${str(tail)}`;
}

/** CEL: `"field":"<value>"` behind `sep` when the string field is set and not empty, else "". */
const strField = (obj: string, field: string, sep: string): string =>
  `(${obj}.?${field}.orValue("") != "" ? ${str(`${sep}"${field}":"`)} + ${obj}.${field} + ${str('"')} : "")`;

/** CEL: the JSON number of a handler's port for the agent, "" when nothing is handed over. */
function portJson(port: string, agentPort: number): string {
  const named =
    `[c.?ports.orValue([]).filter(p, p.?name.orValue("") != "" && p.name == ${port})].map(m, size(m) == 0 ? "" : ` +
    `m[size(m) - 1].?containerPort.hasValue() ? string(m[size(m) - 1].containerPort) : "")[0]`;
  return `(type(${port}) == string ? ${named} : ${port} == ${agentPort} ? "" : string(${port}))`;
}

function httpJson(g: string): string {
  const headers =
    `(size(${g}.?httpHeaders.orValue([])) > 0 ? ${str(',"httpHeaders":[')} + ${g}.httpHeaders.map(x, ` +
    `${str('{"name":"')} + x.?name.orValue("") + ${str('","value":"')} + x.?value.orValue("") + ${str('"}')}).join(",") + "]" : "")`;
  return (
    `"{" + (${g}.?path.orValue("") != "" ? ${str('"path":"')} + ${g}.path + ${str('",')} : "") + ${str('"port":')} + pj + ` +
    `${strField(g, "host", ",")} + ${strField(g, "scheme", ",")} + ${headers} + "}"`
  );
}

/** CEL: the `"<path>":<prober>` entry of the handler `h`, "" when nothing is handed over. */
function entry(key: string, probe: boolean, agentPort: number): string {
  const timeout = probe
    ? `(h.?timeoutSeconds.orValue(0) != 0 ? ${str(',"timeoutSeconds":')} + string(h.timeoutSeconds) : "")`
    : '""';
  const open = (action: string): string => `${key} + ${str(`:{"${action}":`)}`;
  const withPort = (action: string, port: string, json: string): string =>
    `[${portJson(port, agentPort)}].map(pj, pj == "" ? "" : ${open(action)} + ${json} + ${timeout} + "}")[0]`;
  const tcp = `"{" + ${str('"port":')} + pj + ${strField("h.tcpSocket", "host", ",")} + "}"`;
  const grpc =
    `${str('{"port":')} + string(h.grpc.?port.orValue(0)) + ` +
    `(h.grpc.?service.hasValue() ? ${str(',"service":"')} + h.grpc.service + ${str('"')} : "") + "}"`;
  return (
    (probe
      ? `h.?grpc.hasValue() && !h.?httpGet.hasValue() && !h.?tcpSocket.hasValue() ? ${open("grpc")} + ${grpc} + ${timeout} + "}" : `
      : "") +
    `h.?httpGet.hasValue() ? ${withPort("httpGet", "h.httpGet.port", httpJson("h.httpGet"))} : ` +
    `h.?tcpSocket.hasValue() ? ${withPort("tcpSocket", "h.tcpSocket.port", tcp)} : ""`
  );
}

/** CEL over the container `c`: the handler at `at` (e.g. `c.?livenessProbe`), if rewritten, as `h` in `expr`. */
const withHandler = (at: string, expr: string, none: string): string =>
  `(${at}.hasValue() ? [${at}.value()].map(h, ${expr})[0] : ${none})`;

/** Whether the handler `h` is rewritten (an httpGet, a tcpSocket, or for a probe a grpc action). */
const rewritable = (probe: boolean): string =>
  `(h.?httpGet.hasValue() || h.?tcpSocket.hasValue()${probe ? " || h.?grpc.hasValue()" : ""})`;

const ALL_CONTAINERS = "(object.spec.?initContainers.orValue([]) + object.spec.containers)";

/** The variables computing ISTIO_KUBE_APP_PROBERS (`variables.appProbers`, "" when none). */
export function probeVariables(agentPort: number): PolicyVariable[] {
  const health = REWRITTEN_PROBES.map(([kind, suffix]) =>
    withHandler(
      `c.?${kind}`,
      `${rewritable(true)} ? (${entry(`"\\"" + ${pathOf(probePath, suffix)} + "\\""`, true, agentPort)}) : ""`,
      '""',
    ),
  );
  const hooks = REWRITTEN_HOOKS.map(([kind, suffix]) =>
    withHandler(
      `c.?lifecycle.${kind}`,
      `${rewritable(false)} ? (${entry(`"\\"" + ${pathOf(hookPath, suffix)} + "\\""`, false, agentPort)}) : ""`,
      '""',
    ),
  );
  const joined = (xs: readonly string[]): string => `[${xs.join(", ")}].filter(s, s != "").join(",")`;
  return [
    {
      name: "proberEntries",
      expression:
        `${ALL_CONTAINERS}.map(c, {"key": c.name + "/", "health": ${joined(health)}, "hooks": ${joined(hooks)}})` +
        '.filter(e, e.health != "" || e.hooks != "")',
    },
    {
      name: "proberRanks",
      expression: `${v("proberEntries")}.map(e, size(${v("proberEntries")}.filter(o, o.key < e.key)))`,
    },
    {
      name: "appProbers",
      expression:
        `size(${v("proberEntries")}) == 0 ? "" : ` +
        `[${v("proberEntries")}.transformList(i, e, ${v("proberEntries")}[${v("proberRanks")}.indexOf(i)])]` +
        '.map(es, "{" + (es.map(e, e.health) + es.map(e, e.hooks)).filter(s, s != "").join(",") + "}")[0]',
    },
  ];
}

/** The CEL list the sidecar's env literal is followed by: ISTIO_KUBE_APP_PROBERS when there are probers. */
export const APP_PROBERS_ENV_CEL =
  `(${v("appProbers")} == "" ? [] : ` +
  `[dyn({"name": dyn(${str(APP_PROBERS_ENV)}), "value": dyn(${v("appProbers")})})])`;

/** CEL over `c` at the JSON pointer `base` (CEL text): the ops rewriting its probes and hooks. */
function containerOps(base: string, agentPort: number): string {
  // A map, not a JSONPatch: variables cannot hold the JSONPatch type (probeOpsExpression converts).
  const op = (o: string, path: string, value?: string): string =>
    `{"op": dyn(${str(o)}), "path": dyn(${base} + ${str(path)})${value === undefined ? "" : `, "value": dyn(${value})`}}`;
  const handlerOps = (at: string, probe: boolean, suffixPath: string): string => {
    const ops =
      `(h.?tcpSocket.hasValue() ? [${op("remove", `${at}/tcpSocket`)}] : []) + ` +
      (probe ? `(h.?grpc.hasValue() ? [${op("remove", `${at}/grpc`)}] : []) + ` : "") +
      `(h.?httpGet.hasValue() ? [${op("add", `${at}/httpGet/path`, suffixPath)}, ${op("add", `${at}/httpGet/port`, String(agentPort))}] + ` +
      `(h.httpGet.?scheme.orValue("") == "HTTPS" ? [${op("add", `${at}/httpGet/scheme`, '"HTTP"')}] : []) : ` +
      `[${op("add", `${at}/httpGet`, `{"path": dyn(${suffixPath}), "port": dyn(${agentPort})}`)}])`;
    return `${rewritable(probe)} ? ${ops} : []`;
  };
  return [
    ...REWRITTEN_PROBES.map(([kind, suffix]) =>
      withHandler(`c.?${kind}`, handlerOps(`/${kind}`, true, pathOf(probePath, suffix)), "[]"),
    ),
    ...REWRITTEN_HOOKS.map(([kind, suffix]) =>
      withHandler(`c.?lifecycle.${kind}`, handlerOps(`/lifecycle/${kind}`, false, pathOf(hookPath, suffix)), "[]"),
    ),
  ].join(" + ");
}

/** The variables holding each list's ops, one list per container. */
export function probeOpVariables(agentPort: number): PolicyVariable[] {
  return (["initContainers", "containers"] as const).map((list) => ({
    name: `${list}ProbeOps`,
    expression:
      `object.spec.?${list}.orValue([]).transformList(i, c, ` +
      `${containerOps(`${str(`/spec/${list}/`)} + string(i)`, agentPort)})`,
  }));
}

/**
 * The JSONPatch ops rewriting the probes, at the Pod's own indexes (they come before any
 * insertion), for Pods of at most `maxContainers` containers and init containers.
 */
export function probeOpsExpression(maxContainers: number): string {
  const each = (["initContainers", "containers"] as const).flatMap((list) =>
    Array.from({ length: maxContainers }, (_, i) => {
      const ops = v(`${list}ProbeOps`);
      return `(size(${ops}) > ${i} ? ${ops}[${i}] : [])`;
    }),
  );
  return (
    `(${each.join(" + ")}).map(o, o.op == "remove" ? JSONPatch{op: "remove", path: string(o.path)} : ` +
    "JSONPatch{op: string(o.op), path: string(o.path), value: o.value})"
  );
}

/** A probe Pod: one container with a tcpSocket readiness probe on port 1. */
const PROBE_POD = samplePod({ readinessProbe: { tcpSocket: { port: 1 } } });

/**
 * The agent's port the engine rewrites probes to under `config`, or undefined when it rewrites
 * none; fails when its output for the probe Pod is not what this file computes.
 */
export function probeRewritePort(config: Config, nativeSidecarsSupported: boolean): number | undefined {
  const out = inject(PROBE_POD, { namespace: "probe", nativeSidecarsSupported }, config).pod;
  const lists: Container[] = [...(out.spec?.initContainers ?? []), ...(out.spec?.containers ?? [])];
  const app = lists.find((c) => c.name === "app");
  const env = lists.find((c) => c.name === CONTAINER.proxy)?.env ?? [];
  const probers = env.filter((e) => e.name === APP_PROBERS_ENV);
  const get = app?.readinessProbe?.httpGet;
  if (!get && probers.length === 0 && app?.readinessProbe?.tcpSocket) return undefined;
  const port = get?.port;
  const expected = JSON.stringify({ [probePath("app", "readyz")]: { tcpSocket: { port: 1 } } });
  if (
    typeof port !== "number" ||
    get?.path !== probePath("app", "readyz") ||
    app?.readinessProbe?.tcpSocket !== undefined ||
    probers.length !== 1 ||
    probers[0]?.value !== expected ||
    env.at(-1)?.name !== APP_PROBERS_ENV
  )
    throw new PolicyRenderError("the injection rewrites probes in a way the policy does not compute");
  return port;
}
