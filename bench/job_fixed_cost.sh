#!/usr/bin/env bash
# The fixed cost of a small job: `braid run` of N single-replica tenants on a
# 420-parameter MLP (8 features, hidden [32], 4 classes), 5 FedAvg rounds, on
# the example's CSVs. Each run's progress lines are time-stamped as they
# appear; prints one Markdown row per run and a row of medians:
#   | run | workers | start -> round 1 line s | rounds s | last round line -> exit s | total s |
# "start -> round 1 line" includes round 1 itself (tens of milliseconds here).
#   usage: bench/job_fixed_cost.sh [BUILD_DIR] [WORKERS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
workers=${2:-10}
runs=${3:-3}
braid="$(cd "$build/bin" && pwd)/braid"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/data/st-mary.csv examples/data/charite.csv examples/data/karolinska.csv "$work/"
{
  echo "apiVersion: braid.dev/v1alpha1"
  echo "kind: FederatedJob"
  echo "metadata: {name: fixed-cost, namespace: default}"
  echo "spec:"
  echo "  model: {kind: mlp, mlp: {hidden: [32], numClasses: 4}}"
  echo "  data: {format: csv, features: [x0, x1, x2, x3, x4, x5, x6, x7], label: label, evalFraction: 0.2}"
  echo "  strategy: {name: fedavg, rounds: 5, minClients: 2, fractionFit: 1.0, roundTimeout: 2m}"
  echo "  training: {localEpochs: 1, batchSize: 32, learningRate: 0.05, optimizer: sgd, seed: 7}"
  echo "  tenants:"
  sites=(st-mary charite karolinska)
  for ((i = 0; i < workers; i++)); do
    echo "  - {name: t$i, replicas: 1, data: {path: ${sites[i % 3]}.csv}}"
  done
} > "$work/job.yaml"

now() { date +%s.%N; }
rows=()
for ((r = 1; r <= runs; r++)); do
  rm -rf "$work/run"
  start=$(now)
  first="" last=""
  while IFS= read -r line; do
    case "$line" in
      "round 1/"*) first=$(now); last=$first ;;
      "round "*) last=$(now) ;;
    esac
  done < <("$braid" run "$work/job.yaml" --workdir "$work/run" 2>&1)
  end=$(now)
  if [[ -z "$first" ]]; then
    echo "run $r: no round completed; see $work/run/logs" >&2
    exit 1
  fi
  rows+=("$(awk -v s="$start" -v f="$first" -v l="$last" -v e="$end" \
    'BEGIN { printf "%.2f %.2f %.2f %.2f", f - s, l - f, e - l, e - s }')")
  read -r a b c d <<< "${rows[-1]}"
  echo "| $r | $workers | $a | $b | $c | $d |"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
cols=()
for k in 1 2 3 4; do
  cols+=("$(printf '%s\n' "${rows[@]}" | awk -v k="$k" '{ print $k }' | median)")
done
echo "| median | $workers | ${cols[0]} | ${cols[1]} | ${cols[2]} | ${cols[3]} |"
