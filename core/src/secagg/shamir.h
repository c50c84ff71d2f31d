// Shamir secret sharing over the prime field of the Ed25519 group order
// L = 2^252 + 27742317777372353535851937790883648493, with libsodium's
// crypto_core_ed25519_scalar_* arithmetic (internal to braid_core_privacy).
//
// Why this field: one 32-byte element holds a whole secret with ~252 bits of
// entropy (the mask seed b_u and the masking key s_u are *generated* as field
// elements and hashed into the 32-byte keys they stand for), and libsodium
// provides reduction, multiplication and inversion, so no field code is
// hand-written. A 61-bit field would need each 32-byte secret split in five.
#ifndef BRAID_CORE_SRC_SECAGG_SHAMIR_H_
#define BRAID_CORE_SRC_SECAGG_SHAMIR_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::secagg {

// A field element, little-endian, always reduced mod L.
using Scalar = std::array<unsigned char, 32>;

Scalar RandomScalar();
Scalar ScalarFromUint(uint64_t v);

// Splits `secret` into shares f(x) for x in `holders` (distinct, nonzero),
// where f is a random polynomial of degree threshold - 1 with f(0) = secret.
// Any `threshold` shares give the secret back; fewer reveal nothing.
// Precondition: 1 <= threshold <= holders.size().
std::vector<Scalar> ShamirSplit(const Scalar& secret, uint32_t threshold,
                                absl::Span<const uint32_t> holders);

// Lagrange interpolation at 0 of (x, share) pairs; uses all pairs given (pass
// exactly `threshold` of them). kInvalidArgument if an x is 0 or repeated.
absl::StatusOr<Scalar> ShamirCombine(absl::Span<const std::pair<uint32_t, Scalar>> shares);

}  // namespace braid::secagg

#endif  // BRAID_CORE_SRC_SECAGG_SHAMIR_H_
