#include "braid/worker/mlp.h"

#include <cmath>
#include <cstdint>

#include "seeded_random.h"

namespace braid::worker {
namespace {

// Fills the contiguous float32 `t` with values uniform in [-bound, bound).
void FillUniform(torch::Tensor& t, double bound, uint64_t& state) {
  float* p = t.data_ptr<float>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(SplitMix64(state) >> 40) * 0x1.0p-24;  // [0, 1)
    p[i] = static_cast<float>((2.0 * u - 1.0) * bound);
  }
}

}  // namespace

MlpImpl::MlpImpl(const MlpOptions& options) : options_(options) {
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t in = options_.in_features;
  for (int width : options_.hidden) {
    layers->push_back(torch::nn::Linear(in, width));
    in = width;
  }
  layers->push_back(torch::nn::Linear(in, options_.num_classes));
  ResetParameters(0);
}

void MlpImpl::ResetParameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  // Mix the seed once so that nearby seeds (0, 1, 2) start far apart.
  uint64_t state = seed;
  state = SplitMix64(state);
  for (const auto& module : *layers) {
    auto* linear = module->as<torch::nn::Linear>();
    const double bound = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(1)));
    FillUniform(linear->weight, bound, state);
    FillUniform(linear->bias, bound, state);
  }
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) x = torch::relu(x);
  }
  return x;
}

}  // namespace braid::worker
