#include "braid/core/secagg/round_config.h"

#include <sodium.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace braid::secagg {

absl::Status ValidateRoundConfig(const RoundConfig& config) {
  const size_t n = config.clients.size();
  if (n < 2) return absl::InvalidArgumentError("secagg.clients: need at least 2 clients");
  std::vector<ClientId> sorted = config.clients;
  std::sort(sorted.begin(), sorted.end());
  if (sorted[0] == 0) return absl::InvalidArgumentError("secagg.clients: id 0 is reserved");
  for (size_t i = 1; i < n; ++i) {
    if (sorted[i] == sorted[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrFormat("secagg.clients: id %u appears twice", sorted[i]));
    }
  }
  uint64_t holders = n;
  if (config.neighbours != 0) {
    if (config.neighbours % 2 != 0 || config.neighbours + 1 >= n) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg.neighbours: must be 0 (complete graph) or even and < %u (clients - 1), got %u",
          n - 1, config.neighbours));
    }
    holders = config.neighbours + 1;
  }
  if (config.threshold < 2 || config.threshold > holders) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg.threshold: must be in [2, %u] (share holders per client), got %u", holders,
        config.threshold));
  }
  if (config.vector_length == 0) {
    return absl::InvalidArgumentError("secagg.vector_length: must be >= 1");
  }
  if (absl::Status s = ValidateQuantization(config.quantization); !s.ok()) return s;
  if (config.quantization.max_summands < n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg.quantization.max_summands: must be >= the %u clients, got %u (the sum would wrap)",
        n, config.quantization.max_summands));
  }
  return absl::OkStatus();
}

NeighbourGraph::NeighbourGraph(const RoundConfig& config) : sorted_(config.clients) {
  std::sort(sorted_.begin(), sorted_.end());
  const size_t n = sorted_.size();
  neighbours_.resize(n);
  if (config.neighbours == 0) {
    holders_ = static_cast<uint32_t>(n);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        if (j != i) neighbours_[i].push_back(sorted_[j]);
      }
    }
    return;
  }
  holders_ = config.neighbours + 1;
  // Seeded Fisher-Yates relabelling; ring positions p +- 1..k/2 are neighbours.
  unsigned char seed[randombytes_SEEDBYTES] = {0};
  for (int i = 0; i < 8; ++i) seed[i] = static_cast<unsigned char>(config.graph_seed >> (8 * i));
  std::vector<uint32_t> random(n);
  randombytes_buf_deterministic(random.data(), n * sizeof(uint32_t), seed);
  std::vector<size_t> ring(n);  // ring position -> index in sorted_
  for (size_t i = 0; i < n; ++i) ring[i] = i;
  for (size_t i = n - 1; i > 0; --i) std::swap(ring[i], ring[random[i] % (i + 1)]);
  const size_t half = config.neighbours / 2;
  for (size_t p = 0; p < n; ++p) {
    for (size_t d = 1; d <= half; ++d) {
      neighbours_[ring[p]].push_back(sorted_[ring[(p + d) % n]]);
      neighbours_[ring[p]].push_back(sorted_[ring[(p + n - d) % n]]);
    }
  }
  for (auto& list : neighbours_) std::sort(list.begin(), list.end());
}

const std::vector<ClientId>& NeighbourGraph::Neighbours(ClientId id) const {
  static const std::vector<ClientId> kNone;
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id);
  if (it == sorted_.end() || *it != id) return kNone;
  return neighbours_[it - sorted_.begin()];
}

bool NeighbourGraph::Contains(ClientId id) const {
  return std::binary_search(sorted_.begin(), sorted_.end(), id);
}

bool NeighbourGraph::AreNeighbours(ClientId a, ClientId b) const {
  const auto& list = Neighbours(a);
  return std::binary_search(list.begin(), list.end(), b);
}

}  // namespace braid::secagg
