#!/usr/bin/env bash
# A real, throwaway Kubernetes control plane on loopback, for tests.
#
# Usage:
#   tests/k8s/cluster.sh up   [--name NAME]  start it (building the tools first if
#                                            needed); last stdout line: the admin
#                                            kubeconfig path
#   tests/k8s/cluster.sh down [--name NAME]  stop everything it started, remove
#                                            the state dir
#   tests/k8s/cluster.sh env  [--name NAME]  print `export KUBECONFIG=...; export PATH=...`
#
# State dir: $BRAID_K8S_STATE, default ${TMPDIR:-/tmp}/braid-k8s-$USER. Clusters
# with different state dirs coexist (every port is picked free at `up`).
# --name NAME (a DNS-1123 label of at most 32 characters, e.g. coordinator,
# site-a) makes a named cluster with its own state dir, that dir plus
# "-NAME", so several run at once (multi-site: a coordinator and two sites
# on loopback). Without --name, or with --name default, the state dir is
# the one above, exactly as before.
#
# What `up` starts, each with its pid in <state>/pids/ and its log in
# <state>/logs/<name>.log:
#   etcd                     data in <state>/etcd, client+peer on 127.0.0.1
#   kube-apiserver           https://127.0.0.1:<port>; client-cert and
#                            ServiceAccount-token authn (TokenRequest works),
#                            no anonymous access, authz Node,RBAC, default
#                            admission plugins
#   kube-controller-manager  all default controllers (garbage collector,
#                            namespace, deployment, serviceaccount, ...), each
#                            with its own ServiceAccount credentials
#   kube-scheduler
#   kwok                     drives the fake Nodes kwok-node-0 and kwok-node-1
#                            (1000 pods, 64 cpu, 256Gi each; no taints) and
#                            every pod bound to them: pods go Running at once
# `up` returns when /readyz is ok, both nodes are Ready and the `default`
# ServiceAccount exists in namespace `default`; on failure it names the
# component, prints the tail of its log and exits non-zero (nothing is left
# running). `up` on a healthy cluster only prints the kubeconfig again.
#
# Files a test may use:
#   <state>/admin.kubeconfig   cluster-admin (O=system:masters), certs embedded
#   <state>/pki/ca.crt         cluster CA (serving certs and client certs)
#   <state>/pki/admin.{crt,key}
#   <state>/cluster.env        SERVER=, ETCD=, ports, as shell assignments
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "${HERE}/../.." && pwd)

usage() {
  echo "usage: $0 up|down|env [--name NAME]   (state dir: \$BRAID_K8S_STATE[-NAME], now ${STATE})" >&2
  exit 2
}

# Arguments: one command and an optional --name NAME (or --name=NAME), in any order.
COMMAND="" NAME=""
STATE=${BRAID_K8S_STATE:-${TMPDIR:-/tmp}/braid-k8s-${USER:-$(id -un)}}
while (($#)); do
  case "$1" in
    --name) (($# >= 2)) || usage; NAME=$2; shift 2 ;;
    --name=*) NAME=${1#--name=}; shift ;;
    up | down | env) [[ -z "${COMMAND}" ]] || usage; COMMAND=$1; shift ;;
    *) usage ;;
  esac
done
if [[ -n "${NAME}" && "${NAME}" != default ]]; then
  if ! [[ "${NAME}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && ${#NAME} -le 32 ]]; then
    echo "cluster: --name must be a DNS-1123 label of at most 32 characters (e.g. site-a), got '${NAME}'" >&2
    exit 2
  fi
  STATE="${STATE}-${NAME}"
fi
TOOLS="${REPO}/scripts/k8s-tools.sh"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
NODES=(kwok-node-0 kwok-node-1)
TIMEOUT=${BRAID_K8S_TIMEOUT:-60}  # seconds allowed for each wait in `up`
SERVICE_CIDR=10.96.0.0/16

log() { echo "cluster: $*" >&2; }

# --- process bookkeeping ----------------------------------------------------

pidfile() { echo "${STATE}/pids/$1.pid"; }

# ours NAME: the pid in NAME's pid file, if that process is alive and is ours
# (its command line names a file in the state dir; guards against recycled
# pids, and against a named cluster's processes, whose state dir starts
# with this one's name).
ours() {
  local f pid
  f=$(pidfile "$1")
  [[ -f "${f}" ]] || return 1
  pid=$(<"${f}")
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/${pid}/cmdline" | grep -qF -- "${STATE}/" || return 1
  echo "${pid}"
}

# started_and_alive NAME: the process this run started for NAME still
# runs. (Not `ours`: right after `start`, before the background shell has
# exec'd the binary, its command line does not name the state dir yet; under
# load that window is long enough to call a healthy start a crash.)
started_and_alive() {
  local pid
  pid=$(<"$(pidfile "$1")") || return 1
  [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null &&
    ! grep -q '^State:[[:space:]]*Z' "/proc/${pid}/status" 2>/dev/null  # not a zombie
}

# start NAME ARGS...: run the binary NAME from the tools dir in the
# background, detached from our stdin/stdout (so `$(cluster.sh up)` returns).
start() {
  local name=$1
  shift
  nohup "${BIN}/${name}" "$@" </dev/null >"${STATE}/logs/${name}.log" 2>&1 &
  echo $! >"$(pidfile "${name}")"
}

stop_all() {
  local name pid pids=() i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do  # reverse start order
    name=${COMPONENTS[i]}
    if pid=$(ours "${name}"); then
      kill -TERM "${pid}" 2>/dev/null || true
      pids+=("${pid}")
    fi
  done
  for i in $(seq 100); do  # up to 10 s for a clean exit
    local alive=()
    for pid in "${pids[@]+"${pids[@]}"}"; do
      kill -0 "${pid}" 2>/dev/null && alive+=("${pid}")
    done
    pids=("${alive[@]+"${alive[@]}"}")
    [[ ${#pids[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
  log "killing ${pids[*]} (did not exit on SIGTERM)"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    while kill -0 "${pid}" 2>/dev/null; do sleep 0.05; done
  done
}

down() {
  [[ -d "${STATE}" ]] || return 0
  stop_all
  rm -rf "${STATE}"
}

# fail COMPONENT MESSAGE: report, show the component's log tail, tear down.
fail() {
  local name=$1 msg=$2 logf="${STATE}/logs/$1.log"
  log "ERROR: ${msg}; log: ${logf}"
  if [[ -f "${logf}" ]]; then
    echo "----- last 30 lines of ${logf} -----" >&2
    tail -n 30 "${logf}" >&2
    echo "-----" >&2
  fi
  # Keep the logs for a post-mortem, next to where the state was.
  if [[ -d "${STATE}/logs" ]]; then
    rm -rf "${STATE}.failed-logs"
    cp -r "${STATE}/logs" "${STATE}.failed-logs"
    log "logs kept in ${STATE}.failed-logs"
  fi
  down
  exit 1
}

# wait_for NAME WHAT CMD...: poll CMD until it succeeds; fail naming NAME if it
# has not within TIMEOUT seconds or if any started component died meanwhile.
wait_for() {
  local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT)) c
  shift 2
  until "$@" >/dev/null 2>&1; do
    for c in "${COMPONENTS[@]}"; do
      if [[ -f "$(pidfile "${c}")" ]] && ! started_and_alive "${c}"; then
        fail "${c}" "${c} exited while waiting for ${what}"
      fi
    done
    ((SECONDS < deadline)) || fail "${name}" "${what} not reached in ${TIMEOUT}s"
    sleep 0.2
  done
}

# --- ports ------------------------------------------------------------------

# port_in_use PORT: some socket (listening or connected, v4 or v6) uses PORT.
port_in_use() {
  local hex
  hex=$(printf ':%04X ' "$1")
  awk -v p="${hex}" 'index($2, p) {found=1} END {exit !found}' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port VAR: set VAR to an unused port that this run has not handed out
# yet, from 20000 up to the kernel's ephemeral range (so that no outgoing
# connection takes it between now and the bind).
TAKEN=" "
free_port() {
  local p i lo=32768 span
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  span=$((lo - 20000))
  ((span >= 1000)) || span=30000  # odd ephemeral range: take 20000-49999
  for i in $(seq 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % span))
    [[ "${TAKEN}" == *" ${p} "* ]] && continue
    port_in_use "${p}" && continue
    TAKEN+="${p} "
    printf -v "$1" '%s' "${p}"
    return 0
  done
  log "ERROR: found no free port"
  exit 1
}

# --- certificates and kubeconfigs --------------------------------------------

# cert NAME SUBJECT EXTENSIONS: NAME.key (EC P-256) and NAME.crt signed by the CA.
cert() {
  local name=$1 subj=$2 ext=$3 pki="${STATE}/pki"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "${pki}/${name}.key" -subj "${subj}" -out "${pki}/${name}.csr" 2>/dev/null
  printf '%s\n' "${ext}" >"${pki}/${name}.ext"
  openssl x509 -req -in "${pki}/${name}.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "${pki}/${name}.ext" \
    -out "${pki}/${name}.crt" 2>/dev/null
  rm -f "${pki}/${name}.csr" "${pki}/${name}.ext"
}

make_pki() {
  local pki="${STATE}/pki" client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  mkdir -p "${pki}"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "${pki}/ca.key" -out "${pki}/ca.crt" -days 30 -sha256 \
    -subj "/CN=braid-test-ca" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  cert admin "/O=system:masters/CN=braid-admin" "${client}"
  cert controller-manager "/CN=system:kube-controller-manager" "${client}"
  cert scheduler "/CN=system:kube-scheduler" "${client}"
  # The apiserver's own client cert for its kubelet client (unused by kwok
  # nodes, but keeps the flag set complete).
  cert apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" "${client}"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
    -out "${pki}/sa.key" 2>/dev/null
  openssl pkey -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null
  chmod 600 "${pki}"/*.key
}

# kubeconfig NAME CERT: a kubeconfig with the CA and client cert embedded.
kubeconfig() {
  local pki="${STATE}/pki"
  cat >"${STATE}/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: braid-test
  cluster:
    server: ${SERVER}
    certificate-authority-data: $(base64 -w0 "${pki}/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "${pki}/$2.crt")
    client-key-data: $(base64 -w0 "${pki}/$2.key")
contexts:
- name: braid-test
  context: {cluster: braid-test, user: $2, namespace: default}
current-context: braid-test
EOF
  chmod 600 "${STATE}/$1.kubeconfig"
}

# --- up ---------------------------------------------------------------------

healthy() {
  local c
  [[ -f "${STATE}/admin.kubeconfig" ]] || return 1
  for c in "${COMPONENTS[@]}"; do ours "${c}" >/dev/null || return 1; done
  # shellcheck disable=SC1091
  (source "${STATE}/cluster.env" && readyz)
}

readyz() {
  local pki="${STATE}/pki"
  [[ "$(curl -sS --max-time 2 --cacert "${pki}/ca.crt" --cert "${pki}/admin.crt" \
    --key "${pki}/admin.key" "${SERVER}/readyz")" == ok ]]
}

etcd_health() {
  curl -sS --max-time 2 "${ETCD}/health" | grep -q '"health":"true"'
}

nodes_ready() {
  local n
  for n in "${NODES[@]}"; do
    [[ "$("${BIN}/kubectl" --kubeconfig "${STATE}/admin.kubeconfig" get node "${n}" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]] || return 1
  done
}

nodes_yaml() {
  local n
  for n in "${NODES[@]}"; do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: ${n}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: ${n}
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000", ephemeral-storage: 1Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000", ephemeral-storage: 1Ti}
  nodeInfo:
    architecture: amd64
    kubeletVersion: fake
    kubeProxyVersion: fake
    operatingSystem: linux
EOF
  done
}

up() {
  local start=${SECONDS}
  BIN=$("${TOOLS}" | tail -n 1)
  [[ -x "${BIN}/kube-apiserver" ]] || { log "ERROR: tools missing in ${BIN}"; exit 1; }
  if [[ -f "${STATE}/cluster.env" ]] && healthy; then
    log "already up (${STATE})"
    echo "${STATE}/admin.kubeconfig"
    return 0
  fi
  if [[ -e "${STATE}" ]]; then
    log "removing stale state ${STATE}"
    down
  fi
  mkdir -p "${STATE}/pids" "${STATE}/logs" "${STATE}/etcd"
  chmod 700 "${STATE}" "${STATE}/etcd"

  local etcd_port peer_port api_port
  free_port etcd_port
  free_port peer_port
  free_port api_port
  ETCD="http://127.0.0.1:${etcd_port}"
  SERVER="https://127.0.0.1:${api_port}"
  cat >"${STATE}/cluster.env" <<EOF
SERVER=${SERVER}
ETCD=${ETCD}
API_PORT=${api_port}
ETCD_PORT=${etcd_port}
ETCD_PEER_PORT=${peer_port}
BIN=${BIN}
EOF
  make_pki
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  local pki="${STATE}/pki"

  log "starting etcd on ${ETCD}"
  start etcd --name braid --data-dir "${STATE}/etcd" \
    --listen-client-urls "${ETCD}" --advertise-client-urls "${ETCD}" \
    --listen-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_port}" \
    --initial-cluster "braid=http://127.0.0.1:${peer_port}" \
    --unsafe-no-fsync --log-level warn
  wait_for etcd "etcd health" etcd_health

  log "starting kube-apiserver on ${SERVER}"
  start kube-apiserver \
    --etcd-servers "${ETCD}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${api_port}" \
    --tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
    --client-ca-file "${pki}/ca.crt" \
    --kubelet-client-certificate "${pki}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${pki}/apiserver-kubelet-client.key" \
    --anonymous-auth=false \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${pki}/sa.pub" \
    --service-account-signing-key-file "${pki}/sa.key" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --endpoint-reconciler-type none \
    --allow-privileged=true \
    --enable-admission-plugins NodeRestriction \
    --profiling=false \
    --v 1
  wait_for kube-apiserver "kube-apiserver /readyz" readyz

  log "creating nodes ${NODES[*]}"
  nodes_yaml | "${BIN}/kubectl" --kubeconfig "${STATE}/admin.kubeconfig" apply -f - \
    >"${STATE}/logs/nodes.log" 2>&1 || fail nodes "creating the fake nodes failed"

  log "starting kube-controller-manager, kube-scheduler, kwok"
  start kube-controller-manager \
    --kubeconfig "${STATE}/controller-manager.kubeconfig" \
    --secure-port 0 \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "${pki}/sa.key" \
    --root-ca-file "${pki}/ca.crt" \
    --cluster-signing-cert-file "${pki}/ca.crt" --cluster-signing-key-file "${pki}/ca.key" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --controllers '*' \
    --kube-api-qps 200 --kube-api-burst 400 \
    --profiling=false \
    --v 1
  cat >"${STATE}/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${STATE}/scheduler.kubeconfig
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
EOF
  start kube-scheduler --config "${STATE}/scheduler.yaml" --secure-port 0 --v 1
  start kwok --kubeconfig "${STATE}/admin.kubeconfig" \
    --config "${BIN}/../share/kwok-stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 \
    --cidr 10.244.0.1/16 --node-ip 10.240.0.1

  wait_for kwok "nodes Ready" nodes_ready
  wait_for kube-controller-manager "ServiceAccount default/default" \
    "${BIN}/kubectl" --kubeconfig "${STATE}/admin.kubeconfig" get serviceaccount default -n default

  log "up in $((SECONDS - start))s; state ${STATE}"
  echo "${STATE}/admin.kubeconfig"
}

case "${COMMAND}" in
  up) up ;;
  down) down ;;
  env)
    echo "export KUBECONFIG=${STATE}/admin.kubeconfig; export PATH=$("${TOOLS}" bindir):\$PATH"
    ;;
  *) usage ;;
esac
