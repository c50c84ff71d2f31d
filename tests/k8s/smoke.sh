#!/usr/bin/env bash
# Smoke test of the test control plane (tests/k8s/cluster.sh), end to end.
#
# Brings a cluster up in a fresh state dir, checks that
#   - the server reports the pinned Kubernetes version,
#   - a Deployment becomes Available with its pods Running on kwok nodes,
#   - deleting a namespace removes it (namespace controller),
#   - deleting an owner garbage-collects its dependent (ownerReferences),
#   - a ServiceAccount token from TokenRequest authenticates, and RBAC denies
#     what that account was not granted,
#   - helm talks to the cluster (`helm version`, `helm install --wait`),
# then brings it down and checks that no process or listening port is left.
# Exits 0 when all hold; otherwise non-zero, naming the check that failed.
# Needs what scripts/k8s-tools.sh needs (builds the tools on first use).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER="${HERE}/cluster.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/braid-k8s-smoke.XXXXXX")
export BRAID_K8S_STATE="${WORK}/state"
export HELM_CONFIG_HOME="${WORK}/helm/config" HELM_CACHE_HOME="${WORK}/helm/cache" \
  HELM_DATA_HOME="${WORK}/helm/data"
TIMEOUT=60s

step() { echo "smoke: $*" >&2; }
die() {
  echo "smoke: FAIL: $*" >&2
  exit 1
}

# procs_of DIR: pids of processes whose command line mentions DIR.
procs_of() {
  local d
  for d in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"${d}/cmdline" | grep -qF -- "$1" && echo "${d#/proc/}"
  done
  return 0
}

cleanup() {
  local rc=$? f
  if [[ ${rc} -ne 0 && -d "${BRAID_K8S_STATE}/logs" ]]; then
    for f in "${BRAID_K8S_STATE}"/logs/*.log; do
      echo "----- last 15 lines of ${f##*/} -----" >&2
      tail -n 15 "${f}" >&2
    done
  fi
  "${CLUSTER}" down || true
  rm -rf "${WORK}"
  exit "${rc}"
}
trap cleanup EXIT

step "cluster up (state ${BRAID_K8S_STATE})"
t0=${SECONDS}
KUBECONFIG=$("${CLUSTER}" up | tail -n 1) || die "cluster.sh up failed"
export KUBECONFIG
step "cluster up in $((SECONDS - t0))s"
eval "$("${CLUSTER}" env)"
# shellcheck disable=SC1091
source "${BRAID_K8S_STATE}/cluster.env"  # SERVER, ports

step "server version"
server=$(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n 1)
[[ "${server}" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "server reports version '${server}'"
step "server ${server}"

step "Deployment becomes Available on kwok nodes"
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: smoke}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.invalid/braid/fake:1
        resources: {requests: {cpu: 100m, memory: 64Mi}}
EOF
kubectl -n smoke wait --for=condition=Available deployment/web --timeout="${TIMEOUT}" >/dev/null \
  || die "deployment smoke/web not Available in ${TIMEOUT}"
pods=$(kubectl -n smoke get pods -l app=web \
  -o 'jsonpath={range .items[*]}{.status.phase}/{.spec.nodeName}{"\n"}{end}')
[[ $(grep -c '^Running/kwok-node-' <<<"${pods}") -eq 3 ]] \
  || die "expected 3 pods Running on kwok nodes, got: ${pods}"

step "namespace deletion completes"
kubectl delete namespace smoke --timeout="${TIMEOUT}" >/dev/null \
  || die "namespace smoke not deleted in ${TIMEOUT}"
if kubectl get namespace smoke >/dev/null 2>&1; then die "namespace smoke still exists"; fi

step "garbage collector deletes a dependent of a deleted owner"
kubectl create configmap gc-owner --from-literal=k=v >/dev/null
uid=$(kubectl get configmap gc-owner -o 'jsonpath={.metadata.uid}')
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: gc-dependent
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: gc-owner, uid: ${uid}}
data: {k: v}
EOF
kubectl delete configmap gc-owner >/dev/null
kubectl wait --for=delete configmap/gc-dependent --timeout="${TIMEOUT}" >/dev/null 2>&1 \
  || die "configmap gc-dependent not garbage-collected in ${TIMEOUT}"

step "ServiceAccount token authenticates; RBAC denies what is not granted"
kubectl create serviceaccount smoke-sa >/dev/null
token=$(kubectl create token smoke-sa --duration=10m) || die "TokenRequest failed"
as_sa=(kubectl --kubeconfig /dev/null --server "${SERVER}"
  --certificate-authority "${BRAID_K8S_STATE}/pki/ca.crt" --token "${token}")
who=$("${as_sa[@]}" auth whoami -o 'jsonpath={.status.userInfo.username}') \
  || die "the ServiceAccount token was not accepted"
[[ "${who}" == system:serviceaccount:default:smoke-sa ]] || die "token authenticated as '${who}'"
if out=$("${as_sa[@]}" get secrets 2>&1); then die "smoke-sa may list secrets: ${out}"; fi
[[ "${out}" == *Forbidden* || "${out}" == *forbidden* ]] || die "unexpected error: ${out}"

step "helm talks to the cluster"
helm version --short | grep -q '^v3\.' || die "helm version: $(helm version 2>&1)"
helm create "${WORK}/chart" >/dev/null
helm install smoke "${WORK}/chart" --namespace helm-smoke --create-namespace \
  --wait --timeout "${TIMEOUT}" >/dev/null || die "helm install --wait failed"
helm uninstall smoke --namespace helm-smoke --wait >/dev/null || die "helm uninstall failed"

step "cluster down leaves nothing behind"
"${CLUSTER}" down
left=$(procs_of "${BRAID_K8S_STATE}")
[[ -z "${left}" ]] || die "processes left after down: ${left}"
for p in "${API_PORT}" "${ETCD_PORT}" "${ETCD_PEER_PORT}"; do
  hex=$(printf ':%04X ' "${p}")
  if awk -v p="${hex}" '$4 == "0A" && index($2, p) {f=1} END {exit !f}' \
    /proc/net/tcp /proc/net/tcp6; then
    die "port ${p} still listening after down"
  fi
done
[[ ! -e "${BRAID_K8S_STATE}" ]] || die "state dir ${BRAID_K8S_STATE} still exists"
step "PASS"
