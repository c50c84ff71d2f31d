// The messages of a secure-aggregation round (Bonawitz et al. 2017, semi-honest
// variant; SecAgg+ graph mode from Bell et al. 2020), as plain structs with a
// byte encoding so that they can travel in protobuf `bytes` fields.
//
// Flow (C = client, S = server), one message of each kind per client:
//   0 AdvertiseKeys   C -> S   PublicKeys
//                     S -> C   KeyDirectory   (the keys of C's neighbours and C)
//   1 ShareKeys       C -> S   EncryptedShares (one per neighbour, encrypted to it)
//                     S -> C   ForwardedShares (those addressed to C)
//   2 MaskedInput     C -> S   MaskedInput
//                     S -> C   UnmaskRequest  (who survived, who dropped)
//   3 Unmasking       C -> S   UnmaskResponse (b-shares of survivors, s-shares of the dropped)
//
// Encoding: "BSA", a version byte, a kind byte, then fields little-endian
// (u32 counts and lengths). Decode* accept exactly what Encode wrote: a wrong
// magic, version or kind, truncation, trailing bytes, or a count beyond the
// bytes present is kInvalidArgument naming the message; never a crash.
// Sizes: PublicKeys 73 B; an encrypted share 92 B; MaskedInput 13 + 4m B.
#ifndef BRAID_CORE_SECAGG_MESSAGES_H_
#define BRAID_CORE_SECAGG_MESSAGES_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "braid/core/secagg/round_config.h"

namespace braid::secagg {

using Bytes32 = std::array<unsigned char, 32>;

struct PublicKeys {
  ClientId id = 0;
  Bytes32 encryption_key{};  // crypto_box public key: shares to this client are sealed to it
  Bytes32 masking_key{};     // X25519 public key: pairwise mask seeds are agreed with it
};

struct KeyDirectory {
  std::vector<PublicKeys> keys;  // sorted by id
};

struct EncryptedShare {
  ClientId from = 0;
  ClientId to = 0;
  std::string ciphertext;  // crypto_box of (from, to, round, s-share, b-share)
};

struct EncryptedShares {
  ClientId from = 0;
  std::vector<EncryptedShare> shares;
};

struct ForwardedShares {
  ClientId to = 0;
  std::vector<EncryptedShare> shares;
};

struct MaskedInput {
  ClientId from = 0;
  std::vector<uint32_t> values;  // quantized update + masks, mod 2^32
};

struct UnmaskRequest {
  std::vector<ClientId> survivors;  // sent a masked input: reveal their b-shares
  std::vector<ClientId> dropped;    // shared keys but sent no input: reveal their s-shares
};

struct RevealedShare {
  ClientId owner = 0;  // whose secret this is a share of
  Bytes32 share{};
};

struct UnmaskResponse {
  ClientId from = 0;
  std::vector<RevealedShare> self_mask_shares;  // of b_u, u a survivor
  std::vector<RevealedShare> key_shares;        // of s_v, v dropped
};

std::string Encode(const PublicKeys& m);
std::string Encode(const KeyDirectory& m);
std::string Encode(const EncryptedShares& m);
std::string Encode(const ForwardedShares& m);
std::string Encode(const MaskedInput& m);
std::string Encode(const UnmaskRequest& m);
std::string Encode(const UnmaskResponse& m);

absl::StatusOr<PublicKeys> DecodePublicKeys(absl::string_view bytes);
absl::StatusOr<KeyDirectory> DecodeKeyDirectory(absl::string_view bytes);
absl::StatusOr<EncryptedShares> DecodeEncryptedShares(absl::string_view bytes);
absl::StatusOr<ForwardedShares> DecodeForwardedShares(absl::string_view bytes);
absl::StatusOr<MaskedInput> DecodeMaskedInput(absl::string_view bytes);
absl::StatusOr<UnmaskRequest> DecodeUnmaskRequest(absl::string_view bytes);
absl::StatusOr<UnmaskResponse> DecodeUnmaskResponse(absl::string_view bytes);

}  // namespace braid::secagg

#endif  // BRAID_CORE_SECAGG_MESSAGES_H_
