#!/usr/bin/env bash
# Runs Braid's benchmarks and rewrites docs/benchmarks.md with their figures
# and the commands that made them.   usage: scripts/bench.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
bin="$build/bin"
out=docs/benchmarks.md
tmp=$(mktemp)

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d), $(nproc) cores,"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m). Figures are from one run; the"
  echo "machine is shared, so compare ratios within a table rather than across runs."
  echo
  echo "## (a) Folding updates into the running sum"
  echo
  echo "Target: FoldWeighted >= 70% of a plain memory-bandwidth loop over the same buffers."
  echo
  "$bin/braid_fold_bench"
  echo
  echo "## (b) Update ingest over gRPC and aggregator memory"
  echo
  echo "N clients (threads of one process, one connection each) join a real"
  echo "braid-aggregator on loopback, download the 10M-parameter model, then all"
  echo "upload a 10M-parameter fp32 update (40 MB) at once; no training."
  echo "Ingest GB/s = update bytes / seconds from the start of the uploads until the"
  echo "last is acknowledged (an upload is acknowledged once checked and folded into"
  echo "the sum); round closed s = seconds from then until the round's checkpoint"
  echo "(average, weights written and fsynced, state) is on disk. Peak RSS is the aggregator's VmHWM (whole run; after"
  echo "the downloads only in its own column). Targets: >= 1 GB/s ingest; peak RSS"
  echo "<= 3x one model's bytes, flat in the number of clients."
  echo "CPU s: user + system seconds during the uploads, of the aggregator and of"
  echo "the clients' process; GB per aggregator CPU s is what one aggregator core"
  echo "ingests when the clients are elsewhere."
  echo
  echo "Upload slots: updates the aggregator receives at once (\`--upload-slots\`,"
  echo "default 1), each holding one model-sized buffer: 2 trades 40 MB for speed."
  echo
  echo "| clients | upload slots | params | model MB | ingest GB/s | download GB/s | upload s | round closed s | aggregator CPU s | GB per aggregator CPU s | clients CPU s | peak RSS after downloads MB | peak RSS MB | peak / model |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for slots in 1 2; do
    for clients in 10 50; do
      "$bin/braid_ingest_bench" --clients "$clients" --upload-slots "$slots" 2>/dev/null
    done
  done
  echo
  echo "command: \`$bin/braid_ingest_bench --clients N --upload-slots S\` for S in 1 2, N in 10 50"
  echo
  echo "The transport's ceiling on the same machine: the same uploads (the worker's"
  echo "own upload code) to a bare gRPC server with the aggregator's transport and"
  echo "allocator settings that reads each frame and drops it (no copy, checks, fold"
  echo "or checkpoint). CPU s as above, of that server and of the clients. This VM's"
  echo "speed varies from minute to minute: compare the rows above with these, run"
  echo "in the same minutes, rather than with another day's."
  echo
  echo "| clients | slots | ingest GB/s | upload s | server CPU s | clients CPU s |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for slots in 1 2; do
    "$bin/braid_grpc_ceiling_bench" --clients 10 --slots "$slots" 2>/dev/null
  done
  echo
  echo "command: \`$bin/braid_grpc_ceiling_bench --clients 10 --slots S\` for S in 1 2"
  echo
  echo "## (c) Operator: 100 jobs x 3 tenants applied at once"
  echo
  echo "A fresh test control plane (tests/k8s/cluster.sh), three Tenants, then 100"
  echo "FederatedJobs with 3 tenants each applied one request per job; seconds from"
  echo "the first apply until all 13 objects of every job exist (4 Deployments, 4"
  echo "ConfigMaps, 4 NetworkPolicies, 1 Service, counted with kubectl), and"
  echo "braid-operator's peak RSS (VmHWM). The API server, etcd, scheduler,"
  echo "controller-manager and kwok share the same 2 cores."
  echo
  echo "| jobs | objects | seconds | reconciles | operator peak RSS MiB |"
  echo "|---:|---:|---:|---:|---:|"
  bash bench/operator_bench.sh "$build" 100
  echo
  echo "command: \`bench/operator_bench.sh $build 100\`"
  echo
  echo "## (d) Secure aggregation: one round, 100 clients x 1M parameters"
  echo
  echo "**Library** (\`bench/secagg_bench\`): clients and server of core/secagg in one"
  echo "process; every message encoded and decoded as on the wire. Dropout: that"
  echo "fraction of the clients vanish right after ShareKeys, so the server rebuilds"
  echo "their keys and strips their masks. server s and client s (median) are"
  echo "compute inside the protocol calls (unmasking: the server's Finish,"
  echo "rebuilding secrets and regenerating masks); round ratio = (server s + client"
  echo "s) / the plaintext fold of the same fp32 updates (FoldWeighted, median of"
  echo "5); gRPC round ratio = the same against an honest plaintext round, uploads"
  echo "at the ingest rate measured just before by \`braid_ingest_bench\` plus the"
  echo "fold: (wire bytes / ingest + server s + client s) / (plaintext bytes / ingest"
  echo "+ fold s). Wire MB counts every message, both directions, against the"
  echo "plaintext uploads (N x 4 MB). Targets: <= 2x the plaintext round time,"
  echo "<= 1.3x its bytes. The PRG is AES-128-CTR (OpenSSL EVP, AES-NI); unmasking"
  echo "runs on 2 threads as in the aggregator (it uses up to 4)."
  echo
  rates=()
  for _ in 1 2 3; do
    rates+=("$("$bin/braid_ingest_bench" --clients 100 --params 1000000 2>/dev/null | awk -F'|' '{gsub(/ /, "", $6); print $6}')")
  done
  ingest=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n 2p)
  echo "Ingest for the gRPC ratio: \`./bin/braid_ingest_bench --clients 100 --params 1000000\`,"
  echo "three runs: ${rates[*]} GB/s (median $ingest)."
  echo
  "$bin/braid_secagg_bench" --clients=100 --params=1000000 --server_threads=2 --ingest_gbps="$ingest"
  echo
  "$bin/braid_secagg_bench" --clients=100 --params=1000000 --neighbours=0
  echo
  echo "**Whole round over gRPC** (\`bench/secagg_round_bench\`): a real"
  echo "braid-aggregator per mode and 100 clients as threads of one process, all on"
  echo "this machine. Clock from \"every client holds its FIT task\" to \"the"
  echo "checkpoint records the round aggregated\"; no training. Dropout: 20% of the"
  echo "clients never upload (plaintext) or vanish after sharing keys (secure);"
  echo "both rounds then wait for the aggregator to declare them lost (10 s)."
  echo
  echo "CPU s: user + system seconds during the round, plaintext / secure."
  echo
  echo "| clients | params | dropout | plaintext round s | secure round s | ratio | aggregator CPU s | clients CPU s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for _ in 1 2 3; do
    "$bin/braid_secagg_round_bench" --clients 100 --params 1000000 2>/dev/null
  done
  "$bin/braid_secagg_round_bench" --clients 100 --params 1000000 --dropout-percent 20 2>/dev/null
  "$bin/braid_secagg_round_bench" --clients 100 --params 1000 2>/dev/null
  echo
  echo "commands: \`./bin/braid_secagg_round_bench --clients 100 --params 1000000\` (three"
  echo "times), \`... --dropout-percent 20\`, \`... --params 1000\`"
  echo
  echo "## (e) LLM local training: LoRA tokens/s, Braid vs PyTorch eager"
  echo
  echo "braid-worker's fit (JobTrainer::Fit, what each round runs) against Hugging Face"
  echo "transformers + PEFT in PyTorch eager (the pyref venv), same checkpoint, batch,"
  echo "sequence length, LoRA settings, AdamW and torch thread count, repetitions"
  echo "interleaved in one run. Target: ratio >= 1.0. Load before: $(uptime | sed 's/.*load/load/')"
  echo
  "$bin/braid_llm_lora_bench" --model all --reps 5 --threads 1 2>/dev/null
  echo
  echo "Load after: $(uptime | sed 's/.*load/load/')"
} > "$tmp"

# Keep the hand-written analysis below the marker, if any.
if [[ -f "$out" ]] && grep -q '^<!-- analysis -->' "$out"; then
  sed -n '/^<!-- analysis -->/,$p' "$out" >> "$tmp"
fi
mv "$tmp" "$out"
echo "wrote $out"
