// One round of an aggregation strategy with `clients` updates of `params`
// float32 values, through the AggregationStrategy interface as the engine
// drives it (one upload slot reused, as the engine's pool does; the old
// global read in pieces from a file, as from the checkpoint): how long
// folding and finishing take, and the process's peak RSS as a multiple of
// one model's bytes. One configuration per process, so that the peak is that
// configuration's. Prints one line:
//   strategy=S clients=N params=P fold_s=.. finish_s=.. peak_rss_mib=.. model_mib=.. ratio=..
//
// Usage: braid_strategy_bench --strategy=krum --clients=50 --params=10000000
//        [--dir=/tmp/braid-strategy-bench]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "braid/aggregator/strategy_factory.h"
#include "braid/aggregator/upload.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return fallback;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "braid_strategy_bench: %s\n", what.c_str());
  std::exit(1);
}

double PeakRssMib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  using namespace braid::aggregator;
  const std::string name = Flag(argc, argv, "strategy", "fedavg");
  const int clients = std::atoi(Flag(argc, argv, "clients", "10").c_str());
  const uint64_t params = std::strtoull(Flag(argc, argv, "params", "10000000").c_str(), nullptr, 10);
  const std::string dir = Flag(argc, argv, "dir", "/tmp/braid-strategy-bench");
  if (clients < 1 || params < 1) Die("--clients and --params must be positive");
  std::filesystem::create_directories(dir);

  StrategyOptions options;
  options.name = name;
  options.spill_dir = dir + "/spill";
  options.robust.byzantine_clients = name == "bulyan" ? (clients - 3) / 4 : 2;
  options.robust.keep_clients = clients / 2;
  options.server = {0.1, 0, 0.9, 0.99, 1e-9};
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> made = CreateStrategy(options);
  if (!made.ok()) Die(std::string(made.status().message()));
  AggregationStrategy& strategy = **made;

  // The old global, on disk as the checkpoint keeps it.
  const std::string global_path = dir + "/global.bin";
  {
    std::vector<float> piece(1 << 16, 0.5f);
    std::ofstream out(global_path, std::ios::binary | std::ios::trunc);
    for (uint64_t at = 0; at < params; at += piece.size()) {
      const uint64_t n = std::min<uint64_t>(piece.size(), params - at);
      out.write(reinterpret_cast<const char*>(piece.data()), n * sizeof(float));
    }
  }
  std::ifstream global(global_path, std::ios::binary);
  const GlobalReader reader = [&global](uint64_t offset, void* out, uint64_t len) {
    global.seekg(static_cast<std::streamoff>(offset));
    global.read(static_cast<char*>(out), static_cast<std::streamsize>(len));
    return global ? absl::OkStatus() : absl::DataLossError("short read of the old global");
  };

  UploadPool pool(1, params);
  pool.Reserve();
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0, 0.01f);
  // Updates arrive a piece at a time, as from the network: no model-sized
  // source buffer beside the upload slot.
  std::vector<float> piece(1 << 16);

  if (!strategy.BeginRound({1, clients, params, nullptr}).ok()) Die("BeginRound failed");
  double fold_s = 0;
  for (int c = 0; c < clients; ++c) {
    absl::StatusOr<UploadPool::Held> slot = pool.Acquire(absl::Seconds(10));
    if (!slot.ok()) Die(std::string(slot.status().message()));
    Upload upload(&pool, *slot, "bench/" + std::to_string(c), 1, 100);
    upload.set_weight(1.0 / clients);
    for (uint64_t at = 0; at < params; at += piece.size()) {
      const uint64_t n = std::min<uint64_t>(piece.size(), params - at);
      for (uint64_t i = 0; i < n; ++i) piece[i] = noise(rng);
      if (!upload.Write(at * sizeof(float), piece.data(), n * sizeof(float)).ok()) {
        Die("Write failed");
      }
    }
    upload.HandOver();
    const Clock::time_point start = Clock::now();
    absl::StatusOr<FoldResult> folded = strategy.Fold(upload);
    fold_s += std::chrono::duration<double>(Clock::now() - start).count();
    if (!folded.ok()) Die(std::string(folded.status().message()));
  }
  const Clock::time_point start = Clock::now();
  absl::StatusOr<absl::Span<const float>> next = strategy.Finish(reader);
  const double finish_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!next.ok()) Die(std::string(next.status().message()));
  const double model_mib = params * sizeof(float) / (1024.0 * 1024.0);
  const double peak = PeakRssMib();
  std::printf("strategy=%s clients=%d params=%llu fold_s=%.2f finish_s=%.2f peak_rss_mib=%.0f "
              "model_mib=%.0f ratio=%.2f\n",
              name.c_str(), clients, static_cast<unsigned long long>(params), fold_s, finish_s,
              peak, model_mib, peak / model_mib);
  std::filesystem::remove(global_path);
  return 0;
}
