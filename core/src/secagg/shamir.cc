#include "shamir.h"

#include <sodium.h>

#include "absl/strings/str_format.h"

namespace braid::secagg {

Scalar RandomScalar() {
  Scalar s;
  crypto_core_ed25519_scalar_random(s.data());
  return s;
}

Scalar ScalarFromUint(uint64_t v) {
  Scalar s{};
  for (int i = 0; i < 8; ++i) s[i] = static_cast<unsigned char>(v >> (8 * i));
  return s;
}

std::vector<Scalar> ShamirSplit(const Scalar& secret, uint32_t threshold,
                                absl::Span<const uint32_t> holders) {
  std::vector<Scalar> coeffs(threshold);
  coeffs[0] = secret;
  for (uint32_t i = 1; i < threshold; ++i) coeffs[i] = RandomScalar();
  std::vector<Scalar> shares;
  shares.reserve(holders.size());
  for (uint32_t x : holders) {
    const Scalar xs = ScalarFromUint(x);
    Scalar acc = coeffs[threshold - 1];  // Horner
    for (int i = static_cast<int>(threshold) - 2; i >= 0; --i) {
      crypto_core_ed25519_scalar_mul(acc.data(), acc.data(), xs.data());
      crypto_core_ed25519_scalar_add(acc.data(), acc.data(), coeffs[i].data());
    }
    shares.push_back(acc);
  }
  sodium_memzero(coeffs.data(), coeffs.size() * sizeof(Scalar));
  return shares;
}

absl::StatusOr<Scalar> ShamirCombine(absl::Span<const std::pair<uint32_t, Scalar>> shares) {
  if (shares.empty()) return absl::InvalidArgumentError("shamir: no shares to combine");
  for (size_t i = 0; i < shares.size(); ++i) {
    if (shares[i].first == 0) return absl::InvalidArgumentError("shamir: share with x = 0");
    for (size_t j = 0; j < i; ++j) {
      if (shares[i].first == shares[j].first) {
        return absl::InvalidArgumentError(
            absl::StrFormat("shamir: two shares from holder %u", shares[i].first));
      }
    }
  }
  Scalar result{};
  for (size_t i = 0; i < shares.size(); ++i) {
    // lambda_i = prod_{j != i} x_j / (x_j - x_i)
    Scalar num = ScalarFromUint(1), den = ScalarFromUint(1);
    const Scalar xi = ScalarFromUint(shares[i].first);
    for (size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      const Scalar xj = ScalarFromUint(shares[j].first);
      Scalar diff;
      crypto_core_ed25519_scalar_sub(diff.data(), xj.data(), xi.data());
      crypto_core_ed25519_scalar_mul(num.data(), num.data(), xj.data());
      crypto_core_ed25519_scalar_mul(den.data(), den.data(), diff.data());
    }
    Scalar inv;
    if (crypto_core_ed25519_scalar_invert(inv.data(), den.data()) != 0) {
      return absl::InternalError("shamir: non-invertible Lagrange denominator");
    }
    Scalar term;
    crypto_core_ed25519_scalar_mul(term.data(), num.data(), inv.data());
    crypto_core_ed25519_scalar_mul(term.data(), term.data(), shares[i].second.data());
    crypto_core_ed25519_scalar_add(result.data(), result.data(), term.data());
  }
  return result;
}

}  // namespace braid::secagg
