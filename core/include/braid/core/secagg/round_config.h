// The public parameters of one secure-aggregation round, agreed by the server
// and every client before it starts (the integrator sends them with the
// round's task), and the neighbour graph they imply.
#ifndef BRAID_CORE_SECAGG_ROUND_CONFIG_H_
#define BRAID_CORE_SECAGG_ROUND_CONFIG_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "braid/core/secagg/quantize.h"

namespace braid::secagg {

// 1..2^32-1; it is also the client's Shamir x-coordinate, so never 0.
using ClientId = uint32_t;

struct RoundConfig {
  // Binds every key, seed and share to this round; never reuse one.
  uint64_t round_id = 0;
  // The cohort: distinct, nonzero ids (any order; kept sorted by Validate's users).
  std::vector<ClientId> clients;
  // t: shares needed to rebuild a secret. The round completes only while at
  // least t clients remain (and, in graph mode, t of each client's share
  // holders); up to t-1 clients colluding with the server learn nothing
  // beyond the sum. 2 <= t <= holders, where holders = n (complete graph) or
  // neighbours + 1.
  uint32_t threshold = 2;
  // 0: complete graph (Bonawitz et al. 2017): every pair masks and every
  // client shares with all. k > 0 (even, k < n - 1): SecAgg+ (Bell et al.
  // 2020): a k-regular ring graph (a Harary graph) over a seeded random
  // relabelling; a client masks with and shares to its k neighbours only.
  // k ~ 2 * ceil(log2 n) keeps cost O(log n) per client.
  uint32_t neighbours = 0;
  uint64_t graph_seed = 0;  // public; selects the relabelling
  uint64_t vector_length = 0;  // elements in every update, >= 1
  // Encoding; max_summands must be >= clients.size().
  QuantizationParams quantization;
};

// OK, or kInvalidArgument naming the field and the rule it breaks.
absl::Status ValidateRoundConfig(const RoundConfig& config);

// The neighbours of every cohort member (excluding itself), sorted, indexed by
// position of the id in `sorted_clients` (config.clients sorted ascending).
// Precondition: ValidateRoundConfig(config) is OK.
class NeighbourGraph {
 public:
  explicit NeighbourGraph(const RoundConfig& config);
  const std::vector<ClientId>& sorted_clients() const { return sorted_; }
  // Empty if `id` is not in the cohort.
  const std::vector<ClientId>& Neighbours(ClientId id) const;
  bool Contains(ClientId id) const;
  bool AreNeighbours(ClientId a, ClientId b) const;
  // Number of share holders of a client: neighbours + itself.
  uint32_t Holders() const { return holders_; }

 private:
  std::vector<ClientId> sorted_;
  std::vector<std::vector<ClientId>> neighbours_;  // by index in sorted_
  uint32_t holders_ = 0;
};

}  // namespace braid::secagg

#endif  // BRAID_CORE_SECAGG_ROUND_CONFIG_H_
