#include "central_noise.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/strategy.h"

namespace braid::aggregator {

absl::Status CentralNoise::Add(int round, absl::Span<float> sum) {
  if (dp_.noise_seed != 0) {
    sampler_.reset();  // a fresh seeded stream per round: reproducible rounds
    absl::StatusOr<dp::GaussianSampler> seeded =
        dp::GaussianSampler::Seeded(dp_.noise_seed * 1000003u + static_cast<uint64_t>(round));
    if (seeded.ok()) sampler_.emplace(*std::move(seeded));
  } else if (!sampler_.has_value()) {
    absl::StatusOr<dp::GaussianSampler> secure = dp::GaussianSampler::Secure();
    if (!secure.ok()) {
      return WithReason(absl::UnavailableError(absl::StrCat("round ", round, ": no noise source: ",
                                                            secure.status().message())),
                        "PrivacyNoiseFailed");
    }
    sampler_.emplace(*std::move(secure));
  }
  if (!sampler_.has_value()) {
    return WithReason(
        absl::UnavailableError(absl::StrCat("round ", round, ": cannot seed the noise source")),
        "PrivacyNoiseFailed");
  }
  sampler_->AddNoise(sum, dp::CentralNoiseStddev(dp_.noise_multiplier, dp_.clip_norm));
  return absl::OkStatus();
}

}  // namespace braid::aggregator
