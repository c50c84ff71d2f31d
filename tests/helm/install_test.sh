#!/usr/bin/env bash
# Installs charts/braid into a running cluster and checks what it made.
#
# Usage: KUBECONFIG=/path/to/admin.kubeconfig tests/helm/install_test.sh
#
# Meant for the test control plane (tests/k8s/cluster.sh up prints the
# kubeconfig): its kwok nodes "run" pods without pulling images, so the
# operator Deployment becomes Available though the images exist nowhere.
# Checks, in order:
#   - `helm install braid charts/braid -n braid-system --create-namespace`
#     succeeds;
#   - the CRDs federatedjobs.braid.dev and tenants.braid.dev are Established
#     and served (`kubectl get fedjobs -A`, `kubectl get tenants`);
#   - the ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding
#     and metrics Service exist, and the operator Deployment is Available;
#   - the API server authorizes the operator's ServiceAccount for what the
#     chart grants and refuses a sample of what it does not
#     (`kubectl auth can-i --as`);
#   - `helm uninstall` removes the release's objects and leaves the CRDs
#     (Helm's rule for crds/).
# Leaves the cluster as it found it: uninstalls, deletes the namespace, and
# deletes the CRDs if they did not exist before (also on failure).
# Tools: $HELM and $KUBECTL if set, else those scripts/k8s-tools.sh built.
# Exits 0 when all hold, 1 naming the first check that failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "${HERE}/../.." && pwd)
NS=braid-system
RELEASE=braid
SA="system:serviceaccount:${NS}:${RELEASE}"
TIMEOUT=${BRAID_INSTALL_TIMEOUT:-120}s
CRDS=(federatedjobs.braid.dev tenants.braid.dev)

step() { echo "install_test: $*" >&2; }
die() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}

[[ -n "${KUBECONFIG:-}" ]] ||
  die "KUBECONFIG is not set; start a cluster (tests/k8s/cluster.sh up prints its kubeconfig) and export KUBECONFIG"
[[ -f "${KUBECONFIG}" ]] || die "KUBECONFIG=${KUBECONFIG}: no such file"
export KUBECONFIG
BIN=$("${REPO}/scripts/k8s-tools.sh" bindir)
HELM=${HELM:-${BIN}/helm}
KUBECTL=${KUBECTL:-${BIN}/kubectl}
for t in "${HELM}" "${KUBECTL}"; do
  [[ -x "${t}" ]] || die "no ${t}; build the tools with scripts/k8s-tools.sh (or set HELM / KUBECTL)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/braid-install-test.XXXXXX")
export HELM_CACHE_HOME="${WORK}/cache" HELM_CONFIG_HOME="${WORK}/config" HELM_DATA_HOME="${WORK}/data"
kubectl() { "${KUBECTL}" "$@"; }
helm() { "${HELM}" "$@"; }

"${KUBECTL}" version --request-timeout=10s >/dev/null 2>&1 || die "no API server answers at KUBECONFIG=${KUBECONFIG}"

# A namespace or CRD still being deleted (an earlier run, someone's cleanup)
# would refuse the install; wait until it is gone.
for what in "namespace/${NS}" "${CRDS[@]/#/crd/}"; do
  if [[ -n "$(kubectl get "${what}" -o 'jsonpath={.metadata.deletionTimestamp}' 2>/dev/null)" ]]; then
    step "waiting for ${what}, being deleted"
    kubectl wait --for=delete "${what}" --timeout="${TIMEOUT}" >/dev/null 2>&1 ||
      die "${what} is still being deleted after ${TIMEOUT}"
  fi
done

# CRDs that exist before the test are someone else's; keep them afterwards.
crds_before=()
for crd in "${CRDS[@]}"; do
  kubectl get crd "${crd}" >/dev/null 2>&1 && crds_before+=("${crd}")
done
ns_before=""
kubectl get namespace "${NS}" >/dev/null 2>&1 && ns_before=1
if helm status "${RELEASE}" -n "${NS}" >/dev/null 2>&1; then
  die "release ${RELEASE} already exists in ${NS}; this test installs and removes its own (helm uninstall ${RELEASE} -n ${NS})"
fi

operator_pid=""
cleanup() {
  local rc=$? crd
  [[ -z "${operator_pid}" ]] || kill "${operator_pid}" 2>/dev/null || true
  if helm status "${RELEASE}" -n "${NS}" >/dev/null 2>&1; then
    helm uninstall "${RELEASE}" -n "${NS}" --wait --timeout "${TIMEOUT}" >/dev/null 2>&1 || true
  fi
  # Wait for the deletions, so that a next run finds neither a terminating
  # namespace nor a CRD being deleted.
  [[ -n "${ns_before}" ]] ||
    kubectl delete namespace "${NS}" --ignore-not-found --timeout "${TIMEOUT}" >/dev/null 2>&1 || true
  for crd in "${CRDS[@]}"; do
    [[ " ${crds_before[*]-} " == *" ${crd} "* ]] ||
      kubectl delete crd "${crd}" --ignore-not-found --timeout "${TIMEOUT}" >/dev/null 2>&1 || true
  done
  rm -rf "${WORK}"
  exit "${rc}"
}
trap cleanup EXIT

step "helm install ${RELEASE} charts/braid -n ${NS}"
# The images need not exist: kwok nodes never pull them.
helm install "${RELEASE}" "${REPO}/charts/braid" -n "${NS}" --create-namespace \
  --set image.operator.repository=registry.invalid/braid/braid-operator \
  --set image.aggregator.repository=registry.invalid/braid/braid-aggregator \
  --set image.worker.repository=registry.invalid/braid/braid-worker \
  --timeout "${TIMEOUT}" >"${WORK}/install.log" 2>&1 ||
  die "helm install failed: $(cat "${WORK}/install.log")"
grep -q 'kubectl get fedjobs -w' "${WORK}/install.log" || die "helm install printed no NOTES with 'kubectl get fedjobs -w'"

step "CRDs established and served"
for crd in "${CRDS[@]}"; do
  kubectl wait --for=condition=Established "crd/${crd}" --timeout="${TIMEOUT}" >/dev/null ||
    die "CRD ${crd} not Established in ${TIMEOUT}"
done
out=$(kubectl get fedjobs --all-namespaces 2>&1) || die "kubectl get fedjobs (the CRD's short name) failed: ${out}"
out=$(kubectl get tenants 2>&1) || die "kubectl get tenants failed: ${out}"

step "RBAC objects, ServiceAccount and metrics Service exist"
kubectl -n "${NS}" get serviceaccount "${RELEASE}" >/dev/null || die "ServiceAccount ${NS}/${RELEASE} missing"
kubectl get clusterrole "${RELEASE}" >/dev/null || die "ClusterRole ${RELEASE} missing"
kubectl get clusterrolebinding "${RELEASE}" >/dev/null || die "ClusterRoleBinding ${RELEASE} missing"
kubectl -n "${NS}" get role "${RELEASE}" >/dev/null || die "Role ${NS}/${RELEASE} missing"
kubectl -n "${NS}" get rolebinding "${RELEASE}" >/dev/null || die "RoleBinding ${NS}/${RELEASE} missing"
kubectl -n "${NS}" get service "${RELEASE}-metrics" >/dev/null || die "Service ${NS}/${RELEASE}-metrics missing"
subject=$(kubectl get clusterrolebinding "${RELEASE}" \
  -o 'jsonpath={.subjects[0].kind}/{.subjects[0].namespace}/{.subjects[0].name}')
[[ "${subject}" == "ServiceAccount/${NS}/${RELEASE}" ]] ||
  die "ClusterRoleBinding ${RELEASE} binds ${subject}, not ServiceAccount/${NS}/${RELEASE}"

step "operator Deployment Available"
kubectl -n "${NS}" wait --for=condition=Available "deployment/${RELEASE}" --timeout="${TIMEOUT}" >/dev/null || {
  kubectl -n "${NS}" describe deployment "${RELEASE}" >&2 || true
  kubectl -n "${NS}" get pods -o wide >&2 || true
  die "deployment ${NS}/${RELEASE} not Available in ${TIMEOUT}"
}
pod=$(kubectl -n "${NS}" get pods -l app.kubernetes.io/instance="${RELEASE}",app.kubernetes.io/component=operator \
  -o 'jsonpath={range .items[*]}{.status.phase}/{.spec.serviceAccountName}{"\n"}{end}')
[[ "${pod}" == "Running/${RELEASE}" ]] || die "expected one Running operator pod as ServiceAccount ${RELEASE}, got: ${pod}"

step "the operator's ServiceAccount may do what the chart grants, and no more"
# can NAMESPACE VERB RESOURCE [kubectl auth can-i flags]: the API server
# authorizes the operator's account; cannot: it refuses.
can() {
  local ns=$1 verb=$2 res=$3
  shift 3
  [[ "$(kubectl auth can-i --as="${SA}" -n "${ns}" "${verb}" "${res}" "$@" 2>/dev/null)" == yes ]] ||
    die "${SA} may not ${verb} ${res} $* in ${ns}, but the chart grants it"
}
cannot() {
  local ns=$1 verb=$2 res=$3
  shift 3
  [[ "$(kubectl auth can-i --as="${SA}" -n "${ns}" "${verb}" "${res}" "$@" 2>/dev/null || true)" == no ]] ||
    die "${SA} may ${verb} ${res} $* in ${ns}, which the chart does not grant"
}
T=tenant-a  # any namespace: the ClusterRole applies in all of them
for v in get list watch patch; do can "${T}" "${v}" federatedjobs.braid.dev; done
can "${T}" patch federatedjobs.braid.dev --subresource=status
can "${T}" update federatedjobs.braid.dev --subresource=finalizers
for v in get list watch; do can "${T}" "${v}" tenants.braid.dev; done
for v in get list watch create patch delete; do can "${T}" "${v}" deployments.apps; done
for r in services configmaps networkpolicies.networking.k8s.io; do
  for v in get list create patch delete; do can "${T}" "${v}" "${r}"; done
done
for v in create patch; do can "${T}" "${v}" events; done
for v in get list create delete; do can "${T}" "${v}" secrets; done  # the jobs' mTLS material
can "${NS}" create leases.coordination.k8s.io
can "${NS}" get "leases.coordination.k8s.io/${RELEASE}"
can "${NS}" update "leases.coordination.k8s.io/${RELEASE}"
cannot "${T}" create federatedjobs.braid.dev
cannot "${T}" delete federatedjobs.braid.dev
cannot "${T}" delete federatedjobs.braid.dev --subresource=status
cannot "${T}" create tenants.braid.dev
cannot "${T}" update tenants.braid.dev
cannot "${T}" get pods
cannot "${T}" update secrets
cannot "${T}" patch secrets
cannot "${T}" watch secrets
cannot "${T}" update deployments.apps
cannot "${T}" update federatedjobs.braid.dev
cannot "${T}" create pods
cannot "${T}" list nodes
cannot "${T}" create rolebindings.rbac.authorization.k8s.io
cannot "${T}" delete events
cannot "${T}" create leases.coordination.k8s.io
cannot "${NS}" get "leases.coordination.k8s.io/someone-else"
cannot "${NS}" delete "leases.coordination.k8s.io/${RELEASE}"

step "the operator, as the chart's ServiceAccount, reconciles a FederatedJob"
# kwok's pod runs no container, so the real braid-operator runs here with the
# ServiceAccount's token: the job is reconciled only if the chart's RBAC
# (ClusterRole and the Role on its Lease) is enough. BRAID_OPERATOR names the
# binary; the test fails without it (ctest sets it).
[[ -x "${BRAID_OPERATOR:-}" ]] || die "BRAID_OPERATOR=${BRAID_OPERATOR:-} is not the braid-operator binary"
token=$(kubectl -n "${NS}" create token "${RELEASE}" --duration=1h) || die "kubectl create token failed"
server=$(kubectl config view --minify -o 'jsonpath={.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')
cat >"${WORK}/operator.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}", certificate-authority-data: "${ca}"}}]
users: [{name: operator, user: {token: "${token}"}}]
contexts: [{name: c, context: {cluster: c, user: operator, namespace: ${NS}}}]
current-context: c
KUBECONFIG
"${BRAID_OPERATOR}" --kubeconfig="${WORK}/operator.kubeconfig" --namespace="${NS}" \
  --leader-elect --lease-name="${RELEASE}" --metrics-listen=127.0.0.1:0 \
  >"${WORK}/operator.log" 2>&1 &
operator_pid=$!
kubectl apply --server-side -f - >/dev/null <<YAML || die "could not create the test tenant"
apiVersion: v1
kind: Namespace
metadata: {name: helm-tenant}
---
apiVersion: v1
kind: Namespace
metadata: {name: helm-jobs}
---
apiVersion: braid.dev/v1alpha1
kind: Tenant
metadata: {name: helm-tenant}
spec: {namespace: helm-tenant, dataSources: [{claimName: data}]}
---
apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: rbac-check, namespace: helm-jobs}
spec:
  data: {features: [x0]}
  tenants:
  - {name: helm-tenant, data: {persistentVolumeClaim: {claimName: data, subPath: d.csv}}}
YAML
reconciled=""
for _ in $(seq 150); do
  # The Secret with the tenant's mTLS certificate: the operator may create it.
  if kubectl -n helm-tenant get deployment helm-jobs-rbac-check-helm-tenant-0 >/dev/null 2>&1 &&
    kubectl -n helm-tenant get secret helm-jobs-rbac-check-helm-tenant-tls >/dev/null 2>&1 &&
    [[ -n "$(kubectl -n helm-jobs get fedjob rbac-check -o 'jsonpath={.status.phase}')" ]]; then
    reconciled=1
    break
  fi
  sleep 0.2
done
kubectl -n helm-jobs delete fedjob rbac-check --timeout=60s >/dev/null 2>&1 || true
kill "${operator_pid}" 2>/dev/null; wait "${operator_pid}" 2>/dev/null || true
kubectl delete tenant helm-tenant --ignore-not-found >/dev/null 2>&1 || true
kubectl delete namespace helm-tenant helm-jobs --ignore-not-found --timeout=60s >/dev/null 2>&1 || true
if grep -qi forbidden "${WORK}/operator.log" || [[ -z "${reconciled}" ]]; then
  cat "${WORK}/operator.log" >&2
  die "the operator running as ${SA} did not reconcile the job (log above)"
fi

step "helm uninstall removes the release and keeps the CRDs"
helm uninstall "${RELEASE}" -n "${NS}" --wait --timeout "${TIMEOUT}" >/dev/null || die "helm uninstall failed"
for what in "deployment/${RELEASE} -n ${NS}" "serviceaccount/${RELEASE} -n ${NS}" \
  "role/${RELEASE} -n ${NS}" "rolebinding/${RELEASE} -n ${NS}" "service/${RELEASE}-metrics -n ${NS}" \
  "clusterrole/${RELEASE}" "clusterrolebinding/${RELEASE}"; do
  # shellcheck disable=SC2086
  if kubectl get ${what} >/dev/null 2>&1; then die "${what} still exists after helm uninstall"; fi
done
for crd in "${CRDS[@]}"; do
  kubectl get crd "${crd}" >/dev/null 2>&1 || die "CRD ${crd} was removed by helm uninstall (Helm keeps crds/)"
done

step "PASS"
