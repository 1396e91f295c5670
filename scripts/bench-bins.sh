#!/usr/bin/env bash
# Provides the load generator `npm run bench` drives the servers with: vegeta.
#
# Prints, as the last line of stdout, the path of a working vegeta executable.
# Progress and errors go to stderr.
#
# Sources, in order:
#   1. VEGETA, when it names a working executable.
#   2. The cache, built once with Go from the Go module proxy and reused by
#      later runs (the same cache as scripts/test-bins.sh):
#        ${SIDECAR_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sidecar-injector}/bin/vegeta-<version>_<platform>/vegeta
#
# Options:
#   --no-build   never build; exit 3 (below) when vegeta is not cached.
#
# Exit status: 0 success; 3 no way to provide vegeta (no Go toolchain, or
# --no-build and nothing cached); anything else is a failed build.
set -euo pipefail

VEGETA_MODULE=github.com/tsenart/vegeta/v12
VEGETA_VERSION=v12.13.0
NAME=bench-bins
# shellcheck source-path=SCRIPTDIR source=bins-common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bins-common.sh"

# works PATH: PATH is an executable that reports a vegeta version.
works() { [[ -f $1 && -x $1 ]] && "$1" -version >/dev/null 2>&1; }

if [[ -n ${VEGETA:-} ]]; then
  works "$VEGETA" || die "VEGETA=$VEGETA is not a working vegeta executable"
  printf '%s\n' "$VEGETA"
  exit 0
fi

bin_dir="$cache_root/bin/vegeta-${VEGETA_VERSION}_$platform"
bin="$bin_dir/vegeta"

if works "$bin"; then
  printf '%s\n' "$bin"
  exit 0
fi
if $no_build; then
  log "vegeta $VEGETA_VERSION is not cached in $bin_dir and --no-build was given."
  exit "$EXIT_UNAVAILABLE"
fi

go_bin=${GO:-}
if [[ -z $go_bin ]]; then
  go_bin=$(command -v go || true)
  [[ -z $go_bin && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
fi
if [[ -z $go_bin || ! -x $go_bin ]]; then
  log "cannot provide vegeta: no Go toolchain found (set GO, put go on PATH, or set VEGETA)."
  exit "$EXIT_UNAVAILABLE"
fi

# Serialise builds: a second run waits for the first, then reuses its output.
mkdir -p "$cache_root/bin"
exec {lock_fd}>"$cache_root/bin/.vegeta-$VEGETA_VERSION.lock"
if ! flock -n "$lock_fd"; then
  log "another run is building vegeta; waiting for it"
  flock "$lock_fd"
fi
if works "$bin"; then
  printf '%s\n' "$bin"
  exit 0
fi

start=$SECONDS
log "building vegeta $VEGETA_VERSION with $("$go_bin" version)"
mkdir -p "$bin_dir"
tmp="$bin_dir/.vegeta.tmp.$$"
# `go install pkg@version` builds the module as released, with its own go.mod;
# GOBIN cannot be combined with -o, so it installs into a scratch folder.
scratch=$(mktemp -d "$cache_root/bin/.vegeta-build.XXXXXX")
trap 'rm -rf "$scratch" "$tmp"' EXIT
GOBIN="$scratch" CGO_ENABLED=0 GOFLAGS= "$go_bin" install -trimpath -ldflags="-s -w -X main.Version=$VEGETA_VERSION" \
  "$VEGETA_MODULE@$VEGETA_VERSION" >&2 || die "building vegeta $VEGETA_VERSION failed"
mv -f "$scratch/vegeta" "$tmp"
works "$tmp" || die "vegeta was built but does not report its version"
mv -f "$tmp" "$bin"
log "vegeta built in $((SECONDS - start))s: $bin"
printf '%s\n' "$bin"
