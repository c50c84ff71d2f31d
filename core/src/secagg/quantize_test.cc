#include "braid/core/secagg/quantize.h"

#include <cmath>
#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::secagg {
namespace {

// Sums n encodings in the ring and checks the documented error bound.
void CheckSumBound(uint32_t n, Rounding rounding, double bound_in_steps) {
  QuantizationParams p;
  p.clip = 0.5;
  p.max_summands = n;
  p.rounding = rounding;
  std::mt19937 rng(n);
  std::uniform_real_distribution<float> dist(-0.6f, 0.6f);
  const size_t m = 2000;
  std::vector<uint32_t> sum(m, 0), enc;
  std::vector<double> want(m, 0);
  for (uint32_t c = 0; c < n; ++c) {
    std::vector<float> x(m);
    for (size_t i = 0; i < m; ++i) {
      x[i] = dist(rng);
      want[i] += std::clamp<double>(x[i], -p.clip, p.clip);
    }
    ASSERT_TRUE(Quantize(p, x, &enc).ok());
    for (size_t i = 0; i < m; ++i) sum[i] += enc[i];
  }
  auto got = DequantizeSum(p, sum, n);
  ASSERT_TRUE(got.ok()) << got.status();
  const double step = QuantizationStep(p);
  for (size_t i = 0; i < m; ++i) {
    ASSERT_LE(std::fabs((*got)[i] - want[i]),
              n * step * bound_in_steps + std::fabs(want[i]) * 0x1.0p-24)
        << "n=" << n << " element " << i;
  }
}

TEST(Quantize, NearestSumIsWithinHalfAStepPerSummand) {
  for (uint32_t n : {1u, 2u, 10u, 100u, 1000u}) CheckSumBound(n, Rounding::kNearest, 0.5);
}

TEST(Quantize, StochasticSumIsWithinOneStepPerSummand) {
  for (uint32_t n : {1u, 10u, 100u}) CheckSumBound(n, Rounding::kStochastic, 1.0);
}

TEST(Quantize, StochasticRoundingIsUnbiased) {
  QuantizationParams p;
  p.clip = 1;
  p.max_summands = 1u << 20;  // coarse steps make a bias visible
  p.rounding = Rounding::kStochastic;
  const double step = QuantizationStep(p);
  const float x = static_cast<float>(-1 + 0.3 * step);  // 0.3 of a step above level 0
  std::vector<float> v(200000, x);
  std::vector<uint32_t> enc;
  ASSERT_TRUE(Quantize(p, v, &enc).ok());
  double mean = 0;
  for (uint32_t e : enc) mean += e;
  mean /= enc.size();
  EXPECT_NEAR(mean, 0.3, 0.01);  // nearest rounding would give 0
}

TEST(Quantize, FullSumOfExtremesDoesNotWrap) {
  QuantizationParams p;
  p.clip = 3;
  p.max_summands = 7;
  std::vector<uint32_t> hi, lo;
  ASSERT_TRUE(Quantize(p, std::vector<float>{1e9f}, &hi).ok());
  ASSERT_TRUE(Quantize(p, std::vector<float>{-1e9f}, &lo).ok());
  EXPECT_EQ(hi[0], QuantizationLevels(p));
  EXPECT_EQ(lo[0], 0u);
  uint32_t sum = 0;
  for (int i = 0; i < 7; ++i) sum += hi[0];
  EXPECT_NEAR((*DequantizeSum(p, std::vector<uint32_t>{sum}, 7))[0], 21.0, 1e-5);
}

// In place (over float bit patterns) encodes as Quantize does: the same
// values for rounding to nearest, within one level for stochastic rounding.
TEST(Quantize, InPlaceEncodesAsQuantize) {
  QuantizationParams p;
  p.clip = 0.5;
  p.max_summands = 7;
  std::vector<float> x = {0.0f, -0.5f, 0.5f, 0.7f, -3.0f, 0.1234f, -0.25f, 1e-9f,
                          std::nanf(""), INFINITY, -INFINITY};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-0.6f, 0.6f);
  for (int i = 0; i < 1000; ++i) x.push_back(dist(rng));
  for (Rounding rounding : {Rounding::kNearest, Rounding::kStochastic}) {
    p.rounding = rounding;
    std::vector<uint32_t> want, io(x.size());
    ASSERT_TRUE(Quantize(p, x, &want).ok());
    std::memcpy(io.data(), x.data(), x.size() * sizeof(float));
    ASSERT_TRUE(QuantizeInPlace(p, absl::MakeSpan(io)).ok());
    for (size_t i = 0; i < x.size(); ++i) {
      if (rounding == Rounding::kNearest) {
        ASSERT_EQ(io[i], want[i]) << "element " << i << " = " << x[i];
      } else {
        ASSERT_LE(std::max(io[i], want[i]) - std::min(io[i], want[i]), 1u) << "element " << i;
      }
    }
  }
}

TEST(Quantize, RejectsBadParameters) {
  QuantizationParams p;
  p.clip = 0;
  std::vector<uint32_t> out;
  EXPECT_THAT(Quantize(p, std::vector<float>{1}, &out).message(),
              ::testing::HasSubstr("quantization.clip"));
  p.clip = 1;
  p.max_summands = 2;
  EXPECT_EQ(DequantizeSum(p, std::vector<uint32_t>{0}, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::secagg
