// One secure-aggregation attempt of a FIT round, as the round engine runs it
// over gRPC: the core/secagg Server plus what the network adds, namely the
// mapping from client ids to cohort ids, a deadline per stage, and the
// answers waiting for each client when a stage closes.
//
// Stages (SecAggStage below), each open until every client still expected
// at it has submitted, or is gone (lost: no heartbeat), or its deadline:
//   kAdvertise    expected: the cohort          answer: KeyDirectory
//   kShare        expected: who advertised      answer: ForwardedShares
//   kMaskedInput  expected: who shared keys     answer: UnmaskRequest
//   kUnmask       expected: who sent an input   (then the sum is unmasked)
// The key stages last at most `stage_timeout`, the masked-input stage
// `input_timeout` (it includes local training). A client that misses a stage
// is out of the attempt. When fewer than the threshold remain, Advance()
// returns kAborted naming the stage, and the attempt is over.
//
// Not thread-safe: the round engine calls it under its mutex (but for
// AddMaskedInput, see there).
#ifndef BRAID_AGGREGATOR_SECAGG_ROUND_H_
#define BRAID_AGGREGATOR_SECAGG_ROUND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "braid/core/secagg/round_config.h"
#include "braid/core/secagg/server.h"

namespace braid::aggregator {

// Values match proto braid.v1.SecAggStage.
enum class SecAggStage { kAdvertise = 1, kShare = 2, kMaskedInput = 3, kUnmask = 4, kDone = 5 };
const char* SecAggStageName(SecAggStage stage);

// From spec.privacy.secureAggregation{,Settings}.
struct SecAggOptions {
  bool enabled = false;
  // Shares that rebuild a secret, as a fraction of a client's share holders:
  // t = max(2, ceil(threshold * holders)); 0 = a majority (holders / 2 + 1).
  double threshold = 0;
  // -1: automatic (the complete graph while a cohort has <= kAutoCompleteUpTo
  // clients, else SecAgg+ with the smallest even k >= 2 * ceil(log2 n));
  // 0: complete graph; k (even): SecAgg+ with k neighbours (the complete
  // graph when k >= n - 1).
  int neighbours = -1;
  double quantization_range = 1.0;  // elements clipped to [-r, r]
  absl::Duration stage_timeout = absl::Seconds(60);
};

// The graph and threshold a cohort of n clients gets under `options`.
struct CohortShape {
  uint32_t neighbours = 0;  // 0 = complete graph
  uint32_t threshold = 2;
};
CohortShape ShapeFor(const SecAggOptions& options, uint32_t n);
inline constexpr uint32_t kAutoCompleteUpTo = 16;

// What one client needs to take part (sent with its FIT task).
struct SecAggTask {
  secagg::RoundConfig config;
  secagg::ClientId self = 0;
  double weight = 1;        // the client scales its update by this
  double noise_stddev = 0;  // distributed DP noise per element; 0 = none
  absl::Duration stage_timeout;
};

class SecAggRound {
 public:
  struct Member {
    std::string client_id;
    double weight = 1;
  };
  // kInvalidArgument if the config the members imply is invalid (e.g. fewer
  // than 2 members).
  static absl::StatusOr<std::unique_ptr<SecAggRound>> Create(
      const SecAggOptions& options, uint64_t round_id, uint64_t graph_seed,
      uint64_t vector_length, const std::vector<Member>& members, double noise_stddev,
      absl::Time now, absl::Duration input_timeout, int unmask_threads);

  uint64_t round_id() const { return config_.round_id; }
  const secagg::RoundConfig& config() const { return config_; }
  SecAggStage stage() const { return stage_; }
  // The task for a cohort member; nullopt for anyone else.
  std::optional<SecAggTask> TaskFor(const std::string& client_id) const;

  // The client's message for `stage` (core/secagg encoding). kAborted if
  // that stage is not the open one (the client is late: it is out), or the
  // client is not expected at it; kInvalidArgument if the message is
  // malformed or refused by the protocol (the caller should Exclude it).
  absl::Status Submit(const std::string& client_id, SecAggStage stage, absl::string_view payload);
  // The masked input, `bytes` little-endian uint32 values: ClaimMaskedInput
  // then AddMaskedInput.
  absl::Status SubmitMaskedInput(const std::string& client_id, const void* values, size_t bytes);
  // The first half of SubmitMaskedInput, under the caller's lock: kAborted
  // unless ExpectsMaskedInput(client_id); then the client counts as having
  // sent its input (it cannot send a second one). Until the matching
  // AddMaskedInput returns, the caller must not call Advance.
  absl::Status ClaimMaskedInput(const std::string& client_id);
  // The second half: adds the claimed input into the ring sum (O(model)).
  // May run outside the caller's lock, but not concurrently with itself or
  // with Advance; it touches only the ring sum and the set of inputs
  // received. kInvalidArgument (the caller should Exclude the client) if the
  // protocol refuses the input.
  absl::Status AddMaskedInput(const std::string& client_id, const void* values, size_t bytes);
  // The client leaves the attempt (it sent something refused).
  void Exclude(const std::string& client_id) { excluded_.insert(client_id); }

  // Whether the client may still send its masked input now.
  bool ExpectsMaskedInput(const std::string& client_id) const;

  // The client's answer for `stage` once it closed: nullopt while open;
  // kAborted if the client is not in the next stage (it missed a deadline).
  absl::StatusOr<std::optional<std::string>> Answer(const std::string& client_id,
                                                    SecAggStage stage) const;

  // Closes the open stage if due (`gone` says whether a client is lost).
  // kAborted when the attempt failed (fewer than the threshold remain, or
  // unmasking failed): the message says at which stage and why.
  absl::Status Advance(absl::Time now, const std::function<bool(const std::string&)>& gone);

  // After stage kDone: the unmasked sum of the contributors' (weighted,
  // clipped, quantized) updates, and the client ids and weight behind it.
  std::vector<float>& sum() { return result_.sum; }
  std::vector<std::string> contributors() const;
  double contributor_weight() const;

 private:
  SecAggRound(const SecAggOptions& options, secagg::RoundConfig config,
              std::unique_ptr<secagg::Server> server, double noise_stddev);
  absl::Status CloseStage(absl::Time now);

  SecAggOptions options_;
  secagg::RoundConfig config_;
  std::unique_ptr<secagg::Server> server_;
  double noise_stddev_;
  absl::Duration input_timeout_;
  std::map<std::string, secagg::ClientId> ids_;
  std::map<secagg::ClientId, std::string> names_;
  std::map<std::string, double> weights_;
  SecAggStage stage_ = SecAggStage::kAdvertise;
  absl::Time deadline_;
  std::set<std::string> expected_;  // at the open stage
  std::set<std::string> done_;      // submitted at the open stage
  std::set<std::string> excluded_;
  // answers_[stage][client]: the client's input for the stage after `stage`.
  std::map<SecAggStage, std::map<std::string, std::string>> answers_;
  secagg::AggregateResult result_;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SECAGG_ROUND_H_
