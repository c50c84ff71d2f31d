// One client's side of a secure-aggregation round: a message-passing state
// machine with no I/O. The caller carries each returned message to the
// server (see messages.h for the flow) and feeds the server's answers back.
//
// Stages must be called in order, once each:
//   AdvertiseKeys() -> ShareKeys(directory) -> MaskInput(shares, update) -> Unmask(request)
// A call out of order is kFailedPrecondition and changes nothing. After any
// error the client should leave the round (the server then counts it as
// dropped at that stage).
//
// What an honest client refuses (kPermissionDenied), so that an
// honest-but-curious server cannot learn an individual input:
//   - an UnmaskRequest naming one client both a survivor and dropped (the
//     b-share and the s-share together unmask that client's input);
//   - an UnmaskRequest naming this client dropped (it sent its input);
//   - any second UnmaskRequest (it could flip a survivor to dropped);
//   - shares that fail authentication or name another sender/recipient/round.
// kAborted (retry the round) when fewer than `threshold` of this client's
// share holders (itself included) remain at ShareKeys or MaskInput, or
// fewer than `threshold` survivors are listed at Unmask.
//
// Not thread-safe: one thread drives one client. Secrets are wiped on destruction.
#ifndef BRAID_CORE_SECAGG_CLIENT_H_
#define BRAID_CORE_SECAGG_CLIENT_H_

#include <map>
#include <memory>
#include <set>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "braid/core/secagg/messages.h"
#include "braid/core/secagg/round_config.h"

namespace braid::secagg {

class Client final {
 public:
  // kInvalidArgument if `config` is invalid or `self` is not in its cohort.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const RoundConfig& config, ClientId self);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ClientId id() const { return self_; }

  // Stage 0: fresh key pairs for this round; the public halves.
  absl::StatusOr<PublicKeys> AdvertiseKeys();

  // Stage 1: Shamir-shares the mask seed b and the masking key s among the
  // share holders in `directory` (this client's neighbours that advertised,
  // and itself), each share encrypted to its holder.
  // kInvalidArgument: the directory lacks this client, alters its keys, names
  // a client outside its neighbourhood, repeats an id or a key.
  absl::StatusOr<EncryptedShares> ShareKeys(const KeyDirectory& directory);

  // Stage 2: quantizes `update` (config.vector_length floats), adds the self
  // mask and one pairwise mask per neighbour that shared keys. Clients of
  // one process expand their masks at most as many at once as there are
  // cores; the others wait their turn here.
  // kInvalidArgument: wrong length, or shares addressed elsewhere / from
  // clients outside the directory. kPermissionDenied: a share fails to decrypt.
  absl::StatusOr<MaskedInput> MaskInput(const ForwardedShares& shares,
                                        absl::Span<const float> update);
  // MaskInput without a second model-sized vector: `io` holds the update's
  // float32 values as their bit patterns (std::memcpy'd in) and receives the
  // masked ring elements (MaskedInput::values). Same errors; after one,
  // io's contents are unspecified.
  absl::Status MaskInPlace(const ForwardedShares& shares, absl::Span<uint32_t> io);

  // Stage 3: reveals b-shares of survivors and s-shares of dropped clients
  // among the neighbours that shared keys with this client (and its own b-share).
  absl::StatusOr<UnmaskResponse> Unmask(const UnmaskRequest& request);

 private:
  struct Secrets;
  enum class Stage { kAdvertise, kShare, kMask, kUnmask, kDone };
  Client(const RoundConfig& config, ClientId self);
  absl::Status Expect(Stage stage, const char* call) const;

  RoundConfig config_;
  NeighbourGraph graph_;
  ClientId self_;
  Stage stage_ = Stage::kAdvertise;
  std::unique_ptr<Secrets> secrets_;
  std::map<ClientId, PublicKeys> directory_;  // share holders except self
};

}  // namespace braid::secagg

#endif  // BRAID_CORE_SECAGG_CLIENT_H_
