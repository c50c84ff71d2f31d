// One whole FIT round over gRPC on loopback, plaintext against secure
// aggregation: N clients (threads of this process, one connection each) and
// a real braid-aggregator process per mode. Each client joins, fetches its
// FIT task with the P-parameter model, then (clock starts when all have
// their task) uploads a P-parameter update: plaintext with PutUpdate, or
// through the whole secure-aggregation protocol (worker/secagg_fit: keys,
// shares, quantize + mask, masked upload, unmasking). A fraction of the
// clients drops out: plaintext, they never upload; secure, they vanish right
// after sharing keys. The clock stops when the aggregator's checkpoint
// records the round as aggregated (state.json's history, polled every 2 ms).
// No training. Also prints the CPU seconds the aggregator and the clients'
// process used during each round (plaintext / secure).
//
// Both modes wait for the dropped clients the same way (declared lost after
// --heartbeat-timeout, 10 s here; live clients heartbeat every 300 ms from a
// thread of the bench), so with dropout both times include it.
// All clients share this machine's cores here, so the clients' masking work
// (on their own machines in a deployment) is on the critical path too:
// a pessimistic figure for secure aggregation.
//
//   braid_secagg_round_bench [--clients 100] [--params 1000000] [--dropout-percent 0]
//
// To profile the secure round alone: with BRAID_PERF_CONTROL=FIFO set, it
// writes "enable" and "disable" to FIFO around that round's timed window,
// for `perf record -D -1 --control=fifo:FIFO ...`.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include <nlohmann/json.hpp>
#include "aggregator_process.h"
#include "braid/core/safetensors.h"
#include "braid/worker/federation_client.h"
#include "braid/worker/secagg_fit.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  double seconds = 0;
  double aggregator_cpu = 0;  // CPU seconds during the round
  double clients_cpu = 0;
  int failures = 0;
  int participants = 0;
};

Outcome RunRound(bool secure, int clients, int params, int dropout_percent) {
  using namespace braid;
  Outcome out;
  const fs::path dir = fs::temp_directory_path() /
                       absl::StrCat("braid-secagg-round-", ::getpid(), secure ? "-s" : "-p");
  fs::create_directories(dir);
  std::ofstream(dir / "t.csv") << "a,cls\n1,0\n";
  std::ofstream(dir / "job.yaml") << absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: round}\n"
      "spec:\n  model: {kind: mlp, mlp: {hidden: [4], numClasses: 2}}\n"
      "  data: {features: [a], label: cls}\n"
      "  strategy: {rounds: 1, minClients: 2, roundTimeout: 10m}\n",
      secure ? "  privacy: {secureAggregation: true}\n" : "",
      "  tenants:\n  - {name: t, replicas: ", clients, ", data: {path: t.csv}}\n");
  const TensorList model = {Tensor::F32("w", {params}, std::vector<float>(params, 0.0f))};
  if (auto s = safetensors::Write((dir / "init.safetensors").string(), model); !s.ok()) {
    std::cerr << s << "\n";
    out.failures = 1;
    return out;
  }
  absl::StatusOr<bench::AggregatorProcess> aggregator =
      bench::StartAggregator(dir, {"--heartbeat-timeout=10s"});
  if (!aggregator.ok()) {
    std::cerr << aggregator.status() << "\n";
    out.failures = 1;
    return out;
  }
  const std::string address = aggregator->address();
  const int dropped = clients * dropout_percent / 100;

  auto* ready = new absl::Barrier(clients + 1);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  // Heartbeats, as every worker sends from a thread of its own; dropped
  // clients stop sending theirs.
  std::vector<std::string> ids(clients);
  std::vector<std::atomic<bool>> alive(clients);
  for (auto& a : alive) a = false;
  std::atomic<bool> stop{false};
  std::thread heartbeats([&] {
    worker::FederationClient hb(address);
    while (!stop) {
      for (int i = 0; i < clients; ++i) {
        if (alive[i]) (void)hb.Heartbeat(ids[i]);
      }
      absl::SleepFor(absl::Milliseconds(300));
    }
  });
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      const bool drops = i < dropped;
      worker::FederationClient client(address);
      auto j = client.Join("round", "t", i, 100);
      if (j.ok()) {
        ids[i] = j->client_id;
        alive[i] = true;
      }
      absl::StatusOr<worker::ReceivedTask> task =
          j.ok() ? client.GetTask(j->client_id, absl::Seconds(30))
                 : absl::StatusOr<worker::ReceivedTask>(j.status());
      if (!task.ok() || task->header.kind() != v1::TASK_KIND_FIT) {
        ++failures;
        std::cerr << "client " << i << ": no FIT task: "
                  << (task.ok() ? task->header.ShortDebugString() : task.status().ToString())
                  << "\n";
      }
      if (ready->Block()) delete ready;
      if (!task.ok() || task->header.kind() != v1::TASK_KIND_FIT) return;
      auto train = [&]() -> absl::StatusOr<worker::LocalUpdate> {
        if (drops) {
          alive[i] = false;
          return absl::CancelledError("this client drops out");
        }
        worker::LocalUpdate u;
        u.delta = {Tensor::F32("w", {params}, std::vector<float>(params, 0.001f * (i % 7)))};
        u.num_examples = 100;
        u.train = {0.1, 0, 100};
        return u;
      };
      absl::Status s;
      if (secure) {
        worker::SecAggFitOptions options;
        options.name = absl::StrCat("bench-", i);
        s = worker::RunSecAggFit(client, j->client_id, task->header, train, options);
        if (drops && absl::IsCancelled(s)) s = absl::OkStatus();
      } else if (drops) {
        alive[i] = false;
      } else {
        absl::StatusOr<worker::LocalUpdate> u = train();
        s = client.PutFit(j->client_id, 1, u->delta, u->num_examples, u->train);
      }
      if (!s.ok()) {
        ++failures;
        std::cerr << "client " << i << ": " << s << "\n";
      }
    });
  }
  if (ready->Block()) delete ready;
  if (secure) bench::PerfControl("enable");
  const absl::Time start = absl::Now();
  const double aggregator_cpu_start = bench::CpuSeconds(aggregator->pid);
  const double clients_cpu_start = bench::CpuSeconds(::getpid());
  const fs::path state = dir / "ckpt" / "state.json";
  while (absl::Now() - start < absl::Minutes(5)) {
    std::ifstream in(state);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.contains("history") && !j["history"].empty()) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  out.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (secure) bench::PerfControl("disable");
  out.aggregator_cpu = bench::CpuSeconds(aggregator->pid) - aggregator_cpu_start;
  out.clients_cpu = bench::CpuSeconds(::getpid()) - clients_cpu_start;
  for (std::thread& t : threads) t.join();
  stop = true;
  heartbeats.join();
  out.failures = failures;
  out.participants = clients - dropped;
  aggregator->Stop();
  fs::remove_all(dir);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = braid::bench::IntArg(argc, argv, "clients", 100);
  const int params = braid::bench::IntArg(argc, argv, "params", 1'000'000);
  const int dropout = braid::bench::IntArg(argc, argv, "dropout-percent", 0);
  const Outcome plain = RunRound(false, clients, params, dropout);
  const Outcome secure = RunRound(true, clients, params, dropout);
  if (plain.failures > 0 || secure.failures > 0) {
    std::cerr << plain.failures << " plaintext and " << secure.failures
              << " secure clients failed\n";
    return 1;
  }
  std::cout << absl::StrFormat(
      "| %d | %d | %d%% | %.2f | %.2f | %.2fx | %.2f / %.2f | %.2f / %.2f |\n", clients, params,
      dropout, plain.seconds, secure.seconds, secure.seconds / plain.seconds,
      plain.aggregator_cpu, secure.aggregator_cpu, plain.clients_cpu, secure.clients_cpu);
  return 0;
}
