#!/usr/bin/env bash
# Regenerates cases.jsonl, the strategic-merge table that test/unit/injection/strategic-merge.test.ts
# checks src/injection/merge.ts against: generate.ts writes the cases (seeded), main.go merges
# each as Istio's injector does, with Kubernetes' own code (k8s.io/apimachinery, at the version
# Istio 86c9f01 pins), and writes the expected Pod beside it. Needs Go; the module cache and
# GOCACHE are used, nothing is built into the repository.
#   test/strategic-merge/regen.sh          (SEED and COUNT override the defaults)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
args=()
[[ -n ${SEED:-} ]] && args+=(--seed "$SEED")
[[ -n ${COUNT:-} ]] && args+=(--count "$COUNT")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here" && go build -mod=mod -o "$tmp/strategic-merge" .)
(cd "$root" && node --import tsx test/strategic-merge/generate.ts "${args[@]}") | "$tmp/strategic-merge" > "$tmp/cases.jsonl"
if grep -q '"error"' "$tmp/cases.jsonl"; then
  echo "regen.sh: Kubernetes refused some cases:" >&2
  grep '"error"' "$tmp/cases.jsonl" >&2
  exit 1
fi
mv "$tmp/cases.jsonl" "$here/cases.jsonl"
echo "regen.sh: $(wc -l < "$here/cases.jsonl") cases in $here/cases.jsonl" >&2
