#!/usr/bin/env bash
# make demo-multisite: a coordinator and two sites (st-mary, charite), each
# its own Kubernetes control plane on loopback (tests/k8s/cluster.sh up
# --name ...), each with braid-operator in its role; the sites enroll, the
# coordinator's job invites them, each approves in its own cluster, and the
# job runs to Succeeded with braid-aggregator and braid-worker processes
# standing in for the pods (build/bin/braid_multisite_demo does the flow).
# Prints one line per round with each site's participation and writes
# .braid/demo-multisite/summary.json. The clusters and processes are
# brought down at the end, also on failure or Ctrl-C; every run starts
# from fresh clusters.
#   usage: scripts/demo-multisite.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
workdir=.braid/demo-multisite
# Own cluster names, so the demo never touches the clusters `make test` uses.
names=(demo-coordinator demo-st-mary demo-charite)
started=$SECONDS

for b in braid_multisite_demo braid-operator braid-aggregator braid-worker; do
  [[ -x "$build/bin/$b" ]] || { echo "demo-multisite: $build/bin/$b missing (make build)" >&2; exit 1; }
done
bindir=$(bash scripts/k8s-tools.sh bindir)
[[ -x "$bindir/kubectl" ]] || { echo "demo-multisite: no kubectl in $bindir (make k8s-tools)" >&2; exit 1; }

down() {
  local n
  for n in "${names[@]}"; do bash tests/k8s/cluster.sh down --name "$n" >/dev/null 2>&1 & done
  wait
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  echo "demo-multisite: bringing the three clusters down" >&2
  down
  echo "demo-multisite: done in $((SECONDS - started))s (exit $code)" >&2
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A run killed hard (SIGKILL) may have left clusters behind: start fresh.
down
rm -rf "$workdir"
mkdir -p "$workdir/clusters"
echo "demo-multisite: starting three control planes (coordinator, st-mary, charite)..."
pids=()
for n in "${names[@]}"; do
  bash tests/k8s/cluster.sh up --name "$n" >"$workdir/clusters/$n.out" 2>"$workdir/clusters/$n.log" &
  pids+=($!)
done
for i in "${!names[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "demo-multisite: cluster ${names[$i]} did not start:" >&2
    tail -n 20 "$workdir/clusters/${names[$i]}.log" >&2
    exit 1
  fi
done
kubeconfig() { tail -n 1 "$workdir/clusters/$1.out"; }
echo "demo-multisite: clusters up in $((SECONDS - started))s:"
for n in "${names[@]}"; do echo "  $n  KUBECONFIG=$(kubeconfig "$n")"; done

"$build/bin/braid_multisite_demo" \
  --kubectl "$bindir/kubectl" \
  --bin_dir "$build/bin" \
  --coordinator_kubeconfig "$(kubeconfig demo-coordinator)" \
  --sites "st-mary=$(kubeconfig demo-st-mary),charite=$(kubeconfig demo-charite)" \
  --job tests/multisite/demo_job.yaml \
  --data_dir examples/data \
  --workdir "$workdir"
