// The limits and timings of the link and the service: rate limiter,
// back-off, renewal time.
#include "rate_limiter.h"

#include "link_timing.h"
#include "gtest/gtest.h"

namespace braid::federation {
namespace {

TEST(RateLimiterTest, BurstThenOnePerRefillPerKey) {
  RateLimiter limiter(RateLimit{2, absl::Minutes(1)});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Allow("st-mary", t0));
  EXPECT_TRUE(limiter.Allow("st-mary", t0));
  EXPECT_FALSE(limiter.Allow("st-mary", t0));
  EXPECT_TRUE(limiter.Allow("charite", t0)) << "another site has its own bucket";
  EXPECT_FALSE(limiter.Allow("st-mary", t0 + absl::Seconds(59)));
  EXPECT_TRUE(limiter.Allow("st-mary", t0 + absl::Seconds(61)));
}

TEST(RateLimiterTest, InventedNamesCannotGrowItWithoutBound) {
  RateLimiter limiter(RateLimit{1, absl::Minutes(1)}, /*max_keys=*/2);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Allow("a", t0));
  EXPECT_TRUE(limiter.Allow("b", t0));
  EXPECT_FALSE(limiter.Allow("c", t0)) << "two partly spent buckets held";
  // Once a bucket has refilled it is forgotten, making room.
  EXPECT_TRUE(limiter.Allow("c", t0 + absl::Minutes(2)));
}

TEST(BackoffTest, DoublesUpToTheCapWithJitterAndResets) {
  Backoff backoff(absl::Seconds(1), absl::Seconds(8), /*seed=*/7);
  const absl::Duration expected[] = {absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                     absl::Seconds(8), absl::Seconds(8)};
  for (absl::Duration d : expected) {
    const absl::Duration got = backoff.Next();
    EXPECT_GE(got, d / 2);
    EXPECT_LE(got, d);
  }
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Seconds(1));
}

TEST(RenewAtTest, TwoThirdsIntoTheValidity) {
  pki::CertInfo cert;
  cert.not_before = absl::FromUnixSeconds(0);
  cert.not_after = absl::FromUnixSeconds(0) + absl::Hours(24);
  EXPECT_EQ(RenewAt(cert), absl::FromUnixSeconds(0) + absl::Hours(16));
}

}  // namespace
}  // namespace braid::federation
