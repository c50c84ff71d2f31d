#include "braid/core/secagg/client.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/secagg/quantize.h"
#include "braid/core/status_macros.h"
#include "crypto.h"
#include "shamir.h"

namespace braid::secagg {
namespace {

// Mask expansion is CPU-bound: when one process runs many clients (a
// simulation, the benchmarks), letting more expand at once than there are
// cores only makes every one of them finish last, together, and then queue
// for the upload slot. At most this many expand at once per process, so
// the first ones finish early and upload while the rest still mask.
class MaskingGate {
 public:
  MaskingGate() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](int* free) { return *free > 0; }, &free_));
    --free_;
  }
  ~MaskingGate() {
    absl::MutexLock lock(&mu_);
    ++free_;
  }

 private:
  static inline absl::Mutex mu_;
  static inline int free_ ABSL_GUARDED_BY(mu_) =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
};

// Share plaintext: from u32 | to u32 | round u64 | s-share 32 | b-share 32.
constexpr size_t kSharePlaintextBytes = 4 + 4 + 8 + 32 + 32;

std::string SharePlaintext(ClientId from, ClientId to, uint64_t round, const Scalar& s,
                           const Scalar& b) {
  std::string p(kSharePlaintextBytes, '\0');
  std::memcpy(&p[0], &from, 4);
  std::memcpy(&p[4], &to, 4);
  std::memcpy(&p[8], &round, 8);
  std::memcpy(&p[16], s.data(), 32);
  std::memcpy(&p[48], b.data(), 32);
  return p;
}

}  // namespace

struct Client::Secrets {
  Scalar s{};                 // masking key as a field element
  Scalar b{};                 // self-mask seed as a field element
  X25519KeyPair masking{};    // derived from s
  X25519KeyPair encryption{};
  Scalar own_s_share{}, own_b_share{};
  std::map<ClientId, std::pair<Scalar, Scalar>> held;  // owner -> (s-share, b-share)
  std::map<ClientId, Key32> box_keys;  // share holder -> the pair's crypto_box key
  std::set<ClientId> revealed_b, revealed_s;
  ~Secrets() {
    sodium_memzero(&s, sizeof(s));
    sodium_memzero(&b, sizeof(b));
    sodium_memzero(&masking, sizeof(masking));
    sodium_memzero(&encryption, sizeof(encryption));
    for (auto& [id, shares] : held) sodium_memzero(&shares, sizeof(shares));
    for (auto& [id, key] : box_keys) sodium_memzero(key.data(), key.size());
  }
};

Client::Client(const RoundConfig& config, ClientId self)
    : config_(config), graph_(config), self_(self), secrets_(std::make_unique<Secrets>()) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const RoundConfig& config, ClientId self) {
  BRAID_RETURN_IF_ERROR(EnsureSodium());
  BRAID_RETURN_IF_ERROR(ValidateRoundConfig(config));
  if (std::find(config.clients.begin(), config.clients.end(), self) == config.clients.end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg: client %u is not in the round's cohort", self));
  }
  return std::unique_ptr<Client>(new Client(config, self));
}

absl::Status Client::Expect(Stage stage, const char* call) const {
  if (stage_ != stage) {
    return absl::FailedPreconditionError(
        absl::StrFormat("secagg client %u: %s called out of order", self_, call));
  }
  return absl::OkStatus();
}

absl::StatusOr<PublicKeys> Client::AdvertiseKeys() {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kAdvertise, "AdvertiseKeys"));
  secrets_->s = RandomScalar();
  secrets_->b = RandomScalar();
  secrets_->masking = MaskingKeyFromScalar(secrets_->s);
  secrets_->encryption = NewBoxKeyPair();
  stage_ = Stage::kShare;
  PublicKeys keys;
  keys.id = self_;
  keys.encryption_key = secrets_->encryption.public_key;
  keys.masking_key = secrets_->masking.public_key;
  return keys;
}

absl::StatusOr<EncryptedShares> Client::ShareKeys(const KeyDirectory& directory) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kShare, "ShareKeys"));
  bool saw_self = false;
  std::set<ClientId> ids;
  std::set<Bytes32> keys;
  std::map<ClientId, PublicKeys> holders;
  for (const PublicKeys& k : directory.keys) {
    if (!ids.insert(k.id).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("secagg client %u: key directory lists client %u twice", self_, k.id));
    }
    if (!keys.insert(k.encryption_key).second || !keys.insert(k.masking_key).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("secagg client %u: key directory repeats a public key (client %u)",
                          self_, k.id));
    }
    if (k.id == self_) {
      if (k.encryption_key != secrets_->encryption.public_key ||
          k.masking_key != secrets_->masking.public_key) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "secagg client %u: key directory alters this client's own keys", self_));
      }
      saw_self = true;
      continue;
    }
    if (!graph_.AreNeighbours(self_, k.id)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg client %u: key directory names client %u, not a neighbour", self_, k.id));
    }
    holders[k.id] = k;
  }
  if (!saw_self) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg client %u: key directory lacks this client", self_));
  }
  if (holders.size() + 1 < config_.threshold) {
    return absl::AbortedError(absl::StrFormat(
        "secagg client %u: only %u share holders advertised keys, threshold is %u", self_,
        holders.size() + 1, config_.threshold));
  }
  std::vector<uint32_t> xs;
  for (const auto& [id, k] : holders) xs.push_back(id);
  xs.push_back(self_);
  const std::vector<Scalar> s_shares = ShamirSplit(secrets_->s, config_.threshold, xs);
  const std::vector<Scalar> b_shares = ShamirSplit(secrets_->b, config_.threshold, xs);
  EncryptedShares out;
  out.from = self_;
  for (size_t i = 0; i + 1 < xs.size(); ++i) {
    absl::StatusOr<Key32> key =
        BoxKey(holders[xs[i]].encryption_key, secrets_->encryption.secret_key);
    if (!key.ok()) return key.status();
    std::string plain = SharePlaintext(self_, xs[i], config_.round_id, s_shares[i], b_shares[i]);
    out.shares.push_back({self_, xs[i], BoxSeal(plain, *key)});
    sodium_memzero(plain.data(), plain.size());
    secrets_->box_keys[xs[i]] = *key;
    sodium_memzero(key->data(), key->size());
  }
  secrets_->own_s_share = s_shares.back();
  secrets_->own_b_share = b_shares.back();
  directory_ = std::move(holders);
  stage_ = Stage::kMask;
  return out;
}

absl::StatusOr<MaskedInput> Client::MaskInput(const ForwardedShares& shares,
                                              absl::Span<const float> update) {
  MaskedInput out;
  out.from = self_;
  out.values.resize(update.size());
  std::memcpy(out.values.data(), update.data(), update.size() * sizeof(float));
  BRAID_RETURN_IF_ERROR(MaskInPlace(shares, absl::MakeSpan(out.values)));
  return out;
}

absl::Status Client::MaskInPlace(const ForwardedShares& shares, absl::Span<uint32_t> io) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kMask, "MaskInput"));
  if (io.size() != config_.vector_length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg client %u: update has %u elements, the round expects %u", self_,
                        io.size(), config_.vector_length));
  }
  if (shares.to != self_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg client %u: forwarded shares are addressed to client %u", self_, shares.to));
  }
  std::map<ClientId, std::pair<Scalar, Scalar>> held;
  for (const EncryptedShare& share : shares.shares) {
    auto holder = directory_.find(share.from);
    if (share.to != self_ || holder == directory_.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg client %u: a forwarded share from %u to %u does not belong here", self_,
          share.from, share.to));
    }
    if (held.count(share.from)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg client %u: two shares from client %u", self_, share.from));
    }
    // Every holder in the directory got a share from this client, under the
    // same pair key.
    BRAID_ASSIGN_OR_RETURN(std::string plain,
                           BoxOpen(share.ciphertext, secrets_->box_keys.at(share.from)));
    ClientId from, to;
    uint64_t round;
    if (plain.size() != kSharePlaintextBytes) {
      return absl::PermissionDeniedError("secagg: a decrypted share has the wrong size");
    }
    std::memcpy(&from, &plain[0], 4);
    std::memcpy(&to, &plain[4], 4);
    std::memcpy(&round, &plain[8], 8);
    if (from != share.from || to != self_ || round != config_.round_id) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "secagg client %u: the share from %u names sender %u, recipient %u, round %u", self_,
          share.from, from, to, round));
    }
    auto& entry = held[from];
    std::memcpy(entry.first.data(), &plain[16], 32);
    std::memcpy(entry.second.data(), &plain[48], 32);
    sodium_memzero(plain.data(), plain.size());
  }
  if (held.size() + 1 < config_.threshold) {
    return absl::AbortedError(absl::StrFormat(
        "secagg client %u: only %u share holders shared keys, threshold is %u", self_,
        held.size() + 1, config_.threshold));
  }
  BRAID_RETURN_IF_ERROR(QuantizeInPlace(config_.quantization, io));
  std::vector<SignedSeed> seeds;
  seeds.push_back({SelfSeed(secrets_->b, config_.round_id), +1});
  for (const auto& [peer, unused] : held) {
    absl::StatusOr<Key32> seed =
        PairSeed(secrets_->masking, directory_[peer].masking_key, config_.round_id);
    if (!seed.ok()) {
      sodium_memzero(seeds.data(), seeds.size() * sizeof(SignedSeed));
      return seed.status();
    }
    seeds.push_back({*seed, self_ < peer ? +1 : -1});
  }
  {
    MaskingGate gate;
    AddMasks(seeds, io, /*threads=*/1);
  }
  sodium_memzero(seeds.data(), seeds.size() * sizeof(SignedSeed));
  secrets_->held = std::move(held);
  stage_ = Stage::kUnmask;
  return absl::OkStatus();
}

absl::StatusOr<UnmaskResponse> Client::Unmask(const UnmaskRequest& request) {
  if (stage_ == Stage::kDone) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "secagg client %u: refusing a second unmask request (it could reveal both shares of a "
        "client)", self_));
  }
  BRAID_RETURN_IF_ERROR(Expect(Stage::kUnmask, "Unmask"));
  const std::set<ClientId> survivors(request.survivors.begin(), request.survivors.end());
  for (ClientId v : request.dropped) {
    if (survivors.count(v)) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "secagg client %u: refusing: the server asked for both the mask-seed share and the key "
          "share of client %u (together they unmask its input)", self_, v));
    }
    if (v == self_) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "secagg client %u: refusing: the server reports this client dropped, but it sent its "
          "masked input", self_));
    }
  }
  if (!survivors.count(self_)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "secagg client %u: refusing: this client is missing from the survivors", self_));
  }
  if (survivors.size() < config_.threshold) {
    return absl::AbortedError(absl::StrFormat(
        "secagg client %u: only %u clients survived, threshold is %u", self_, survivors.size(),
        config_.threshold));
  }
  stage_ = Stage::kDone;  // whatever happens below, never answer again
  UnmaskResponse out;
  out.from = self_;
  out.self_mask_shares.push_back({self_, secrets_->own_b_share});
  secrets_->revealed_b.insert(self_);
  for (ClientId v : request.survivors) {
    auto it = secrets_->held.find(v);
    if (it == secrets_->held.end() || secrets_->revealed_b.count(v)) continue;
    out.self_mask_shares.push_back({v, it->second.second});
    secrets_->revealed_b.insert(v);
  }
  for (ClientId v : request.dropped) {
    auto it = secrets_->held.find(v);
    if (it == secrets_->held.end() || secrets_->revealed_s.count(v)) continue;
    out.key_shares.push_back({v, it->second.first});
    secrets_->revealed_s.insert(v);
  }
  return out;
}

}  // namespace braid::secagg
