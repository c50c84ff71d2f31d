#include <cmath>
#include <vector>

#include "braid/core/dp/clip.h"
#include "braid/core/dp/gaussian_noise.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::dp {
namespace {

double Norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

TEST(Clip, ScalesDownToTheClipNormAndReturnsTheFactor) {
  std::vector<float> v = {3, 4};  // norm 5
  auto factor = ClipToL2Norm(absl::MakeSpan(v), 1.0);
  ASSERT_TRUE(factor.ok());
  EXPECT_DOUBLE_EQ(*factor, 0.2);
  EXPECT_NEAR(Norm(v), 1.0, 1e-6);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  std::vector<float> small = {0.1f, 0.2f};
  EXPECT_EQ(*ClipToL2Norm(absl::MakeSpan(small), 1.0), 1.0);
  EXPECT_FLOAT_EQ(small[1], 0.2f);
}

TEST(Clip, RejectsNonFiniteInputsAndBadNorms) {
  std::vector<float> v = {1, NAN};
  EXPECT_EQ(ClipToL2Norm(absl::MakeSpan(v), 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> w = {1};
  EXPECT_THAT(ClipToL2Norm(absl::MakeSpan(w), 0).status().message(),
              ::testing::HasSubstr("clipNorm"));
}

TEST(Clip, PartsAreClippedTogetherByOneFactor) {
  std::vector<float> a = {3}, b = {4};  // one update of norm 5 in two tensors
  const absl::Span<float> parts[] = {absl::MakeSpan(a), absl::MakeSpan(b)};
  auto factor = ClipToL2Norm(absl::MakeConstSpan(parts), 2.5);
  ASSERT_TRUE(factor.ok()) << factor.status();
  EXPECT_DOUBLE_EQ(*factor, 0.5);
  EXPECT_FLOAT_EQ(a[0], 1.5f);
  EXPECT_FLOAT_EQ(b[0], 2.0f);
  std::vector<float> bad = {INFINITY};
  const absl::Span<float> with_bad[] = {absl::MakeSpan(a), absl::MakeSpan(bad)};
  EXPECT_THAT(ClipToL2Norm(absl::MakeConstSpan(with_bad), 1.0).status().message(),
              ::testing::HasSubstr("element 1"));
  EXPECT_FLOAT_EQ(a[0], 1.5f);  // untouched on error
}

void ExpectMoments(const std::vector<float>& v, double stddev) {
  double mean = 0, var = 0;
  for (float x : v) mean += x;
  mean /= v.size();
  for (float x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 0, 6 * stddev / std::sqrt(v.size()));
  EXPECT_NEAR(std::sqrt(var), stddev, 0.01 * stddev);
}

TEST(GaussianNoise, SeededSamplerIsReproducibleWithTheRightMoments) {
  std::vector<float> a(200000, 0), b(200000, 0);
  auto sa = *GaussianSampler::Seeded(5);
  auto sb = *GaussianSampler::Seeded(5);
  sa.AddNoise(absl::MakeSpan(a), CentralNoiseStddev(0.8, 2.0));
  sb.AddNoise(absl::MakeSpan(b), 1.6);
  EXPECT_EQ(a, b);
  ExpectMoments(a, 1.6);
  auto sc = *GaussianSampler::Seeded(6);
  EXPECT_NE(sc.Next(), a[0]);
}

TEST(GaussianNoise, DistributedSharesSumToTheCentralNoise) {
  const uint32_t n = 16;
  const double z = 1.1, c = 0.5;
  std::vector<float> sum(100000, 0);
  auto rng = *GaussianSampler::Secure();
  for (uint32_t i = 0; i < n; ++i) {
    std::vector<float> share(sum.size(), 0);
    rng.AddNoise(absl::MakeSpan(share), DistributedNoiseStddev(z, c, n));
    for (size_t j = 0; j < sum.size(); ++j) sum[j] += share[j];
  }
  ExpectMoments(sum, CentralNoiseStddev(z, c));
}

}  // namespace
}  // namespace braid::dp
