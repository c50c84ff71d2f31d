#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (clang, ASan + UBSan) in
# build-sanitize and runs each for SECONDS (default 60), starting from the
# seed corpora in the repo. Findings (crash-*, leak-*, timeout-*) are
# written to build-sanitize/fuzz/artifacts/ and fail the run.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${SANITIZE_BUILD_DIR:-build-sanitize}
bash scripts/sanitize.sh configure
cmake --build "$build" --target braid_fuzzers -j "${JOBS:-2}"

# target -> seed directories
declare -A seeds=(
  [braid_spec_fuzz]="core/testdata/spec/good core/testdata/spec/bad"
  [braid_safetensors_fuzz]="core/testdata/safetensors"
  [braid_audit_log_fuzz]="core/testdata/audit_fuzz"
  [braid_update_fuzz]="aggregator/testdata/update_fuzz"
  [braid_secagg_messages_fuzz]="core/testdata/secagg_fuzz"
  [braid_tokenizer_fuzz]="worker/testdata/tokenizer_fuzz"
  [braid_request_rules_fuzz]="dashboard/testdata/request_rules_fuzz"
)
out="$build/fuzz"
mkdir -p "$out/artifacts"
failed=0
for target in "${!seeds[@]}"; do
  corpus="$out/corpus/$target"  # grows across runs; seeds stay read-only
  mkdir -p "$corpus"
  # shellcheck disable=SC2086
  if "$build/bin/$target" "$corpus" ${seeds[$target]} -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$target-" >"$out/$target.log" 2>&1; then
    echo "fuzz: $target: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$out/$target.log" | awk '{print $2}') inputs in ${seconds}s, no finding"
  else
    echo "fuzz: $target FAILED; log $out/$target.log, input in $out/artifacts/"
    tail -40 "$out/$target.log"
    failed=1
  fi
done
exit "$failed"
