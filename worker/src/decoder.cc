#include "braid/worker/decoder.h"

#include <limits>

#include "decoder_parts.h"

namespace braid::worker {

torch::Tensor AllowedKeys(const torch::Tensor& attention_mask, int64_t batch, int64_t length,
                          std::optional<int64_t> sliding_window) {
  const auto pos = torch::arange(length, torch::kLong);
  const auto q = pos.view({length, 1});
  const auto k = pos.view({1, length});
  torch::Tensor allowed = k <= q;  // [T, T]
  if (sliding_window) allowed = allowed & ((q - k) < *sliding_window);
  allowed = allowed.view({1, 1, length, length});
  if (attention_mask.defined()) {
    allowed = allowed & (attention_mask.view({batch, 1, 1, length}) != 0);
  }
  return allowed.expand({batch, 1, length, length});
}

torch::Tensor MaskedAttention(const torch::Tensor& scores, const torch::Tensor& allowed,
                              const torch::Tensor& v) {
  auto masked = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(masked, -1), v);
}

torch::Tensor Activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kSilu:
      return torch::silu(x);
    case Activation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::kGelu:
      return torch::gelu(x);
    case Activation::kRelu:
      return torch::relu(x);
  }
  return x;
}

std::shared_ptr<CausalLmImpl> MakeCausalLm(const DecoderConfig& config) {
  return config.family == DecoderFamily::kGpt2 ? MakeGpt2(config) : MakeLlama(config);
}

torch::Tensor CausalLmLoss(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t t = logits.size(1);
  auto shifted_logits = logits.slice(1, 0, t - 1).reshape({-1, logits.size(2)});
  auto shifted_labels = labels.slice(1, 1, t).reshape({-1}).to(torch::kLong);
  return torch::nn::functional::cross_entropy(
      shifted_logits, shifted_labels,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

}  // namespace braid::worker
