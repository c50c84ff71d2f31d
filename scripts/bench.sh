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
  cat <<TEXT
# Benchmarks

Each section answers one question: what is measured, the command, the
latest table and the target; "What the figures say" below gives a short
reading of each. \`make bench\` (scripts/bench.sh) reruns every command and
rewrites the tables; the reading is kept. Written on $(date -u +%Y-%m-%d): $(nproc) cores,
$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), shared with other work: compare figures within a
table or between interleaved runs, never across days. How each figure got
where it is lives in \`git log -- docs/benchmarks.md\`.

## (a) Folding updates into the running sum

Question: how close does \`FoldWeighted\` (\`sum += n_i x delta_i\`, fused with
the update's norm) come to the memory bandwidth it must move?
Target: >= 70% of a plain \`sum += update\` loop over the same buffers, same run.

TEXT
  "$bin/braid_fold_bench"
  cat <<'TEXT'

## (b) Update ingest over gRPC and aggregator memory

Question: how fast can one aggregator take in a round's updates, and how
much memory does it need for them?
Targets: >= 1 GB/s ingest; peak RSS <= 3x one model's bytes, flat in the
number of clients.

command: `./bin/braid_ingest_bench --clients N --upload-slots S`

N clients (threads of one process, one connection each) join a real
braid-aggregator on loopback, download the 10M-parameter model, then all
upload a 10M-parameter fp32 update (40 MB) at once; no training. Ingest =
update bytes / seconds from the first upload until the last is acknowledged
(checked and folded into the sum); round closed s = from then until the
round's checkpoint is on disk. Peak RSS is the aggregator's VmHWM. CPU s:
user + system seconds during the uploads. Upload slots (`--upload-slots`,
default 1): updates received at once, each holding one model-sized buffer.

| clients | upload slots | params | model MB | ingest GB/s | download GB/s | upload s | round closed s | aggregator CPU s | GB per aggregator CPU s | clients CPU s | peak RSS after downloads MB | peak RSS MB | peak / model |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
TEXT
  for slots in 1 2; do
    for clients in 10 50; do
      "$bin/braid_ingest_bench" --clients "$clients" --upload-slots "$slots" 2>/dev/null
    done
  done
  cat <<'TEXT'

The transport's ceiling in the same minutes: the same uploads (the worker's
own upload code) to a bare gRPC server with the aggregator's transport and
allocator settings that reads each frame and drops it (no copy, checks,
fold or checkpoint).

command: `./bin/braid_grpc_ceiling_bench --clients 10 --slots S`

| clients | slots | ingest GB/s | upload s | server CPU s | clients CPU s |
|---:|---:|---:|---:|---:|---:|
TEXT
  for slots in 1 2; do
    "$bin/braid_grpc_ceiling_bench" --clients 10 --slots "$slots" 2>/dev/null
  done
  cat <<'TEXT'

## (c) Operator: 100 jobs x 3 tenants applied at once

Question: how long does braid-operator take to make everything 100 jobs
need, and how much memory does it use?
Target: all objects present in seconds; a small RSS.

command: `bench/operator_bench.sh build 100`

A fresh test control plane (tests/k8s/cluster.sh), three Tenants, then 100
FederatedJobs with 3 tenants each, one apply per job; seconds from the
first apply until all 13 objects of every job exist (4 Deployments, 4
ConfigMaps, 4 NetworkPolicies, 1 Service), and the operator's VmHWM. The
API server, etcd, scheduler, controller-manager and kwok share the 2 cores.

| jobs | objects | seconds | reconciles | operator peak RSS MiB |
|---:|---:|---:|---:|---:|
TEXT
  bash bench/operator_bench.sh "$build" 100
  cat <<'TEXT'

## (d) Secure aggregation: one round, 100 clients x 1M parameters

Question: what does hiding every update from the aggregator cost, in time
and bytes, against a plaintext round?
Targets: <= 2x the plaintext round time, <= 1.3x its bytes, 100 clients x
1M parameters, 20% dropout.

**Whole round over gRPC** (`bench/secagg_round_bench`): a real
braid-aggregator per mode and 100 clients as threads of one process, all on
this machine. Clock from "every client holds its FIT task" to "the
checkpoint records the round aggregated"; no training. Dropout: 20% of the
clients never upload (plaintext) or vanish after sharing keys (secure);
both rounds then wait for the aggregator to declare them lost (10 s), which
dominates both times. CPU s: plaintext / secure.

command: `./bin/braid_secagg_round_bench --clients 100 --params 1000000 [--dropout-percent 20]`

| clients | params | dropout | plaintext round s | secure round s | ratio | aggregator CPU s | clients CPU s |
|---:|---:|---:|---:|---:|---:|---:|---:|
TEXT
  for _ in 1 2 3; do
    "$bin/braid_secagg_round_bench" --clients 100 --params 1000000 2>/dev/null
  done
  "$bin/braid_secagg_round_bench" --clients 100 --params 1000000 --dropout-percent 20 2>/dev/null
  "$bin/braid_secagg_round_bench" --clients 100 --params 1000 2>/dev/null
  rates=()
  for _ in 1 2 3; do
    rates+=("$("$bin/braid_ingest_bench" --clients 100 --params 1000000 2>/dev/null | awk -F'|' '{gsub(/ /, "", $6); print $6}')")
  done
  ingest=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n 2p)
  cat <<TEXT

**Library** (\`bench/secagg_bench\`): clients and server of core/secagg in
one process, every message encoded and decoded as on the wire. server s and
client s are compute inside the protocol calls; round ratio = (server s +
client s) / the plaintext fold of the same updates; gRPC round ratio = the
same against a plaintext round at the measured ingest rate (clients on
their own machines; ingest of 100 x 1M parameters, three runs: ${rates[*]} GB/s,
median $ingest). Wire MB counts every message, both directions.

command: \`./bin/braid_secagg_bench --clients=100 --params=1000000 --server_threads=2 --ingest_gbps=$ingest\` (\`--neighbours=0\` for the complete graph)

TEXT
  "$bin/braid_secagg_bench" --clients=100 --params=1000000 --server_threads=2 --ingest_gbps="$ingest"
  echo
  "$bin/braid_secagg_bench" --clients=100 --params=1000000 --neighbours=0
  cat <<TEXT

## (e) LLM local training: LoRA tokens/s, Braid vs PyTorch eager

Question: is braid-worker's fine-tuning step at least as fast as the
Hugging Face + PEFT step a user would otherwise run?
Target: tokens/s ratio >= 1.0 on the same model and batch.

command: \`./bin/braid_llm_lora_bench --model all --reps 5 --threads 1\`

JobTrainer::Fit (tokenize, batch, forward, backward, AdamW on the adapter)
against transformers + PEFT in PyTorch eager (the pyref venv, the same
Debian torch and OpenBLAS), same checkpoint, batch, sequence length, LoRA
settings, 1 torch thread a side, repetitions interleaved. Load before:
$(uptime | sed 's/.*load/load/')

TEXT
  "$bin/braid_llm_lora_bench" --model all --reps 5 --threads 1 2>/dev/null
  echo
  echo "Load after: $(uptime | sed 's/.*load/load/')"
  cat <<'TEXT'

## (f) Fixed cost of a small job

Question: how long does `braid run` spend before the first round and after
the last, when the rounds themselves take almost nothing?
Target: under 1 s on each side.

command: `bench/job_fixed_cost.sh build 10 5`

10 tenants of one replica, a 420-parameter MLP, 5 FedAvg rounds; each run's
progress lines are time-stamped as they appear. "start -> round 1 line"
includes round 1 itself (tens of milliseconds).

| run | workers | start -> round 1 line s | rounds s | last round line -> exit s | total s |
|---:|---:|---:|---:|---:|---:|
TEXT
  bash bench/job_fixed_cost.sh "$build" 10 5
  cat <<'TEXT'

## (g) Aggregation strategies: one round's time and peak memory

Question: what does each strategy cost the aggregator at 10 and 50
clients x 10M parameters, and does the robust ones' memory stay bounded
when they need every update?
Target: peak RSS <= 4x one model's bytes at 50 clients x 10M parameters.

command: `./bin/braid_strategy_bench --strategy=S --clients=N --params=10000000`

One process per line, so its peak is that configuration's. Updates are
written into one upload slot a piece at a time, as from the network. The old
global is read from a file, as from the checkpoint. krum and multikrum run
with f = 2 and keepClients = N/2; bulyan with the largest f that N admits.
fold_s is the time spent in Fold, including writing the robust strategies'
spill file; finish_s is the time spent in Finish.

| strategy | clients | fold s | finish s | peak RSS MiB | x model |
|---|---:|---:|---:|---:|---:|
TEXT
  for clients in 10 50; do
    for s in fedavg fedadam median trimmedmean krum multikrum bulyan; do
      "$bin/braid_strategy_bench" --strategy="$s" --clients="$clients" --params=10000000 |
        sed -E 's/strategy=([^ ]+) clients=([^ ]+) params=[^ ]+ fold_s=([^ ]+) finish_s=([^ ]+) peak_rss_mib=([^ ]+) model_mib=[^ ]+ ratio=([^ ]+)/| \1 | \2 | \3 | \4 | \5 | \6 |/'
    done
  done
} > "$tmp"

# Keep the hand-written analysis below the marker, if any.
if [[ -f "$out" ]] && grep -q '^<!-- analysis -->' "$out"; then
  sed -n '/^<!-- analysis -->/,$p' "$out" >> "$tmp"
fi
mv "$tmp" "$out"
echo "wrote $out"
