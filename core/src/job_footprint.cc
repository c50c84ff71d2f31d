#include "braid/core/job_footprint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "braid/core/file_io.h"

namespace braid::spec {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMiB = 1 << 20;
// Resident memory of a process before the model: LibTorch's runtime and the
// data for a worker, gRPC and buffers for the aggregator.
constexpr int64_t kWorkerBaseBytes = 128 * kMiB;
constexpr int64_t kLlmWorkerBaseBytes = 256 * kMiB;
constexpr int64_t kAggregatorBaseBytes = 64 * kMiB;
// Copies of a trained model a process holds: a worker its weights, their
// gradients and two Adam moments; the aggregator the global model, the
// running sum, an update in flight and the checkpoint being written.
constexpr int64_t kWorkerCopies = 4;
constexpr int64_t kAggregatorCopies = 4;

int64_t SatAdd(int64_t a, int64_t b) { return a > kMax - b ? kMax : a + b; }
int64_t SatMul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kMax / b ? kMax : a * b;
}

// A positive integer field of `root`, else `fallback` (-1: required).
int64_t IntField(const nlohmann::json& root, const char* key, int64_t fallback) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) return -1;
  const int64_t v = it->get<int64_t>();
  return v >= 1 ? v : -1;
}

bool BoolField(const nlohmann::json& root, const char* key, bool fallback) {
  auto it = root.find(key);
  return it != root.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// Bytes of memory for /proc/meminfo's `key` ("MemTotal"), or 0.
int64_t MemInfo(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  int64_t kib = 0;
  std::string unit;
  while (in >> name >> kib >> unit) {
    if (name == std::string(key) + ":") return SatMul(kib, 1024);
  }
  return 0;
}

}  // namespace

int64_t MlpParameters(int64_t inputs, const std::vector<int>& hidden, int64_t classes) {
  int64_t total = 0;
  int64_t in = inputs;
  for (int width : hidden) {
    total = SatAdd(total, SatAdd(SatMul(in, width), width));
    in = width;
  }
  return SatAdd(total, SatAdd(SatMul(in, classes), classes));
}

absl::StatusOr<int64_t> DecoderParameters(std::string_view config_json) {
  nlohmann::json root = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return absl::InvalidArgumentError("config.json is not a JSON object");
  const std::string type = root.value("model_type", std::string());
  const bool gpt2 = type == "gpt2";
  const int64_t vocab = IntField(root, "vocab_size", -1);
  const int64_t hidden = IntField(root, gpt2 ? "n_embd" : "hidden_size", -1);
  const int64_t layers = IntField(root, gpt2 ? "n_layer" : "num_hidden_layers", -1);
  const int64_t heads = IntField(root, gpt2 ? "n_head" : "num_attention_heads", -1);
  if (vocab < 0 || hidden < 0 || layers < 0 || heads < 0) {
    return absl::InvalidArgumentError("config.json lacks the model's sizes");
  }
  const int64_t inter = IntField(root, gpt2 ? "n_inner" : "intermediate_size",
                                 gpt2 ? SatMul(4, hidden) : -1);
  const int64_t kv_heads = gpt2 ? heads : IntField(root, "num_key_value_heads", heads);
  const int64_t head_dim = IntField(root, "head_dim", hidden / heads);
  if (inter < 0 || kv_heads < 0 || head_dim < 0) {
    return absl::InvalidArgumentError("config.json lacks the model's sizes");
  }
  const bool tied = BoolField(root, "tie_word_embeddings", gpt2);
  int64_t per_layer = 0;
  const int64_t q = SatMul(heads, head_dim), kv = SatMul(kv_heads, head_dim);
  per_layer = SatAdd(per_layer, SatMul(hidden, SatAdd(q, SatMul(2, kv))));  // q, k, v
  per_layer = SatAdd(per_layer, SatMul(q, hidden));                         // o
  per_layer = SatAdd(per_layer, SatMul(SatMul(gpt2 ? 2 : 3, hidden), inter));  // MLP
  per_layer = SatAdd(per_layer, SatMul(4, hidden));  // norms (and biases, roughly)
  int64_t total = SatMul(vocab, hidden);             // embeddings
  if (gpt2) total = SatAdd(total, SatMul(IntField(root, "n_positions", 1024), hidden));
  total = SatAdd(total, SatMul(layers, per_layer));
  total = SatAdd(total, SatMul(2, hidden));  // final norm
  if (!tied) total = SatAdd(total, SatMul(vocab, hidden));
  return total;
}

Footprint ComputeFootprint(const JobSpec& job) {
  Footprint f;
  f.worker_processes = job.TotalReplicas();
  f.processes = f.worker_processes + 1;
  int64_t worker_bytes = 0, aggregator_bytes = kAggregatorBaseBytes;
  if (!job.model.IsLanguageModel()) {
    f.parameters = MlpParameters(static_cast<int64_t>(job.data.features.size()),
                                 job.model.mlp.hidden, job.model.mlp.num_classes);
    const int64_t model_bytes = SatMul(f.parameters, 4);
    worker_bytes = SatAdd(kWorkerBaseBytes, SatMul(kWorkerCopies, model_bytes));
    aggregator_bytes = SatAdd(aggregator_bytes, SatMul(kAggregatorCopies, model_bytes));
  } else if (!job.model.base.path.empty()) {
    const std::string config =
        (std::filesystem::path(ResolvedPath(job, job.model.base.path)) / "config.json").string();
    absl::StatusOr<std::string> text = ReadSmallFile(config, 1 << 20);
    if (!text.ok()) return f;
    absl::StatusOr<int64_t> parameters = DecoderParameters(*text);
    if (!parameters.ok()) return f;
    f.parameters = *parameters;
    // The frozen base in float32; the adapter and its optimizer are small.
    worker_bytes = SatAdd(kLlmWorkerBaseBytes, SatMul(f.parameters, 4));
  } else {
    return f;
  }
  f.memory_bytes = SatAdd(SatMul(f.worker_processes, worker_bytes), aggregator_bytes);
  return f;
}

MachineLimits DefaultMachineLimits() {
  MachineLimits limits;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  limits.max_worker_processes = std::max<int64_t>(64, 16 * std::max<long>(cpus, 1));
  limits.max_memory_bytes = MemInfo("MemTotal");
  return limits;
}

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 6) {
    bytes /= 1000;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(static_cast<int64_t>(bytes), " bytes")
                   : absl::StrFormat("%.1f %s", bytes, kUnits[unit]);
}

std::string GroupedDigits(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::vector<FieldError> CheckMachineLimits(const JobSpec& job, const MachineLimits& limits) {
  std::vector<FieldError> errors;
  const Footprint f = ComputeFootprint(job);
  if (f.worker_processes > limits.max_worker_processes) {
    std::map<int, int> by_replicas;  // replicas -> tenants
    for (const Tenant& t : job.tenants) ++by_replicas[t.replicas];
    const std::string count =
        by_replicas.size() == 1
            ? absl::StrCat(job.tenants.size(), " tenants x ", by_replicas.begin()->first,
                           " replicas")
            : absl::StrCat("the replicas of ", job.tenants.size(), " tenants");
    errors.push_back(
        {"spec.tenants",
         absl::StrCat(count, " = ", f.worker_processes,
                      " worker processes; braid run allows at most ",
                      limits.max_worker_processes, " here (raise with --max-workers)")});
  }
  if (limits.max_memory_bytes > 0 && f.memory_bytes > limits.max_memory_bytes) {
    const std::string field = job.model.IsLanguageModel() ? "spec.model.base" : "spec.model.mlp";
    errors.push_back(
        {field, absl::StrCat(GroupedDigits(f.parameters), " parameters (",
                             HumanBytes(4.0 * static_cast<double>(f.parameters)),
                             " of float32) in each of ", f.worker_processes,
                             " worker processes and the aggregator need about ",
                             HumanBytes(static_cast<double>(f.memory_bytes)),
                             "; braid run allows ",
                             HumanBytes(static_cast<double>(limits.max_memory_bytes)),
                             " here (the machine's memory by default; shrink the model or the "
                             "replicas, or raise the bound with --max-memory-mib)")});
  }
  return errors;
}

}  // namespace braid::spec
