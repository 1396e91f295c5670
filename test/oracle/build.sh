#!/usr/bin/env bash
# Builds the oracle (test/oracle/main.go: Istio's injector with TestInjection's default
# settings) against Istio at ISTIO_COMMIT, outside the repository, and prints the binary's path.
#
#   ISTIO_SRC        Istio checkout to build against (default: $CACHE/istio-<short commit>,
#                    created from $ISTIO_MIRROR with `git archive`, else fetched from GitHub)
#   ISTIO_MIRROR     a git directory holding ISTIO_COMMIT (default /work/.mirror/istio+istio/repo)
#   SIDECAR_INJECTOR_CACHE  cache root (default ~/.cache/sidecar-injector)
#
# The Go module proxy does not serve istio.io/istio at this commit, so the oracle's go.mod
# replaces it with the checkout; Istio's dependencies come from the proxy (GOCACHE and the
# module cache are kept, so a rebuild after the first is quick). Nothing is written into the
# repository: main.go, go.mod and go.sum are copied into $CACHE/oracle-build and the replace
# is pointed at ISTIO_SRC there. The binary is rebuilt only when its inputs change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ISTIO_COMMIT=86c9f01fd735fb01d8192f5bcaf0d424afb7f14c
short=${ISTIO_COMMIT:0:7}
cache=${SIDECAR_INJECTOR_CACHE:-$HOME/.cache/sidecar-injector}
src=${ISTIO_SRC:-$cache/istio-$short}
mirror=${ISTIO_MIRROR:-/work/.mirror/istio+istio/repo}
build=$cache/oracle-build
bin=$cache/bin/istio-oracle-$short

log() { echo "build.sh: $*" >&2; }

if [[ ! -f $src/go.mod || ! -d $src/pkg/kube/inject ]]; then
  log "preparing Istio $short in $src"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  if git -C "$mirror" cat-file -e "$ISTIO_COMMIT^{commit}" 2>/dev/null; then
    git -C "$mirror" archive "$ISTIO_COMMIT" | tar -x -C "$src.tmp"
  else
    log "no mirror at $mirror: fetching $ISTIO_COMMIT from GitHub"
    git -C "$src.tmp" init -q
    git -C "$src.tmp" fetch -q --depth 1 https://github.com/istio/istio "$ISTIO_COMMIT"
    git -C "$src.tmp" archive FETCH_HEAD | tar -x -C "$src.tmp"
    rm -rf "$src.tmp/.git"
  fi
  rm -rf "$src" && mv "$src.tmp" "$src"
fi

command -v go >/dev/null || { log "go is not installed (Istio $short needs $(sed -n 's/^go //p' "$src/go.mod"))"; exit 2; }

stamp=$( { cat "$here/main.go" "$here/go.mod" "$here/go.sum"; echo "$src"; go version; } | sha256sum | cut -c1-16)
if [[ -x $bin && -f $bin.stamp && $(cat "$bin.stamp") == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$build" "$cache/bin"
cp "$here/main.go" "$here/go.mod" "$here/go.sum" "$build/"
(
  cd "$build"
  go mod edit -replace "istio.io/istio=$src"
  log "building $bin (the first build compiles much of Istio: minutes)"
  GOFLAGS=${GOFLAGS:-} go build -mod=mod -ldflags "-X main.defaultIstioSrc=$src" -o "$bin.tmp" .
)
mv "$bin.tmp" "$bin"
echo "$stamp" > "$bin.stamp"
echo "$bin"
