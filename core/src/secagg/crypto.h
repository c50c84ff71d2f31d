// Key derivation, mask expansion and share encryption for secure aggregation,
// with libsodium, and OpenSSL for the PRG (internal to braid_core_privacy).
//   masking key:  scalar s (a Shamir-shareable field element) -> X25519 secret
//                 key = BLAKE2b-256("braid/secagg/sk" || s), public = X25519 base
//   pair seed:    BLAKE2b-256(X25519(sk_u, pk_v) || pk_lo || pk_hi || round)
//   self seed:    BLAKE2b-256("braid/secagg/b" || b || round)
//   PRG:          AES-128-CTR (OpenSSL EVP, AES-NI where the CPU has it) keyed
//                 by the seed's first 16 bytes, counter from 0 (every seed
//                 is used once);
//                 keystream read as little-endian uint32 ring elements
//   shares:       crypto_box (X25519 + XSalsa20-Poly1305), random nonce prefixed;
//                 each pair's X25519 computed once (BoxKey)
#ifndef BRAID_CORE_SRC_SECAGG_CRYPTO_H_
#define BRAID_CORE_SRC_SECAGG_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "shamir.h"

namespace braid::secagg {

using Key32 = std::array<unsigned char, 32>;

absl::Status EnsureSodium();

struct X25519KeyPair {
  Key32 secret_key;
  Key32 public_key;
};

// The masking key pair that `s` stands for.
X25519KeyPair MaskingKeyFromScalar(const Scalar& s);
// A fresh encryption key pair (crypto_box).
X25519KeyPair NewBoxKeyPair();

// Both ends of a pair compute the same seed. kInvalidArgument if `their_pk`
// is a low-order point (X25519 gives all zeros).
absl::StatusOr<Key32> PairSeed(const X25519KeyPair& mine, const Key32& their_pk,
                               uint64_t round_id);
Key32 SelfSeed(const Scalar& b, uint64_t round_id);

// acc[i] += add[i] (sign > 0) or acc[i] -= add[i] for i < words, mod 2^32;
// acc and add do not overlap.
void AddWords(int sign, uint32_t* acc, const uint32_t* add, size_t words);

// acc[i] += sign * PRG(seed)[i] mod 2^32, sign = +1 or -1.
void AddMask(const Key32& seed, int sign, absl::Span<uint32_t> acc);

struct SignedSeed {
  Key32 seed;
  int sign;  // +1 or -1
};
// AddMask for every seed, fused: each 16 KiB slice of `acc` gets all masks
// while it sits in cache. With threads > 1 the vector is split into that many
// contiguous ranges, one thread each (the CTR counter lets each range start
// mid-stream). Same result as calling AddMask per seed.
void AddMasks(absl::Span<const SignedSeed> seeds, absl::Span<uint32_t> acc, int threads);

// The crypto_box key of a pair (crypto_box_beforenm): the same from both
// ends, so each neighbour's X25519 runs once per round however many boxes
// go between them. kInvalidArgument if their_pk is a low-order point.
absl::StatusOr<Key32> BoxKey(const Key32& their_pk, const Key32& my_sk);
// crypto_box of `plaintext` under a pair's BoxKey; nonce first.
std::string BoxSeal(absl::string_view plaintext, const Key32& box_key);
// kPermissionDenied if the ciphertext was not made under `box_key` (by the
// other end of the pair), or was altered.
absl::StatusOr<std::string> BoxOpen(absl::string_view ciphertext, const Key32& box_key);

}  // namespace braid::secagg

#endif  // BRAID_CORE_SRC_SECAGG_CRYPTO_H_
