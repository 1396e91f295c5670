// Loaded with `--import` into a serve process, and so into each of its workers (they run with
// the primary's node flags): when SIDECAR_INJECTOR_LOAD_LOG names a folder, every module the
// process loads is appended, one URL a line, to <folder>/<pid>. Tests read it to tell which
// processes load what (e.g. that no worker loads @kubernetes/client-node).
import { register } from "node:module";

const HOOKS = `
import { appendFileSync } from "node:fs";
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) {
  appendFileSync(file, url + "\\n");
  return next(url, context);
}
`;

const dir = process.env.SIDECAR_INJECTOR_LOAD_LOG;
if (dir !== undefined && dir !== "") {
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, import.meta.url, {
    data: { file: `${dir}/${process.pid}` },
  });
}
