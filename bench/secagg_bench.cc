// One in-process secure-aggregation round (core/secagg) against a plaintext
// round over the same updates: N clients x P float parameters, with a
// fraction of the clients dropping right after ShareKeys (so the server must
// rebuild their masking keys and strip their pairwise masks).
//
// Every message is encoded to bytes and decoded again on its way, as it
// would travel in a protobuf `bytes` field; "wire MB" adds up all of them,
// both directions (keys, directories, encrypted shares, masked inputs,
// unmask requests and responses). The plaintext round uploads N fp32
// updates (N x 4P bytes) that the aggregator folds with FoldWeighted, its
// real fold; its time is that fold (median of 5 repetitions).
//   server s     time inside Server calls (folding masked inputs, routing
//                shares, rebuilding secrets, expanding and removing masks);
//                "of which unmasking" is Finish(): rebuilding and mask removal
//   client s     median over clients of the time inside its Client calls
//                (keys, Shamir shares, encryption, quantization, masks)
//   round ratio  (server s + client s) / plaintext fold s: the extra time on
//                the round's critical path, clients working in parallel
//   gRPC ratio   with --ingest_gbps=G (update ingest over gRPC into one
//                aggregator, as bench/ingest_bench measures it on the same
//                machine): the honest plaintext round is its uploads at G
//                plus the fold; the secure round is its wire bytes at G plus
//                server s plus client s. A model from two measurements, not
//                one run of the whole protocol over gRPC.
// Single thread; updates ~ N(0, 0.01^2) per element, clip range [-1, 1].
//
// Usage: braid_secagg_bench [--clients=100] [--params=1000000]
//          [--neighbours=-1 (auto: SecAgg+ with the smallest even k >= 2*ceil(log2 N)), 0 = complete graph]
//          [--threshold=0 (auto: a majority of each client's share holders)] [--dropout=0,0.2]
//          [--server_threads=1 (ServerOptions::unmask_threads)] [--ingest_gbps=0 (off)]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "braid/aggregator/fedavg.h"
#include "braid/core/secagg/client.h"
#include "braid/core/secagg/quantize.h"
#include "braid/core/secagg/server.h"

namespace {

using braid::secagg::ClientId;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(v.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(v);
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

// Client `id`'s update, the same every time it is asked for.
void MakeUpdate(ClientId id, std::vector<float>* out) {
  std::mt19937_64 rng(id);
  std::normal_distribution<float> dist(0.0f, 0.01f);
  for (float& x : *out) x = dist(rng);
}

struct Result {
  double server_s = 0, finish_s = 0, client_median_s = 0, plain_s = 0;
  double wire_bytes = 0, plain_bytes = 0, max_err_over_bound = 0;
  size_t survivors = 0;
};

Result RunOnce(uint32_t n, uint64_t params, uint32_t k, uint32_t t, double dropout,
               int server_threads) {
  braid::secagg::RoundConfig config;
  config.round_id = 1;
  for (uint32_t i = 1; i <= n; ++i) config.clients.push_back(i);
  config.threshold = t;
  config.neighbours = k;
  config.graph_seed = 12345;
  config.vector_length = params;
  config.quantization.clip = 1.0;
  config.quantization.max_summands = n;
  std::set<ClientId> dropped;
  {
    std::mt19937 rng(777);
    std::vector<ClientId> ids = config.clients;
    std::shuffle(ids.begin(), ids.end(), rng);
    dropped.insert(ids.begin(), ids.begin() + static_cast<size_t>(std::lround(dropout * n)));
  }
  Result r;
  std::map<ClientId, double> client_s;
  Clock::time_point t0;

  braid::secagg::ServerOptions options;
  options.unmask_threads = server_threads;
  auto server = Check(braid::secagg::Server::Create(config, options), "server");
  std::map<ClientId, std::unique_ptr<braid::secagg::Client>> clients;
  for (ClientId id : config.clients) {
    clients[id] = Check(braid::secagg::Client::Create(config, id), "client");
  }
  // Stage 0: AdvertiseKeys.
  for (auto& [id, c] : clients) {
    t0 = Clock::now();
    auto keys = Check(c->AdvertiseKeys(), "AdvertiseKeys");
    client_s[id] += Since(t0);
    const std::string wire = Encode(keys);
    r.wire_bytes += wire.size();
    auto decoded = Check(braid::secagg::DecodePublicKeys(wire), "decode");
    t0 = Clock::now();
    Check(server->AddPublicKeys(decoded), "AddPublicKeys");
    r.server_s += Since(t0);
  }
  t0 = Clock::now();
  auto dirs = Check(server->CloseAdvertiseKeys(), "CloseAdvertiseKeys");
  r.server_s += Since(t0);
  // Stage 1: ShareKeys.
  for (auto& [id, dir] : dirs) {
    const std::string in = Encode(dir);
    r.wire_bytes += in.size();
    auto decoded = Check(braid::secagg::DecodeKeyDirectory(in), "decode");
    t0 = Clock::now();
    auto shares = Check(clients[id]->ShareKeys(decoded), "ShareKeys");
    client_s[id] += Since(t0);
    const std::string out = Encode(shares);
    r.wire_bytes += out.size();
    auto back = Check(braid::secagg::DecodeEncryptedShares(out), "decode");
    t0 = Clock::now();
    Check(server->AddEncryptedShares(back), "AddEncryptedShares");
    r.server_s += Since(t0);
  }
  t0 = Clock::now();
  auto forwarded = Check(server->CloseShareKeys(), "CloseShareKeys");
  r.server_s += Since(t0);
  // Stage 2: MaskedInput (the dropped clients vanish here).
  std::vector<float> update(params);
  std::vector<double> want(params, 0.0);
  for (auto& [id, f] : forwarded) {
    if (dropped.count(id)) continue;
    const std::string in = Encode(f);
    r.wire_bytes += in.size();
    auto decoded = Check(braid::secagg::DecodeForwardedShares(in), "decode");
    MakeUpdate(id, &update);
    for (uint64_t i = 0; i < params; ++i) want[i] += update[i];
    t0 = Clock::now();
    auto masked = Check(clients[id]->MaskInput(decoded, update), "MaskInput");
    client_s[id] += Since(t0);
    const std::string out = Encode(masked);
    r.wire_bytes += out.size();
    masked = braid::secagg::MaskedInput();
    auto back = Check(braid::secagg::DecodeMaskedInput(out), "decode");
    t0 = Clock::now();
    Check(server->AddMaskedInput(back), "AddMaskedInput");
    r.server_s += Since(t0);
  }
  t0 = Clock::now();
  auto request = Check(server->CloseMaskedInput(), "CloseMaskedInput");
  r.server_s += Since(t0);
  // Stage 3: Unmasking.
  const std::string request_wire = Encode(request);
  for (ClientId id : request.survivors) {
    r.wire_bytes += request_wire.size();
    auto decoded = Check(braid::secagg::DecodeUnmaskRequest(request_wire), "decode");
    t0 = Clock::now();
    auto response = Check(clients[id]->Unmask(decoded), "Unmask");
    client_s[id] += Since(t0);
    const std::string out = Encode(response);
    r.wire_bytes += out.size();
    auto back = Check(braid::secagg::DecodeUnmaskResponse(out), "decode");
    t0 = Clock::now();
    Check(server->AddUnmaskResponse(back), "AddUnmaskResponse");
    r.server_s += Since(t0);
  }
  t0 = Clock::now();
  auto result = Check(server->Finish(), "Finish");
  r.finish_s = Since(t0);
  r.server_s += r.finish_s;
  r.survivors = result.contributors.size();

  const double step = braid::secagg::QuantizationStep(config.quantization);
  for (uint64_t i = 0; i < params; ++i) {
    const double bound = r.survivors * step / 2 + std::fabs(want[i]) * 0x1.0p-24;
    r.max_err_over_bound = std::max(r.max_err_over_bound, std::fabs(result.sum[i] - want[i]) / bound);
  }
  std::vector<double> per_client;
  for (ClientId id : request.survivors) per_client.push_back(client_s[id]);
  std::sort(per_client.begin(), per_client.end());
  r.client_median_s = per_client[per_client.size() / 2];

  // The plaintext round over the same survivors: fold their fp32 updates.
  // Median of 5 repetitions (the fold is short and the machine shared).
  std::vector<std::vector<float>> updates;
  for (ClientId id : request.survivors) {
    MakeUpdate(id, &update);
    updates.push_back(update);
    r.plain_bytes += 4.0 * params;
  }
  std::vector<double> folds;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<float> sum(params, 0.0f);
    t0 = Clock::now();
    for (const auto& u : updates) {
      braid::aggregator::FoldWeighted(sum.data(), u.data(), params, 1.0f);
    }
    folds.push_back(Since(t0));
  }
  std::sort(folds.begin(), folds.end());
  r.plain_s = folds[folds.size() / 2];
  return r;
}

std::vector<double> ParseList(const std::string& s) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    out.push_back(std::atof(s.substr(pos, comma - pos).c_str()));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t n = 100, t = 0;
  int server_threads = 1;
  double ingest_gbps = 0;
  uint64_t params = 1000000;
  int k = -1;
  std::vector<double> dropouts = {0.0, 0.2};
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    command += " " + arg;
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("clients")) {
      n = static_cast<uint32_t>(std::atoi(v));
    } else if (const char* v = value("params")) {
      params = std::strtoull(v, nullptr, 10);
    } else if (const char* v = value("neighbours")) {
      k = std::atoi(v);
    } else if (const char* v = value("threshold")) {
      t = static_cast<uint32_t>(std::atoi(v));
    } else if (const char* v = value("server_threads")) {
      server_threads = std::atoi(v);
    } else if (const char* v = value("ingest_gbps")) {
      ingest_gbps = std::atof(v);
    } else if (const char* v = value("dropout")) {
      dropouts = ParseList(v);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--clients=100] [--params=1000000] [--neighbours=-1] "
                   "[--threshold=0] [--dropout=0,0.2] [--server_threads=1] [--ingest_gbps=0]\n",
                   argv[0]);
      return 2;
    }
  }
  if (k < 0) {
    k = 2 * static_cast<int>(std::ceil(std::log2(n)));
    if (k % 2) ++k;
    if (static_cast<uint32_t>(k) + 1 >= n) k = 0;
  }
  const uint32_t holders = k == 0 ? n : static_cast<uint32_t>(k) + 1;
  if (t == 0) t = holders / 2 + 1;
  std::string mode = k == 0 ? "SecAgg (complete graph)" : "SecAgg+ k=" + std::to_string(k);
  if (server_threads > 1) mode += ", " + std::to_string(server_threads) + " unmask threads";
  std::printf("| mode | clients | params | dropout | threshold | server s | of which unmasking s | client s (median) | "
              "plaintext fold s | round ratio | gRPC round ratio | wire MB | plaintext MB | bytes ratio | max error / bound |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (double d : dropouts) {
    const Result r = RunOnce(n, params, static_cast<uint32_t>(k), t, d, server_threads);
    std::string grpc_ratio = "-";
    if (ingest_gbps > 0) {
      const double plain_round = r.plain_bytes / (ingest_gbps * 1e9) + r.plain_s;
      const double secure_round =
          r.wire_bytes / (ingest_gbps * 1e9) + r.server_s + r.client_median_s;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fx", secure_round / plain_round);
      grpc_ratio = buf;
    }
    std::printf("| %s | %u | %llu | %.0f%% | %u of %u | %.3f | %.3f | %.3f | %.3f | %.1fx | %s | %.1f | %.1f | %.4fx | %.2f |\n",
                mode.c_str(), n, static_cast<unsigned long long>(params), d * 100, t, holders,
                r.server_s, r.finish_s, r.client_median_s, r.plain_s,
                (r.server_s + r.client_median_s) / r.plain_s, grpc_ratio.c_str(), r.wire_bytes / 1e6,
                r.plain_bytes / 1e6, r.wire_bytes / r.plain_bytes, r.max_err_over_bound);
    std::fflush(stdout);
  }
  std::printf("\ncommand: `%s`\n", command.c_str());
  return 0;
}
