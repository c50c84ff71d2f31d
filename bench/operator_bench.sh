#!/usr/bin/env bash
# Operator benchmark: N FederatedJobs with 3 tenants each applied at once to
# a fresh test control plane; prints one Markdown table row:
#   | jobs | objects | seconds until every desired object exists | reconciles | operator peak RSS MiB |
# "Every desired object" = per job 4 Deployments, 4 ConfigMaps, 4
# NetworkPolicies and 1 Service (13), counted with kubectl across namespaces.
# The clock starts before `kubectl apply` of the N jobs (one request each,
# as a user would send them) and stops when the last object exists.
#   usage: bench/operator_bench.sh [BUILD_DIR] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${2:-100}
work=$(mktemp -d)
export BRAID_K8S_STATE="${work}/cluster"
bin=$(bash scripts/k8s-tools.sh)
kubeconfig=$(bash tests/k8s/cluster.sh up | tail -1)
operator_pid=""
cleanup() {
  [[ -n "${operator_pid}" ]] && kill "${operator_pid}" 2>/dev/null && wait "${operator_pid}" 2>/dev/null
  bash tests/k8s/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap cleanup EXIT
k() { "${bin}/kubectl" --kubeconfig "${kubeconfig}" "$@"; }

k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established crd/federatedjobs.braid.dev crd/tenants.braid.dev >/dev/null
{
  echo "apiVersion: v1"; echo "kind: Namespace"; echo "metadata: {name: bench-jobs}"
  for t in a b c; do
    cat <<YAML
---
apiVersion: v1
kind: Namespace
metadata: {name: bench-$t}
---
apiVersion: braid.dev/v1alpha1
kind: Tenant
metadata: {name: bench-$t}
spec: {namespace: bench-$t, dataSources: [{claimName: data}]}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: bench-$t-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  hostPath: {path: /tmp/bench-$t}
  claimRef: {namespace: bench-$t, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: bench-$t}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: bench-$t-data
  resources: {requests: {storage: 1Gi}}
YAML
  done
} | k apply --server-side -f - >/dev/null

"${build}/bin/braid-operator" --kubeconfig="${kubeconfig}" --namespace=braid-system \
  --metrics-listen=127.0.0.1:0 --metrics-port-file="${work}/metrics.port" --workers="${WORKERS:-2}" \
  --aggregator-address-template=127.0.0.1:1 >"${work}/operator.log" 2>&1 &
operator_pid=$!
for _ in $(seq 100); do [[ -s "${work}/metrics.port" ]] && break; sleep 0.1; done

for i in $(seq -f "%03g" 1 "${jobs}"); do
  cat <<YAML
---
apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: job-$i, namespace: bench-jobs}
spec:
  data: {features: [x0, x1]}
  tenants:
  - {name: bench-a, data: {persistentVolumeClaim: {claimName: data, subPath: a.csv}}}
  - {name: bench-b, data: {persistentVolumeClaim: {claimName: data, subPath: b.csv}}}
  - {name: bench-c, data: {persistentVolumeClaim: {claimName: data, subPath: c.csv}}}
YAML
done >"${work}/jobs.yaml"

want=$((jobs * 13))
start=$(date +%s.%N)
k apply --server-side -f "${work}/jobs.yaml" >/dev/null
count() {
  local n=0 kind
  for kind in deployments configmaps networkpolicies services; do
    n=$((n + $(k get "${kind}" -A -l app.kubernetes.io/managed-by=braid-operator \
                 --no-headers 2>/dev/null | wc -l)))
  done
  echo "${n}"
}
have=0
for _ in $(seq 1200); do
  have=$(count)
  ((have >= want)) && break
  sleep 0.5
done
end=$(date +%s.%N)
((have >= want)) || { echo "only ${have} of ${want} objects after 10 minutes" >&2; tail -20 "${work}/operator.log" >&2; exit 1; }
port=$(cat "${work}/metrics.port")
reconciles=$(curl -sf "http://127.0.0.1:${port}/metrics" |
  awk '/^braid_operator_reconciles_total\{result="ok"\}/ {print $2}')
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/${operator_pid}/status")
awk -v j="${jobs}" -v h="${have}" -v s="${start}" -v e="${end}" -v r="${reconciles:-?}" \
  -v m="${rss_kib}" 'BEGIN { printf "| %d | %d | %.1f | %s | %.1f |\n", j, h, e - s, r, m / 1024 }'
