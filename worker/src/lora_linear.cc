#include "braid/worker/lora_linear.h"

#include <cmath>

#include "precondition.h"
#include "seeded_random.h"

namespace braid::worker {

LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias, bool conv1d)
    : in_features_(in_features), out_features_(out_features), conv1d_(conv1d) {
  weight = register_parameter(
      "weight", conv1d ? torch::zeros({in_features, out_features}) : torch::zeros({out_features, in_features}));
  if (bias) this->bias = register_parameter("bias", torch::zeros({out_features}));
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (conv1d_) {
    // As GPT-2's Conv1D: addmm over the flattened leading dimensions.
    auto sizes = x.sizes().vec();
    sizes.back() = out_features_;
    y = torch::addmm(bias, x.reshape({-1, in_features_}), weight).view(sizes);
  } else {
    y = torch::linear(x, weight, bias);
  }
  if (!has_lora()) return y;
  torch::Tensor h = x;
  if (dropout_ > 0 && is_training()) h = torch::dropout(h, dropout_, /*train=*/true);
  return y + lora_B->forward(lora_A->forward(h)) * scaling_;
}

void LoraLinearImpl::EnableLora(int64_t rank, double scaling, double dropout, uint64_t seed) {
  if (rank < 1 || has_lora()) PreconditionFailed("EnableLora: rank >= 1 and no adapter yet");
  scaling_ = scaling;
  dropout_ = dropout;
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features_, rank).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(rank, out_features_).bias(false)));
  torch::NoGradGuard no_grad;
  // kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
  // = 1 / sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
  uint64_t state = seed;
  state = SplitMix64(state);
  torch::Tensor a = torch::empty({rank, in_features_});
  float* p = a.data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double u = static_cast<double>(SplitMix64(state) >> 40) * 0x1.0p-24;  // [0, 1)
    p[i] = static_cast<float>((2.0 * u - 1.0) * bound);
  }
  lora_A->weight.copy_(a);
  lora_B->weight.zero_();
}

torch::Tensor LoraLinearImpl::MergedWeight() const {
  torch::NoGradGuard no_grad;
  if (!has_lora()) return weight.clone();
  torch::Tensor delta = torch::matmul(lora_B->weight, lora_A->weight) * scaling_;  // [out, in]
  return weight + (conv1d_ ? delta.t() : delta);
}

}  // namespace braid::worker
