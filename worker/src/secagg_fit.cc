#include "braid/worker/secagg_fit.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/core/dp/gaussian_noise.h"
#include "braid/core/log.h"
#include "braid/core/secagg/client.h"
#include "braid/core/secagg/messages.h"
#include "braid/core/status_macros.h"
#include "braid/core/vector_clones.h"

namespace braid::worker {
namespace {

constexpr absl::Duration kPollWait = absl::Seconds(10);

// out[i] = the bits of in[i] * weight; returns how many of these products
// exceed `beyond` in magnitude. Written for the vectorizer (-O3,
// worker/CMakeLists.txt) and kept out of line by BRAID_VECTOR_CLONES: a copy
// inlined into the caller's loop over tensors need not be vectorized.
BRAID_VECTOR_CLONES size_t ScaleToBits(const float* __restrict in, size_t n, float weight,
                                       float beyond, uint32_t* __restrict out) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float x = in[i] * weight;
    count += std::fabs(x) > beyond ? 1 : 0;
    std::memcpy(out + i, &x, sizeof(x));
  }
  return count;
}

// The largest float <= range: a float x has |x| > range exactly when
// |x| > FloatAtMost(range).
float FloatAtMost(double range) {
  const auto f = static_cast<float>(range);
  return static_cast<double>(f) > range ? std::nextafter(f, 0.0f) : f;
}

absl::StatusOr<secagg::RoundConfig> ConfigFrom(const v1::SecAggConfig& c) {
  secagg::RoundConfig config;
  config.round_id = c.round_id();
  config.clients.assign(c.cohort().begin(), c.cohort().end());
  config.threshold = c.threshold();
  config.neighbours = c.neighbours();
  config.graph_seed = c.graph_seed();
  config.vector_length = c.vector_length();
  config.quantization.clip = c.quantization_range();
  config.quantization.max_summands = c.max_summands();
  config.quantization.rounding = secagg::Rounding::kNearest;
  if (absl::Status s = secagg::ValidateRoundConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the task's secure-aggregation config is invalid: ", s.message()));
  }
  if (!std::isfinite(c.weight()) || c.weight() <= 0 || !std::isfinite(c.noise_stddev()) ||
      c.noise_stddev() < 0) {
    return absl::InvalidArgumentError(
        "the task's secure-aggregation weight must be > 0 and its noise stddev >= 0");
  }
  return config;
}

// Sends `payload` for `stage`, then polls until the stage closes; returns
// the answer's payload.
absl::StatusOr<std::string> Step(FederationClient& client, const std::string& client_id,
                                 const v1::TaskHeader& header, v1::SecAggStage stage,
                                 std::string payload) {
  v1::SecAggStepRequest req;
  req.set_client_id(client_id);
  req.set_round(header.round());
  req.set_round_id(header.secagg().round_id());
  req.set_stage(stage);
  req.set_payload(std::move(payload));
  req.set_wait_seconds(absl::ToDoubleSeconds(kPollWait));
  while (true) {
    BRAID_ASSIGN_OR_RETURN(v1::SecAggStepResponse resp, client.SecAggStep(req));
    if (!resp.pending()) return std::move(*resp.mutable_payload());
    req.clear_payload();  // sent once; from now on only wait
  }
}

}  // namespace

absl::Status RunSecAggFit(FederationClient& client, const std::string& client_id,
                          const v1::TaskHeader& header,
                          const std::function<absl::StatusOr<LocalUpdate>()>& train,
                          const SecAggFitOptions& options) {
  const v1::SecAggConfig& c = header.secagg();
  BRAID_ASSIGN_OR_RETURN(secagg::RoundConfig config, ConfigFrom(c));
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<secagg::Client> sa,
                         secagg::Client::Create(config, c.self_id()));
  const std::string who = absl::StrCat("worker ", options.name, ": round ", header.round(),
                                       ": secure aggregation: ");

  BRAID_ASSIGN_OR_RETURN(secagg::PublicKeys keys, sa->AdvertiseKeys());
  BRAID_ASSIGN_OR_RETURN(std::string dir_bytes,
                         Step(client, client_id, header, v1::SECAGG_STAGE_ADVERTISE_KEYS,
                              secagg::Encode(keys)));
  BRAID_ASSIGN_OR_RETURN(secagg::KeyDirectory directory, secagg::DecodeKeyDirectory(dir_bytes));
  BRAID_ASSIGN_OR_RETURN(secagg::EncryptedShares shares, sa->ShareKeys(directory));
  BRAID_ASSIGN_OR_RETURN(std::string fwd_bytes,
                         Step(client, client_id, header, v1::SECAGG_STAGE_SHARE_KEYS,
                              secagg::Encode(shares)));
  BRAID_ASSIGN_OR_RETURN(secagg::ForwardedShares forwarded,
                         secagg::DecodeForwardedShares(fwd_bytes));
  LogInfo(absl::StrCat(who, "shared keys with ", directory.keys.size() - 1, " neighbours"));

  BRAID_ASSIGN_OR_RETURN(LocalUpdate update, train());
  // The delta in layout order, scaled by the public weight, plus this
  // client's share of the distributed DP noise, kept as float bits in the
  // vector that is then masked in place and uploaded. The delta is freed
  // right after: one model-sized vector is alive while masking and
  // uploading, not three.
  size_t elements = 0;
  for (const Tensor& t : update.delta) {
    if (t.dtype != DType::kF32) {
      return absl::InvalidArgumentError(
          absl::StrCat("secure aggregation needs float32 tensors; '", t.name, "' is not"));
    }
    elements += static_cast<size_t>(t.NumElements());
  }
  if (elements != config.vector_length) {
    return absl::InvalidArgumentError(absl::StrCat("the update has ", elements,
                                                   " elements, the round expects ",
                                                   config.vector_length));
  }
  const auto weight = static_cast<float>(c.weight());
  const float beyond = FloatAtMost(c.quantization_range());  // what the quantizer clips
  std::vector<uint32_t> values(elements);
  size_t at = 0, clipped = 0;
  for (const Tensor& t : update.delta) {
    const auto n = static_cast<size_t>(t.NumElements());
    clipped += ScaleToBits(t.f32(), n, weight, beyond, values.data() + at);
    at += n;
  }
  if (c.noise_stddev() > 0) {
    BRAID_ASSIGN_OR_RETURN(dp::GaussianSampler sampler, dp::GaussianSampler::Secure());
    clipped = 0;
    for (uint32_t& bits : values) {
      float x;
      std::memcpy(&x, &bits, sizeof(x));
      x = static_cast<float>(x + c.noise_stddev() * sampler.Next());
      clipped += std::fabs(x) > beyond ? 1 : 0;
      std::memcpy(&bits, &x, sizeof(x));
    }
  }
  update.delta.clear();
  update.delta.shrink_to_fit();
  if (clipped > 0) {
    LogWarning(absl::StrCat(who, clipped, " of ", elements, " elements exceed quantizationRange ",
                            c.quantization_range(), " and are clipped to it"));
  }
  BRAID_RETURN_IF_ERROR(sa->MaskInPlace(forwarded, absl::MakeSpan(values)));
  BRAID_RETURN_IF_ERROR(
      client.PutMasked(client_id, header.round(), values, update.num_examples, update.train));
  values.clear();
  values.shrink_to_fit();

  BRAID_ASSIGN_OR_RETURN(std::string req_bytes,
                         Step(client, client_id, header, v1::SECAGG_STAGE_MASKED_INPUT, ""));
  BRAID_ASSIGN_OR_RETURN(secagg::UnmaskRequest request, secagg::DecodeUnmaskRequest(req_bytes));
  BRAID_ASSIGN_OR_RETURN(secagg::UnmaskResponse response, sa->Unmask(request));
  BRAID_RETURN_IF_ERROR(Step(client, client_id, header, v1::SECAGG_STAGE_UNMASKING,
                             secagg::Encode(response))
                            .status());
  LogInfo(absl::StrCat(who, "unmasking answered (", request.survivors.size(), " survivors, ",
                       request.dropped.size(), " dropped)"));
  return absl::OkStatus();
}

}  // namespace braid::worker
