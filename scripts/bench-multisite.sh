#!/usr/bin/env bash
# Round time of the multi-site demo job (tests/multisite/demo_job.yaml) run
# two ways on this machine, interleaved: multi-site (`make demo-multisite`:
# three control planes, the sites' workers dialing the coordinator's
# aggregator over mTLS with their site certificates) and on one machine
# without sites (`braid run` of the same job, the tenants' data given as
# paths). Prints a Markdown table (docs/benchmarks.md, "Multi-site").
#   usage: scripts/bench-multisite.sh [BUILD_DIR] [PAIRS]   (default build 3)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
pairs="${2:-3}"
out=.braid/bench-multisite
rm -rf "$out"
mkdir -p "$out/local/data"
cp examples/data/st-mary.csv examples/data/charite.csv "$out/local/data/"
# The same job with the tenants' data as local paths instead of sites.
sed -e 's/namespace: consortium/namespace: default/' \
  -e 's/- {name: \([a-z-]*\), site: [a-z-]*, dataset: records}/- {name: \1, replicas: 1, data: {path: data\/\1.csv}}/' \
  tests/multisite/demo_job.yaml >"$out/local/job.yaml"

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# round seconds of a summary.json, one per line
round_seconds() { python3 -c 'import json,sys; [print(r["seconds"]) for r in json.load(open(sys.argv[1]))["rounds"]]' "$1"; }

for i in $(seq "$pairs"); do
  start=$(date +%s.%N)
  bash scripts/demo-multisite.sh "$build" >"$out/multisite-$i.log" 2>&1
  end=$(date +%s.%N)
  cp .braid/demo-multisite/summary.json "$out/multisite-$i.json"
  echo "$end - $start" | bc >"$out/multisite-$i.wall"
  start=$(date +%s.%N)
  "$build/bin/braid" run "$out/local/job.yaml" --workdir "$out/local/run-$i" \
    --summary "$out/local-$i.json" >"$out/local-$i.log" 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc >"$out/local-$i.wall"
done

echo "| mode | runs | rounds | median round s | round s range | median rounds total s | median command wall s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for mode in local multisite; do
  all=$(for i in $(seq "$pairs"); do round_seconds "$out/$mode-$i.json"; done)
  totals=$(for i in $(seq "$pairs"); do round_seconds "$out/$mode-$i.json" | paste -sd+ | bc; done)
  walls=$(cat "$out"/$mode-*.wall)
  label=$([[ $mode == local ]] && echo "one machine, no sites (braid run)" || echo "multi-site (make demo-multisite)")
  printf '| %s | %d | %d | %.3f | %.3f-%.3f | %.3f | %.1f |\n' "$label" "$pairs" \
    "$(echo "$all" | wc -l)" "$(echo "$all" | median)" "$(echo "$all" | sort -g | head -1)" \
    "$(echo "$all" | sort -g | tail -1)" "$(echo "$totals" | median)" "$(echo "$walls" | median)"
done
