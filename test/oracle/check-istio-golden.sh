#!/usr/bin/env bash
# Proves the oracle: on every default-settings case of Istio's TestInjection
# (istio-default-cases.txt) its output must equal Istio's golden file byte for byte, and on
# every expectedError case (istio-refusal-cases.txt) it must refuse with a message containing
# the expected word. Prints PASS/FAIL per case and "X/N golden files reproduced"; exit status
# 0 only when all pass. Builds the oracle first (build.sh). Options: -v (show diffs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
verbose=0
[[ ${1:-} == -v ]] && verbose=1
bin=$("$here/build.sh")
cache=${SIDECAR_INJECTOR_CACHE:-$HOME/.cache/sidecar-injector}
src=${ISTIO_SRC:-$cache/istio-86c9f01}
data=$src/pkg/kube/inject/testdata/inject
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

pass=0 total=0
while read -r input want; do
  [[ -z $input || $input == \#* ]] && continue
  total=$((total + 1))
  if "$bin" -f "$data/$input" > "$out/got" 2> "$out/err" && cmp -s "$out/got" "$data/$want"; then
    pass=$((pass + 1))
    echo "PASS $input -> $want"
  else
    echo "FAIL $input -> $want"
    if [[ $verbose == 1 ]]; then
      cat "$out/err"
      diff -u "$data/$want" "$out/got" | head -40 || true
    fi
  fi
done < "$here/istio-default-cases.txt"

rpass=0 rtotal=0
while read -r input word; do
  [[ -z $input || $input == \#* ]] && continue
  rtotal=$((rtotal + 1))
  said=$("$bin" --refusal -f "$data/$input" 2>/dev/null || true)
  if [[ $said == refused:* && ${said,,} == *"$word"* ]]; then
    rpass=$((rpass + 1))
    echo "PASS $input refused: ${said#refused: }"
  else
    echo "FAIL $input: want a refusal naming $word, got: ${said:0:200}"
  fi
done < "$here/istio-refusal-cases.txt"

echo "$pass/$total golden files reproduced byte for byte; $rpass/$rtotal refusals reproduced"
[[ $pass == "$total" && $rpass == "$rtotal" ]]
