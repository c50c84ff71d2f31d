// The server's side of a secure-aggregation round: collects each stage's
// messages, routes encrypted shares, folds masked inputs into a running sum
// (memory O(vector_length), not O(clients x vector_length)), and at the end
// removes the masks: it rebuilds the self-mask seed b_u of every survivor and
// the masking key s_v of every client that dropped after sharing keys, and
// decodes the sum of the survivors' updates.
//
// Per stage: Add*() any number of times (one message per client), then
// Close*() once; the next stage's Add*() are refused before that.
// Add* errors concern one message only (the round goes on):
//   kInvalidArgument   sender outside the stage's set, duplicate, malformed
//   kFailedPrecondition called in the wrong stage
// Close*/Finish errors end the round:
//   kAborted (retry the round) when fewer than `threshold` clients remain at
//   a stage, or fewer than `threshold` holders answered for some secret; the
//   message names the stage, the count and the threshold. Also kAborted if a
//   rebuilt key does not match the advertised one (a client sent a bad share).
//
// Not thread-safe: serialize calls (e.g. under the round's mutex). Finish()
// may start ServerOptions::unmask_threads threads of its own and joins them.
#ifndef BRAID_CORE_SECAGG_SERVER_H_
#define BRAID_CORE_SECAGG_SERVER_H_

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "braid/core/secagg/messages.h"
#include "braid/core/secagg/round_config.h"

namespace braid::secagg {

struct AggregateResult {
  std::vector<float> sum;              // sum of the contributors' (clipped, quantized) updates
  std::vector<ClientId> contributors;  // the survivors whose inputs are in `sum`
};

struct ServerOptions {
  // Threads Finish() uses to regenerate and strip masks (each takes a
  // contiguous range of the vector). Default 1: all work on the caller's thread.
  int unmask_threads = 1;
};

class Server final {
 public:
  // kInvalidArgument if `config` is invalid or options are out of range.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const RoundConfig& config,
                                                        const ServerOptions& options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  absl::Status AddPublicKeys(const PublicKeys& keys);
  // Per advertising client: the keys of its advertising neighbours and its own.
  absl::StatusOr<std::map<ClientId, KeyDirectory>> CloseAdvertiseKeys();

  absl::Status AddEncryptedShares(const EncryptedShares& shares);
  // Per client that shared: the shares addressed to it.
  absl::StatusOr<std::map<ClientId, ForwardedShares>> CloseShareKeys();

  absl::Status AddMaskedInput(const MaskedInput& input);
  // The same from a raw buffer: `bytes` little-endian uint32 values (e.g. a
  // streamed upload held in any storage); not retained.
  absl::Status AddMaskedInput(ClientId from, const void* values, size_t bytes);
  // Clients that shared keys, and that sent a masked input, so far.
  const std::set<ClientId>& shared_keys() const { return u2_; }
  const std::set<ClientId>& sent_input() const { return u3_; }
  // The request to send to every survivor.
  absl::StatusOr<UnmaskRequest> CloseMaskedInput();

  absl::Status AddUnmaskResponse(const UnmaskResponse& response);
  absl::StatusOr<AggregateResult> Finish();

 private:
  enum class Stage { kAdvertise, kShare, kMask, kUnmask, kDone };
  Server(const RoundConfig& config, const ServerOptions& options);
  absl::Status Expect(Stage stage, const char* call) const;
  absl::Status Abort(const char* stage, size_t remaining) const;

  RoundConfig config_;
  ServerOptions options_;
  NeighbourGraph graph_;
  Stage stage_ = Stage::kAdvertise;
  std::map<ClientId, PublicKeys> u1_;                         // advertised
  std::map<ClientId, std::vector<EncryptedShare>> inbox_;     // by recipient
  std::set<ClientId> u2_;                                     // shared keys
  std::set<ClientId> u3_;                                     // sent masked input
  std::vector<uint32_t> sum_;                                 // running ring sum
  std::vector<ClientId> dropped_;                             // u2 \ u3
  std::set<ClientId> u4_;                                     // answered unmasking
  std::map<ClientId, std::vector<std::pair<uint32_t, Bytes32>>> b_shares_, s_shares_;
};

}  // namespace braid::secagg

#endif  // BRAID_CORE_SECAGG_SERVER_H_
