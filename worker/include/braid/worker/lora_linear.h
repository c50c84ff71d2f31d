// A linear projection that can carry a LoRA adapter: the layer every
// targetable projection of the decoders is made of.
//
// Parameter names match Hugging Face's: "weight" and, when present, "bias".
// Linear layers store weight as [out, in] (y = x W^T + b); GPT-2's Conv1D
// layers store it as [in, out] (y = x W + b), and PEFT calls that layout
// fan_in_fan_out. Once EnableLora is called, two submodules appear under
// PEFT's names: "lora_A" (weight [rank, in]) and "lora_B" (weight
// [out, rank]), for both layouts, and the output becomes
//   base(x) + lora_B(lora_A(dropout(x))) * scaling
// as PEFT's LoRA Linear computes it.
//
// Not thread-safe (a torch::nn::Module).
#ifndef BRAID_WORKER_LORA_LINEAR_H_
#define BRAID_WORKER_LORA_LINEAR_H_

#include <cstdint>

#include <torch/torch.h>

namespace braid::worker {

struct LoraLinearImpl : torch::nn::Module {
  // Zero-initialised weights (a checkpoint fills them). `conv1d` selects
  // GPT-2's [in, out] layout.
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias, bool conv1d);

  torch::Tensor forward(const torch::Tensor& x);

  // Adds the adapter: lora_A kaiming-uniform with a = sqrt(5) (uniform in
  // +-1/sqrt(in), as PEFT), drawn from `seed` with the worker's own PRNG;
  // lora_B zeros; scaling = alpha / rank. Precondition: rank >= 1 and no
  // adapter yet.
  void EnableLora(int64_t rank, double scaling, double dropout, uint64_t seed);
  bool has_lora() const { return !lora_A.is_empty(); }

  // Folds lora_B @ lora_A * scaling into weight (transposed for Conv1D) and
  // removes nothing: the caller decides whether to keep the adapter.
  // Returns the merged weight (a new tensor; weight itself is unchanged).
  torch::Tensor MergedWeight() const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  bool conv1d() const { return conv1d_; }
  double scaling() const { return scaling_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when the layer has none
  torch::nn::Linear lora_A{nullptr};
  torch::nn::Linear lora_B{nullptr};

 private:
  int64_t in_features_;
  int64_t out_features_;
  bool conv1d_;
  double scaling_ = 0.0;
  double dropout_ = 0.0;
};
TORCH_MODULE(LoraLinear);

}  // namespace braid::worker

#endif  // BRAID_WORKER_LORA_LINEAR_H_
