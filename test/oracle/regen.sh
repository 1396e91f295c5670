#!/usr/bin/env bash
# Regenerates the differential corpus (test/differential/cases/): builds the oracle (build.sh),
# generates the cases (generate.ts, seeded), runs the oracle on them, and writes
#   inputs.jsonl.gz   one {"id","manifest"} per line
#   istio.jsonl.gz    one {"id","output","warnings"} or {"id","refusal"} per line: what
#                     Istio's injector (TestInjection's default settings) makes of it
# The corpus: GEN_COUNT generated cases, Istio's own default-settings and expectedError test
# inputs, REINJECT_COUNT of Istio's outputs fed back in, the fixed userVolume cases
# (generate.ts --user-volumes) and the other fixed cases (--fixed, then --fixed-reinject on
# Istio's answers to them); the fixed ones last, so that they change none of the seeded ones.
# Same seed, same bytes.
#   npm run oracle:regen            (SEED, GEN_COUNT, REINJECT_COUNT override the defaults)
# Then run test/differential/differential.test.ts with UPDATE_DIVERGENCES=1 to rewrite the
# list of known divergences and DIVERGENCES.md, and review the diff.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seed=${SEED:-20261129}
gen_count=${GEN_COUNT:-1100}
reinject_count=${REINJECT_COUNT:-160}
bin=$("$here/build.sh")
cache=${SIDECAR_INJECTOR_CACHE:-$HOME/.cache/sidecar-injector}
src=${ISTIO_SRC:-$cache/istio-86c9f01}
data=$src/pkg/kube/inject/testdata/inject
out=$root/test/differential/cases
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen() { (cd "$root" && node --import tsx test/oracle/generate.ts "$@"); }

gen --seed "$seed" --count "$gen_count" > "$tmp/gen.jsonl"
istio_inputs=()
while read -r input _; do
  [[ -z $input || $input == \#* ]] && continue
  istio_inputs+=("$data/$input")
done < <(cat "$here/istio-default-cases.txt" "$here/istio-refusal-cases.txt")
# proxy-override-args.yaml has two golden files: one case is enough.
mapfile -t istio_inputs < <(printf '%s\n' "${istio_inputs[@]}" | sort -u)
gen --files istio- "${istio_inputs[@]}" >> "$tmp/gen.jsonl"
# Istio logs an error for every refusal: kept out of the way (OR_LOG to keep it).
log=${OR_LOG:-$tmp/oracle.log}
"$bin" --jsonl -f "$tmp/gen.jsonl" > "$tmp/gen.out.jsonl" 2>> "$log"
gen --seed "$seed" --count "$reinject_count" --reinject "$tmp/gen.out.jsonl" > "$tmp/re.jsonl"
"$bin" --jsonl -f "$tmp/re.jsonl" > "$tmp/re.out.jsonl" 2>> "$log"
gen --user-volumes > "$tmp/uv.jsonl"
"$bin" --jsonl -f "$tmp/uv.jsonl" > "$tmp/uv.out.jsonl" 2>> "$log"
gen --fixed > "$tmp/fx.jsonl"
"$bin" --jsonl -f "$tmp/fx.jsonl" > "$tmp/fx.out.jsonl" 2>> "$log"
gen --fixed-reinject "$tmp/fx.out.jsonl" > "$tmp/fxr.jsonl"
"$bin" --jsonl -f "$tmp/fxr.jsonl" > "$tmp/fxr.out.jsonl" 2>> "$log"

mkdir -p "$out"
cat "$tmp/gen.jsonl" "$tmp/re.jsonl" "$tmp/uv.jsonl" "$tmp/fx.jsonl" "$tmp/fxr.jsonl" | gzip -n -9 > "$out/inputs.jsonl.gz"
cat "$tmp/gen.out.jsonl" "$tmp/re.out.jsonl" "$tmp/uv.out.jsonl" "$tmp/fx.out.jsonl" "$tmp/fxr.out.jsonl" | gzip -n -9 > "$out/istio.jsonl.gz"
cases=$(cat "$tmp/gen.jsonl" "$tmp/re.jsonl" "$tmp/uv.jsonl" "$tmp/fx.jsonl" "$tmp/fxr.jsonl" | wc -l)
refused=$(cat "$tmp/gen.out.jsonl" "$tmp/re.out.jsonl" "$tmp/uv.out.jsonl" "$tmp/fx.out.jsonl" "$tmp/fxr.out.jsonl" | grep -c '"refusal"' || true)
echo "regen.sh: $cases cases ($refused refused by Istio) in $out: $(du -ch "$out"/*.gz | tail -1 | cut -f1)" >&2
