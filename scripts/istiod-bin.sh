#!/usr/bin/env bash
# Provides Istio's control plane for the end-to-end comparison with istiod
# (test/e2e/istiod.test.ts): the pilot-discovery binary and Istio's Helm charts.
#
# Prints, as the last line of stdout, a directory holding
#   pilot-discovery   the istiod binary (istio.io/istio/pilot/cmd/pilot-discovery)
#   charts/           manifests/charts of the same istio.io/istio version (base,
#                     istio-control/istio-discovery, ...), for helm template
# Progress and errors go to stderr.
#
# Sources, in order:
#   1. ISTIOD_BIN, when it names a working pilot-discovery. Its charts are taken
#      from ISTIO_CHARTS when set, else from the module cache (downloaded).
#   2. Otherwise built once with Go from the Go module proxy, in a scratch
#      module requiring istio.io/istio@ISTIO_VERSION (GOFLAGS=-mod=mod), into a
#      cache outside the repository, reused by later runs:
#        ${SIDECAR_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sidecar-injector}/bin/istiod-<version>_<platform>/
#
# The version is the one the Go module proxy serves nearest after the commit
# our injector follows (86c9f01, src/istio/pinned.ts); GitHub is not needed.
# Between the two, pkg/kube/inject (the injector istiod runs) is the same code;
# the chart's injection templates are not (see ISTIO_VERSION below).
#
# Options:
#   --no-build   never build; exit 3 (below) when nothing is cached.
#
# Exit status: 0 success; 3 no way to provide the binary (neither a working
# ISTIOD_BIN nor a Go toolchain); anything else is a failed build.
set -euo pipefail

# istio.io/istio as the Go module proxy serves it: a release-1.31 branch commit
# of 2026-08-27. Its pkg/kube/inject equals 86c9f01's (tests aside); its
# chart's injection-template.yaml adds a GOMAXPROCS env to istio-proxy and
# spells a few quotes differently.
ISTIO_MODULE=istio.io/istio
ISTIO_VERSION=v0.0.0-20260827124520-eed52ebb66ad

NAME=istiod-bin
# shellcheck source-path=SCRIPTDIR source=bins-common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bins-common.sh"

versions_key="istiod-${ISTIO_VERSION}_${platform}"
bin_dir="$cache_root/bin/$versions_key"
work_root="$cache_root/work"

# works PATH: PATH is a pilot-discovery that runs.
works() { [[ -f $1 && -x $1 ]] && "$1" version --short >/dev/null 2>&1; }

find_go() {
  if [[ -n ${GO:-} ]]; then
    [[ -x $GO ]] && { printf '%s\n' "$GO"; return 0; }
    return 1
  fi
  if command -v go >/dev/null 2>&1; then command -v go; return 0; fi
  if [[ -x /usr/local/go/bin/go ]]; then printf '%s\n' /usr/local/go/bin/go; return 0; fi
  return 1
}

go_bin=""
require_go() {
  [[ -n $go_bin ]] && return 0
  if ! go_bin=$(find_go); then
    log "cannot provide pilot-discovery: ISTIOD_BIN does not name a working binary and no"
    log "Go toolchain was found to build it. Install Go, or set ISTIOD_BIN."
    exit "$EXIT_UNAVAILABLE"
  fi
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
  export CGO_ENABLED=0
  log "using $("$go_bin" version)"
}

# module_dir: the istio.io/istio source tree in the module cache (downloads it).
module_dir() {
  local out dir
  out=$("$go_bin" mod download -json "$ISTIO_MODULE@$ISTIO_VERSION") ||
    die "cannot download $ISTIO_MODULE@$ISTIO_VERSION"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out")
  [[ -d $dir/manifests/charts ]] || die "no manifests/charts in $ISTIO_MODULE@$ISTIO_VERSION ($dir)"
  printf '%s\n' "$dir"
}

# copy_charts SRC DEST: the module cache is read-only; helm only reads, but a
# writable copy outlives `go clean -modcache`.
copy_charts() {
  local src=$1 dest=$2
  rm -rf "$dest.tmp.$$"
  cp -R "$src/manifests/charts" "$dest.tmp.$$"
  chmod -R u+w "$dest.tmp.$$"
  rm -rf "$dest"
  mv "$dest.tmp.$$" "$dest"
}

build() {
  local work gomod line tmp src start=$SECONDS
  log "building pilot-discovery from $ISTIO_MODULE@$ISTIO_VERSION (several minutes the first time)"
  src=$(module_dir)
  gomod="$src/go.mod"
  work="$work_root/istiod-$ISTIO_VERSION"
  rm -rf "$work"
  mkdir -p "$work" "$bin_dir"
  (
    cd "$work"
    "$go_bin" mod init scratch >/dev/null 2>&1
    "$go_bin" mod edit -require="$ISTIO_MODULE@$ISTIO_VERSION"
    while IFS= read -r line; do
      "$go_bin" mod edit -godebug="$line"
    done < <(awk '$1 == "godebug" && $2 != "(" { print $2 }' "$gomod")
    "$go_bin" get "$ISTIO_MODULE/pilot/cmd/pilot-discovery@$ISTIO_VERSION" >&2
  ) || die "resolving $ISTIO_MODULE@$ISTIO_VERSION failed (work dir: $work)"
  tmp="$bin_dir/.pilot-discovery.tmp.$$"
  (
    cd "$work"
    "$go_bin" build -trimpath -ldflags="-s -w -X istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION" \
      -o "$tmp" "$ISTIO_MODULE/pilot/cmd/pilot-discovery"
  ) || { rm -f "$tmp"; die "building pilot-discovery failed (work dir: $work)"; }
  works "$tmp" || { rm -f "$tmp"; die "pilot-discovery was built but does not run"; }
  copy_charts "$src" "$bin_dir/charts"
  mv -f "$tmp" "$bin_dir/pilot-discovery"
  log "pilot-discovery built in $((SECONDS - start))s"
}

# --- 1. ISTIOD_BIN ---------------------------------------------------------
if [[ -n ${ISTIOD_BIN:-} ]]; then
  works "$ISTIOD_BIN" || die "ISTIOD_BIN=$ISTIOD_BIN is not a working pilot-discovery"
  bin_path=$(cd "$(dirname "$ISTIOD_BIN")" && pwd -P)/$(basename "$ISTIOD_BIN")
  if [[ -n ${ISTIO_CHARTS:-} ]]; then
    [[ -d $ISTIO_CHARTS/istio-control/istio-discovery ]] ||
      die "ISTIO_CHARTS=$ISTIO_CHARTS holds no istio-control/istio-discovery chart"
    charts=$(cd "$ISTIO_CHARTS" && pwd -P)
  else
    $no_build && { log "ISTIOD_BIN is set but ISTIO_CHARTS is not, and --no-build forbids downloading them"; exit "$EXIT_UNAVAILABLE"; }
    require_go
    charts="$(module_dir)/manifests/charts"
  fi
  # One folder holding both, as links into their real locations.
  link_dir="$cache_root/assets/istiod-$(printf '%s\n%s' "$bin_path" "$charts" | sha256sum | cut -c1-16)"
  mkdir -p "$link_dir"
  ln -sfn "$bin_path" "$link_dir/pilot-discovery"
  ln -sfn "$charts" "$link_dir/charts"
  log "using ISTIOD_BIN=$bin_path, charts from $charts"
  printf '%s\n' "$link_dir"
  exit 0
fi

# --- 2. Built from the Go module proxy, cached -----------------------------
if works "$bin_dir/pilot-discovery" && [[ -d $bin_dir/charts/istio-control/istio-discovery ]]; then
  printf '%s\n' "$bin_dir"
  exit 0
fi
if $no_build; then
  log "pilot-discovery $ISTIO_VERSION is not cached in $bin_dir and --no-build was given."
  log "Run scripts/istiod-bin.sh once to build it, or set ISTIOD_BIN (and ISTIO_CHARTS)."
  exit "$EXIT_UNAVAILABLE"
fi
require_go
mkdir -p "$cache_root/bin"
exec {lock_fd}>"$cache_root/bin/.$versions_key.lock"
if ! flock -n "$lock_fd"; then
  log "another run is building pilot-discovery; waiting for it"
  flock "$lock_fd"
fi
if ! { works "$bin_dir/pilot-discovery" && [[ -d $bin_dir/charts/istio-control/istio-discovery ]]; }; then
  build
fi
printf '%s\n' "$bin_dir"
