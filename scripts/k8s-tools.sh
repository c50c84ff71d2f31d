#!/usr/bin/env bash
# Builds the real Kubernetes control-plane tools the k8s tests run, from source
# fetched through the Go module proxy, into a per-version cache outside the repo.
#
# Usage:
#   scripts/k8s-tools.sh          build what is missing (idempotent), then print
#                                 the bin dir as the last line of stdout
#   scripts/k8s-tools.sh bindir   print the bin dir only (builds nothing)
#
# Contract:
#   - Output: ${XDG_CACHE_HOME:-$HOME/.cache}/braid/k8s/<KEY>/bin/ holding
#     kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
#     kwok and helm, and share/kwok-stages.yaml (kwok's "fast" Stage set, for
#     `kwok --config`), where KEY names every pinned version below. Changing a
#     pin (or RECIPE) builds into a new directory; old ones are left for rm -rf.
#   - Needs only Go (>= the highest `go` line of the pinned modules, 1.26 now),
#     network access to the Go module proxy, coreutils, sed, grep and flock.
#     No cgo, no git, nothing from GitHub. Builds are -trimpath with fixed
#     version stamps, so the binaries are bit-for-bit reproducible.
#   - When everything is built, returns at once (a stamp file; no `go` call).
#   - Each tool is built into a scratch dir and moved into bin/ only when it
#     built, with a per-tool stamp, so an interrupted run resumes where it left.
#   - Concurrent callers serialize on a lock file; the second one finds the
#     stamps the first one wrote.
#   - Progress goes to stderr; exits non-zero with the failing step named.
#   - A first build takes long: ~30 min on 2 busy cores with an empty Go build
#     cache (Kubernetes ~20, kwok ~6, etcd and helm ~2.5 each), plus module
#     downloads (~1.5 GB into GOMODCACHE). BRAID_K8S_BUILD_JOBS sets `go build -p`
#     (default 2).
set -euo pipefail

# --- pinned versions -------------------------------------------------------
K8S_VERSION=v1.34.4   # k8s.io/kubernetes; staging modules k8s.io/* at v0.34.4
ETCD_VERSION=v3.5.35  # go.etcd.io/etcd/server/v3 (etcdmain)
KWOK_VERSION=v0.8.0   # sigs.k8s.io/kwok/cmd/kwok
HELM_VERSION=v3.20.2  # helm.sh/helm/v3/cmd/helm
RECIPE=1              # bump when the way of building changes

KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_r${RECIPE}"
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/braid/k8s/${KEY}"
BIN="${ROOT}/bin"
STAMP="${ROOT}/.complete"

if [[ "${1:-}" == bindir ]]; then
  echo "${BIN}"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [bindir]" >&2
  exit 2
fi
# Fast path: everything already built.
if [[ -f "${STAMP}" ]]; then
  echo "${BIN}"
  exit 0
fi

log() { echo "k8s-tools: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go >= 1.26"
mkdir -p "${ROOT}/src" "${BIN}"
exec 9>"${ROOT}/.lock"
flock 9
if [[ -f "${STAMP}" ]]; then  # another caller finished while we waited
  echo "${BIN}"
  exit 0
fi

# Plain module-mode builds: no workspace, no vendor, no toolchain switching,
# static binaries. The proxy (GOPROXY) is whatever the environment says.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
JOBS="${BRAID_K8S_BUILD_JOBS:-2}"
GO_BUILD_FLAGS=(-trimpath -p "${JOBS}")

# mod_info MODULE@VERSION FIELD: a field of `go mod download -json` (downloads).
mod_info() {
  local json
  json=$(cd "${ROOT}/src" && go mod download -json "$1") \
    || die "go mod download $1 failed"
  sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"${json}" | head -1
}

# new_wrapper DIR GO_LINE: an empty throwaway main module in DIR.
new_wrapper() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'module braid.local/k8s-tools/%s\n\n%s\n' "$(basename "$1")" "$2" >"$1/go.mod"
}

# install_from SCRATCH NAMES...: move built binaries into bin/.
install_from() {
  local scratch=$1 name
  shift
  for name in "$@"; do
    [[ -x "${scratch}/${name}" ]] || die "${name} was not produced"
    mv -f "${scratch}/${name}" "${BIN}/${name}"
  done
  rm -rf "${scratch}"
}

timed() {  # timed TOOL FUNCTION: run a build step once, with a stamp
  local tool=$1 fn=$2 start
  if [[ -f "${ROOT}/.built-${tool}" ]]; then
    log "${tool}: cached"
    return
  fi
  start=${SECONDS}
  log "${tool}: building (log lines from go follow, if any)"
  "${fn}"
  echo "$(date -u +%FT%TZ) $((SECONDS - start))s" >"${ROOT}/.built-${tool}"
  log "${tool}: done in $((SECONDS - start))s"
}

build_kubernetes() {
  local dir="${ROOT}/src/kubernetes" gomod date minor staging ldflags=() v
  gomod=$(mod_info "k8s.io/kubernetes@${K8S_VERSION}" GoMod)
  [[ -f "${gomod}" ]] || die "no go.mod for k8s.io/kubernetes@${K8S_VERSION}"
  date=$(mod_info "k8s.io/kubernetes@${K8S_VERSION}" Time)
  new_wrapper "${dir}" "$(grep -E '^(go|godebug) ' "${gomod}")"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with ./staging/src/...; a consumer must replace them with the published
  # k8s.io/* v0.MINOR.PATCH of the same release.
  staging=$(sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*|\1|p' "${gomod}")
  [[ -n "${staging}" ]] || die "found no staging replaces in ${gomod}"
  {
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    for v in ${staging}; do echo "	${v} => ${v} v0.${K8S_VERSION#v1.}"; done
    echo ")"
  } >>"${dir}/go.mod"
  minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  for v in client-go/pkg/version component-base/version; do
    ldflags+=("-X k8s.io/${v}.gitVersion=${K8S_VERSION}"
      "-X k8s.io/${v}.gitMajor=1" "-X k8s.io/${v}.gitMinor=${minor}"
      "-X k8s.io/${v}.gitTreeState=clean" "-X k8s.io/${v}.buildDate=${date}")
  done
  (cd "${dir}" && go build "${GO_BUILD_FLAGS[@]}" -ldflags "-s -w ${ldflags[*]}" \
    -o "${dir}/out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl) || die "go build of Kubernetes failed"
  install_from "${dir}/out" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  # The etcd main module (go.etcd.io/etcd/v3) has replace directives, so
  # `go install` refuses it; its main.go is one call, repeated here.
  local dir="${ROOT}/src/etcd" gomod
  gomod=$(mod_info "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" GoMod)
  new_wrapper "${dir}" "$(grep -E '^go ' "${gomod}")"
  echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" >>"${dir}/go.mod"
  cat >"${dir}/main.go" <<'EOF'
// Command etcd is etcd's own main, built from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "${dir}" && go build "${GO_BUILD_FLAGS[@]}" -ldflags "-s -w" -o "${dir}/out/etcd" .) \
    || die "go build of etcd failed"
  install_from "${dir}/out" etcd
}

build_kwok() {
  local dir="${ROOT}/src/kwok" gomod
  gomod=$(mod_info "sigs.k8s.io/kwok@${KWOK_VERSION}" GoMod)
  new_wrapper "${dir}" "$(grep -E '^go ' "${gomod}")"
  echo "require sigs.k8s.io/kwok ${KWOK_VERSION}" >>"${dir}/go.mod"
  (cd "${dir}" && go build "${GO_BUILD_FLAGS[@]}" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    -o "${dir}/out/kwok" sigs.k8s.io/kwok/cmd/kwok) || die "go build of kwok failed"
  install_from "${dir}/out" kwok
}

build_helm() {
  local dir="${ROOT}/src/helm" gomod cg major minor ldflags p
  gomod=$(mod_info "helm.sh/helm/v3@${HELM_VERSION}" GoMod)
  new_wrapper "${dir}" "$(grep -E '^go ' "${gomod}")"
  echo "require helm.sh/helm/v3 ${HELM_VERSION}" >>"${dir}/go.mod"
  # helm's Makefile derives the default .Capabilities.KubeVersion from the
  # client-go it links (v0.35.x -> 1.35); do the same.
  cg=$(sed -n 's|^[[:space:]]*k8s\.io/client-go \(v[0-9.]*\).*|\1|p' "${gomod}" | head -1)
  [[ -n "${cg}" ]] || die "no k8s.io/client-go in ${gomod}"
  cg=${cg#v}
  major=$((${cg%%.*} + 1))
  minor=${cg#*.}
  minor=${minor%%.*}
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/${p}.k8sVersionMajor=${major}"
    ldflags+=" -X helm.sh/helm/v3/${p}.k8sVersionMinor=${minor}"
  done
  (cd "${dir}" && go build "${GO_BUILD_FLAGS[@]}" -ldflags "${ldflags}" \
    -o "${dir}/out/helm" helm.sh/helm/v3/cmd/helm) || die "go build of helm failed"
  install_from "${dir}/out" helm
}

# kwok needs Stage objects telling it how fake nodes and pods progress; take
# the "fast" set (nodes Ready at once with lease heartbeats, pods Running at
# once, deleted pods removed) from the same kwok module, as one config file.
install_kwok_stages() {
  local dir f out="${ROOT}/share/kwok-stages.yaml"
  dir=$(mod_info "sigs.k8s.io/kwok@${KWOK_VERSION}" Dir)/kustomize/stage
  mkdir -p "${ROOT}/share"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    [[ -f "${dir}/${f}.yaml" ]] || die "kwok stage ${f} not in ${dir}"
    echo "---"
    cat "${dir}/${f}.yaml"
  done >"${out}.tmp"
  mv -f "${out}.tmp" "${out}"
}

log "building into ${ROOT} with $(go env GOVERSION)"
total=${SECONDS}
timed kubernetes build_kubernetes
timed etcd build_etcd
timed kwok build_kwok
timed helm build_helm
timed kwok-stages install_kwok_stages

for t in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm; do
  [[ -x "${BIN}/${t}" ]] || die "${BIN}/${t} missing after build"
done
"${BIN}/kubectl" version --client >/dev/null || die "kubectl does not run"
echo "${KEY}" >"${STAMP}"
log "all tools ready in $((SECONDS - total))s ($(du -sh "${BIN}" | cut -f1) in bin/)"
echo "${BIN}"
