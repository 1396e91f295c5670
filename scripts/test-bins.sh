#!/usr/bin/env bash
# Provides the binaries the end-to-end suite runs: kube-apiserver, etcd, helm.
#
# Prints, as the last line of stdout, a directory holding all three executables.
# Progress and errors go to stderr.
#
# Sources, in order:
#   1. KUBEBUILDER_ASSETS (the envtest convention), when it names a folder that
#      already holds working kube-apiserver and etcd binaries. helm is taken
#      from that folder, else from PATH, else built (see 2).
#   2. Otherwise the binaries are built once with Go from Go modules into a
#      cache outside the repository and reused by later runs:
#        ${SIDECAR_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sidecar-injector}/bin/<versions-key>/
#
# Versions are pinned in scripts/test-bins.versions.
#
# Options:
#   --no-build   never build; exit 3 (below) when the binaries are not cached.
#
# Exit status: 0 success; 3 no way to provide the binaries (neither a usable
# KUBEBUILDER_ASSETS nor a Go toolchain); anything else is a failed build.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=test-bins.versions
. "$script_dir/test-bins.versions"
: "${KUBERNETES_VERSION:?missing in test-bins.versions}"
: "${ETCD_VERSION:?missing in test-bins.versions}"
: "${HELM_VERSION:?missing in test-bins.versions}"

NAME=test-bins
# shellcheck source-path=SCRIPTDIR source=bins-common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bins-common.sh"

versions_key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_${platform}"
bin_dir="$cache_root/bin/$versions_key"
work_root="$cache_root/work"

# runs NAME PATH: PATH is an executable file that reports its version the way
# NAME does.
runs() {
  local name=$1 path=$2
  [[ -f $path && -x $path ]] || return 1
  case $name in
    helm) "$path" version --short >/dev/null 2>&1 ;;
    *) "$path" --version >/dev/null 2>&1 ;;
  esac
}

# bin_ok NAME DIR: DIR/NAME works.
bin_ok() { runs "$1" "$2/$1"; }

# Locate a Go toolchain: GO, then PATH, then the standard install location.
find_go() {
  if [[ -n ${GO:-} ]]; then
    [[ -x $GO ]] && { printf '%s\n' "$GO"; return 0; }
    return 1
  fi
  if command -v go >/dev/null 2>&1; then
    command -v go
    return 0
  fi
  if [[ -x /usr/local/go/bin/go ]]; then
    printf '%s\n' /usr/local/go/bin/go
    return 0
  fi
  return 1
}

go_bin=""
require_go() {
  if [[ -z $go_bin ]]; then
    if $no_build; then
      log "binaries for $versions_key are not cached in $bin_dir and --no-build was given."
      log "Run scripts/test-bins.sh once to build them, or set KUBEBUILDER_ASSETS."
      exit "$EXIT_UNAVAILABLE"
    fi
    if ! go_bin=$(find_go); then
      log "cannot provide kube-apiserver/etcd/helm: KUBEBUILDER_ASSETS is not set to a folder"
      log "holding kube-apiserver and etcd, and no Go toolchain was found to build them."
      log "Set KUBEBUILDER_ASSETS (e.g. from 'setup-envtest use -p path') or install Go."
      exit "$EXIT_UNAVAILABLE"
    fi
    # -mod=mod lets the scratch modules record requirements as they resolve.
    export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
    export CGO_ENABLED=0
    log "using $("$go_bin" version)"
  fi
}

# Serialise builds: a second concurrent run waits for the first, then reuses
# its output instead of building again.
lock_fd=""
take_lock() {
  [[ -n $lock_fd ]] && return 0
  mkdir -p "$cache_root/bin"
  exec {lock_fd}>"$cache_root/bin/.$versions_key.lock"
  if ! flock -n "$lock_fd"; then
    log "another run is building the binaries; waiting for it"
    flock "$lock_fd"
  fi
}

# go.mod path of MODULE@VERSION in the module cache (downloads it if needed).
dep_gomod() {
  local out
  out=$("$go_bin" mod download -json "$1@$2") || die "cannot download $1@$2"
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$out"
}

# new_scratch NAME MODULE VERSION: echo a fresh work dir holding a module that
# requires MODULE@VERSION. The dependency's godebug settings are copied so the
# binary runs with the same runtime defaults as an upstream build.
new_scratch() {
  local name=$1 mod=$2 ver=$3 work gomod line
  work="$work_root/$name-$ver"
  rm -rf "$work"
  mkdir -p "$work"
  gomod=$(dep_gomod "$mod" "$ver")
  (
    cd "$work"
    "$go_bin" mod init scratch >/dev/null 2>&1
    "$go_bin" mod edit -require="$mod@$ver"
    while IFS= read -r line; do
      "$go_bin" mod edit -godebug="$line"
    done < <(awk '$1 == "godebug" && $2 != "(" { print $2 }' "$gomod")
  )
  printf '%s\n' "$work"
}

# install_bin WORK PKG NAME LDFLAGS: build PKG in WORK to $bin_dir/NAME,
# through a temporary name so a half-written binary is never picked up.
install_bin() {
  local work=$1 pkg=$2 name=$3 ldflags=$4 tmp
  tmp="$bin_dir/.$name.tmp.$$"
  mkdir -p "$bin_dir"
  (
    cd "$work"
    "$go_bin" build -trimpath -ldflags="-s -w $ldflags" -o "$tmp" "$pkg"
  ) || { rm -f "$tmp"; die "building $name failed (work dir: $work)"; }
  runs "$name" "$tmp" || { rm -f "$tmp"; die "$name was built but does not report its version"; }
  mv -f "$tmp" "$bin_dir/$name"
}

build_kube_apiserver() {
  local work gomod staging minor major m ldflags start=$SECONDS
  log "building kube-apiserver $KUBERNETES_VERSION (takes a while the first time)"
  work=$(new_scratch kube-apiserver k8s.io/kubernetes "$KUBERNETES_VERSION")
  gomod=$(dep_gomod k8s.io/kubernetes "$KUBERNETES_VERSION")
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and points them
  # at ./staging with replace directives, which do not apply to dependents.
  # Release vX.Y.Z pairs with staging tag v0.Y.Z.
  staging=$(awk '
    $1 == "require" && $2 != "(" { $1 = ""; sub(/^ /, "") }
    $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }
  ' "$gomod" | sort -u)
  [[ -n $staging ]] || die "found no k8s.io/* v0.0.0 requirements in $gomod"
  major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  (
    cd "$work"
    for m in $staging; do
      "$go_bin" mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v*.}"
    done
    "$go_bin" get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" >&2
  ) || die "resolving k8s.io/kubernetes $KUBERNETES_VERSION failed (work dir: $work)"
  # The same version stamps the upstream build (hack/lib/version.sh) sets, so
  # /version reports the real release (helm's kubeVersion checks read it).
  ldflags=""
  for m in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $m.gitVersion=$KUBERNETES_VERSION -X $m.gitMajor=$major -X $m.gitMinor=$minor -X $m.gitTreeState=clean"
  done
  install_bin "$work" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$ldflags"
  log "kube-apiserver built in $((SECONDS - start))s"
}

build_etcd() {
  local work start=$SECONDS
  log "building etcd $ETCD_VERSION"
  work=$(new_scratch etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  (cd "$work" && "$go_bin" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2) ||
    die "resolving etcd $ETCD_VERSION failed (work dir: $work)"
  install_bin "$work" go.etcd.io/etcd/server/v3 etcd ""
  log "etcd built in $((SECONDS - start))s"
}

build_helm() {
  local work gomod k8s_ver k8s_minor ldflags start=$SECONDS
  log "building helm $HELM_VERSION"
  work=$(new_scratch helm helm.sh/helm/v3 "$HELM_VERSION")
  (cd "$work" && "$go_bin" get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2) ||
    die "resolving helm $HELM_VERSION failed (work dir: $work)"
  # Same stamps as helm's Makefile: its version, and the Kubernetes version
  # `helm template` assumes, taken from its client-go requirement.
  gomod=$(dep_gomod helm.sh/helm/v3 "$HELM_VERSION")
  k8s_ver=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
  k8s_minor=${k8s_ver#v0.}; k8s_minor=${k8s_minor%%.*}
  ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  if [[ -n $k8s_minor ]]; then
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  fi
  install_bin "$work" helm.sh/helm/v3/cmd/helm helm "$ldflags"
  log "helm built in $((SECONDS - start))s"
}

# ensure NAME: the cached NAME works, building it if not.
ensure() {
  local name=$1
  bin_ok "$name" "$bin_dir" && return 0
  require_go
  take_lock
  # Another run may have finished the build while we waited for the lock.
  bin_ok "$name" "$bin_dir" && return 0
  case $name in
    kube-apiserver) build_kube_apiserver ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
  esac
}

# --- 1. KUBEBUILDER_ASSETS -------------------------------------------------
if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
  if bin_ok kube-apiserver "$KUBEBUILDER_ASSETS" && bin_ok etcd "$KUBEBUILDER_ASSETS"; then
    assets=$(cd "$KUBEBUILDER_ASSETS" && pwd -P)
    if bin_ok helm "$assets"; then
      log "using KUBEBUILDER_ASSETS=$assets"
      printf '%s\n' "$assets"
      exit 0
    fi
    helm_path=""
    if command -v helm >/dev/null 2>&1 && bin_ok helm "$(dirname "$(command -v helm)")"; then
      helm_path=$(command -v helm)
      log "using KUBEBUILDER_ASSETS=$assets and helm from PATH ($helm_path)"
    else
      log "using KUBEBUILDER_ASSETS=$assets; helm is not there nor on PATH, building it"
      ensure helm
      helm_path="$bin_dir/helm"
    fi
    # One folder holding all three, as links into their real locations.
    link_dir="$cache_root/assets/$(printf '%s\n%s' "$assets" "$helm_path" | sha256sum | cut -c1-16)"
    mkdir -p "$link_dir"
    ln -sfn "$assets/kube-apiserver" "$link_dir/kube-apiserver"
    ln -sfn "$assets/etcd" "$link_dir/etcd"
    ln -sfn "$helm_path" "$link_dir/helm"
    printf '%s\n' "$link_dir"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold working kube-apiserver and etcd; ignoring it"
fi

# --- 2. Built from Go modules, cached --------------------------------------
start=$SECONDS
for name in etcd helm kube-apiserver; do
  ensure "$name"
done
if ((SECONDS - start > 5)); then
  log "binaries ready in $((SECONDS - start))s: $bin_dir"
fi
printf '%s\n' "$bin_dir"
