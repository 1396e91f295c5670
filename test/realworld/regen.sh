#!/usr/bin/env bash
# Records Istio's answers for the real-world corpus (test/realworld/cases/), so the test runs
# without Go:
#   istio-native.jsonl.gz    what Istio's injector (the oracle: TestInjection's default settings,
#                            whose cluster has native sidecars) makes of each case
#   istio-classic.jsonl.gz   the same with ENABLE_NATIVE_SIDECARS=false (classic sidecars)
# one {"id","output","warnings"} or {"id","refusal"} per line, in the order of inputs.jsonl.gz,
# each output also read as documents ("docs", record.ts) so the test need not read YAML.
#
#   test/realworld/regen.sh                     answers for the stored inputs
#   GIT_ROOT=DIR test/realworld/regen.sh        first collects the inputs again (collect.ts)
#                                               from clones of the source repositories under
#                                               DIR (<owner>+<name>/repo, <owner>+<name> or
#                                               <owner>/<name>), charts rendered with HELM
#                                               (default: the test binaries' helm, else helm)
# Then run test/realworld/realworld.test.ts and review what differs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/cases
bin=$("$root/test/oracle/build.sh")
cache=${SIDECAR_INJECTOR_CACHE:-$HOME/.cache/sidecar-injector}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

if [[ -n ${GIT_ROOT:-} ]]; then
  helm=${HELM:-$(ls "$cache"/bin/k8s-*/helm 2>/dev/null | tail -1)}
  helm=${helm:-helm}
  (cd "$root" && node --import tsx test/realworld/collect.ts --git-root "$GIT_ROOT" --helm "$helm") > "$tmp/inputs.jsonl"
  gzip -n -9 < "$tmp/inputs.jsonl" > "$out/inputs.jsonl.gz"
else
  gunzip < "$out/inputs.jsonl.gz" > "$tmp/inputs.jsonl"
fi

# Istio logs an error for every refusal: kept out of the way (OR_LOG to keep it).
log=${OR_LOG:-$tmp/oracle.log}
record() { (cd "$root" && node --import tsx test/realworld/record.ts); }
"$bin" --jsonl -f "$tmp/inputs.jsonl" 2>> "$log" | record | gzip -n -9 > "$out/istio-native.jsonl.gz"
ENABLE_NATIVE_SIDECARS=false "$bin" --jsonl -f "$tmp/inputs.jsonl" 2>> "$log" | record | gzip -n -9 > "$out/istio-classic.jsonl.gz"
cases=$(wc -l < "$tmp/inputs.jsonl")
refused=$(gunzip < "$out/istio-native.jsonl.gz" | grep -c '"refusal"' || true)
echo "regen.sh: $cases cases ($refused refused by Istio) in $out: $(du -ch "$out"/*.gz | tail -1 | cut -f1)" >&2
