// Update ingest over gRPC on loopback: N clients each upload a P-parameter
// fp32 update to a real braid-aggregator process at once (no training).
// Prints GB/s of update bytes ingested (until the last upload is
// acknowledged), the seconds from then until the round's checkpoint is
// written, the CPU seconds the aggregator and the clients used during the
// uploads, and the aggregator's peak RSS as a
// multiple of one model's bytes (one markdown table row; scripts/bench.sh
// prints the header).
//
//   braid_ingest_bench [--clients 10] [--params 10000000] [--upload-slots 1]
//                      [-- AGGREGATOR_FLAGS...]
// (--upload-slots is passed to braid-aggregator; 1 is its default; flags
// after "--" are passed to it as they are.) With BRAID_PERF_CONTROL=FIFO it
// drives `perf record --control=fifo:FIFO` around the uploads.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "aggregator_process.h"
#include "braid/core/safetensors.h"
#include "braid/worker/federation_client.h"

namespace {

namespace fs = std::filesystem;

// Waits (up to 60 s) until the aggregator's checkpoint records `rounds`
// aggregated rounds: the round's close (average, weights written and
// fsynced, state) is done. False on timeout.
bool AwaitCheckpointedRounds(const fs::path& state_json, size_t rounds) {
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up) {
    std::ifstream in(state_json);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const nlohmann::json state = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!state.is_discarded() && state.contains("history") && state["history"].is_array() &&
        state["history"].size() >= rounds) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

long PeakRssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Everything after "--" goes to braid-aggregator as flags.
std::vector<std::string> AggregatorFlags(int argc, char** argv) {
  std::vector<std::string> flags;
  bool after = false;
  for (int i = 1; i < argc; ++i) {
    if (after) flags.emplace_back(argv[i]);
    after = after || std::string(argv[i]) == "--";
  }
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace braid;
  const int clients = bench::IntArg(argc, argv, "clients", 10);
  const int params = bench::IntArg(argc, argv, "params", 10'000'000);
  const int slots = bench::IntArg(argc, argv, "upload-slots", 1);
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("braid-ingest-", ::getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "t.csv") << "a,cls\n1,0\n";
  std::ofstream(dir / "job.yaml") << absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: ingest}\n"
      "spec:\n  model: {kind: mlp, mlp: {hidden: [4], numClasses: 2}}\n"
      "  data: {features: [a], label: cls}\n"
      "  strategy: {rounds: 1, minClients: ", clients, ", roundTimeout: 10m}\n"
      "  tenants:\n  - {name: t, replicas: ", clients, ", data: {path: t.csv}}\n");
  const TensorList model = {Tensor::F32("w", {params}, std::vector<float>(params, 0.0f))};
  if (auto s = safetensors::Write((dir / "init.safetensors").string(), model); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  const uint64_t model_bytes = TotalBytes(model);

  std::vector<std::string> flags = {absl::StrCat("--upload-slots=", slots)};
  for (const std::string& extra : AggregatorFlags(argc, argv)) flags.push_back(extra);
  absl::StatusOr<bench::AggregatorProcess> aggregator = bench::StartAggregator(dir, flags);
  if (!aggregator.ok()) {
    std::cerr << aggregator.status() << "\n";
    return 1;
  }
  const pid_t pid = aggregator->pid;
  const std::string address = aggregator->address();

  const TensorList delta = {Tensor::F32("w", {params}, std::vector<float>(params, 0.001f))};
  absl::Barrier* joined = new absl::Barrier(clients + 1);
  absl::Barrier* downloaded = new absl::Barrier(clients + 1);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      worker::FederationClient client(address);
      auto j = client.Join("ingest", "t", i, 100);
      if (joined->Block()) delete joined;
      if (!j.ok()) { ++failures; std::cerr << j.status() << "\n"; }
      auto task = j.ok() ? client.GetTask(j->client_id, absl::Seconds(30))
                         : absl::StatusOr<worker::ReceivedTask>(j.status());
      if (!task.ok() || task->header.kind() != v1::TASK_KIND_FIT) ++failures;
      if (downloaded->Block()) delete downloaded;
      if (task.ok() && task->header.kind() == v1::TASK_KIND_FIT) {
        auto s = client.PutFit(j->client_id, 1, delta, 100, {0.1, 0, 100});
        if (!s.ok()) { ++failures; std::cerr << s << "\n"; }
      }
    });
  }
  if (joined->Block()) delete joined;
  const absl::Time download_start = absl::Now();
  if (downloaded->Block()) delete downloaded;
  bench::PerfControl("enable");
  const absl::Time upload_start = absl::Now();
  const double aggregator_cpu_start = bench::CpuSeconds(pid);
  const double clients_cpu_start = bench::CpuSeconds(::getpid());
  const long download_peak_kib = PeakRssKiB(pid);
  for (std::thread& t : threads) t.join();
  const absl::Time end = absl::Now();
  bench::PerfControl("disable");
  const double aggregator_cpu = bench::CpuSeconds(pid) - aggregator_cpu_start;
  const double clients_cpu = bench::CpuSeconds(::getpid()) - clients_cpu_start;
  // The uploads are acknowledged once folded; the round closes after.
  if (failures == 0 && !AwaitCheckpointedRounds(dir / "ckpt" / "state.json", 1)) {
    std::cerr << "the round was not checkpointed within 60 s\n";
    ++failures;
  }
  const double close_s = absl::ToDoubleSeconds(absl::Now() - end);
  const long peak_kib = PeakRssKiB(pid);
  aggregator->Stop();
  fs::remove_all(dir);
  if (failures > 0) {
    std::cerr << failures << " clients failed\n";
    return 1;
  }
  const double gb = static_cast<double>(model_bytes) * clients / 1e9;
  const double up_s = absl::ToDoubleSeconds(end - upload_start);
  const double down_s = absl::ToDoubleSeconds(upload_start - download_start);
  const double peak_bytes = static_cast<double>(peak_kib) * 1024;
  std::cout << absl::StrFormat(
      "| %d | %d | %d | %.1f | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f | %.2f | %.0f | %.0f | "
      "%.2fx |\n",
      clients, slots, params, static_cast<double>(model_bytes) / 1e6, gb / up_s, gb / down_s, up_s,
      close_s, aggregator_cpu, gb / aggregator_cpu, clients_cpu,
      static_cast<double>(download_peak_kib) * 1024 / 1e6, peak_bytes / 1e6,
      peak_bytes / static_cast<double>(model_bytes));
  return 0;
}
