# Shared by scripts/test-bins.sh and scripts/bench-bins.sh (sourced, not run): their options,
# their messages on stderr, and the cache both build into. The sourcing script sets NAME (its
# name in messages) first; this sets no_build, cache_root and platform, and defines log/die.
# shellcheck shell=bash

EXIT_UNAVAILABLE=3

no_build=false
for arg in "$@"; do
  case $arg in
    --no-build) no_build=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) printf '%s: unknown argument %s\n' "$NAME" "$arg" >&2; exit 2 ;;
  esac
done

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cache_root=${SIDECAR_INJECTOR_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/sidecar-injector}
platform=$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)
