#include "shamir.h"

#include <sodium.h>

#include <algorithm>
#include <random>

#include "gtest/gtest.h"

namespace braid::secagg {
namespace {

TEST(Shamir, AnyThresholdSubsetRebuildsTheSecretAndFewerDoNot) {
  ASSERT_GE(sodium_init(), 0);
  const std::vector<uint32_t> holders = {3, 9, 14, 15, 22, 40, 41};
  std::mt19937 rng(1);
  for (uint32_t t : {2u, 4u, 7u}) {
    const Scalar secret = RandomScalar();
    const std::vector<Scalar> shares = ShamirSplit(secret, t, holders);
    for (int trial = 0; trial < 5; ++trial) {
      std::vector<size_t> idx(holders.size());
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
      std::shuffle(idx.begin(), idx.end(), rng);
      std::vector<std::pair<uint32_t, Scalar>> subset;
      for (uint32_t i = 0; i < t; ++i) subset.push_back({holders[idx[i]], shares[idx[i]]});
      auto got = ShamirCombine(subset);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, secret) << "t=" << t;
      subset.pop_back();
      if (!subset.empty()) {
        EXPECT_NE(*ShamirCombine(subset), secret) << "t-1 shares, t=" << t;
      }
    }
  }
}

TEST(Shamir, RejectsRepeatedOrZeroHolders) {
  const Scalar s = RandomScalar();
  EXPECT_EQ(ShamirCombine({{{1, s}, {1, s}}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirCombine({{{0, s}}}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::secagg
