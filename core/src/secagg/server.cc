#include "braid/core/secagg/server.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "braid/core/secagg/quantize.h"
#include "braid/core/status_macros.h"
#include "crypto.h"
#include "shamir.h"

namespace braid::secagg {

Server::Server(const RoundConfig& config, const ServerOptions& options)
    : config_(config), options_(options), graph_(config) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const RoundConfig& config,
                                                       const ServerOptions& options) {
  BRAID_RETURN_IF_ERROR(EnsureSodium());
  BRAID_RETURN_IF_ERROR(ValidateRoundConfig(config));
  if (options.unmask_threads < 1 || options.unmask_threads > 256) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg server: unmask_threads must be in [1, 256], got %d", options.unmask_threads));
  }
  return std::unique_ptr<Server>(new Server(config, options));
}

absl::Status Server::Expect(Stage stage, const char* call) const {
  if (stage_ != stage) {
    return absl::FailedPreconditionError(
        absl::StrFormat("secagg server: %s called out of order", call));
  }
  return absl::OkStatus();
}

absl::Status Server::Abort(const char* stage, size_t remaining) const {
  return absl::AbortedError(absl::StrFormat(
      "secure aggregation round %u failed at %s: only %u of %u clients remain, threshold is %u",
      config_.round_id, stage, remaining, config_.clients.size(), config_.threshold));
}

absl::Status Server::AddPublicKeys(const PublicKeys& keys) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kAdvertise, "AddPublicKeys"));
  if (!graph_.Contains(keys.id)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg server: client %u is not in the cohort", keys.id));
  }
  if (!u1_.emplace(keys.id, keys).second) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg server: client %u advertised keys twice", keys.id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<ClientId, KeyDirectory>> Server::CloseAdvertiseKeys() {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kAdvertise, "CloseAdvertiseKeys"));
  if (u1_.size() < config_.threshold) {
    stage_ = Stage::kDone;
    return Abort("AdvertiseKeys", u1_.size());
  }
  std::map<ClientId, KeyDirectory> out;
  for (const auto& [id, keys] : u1_) {
    KeyDirectory& dir = out[id];
    for (ClientId v : graph_.Neighbours(id)) {
      auto it = u1_.find(v);
      if (it != u1_.end()) dir.keys.push_back(it->second);
    }
    dir.keys.push_back(keys);
    std::sort(dir.keys.begin(), dir.keys.end(),
              [](const PublicKeys& a, const PublicKeys& b) { return a.id < b.id; });
  }
  stage_ = Stage::kShare;
  return out;
}

absl::Status Server::AddEncryptedShares(const EncryptedShares& shares) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kShare, "AddEncryptedShares"));
  if (!u1_.count(shares.from)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg server: client %u sent shares without advertising keys", shares.from));
  }
  if (u2_.count(shares.from)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg server: client %u sent shares twice", shares.from));
  }
  std::set<ClientId> recipients;
  for (const EncryptedShare& s : shares.shares) {
    if (s.from != shares.from || !u1_.count(s.to) || !graph_.AreNeighbours(s.from, s.to) ||
        !recipients.insert(s.to).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg server: client %u sent a share from %u to %u that it may not send",
          shares.from, s.from, s.to));
    }
  }
  for (const EncryptedShare& s : shares.shares) inbox_[s.to].push_back(s);
  u2_.insert(shares.from);
  return absl::OkStatus();
}

absl::StatusOr<std::map<ClientId, ForwardedShares>> Server::CloseShareKeys() {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kShare, "CloseShareKeys"));
  if (u2_.size() < config_.threshold) {
    stage_ = Stage::kDone;
    return Abort("ShareKeys", u2_.size());
  }
  std::map<ClientId, ForwardedShares> out;
  for (ClientId u : u2_) {
    ForwardedShares& f = out[u];
    f.to = u;
    for (EncryptedShare& s : inbox_[u]) {
      if (u2_.count(s.from)) f.shares.push_back(std::move(s));
    }
  }
  inbox_.clear();
  sum_.assign(config_.vector_length, 0);
  stage_ = Stage::kMask;
  return out;
}

absl::Status Server::AddMaskedInput(const MaskedInput& input) {
  return AddMaskedInput(input.from, input.values.data(), input.values.size() * sizeof(uint32_t));
}

absl::Status Server::AddMaskedInput(ClientId from, const void* values, size_t bytes) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kMask, "AddMaskedInput"));
  if (!u2_.count(from)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg server: client %u sent a masked input without sharing keys", from));
  }
  if (u3_.count(from)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg server: client %u sent a masked input twice", from));
  }
  if (bytes != config_.vector_length * sizeof(uint32_t)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg server: client %u sent %u values, the round expects %u", from,
        bytes / sizeof(uint32_t), config_.vector_length));
  }
  // memcpy a block at a time: `values` may be any buffer (e.g. one received
  // as float32 storage), read as little-endian uint32.
  constexpr size_t kBlock = 4096;
  uint32_t block[kBlock];
  const auto* src = static_cast<const unsigned char*>(values);
  uint32_t* sum = sum_.data();
  for (size_t start = 0; start < sum_.size(); start += kBlock) {
    const size_t n = std::min(kBlock, sum_.size() - start);
    std::memcpy(block, src + start * sizeof(uint32_t), n * sizeof(uint32_t));
    AddWords(+1, sum + start, block, n);
  }
  u3_.insert(from);
  return absl::OkStatus();
}

absl::StatusOr<UnmaskRequest> Server::CloseMaskedInput() {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kMask, "CloseMaskedInput"));
  if (u3_.size() < config_.threshold) {
    stage_ = Stage::kDone;
    return Abort("MaskedInput", u3_.size());
  }
  UnmaskRequest request;
  request.survivors.assign(u3_.begin(), u3_.end());
  for (ClientId v : u2_) {
    if (!u3_.count(v)) dropped_.push_back(v);
  }
  request.dropped = dropped_;
  stage_ = Stage::kUnmask;
  return request;
}

absl::Status Server::AddUnmaskResponse(const UnmaskResponse& response) {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kUnmask, "AddUnmaskResponse"));
  const ClientId from = response.from;
  if (!u3_.count(from)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg server: client %u answered unmasking without a masked input", from));
  }
  if (u4_.count(from)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("secagg server: client %u answered unmasking twice", from));
  }
  std::set<ClientId> b_owners, s_owners;
  for (const RevealedShare& s : response.self_mask_shares) {
    if (!b_owners.insert(s.owner).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg server: client %u revealed two mask-seed shares of client %u", from, s.owner));
    }
    if (!u3_.count(s.owner) || (s.owner != from && !graph_.AreNeighbours(from, s.owner))) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg server: client %u revealed a mask-seed share of client %u it cannot hold", from,
          s.owner));
    }
  }
  for (const RevealedShare& s : response.key_shares) {
    if (!s_owners.insert(s.owner).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg server: client %u revealed two key shares of client %u", from, s.owner));
    }
    if (!std::binary_search(dropped_.begin(), dropped_.end(), s.owner) ||
        !graph_.AreNeighbours(from, s.owner)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "secagg server: client %u revealed a key share of client %u it cannot hold", from,
          s.owner));
    }
  }
  for (const RevealedShare& s : response.self_mask_shares) {
    b_shares_[s.owner].push_back({from, s.share});
  }
  for (const RevealedShare& s : response.key_shares) s_shares_[s.owner].push_back({from, s.share});
  u4_.insert(from);
  return absl::OkStatus();
}

namespace {

absl::StatusOr<Scalar> Rebuild(const char* what, ClientId owner, uint32_t threshold,
                               std::vector<std::pair<uint32_t, Bytes32>>* shares) {
  if (shares->size() < threshold) {
    return absl::AbortedError(absl::StrFormat(
        "secure aggregation failed at Unmasking: only %u holders revealed the %s of client %u, "
        "threshold is %u", shares->size(), what, owner, threshold));
  }
  shares->resize(threshold);
  return ShamirCombine(*shares);
}

}  // namespace

absl::StatusOr<AggregateResult> Server::Finish() {
  BRAID_RETURN_IF_ERROR(Expect(Stage::kUnmask, "Finish"));
  stage_ = Stage::kDone;
  std::vector<SignedSeed> seeds;  // every mask to strip from the sum
  for (ClientId u : u3_) {
    BRAID_ASSIGN_OR_RETURN(Scalar b, Rebuild("mask seed", u, config_.threshold, &b_shares_[u]));
    seeds.push_back({SelfSeed(b, config_.round_id), -1});
  }
  for (ClientId v : dropped_) {
    BRAID_ASSIGN_OR_RETURN(Scalar s, Rebuild("masking key", v, config_.threshold, &s_shares_[v]));
    const X25519KeyPair kp = MaskingKeyFromScalar(s);
    if (kp.public_key != u1_[v].masking_key) {
      return absl::AbortedError(absl::StrFormat(
          "secure aggregation failed at Unmasking: the masking key rebuilt for client %u does not "
          "match the one it advertised (a holder revealed a bad share)", v));
    }
    // Every survivor w that neighbours v masked with +PRG(s_wv) if w < v, else -PRG.
    for (ClientId w : graph_.Neighbours(v)) {
      if (!u3_.count(w)) continue;
      BRAID_ASSIGN_OR_RETURN(Key32 seed, PairSeed(kp, u1_[w].masking_key, config_.round_id));
      seeds.push_back({seed, w < v ? -1 : +1});
    }
  }
  AddMasks(seeds, absl::MakeSpan(sum_), options_.unmask_threads);
  AggregateResult result;
  result.contributors.assign(u3_.begin(), u3_.end());
  BRAID_ASSIGN_OR_RETURN(result.sum,
                         DequantizeSum(config_.quantization, sum_,
                                       static_cast<uint32_t>(u3_.size())));
  return result;
}

}  // namespace braid::secagg
