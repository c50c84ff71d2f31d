#include "braid/aggregator/fedavg.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

// Deterministic values over several orders of magnitude and both signs, so
// the float accumulation sees realistic dynamic range.
std::vector<float> RandomValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-3.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * std::pow(10.0f, exponent(rng));
  return v;
}

double DirectSumOfSquares(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += static_cast<double>(x) * x;
  return s;
}

// Within 4 ulps elementwise (the reference may round differently, e.g. with
// FMA contraction under -march flags).
void ExpectFloatsEq(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], want[i]) << "element " << i;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class FedAvgTest : public ::testing::TestWithParam<size_t> {};

// Sizes around and away from the vector width, lane count and block size.
INSTANTIATE_TEST_SUITE_P(Sizes, FedAvgTest,
                         ::testing::Values(0, 1, 7, 15, 16, 17, 1023, 1024, 1025, 4099, 1000003));

TEST_P(FedAvgTest, WeightedAverageMatchesDoublePrecision) {
  const size_t n = GetParam();
  const std::vector<float> weights = {1.0f, 10.0f, 3.5f, 250.0f};
  const std::vector<float> base = RandomValues(n, 7);
  std::vector<std::vector<float>> updates;
  for (size_t k = 0; k < weights.size(); ++k) updates.push_back(RandomValues(n, 100 + k));

  std::vector<float> sum(n, 0.0f);
  double total_weight = 0.0;
  for (size_t k = 0; k < weights.size(); ++k) {
    const double sq = FoldWeighted(sum.data(), updates[k].data(), n, weights[k]);
    const double want = DirectSumOfSquares(updates[k]);
    EXPECT_NEAR(sq, want, 1e-6 * want) << "client " << k << ", n = " << n;
    total_weight += weights[k];
  }
  std::vector<float> out(n);
  ApplyAverage(out.data(), base.data(), sum.data(), n, 1.0 / total_weight);

  for (size_t i = 0; i < n; ++i) {
    double want = 0.0, magnitude = 0.0;
    for (size_t k = 0; k < weights.size(); ++k) {
      want += static_cast<double>(weights[k]) * updates[k][i];
      magnitude += static_cast<double>(weights[k]) * std::fabs(updates[k][i]);
    }
    want = base[i] + want / total_weight;
    magnitude = std::fabs(base[i]) + magnitude / total_weight;
    // Relative to the magnitude of the terms: cancellation between clients
    // can make `want` itself arbitrarily small.
    ASSERT_NEAR(out[i], want, 1e-6 * magnitude) << "element " << i << " of " << n;
  }

  // The aggregator applies in place (out == sum): same bits as out-of-place.
  std::vector<float> in_place = sum;
  ApplyAverage(in_place.data(), base.data(), in_place.data(), n, 1.0 / total_weight);
  EXPECT_TRUE(SameBits(in_place, out));
}

TEST_P(FedAvgTest, ApplyAverageEveryAliasingGivesTheSameResult) {
  const size_t n = GetParam();
  const std::vector<float> base = RandomValues(n, 1);
  const std::vector<float> sum = RandomValues(n, 2);
  const double scale = 1.0 / 3.0;
  std::vector<float> want(n);
  for (size_t i = 0; i < n; ++i) {
    want[i] =
        static_cast<float>(static_cast<double>(base[i]) + static_cast<double>(sum[i]) * scale);
  }
  std::vector<float> out(n);
  ApplyAverage(out.data(), base.data(), sum.data(), n, scale);
  ExpectFloatsEq(out, want);

  std::vector<float> into_sum = sum;
  ApplyAverage(into_sum.data(), base.data(), into_sum.data(), n, scale);
  EXPECT_TRUE(SameBits(into_sum, out));

  std::vector<float> into_base = base;
  ApplyAverage(into_base.data(), into_base.data(), sum.data(), n, scale);
  EXPECT_TRUE(SameBits(into_base, out));

  std::vector<float> all = sum;
  std::vector<float> all_want(n);
  for (size_t i = 0; i < n; ++i) all_want[i] = static_cast<float>(sum[i] + sum[i] * scale);
  ApplyAverage(all.data(), all.data(), all.data(), n, scale);
  ExpectFloatsEq(all, all_want);
}

TEST(FoldWeightedTest, UnalignedBuffersAndZeroWeight) {
  const size_t n = 1001;
  const std::vector<float> update = RandomValues(n + 3, 5);
  for (size_t shift = 0; shift < 4; ++shift) {
    std::vector<float> storage(n + 4, 1.0f);
    float* sum = storage.data() + (3 - shift);
    const float* u = update.data() + shift;
    double want_sq = 0.0;
    for (size_t i = 0; i < n; ++i) want_sq += static_cast<double>(u[i]) * u[i];

    EXPECT_NEAR(FoldWeighted(sum, u, n, 0.0f), want_sq, 1e-6 * want_sq);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(sum[i], 1.0f);  // weight 0: sum unchanged

    EXPECT_NEAR(FoldWeighted(sum, u, n, 2.0f), want_sq, 1e-6 * want_sq);
    for (size_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(sum[i], 1.0f + 2.0f * u[i]) << i;
    // Neighbours outside [0, n) untouched.
    EXPECT_EQ(storage[(3 - shift) + n], 1.0f);
    if (shift < 3) {
      EXPECT_EQ(storage[(3 - shift) - 1], 1.0f);
    }
  }
}

TEST(FoldWeightedTest, EmptyIsZeroAndTouchesNothing) {
  EXPECT_EQ(FoldWeighted(nullptr, nullptr, 0, 1.0f), 0.0);
  ApplyAverage(nullptr, nullptr, nullptr, 0, 1.0);
}

TEST(SumSquaresTest, MatchesDoublePrecisionAndFindsEveryNonFiniteValue) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  // Sizes around the lane (16) and block (1024) boundaries, and a tail.
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1023}, size_t{1024},
                   size_t{1041}, size_t{70001}}) {
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    double expected = 0;
    for (float v : x) expected += static_cast<double>(v) * v;
    bool finite = false;
    EXPECT_NEAR(SumSquares(x.data(), n, &finite), expected, 1e-6 * (1 + expected)) << n;
    EXPECT_TRUE(finite) << n;
    // One bad value anywhere: first, last, and inside a lane run.
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      if (n == 0) break;
      for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
        const float kept = x[at];
        x[at] = bad;
        finite = true;
        SumSquares(x.data(), n, &finite);
        EXPECT_FALSE(finite) << "n=" << n << " at=" << at << " value=" << bad;
        x[at] = kept;
      }
    }
  }
  // Huge but finite values are finite (their squares overflow; the norm
  // bound, not this check, refuses them).
  std::vector<float> big(100, 3e38f);
  bool finite = false;
  SumSquares(big.data(), big.size(), &finite);
  EXPECT_TRUE(finite);
}

// How the aggregator copies a received frame's values into the upload: from
// any byte alignment, the copy is exact and the checks are SumSquares' own.
TEST(CopySumSquaresTest, CopiesFromAnyAlignmentAndChecksLikeSumSquares) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (size_t n : {size_t{0}, size_t{1}, size_t{17}, size_t{1024}, size_t{5000}}) {
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    bool finite = false;
    const double expected = SumSquares(x.data(), n, &finite);
    for (size_t misalign : {size_t{0}, size_t{1}, size_t{3}}) {
      std::vector<char> frame(n * sizeof(float) + misalign);
      if (n > 0) std::memcpy(frame.data() + misalign, x.data(), n * sizeof(float));
      std::vector<float> copy(n, -1.0f);
      bool copied_finite = false;
      EXPECT_EQ(CopySumSquares(copy.data(), frame.data() + misalign, n, &copied_finite), expected)
          << "n=" << n << " misalign=" << misalign;
      EXPECT_TRUE(copied_finite);
      EXPECT_EQ(copy, x) << "n=" << n << " misalign=" << misalign;
      if (n == 0) continue;
      const float nan = std::nanf("");
      std::memcpy(frame.data() + misalign + (n - 1) * sizeof(float), &nan, sizeof(nan));
      CopySumSquares(copy.data(), frame.data() + misalign, n, &copied_finite);
      EXPECT_FALSE(copied_finite) << "n=" << n << " misalign=" << misalign;
    }
  }
}

}  // namespace
}  // namespace braid::aggregator

namespace braid::aggregator {
namespace {

TEST(SumSquaresTest, TheNormOfHugeFiniteValuesIsFinite) {
  // Squares of 1e30 overflow float (the lanes' accumulators) but not
  // double: the block is summed again in double, in every code path.
  for (size_t n : {size_t{5}, size_t{40}, size_t{1024}, size_t{3000}}) {
    std::vector<float> v(n, 1e30f);
    v[n / 2] = 3e38f;
    const double want = DirectSumOfSquares(v);
    bool all_finite = false;
    EXPECT_NEAR(SumSquares(v.data(), n, &all_finite), want, want * 1e-6) << n;
    EXPECT_TRUE(all_finite);
    std::vector<float> copy(n);
    EXPECT_NEAR(CopySumSquares(copy.data(), v.data(), n, &all_finite), want, want * 1e-6) << n;
    EXPECT_EQ(copy, v);
    std::vector<float> sum(n, 0.0f);
    EXPECT_NEAR(FoldWeighted(sum.data(), v.data(), n, 0.5f), want, want * 1e-6) << n;
    EXPECT_EQ(sum[0], 0.5e30f);
  }
  // Not finite stays not finite.
  std::vector<float> bad(40, 1e30f);
  bad[20] = std::numeric_limits<float>::infinity();
  bool all_finite = true;
  EXPECT_FALSE(std::isfinite(SumSquares(bad.data(), bad.size(), &all_finite)));
  EXPECT_FALSE(all_finite);
}

}  // namespace
}  // namespace braid::aggregator
