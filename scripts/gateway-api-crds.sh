#!/usr/bin/env bash
# The Gateway API's TLSRoute CRD (standard channel), which the coordinator's
# per-job aggregator routes are (docs/multi-site.md), from the module
# sigs.k8s.io/gateway-api through the Go module proxy, into a cache outside
# the repo. The multi-site tests install it in the coordinator's control plane.
#
# Usage:
#   scripts/gateway-api-crds.sh        fetch when missing (idempotent), then
#                                      print the CRD file's path
#   scripts/gateway-api-crds.sh path   print that path only (fetches nothing)
set -euo pipefail

GATEWAY_API_VERSION=v1.6.3
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/braid/gateway-api/${GATEWAY_API_VERSION}"
CRD="${DIR}/gateway.networking.k8s.io_tlsroutes.yaml"

if [[ "${1:-}" == path ]]; then
  echo "${CRD}"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [path]" >&2
  exit 2
fi
if [[ -f "${CRD}" ]]; then
  echo "${CRD}"
  exit 0
fi
command -v go >/dev/null || { echo "gateway-api-crds: go is not on PATH" >&2; exit 1; }
mkdir -p "${DIR}"
module_dir=$(cd "${DIR}" && GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod \
  go mod download -json "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
src="${module_dir}/config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml"
[[ -f "${src}" ]] || { echo "gateway-api-crds: no TLSRoute CRD at ${src}" >&2; exit 1; }
cp "${src}" "${CRD}.tmp"
mv "${CRD}.tmp" "${CRD}"
echo "${CRD}"
